//! A fast, deterministic hasher for the ledger's point lookups.
//!
//! The fold looks up stock rows, holds and event ids by key on every record. The
//! standard library's SipHash is keyed at random and slow on short keys; ordered maps
//! pay a string comparison per tree level. The maps below hash with a fixed function
//! (a folded 64x64->128 multiply per 8 bytes, as foldhash and wyhash do): the same
//! input always gives the same hash, in every process.
//!
//! Hash maps are only ever looked up, never iterated where iteration could reach an
//! output: views that list them sort first (see `state.rs`). Deterministic hashing is
//! not what makes the fold deterministic; it keeps runs reproducible (same memory
//! layout, same instruction counts) and costs no random seed.
//!
//! A fixed hash function can be attacked with chosen keys (many ids in one bucket
//! chain). The keys are ids chosen by authenticated channels, bounded to 128 bytes;
//! the worst case is slower lookups, never a wrong answer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The fixed multiplier: the 64-bit golden ratio, odd, with well-spread bits.
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
/// A second constant, so that a zero word does not zero the state.
const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// `a * b` as 128 bits, both halves folded together: every input bit reaches
/// every output bit, low bits included (hashbrown indexes buckets by low bits).
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)] // the two halves, on purpose
    let (low, high) = (product as u64, (product >> 64) as u64);
    low ^ high
}

/// See the module documentation.
#[derive(Clone, Copy, Default)]
pub struct IdHasher {
    state: u64,
}

impl IdHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word ^ SEED, MULTIPLIER);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0": a tail is zero-padded.
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

pub type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// A `HashMap` with [`IdHasher`].
pub type IdHashMap<K, V> = HashMap<K, V, BuildIdHasher>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hash};

    use super::*;

    fn hash_of(value: impl Hash) -> u64 {
        BuildIdHasher::default().hash_one(value)
    }

    #[test]
    fn same_input_same_hash_and_prefixes_differ() {
        assert_eq!(hash_of("SKU-000123"), hash_of("SKU-000123"));
        let words = [
            "",
            "a",
            "ab",
            "ab\0",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "b",
            "ba",
        ];
        for (i, a) in words.iter().enumerate() {
            for b in &words[i + 1..] {
                assert_ne!(hash_of(a), hash_of(b), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn low_bits_spread_for_ids_differing_in_one_byte() {
        // hashbrown picks the bucket from the low bits: ids that differ in any one
        // byte must land in many different buckets.
        let mut buckets = std::collections::BTreeSet::new();
        for i in 0..256u32 {
            buckets.insert(hash_of(format!("SKU-{i:06}-GREY")) & 0xff);
        }
        assert!(
            buckets.len() > 140,
            "{} distinct buckets of 256",
            buckets.len()
        );
    }
}
