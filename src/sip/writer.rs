//! Writes SIP messages. Every header of an outgoing message is put here by
//! the B2BUA on purpose; nothing is copied wholesale from the other leg.

use bytes::Bytes;

/// Builds one message.
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a request.
    pub fn request(method: &str, uri: &str) -> Writer {
        let mut buf = Vec::with_capacity(768);
        buf.extend_from_slice(method.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(uri.as_bytes());
        buf.extend_from_slice(b" SIP/2.0\r\n");
        Writer { buf }
    }

    /// Starts a response.
    pub fn response(code: u16, reason: &str) -> Writer {
        let mut buf = Vec::with_capacity(768);
        buf.extend_from_slice(b"SIP/2.0 ");
        buf.extend_from_slice(crate::text::Digits::new(code.into()).as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(b"\r\n");
        Writer { buf }
    }

    /// Adds a header.
    pub fn header(&mut self, name: &str, value: &str) -> &mut Writer {
        self.header_parts(name, &[value])
    }

    /// Adds a header whose value is `parts` one after another.
    pub fn header_parts(&mut self, name: &str, parts: &[&str]) -> &mut Writer {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        for p in parts {
            self.buf.extend_from_slice(p.as_bytes());
        }
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Adds CSeq: `cseq` and `method`.
    pub fn cseq(&mut self, cseq: u32, method: &str) -> &mut Writer {
        let n = crate::text::Digits::new(cseq.into());
        self.header_parts("CSeq", &[n.as_str(), " ", method])
    }

    /// Adds a header whose value is a number.
    pub fn header_num(&mut self, name: &str, n: u64) -> &mut Writer {
        self.header(name, crate::text::Digits::new(n).as_str())
    }

    /// Adds a header per value.
    pub fn headers<V: AsRef<str>>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Writer {
        for v in values {
            self.header(name, v.as_ref());
        }
        self
    }

    /// Adds Content-Type (if a body) and Content-Length, then the body.
    pub fn finish(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if !body.is_empty() {
            if let Some(ct) = content_type {
                self.header("Content-Type", ct);
            }
        }
        self.header_num("Content-Length", body.len() as u64);
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(body);
        Bytes::from(self.buf)
    }
}

/// Standard reason phrase for the statuses we send ourselves.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        c if c < 200 => "Session Progress",
        c if c < 300 => "OK",
        c if c < 400 => "Redirection",
        c if c < 500 => "Client Error",
        c if c < 600 => "Server Error",
        _ => "Global Failure",
    }
}
