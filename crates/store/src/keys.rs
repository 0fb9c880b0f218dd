//! Key encodings. Every key is bytes that sort the way queries scan them.
//!
//! Identifiers are printable ASCII (0x21..=0x7E, enforced when they are decoded), so
//! a 0x00 byte separates key parts unambiguously and `part \0` is a prefix of every
//! key that starts with that part. Integers are big-endian; signed ones have their
//! sign bit flipped so that negative values sort first.

use stockline_domain::{HoldStatus, LogTime};

pub const SEP: u8 = 0;

/// Builds a key from parts.
#[derive(Debug, Default, Clone)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Key(Vec::with_capacity(48))
    }

    /// A key built in `buffer`, emptied first: a caller that builds many keys
    /// only to look them up reuses one allocation.
    pub fn reusing(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Key(buffer)
    }

    /// A key built at the end of `buffer`, after what it holds: rows kept side
    /// by side in one buffer until they are written.
    pub fn appending(buffer: Vec<u8>) -> Self {
        Key(buffer)
    }

    /// An identifier followed by the separator.
    pub fn id(mut self, id: &str) -> Self {
        debug_assert!(!id.as_bytes().contains(&SEP), "ids never contain NUL");
        self.0.extend_from_slice(id.as_bytes());
        self.0.push(SEP);
        self
    }

    /// An identifier without a trailing separator (the last part of a key).
    pub fn last_id(mut self, id: &str) -> Self {
        self.0.extend_from_slice(id.as_bytes());
        self
    }

    pub fn u32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn u16(mut self, value: u16) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn i64(mut self, value: i64) -> Self {
        self.0.extend_from_slice(&sortable_i64(value));
        self
    }

    pub fn u8(mut self, value: u8) -> Self {
        self.0.push(value);
        self
    }

    pub fn bytes(mut self, value: &[u8]) -> Self {
        self.0.extend_from_slice(value);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

pub fn sortable_i64(value: i64) -> [u8; 8] {
    // Flipping the sign bit maps i64 order onto unsigned byte order.
    (value.cast_unsigned() ^ (1u64 << 63)).to_be_bytes()
}

pub fn from_sortable_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1u64 << 63)).cast_signed()
}

/// The smallest key strictly greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Splits a key made of `id \0 id \0 ... id` parts.
pub fn split_ids(key: &[u8]) -> Vec<&str> {
    key.split(|b| *b == SEP)
        .map(|part| std::str::from_utf8(part).unwrap_or(""))
        .collect()
}

/// Stable one-byte code of a hold status, for index keys.
pub fn status_code(status: HoldStatus) -> u8 {
    match status {
        HoldStatus::Rejected => 0,
        HoldStatus::Held => 1,
        HoldStatus::ReadyForPickup => 2,
        HoldStatus::Collected => 3,
        HoldStatus::Shipped => 4,
        HoldStatus::Released => 5,
        HoldStatus::Expired => 6,
        HoldStatus::NoShow => 7,
    }
}

pub fn log_time_key(time: LogTime) -> [u8; 8] {
    sortable_i64(time.millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_integers_sort_as_bytes() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable_i64(pair[0]) < sortable_i64(pair[1]));
        }
        for v in values {
            assert_eq!(from_sortable_i64(sortable_i64(v)), v);
        }
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"ab\0"), Some(b"ab\x01".to_vec()));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }
}
