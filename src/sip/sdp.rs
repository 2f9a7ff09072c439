//! SDP masking: phones put their account or number in the `o=` user name and
//! the `s=` line, and their host in the `o=` address. Those are replaced;
//! media lines (`c=`, `m=`, `a=`) pass unchanged until media anchoring exists.

/// Rewrites `o=` (user name and address) and `s=` in an SDP body. `host` is
/// our advertised address. A body that is not UTF-8 is returned unchanged.
pub fn mask(body: &[u8], host_ip: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let (content, eol) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(c) => (c, "\n"),
                None => (line, ""),
            },
        };
        if let Some(o) = content.strip_prefix("o=") {
            let f: Vec<&str> = o.split_whitespace().collect();
            if f.len() == 6 {
                let ipver = if host_ip.contains(':') { "IP6" } else { "IP4" };
                let ip = host_ip.trim_matches(['[', ']']);
                out.push_str(&format!("o=- {} {} IN {ipver} {ip}", f[1], f[2]));
            } else {
                out.push_str("o=- 0 0 IN IP4 0.0.0.0");
            }
        } else if content.starts_with("s=") {
            out.push_str("s=-");
        } else {
            out.push_str(content);
        }
        out.push_str(eol);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_user_address_and_session_name_are_replaced() {
        let sdp = "v=0\r\no=13800000000 1 2 IN IP4 10.0.0.2\r\ns=Alice's phone\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\n";
        let out = String::from_utf8(super::mask(sdp.as_bytes(), "192.0.2.1")).expect("utf8");
        assert_eq!(
            out,
            "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\n"
        );
    }
}
