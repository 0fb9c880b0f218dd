//! Comparing two stores, column family by column family, byte for byte.

use crate::error::StoreError;
use crate::store::{Store, cf};

/// One key whose value differs (or exists on one side only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub cf: &'static str,
    pub key: Vec<u8>,
    pub left: Option<Vec<u8>>,
    pub right: Option<Vec<u8>>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |value: &Option<Vec<u8>>| match value {
            None => "(absent)".to_owned(),
            Some(bytes) => format!("{} bytes {}", bytes.len(), printable(bytes)),
        };
        write!(
            f,
            "{} {}: left {} / right {}",
            self.cf,
            printable(&self.key),
            show(&self.left),
            show(&self.right)
        )
    }
}

/// Bytes as text where printable, `\xNN` elsewhere, cut at 160 characters.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for b in bytes {
        if out.len() > 160 {
            out.push_str("...");
            break;
        }
        if b.is_ascii_graphic() {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Summary of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Keys compared per column family.
    pub keys_compared: Vec<(&'static str, u64)>,
    /// The first `limit` differences, in column family then key order.
    pub differences: Vec<Difference>,
    /// All differences, including those past the limit.
    pub difference_count: u64,
}

/// Compares every model column family (all but `meta`) that both stores hold:
/// a replay's read-models store has no archive or dedupe record to compare
/// (see [`crate::StoreContents`]).
pub fn compare(left: &Store, right: &Store, limit: usize) -> Result<Comparison, StoreError> {
    let mut comparison = Comparison::default();
    let both_hold = |name: &str| left.contents().holds(name) && right.contents().holds(name);
    for name in cf::model().filter(|name| both_hold(name)) {
        let mut left_rows = Vec::new();
        left.for_each_raw(name, |k, v| {
            left_rows.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        let mut right_rows = Vec::new();
        right.for_each_raw(name, |k, v| {
            right_rows.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        comparison
            .keys_compared
            .push((name, left_rows.len().max(right_rows.len()) as u64));
        let (mut i, mut j) = (0, 0);
        let mut record = |difference: Difference| {
            comparison.difference_count += 1;
            if comparison.differences.len() < limit {
                comparison.differences.push(difference);
            }
        };
        while i < left_rows.len() || j < right_rows.len() {
            match (left_rows.get(i), right_rows.get(j)) {
                (Some((lk, lv)), Some((rk, rv))) if lk == rk => {
                    if lv != rv {
                        record(Difference {
                            cf: name,
                            key: lk.clone(),
                            left: Some(lv.clone()),
                            right: Some(rv.clone()),
                        });
                    }
                    i += 1;
                    j += 1;
                }
                (Some((lk, lv)), Some((rk, _))) if lk < rk => {
                    record(Difference {
                        cf: name,
                        key: lk.clone(),
                        left: Some(lv.clone()),
                        right: None,
                    });
                    i += 1;
                }
                (Some(_), Some((rk, rv))) | (None, Some((rk, rv))) => {
                    record(Difference {
                        cf: name,
                        key: rk.clone(),
                        left: None,
                        right: Some(rv.clone()),
                    });
                    j += 1;
                }
                (Some((lk, lv)), None) => {
                    record(Difference {
                        cf: name,
                        key: lk.clone(),
                        left: Some(lv.clone()),
                        right: None,
                    });
                    i += 1;
                }
                (None, None) => break,
            }
        }
    }
    Ok(comparison)
}
