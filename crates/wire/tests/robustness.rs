//! Whatever bytes arrive on the topic, decoding returns a value or an error: it never
//! panics and never allocates beyond the decode limit.

use proptest::prelude::*;
use stockline_wire::codec::{EVENT_FORMAT_VERSION, EVENT_MAGIC, decode_event, decode_row};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_event(&bytes);
        let _ = decode_row::<stockline_domain::Quantities>(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut bytes = vec![EVENT_MAGIC, EVENT_FORMAT_VERSION];
        bytes.extend_from_slice(&body);
        let _ = decode_event(&bytes);
    }
}

#[test]
fn a_huge_length_prefix_is_refused_not_allocated() {
    // A string whose varint length claims 2^40 bytes: the limit refuses it.
    let mut bytes = vec![EVENT_MAGIC, EVENT_FORMAT_VERSION, 16];
    bytes.extend_from_slice(&[0u8; 16]);
    bytes.extend_from_slice(&[0xFD, 0, 0, 0, 0, 0, 0, 0, 0]); // occurred_at
    bytes.push(0xFD); // u64 varint marker for the channel length
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let err = decode_event(&bytes).expect_err("refused");
    assert_eq!(err.code(), "malformed");
}
