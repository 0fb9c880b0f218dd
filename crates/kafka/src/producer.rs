//! The idempotent record producer, with bounded memory.
//!
//! Every record takes one permit of a semaphore of `max_in_flight_records`
//! before it is handed to librdkafka, and the permit is released by
//! librdkafka's delivery callback, whether or not anyone awaits the result.
//! librdkafka's own queue limits are set to the same bound, so its queue is
//! never the unbounded buffer; if the byte limit is reached first
//! (`QueueFull`), the sender backs off and retries for a bounded time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::brokers::Brokers;
use crate::config::{KafkaSettings, Reserved};
use crate::error::{ErrorKind, classify_code};
use crate::record::{OutgoingRecord, RecordPosition};

/// First pause after librdkafka answered `QueueFull`.
const QUEUE_FULL_FIRST_BACKOFF_MS: u64 = 1;
/// Longest pause between two attempts on `QueueFull`.
const QUEUE_FULL_MAX_BACKOFF_MS: u64 = 50;
/// Extra time, beyond the delivery timeout, a sender waits for a free slot:
/// every in-flight record resolves within `message.timeout.ms`, so a longer
/// wait means the producer is stuck.
const SLOT_WAIT_MARGIN_MS: u64 = 5_000;
/// Bound on the flush done when the last handle is dropped with records still
/// in flight.
const DROP_FLUSH_TIMEOUT_MS: u64 = 5_000;

/// A record that could not be produced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProduceError {
    /// Transient: the same record may be sent again (events carry ids, so a
    /// duplicate is harmless).
    #[error("retriable produce failure: {reason}")]
    Retriable {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
    /// The producer is unusable (idempotence sequence broken, fenced,
    /// authentication, closed): recreate it.
    #[error("fatal producer failure: {reason}")]
    Fatal {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
    /// This record cannot be produced (too large, unknown topic or
    /// partition): sending it again fails again.
    #[error("record rejected: {reason}")]
    BadInput {
        reason: String,
        code: Option<RDKafkaErrorCode>,
    },
}

impl ProduceError {
    /// How a caller should react.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Retriable { .. } => ErrorKind::Retriable,
            Self::Fatal { .. } => ErrorKind::Fatal,
            Self::BadInput { .. } => ErrorKind::BadInput,
        }
    }

    /// Whether sending the same record again may succeed.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        self.kind() == ErrorKind::Retriable
    }

    /// The librdkafka error code, when the failure came from librdkafka.
    #[must_use]
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Self::Retriable { code, .. }
            | Self::Fatal { code, .. }
            | Self::BadInput { code, .. } => *code,
        }
    }

    fn from_code(code: RDKafkaErrorCode, context: &str) -> Self {
        let reason = format!("{context}: {code} ({code:?})");
        match classify_code(code) {
            ErrorKind::Retriable => Self::Retriable {
                reason,
                code: Some(code),
            },
            ErrorKind::Fatal => Self::Fatal {
                reason,
                code: Some(code),
            },
            ErrorKind::BadInput => Self::BadInput {
                reason,
                code: Some(code),
            },
        }
    }

    fn from_kafka(error: &KafkaError, context: &str) -> Self {
        match error.rdkafka_error_code() {
            Some(code) => Self::from_code(code, context),
            None => Self::Fatal {
                reason: format!("{context}: {error}"),
                code: None,
            },
        }
    }
}

/// Counters of one producer, for monitoring and for tests of the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerStats {
    /// Records handed to librdkafka whose delivery report has not arrived.
    pub in_flight: usize,
    /// Highest `in_flight` seen since creation (or the last reset).
    pub peak_in_flight: usize,
    pub delivered_total: u64,
    pub failed_total: u64,
    /// Times librdkafka answered `QueueFull` and the sender backed off.
    pub queue_full_retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    delivered_total: AtomicU64,
    failed_total: AtomicU64,
    queue_full_retries: AtomicU64,
}

type DeliveryOutcome = Result<RecordPosition, KafkaError>;

/// What travels with a record through librdkafka and comes back in the
/// delivery callback.
struct InFlight {
    // Released in the delivery callback: the bound counts records inside
    // librdkafka, not futures somebody still has to await.
    permit: OwnedSemaphorePermit,
    reply: oneshot::Sender<DeliveryOutcome>,
}

struct DeliveryContext {
    counters: Arc<Counters>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => {
                self.counters
                    .delivered_total
                    .fetch_add(1, Ordering::Relaxed);
                Ok(RecordPosition {
                    partition: message.partition(),
                    offset: message.offset(),
                })
            }
            Err((error, _message)) => {
                self.counters.failed_total.fetch_add(1, Ordering::Relaxed);
                Err(error.clone())
            }
        };
        self.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
        let InFlight { permit, reply } = *opaque;
        drop(permit);
        // The receiver may have been dropped by a caller that did not wait.
        let _ = reply.send(outcome);
    }
}

struct Shared {
    producer: ThreadedProducer<DeliveryContext>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    slot_wait: Duration,
    queue_full_wait: Duration,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // librdkafka purges whatever is still queued when the producer is
        // destroyed; give in-flight records a bounded chance first.
        if self.counters.in_flight.load(Ordering::Acquire) > 0 {
            tracing::warn!("producer dropped with records in flight; flushing (bounded)");
            if let Err(error) = self
                .producer
                .flush(Duration::from_millis(DROP_FLUSH_TIMEOUT_MS))
            {
                tracing::error!(%error, "records still in flight were purged at drop");
            }
        }
    }
}

/// An idempotent (`enable.idempotence=true`, `acks=all`) producer with a
/// bound on records in flight. Cheap to clone; clones share the producer.
///
/// Needs a Tokio runtime with timers. Call [`RecordProducer::flush`] before
/// dropping the last clone: librdkafka discards unsent records on
/// destruction (drop flushes for at most 5 s as a safety net).
#[derive(Clone)]
pub struct RecordProducer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RecordProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProducer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RecordProducer {
    /// Creates a producer for `brokers` with `settings` (pass-through
    /// properties included).
    ///
    /// # Errors
    /// [`ProduceError::Fatal`] for invalid settings or a client librdkafka
    /// refuses to create.
    pub fn new(brokers: &Brokers, settings: &KafkaSettings) -> Result<Self, ProduceError> {
        settings.validate().map_err(|e| ProduceError::Fatal {
            reason: e.to_string(),
            code: None,
        })?;
        let max_in_flight = settings.max_in_flight_records;
        let tuning = [
            // librdkafka counts a message until it is freed, after the
            // delivery callback of its whole delivery-report batch has run,
            // while our permit is released inside the callback: its count
            // lags ours by at most one batch (at most `max_in_flight`
            // records). Twice the bound keeps its limit from ever biting
            // (no QueueFull back-off) while still bounding its queue.
            (
                "queue.buffering.max.messages",
                max_in_flight.saturating_mul(2).to_string(),
            ),
            (
                "queue.buffering.max.kbytes",
                settings.max_buffered_kbytes.to_string(),
            ),
            (
                "message.timeout.ms",
                settings.delivery_timeout_ms.to_string(),
            ),
            // A couple of ms of linger fills batches under load at a latency
            // cost well below a hold's decision (librdkafka's default is 5).
            // At 5,000 holds/s on the embedded broker, 2 rather than 5 took
            // the decision's p50 from 8.4 to 6.4 ms (p99 17.7-22.0 -> 14.0-17.3)
            // for 4% more CPU; 1 cost 15% more CPU and no better p99
            // (docs/benchmarks.md). Overridable in `[kafka.properties]`.
            ("linger.ms", "2".to_owned()),
            ("batch.num.messages", "10000".to_owned()),
            (
                "socket.timeout.ms",
                settings.request_timeout_ms.max(10).to_string(),
            ),
        ];
        let reserved = [
            Reserved {
                key: "enable.idempotence",
                value: "true",
                why: "retries must not duplicate or reorder records of a partition",
            },
            Reserved {
                key: "acks",
                value: "all",
                why: "a record is acknowledged only once every in-sync replica has it",
            },
            Reserved {
                key: "allow.auto.create.topics",
                value: "false",
                why: "a topic auto-created with the broker's default partition count would place \
                      keys on other partitions than Stockline computes",
            },
        ];
        let config = settings
            .client_config(brokers.bootstrap_servers(), "producer", &tuning, &reserved)
            .map_err(|e| ProduceError::Fatal {
                reason: e.to_string(),
                code: None,
            })?;
        let counters = Arc::new(Counters::default());
        let producer = ThreadedProducer::from_config_and_context(
            &config,
            DeliveryContext {
                counters: Arc::clone(&counters),
            },
        )
        .map_err(|e| ProduceError::from_kafka(&e, "cannot create producer"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                producer,
                permits: Arc::new(Semaphore::new(max_in_flight)),
                counters,
                slot_wait: Duration::from_millis(
                    settings
                        .delivery_timeout_ms
                        .saturating_add(SLOT_WAIT_MARGIN_MS),
                ),
                queue_full_wait: Duration::from_millis(settings.delivery_timeout_ms),
            }),
        })
    }

    /// Sends one record and waits for its acknowledgement.
    ///
    /// # Errors
    /// [`ProduceError`], classified by [`ProduceError::kind`].
    pub async fn send(&self, record: OutgoingRecord) -> Result<RecordPosition, ProduceError> {
        self.enqueue(record).await?.await
    }

    /// Hands a record to librdkafka once a slot is free, and returns a future
    /// of its acknowledgement. Records enqueued one after the other on the
    /// same partition are written in that order (idempotent producer).
    ///
    /// The slot is released by the delivery report, so a caller may enqueue
    /// any number of records before awaiting them; memory stays bounded by
    /// `max_in_flight_records` records inside librdkafka plus one small
    /// future per record the caller keeps.
    ///
    /// # Errors
    /// [`ProduceError::BadInput`] for a record librdkafka refuses at once
    /// (too large, negative partition); [`ProduceError::Retriable`] if no
    /// slot or queue space frees up within the bounded wait.
    pub async fn enqueue(&self, record: OutgoingRecord) -> Result<PendingDelivery, ProduceError> {
        if record.partition < 0 {
            return Err(ProduceError::BadInput {
                reason: format!(
                    "partition {} of topic `{}` is negative",
                    record.partition, record.topic
                ),
                code: Some(RDKafkaErrorCode::UnknownPartition),
            });
        }
        if record.timestamp_ms <= 0 {
            // librdkafka reads a timestamp of 0 as "now" and Kafka rejects
            // negative ones: the log time must be the caller's, explicitly.
            return Err(ProduceError::BadInput {
                reason: format!(
                    "timestamp {} ms is not after the Unix epoch (librdkafka would replace 0 \
                     with the current time)",
                    record.timestamp_ms
                ),
                code: Some(RDKafkaErrorCode::InvalidTimestamp),
            });
        }
        if record.topic.is_empty() {
            return Err(ProduceError::BadInput {
                reason: "empty topic name".to_owned(),
                code: Some(RDKafkaErrorCode::UnknownTopic),
            });
        }
        let shared = &self.shared;
        let permit = tokio::time::timeout(
            shared.slot_wait,
            Arc::clone(&shared.permits).acquire_owned(),
        )
        .await
        .map_err(|_| ProduceError::Retriable {
            reason: format!(
                "no in-flight slot freed within {} ms",
                shared.slot_wait.as_millis()
            ),
            code: None,
        })?
        .map_err(|_| ProduceError::Fatal {
            reason: "producer is closed".to_owned(),
            code: None,
        })?;

        let (reply_tx, reply_rx) = oneshot::channel();
        let mut opaque = Box::new(InFlight {
            permit,
            reply: reply_tx,
        });
        let started = Instant::now();
        let mut backoff_ms = QUEUE_FULL_FIRST_BACKOFF_MS;
        loop {
            let mut base = BaseRecord::with_opaque_to(&record.topic, opaque)
                .partition(record.partition)
                .payload(record.payload.as_slice())
                .timestamp(record.timestamp_ms);
            if let Some(key) = &record.key {
                base = base.key(key.as_slice());
            }
            if !record.headers.is_empty() {
                base = base.headers(owned_headers(&record));
            }
            // Counted before the call: the delivery callback may run on
            // librdkafka's thread before `send` even returns.
            let now_in_flight = shared.counters.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            shared
                .counters
                .peak_in_flight
                .fetch_max(now_in_flight, Ordering::AcqRel);
            let error = match shared.producer.send(base) {
                Ok(()) => {
                    return Ok(PendingDelivery {
                        reply: reply_rx,
                        shared: Arc::clone(shared),
                    });
                }
                Err((error, returned)) => {
                    shared.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
                    opaque = returned.delivery_opaque;
                    error
                }
            };
            if !matches!(
                error,
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
            ) {
                return Err(ProduceError::from_kafka(&error, "produce refused"));
            }
            if started.elapsed() >= shared.queue_full_wait {
                return Err(ProduceError::Retriable {
                    reason: format!(
                        "librdkafka queue still full after {} ms",
                        started.elapsed().as_millis()
                    ),
                    code: Some(RDKafkaErrorCode::QueueFull),
                });
            }
            shared
                .counters
                .queue_full_retries
                .fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(QUEUE_FULL_MAX_BACKOFF_MS);
        }
    }

    /// Sends records with up to `max_in_flight_records` of them in flight at
    /// once (pipelined, not one round trip each) and returns one result per
    /// record, in input order. Records of one partition are written in input
    /// order.
    pub async fn send_all(
        &self,
        records: Vec<OutgoingRecord>,
    ) -> Vec<Result<RecordPosition, ProduceError>> {
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            pending.push(self.enqueue(record).await);
        }
        let mut results = Vec::with_capacity(pending.len());
        for entry in pending {
            results.push(match entry {
                Ok(delivery) => delivery.await,
                Err(e) => Err(e),
            });
        }
        results
    }

    /// Waits until every record handed to librdkafka is acknowledged or
    /// failed, for at most `timeout_ms`.
    ///
    /// # Errors
    /// [`ProduceError::Retriable`] when records are still in flight at the
    /// deadline.
    pub async fn flush(&self, timeout_ms: u64) -> Result<(), ProduceError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            shared
                .producer
                .flush(Duration::from_millis(timeout_ms))
                .map_err(|e| ProduceError::from_kafka(&e, "flush"))
        })
        .await
        .map_err(|e| ProduceError::Fatal {
            reason: format!("flush task failed: {e}"),
            code: None,
        })?
    }

    /// A snapshot of the producer's counters.
    #[must_use]
    pub fn stats(&self) -> ProducerStats {
        let c = &self.shared.counters;
        ProducerStats {
            in_flight: c.in_flight.load(Ordering::Acquire),
            peak_in_flight: c.peak_in_flight.load(Ordering::Acquire),
            delivered_total: c.delivered_total.load(Ordering::Relaxed),
            failed_total: c.failed_total.load(Ordering::Relaxed),
            queue_full_retries: c.queue_full_retries.load(Ordering::Relaxed),
        }
    }

    /// Resets `peak_in_flight` to the current in-flight count.
    pub fn reset_peak(&self) {
        let c = &self.shared.counters;
        c.peak_in_flight
            .store(c.in_flight.load(Ordering::Acquire), Ordering::Release);
    }

    /// librdkafka's own count of messages not yet delivered
    /// (`rd_kafka_outq_len`), an independent view of the bound.
    #[must_use]
    pub fn librdkafka_queue_len(&self) -> i32 {
        self.shared.producer.in_flight_count()
    }
}

fn owned_headers(record: &OutgoingRecord) -> OwnedHeaders {
    record.headers.iter().fold(
        OwnedHeaders::new_with_capacity(record.headers.len()),
        |headers, h| {
            headers.insert(Header {
                key: h.name.as_str(),
                value: h.value.as_deref(),
            })
        },
    )
}

/// The acknowledgement of one enqueued record.
pub struct PendingDelivery {
    reply: oneshot::Receiver<DeliveryOutcome>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDelivery").finish_non_exhaustive()
    }
}

impl Future for PendingDelivery {
    type Output = Result<RecordPosition, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match Pin::new(&mut self.reply).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        Poll::Ready(match outcome {
            Ok(Ok(position)) => Ok(position),
            Ok(Err(error)) => Err(self.describe_failure(&error)),
            Err(_) => Err(ProduceError::Fatal {
                reason: "producer was destroyed before the delivery report".to_owned(),
                code: None,
            }),
        })
    }
}

impl PendingDelivery {
    fn describe_failure(&self, error: &KafkaError) -> ProduceError {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            // The delivery report only says "fatal"; the client knows why.
            if let Some((code, reason)) = self.shared.producer.client().fatal_error() {
                return ProduceError::Fatal {
                    reason: format!("producer fatal error {code:?}: {reason}"),
                    code: Some(code),
                };
            }
        }
        ProduceError::from_kafka(error, "delivery failed")
    }
}
