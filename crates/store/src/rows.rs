//! Row types the store writes besides the domain's own state types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stockline_domain::{
    ChannelId, Config, DocumentRef, EventId, HoldId, LocationId, LogTime, Quantities, ReasonCode,
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
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Consecutive archived records of one partition, starting at a multiple of
/// [`crate::ARCHIVE_CHUNK_RECORDS`] offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveChunk {
    pub records: Vec<ArchivedRecord>,
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
    /// `hold_expired` when time passed a hold's TTL.
    pub cause: String,
    /// The event, when an event caused it.
    pub event_id: Option<EventId>,
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
        key: Option<Vec<u8>>,
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
