//! Events decoded field by field from the bytes serde writes through bincode
//! (standard configuration: varint integers, zigzag for signed ones): the
//! projector decodes every record it consumes, and serde's generic path cost
//! about 2,730 instructions an event, 12% of a replay. This takes about 2,170:
//! most of the difference is ids recognized by their bytes (see
//! `stockline_domain::Sku::recent`), which serde's path, lending only checked
//! text, cannot do; the rest is the generic path itself (-2.9% of a replay in
//! all).
//!
//! The format is still serde's: [`crate::encode_event`] writes it, and the tests
//! below decode any event it writes, and any bytes at all, exactly as serde's
//! decoder does (the same value, or an error where it errs), so the two cannot
//! drift apart silently. The field order is the types' declaration order in
//! `stockline_domain::event`; enum variants are their declaration index.
//!
//! Bounded: nothing is allocated beyond what the bytes hold (a sequence's
//! capacity is never more than the bytes left could fill). serde's decoder
//! counts every value it reads against [`crate::codec::DECODE_LIMIT_BYTES`], at
//! most 8 bytes counted per byte read; [`crate::decode_event`] therefore hands
//! bodies longer than an eighth of the limit, the only ones that limit could
//! refuse, to serde's decoder instead of counting here.

use chrono::{DateTime, Utc};
use stockline_domain::{
    ChannelId, CustomerRef, DocumentId, DocumentKind, DocumentRef, Event, GroupId, HoldId,
    HoldKind, IdError, LocationId, LocationKind, OrderId, Payload, Price, ReasonCode, ReceiptKind,
    ReturnDisposition, Sku, StockState,
};

use crate::codec::{VARINT_SINGLE_BYTE_MAX, VARINT_U16, VARINT_U32, VARINT_U64};

/// Why the bytes are not an event (the message of `DecodeError::Malformed`).
pub(crate) type Malformed = String;

/// Decodes one event from `body` (the bytes after the header); returns it and
/// how many bytes it took.
pub(crate) fn decode_event_body(body: &[u8]) -> Result<(Event, usize), Malformed> {
    let mut reader = Reader { rest: body };
    let event = reader.event()?;
    Ok((event, body.len() - reader.rest.len()))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        if len > self.rest.len() {
            return Err(format!(
                "unexpected end: {len} bytes needed, {} left",
                self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Malformed> {
        let (&first, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| "unexpected end: 1 byte needed, 0 left".to_owned())?;
        self.rest = rest;
        Ok(first)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// An unsigned varint of at most `widest` (the marker of the widest
    /// encoding the type allows).
    #[inline]
    fn varint(&mut self, widest: u8, type_name: &str) -> Result<u64, Malformed> {
        let marker = self.byte()?;
        if marker <= VARINT_SINGLE_BYTE_MAX {
            return Ok(u64::from(marker));
        }
        if marker > widest {
            return Err(format!(
                "varint marker {marker} is not a {type_name} (widest marker {widest})"
            ));
        }
        Ok(match marker {
            VARINT_U16 => u64::from(u16::from_le_bytes(self.array()?)),
            VARINT_U32 => u64::from(u32::from_le_bytes(self.array()?)),
            _ => u64::from_le_bytes(self.array()?),
        })
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let value = self.varint(VARINT_U16, "u16")?;
        u16::try_from(value).map_err(|_| format!("{value} is not a u16"))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let value = self.varint(VARINT_U32, "u32")?;
        u32::try_from(value).map_err(|_| format!("{value} is not a u32"))
    }

    fn i64(&mut self) -> Result<i64, Malformed> {
        let zigzag = self.varint(VARINT_U64, "i64")?;
        // Zigzag back: the halved value with the low bit as the sign. The
        // casts reinterpret bits, which is the encoding.
        #[allow(clippy::cast_possible_wrap)]
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    fn bool(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{other} is not a bool")),
        }
    }

    /// The tag of an `Option`: whether a value follows.
    #[inline]
    fn is_some(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{other} is not an option tag")),
        }
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Option<T>, Malformed> {
        if self.is_some()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A length (`usize`).
    fn len(&mut self) -> Result<usize, Malformed> {
        let len = self.varint(VARINT_U64, "length")?;
        usize::try_from(len).map_err(|_| format!("length {len} is too long"))
    }

    fn byte_string(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.len()?;
        self.take(len)
    }

    #[inline]
    fn str(&mut self) -> Result<&'a str, Malformed> {
        let bytes = self.byte_string()?;
        std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
    }

    fn string(&mut self) -> Result<String, Malformed> {
        self.str().map(str::to_owned)
    }

    /// A sequence of `read`'s values.
    fn vec<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Vec<T>, Malformed> {
        let len = self.len()?;
        // Every element takes a byte at least: no more room than the bytes
        // left could fill, whatever the length claims.
        let mut values = Vec::with_capacity(len.min(self.rest.len()));
        for _ in 0..len {
            values.push(read(self)?);
        }
        Ok(values)
    }

    /// An enum's variant index, below `variants`.
    #[inline]
    fn variant(&mut self, variants: u32, enum_name: &str) -> Result<u32, Malformed> {
        let index = self.u32()?;
        if index >= variants {
            return Err(format!(
                "variant index {index} of {enum_name}: expected 0 <= i < {variants}"
            ));
        }
        Ok(index)
    }

    fn uuid(&mut self) -> Result<uuid::Uuid, Malformed> {
        // A UUID in a binary format: a byte string of 16 bytes.
        let bytes = self.byte_string()?;
        uuid::Uuid::from_slice(bytes).map_err(|e| format!("not a UUID: {e}"))
    }

    /// `stockline_domain::time::timestamp_serde`: microseconds.
    fn timestamp(&mut self) -> Result<DateTime<Utc>, Malformed> {
        let micros = self.i64()?;
        DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| format!("timestamp {micros}us is out of range"))
    }

    /// An id: one this thread decoded recently is recognized by its bytes (no
    /// UTF-8 check, no id check: they were checked when it was first decoded);
    /// any other is decoded as text and checked.
    #[inline]
    fn id<T>(
        &mut self,
        recent: fn(&[u8]) -> Option<T>,
        decoded: fn(&str) -> Result<T, IdError>,
    ) -> Result<T, Malformed> {
        let bytes = self.byte_string()?;
        if let Some(id) = recent(bytes) {
            return Ok(id);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        decoded(text).map_err(|e| e.to_string())
    }

    fn price(&mut self) -> Result<Price, Malformed> {
        Ok(Price {
            unit_minor: self.i64()?,
            currency: self.string()?,
        })
    }

    fn event(&mut self) -> Result<Event, Malformed> {
        Ok(Event {
            event_id: self.uuid()?,
            schema_version: self.u16()?,
            occurred_at: self.timestamp()?,
            channel: self.id(ChannelId::recent, ChannelId::decoded)?,
            location: self.option(|r| r.id(LocationId::recent, LocationId::decoded))?,
            sku: self.option(|r| r.id(Sku::recent, Sku::decoded))?,
            document: self.option(|r| {
                Ok(DocumentRef {
                    kind: r.document_kind()?,
                    id: r.id(DocumentId::recent, DocumentId::decoded)?,
                })
            })?,
            reason: self.option(Self::reason)?,
            payload: self.payload()?,
        })
    }

    fn document_kind(&mut self) -> Result<DocumentKind, Malformed> {
        self.unit_variant(&DocumentKind::ALL, "DocumentKind")
    }

    fn reason(&mut self) -> Result<ReasonCode, Malformed> {
        self.unit_variant(&ReasonCode::ALL, "ReasonCode")
    }

    fn stock_state(&mut self) -> Result<StockState, Malformed> {
        self.unit_variant(&StockState::ALL, "StockState")
    }

    /// One of `variants`, listed in declaration order.
    fn unit_variant<T: Copy>(&mut self, variants: &[T], enum_name: &str) -> Result<T, Malformed> {
        let count = u32::try_from(variants.len()).unwrap_or(u32::MAX);
        let index = self.variant(count, enum_name)?;
        usize::try_from(index)
            .ok()
            .and_then(|index| variants.get(index).copied())
            .ok_or_else(|| format!("variant index {index} of {enum_name}"))
    }

    fn payload(&mut self) -> Result<Payload, Malformed> {
        const PAYLOAD_VARIANTS: u32 = 24;
        Ok(match self.variant(PAYLOAD_VARIANTS, "Payload")? {
            0 => Payload::StockReceived {
                quantity: self.i64()?,
                kind: self.unit_variant(&ReceiptKind::ALL, "ReceiptKind")?,
            },
            1 => Payload::StockAdjusted {
                delta: self.i64()?,
                state: self.stock_state()?,
            },
            2 => Payload::StockCounted {
                quantity: self.i64()?,
            },
            3 => Payload::StockStateChanged {
                quantity: self.i64()?,
                from: self.stock_state()?,
                to: self.stock_state()?,
            },
            4 => Payload::TransferShipped {
                to_location: self.id(LocationId::recent, LocationId::decoded)?,
                quantity: self.i64()?,
            },
            5 => Payload::TransferReceived {
                from_location: self.id(LocationId::recent, LocationId::decoded)?,
                quantity: self.i64()?,
            },
            6 => Payload::IncomingExpected {
                quantity: self.i64()?,
                expected_at: self.timestamp()?,
            },
            7 => Payload::IncomingCancelled {},
            8 => Payload::TillSale {
                quantity: self.i64()?,
                price: self.option(Self::price)?,
            },
            9 => Payload::Returned {
                quantity: self.i64()?,
                disposition: self.unit_variant(&ReturnDisposition::ALL, "ReturnDisposition")?,
                sold_by_channel: self.option(|r| r.id(ChannelId::recent, ChannelId::decoded))?,
                original_order: self.option(|r| r.id(OrderId::recent, OrderId::decoded))?,
                price: self.option(Self::price)?,
            },
            10 => Payload::HoldRequested {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
                order_id: self.id(OrderId::recent, OrderId::decoded)?,
                order_line: self.u32()?,
                customer_ref: self.id(CustomerRef::recent, CustomerRef::decoded)?,
                quantity: self.i64()?,
                ttl_seconds: self.u32()?,
                kind: self.unit_variant(&HoldKind::ALL, "HoldKind")?,
                group: self.option(|r| r.id(GroupId::recent, GroupId::decoded))?,
                price: self.option(Self::price)?,
            },
            11 => Payload::HoldConfirmed {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            12 => Payload::HoldReleased {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            13 => Payload::HoldReadyForPickup {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            14 => Payload::HoldCollected {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            15 => Payload::HoldNoShow {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            16 => Payload::HoldShipped {
                hold_id: self.id(HoldId::recent, HoldId::decoded)?,
            },
            17 => Payload::WaitlistJoined {
                customer_ref: self.id(CustomerRef::recent, CustomerRef::decoded)?,
                quantity: self.i64()?,
                group: self.option(|r| r.id(GroupId::recent, GroupId::decoded))?,
            },
            18 => Payload::WaitlistLeft {
                customer_ref: self.id(CustomerRef::recent, CustomerRef::decoded)?,
            },
            19 => Payload::LocationDefined {
                name: self.string()?,
                kind: self.unit_variant(&LocationKind::ALL, "LocationKind")?,
                groups: self.vec(|r| r.id(GroupId::recent, GroupId::decoded))?,
                active: self.bool()?,
            },
            20 => Payload::ChannelDefined {
                channel: self.id(ChannelId::recent, ChannelId::decoded)?,
                locations: self.vec(|r| r.id(LocationId::recent, LocationId::decoded))?,
                groups: self.vec(|r| r.id(GroupId::recent, GroupId::decoded))?,
                buffer: self.i64()?,
            },
            21 => Payload::SafetyStockSet {
                quantity: self.i64()?,
            },
            22 => Payload::AllocationSet {
                channel: self.id(ChannelId::recent, ChannelId::decoded)?,
                quantity: self.i64()?,
            },
            23 => Payload::Tick {},
            other => {
                // `variant` admitted only indexes below PAYLOAD_VARIANTS.
                return Err(format!("variant index {other} of Payload"));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use stockline_domain::{
        ChannelId, CustomerRef, DocumentId, DocumentKind, DocumentRef, Event, GroupId, HoldId,
        HoldKind, LocationId, LocationKind, OrderId, Payload, PayloadKind, Price, ReasonCode,
        ReceiptKind, ReturnDisposition, Sku, StockState,
    };

    use crate::codec::{
        DecodeError, EVENT_FORMAT_VERSION, EVENT_MAGIC, decode_event, decode_event_with_serde,
        encode_event,
    };

    /// Both decoders agree: the same event, or errors of the same code.
    fn assert_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
        let by_hand: Result<Event, DecodeError> = decode_event(bytes);
        let by_serde = decode_event_with_serde(bytes);
        match (&by_hand, &by_serde) {
            (Ok(hand), Ok(serde)) => prop_assert_eq!(hand, serde),
            (Err(hand), Err(serde)) => prop_assert_eq!(hand.code(), serde.code()),
            _ => prop_assert!(
                false,
                "decoders disagree on {:?}: by hand {:?}, by serde {:?}",
                bytes,
                by_hand,
                by_serde
            ),
        }
        Ok(())
    }

    /// Integers across every varint size and sign, the extremes included.
    fn number() -> impl Strategy<Value = i64> {
        prop_oneof![
            -300i64..300,
            any::<i64>(),
            prop::sample::select(vec![
                i64::MIN,
                i64::MAX,
                32_767,
                -32_769,
                65_536,
                2_147_483_648,
                -4_294_967_297,
            ]),
        ]
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof!["[A-Za-z0-9-]{1,12}", "[!-~]{1,128}"]
    }

    /// Everything an event of any kind is built from.
    #[derive(Debug, Clone)]
    struct Seeds {
        kind: usize,
        event_id: u128,
        schema_version: u16,
        micros: [i64; 2],
        numbers: [i64; 2],
        small: [u32; 2],
        ids: [String; 6],
        present: [bool; 8],
        picks: [usize; 4],
        text: String,
        lists: [Vec<String>; 2],
    }

    fn seeds() -> impl Strategy<Value = Seeds> {
        // Timestamps chrono can hold: about 262,000 years either side.
        let micros = -8_000_000_000_000_000_000i64..8_000_000_000_000_000_000;
        (
            (
                0..PayloadKind::ALL.len(),
                any::<u128>(),
                any::<u16>(),
                [micros.clone(), micros],
                [number(), number()],
                [any::<u32>(), any::<u32>()],
            ),
            (
                [id(), id(), id(), id(), id(), id()],
                any::<[bool; 8]>(),
                any::<[usize; 4]>(),
                ".{0,40}",
                [
                    proptest::collection::vec(id(), 0..4).boxed(),
                    // Mostly short; sometimes over 250 (a length's varint marker).
                    prop_oneof![
                        3 => proptest::collection::vec(id(), 0..4),
                        1 => proptest::collection::vec(id(), 0..300),
                    ]
                    .boxed(),
                ],
            ),
        )
            .prop_map(
                |(
                    (kind, event_id, schema_version, micros, numbers, small),
                    (ids, present, picks, text, lists),
                )| Seeds {
                    kind,
                    event_id,
                    schema_version,
                    micros,
                    numbers,
                    small,
                    ids,
                    present,
                    picks,
                    text,
                    lists,
                },
            )
    }

    fn pick<T: Copy>(values: &[T], seed: usize) -> T {
        values[seed % values.len()]
    }

    fn event(seeds: &Seeds) -> Event {
        let Seeds {
            ids,
            present,
            picks,
            numbers,
            small,
            ..
        } = seeds;
        let id = |index: usize| ids[index].clone();
        let timestamp = |index: usize| {
            chrono::DateTime::from_timestamp_micros(seeds.micros[index]).expect("in range")
        };
        let states = StockState::ALL;
        let price = |present: bool| {
            present.then(|| Price {
                unit_minor: numbers[1],
                currency: seeds.text.clone(),
            })
        };
        let kind = PayloadKind::ALL[seeds.kind];
        let payload = match kind {
            PayloadKind::StockReceived => Payload::StockReceived {
                quantity: numbers[0],
                kind: pick(&ReceiptKind::ALL, picks[2]),
            },
            PayloadKind::StockAdjusted => Payload::StockAdjusted {
                delta: numbers[0],
                state: pick(&states, picks[2]),
            },
            PayloadKind::StockCounted => Payload::StockCounted {
                quantity: numbers[0],
            },
            PayloadKind::StockStateChanged => Payload::StockStateChanged {
                quantity: numbers[0],
                from: pick(&states, picks[2]),
                to: pick(&states, picks[3]),
            },
            PayloadKind::TransferShipped => Payload::TransferShipped {
                to_location: LocationId::new(id(3)).expect("valid id"),
                quantity: numbers[0],
            },
            PayloadKind::TransferReceived => Payload::TransferReceived {
                from_location: LocationId::new(id(3)).expect("valid id"),
                quantity: numbers[0],
            },
            PayloadKind::IncomingExpected => Payload::IncomingExpected {
                quantity: numbers[0],
                expected_at: timestamp(1),
            },
            PayloadKind::IncomingCancelled => Payload::IncomingCancelled {},
            PayloadKind::TillSale => Payload::TillSale {
                quantity: numbers[0],
                price: price(present[4]),
            },
            PayloadKind::Returned => Payload::Returned {
                quantity: numbers[0],
                disposition: pick(&ReturnDisposition::ALL, picks[2]),
                sold_by_channel: present[4].then(|| ChannelId::new(id(3)).expect("valid id")),
                original_order: present[5].then(|| OrderId::new(id(4)).expect("valid id")),
                price: price(present[6]),
            },
            PayloadKind::HoldRequested => Payload::HoldRequested {
                hold_id: HoldId::new(id(3)).expect("valid id"),
                order_id: OrderId::new(id(4)).expect("valid id"),
                order_line: small[0],
                customer_ref: CustomerRef::new(id(5)).expect("valid id"),
                quantity: numbers[0],
                ttl_seconds: small[1],
                kind: pick(&HoldKind::ALL, picks[2]),
                group: present[4].then(|| GroupId::new(id(0)).expect("valid id")),
                price: price(present[5]),
            },
            PayloadKind::HoldConfirmed => Payload::HoldConfirmed {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::HoldReleased => Payload::HoldReleased {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::HoldReadyForPickup => Payload::HoldReadyForPickup {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::HoldCollected => Payload::HoldCollected {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::HoldNoShow => Payload::HoldNoShow {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::HoldShipped => Payload::HoldShipped {
                hold_id: HoldId::new(id(3)).expect("valid id"),
            },
            PayloadKind::WaitlistJoined => Payload::WaitlistJoined {
                customer_ref: CustomerRef::new(id(5)).expect("valid id"),
                quantity: numbers[0],
                group: present[4].then(|| GroupId::new(id(0)).expect("valid id")),
            },
            PayloadKind::WaitlistLeft => Payload::WaitlistLeft {
                customer_ref: CustomerRef::new(id(5)).expect("valid id"),
            },
            PayloadKind::LocationDefined => Payload::LocationDefined {
                name: seeds.text.clone(),
                kind: pick(&LocationKind::ALL, picks[2]),
                groups: seeds.lists[1]
                    .iter()
                    .map(|g| GroupId::new(g).expect("valid id"))
                    .collect(),
                active: present[4],
            },
            PayloadKind::ChannelDefined => Payload::ChannelDefined {
                channel: ChannelId::new(id(3)).expect("valid id"),
                locations: seeds.lists[0]
                    .iter()
                    .map(|l| LocationId::new(l).expect("valid id"))
                    .collect(),
                groups: seeds.lists[1]
                    .iter()
                    .map(|g| GroupId::new(g).expect("valid id"))
                    .collect(),
                buffer: numbers[0],
            },
            PayloadKind::SafetyStockSet => Payload::SafetyStockSet {
                quantity: numbers[0],
            },
            PayloadKind::AllocationSet => Payload::AllocationSet {
                channel: ChannelId::new(id(3)).expect("valid id"),
                quantity: numbers[0],
            },
            PayloadKind::Tick => Payload::Tick {},
        };
        Event {
            event_id: uuid::Uuid::from_u128(seeds.event_id),
            schema_version: seeds.schema_version,
            occurred_at: timestamp(0),
            channel: ChannelId::new(id(0)).expect("valid id"),
            location: present[0].then(|| LocationId::new(id(1)).expect("valid id")),
            sku: present[1].then(|| Sku::new(id(2)).expect("valid id")),
            document: present[2].then(|| DocumentRef {
                kind: pick(&DocumentKind::ALL, picks[0]),
                id: DocumentId::new(id(4)).expect("valid id"),
            }),
            reason: present[3].then(|| pick(&ReasonCode::ALL, picks[1])),
            payload,
        }
    }

    /// A change to valid bytes: overwrite, insert or remove one byte, or cut the
    /// end off.
    #[derive(Debug, Clone)]
    enum Mutation {
        Set(usize, u8),
        Insert(usize, u8),
        Remove(usize),
        Truncate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
            any::<usize>().prop_map(Mutation::Remove),
            any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
        // Never the header: both decoders share its checks.
        let body = bytes.len() - 2;
        match *mutation {
            Mutation::Set(at, byte) if body > 0 => bytes[2 + at % body] = byte,
            Mutation::Insert(at, byte) => bytes.insert(2 + at % (body + 1), byte),
            Mutation::Remove(at) if body > 0 => {
                bytes.remove(2 + at % body);
            }
            Mutation::Truncate(at) => bytes.truncate(2 + at % (body + 1)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn any_event_decodes_as_written(seeds in seeds()) {
            let event = event(&seeds);
            let bytes = encode_event(&event).expect("encodes");
            prop_assert_eq!(decode_event(&bytes).expect("decodes"), event);
            assert_agree(&bytes)?;
        }

        #[test]
        fn changed_bytes_decode_as_serde_decodes_them(
            seeds in seeds(),
            mutations in proptest::collection::vec(mutation(), 1..4),
        ) {
            let mut bytes = encode_event(&event(&seeds)).expect("encodes");
            for mutation in &mutations {
                mutate(&mut bytes, mutation);
            }
            assert_agree(&bytes)?;
        }

        #[test]
        fn any_body_decodes_as_serde_decodes_it(
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = vec![EVENT_MAGIC, EVENT_FORMAT_VERSION];
            bytes.extend_from_slice(&body);
            assert_agree(&bytes)?;
        }
    }

    /// Every varint marker, with every length of tail: the integers read as
    /// bincode reads them (the same value and bytes taken, or an error).
    #[test]
    fn integers_decode_as_bincode_decodes_them() {
        fn agree<T: PartialEq + std::fmt::Debug + serde::de::DeserializeOwned>(
            bytes: &[u8],
            by_hand: impl FnOnce(&mut super::Reader<'_>) -> Result<T, super::Malformed>,
        ) {
            let mut reader = super::Reader { rest: bytes };
            let by_hand =
                by_hand(&mut reader).map(|value| (value, bytes.len() - reader.rest.len()));
            let by_bincode =
                bincode::serde::decode_from_slice::<T, _>(bytes, bincode::config::standard());
            match (by_hand, by_bincode) {
                (Ok(hand), Ok(bincode)) => assert_eq!(hand, bincode, "{bytes:?}"),
                (Err(_), Err(_)) => {}
                (hand, bincode) => panic!("{bytes:?}: by hand {hand:?}, by bincode {bincode:?}"),
            }
        }
        for marker in 0..=u8::MAX {
            for tail in [[0u8; 9], [0xFF; 9], [1, 2, 3, 4, 5, 6, 7, 8, 9]] {
                let mut bytes = vec![marker];
                bytes.extend_from_slice(&tail);
                for end in 0..=bytes.len() {
                    let bytes = &bytes[..end];
                    agree::<u16>(bytes, |r| r.u16());
                    agree::<u32>(bytes, |r| r.u32());
                    agree::<i64>(bytes, |r| r.i64());
                    agree::<u64>(bytes, |r| r.len().map(|len| len as u64));
                    agree::<bool>(bytes, |r| r.bool());
                    agree::<Option<u16>>(bytes, |r| r.option(|r| r.u16()));
                }
            }
        }
    }

    /// Bytes of an event changed in turn by the edge-value test.
    const EDGE_BYTES_MAX: usize = 256;

    proptest! {
        // 18 values for each of up to 256 bytes: 9,000 decodes a case.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Tags, markers and lengths are single bytes: each byte of a valid
        /// event set, in turn, to the values where their meaning changes.
        #[test]
        fn every_byte_set_to_edge_values_decodes_as_serde_decodes_it(seeds in seeds()) {
            let bytes = encode_event(&event(&seeds)).expect("encodes");
            // The envelope and the payload's first fields: where every kind's
            // tags and markers are (a long list adds only more of the same).
            for at in 2..bytes.len().min(EDGE_BYTES_MAX) {
                for value in [0u8, 1, 2, 3, 4, 9, 15, 16, 17, 23, 24, 128, 250, 251, 252, 253, 254, 255] {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    assert_agree(&changed)?;
                }
            }
        }
    }

    #[test]
    fn bodies_the_limit_may_refuse_go_through_serde() {
        // A LocationDefined whose groups claim more than serde's limit counts:
        // 200,000 one-byte ids read as 9 bytes each (length and byte).
        let mut event = event(&Seeds {
            kind: 19,
            event_id: 1,
            schema_version: 1,
            micros: [0, 0],
            numbers: [1, 1],
            small: [1, 1],
            ids: ["a", "b", "c", "d", "e", "f"].map(str::to_owned),
            present: [true; 8],
            picks: [0; 4],
            text: "x".to_owned(),
            lists: [Vec::new(), Vec::new()],
        });
        if let Payload::LocationDefined { groups, .. } = &mut event.payload {
            *groups = vec![GroupId::new("g").expect("valid id"); 200_000];
        }
        let bytes = encode_event(&event).expect("encodes");
        let by_hand = decode_event(&bytes).expect_err("over the limit");
        let by_serde = decode_event_with_serde(&bytes).expect_err("over the limit");
        assert_eq!(by_hand, by_serde);
    }
}
