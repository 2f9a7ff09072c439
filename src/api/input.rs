//! What the API accepts as input, in one place: the spelling of numbers,
//! parties, filters and cursors (with the patterns the OpenAPI document
//! carries), integers written as `3.0`, and objects only where serde would
//! also read arrays.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::problem::ApiError;
use crate::bindings::{Normaliser, Number};

/// A JSON integer: `3` or `3.0` (JSON Schema counts both as integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonInt(pub i64);

impl<'de> Deserialize<'de> for JsonInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(JsonInt(i));
        }
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(JsonInt(f as i64)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid value: {n}, expected an integer"
            ))),
        }
    }
}

/// An optional nested object. serde would also read a struct from an
/// array (`[1, 2]`); the API takes objects only.
pub fn object<'de, T: serde::de::DeserializeOwned, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(_) => Err(serde::de::Error::custom("expected an object")),
    }
}

/// A list of objects (see [`object`]).
pub fn objects<'de, T: serde::de::DeserializeOwned, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<serde_json::Value>::deserialize(d)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if !v.is_object() {
                return Err(serde::de::Error::custom(format!(
                    "[{i}]: expected an object"
                )));
            }
            serde_json::from_value(v).map_err(|e| serde::de::Error::custom(format!("[{i}]: {e}")))
        })
        .collect()
}

/// Reads `cursor` and `limit` of a list request: (id to continue after, page size).
pub fn page(cursor: &Option<String>, limit: Option<u32>) -> Result<(i64, u32), ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 1000"));
    }
    let after = match cursor {
        None => 0,
        Some(c) if (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) => c
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("cursor", "not a cursor from this API"))?,
        Some(_) => return Err(ApiError::invalid("cursor", "not a cursor from this API")),
    };
    Ok((after, limit))
}

/// The API's spelling of a phone number: E.164 with `+` (6 to 15 digits),
/// or a national number of 6 to 12 digits that the configured country code
/// completes; no leading 0 (no trunk or international prefixes).
/// The OpenAPI document carries the same patterns (a test compares them),
/// so what the document allows is exactly what the API accepts.
pub const PHONE_PATTERN: &str = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11})$";
/// A party: a phone number, or an app account as `sip:name@host`.
pub const PARTY_PATTERN: &str = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11}|sip:[A-Za-z][A-Za-z0-9._~!*'+-]{0,63}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)$";
/// A search filter: a party or a token identifier.
pub const FILTER_PATTERN: &str = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11}|sip:[A-Za-z][A-Za-z0-9._~!*'+-]{0,63}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|t-[a-z0-9]{10})$";

fn phone_text(v: &str) -> bool {
    let (d, max) = match v.strip_prefix('+') {
        Some(d) => (d, 15),
        None => (v, 12),
    };
    (6..=max).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

fn account_text(v: &str) -> bool {
    let Some((name, host)) = v.strip_prefix("sip:").and_then(|r| r.split_once('@')) else {
        return false;
    };
    let (host, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~!*'+-".contains(c))
        && (1..=253).contains(&host.len())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

fn token_text(v: &str) -> bool {
    v.strip_prefix("t-").is_some_and(|t| {
        t.len() == 10
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

/// Reads a party field: a phone number or an account as `sip:name@host`.
pub fn number(norm: &Normaliser, field: &str, v: &str) -> Result<Number, ApiError> {
    if !(phone_text(v) || account_text(v)) {
        return Err(ApiError::invalid(
            field,
            "must be a phone number (+ and 6 to 15 digits, or 6 to 12 national digits) or an account as sip:name@host",
        ));
    }
    norm.party(v)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// Reads a virtual number field (pool, X): a phone number only.
pub fn phone(norm: &Normaliser, field: &str, v: &str) -> Result<Number, ApiError> {
    if !phone_text(v) {
        return Err(ApiError::invalid(
            field,
            "must be a phone number: + and 6 to 15 digits, or 6 to 12 national digits, no leading 0",
        ));
    }
    norm.phone(v)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// Reads a search filter: a party or a token identifier.
pub fn filter(norm: &Normaliser, field: &str, v: &str) -> Result<Number, ApiError> {
    if !(phone_text(v) || account_text(v) || token_text(v)) {
        return Err(ApiError::invalid(
            field,
            "must be a phone number, an account as sip:name@host or a token t-...",
        ));
    }
    norm.normalise(v)
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

// The request schemas below carry the patterns once (utoipa takes only
// literals); fields and parameters refer to them by `value_type`.

/// A party in a request (schema only): a phone number or `sip:name@host`.
#[derive(ToSchema)]
#[schema(
    pattern = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11}|sip:[A-Za-z][A-Za-z0-9._~!*'+-]{0,63}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?)$"
)]
pub struct Party(pub String);

/// A virtual number in a request (schema only).
#[derive(ToSchema)]
#[schema(pattern = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11})$")]
pub struct Phone(pub String);

/// A search filter in a request (schema only): a party or a token.
#[derive(ToSchema)]
#[schema(
    pattern = r"^(\+[1-9][0-9]{5,14}|[1-9][0-9]{5,11}|sip:[A-Za-z][A-Za-z0-9._~!*'+-]{0,63}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|t-[a-z0-9]{10})$"
)]
pub struct Filter(pub String);

/// A page cursor (schema only): the `next_cursor` of a previous page.
#[derive(ToSchema)]
#[schema(pattern = r"^[0-9]{1,18}$")]
pub struct Cursor(pub String);

#[cfg(test)]
mod tests {

    #[test]
    fn integers_written_as_floats_are_read_exactly_or_refused() {
        let read = |t: &str| serde_json::from_str::<JsonInt>(t).map(|j| j.0).ok();
        assert_eq!(read("4032036042280702.0"), Some(4032036042280702));
        assert_eq!(read("3.0"), Some(3));
        assert_eq!(read("4032036042280702.5"), None);
        assert_eq!(read("1e300"), None);
        // Past 2^53 a float cannot say which integer it meant.
        assert_eq!(read("9007199254740993.0"), None);
    }
    use super::*;

    #[test]
    fn the_document_allows_exactly_what_the_checks_accept() {
        let doc = <super::super::ApiDoc as utoipa::OpenApi>::openapi()
            .to_json()
            .expect("json");
        for p in [PHONE_PATTERN, PARTY_PATTERN, FILTER_PATTERN] {
            let quoted = serde_json::to_string(p).expect("quoted");
            assert!(doc.contains(&quoted), "{p} is not in the document");
        }
        for ok in [
            "13800000000",
            "+8613800000000",
            "sip:alice@example.com",
            "sip:a.b@h:5060",
        ] {
            assert!(phone_text(ok) || account_text(ok), "{ok}");
        }
        for bad in [
            "",
            "12345",
            "abc",
            "sip:1a@h",
            "sip:a@h:123456",
            "tel:13800000000",
            "+",
            "000000",
            "+0169258758",
            "4080134740285",
        ] {
            assert!(!(phone_text(bad) || account_text(bad)), "{bad}");
        }
        assert!(token_text("t-abcdef0123") && !token_text("t-ABCDEF0123"));
    }
}
