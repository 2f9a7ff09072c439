//! A piece of a parsed message's text. A message's head is copied once,
//! into one shared buffer, and every value [`super::Msg`] keeps (From, To,
//! Call-ID, tags, the Vias, ...) is a range of it: a message costs one
//! allocation for all its values instead of one each, and cloning a value
//! shares the buffer instead of copying it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Text shared with the message it came from; reads as a `&str`.
#[derive(Clone)]
pub struct Piece {
    buf: Arc<str>,
    at: u32,
    end: u32,
}

impl Piece {
    /// `part` as a range of `buf` when it lies in it (no copy), else a copy
    /// of its own (a folded value joined, a user part decoded).
    pub fn within(buf: &Arc<str>, part: &str) -> Piece {
        let (base, p) = (buf.as_ptr() as usize, part.as_ptr() as usize);
        match p.checked_sub(base) {
            Some(at) if at + part.len() <= buf.len() => Piece {
                buf: Arc::clone(buf),
                // A message is far below 4 GiB: the framing caps it.
                at: at as u32,
                end: (at + part.len()) as u32,
            },
            _ => Piece::from(part),
        }
    }

    /// The empty piece of `buf`: a placeholder that allocates nothing.
    pub fn empty_of(buf: &Arc<str>) -> Piece {
        Piece {
            buf: Arc::clone(buf),
            at: 0,
            end: 0,
        }
    }

    /// `part` (a slice of this piece) as a piece of the same buffer.
    pub fn sub(&self, part: &str) -> Piece {
        Piece::within(&self.buf, part)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The range was cut from this buffer at char boundaries.
        self.buf
            .get(self.at as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl From<&str> for Piece {
    fn from(s: &str) -> Piece {
        Piece {
            buf: Arc::from(s),
            at: 0,
            end: s.len() as u32,
        }
    }
}

impl From<String> for Piece {
    fn from(s: String) -> Piece {
        Piece::from(s.as_str())
    }
}

impl Deref for Piece {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Piece {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Piece {
    fn eq(&self, other: &Piece) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Piece {}

impl PartialOrd for Piece {
    fn partial_cmp(&self, other: &Piece) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Piece {
    fn cmp(&self, other: &Piece) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for Piece {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Piece {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Piece {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Piece> for String {
    fn eq(&self, other: &Piece) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Piece> for str {
    fn eq(&self, other: &Piece) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Piece> for &str {
    fn eq(&self, other: &Piece) -> bool {
        *self == other.as_str()
    }
}

impl std::hash::Hash for Piece {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_of_the_buffer_shares_it_and_anything_else_is_copied() {
        let buf: Arc<str> = Arc::from("From: <sip:a@h>;tag=1");
        let p = Piece::within(&buf, &buf[6..]);
        assert_eq!(p, "<sip:a@h>;tag=1");
        assert!(Arc::ptr_eq(&p.buf, &buf));
        let tag = p.sub(&p[p.len() - 1..]);
        assert_eq!((tag.as_str(), Arc::ptr_eq(&tag.buf, &buf)), ("1", true));
        let joined = String::from("<sip:a@h> ;tag=1");
        let own = Piece::within(&buf, &joined);
        assert_eq!(own, "<sip:a@h> ;tag=1");
        assert!(!Arc::ptr_eq(&own.buf, &buf));
        assert_eq!(Piece::empty_of(&buf), "");
    }
}
