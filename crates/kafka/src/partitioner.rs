//! Kafka's default key partitioner, computed locally.
//!
//! The producer always sets the partition of a record explicitly with
//! [`partition_for_key`], so any component (projector, query service, replay
//! tools) can tell which partition holds a key without asking a broker, and
//! the answer is the one a Java client (or librdkafka's `murmur2_random`
//! partitioner) would give for the same key and partition count.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, as the
/// Java client computes it (little-endian 4-byte blocks, signed result).
#[must_use]
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java computes in wrapping 32-bit ints; the arithmetic is identical on u32
    // and only the final bit pattern is reinterpreted as signed. Kafka seeds
    // with the length truncated to 32 bits, hence the explicit truncation.
    #[allow(clippy::cast_possible_truncation)]
    let length_u32 = data.len() as u32;
    let mut h: u32 = SEED ^ length_u32;

    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The Java `switch` falls through from case 3 to case 1.
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;

    i32::from_ne_bytes(h.to_ne_bytes())
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which would map
/// `i32::MIN` to itself).
#[must_use]
pub fn to_positive(n: i32) -> u32 {
    u32::from_ne_bytes((n & 0x7fff_ffff).to_ne_bytes())
}

/// The partition the Java default partitioner picks for a non-empty key:
/// `toPositive(murmur2(key)) % partition_count`.
///
/// `partition_count` must be at least 1; 0 is treated as 1 (everything goes to
/// partition 0) rather than panicking on a division by zero, since a topic
/// always has at least one partition.
#[must_use]
pub fn partition_for_key(key: &[u8], partition_count: u32) -> u32 {
    to_positive(murmur2(key)) % partition_count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vectors from Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                *expected,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973_932_308), 1_173_551_340);
    }

    #[test]
    fn partition_for_key_is_java_compatible() {
        // toPositive(-973932308) = 1173551340; 1173551340 % 8 = 4.
        assert_eq!(partition_for_key(b"21", 8), 4);
        // toPositive(479470107) = 479470107; % 8 = 3, % 3 = 0.
        assert_eq!(partition_for_key(b"abc", 8), 3);
        assert_eq!(partition_for_key(b"abc", 3), 0);
        assert_eq!(partition_for_key(b"anything", 1), 0);
        assert_eq!(partition_for_key(b"anything", 0), 0);
    }

    #[test]
    fn partition_is_always_in_range() {
        for count in 1..=64_u32 {
            for i in 0..200_u32 {
                let key = format!("sku-{i}");
                assert!(partition_for_key(key.as_bytes(), count) < count);
            }
        }
    }
}
