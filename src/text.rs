//! Short strings built without the formatting machinery. The message path
//! glues a few pieces together many times per call (header values, URIs,
//! SDP lines), where `format!` costs several hundred instructions and its
//! own growth of the buffer each time; these size the result once.

/// Concatenates `parts` into one string allocated at its final size.
pub fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    push(&mut s, parts);
    s
}

/// Appends `parts` to `out`, one after another.
pub fn push(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

/// The decimal digits of a number, on the stack.
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    /// The digits of `n`.
    pub fn new(mut n: u64) -> Digits {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits { buf, start }
    }

    /// As text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_display() {
        for n in [0, 7, 10, 99, 100, 65535, 1 << 40, u64::MAX] {
            assert_eq!(Digits::new(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn cat_joins_in_order() {
        assert_eq!(cat(&["<sip:", "a@b", ">"]), "<sip:a@b>");
        assert_eq!(cat(&[]), "");
    }
}
