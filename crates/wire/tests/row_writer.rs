//! `RowWriter` writes what serde writes through `encode_row`, primitive by
//! primitive, across every varint size.

use proptest::prelude::*;
use stockline_wire::{RowWriter, encode_row};

/// Integers near each varint boundary (250/251, 2^16, 2^32) as well as any.
fn unsigned() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..300,
        65_400u64..65_700,
        4_294_967_200u64..4_294_967_400,
        prop::sample::select(vec![u64::MAX, u64::MAX - 1]),
    ]
}

fn signed() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -300i64..300,
        -33_000i64..-32_600,
        32_600i64..33_000,
        prop::sample::select(vec![
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            -2_147_483_649,
            2_147_483_648
        ]),
    ]
}

#[derive(serde::Serialize)]
enum Shape {
    First,
    Second(u8),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn primitives_encode_as_serde_does(
        u in unsigned(),
        small in any::<u32>(),
        i in signed(),
        text in ".{0,40}|[a-z]{240,300}",
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        maybe in proptest::option::of(signed()),
        second in any::<bool>(),
    ) {
        let shape = if second { Shape::Second(7) } else { Shape::First };
        let by_serde = encode_row(&(u, small, i, &text, serde_bytes::Bytes::new(&bytes), maybe, &shape))
            .expect("encodes");
        let mut by_hand = Vec::new();
        RowWriter::appending(&mut by_hand)
            .unsigned(u)
            .unsigned(u64::from(small))
            .signed(i)
            .str(&text)
            .bytes(&bytes)
            .option(maybe, |row, value| {
                row.signed(value);
            })
            .variant(u32::from(second));
        if second {
            by_hand.push(7); // the u8 field: one raw byte
        }
        prop_assert_eq!(by_hand, by_serde);
    }
}

#[test]
fn variants_are_their_index() {
    let mut by_hand = Vec::new();
    RowWriter::appending(&mut by_hand).variant(0).variant(300);
    assert_eq!(by_hand[2..], [0, 251, 44, 1]);
}
