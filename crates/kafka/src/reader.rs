//! Reading fixed offset ranges without a consumer group, for rebuilds and
//! replays: "everything from offset 0 up to the high watermarks of now".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::brokers::Brokers;
use crate::config::KafkaSettings;
use crate::consumer::{
    ConsumeError, PartitionWatermarks, PositionProblem, StartPositions, consumer_reserved,
    fetch_tuning, high_watermarks_of,
};
use crate::record::{ConsumedRecord, from_message};
use crate::tansu::unique_name;

/// Offsets `[from_offset, until_offset)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: i32,
    pub from_offset: i64,
    /// Exclusive.
    pub until_offset: i64,
}

/// Reads fixed offset ranges of one topic through a manual assignment (no
/// group membership, no commits), then stops.
///
/// A range that starts below the log start is refused
/// ([`PositionProblem::BelowLogStart`]): a rebuild must see every record or
/// fail, never skip. Blocking: run it on a dedicated thread.
pub struct RangeReader {
    consumer: BaseConsumer<DefaultConsumerContext>,
    /// Partitions not finished yet, with their exclusive end offset.
    open: BTreeMap<i32, i64>,
    topic: Arc<str>,
    topic_cache: Option<Arc<str>>,
}

impl std::fmt::Debug for RangeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeReader")
            .field("topic", &self.topic)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl RangeReader {
    /// Reads `ranges` of `topic`.
    ///
    /// # Errors
    /// [`ConsumeError::Position`] when a range starts below the log start or
    /// ends beyond the high watermark; [`ConsumeError::BadInput`] for an
    /// inverted range; others when the cluster cannot be reached.
    pub fn open(
        brokers: &Brokers,
        settings: &KafkaSettings,
        topic: &str,
        ranges: &[PartitionRange],
    ) -> Result<Self, ConsumeError> {
        let (consumer, config) = reader_consumer(brokers, settings)?;
        let timeout = Duration::from_millis(settings.request_timeout_ms);
        let verify = settings
            .verify_high_watermarks_by_reading
            .then_some(&config);
        let watermarks = high_watermarks_of(&consumer, topic, timeout, verify)?;
        Self::start(
            consumer,
            topic,
            ranges,
            &watermarks_by_partition(&watermarks),
        )
    }

    /// Reads every partition of `topic` from `start` (`None`: offset 0) up
    /// to the high watermarks as they are now. Records produced after this
    /// call are not read.
    ///
    /// # Errors
    /// As [`RangeReader::open`].
    pub fn to_high_watermarks(
        brokers: &Brokers,
        settings: &KafkaSettings,
        topic: &str,
        start: &dyn StartPositions,
    ) -> Result<Self, ConsumeError> {
        let (consumer, config) = reader_consumer(brokers, settings)?;
        let timeout = Duration::from_millis(settings.request_timeout_ms);
        let verify = settings
            .verify_high_watermarks_by_reading
            .then_some(&config);
        let watermarks = high_watermarks_of(&consumer, topic, timeout, verify)?;
        let ranges: Vec<PartitionRange> = watermarks
            .iter()
            .map(|w| PartitionRange {
                partition: w.partition,
                from_offset: start.next_offset(topic, w.partition).unwrap_or(0),
                until_offset: w.high_watermark,
            })
            .collect();
        Self::start(
            consumer,
            topic,
            &ranges,
            &watermarks_by_partition(&watermarks),
        )
    }

    fn start(
        consumer: BaseConsumer<DefaultConsumerContext>,
        topic: &str,
        ranges: &[PartitionRange],
        watermarks: &BTreeMap<i32, (i64, i64)>,
    ) -> Result<Self, ConsumeError> {
        let mut problems = Vec::new();
        let mut tpl = TopicPartitionList::with_capacity(ranges.len());
        let mut open = BTreeMap::new();
        for range in ranges {
            if range.from_offset < 0 || range.from_offset > range.until_offset {
                return Err(ConsumeError::BadInput {
                    reason: format!(
                        "{topic}/{}: invalid range {}..{}",
                        range.partition, range.from_offset, range.until_offset
                    ),
                    code: None,
                });
            }
            let Some(&(log_start, high)) = watermarks.get(&range.partition) else {
                return Err(ConsumeError::BadInput {
                    reason: format!("{topic}/{}: no such partition", range.partition),
                    code: None,
                });
            };
            if range.from_offset == range.until_offset {
                continue;
            }
            if range.from_offset < log_start {
                problems.push(PositionProblem::BelowLogStart {
                    topic: topic.to_owned(),
                    partition: range.partition,
                    next_offset: range.from_offset,
                    log_start,
                });
            } else if range.until_offset > high {
                problems.push(PositionProblem::BeyondHighWatermark {
                    topic: topic.to_owned(),
                    partition: range.partition,
                    next_offset: range.until_offset,
                    high_watermark: high,
                });
            }
            tpl.add_partition_offset(topic, range.partition, Offset::Offset(range.from_offset))
                .map_err(|e| ConsumeError::from_kafka(&e, "invalid range"))?;
            open.insert(range.partition, range.until_offset);
        }
        if !problems.is_empty() {
            return Err(ConsumeError::Position(problems));
        }
        if !open.is_empty() {
            consumer
                .assign(&tpl)
                .map_err(|e| ConsumeError::from_kafka(&e, "assign"))?;
        }
        Ok(Self {
            consumer,
            open,
            topic: Arc::from(topic),
            topic_cache: None,
        })
    }

    /// Whether every range has been read to its end.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.open.is_empty()
    }

    /// Up to `max_records` records, waiting at most `max_wait_ms`. Empty
    /// when done.
    ///
    /// # Errors
    /// [`ConsumeError`] from librdkafka (an `OffsetOutOfRange` means the log
    /// was truncated while reading).
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_wait_ms: u64,
    ) -> Result<Vec<ConsumedRecord>, ConsumeError> {
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(max_wait_ms);
        while !self.open.is_empty() && records.len() < max_records {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(remaining) {
                Some(Ok(message)) => {
                    let record = from_message(&message, &mut self.topic_cache, true);
                    if let Some(&until) = self.open.get(&record.partition) {
                        if record.offset < until {
                            if record.next_offset() >= until {
                                self.finish(record.partition);
                            }
                            records.push(record);
                        } else {
                            // Past the end (a gap hid the last offset).
                            self.finish(record.partition);
                        }
                    }
                }
                Some(Err(error)) => {
                    let error = ConsumeError::from_kafka(&error, "read range");
                    if records.is_empty() {
                        return Err(error);
                    }
                    tracing::warn!(%error, "range read error after a partial batch");
                    break;
                }
                None => self.finish_by_position(),
            }
            if remaining.is_zero() {
                break;
            }
        }
        Ok(records)
    }

    /// Marks partitions whose fetch position passed their end as done: the
    /// last offsets of a range can be control records or compacted away, so
    /// the record at `until - 1` may never arrive.
    fn finish_by_position(&mut self) {
        let Ok(position) = self.consumer.position() else {
            return;
        };
        let done: Vec<i32> = position
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|e| {
                let until = self.open.get(&e.partition())?;
                match e.offset() {
                    Offset::Offset(pos) if pos >= *until => Some(e.partition()),
                    _ => None,
                }
            })
            .collect();
        for partition in done {
            self.finish(partition);
        }
    }

    fn finish(&mut self, partition: i32) {
        self.open.remove(&partition);
        // Stop prefetching what nobody will read.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        if let Err(error) = self.consumer.pause(&tpl) {
            tracing::debug!(%error, partition, "cannot pause finished partition");
        }
    }
}

/// Reads every record of `topic` from offset 0 up to the current high
/// watermarks, in partition order within each partition, at most
/// `max_total_records` of them.
///
/// # Errors
/// [`ConsumeError::Position`] if the log no longer starts at 0,
/// [`ConsumeError::BadInput`] when the topic holds more than
/// `max_total_records`, [`ConsumeError::Retriable`] if no record arrives for
/// `max_idle_ms` while ranges are unfinished.
pub fn read_all(
    brokers: &Brokers,
    settings: &KafkaSettings,
    topic: &str,
    max_total_records: usize,
    max_idle_ms: u64,
) -> Result<Vec<ConsumedRecord>, ConsumeError> {
    struct FromZero;
    impl StartPositions for FromZero {
        fn next_offset(&self, _topic: &str, _partition: i32) -> Option<i64> {
            Some(0)
        }
    }
    let mut reader = RangeReader::to_high_watermarks(brokers, settings, topic, &FromZero)?;
    let mut out = Vec::new();
    let mut last_progress = Instant::now();
    while !reader.is_done() {
        let batch = reader.next_batch(10_000, 100)?;
        if batch.is_empty() {
            if last_progress.elapsed() >= Duration::from_millis(max_idle_ms) {
                return Err(ConsumeError::Retriable {
                    reason: format!(
                        "no record for {max_idle_ms} ms while reading `{topic}` ({:?} open)",
                        reader.open
                    ),
                    code: None,
                });
            }
            continue;
        }
        last_progress = Instant::now();
        if out.len() + batch.len() > max_total_records {
            return Err(ConsumeError::BadInput {
                reason: format!("topic `{topic}` holds more than {max_total_records} records"),
                code: None,
            });
        }
        out.extend(batch);
    }
    Ok(out)
}

fn reader_consumer(
    brokers: &Brokers,
    settings: &KafkaSettings,
) -> Result<(BaseConsumer<DefaultConsumerContext>, ClientConfig), ConsumeError> {
    // librdkafka only assigns partitions through a consumer-group handle, so
    // the reader needs a group id; it never joins (no subscribe) and never
    // commits.
    let group_id = unique_name("stockline-reader");
    let config = settings
        .client_config(
            brokers.bootstrap_servers(),
            "reader",
            &fetch_tuning(settings.fetch_wait_ms(brokers)),
            &consumer_reserved(&group_id, false),
        )
        .map_err(|e| ConsumeError::BadInput {
            reason: e.to_string(),
            code: None,
        })?;
    let consumer = config
        .create()
        .map_err(|e| ConsumeError::from_kafka(&e, "cannot create reader"))?;
    Ok((consumer, config))
}

fn watermarks_by_partition(watermarks: &[PartitionWatermarks]) -> BTreeMap<i32, (i64, i64)> {
    watermarks
        .iter()
        .map(|w| (w.partition, (w.log_start, w.high_watermark)))
        .collect()
}

/// Log start and high watermark of every partition of `topic` now, through a
/// short-lived client (no group membership), for replay tools and lag
/// reports. Blocking, bounded by `settings.request_timeout_ms` (plus a 500 ms
/// tail read when `verify_high_watermarks_by_reading` is set).
///
/// # Errors
/// [`ConsumeError`] if the client cannot be created or the cluster answer.
pub fn topic_watermarks(
    brokers: &Brokers,
    settings: &KafkaSettings,
    topic: &str,
) -> Result<Vec<PartitionWatermarks>, ConsumeError> {
    let (consumer, config) = reader_consumer(brokers, settings)?;
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    let verify = settings
        .verify_high_watermarks_by_reading
        .then_some(&config);
    high_watermarks_of(&consumer, topic, timeout, verify)
}
