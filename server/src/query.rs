//! Query strings and paths as bytes: keys in URLs are percent-encoded bytes, any bytes.
//!
//! Unlike HTML form encoding, `+` is a plus sign, not a space (RFC 3986): a key with a space
//! is written `%20`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::ApiError;

/// Every byte but the unreserved characters of RFC 3986 is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The parameters of a query string, names as text and values as bytes, in order.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Query {
    /// Parses `a=1&b=%00`; `None` (no `?`) is empty. A name given twice is 400.
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut query = Query::default();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8_lossy(&decode(name)).into_owned();
            if query.bytes(&name).is_some() {
                return Err(ApiError::BadRequest(format!("{name} is given twice")));
            }
            query.pairs.push((name, decode(value)));
        }
        Ok(query)
    }

    /// Fails on a parameter not in `known`, so a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            Some((name, _)) => Err(ApiError::BadRequest(format!(
                "unknown parameter {name:?}; this route takes {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The raw bytes of parameter `name`.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Parameter `name` as UTF-8 text.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        self.bytes(name)
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| ApiError::BadRequest(format!("{name} is not UTF-8")))
    }

    /// Parameter `name` as a number.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        text.parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a number, not {text:?}")))
    }
}

/// Percent-decodes `text` to bytes.
pub(crate) fn decode(text: &str) -> Vec<u8> {
    percent_decode_str(text).collect()
}

/// Percent-encodes `bytes` for a path segment or a query value.
pub(crate) fn encode(bytes: &[u8]) -> String {
    // Invalid UTF-8 is escaped byte by byte too: every non-unreserved byte is in ESCAPED.
    match std::str::from_utf8(bytes) {
        Ok(text) => utf8_percent_encode(text, ESCAPED).to_string(),
        Err(_) => percent_encoding::percent_encode(bytes, ESCAPED).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_percent_encoding() {
        for key in [&b"user:1"[..], b"a b+c/d", b"\x00\xff%", b""] {
            assert_eq!(decode(&encode(key)), key);
        }
        assert_eq!(encode(b"a+b c"), "a%2Bb%20c");
    }

    #[test]
    fn a_plus_is_a_plus_and_a_repeated_name_is_refused() {
        let q = Query::parse(Some("prefix=a+b&limit=3")).map_err(|e| e.to_string());
        let q = q
            .as_ref()
            .map(|q| (q.bytes("prefix"), q.number("limit").ok()));
        assert_eq!(q, Ok((Some(&b"a+b"[..]), Some(Some(3)))));
        assert!(Query::parse(Some("a=1&a=2")).is_err());
    }
}
