//! Row types the store writes besides the domain's own state types.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stockline_domain::{
    ChannelId, Config, DocumentKind, DocumentRef, EventId, HoldId, LocationId, LogTime, Quantities,
    ReasonCode,
};

/// Per-partition fold state that is not keyed by SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub log_time: LogTime,
    pub config: Config,
}

/// One record exactly as it was consumed: the raw material of rebuilds and replays,
/// which therefore never depend on the broker's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRecord {
    pub offset: u64,
    pub timestamp_ms: i64,
    // `serde_bytes`: one slice rather than a sequence of u8 values; bincode writes
    // the same bytes either way (length, then the bytes), so stores of format 2
    // read and compare unchanged (test below).
    #[serde(with = "serde_bytes")]
    pub key: Option<Vec<u8>>,
    #[serde(with = "serde_bytes")]
    pub payload: Option<Vec<u8>>,
}

/// Consecutive archived records of one partition, starting at a multiple of
/// [`crate::ARCHIVE_CHUNK_RECORDS`] offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveChunk {
    pub records: Vec<ArchivedRecord>,
}

/// An archive chunk built as records arrive: each record encoded once, into
/// one buffer, in exactly the bytes `encode_row(&ArchiveChunk)` gives it (the
/// `archive_chunks_built_as_records_arrive_encode_as_serde_does` proptest pins
/// them). As [`ArchivedRecord`]s, every consumed record was two allocations and
/// copies, then serde's generic encoding at every flush: 4% of the live
/// projector's CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveChunkBuilder {
    records: u64,
    /// The records' fields, one record after the other: the row's bytes after
    /// its header and the chunk's length.
    body: Vec<u8>,
}

impl ArchiveChunkBuilder {
    /// A builder holding `chunk`'s records (a chunk read back, to be continued).
    pub fn from_chunk(chunk: &ArchiveChunk) -> ArchiveChunkBuilder {
        let mut builder = ArchiveChunkBuilder::default();
        for record in &chunk.records {
            builder.push(
                record.offset,
                record.timestamp_ms,
                record.key.as_deref(),
                record.payload.as_deref(),
            );
        }
        builder
    }

    /// Appends one record (the fields of [`ArchivedRecord`], in declaration
    /// order, each as its serde encoding).
    pub fn push(
        &mut self,
        offset: u64,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) {
        let mut row = stockline_wire::RowWriter::fields(&mut self.body);
        row.unsigned(offset)
            .signed(timestamp_ms)
            .option(key, |row, key| {
                row.bytes(key);
            })
            .option(payload, |row, payload| {
                row.bytes(payload);
            });
        self.records += 1;
    }

    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Replaces `out` with the row value of the chunk as it stands.
    pub fn encode_row_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.body.len() + 16);
        // `ArchiveChunk { records }`: the vector's length, then its elements.
        stockline_wire::RowWriter::appending(out).unsigned(self.records);
        out.extend_from_slice(&self.body);
    }
}

/// Event ids applied within one chunk of offsets: the persisted dedupe window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenChunk {
    /// (offset, event id, log time applied), in offset order.
    pub entries: Vec<(u64, EventId, LogTime)>,
}

impl SeenChunk {
    pub fn newest(&self) -> Option<LogTime> {
        self.entries.last().map(|(_, _, t)| *t)
    }
}

/// One change of one stock row: the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub partition: u32,
    pub offset: u64,
    pub log_time: LogTime,
    /// What caused it: an event kind (`till_sale`, `hold_collected`...) or
    /// `hold_expired` when time passed a hold's TTL. Borrowed when written (the
    /// names are static), owned when read back; the same bytes either way.
    pub cause: Cow<'static, str>,
    /// The event, when an event caused it.
    pub event_id: Option<EventId>,
    /// Microseconds in the store (format 3; RFC 3339 text before, formatted
    /// for every row at 2% of a replay's CPU), RFC 3339 in JSON.
    #[serde(with = "stockline_domain::time::optional_timestamp_serde")]
    pub occurred_at: Option<DateTime<Utc>>,
    pub channel: Option<ChannelId>,
    pub reason: Option<ReasonCode>,
    pub document: Option<DocumentRef>,
    /// The hold involved, for hold events and expiries.
    pub hold_id: Option<HoldId>,
    pub location: LocationId,
    pub before: Quantities,
    pub after: Quantities,
}

impl HistoryEntry {
    /// Appends the row value (header included) to `out`: the bytes of
    /// `stockline_wire::encode_row_appending(out, self)`, written field by field
    /// (serde's generic path was 6.4% of a replay's instructions, about 1,700 a
    /// row; this is about 1,000, most of it the timestamp's conversion and the
    /// strings' copies: -2.9% of a replay. The
    /// `history_entries_encode_as_serde_does` proptest pins the bytes).
    /// Fields in declaration order, each as its serde encoding.
    pub fn encode_appending(&self, out: &mut Vec<u8>) {
        let mut row = stockline_wire::RowWriter::appending(out);
        row.unsigned(u64::from(self.partition))
            .unsigned(self.offset)
            .signed(self.log_time.0)
            .str(&self.cause)
            // A UUID in a binary format: its 16 bytes as a byte string.
            .option(self.event_id.as_ref(), |row, id| {
                row.bytes(id.as_bytes());
            })
            // `optional_timestamp_serde`: microseconds.
            .option(self.occurred_at, |row, at| {
                row.signed(at.timestamp_micros());
            })
            .option(self.channel.as_ref(), |row, channel| {
                row.str(channel.as_str());
            })
            .option(self.reason, |row, reason| {
                row.variant(variant_index(&ReasonCode::ALL, &reason));
            })
            .option(self.document.as_ref(), |row, document| {
                row.variant(variant_index(&DocumentKind::ALL, &document.kind))
                    .str(document.id.as_str());
            })
            .option(self.hold_id.as_ref(), |row, hold_id| {
                row.str(hold_id.as_str());
            })
            .str(self.location.as_str());
        for quantities in [&self.before, &self.after] {
            // Destructured, not read field by field: a field added to
            // `Quantities` stops this from compiling instead of going unwritten.
            let Quantities {
                on_hand,
                reserved,
                committed,
                damaged,
                quality_control,
                safety_stock,
                incoming,
                in_transit,
            } = *quantities;
            for value in [
                on_hand,
                reserved,
                committed,
                damaged,
                quality_control,
                safety_stock,
                incoming,
                in_transit,
            ] {
                row.signed(value);
            }
        }
    }
}

/// serde's variant index of a variant of `all` (an enum's `ALL`: its variants
/// in serde's order).
fn variant_index<T: PartialEq>(all: &[T], variant: &T) -> u32 {
    all.iter()
        .position(|listed| listed == variant)
        .and_then(|index| u32::try_from(index).ok())
        .unwrap_or(u32::MAX)
}

/// What the fold said of a record it did not simply apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictRow {
    Rejected {
        event_id: EventId,
        rejection: stockline_domain::Rejection,
    },
    Duplicate {
        event_id: EventId,
    },
}

/// A record that could not be applied, kept locally and published to the
/// dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Stable code (`malformed`, `unsupported_format_version`, `unknown_location`...).
    pub reason_code: String,
    /// Human-readable reason.
    pub reason: String,
    /// The event id, when the record decoded far enough to have one.
    pub event_id: Option<EventId>,
}

/// Something to publish after the batch that decided it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxEntry {
    DeadLetter {
        dead_letter: DeadLetter,
        /// The original record's bytes, so the dead-letter topic is self-contained.
        #[serde(with = "serde_bytes")]
        key: Option<Vec<u8>>,
        #[serde(with = "serde_bytes")]
        payload: Option<Vec<u8>>,
    },
    Notification(Notification),
}

/// A waitlist notification: tell a customer a SKU is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Deterministic: the same waitlist entry always yields the same id.
    pub notification_id: uuid::Uuid,
    pub sku: stockline_domain::Sku,
    pub location: LocationId,
    pub customer_ref: stockline_domain::CustomerRef,
    pub quantity: i64,
    pub available: i64,
    pub log_time: LogTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockline_wire::codec::{decode_row, encode_row};

    /// The rows as they were declared before `serde_bytes`: byte strings as
    /// sequences of u8 values. Stores written then must read, compare and
    /// rebuild byte for byte the same.
    #[derive(Debug, Serialize, Deserialize)]
    struct SequenceRecord {
        offset: u64,
        timestamp_ms: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct SequenceChunk {
        records: Vec<SequenceRecord>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    enum SequenceOutboxEntry {
        DeadLetter {
            dead_letter: DeadLetter,
            key: Option<Vec<u8>>,
            payload: Option<Vec<u8>>,
        },
        #[allow(dead_code)]
        Notification(Notification),
    }

    /// Any integer, with the varint boundaries (250, 251, 2^16, 2^32) and the
    /// extremes often.
    fn quantity() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            -70_000i64..70_000,
            prop::sample::select(vec![
                i64::MIN,
                i64::MAX,
                0,
                -1,
                125,
                -126,
                126,
                32_767,
                -32_768,
                32_768,
                2_147_483_647,
                -2_147_483_648,
                2_147_483_648,
            ]),
        ]
    }

    fn quantities() -> impl Strategy<Value = Quantities> {
        proptest::array::uniform8(quantity()).prop_map(|q| Quantities {
            on_hand: q[0],
            reserved: q[1],
            committed: q[2],
            damaged: q[3],
            quality_control: q[4],
            safety_stock: q[5],
            incoming: q[6],
            in_transit: q[7],
        })
    }

    fn unsigned() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0u64..70_000,
            prop::sample::select(vec![
                250,
                251,
                65_535,
                65_536,
                4_294_967_295,
                4_294_967_296,
                u64::MAX
            ]),
        ]
    }

    fn history_entry() -> impl Strategy<Value = HistoryEntry> {
        let id = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}";
        (
            (
                any::<u32>(),
                unsigned(),
                quantity(),
                "[a-z_]{1,30}",
                proptest::option::of(any::<u128>()),
                proptest::option::of(-62_000_000_000_000_000i64..250_000_000_000_000_000),
            ),
            (
                proptest::option::of(id),
                proptest::option::of(prop::sample::select(ReasonCode::ALL.to_vec())),
                proptest::option::of((prop::sample::select(DocumentKind::ALL.to_vec()), id)),
                proptest::option::of(id),
                id,
                quantities(),
                quantities(),
            ),
        )
            .prop_map(
                |(
                    (partition, offset, log_time, cause, event_id, micros),
                    (channel, reason, document, hold_id, location, before, after),
                )| HistoryEntry {
                    partition,
                    offset,
                    log_time: LogTime(log_time),
                    cause: Cow::Owned(cause),
                    event_id: event_id.map(uuid::Uuid::from_u128),
                    occurred_at: micros.and_then(DateTime::<Utc>::from_timestamp_micros),
                    channel: channel.map(|c| ChannelId::new(c).expect("valid id")),
                    reason,
                    document: document.map(|(kind, id)| DocumentRef {
                        kind,
                        id: stockline_domain::DocumentId::new(id).expect("valid id"),
                    }),
                    hold_id: hold_id.map(|h| HoldId::new(h).expect("valid id")),
                    location: LocationId::new(location).expect("valid id"),
                    before,
                    after,
                },
            )
    }

    fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))
    }

    /// (offset, timestamp, key, payload) of archived records.
    type ArchivedTuple = (u64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

    fn archive_chunk_of(records: &[ArchivedTuple]) -> ArchiveChunk {
        ArchiveChunk {
            records: records
                .iter()
                .map(|(offset, timestamp_ms, key, payload)| ArchivedRecord {
                    offset: *offset,
                    timestamp_ms: *timestamp_ms,
                    key: key.clone(),
                    payload: payload.clone(),
                })
                .collect(),
        }
    }

    proptest! {
        #[test]
        fn byte_strings_encode_as_they_did_as_sequences(
            records in proptest::collection::vec((any::<u64>(), any::<i64>(), bytes(), bytes()), 0..8),
        ) {
            let chunk = archive_chunk_of(&records);
            let sequences = SequenceChunk {
                records: records
                    .into_iter()
                    .map(|(offset, timestamp_ms, key, payload)| SequenceRecord {
                        offset,
                        timestamp_ms,
                        key,
                        payload,
                    })
                    .collect(),
            };
            let written = encode_row(&chunk).expect("encodes");
            prop_assert_eq!(&written, &encode_row(&sequences).expect("encodes"));
            prop_assert_eq!(decode_row::<ArchiveChunk>(&written).expect("decodes"), chunk);
        }

        #[test]
        fn archive_chunks_built_as_records_arrive_encode_as_serde_does(
            records in proptest::collection::vec((any::<u64>(), any::<i64>(), bytes(), bytes()), 0..8),
        ) {
            let chunk = archive_chunk_of(&records);
            let builder = ArchiveChunkBuilder::from_chunk(&chunk);
            prop_assert_eq!(builder.len(), chunk.records.len() as u64);
            prop_assert_eq!(builder.is_empty(), chunk.records.is_empty());
            let mut built = vec![0xFF; 3];
            builder.encode_row_into(&mut built);
            prop_assert_eq!(&built, &encode_row(&chunk).expect("encodes"));
            prop_assert_eq!(decode_row::<ArchiveChunk>(&built).expect("decodes"), chunk);
        }

        #[test]
        fn dead_letters_in_the_outbox_encode_as_they_did(key in bytes(), payload in bytes()) {
            let dead_letter = DeadLetter {
                topic: "events".into(),
                partition: 3,
                offset: 42,
                timestamp_ms: 1_795_420_800_000,
                reason_code: "malformed".into(),
                reason: "not an event".into(),
                event_id: None,
            };
            let entry = OutboxEntry::DeadLetter {
                dead_letter: dead_letter.clone(),
                key: key.clone(),
                payload: payload.clone(),
            };
            let old = SequenceOutboxEntry::DeadLetter { dead_letter, key, payload };
            let written = encode_row(&entry).expect("encodes");
            prop_assert_eq!(&written, &encode_row(&old).expect("encodes"));
            prop_assert_eq!(decode_row::<OutboxEntry>(&written).expect("decodes"), entry);
        }

        #[test]
        fn history_entries_encode_as_serde_does(entry in history_entry()) {
            let mut by_hand = vec![0xEE];
            entry.encode_appending(&mut by_hand);
            let mut by_serde = vec![0xEE];
            stockline_wire::encode_row_appending(&mut by_serde, &entry).expect("encodes");
            prop_assert_eq!(&by_hand, &by_serde);
            prop_assert_eq!(decode_row::<HistoryEntry>(&by_hand[1..]).expect("decodes"), entry);
        }

        #[test]
        fn history_entries_read_back_as_written(
            micros in proptest::option::of(-62_000_000_000_000_000i64..250_000_000_000_000_000),
            cause in "[a-z_]{1,20}",
        ) {
            let entry = HistoryEntry {
                partition: 1,
                offset: 7,
                log_time: LogTime::from_millis(1_795_420_800_000),
                cause: Cow::Owned(cause),
                event_id: None,
                occurred_at: micros.and_then(DateTime::<Utc>::from_timestamp_micros),
                channel: None,
                reason: None,
                document: None,
                hold_id: None,
                location: LocationId::new("store-12").expect("valid id"),
                before: Quantities::default(),
                after: Quantities { on_hand: 3, ..Quantities::default() },
            };
            let written = encode_row(&entry).expect("encodes");
            prop_assert_eq!(decode_row::<HistoryEntry>(&written).expect("decodes"), entry);
        }
    }
}
