//! Platform ids (Shopify, WooCommerce): unsigned 64-bit integers.
//!
//! Shopify ids exceed 2^53, so they must never pass through an `f64` (a JavaScript
//! number, or `serde_json::Value::as_f64`): they are read as `u64` straight from the
//! JSON text, or from a string of digits (GraphQL-style payloads and TOML mapping
//! keys are strings). Rendered back as decimal digits.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformId(pub u64);

impl fmt::Display for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for PlatformId {
    type Err = String;

    /// Decimal digits, or a Shopify GraphQL id (`gid://shopify/Order/123`).
    fn from_str(text: &str) -> Result<Self, String> {
        let digits = text.rsplit('/').next().unwrap_or(text).trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text:?} is not an id (decimal digits)"));
        }
        digits
            .parse::<u64>()
            .map(PlatformId)
            .map_err(|_| format!("{text:?} does not fit in 64 bits"))
    }
}

impl Serialize for PlatformId {
    /// As a string: safe in JSON for every reader, and a valid TOML key.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = PlatformId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id: a non-negative integer, or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<PlatformId, E> {
        Ok(PlatformId(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<PlatformId, E> {
        u64::try_from(value)
            .map(PlatformId)
            .map_err(|_| E::custom(format!("id {value} is negative")))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<PlatformId, E> {
        Err(E::custom(format!(
            "id {value} is not an integer (ids must not be written as floating point)"
        )))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<PlatformId, E> {
        value.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for PlatformId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_beyond_2_pow_53_survive() {
        let big = 9_007_199_254_740_993_u64; // 2^53 + 1: not representable in f64
        let from_number: PlatformId = serde_json::from_str(&big.to_string()).expect("number");
        let from_string: PlatformId = serde_json::from_str(&format!("\"{big}\"")).expect("string");
        assert_eq!(from_number, PlatformId(big));
        assert_eq!(from_string, PlatformId(big));
        assert_eq!(from_number.to_string(), "9007199254740993");
        assert_eq!(
            "gid://shopify/Order/9007199254740993".parse::<PlatformId>(),
            Ok(PlatformId(big))
        );
        assert!(serde_json::from_str::<PlatformId>("1.5").is_err());
        assert!(serde_json::from_str::<PlatformId>("-3").is_err());
        assert!(serde_json::from_str::<PlatformId>("\"12a\"").is_err());
        assert!(serde_json::from_str::<PlatformId>("18446744073709551616").is_err());
    }
}
