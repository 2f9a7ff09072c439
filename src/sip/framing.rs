//! Stream framing for SIP over TCP (RFC 3261 section 18.3): a message ends
//! after its headers and Content-Length bytes of body. Also recognises the
//! CRLF keep-alives of RFC 5626 section 3.5.1.

use super::SipError;

/// What the front of a TCP buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// `n` bytes of CRLF keep-alive; a double CRLF ("ping") wants a CRLF back.
    KeepAlive {
        /// Bytes to drop.
        len: usize,
        /// Whether to answer with a single CRLF ("pong").
        ping: bool,
    },
    /// A whole message of this many bytes.
    Message(usize),
}

/// Finds the first frame in `buf`; errors when a message would exceed `limit`
/// or has no usable Content-Length.
pub fn next_frame(buf: &[u8], limit: usize) -> Result<Frame, SipError> {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if lead > 0 {
        return Ok(Frame::KeepAlive {
            len: lead,
            ping: buf[..lead].windows(4).any(|w| w == b"\r\n\r\n"),
        });
    }
    let Some(head_end) = super::message::head_end(buf) else {
        if buf.len() > limit {
            return Err(SipError::TooLarge {
                size: buf.len(),
                limit,
            });
        }
        return Ok(Frame::Incomplete);
    };
    let body_len = content_length(&buf[..head_end])?;
    let total = head_end + 4 + body_len;
    if total > limit {
        return Err(SipError::TooLarge { size: total, limit });
    }
    if buf.len() < total {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Message(total))
}

/// Content-Length (or compact `l`) of a header block; required on streams,
/// and only once: two of them frame the stream two ways (request
/// smuggling), so such a message is refused, never framed by the first.
fn content_length(head: &[u8]) -> Result<usize, SipError> {
    let text = std::str::from_utf8(head).map_err(|_| SipError::Header("Content-Length"))?;
    let mut found = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            if found.is_some() {
                return Err(SipError::Header("Content-Length"));
            }
            found = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| SipError::Header("Content-Length"))?,
            );
        }
    }
    found.ok_or(SipError::Header("Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_messages_in_one_read_are_split_by_content_length() {
        let one = "OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabc";
        let buf = format!("{one}{one}");
        assert_eq!(
            next_frame(buf.as_bytes(), 4096),
            Ok(Frame::Message(one.len()))
        );
    }

    #[test]
    fn partial_body_waits() {
        let b = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(next_frame(b, 4096), Ok(Frame::Incomplete));
    }

    #[test]
    fn keepalive_ping_is_recognised() {
        assert_eq!(
            next_frame(b"\r\n\r\n", 4096),
            Ok(Frame::KeepAlive { len: 4, ping: true })
        );
        assert_eq!(
            next_frame(b"\r\n", 4096),
            Ok(Frame::KeepAlive {
                len: 2,
                ping: false
            })
        );
    }

    #[test]
    fn oversized_and_unframed_messages_are_errors() {
        let b = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999\r\n\r\n";
        assert!(matches!(
            next_frame(b, 4096),
            Err(SipError::TooLarge { .. })
        ));
        let b = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(next_frame(b, 4096), Err(SipError::Header("Content-Length")));
        let b = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 40\r\n\r\n";
        assert_eq!(
            next_frame(b, 4096),
            Err(SipError::Header("Content-Length")),
            "two lengths are refused, not framed by the first"
        );
    }
}
