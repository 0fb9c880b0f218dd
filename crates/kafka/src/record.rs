//! The records this crate moves: bytes with a key, a partition, an offset,
//! a timestamp and headers. Nothing here knows what the bytes mean.

use std::sync::Arc;

use crate::partitioner::partition_for_key;

/// A record header. Kafka allows a header without a value (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    pub name: String,
    pub value: Option<Vec<u8>>,
}

/// A record to produce.
///
/// The partition is always explicit: use [`OutgoingRecord::keyed`] to place
/// it with Kafka's default partitioner, or [`OutgoingRecord::to_partition`]
/// for records that target one partition on purpose (ticks, broadcasts).
/// The timestamp is always the caller's: it becomes the record's CreateTime,
/// which is the log time the fold uses (topics must keep the default
/// `message.timestamp.type=CreateTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub headers: Vec<RecordHeader>,
}

impl OutgoingRecord {
    /// A keyed record on the partition Kafka's Java default partitioner picks
    /// for `key` among `partition_count` partitions.
    #[must_use]
    pub fn keyed(
        topic: impl Into<Arc<str>>,
        key: impl Into<Vec<u8>>,
        partition_count: u32,
        payload: impl Into<Vec<u8>>,
        timestamp_ms: i64,
    ) -> Self {
        let key = key.into();
        // A partition below `partition_count` fits in i32 whenever the count
        // does; an absurd count yields an invalid partition that the broker
        // rejects (BadInput) instead of a panic here.
        let partition = i32::try_from(partition_for_key(&key, partition_count)).unwrap_or(-1);
        Self {
            topic: topic.into(),
            partition,
            key: Some(key),
            payload: payload.into(),
            timestamp_ms,
            headers: Vec::new(),
        }
    }

    /// A record for one given partition.
    #[must_use]
    pub fn to_partition(
        topic: impl Into<Arc<str>>,
        partition: i32,
        key: Option<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
        timestamp_ms: i64,
    ) -> Self {
        Self {
            topic: topic.into(),
            partition,
            key,
            payload: payload.into(),
            timestamp_ms,
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(RecordHeader {
            name: name.into(),
            value: Some(value.into()),
        });
        self
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordPosition {
    pub partition: i32,
    pub offset: i64,
}

/// Which clock a consumed record's timestamp comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampKind {
    /// Set by the producer (Stockline always sets it).
    CreateTime,
    /// Overwritten by the broker (topic configured with LogAppendTime).
    LogAppendTime,
}

/// A record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch; `None` if the record has none.
    pub timestamp_ms: Option<i64>,
    pub timestamp_kind: Option<TimestampKind>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<RecordHeader>,
}

impl ConsumedRecord {
    /// The offset to store as "next position" once this record is applied.
    #[must_use]
    pub fn next_offset(&self) -> i64 {
        self.offset.saturating_add(1)
    }

    /// The value of the first header named `name`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
    }
}

/// Copies a message owned by librdkafka into a [`ConsumedRecord`], reusing
/// the previous record's topic allocation when the topic is the same; its
/// headers only if `with_headers`.
pub(crate) fn from_message<M: rdkafka::Message>(
    message: &M,
    topic_cache: &mut Option<Arc<str>>,
    with_headers: bool,
) -> ConsumedRecord {
    use rdkafka::message::Headers;

    let topic = match topic_cache {
        Some(t) if &**t == message.topic() => Arc::clone(t),
        _ => {
            let t: Arc<str> = Arc::from(message.topic());
            *topic_cache = Some(Arc::clone(&t));
            t
        }
    };
    let (timestamp_ms, timestamp_kind) = match message.timestamp() {
        rdkafka::Timestamp::NotAvailable => (None, None),
        rdkafka::Timestamp::CreateTime(ms) => (Some(ms), Some(TimestampKind::CreateTime)),
        rdkafka::Timestamp::LogAppendTime(ms) => (Some(ms), Some(TimestampKind::LogAppendTime)),
    };
    let headers = with_headers
        .then(|| message.headers())
        .flatten()
        .map(|hs| {
            hs.iter()
                .map(|h| RecordHeader {
                    name: h.key.to_owned(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic,
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms,
        timestamp_kind,
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_records_use_the_java_partitioner() {
        let r = OutgoingRecord::keyed("t", "21", 8, "p", 1);
        assert_eq!(r.partition, 4);
        assert_eq!(r.key.as_deref(), Some(&b"21"[..]));
        let r = r.with_header("h", "v");
        assert_eq!(r.headers.len(), 1);
    }
}
