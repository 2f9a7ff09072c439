//! Number normalisation: one canonical form for every way a party is written.
//!
//! `tel:+86 138-0000-0000`, `sip:13800000000@host`, `8613800000000` and
//! `+8613800000000` all become `+8613800000000` when the default country code
//! is 86. Anything that is not a phone number (an app account, a random token
//! such as `t-8f3k2q`) is kept as written, so it can still be bound.

use std::fmt;
use std::sync::Arc;

use crate::mask::Masked;
use crate::text::cat;

/// A normalised party: an E.164 number with `+`, or an account/token.
/// Kept in place when short (every phone number is), so that making one
/// (from the table's integer form, on every call) allocates nothing;
/// longer ones are shared text, so that a clone never copies them.
#[derive(Clone)]
pub struct Number(Repr);

/// The longest text a [`Number`] keeps in place.
const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Number {
    fn new(s: &str) -> Number {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Number(Repr::Inline { len, bytes })
            }
            _ => Number(Repr::Shared(s.into())),
        }
    }

    /// A phone number as one integer (what the binding table keeps): the
    /// digits' value, their count and whether a `+` leads; `None` for
    /// anything else, or more than 15 digits. Never 0, never with the top
    /// bit set.
    pub fn code(&self) -> Option<u64> {
        let s = self.as_str();
        let (plus, digits) = match s.strip_prefix('+') {
            Some(d) => (1u64, d),
            None => (0, s),
        };
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value = digits
            .bytes()
            .fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
        Some(plus << 60 | (digits.len() as u64) << 52 | value)
    }

    /// The phone number [`Number::code`] made `code` from.
    pub fn from_code(code: u64) -> Option<Number> {
        let len = usize::try_from(code >> 52 & 0xff).ok()?;
        if code >> 61 != 0 || len == 0 || len > 15 {
            return None;
        }
        let plus = usize::from(code >> 60 & 1 == 1);
        let mut bytes = [0u8; INLINE];
        bytes[0] = b'+';
        let mut value = code & ((1 << 52) - 1);
        for i in (plus..plus + len).rev() {
            bytes[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        let len = u8::try_from(plus + len).ok()?;
        Some(Number(Repr::Inline { len, bytes }))
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Number {}

impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why a string could not be read as a party.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing left after removing scheme, host and separators.
    #[error("empty number")]
    Empty,
    /// A URI with nothing before its `@`.
    #[error("the URI has no user part: write it as sip:name@host or sip:+number@host")]
    NoUser,
    /// A virtual number written with a trunk or international prefix.
    #[error(
        "a virtual number has no leading 0: write it as +country and number, or national digits"
    )]
    LeadingZero,
    /// Characters that belong in no number nor account name.
    #[error("invalid character {0:?} in number")]
    BadChar(char),
    /// Longer than E.164 or than an account name should be.
    #[error("number too long")]
    TooLong,
    /// Fewer digits than any callable number has.
    #[error("number too short: a phone number has 6 to 15 digits")]
    TooShort,
    /// A phone number was required.
    #[error("not a phone number (digits, optionally with + and a country code)")]
    NotPhone,
    /// A bare word: accounts are written as SIP URIs.
    #[error("neither a phone number nor an account written as sip:name@host")]
    NotParty,
}

/// First digits of the real mobile numbers of a country (by its calling
/// code), which a soft number's flag digit must not be: a soft number must
/// never look like a number someone really has.
pub fn mobile_first_digits(country_code: &str) -> &'static [u8] {
    match country_code {
        "86" => &[1],
        _ => &[],
    }
}

/// How numbers without `+` are completed.
#[derive(Clone, Debug, Default)]
pub struct Normaliser {
    /// Country code (digits, no `+`) given to national numbers; empty = none.
    pub default_country_code: String,
}

impl Normaliser {
    /// Normalises a number, a `tel:`/`sip:` URI or an account name.
    pub fn normalise(&self, raw: &str) -> Result<Number, NumberError> {
        let user = user_part(raw.trim());
        if user.is_empty() && raw.contains('@') {
            return Err(NumberError::NoUser);
        }
        if user.is_empty() {
            return Err(NumberError::Empty);
        }
        if user.len() > 64 {
            return Err(NumberError::TooLong);
        }
        let stripped: String = user
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let (plus, digits) = match stripped.strip_prefix('+') {
            Some(d) => (true, d),
            None => (false, stripped.as_str()),
        };
        if digits.is_empty() {
            return Err(NumberError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return account(user);
        }
        if digits.len() > 15 {
            return Err(NumberError::TooLong);
        }
        let cc = &self.default_country_code;
        let e164 = if plus {
            cat(&["+", digits])
        } else if let Some(intl) = digits.strip_prefix("00") {
            cat(&["+", intl])
        } else if cc.is_empty() {
            digits.to_string()
        } else if let Some(national) = digits.strip_prefix('0') {
            cat(&["+", cc, national])
        } else if digits.starts_with(cc.as_str()) && digits.len() > 11 {
            cat(&["+", digits])
        } else {
            cat(&["+", cc, digits])
        };
        Ok(Number::new(&e164))
    }

    /// A callable phone number only (pool numbers, X): 6 to 15 digits once
    /// normalised; accounts and tokens are refused.
    pub fn phone(&self, raw: &str) -> Result<Number, NumberError> {
        callable(self.normalise(raw)?)
    }

    /// A virtual number as the operator writes one (command line, CSV): a
    /// phone number whose digits do not start with 0, the API's rule, so
    /// that both take the same numbers.
    pub fn virtual_number(&self, raw: &str) -> Result<Number, NumberError> {
        let user = user_part(raw.trim());
        if user.trim_start_matches('+').starts_with('0') {
            return Err(NumberError::LeadingZero);
        }
        self.phone(raw)
    }

    /// A party given by a client: a phone number as for [`Self::phone`],
    /// or an app account written as a SIP URI (`sip:alice@example.com`).
    /// A bare word such as `abc` is neither and is refused, so a typo
    /// cannot become a party nobody can ever be.
    pub fn party(&self, raw: &str) -> Result<Number, NumberError> {
        let t = raw.trim();
        let uri = ["sip:", "sips:"]
            .iter()
            .any(|p| t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)));
        let n = self.normalise(t)?;
        if is_phone(n.as_str()) {
            return callable(n);
        }
        if !uri || !t.contains('@') || !n.as_str().starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(NumberError::NotParty);
        }
        Ok(n)
    }
}

/// A normalised value that is a callable phone number.
fn callable(n: Number) -> Result<Number, NumberError> {
    if !is_phone(n.as_str()) {
        return Err(NumberError::NotPhone);
    }
    if n.as_str().trim_start_matches('+').len() < 6 {
        return Err(NumberError::TooShort);
    }
    Ok(n)
}

/// Whether a normalised value is a phone number rather than an account.
fn is_phone(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or(n);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// Accounts and tokens: letters, digits and a few URI-safe marks.
fn account(user: &str) -> Result<Number, NumberError> {
    match user
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.!~*'+".contains(*c)))
    {
        Some(c) => Err(NumberError::BadChar(c)),
        None => Ok(Number::new(user)),
    }
}

/// The user part of `sip:user@host;params`, `tel:+123;params` or a bare value.
fn user_part(raw: &str) -> &str {
    // `get` rather than indexing: the input may hold multi-byte characters.
    let strip = |p: &str| {
        raw.get(..p.len())
            .filter(|head| head.eq_ignore_ascii_case(p))
            .and_then(|_| raw.get(p.len()..))
    };
    let rest = strip("sips:")
        .or_else(|| strip("sip:"))
        .or_else(|| strip("tel:"))
        .unwrap_or(raw);
    let rest = rest.split('@').next().unwrap_or(rest);
    rest.split(';').next().unwrap_or(rest)
}

impl Number {
    /// The canonical text, for the store and for building SIP URIs.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let text = bytes.get(..usize::from(*len)).unwrap_or_default();
                // SAFETY: an inline number's first `len` bytes are a whole
                // `&str` copied in `Number::new`, or `+` and ASCII digits
                // written by `Number::from_code`: UTF-8 either way. Checking
                // them again cost about 2,000 instructions a call.
                unsafe { std::str::from_utf8_unchecked(text) }
            }
            Repr::Shared(s) => s,
        }
    }

    /// Whether it is a phone number (else an app account's name).
    pub fn is_phone(&self) -> bool {
        is_phone(self.as_str())
    }

    /// Wraps a value that was normalised before (read back from the store).
    pub fn from_normalised(s: String) -> Self {
        Number::new(&s)
    }

    /// The masked form for logs.
    pub fn masked(&self) -> Masked<'_> {
        Masked(self.as_str())
    }
}

impl fmt::Display for Number {
    /// Displays masked: a `Number` never reaches a log in clear by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Masked(self.as_str()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_number_makes_an_integer_and_back_and_nothing_else_does() {
        for s in [
            "+8613800000000",
            "+1",
            "13800000000",
            "+999999999999999",
            "007",
        ] {
            let n = Number::from_normalised(s.into());
            let code = n.code().expect(s);
            assert_ne!(code, 0);
            assert_eq!(code >> 63, 0);
            assert_eq!(Number::from_code(code).expect("back").as_str(), s);
        }
        assert_ne!(
            Number::from_normalised("+86".into()).code(),
            Number::from_normalised("86".into()).code()
        );
        for s in ["alice", "t-8f3k2q", "+1234567890123456", "+", "", "+12a"] {
            assert_eq!(Number::from_normalised(s.into()).code(), None, "{s}");
        }
        let long = "a-very-long-account-name-indeed";
        assert_eq!(Number::from_normalised(long.into()).as_str(), long);
        assert_eq!(Number::from_code(1 << 63), None);
    }

    fn cn() -> Normaliser {
        Normaliser {
            default_country_code: "86".into(),
        }
    }

    #[test]
    fn every_spelling_of_a_chinese_mobile_is_the_same_party() {
        let n = cn();
        let want = n.normalise("+8613800000000").expect("e164");
        for s in [
            "8613800000000",
            "13800000000",
            "sip:13800000000@example.com;user=phone",
            "tel:+86-138-0000-0000",
            "008613800000000",
            "<sip:+8613800000000@10.0.0.1:5060>".trim_matches(|c| c == '<' || c == '>'),
        ] {
            assert_eq!(n.normalise(s).expect(s), want, "{s}");
        }
    }

    #[test]
    fn without_country_code_digits_stay_as_written() {
        let n = Normaliser::default();
        assert_eq!(
            n.normalise("13800000000").expect("ok").as_str(),
            "13800000000"
        );
    }

    #[test]
    fn accounts_and_tokens_are_kept() {
        assert_eq!(
            cn().normalise("sip:t-8f3k2q@example.com")
                .expect("ok")
                .as_str(),
            "t-8f3k2q"
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(cn().normalise(""), Err(NumberError::Empty));
        assert_eq!(cn().normalise("sip:@host"), Err(NumberError::NoUser));
        assert_eq!(
            cn().virtual_number("017000000000"),
            Err(NumberError::LeadingZero)
        );
        assert_eq!(
            cn().virtual_number("+017000000000"),
            Err(NumberError::LeadingZero)
        );
        assert_eq!(
            cn().virtual_number("tel:+8617000000000")
                .map(|n| n.as_str().to_string()),
            Ok("+8617000000000".to_string())
        );
        assert!(cn().virtual_number("sip:alice@example.com").is_err());
        assert_eq!(cn().normalise("a\"b"), Err(NumberError::BadChar('"')));
        assert_eq!(
            cn().normalise("1234567890123456"),
            Err(NumberError::TooLong)
        );
    }

    #[test]
    fn multibyte_input_is_an_error_not_a_panic() {
        for s in ["¬\u{89}\u{9f}", "sí", "s\u{e9}p:1", "tél:1", "\u{10348}"] {
            let _ = cn().normalise(s);
        }
        assert!(cn().normalise("sí").is_err());
    }

    #[test]
    fn pool_numbers_must_be_phone_numbers() {
        let n = cn();
        assert_eq!(n.phone("xyz"), Err(NumberError::NotPhone));
        assert_eq!(n.phone("sip:t-abc@h"), Err(NumberError::NotPhone));
        assert_eq!(n.phone("1"), Err(NumberError::TooShort));
        assert_eq!(
            n.phone("17000000001").expect("ok").as_str(),
            "+8617000000001"
        );
    }

    #[test]
    fn parties_are_phone_numbers_or_sip_accounts() {
        let n = cn();
        assert_eq!(n.party("abc"), Err(NumberError::NotParty));
        assert_eq!(n.party("sip:abc"), Err(NumberError::NotParty));
        assert_eq!(n.party("sip:1abc@h"), Err(NumberError::NotParty));
        assert_eq!(
            n.party("sip:alice@example.com").expect("ok").as_str(),
            "alice"
        );
        assert_eq!(
            n.party("tel:13800000000").expect("ok").as_str(),
            "+8613800000000"
        );
        assert_eq!(n.party("12"), Err(NumberError::TooShort));
    }

    #[test]
    fn display_masks() {
        let n = cn().normalise("13800000000").expect("ok");
        assert_eq!(n.to_string(), "+86138****0000");
    }
}
