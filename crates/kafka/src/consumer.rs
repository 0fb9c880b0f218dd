//! A group consumer whose start positions come from the caller's own store.
//!
//! Stockline keeps its consumer positions in RocksDB, in the same atomic
//! batch as the read models. The group's committed offsets are therefore
//! only for lag monitoring: on every assignment, the rebalance callback asks
//! the caller's [`StartPositions`] where each partition resumes, assigns with
//! those explicit offsets (exactly once, eager or cooperative), and checks
//! them against the partition's watermarks so a position the log no longer
//! holds is reported, never skipped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::DefaultConsumerContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use thiserror::Error;

use crate::brokers::Brokers;
use crate::config::{KafkaSettings, Reserved};
use crate::error::{ErrorKind, classify};
use crate::record::{ConsumedRecord, from_message};
use crate::tansu::unique_name;

/// Where each partition resumes, from the caller's own store.
///
/// Called inside the rebalance callback on the polling thread: keep it quick
/// (a RocksDB point read is fine).
pub trait StartPositions: Send + Sync {
    /// The next offset to read (last applied offset + 1), or `None` if this
    /// partition was never consumed, which starts at the log's beginning.
    /// That beginning is above 0 once retention (or the embedded broker's
    /// window) removed records: [`AssignedPartition::watermarks`] shows it,
    /// and a caller that needs the full history should answer `Some(0)`,
    /// which is then reported as [`PositionProblem::BelowLogStart`].
    fn next_offset(&self, topic: &str, partition: i32) -> Option<i64>;
}

/// Starts every partition at the beginning of the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromBeginning;

impl StartPositions for FromBeginning {
    fn next_offset(&self, _topic: &str, _partition: i32) -> Option<i64> {
        None
    }
}

/// A stored position the log cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionProblem {
    /// The records before `log_start` are gone (retention, or the embedded
    /// broker's 5 MiB window): resuming would silently skip records.
    BelowLogStart {
        topic: String,
        partition: i32,
        next_offset: i64,
        log_start: i64,
    },
    /// The stored position is ahead of the log's end: the broker lost records
    /// this consumer already applied (a new or wiped cluster, an unclean
    /// leader election), or the store belongs to another cluster.
    BeyondHighWatermark {
        topic: String,
        partition: i32,
        next_offset: i64,
        high_watermark: i64,
    },
    /// The store returned a negative offset.
    Invalid {
        topic: String,
        partition: i32,
        next_offset: i64,
    },
}

impl PositionProblem {
    /// The `(topic, partition)` concerned.
    #[must_use]
    pub fn partition(&self) -> (&str, i32) {
        match self {
            Self::BelowLogStart {
                topic, partition, ..
            }
            | Self::BeyondHighWatermark {
                topic, partition, ..
            }
            | Self::Invalid {
                topic, partition, ..
            } => (topic, *partition),
        }
    }
}

impl fmt::Display for PositionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BelowLogStart {
                topic,
                partition,
                next_offset,
                log_start,
            } => write!(
                f,
                "{topic}/{partition}: stored offset {next_offset} is below the log start \
                 {log_start} (records {next_offset}..{log_start} are gone)"
            ),
            Self::BeyondHighWatermark {
                topic,
                partition,
                next_offset,
                high_watermark,
            } => write!(
                f,
                "{topic}/{partition}: stored offset {next_offset} is beyond the high watermark \
                 {high_watermark} (the broker lost its log, or this store belongs to another \
                 cluster)"
            ),
            Self::Invalid {
                topic,
                partition,
                next_offset,
            } => write!(
                f,
                "{topic}/{partition}: stored offset {next_offset} is negative"
            ),
        }
    }
}

/// One partition handed to this consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedPartition {
    pub topic: String,
    pub partition: i32,
    /// The offset the caller's store gave (`None`: from the beginning).
    pub stored_next_offset: Option<i64>,
    /// `(log start, high watermark)` at assignment, if the broker answered.
    pub watermarks: Option<(i64, i64)>,
    /// Set when the stored position cannot be served; the partition is then
    /// paused and [`PartitionConsumer::poll_batch`] returns
    /// [`ConsumeError::Position`] on its next call.
    pub problem: Option<PositionProblem>,
}

/// A change of this consumer's partitions, observed during a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    Assigned(Vec<AssignedPartition>),
    /// These partitions belong to someone else from now on: records of them
    /// not yet persisted must be dropped (the new owner resumes from its own
    /// stored positions). `lost` means they were taken away without a clean
    /// revoke (session timeout): another consumer may already be processing
    /// them.
    Revoked {
        partitions: Vec<(String, i32)>,
        lost: bool,
    },
    /// librdkafka reported a rebalance error; the consumer unassigned
    /// everything and will rejoin the group.
    Failed {
        code: RDKafkaErrorCode,
    },
}

/// The outcome of one [`PartitionConsumer::poll_batch`].
///
/// A batch ends at the first assignment change, so `changes` always happened
/// after every record of `records`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumedBatch {
    pub records: Vec<ConsumedRecord>,
    pub changes: Vec<AssignmentChange>,
}

impl ConsumedBatch {
    /// Partitions revoked (or lost) by the changes of this batch.
    #[must_use]
    pub fn revoked(&self) -> Vec<(String, i32)> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                AssignmentChange::Revoked { partitions, .. } => Some(partitions.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// A record lent by [`PartitionConsumer::poll_each`]: borrowed from
/// librdkafka's buffers, valid while the visitor runs. Without headers (the
/// projector does not read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowedRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch; `None` if the record has none.
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

impl<'a> BorrowedRecord<'a> {
    fn of(message: &'a rdkafka::message::BorrowedMessage<'_>) -> BorrowedRecord<'a> {
        use rdkafka::Message;
        BorrowedRecord {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key(),
            payload: message.payload(),
        }
    }
}

/// What one [`PartitionConsumer::poll_each`] saw.
///
/// The changes happened after every record visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolledBatch {
    /// Records visited.
    pub records: usize,
    pub changes: Vec<AssignmentChange>,
}

/// A consumer failure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConsumeError {
    /// Stored positions the log cannot serve (the partitions are paused).
    #[error("stored consumer positions cannot be served: {}", join_problems(.0))]
    Position(Vec<PositionProblem>),
    /// librdkafka could not fetch from a partition's position and
    /// `auto.offset.reset=error` refused to skip (librdkafka does not say
    /// which partition; the watermark check at assignment usually has).
    #[error(
        "a partition's position is out of the log's range (auto.offset.reset=error refused \
         to skip): {reason}"
    )]
    OffsetOutOfRange { reason: String },
    /// `store_positions` for partitions this consumer no longer owns
    /// (expected right after a revoke).
    #[error("cannot store positions: {reason}")]
    NotAssigned { reason: String },
    #[error("retriable consumer failure: {reason}")]
    Retriable {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
    #[error("fatal consumer failure: {reason}")]
    Fatal {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
    #[error("invalid consumer request: {reason}")]
    BadInput {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
}

fn join_problems(problems: &[PositionProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConsumeError {
    /// How a caller should react. Position problems are fatal: retrying does
    /// not bring lost records back; an operator decides (rebuild, reset).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Position(_) | Self::OffsetOutOfRange { .. } | Self::Fatal { .. } => {
                ErrorKind::Fatal
            }
            Self::NotAssigned { .. } | Self::Retriable { .. } => ErrorKind::Retriable,
            Self::BadInput { .. } => ErrorKind::BadInput,
        }
    }

    /// Whether calling again may succeed.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        self.kind() == ErrorKind::Retriable
    }

    pub(crate) fn from_kafka(error: &KafkaError, context: &str) -> Self {
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::AutoOffsetReset) {
            return Self::OffsetOutOfRange {
                reason: format!("{context}: {error}"),
            };
        }
        let reason = format!("{context}: {error}");
        if matches!(
            code,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ) {
            // For a subscriber this is "not (yet) in the metadata": a topic
            // just created, or metadata propagating; librdkafka keeps
            // retrying and picks the topic up when it appears.
            return Self::Retriable { reason, code };
        }
        match classify(error) {
            ErrorKind::Retriable => Self::Retriable { reason, code },
            ErrorKind::Fatal => Self::Fatal { reason, code },
            ErrorKind::BadInput => Self::BadInput { reason, code },
        }
    }

    fn from_config(error: &crate::config::ConfigError) -> Self {
        Self::BadInput {
            reason: error.to_string(),
            code: None,
        }
    }
}

/// Watermarks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionWatermarks {
    pub partition: i32,
    /// Offset of the first record still in the log.
    pub log_start: i64,
    /// Offset the next record will get.
    pub high_watermark: i64,
}

/// Rebalance handling, called by librdkafka inside `poll`.
pub(crate) struct RebalanceContext {
    start_positions: Arc<dyn StartPositions>,
    request_timeout: Duration,
    // Configuration for short-lived readers that confirm a suspicious
    // high watermark (group id replaced per use).
    probe_config: ClientConfig,
    verify_high_watermarks: bool,
    // Drained by every `poll_batch`; a poll serves at most one rebalance
    // before returning, so this holds a handful of entries at most.
    changes: Mutex<VecDeque<AssignmentChange>>,
}

impl RebalanceContext {
    fn push(&self, change: AssignmentChange) {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(change);
    }

    fn has_changes(&self) -> bool {
        !self
            .changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    fn drain(&self) -> Vec<AssignmentChange> {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }

    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        // First pass: start offsets from the store, watermarks from the
        // broker (ListOffsets).
        let mut entries = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let stored = self.start_positions.next_offset(&topic, partition);
            // Explicit offsets only: `Stored` would resume from the group's
            // commits, which are for monitoring, not the truth.
            let offset = match stored {
                Some(next) if next >= 0 => Offset::Offset(next),
                _ => Offset::Beginning,
            };
            if let Err(error) = tpl.set_partition_offset(&topic, partition, offset) {
                tracing::error!(%topic, partition, %error, "cannot set start offset");
            }
            let watermarks = consumer
                .fetch_watermarks(&topic, partition, self.request_timeout)
                .map_err(|error| {
                    tracing::warn!(%topic, partition, %error,
                        "cannot read watermarks at assignment; relying on auto.offset.reset=error");
                })
                .ok();
            entries.push((topic, partition, stored, watermarks));
        }

        // Second pass: confirm high watermarks by reading the tails, for
        // every partition on brokers whose ListOffsets is only a lower bound
        // (tansu 0.6), and otherwise only where a stored position looks
        // beyond the end (rare on Kafka: a real problem, worth 500 ms).
        let mut to_confirm: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
        for (topic, partition, stored, watermarks) in &entries {
            if let Some((_, claimed_high)) = watermarks
                && (self.verify_high_watermarks || stored.is_some_and(|next| next > *claimed_high))
            {
                to_confirm
                    .entry(topic.clone())
                    .or_default()
                    .push((*partition, *claimed_high));
            }
        }
        let mut confirmed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (topic, claimed) in &to_confirm {
            if let Some(ends) =
                scan_end_offsets(&self.probe_config, topic, claimed, self.request_timeout)
            {
                for (partition, end) in ends {
                    confirmed.insert((topic.clone(), partition), end);
                }
            }
        }

        let mut assigned = Vec::with_capacity(entries.len());
        let mut to_pause = TopicPartitionList::new();
        for (topic, partition, stored, mut watermarks) in entries {
            if let (Some((low, claimed_high)), Some(&end)) =
                (watermarks, confirmed.get(&(topic.clone(), partition)))
                && end > claimed_high
            {
                tracing::debug!(%topic, partition, claimed_high, end,
                    "broker's ListOffsets understated the high watermark; using the end found by reading");
                watermarks = Some((low, end));
            }
            let problem = match (stored, watermarks) {
                (Some(next), _) if next < 0 => Some(PositionProblem::Invalid {
                    topic: topic.clone(),
                    partition,
                    next_offset: next,
                }),
                (Some(next), Some((low, _))) if next < low => {
                    Some(PositionProblem::BelowLogStart {
                        topic: topic.clone(),
                        partition,
                        next_offset: next,
                        log_start: low,
                    })
                }
                (Some(next), Some((_, high))) if next > high => {
                    Some(PositionProblem::BeyondHighWatermark {
                        topic: topic.clone(),
                        partition,
                        next_offset: next,
                        high_watermark: high,
                    })
                }
                _ => None,
            };
            if let Some(problem) = &problem {
                tracing::error!(%problem, "stored consumer position cannot be served");
                to_pause.add_partition(&topic, partition);
            }
            assigned.push(AssignedPartition {
                topic,
                partition,
                stored_next_offset: stored,
                watermarks,
                problem,
            });
        }

        // Exactly one assign call per callback, as librdkafka requires.
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(error) = result {
            tracing::error!(%error, "assigning partitions failed");
            self.push(AssignmentChange::Failed {
                code: error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
            });
            return;
        }
        // Pausing keeps the fetcher from raising an anonymous
        // AutoOffsetReset error for a partition already reported by name.
        if to_pause.count() > 0
            && let Err(error) = consumer.pause(&to_pause)
        {
            tracing::warn!(%error, "cannot pause partitions with bad positions");
        }
        // The cooperative protocol ends a round with an empty incremental
        // assignment: nothing changed for this member, nothing to report.
        if !assigned.is_empty() {
            self.push(AssignmentChange::Assigned(assigned));
        }
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let lost = consumer.assignment_lost();
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(error) = result {
            tracing::error!(%error, "unassigning partitions failed");
        }
        self.push(AssignmentChange::Revoked { partitions, lost });
    }
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    // Overridden as a whole (not pre/post_rebalance): the default implementation
    // assigns the list it was given, which would assign twice.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(consumer, tpl),
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::error!(%code, "rebalance error; unassigning");
                // librdkafka's contract: on a rebalance error, drop the
                // current assignment; the group protocol recovers.
                let result = match consumer.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
                    _ => consumer.unassign(),
                };
                if let Err(error) = result {
                    tracing::error!(%error, "unassign after rebalance error failed");
                }
                self.push(AssignmentChange::Failed { code });
            }
        }
    }
}

/// Consumer tuning shared by the group consumer, its watermark probe and the
/// range reader. `properties` can still override each of these.
pub(crate) fn fetch_tuning(fetch_wait_max_ms: u64) -> [(&'static str, String); 6] {
    [
        // Return a fetch as soon as anything is there (the wait:
        // `KafkaSettings::fetch_wait_ms`).
        ("fetch.wait.max.ms", fetch_wait_max_ms.to_string()),
        ("fetch.min.bytes", "1".to_owned()),
        // Larger per-partition fetches (default 1 MiB) cut round trips
        // while catching up on a backlog of small records.
        ("max.partition.fetch.bytes", (4 * 1024 * 1024).to_string()),
        // Prefetch up to 100k records or 64 MiB in the local queue, so a
        // batch is served from memory while the next one is fetched...
        ("queued.min.messages", "100000".to_owned()),
        ("queued.max.messages.kbytes", (64 * 1024).to_string()),
        // ...and when that queue was full, resume fetching 10 ms after it
        // drains instead of librdkafka's default 1 s back-off, which
        // otherwise caps throughput at one queue-full per second.
        ("fetch.queue.backoff.ms", "10".to_owned()),
    ]
}

/// Properties the consumers rely on.
pub(crate) fn consumer_reserved(group_id: &str, auto_commit: bool) -> [Reserved<'_>; 6] {
    [
        Reserved {
            key: "group.id",
            value: group_id,
            why: "each component names its own consumer group",
        },
        Reserved {
            key: "auto.offset.reset",
            value: "error",
            why: "a position outside the log must be reported, never skipped silently",
        },
        Reserved {
            key: "enable.auto.offset.store",
            value: "false",
            why: "only positions persisted with the read models may be committed",
        },
        Reserved {
            key: "enable.auto.commit",
            value: if auto_commit { "true" } else { "false" },
            why: "group commits serve lag monitoring only",
        },
        Reserved {
            key: "allow.auto.create.topics",
            value: "false",
            why: "topics are created by ensure_topics with Stockline's partition count",
        },
        Reserved {
            key: "enable.partition.eof",
            value: "false",
            why: "the end of a partition is not an event for Stockline's consumers",
        },
    ]
}

/// A group member that starts each assigned partition where the caller's
/// store says, and reads records in batches.
///
/// Blocking: run it on a dedicated thread. Positions are only committed to
/// the group (for lag monitoring) after [`PartitionConsumer::store_positions`].
pub struct PartitionConsumer {
    consumer: BaseConsumer<RebalanceContext>,
    pending_error: Option<ConsumeError>,
    request_timeout: Duration,
    verify_high_watermarks: bool,
    topic_cache: Option<Arc<str>>,
    /// Whether records carry their headers (see [`PartitionConsumer::without_headers`]).
    read_headers: bool,
}

impl fmt::Debug for PartitionConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionConsumer")
            .field("pending_error", &self.pending_error)
            .finish_non_exhaustive()
    }
}

impl PartitionConsumer {
    /// Joins `group_id` and subscribes to `topics`. Assignment happens during
    /// the following polls.
    ///
    /// # Errors
    /// [`ConsumeError::BadInput`] for settings that conflict with the
    /// consumer's needs, [`ConsumeError::Fatal`] if librdkafka refuses to
    /// create the client or subscribe.
    pub fn subscribe(
        brokers: &Brokers,
        settings: &KafkaSettings,
        group_id: &str,
        topics: &[&str],
        start_positions: Arc<dyn StartPositions>,
    ) -> Result<Self, ConsumeError> {
        if group_id.is_empty() || topics.is_empty() {
            return Err(ConsumeError::BadInput {
                reason: "a group id and at least one topic are required".to_owned(),
                code: None,
            });
        }
        let tuning = fetch_tuning(settings.fetch_wait_ms(brokers));
        let config = settings
            .client_config(
                brokers.bootstrap_servers(),
                group_id,
                &tuning,
                &consumer_reserved(group_id, true),
            )
            .map_err(|e| ConsumeError::from_config(&e))?;
        let request_timeout = Duration::from_millis(settings.request_timeout_ms);
        let probe_group = unique_name("stockline-probe");
        let probe_config = settings
            .client_config(
                brokers.bootstrap_servers(),
                "probe",
                &tuning,
                &consumer_reserved(&probe_group, false),
            )
            .map_err(|e| ConsumeError::from_config(&e))?;
        let context = RebalanceContext {
            start_positions,
            request_timeout,
            probe_config,
            verify_high_watermarks: settings.verify_high_watermarks_by_reading,
            changes: Mutex::new(VecDeque::new()),
        };
        let consumer: BaseConsumer<RebalanceContext> = config
            .create_with_context(context)
            .map_err(|e| ConsumeError::from_kafka(&e, "cannot create consumer"))?;
        consumer
            .subscribe(topics)
            .map_err(|e| ConsumeError::from_kafka(&e, "cannot subscribe"))?;
        Ok(Self {
            consumer,
            pending_error: None,
            request_timeout,
            verify_high_watermarks: settings.verify_high_watermarks_by_reading,
            topic_cache: None,
            read_headers: true,
        })
    }

    /// Records come without their headers from here on. For a reader that never
    /// looks at them (the projector): asking librdkafka for a record's headers
    /// parses them, and copying them cost about 4% of the projector's thread.
    #[must_use]
    pub fn without_headers(mut self) -> Self {
        self.read_headers = false;
        self
    }

    /// Polls until `max_records` records are in hand, `max_wait_ms` were
    /// spent waiting for them, or the assignment changed (the batch then ends, so every change
    /// reported happened after its records).
    ///
    /// # Errors
    /// A failure met after some records were read is returned by the next
    /// call, so no record is lost. [`ConsumeError::Position`] follows the
    /// batch whose [`AssignmentChange::Assigned`] carries the problems.
    pub fn poll_batch(
        &mut self,
        max_records: usize,
        max_wait_ms: u64,
    ) -> Result<ConsumedBatch, ConsumeError> {
        let mut records = Vec::new();
        let (topic_cache, read_headers) = (&mut self.topic_cache, self.read_headers);
        let changes = poll_messages(
            &self.consumer,
            &mut self.pending_error,
            max_records,
            max_wait_ms,
            |message| {
                records.push(from_message(message, topic_cache, read_headers));
                Ok::<(), ConsumeError>(())
            },
        )?;
        Ok(ConsumedBatch { records, changes })
    }

    /// Like [`PartitionConsumer::poll_batch`], but each record is lent to
    /// `visit` where librdkafka holds it, as it arrives, instead of being
    /// copied into a batch: for a reader that is done with a record once it
    /// has seen it (the projector, which copies what it keeps). Copying every
    /// record's key and payload into a batch that grew to its size each time
    /// was about a tenth of the projector thread's time. Returns the batch's
    /// record count and assignment changes (which happened after its records).
    ///
    /// # Errors
    /// As [`PartitionConsumer::poll_batch`]; an error `visit` returns ends the
    /// batch at once and is returned (the records visited before it were
    /// visited, the caller knows what it did with them).
    pub fn poll_each<E: From<ConsumeError>>(
        &mut self,
        max_records: usize,
        max_wait_ms: u64,
        mut visit: impl FnMut(&BorrowedRecord<'_>) -> Result<(), E>,
    ) -> Result<PolledBatch, E> {
        let mut records = 0usize;
        let changes = poll_messages(
            &self.consumer,
            &mut self.pending_error,
            max_records,
            max_wait_ms,
            |message| {
                records += 1;
                visit(&BorrowedRecord::of(message))
            },
        )?;
        Ok(PolledBatch { records, changes })
    }

    /// Stores the next offsets of applied records, to be committed to the
    /// group in the background (lag monitoring only; the truth is the
    /// caller's store). Each entry is `(topic, partition, next_offset)`.
    ///
    /// # Errors
    /// [`ConsumeError::NotAssigned`] when none of the partitions is assigned
    /// any more (expected right after a revoke).
    pub fn store_positions(&self, positions: &[(&str, i32, i64)]) -> Result<(), ConsumeError> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for (topic, partition, next_offset) in positions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next_offset))
                .map_err(|e| ConsumeError::from_kafka(&e, "invalid position"))?;
        }
        // `store_offsets` (plural) stores the offsets as given; the singular
        // form would store offset + 1.
        self.consumer.store_offsets(&tpl).map_err(|e| {
            if matches!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::State | RDKafkaErrorCode::InvalidArgument)
            ) {
                ConsumeError::NotAssigned {
                    reason: e.to_string(),
                }
            } else {
                ConsumeError::from_kafka(&e, "store offsets")
            }
        })
    }

    /// The partitions currently assigned to this consumer.
    ///
    /// # Errors
    /// [`ConsumeError`] if librdkafka cannot tell.
    pub fn assignment(&self) -> Result<Vec<(String, i32)>, ConsumeError> {
        let tpl = self
            .consumer
            .assignment()
            .map_err(|e| ConsumeError::from_kafka(&e, "assignment"))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
    }

    /// The group's committed offsets for the current assignment (what lag
    /// monitoring sees). Blocking, bounded by `request_timeout_ms`.
    ///
    /// # Errors
    /// [`ConsumeError`] if the coordinator cannot be asked.
    pub fn committed_offsets(&self) -> Result<Vec<(String, i32, Option<i64>)>, ConsumeError> {
        let tpl = self
            .consumer
            .committed(self.request_timeout)
            .map_err(|e| ConsumeError::from_kafka(&e, "committed offsets"))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset().to_raw()))
            .collect())
    }

    /// Commits the stored positions now (instead of at the next
    /// `auto.commit.interval.ms`), e.g. before a clean shutdown.
    ///
    /// # Errors
    /// [`ConsumeError`] if the commit fails; `NoOffset` means nothing was
    /// stored since the last commit.
    pub fn commit_stored(&self) -> Result<(), ConsumeError> {
        match self
            .consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        {
            Ok(()) => Ok(()),
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => Ok(()),
            Err(e) => Err(ConsumeError::from_kafka(&e, "commit")),
        }
    }

    /// Commits the stored positions and leaves the group (the partitions'
    /// revoke is served here). Dropping the consumer also leaves the group,
    /// without the final commit.
    ///
    /// # Errors
    /// [`ConsumeError`] if the final commit fails; the consumer is closed
    /// either way.
    pub fn close(self) -> Result<(), ConsumeError> {
        let committed = self.commit_stored();
        drop(self);
        committed
    }

    /// Log start and high watermark of every partition of `topic`.
    ///
    /// # Errors
    /// [`ConsumeError`] if metadata or watermarks cannot be read.
    pub fn high_watermarks(&self, topic: &str) -> Result<Vec<PartitionWatermarks>, ConsumeError> {
        let verify = self
            .verify_high_watermarks
            .then_some(&self.consumer.context().probe_config);
        high_watermarks_of(&self.consumer, topic, self.request_timeout, verify)
    }
}

/// Watermarks of every partition of `topic`, through any consumer client.
///
/// With `verify_with`, the ListOffsets answers are taken as lower bounds and
/// confirmed by reading the tails ([`scan_end_offsets`]).
pub(crate) fn high_watermarks_of<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
    verify_with: Option<&ClientConfig>,
) -> Result<Vec<PartitionWatermarks>, ConsumeError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ConsumeError::from_kafka(&e, "metadata"))?;
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(ConsumeError::BadInput {
            reason: format!("topic `{topic}` not in metadata"),
            code: Some(RDKafkaErrorCode::UnknownTopicOrPartition),
        });
    };
    if let Some(err) = entry.error() {
        let code: RDKafkaErrorCode = err.into();
        return Err(ConsumeError::BadInput {
            reason: format!("topic `{topic}`: {code}"),
            code: Some(code),
        });
    }
    let mut out = Vec::with_capacity(entry.partitions().len());
    for p in entry.partitions() {
        let (log_start, high_watermark) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|e| ConsumeError::from_kafka(&e, "watermarks"))?;
        out.push(PartitionWatermarks {
            partition: p.id(),
            log_start,
            high_watermark,
        });
    }
    out.sort_by_key(|w| w.partition);
    if let Some(config) = verify_with {
        let claimed: Vec<(i32, i64)> = out
            .iter()
            .map(|w| (w.partition, w.high_watermark))
            .collect();
        let ends = scan_end_offsets(config, topic, &claimed, timeout).ok_or_else(|| {
            ConsumeError::Retriable {
                reason: format!("cannot read the tails of `{topic}` to confirm its watermarks"),
                code: None,
            }
        })?;
        for w in &mut out {
            if let Some(end) = ends.get(&w.partition) {
                w.high_watermark = w.high_watermark.max(*end);
            }
        }
    }
    Ok(out)
}

/// How long the log's tail must stay quiet before a scan calls it the end.
const SCAN_IDLE_MS: u64 = 500;

/// The end of partitions' logs (the offset the next record will get), found
/// by reading from each `claimed_high - 1` until nothing more arrives, for
/// brokers whose ListOffsets answer is only a lower bound (tansu 0.6 reports
/// the newest batch's base offset + 1). Costs one idle wait of 500 ms for all
/// partitions together. `None` if the scan could not start.
pub(crate) fn scan_end_offsets(
    config: &ClientConfig,
    topic: &str,
    claimed_highs: &[(i32, i64)],
    timeout: Duration,
) -> Option<BTreeMap<i32, i64>> {
    use rdkafka::Message;

    let mut config = config.clone();
    config.set("group.id", unique_name("stockline-probe"));
    let consumer: BaseConsumer<DefaultConsumerContext> = config
        .create()
        .map_err(|error| tracing::warn!(%error, "cannot create probe consumer"))
        .ok()?;
    let mut tpl = TopicPartitionList::with_capacity(claimed_highs.len());
    for (partition, claimed_high) in claimed_highs {
        tpl.add_partition_offset(
            topic,
            *partition,
            Offset::Offset(claimed_high.saturating_sub(1).max(0)),
        )
        .ok()?;
    }
    consumer.assign(&tpl).ok()?;
    let mut ends: BTreeMap<i32, i64> = claimed_highs.iter().copied().collect();
    let started = Instant::now();
    let mut last_record = Instant::now();
    while started.elapsed() < timeout && last_record.elapsed() < Duration::from_millis(SCAN_IDLE_MS)
    {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                if let Some(end) = ends.get_mut(&message.partition()) {
                    *end = (*end).max(message.offset().saturating_add(1));
                }
                last_record = Instant::now();
            }
            // Out of range (an emptied log): that partition's claimed end
            // stands; keep reading the others.
            Some(Err(error)) => tracing::debug!(%error, "probe read error"),
            None => {}
        }
    }
    Some(ends)
}

/// The poll loop of [`PartitionConsumer::poll_batch`] and
/// [`PartitionConsumer::poll_each`]: hands each message to `on_message`, up to
/// `max_records` of them, for at most `max_wait_ms`, ending early at an
/// assignment change; returns the changes.
fn poll_messages<E: From<ConsumeError>>(
    consumer: &BaseConsumer<RebalanceContext>,
    pending_error: &mut Option<ConsumeError>,
    max_records: usize,
    max_wait_ms: u64,
    mut on_message: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<(), E>,
) -> Result<Vec<AssignmentChange>, E> {
    if let Some(error) = pending_error.take() {
        return Err(error.into());
    }
    let mut records = 0usize;
    // The wait bound counts the time spent waiting for records in librdkafka's
    // poll, not the time `on_message` takes with them: a projector folding
    // each record as it arrives would otherwise end its batches after 2 ms of
    // folding (a few hundred records) instead of 2 ms of waiting.
    let max_wait = Duration::from_millis(max_wait_ms);
    let mut waited = Duration::ZERO;
    while records < max_records {
        let remaining = max_wait.saturating_sub(waited);
        // A record already fetched is taken without a wait, and without
        // reading the clock: with librdkafka's own reads, two more per record
        // were 1% of the projector's CPU. Only a poll that found nothing waits,
        // and counts its time.
        let polled = match consumer.poll(Duration::ZERO) {
            None if !consumer.context().has_changes() && !remaining.is_zero() => {
                // librdkafka takes whole milliseconds and rdkafka truncates: a
                // remaining 0.9 ms became a 0 ms poll, so the last millisecond
                // of every batch window was a busy loop (a third of a core for
                // an idle projector). Rounded up, the poll blocks; the window
                // may end up to 1 ms late.
                let wait = Duration::from_millis(
                    u64::try_from(remaining.as_micros().div_ceil(1_000)).unwrap_or(u64::MAX),
                );
                let poll_started = Instant::now();
                let polled = consumer.poll(wait);
                waited += poll_started.elapsed();
                polled
            }
            polled => polled,
        };
        match polled {
            Some(Ok(message)) => {
                records += 1;
                on_message(&message)?;
            }
            Some(Err(error)) => {
                let error = ConsumeError::from_kafka(&error, "consume");
                if records == 0 && !consumer.context().has_changes() {
                    return Err(error.into());
                }
                *pending_error = Some(error);
                break;
            }
            // Timeout, or a rebalance/commit event was served.
            None => {}
        }
        if consumer.context().has_changes() || remaining.is_zero() {
            break;
        }
    }
    let changes = consumer.context().drain();
    let problems: Vec<PositionProblem> = changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Assigned(parts) => Some(parts),
            _ => None,
        })
        .flatten()
        .filter_map(|p| p.problem.clone())
        .collect();
    if !problems.is_empty() {
        // Reported by name now (in the batch) and as an error next call:
        // a caller that only checks `?` still stops.
        let position = ConsumeError::Position(problems);
        *pending_error = Some(match pending_error.take() {
            // Keep the more specific position report.
            Some(ConsumeError::OffsetOutOfRange { .. }) | None => position,
            Some(other) => {
                tracing::error!(error = %other, "consumer error superseded by position problem");
                position
            }
        });
    }
    Ok(changes)
}
