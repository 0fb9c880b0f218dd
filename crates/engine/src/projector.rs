//! The projector: a consumer-group member that folds its partitions into the store.
//!
//! One dedicated thread runs the loop: poll a batch (bounded by count and time),
//! fold every record, write rows and positions in one `WriteBatch`, then report the
//! new positions (read-your-writes waits on them) and wake the outbox publisher.
//! Where to resume is the store's business: on assignment the consumer starts each
//! partition at the store's position, never at the group's committed offset (which
//! is only stored afterwards, for lag monitoring).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stockline_kafka::{
    AssignmentChange, Brokers, ConsumeError, KafkaSettings, PartitionConsumer, StartPositions,
    partition_for_key,
};
use stockline_store::{Projection, RawRecord, Store, StoreError, WriteBatch};
use tokio::sync::{Notify, watch};

use crate::error::EngineError;

/// Applied positions: partition -> next offset to apply.
pub type Positions = BTreeMap<u32, u64>;

/// How the projector batches. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorSettings {
    /// Consumer group id. Default: `stockline-projector`.
    pub group_id: String,
    /// Most records folded into one `WriteBatch`. Big batches amortise RocksDB's
    /// per-write cost; 5,000 records of ~120 bytes write a few MiB at most and fold
    /// in a few milliseconds. Default: 5,000.
    pub batch_max_records: usize,
    /// Longest a batch waits for more records once it has some, in ms. This is the
    /// latency a hold decision pays at low load; 2 ms keeps a hold's round trip
    /// well under 20 ms. Default: 2.
    pub batch_max_wait_ms: u64,
    /// fsync the RocksDB WAL with every batch: survives power loss, not only a
    /// killed process (which the OS page cache already survives). Default: false.
    pub sync_writes: bool,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            group_id: "stockline-projector".to_owned(),
            batch_max_records: 5_000,
            batch_max_wait_ms: 2,
            sync_writes: false,
        }
    }
}

/// Upper bound of `batch_max_records`: a batch is held in memory whole.
pub const BATCH_MAX_RECORDS_LIMIT: usize = 100_000;

/// Starts partitions at the store's positions.
struct StorePositions {
    store: Store,
    topic: String,
}

impl StartPositions for StorePositions {
    fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        if topic != self.topic {
            return None;
        }
        let partition = u32::try_from(partition).ok()?;
        match self.store.positions(topic) {
            Ok(positions) => positions
                .get(&partition)
                .and_then(|next| i64::try_from(*next).ok()),
            Err(error) => {
                // Starting from the beginning is safe: records below the stored
                // position are skipped by the projection.
                tracing::error!(%error, "cannot read stored positions; starting from the beginning");
                None
            }
        }
    }
}

/// What the projector reports while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectorStatus {
    pub positions: Positions,
    /// High watermarks seen at assignment (for readiness: caught up when the
    /// positions reach them).
    pub assignment_high_watermarks: Positions,
    /// Per partition, the position from which its SKUs' stock and allocation rows
    /// and its configuration have not changed: rows read at or after it are
    /// current at `positions` (a tick moves a partition's position, not this).
    pub availability_since: Positions,
    pub records: u64,
    pub dead_letters: u64,
    pub batches: u64,
}

/// A running projector.
pub struct ProjectorHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), EngineError>>>,
    status: watch::Receiver<ProjectorStatus>,
    flushed: Arc<Notify>,
}

impl std::fmt::Debug for ProjectorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectorHandle")
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl ProjectorHandle {
    /// Positions and counters, updated after every batch.
    pub fn status(&self) -> watch::Receiver<ProjectorStatus> {
        self.status.clone()
    }

    /// Notified after every batch written (the outbox publisher waits on it).
    pub fn flushed(&self) -> Arc<Notify> {
        Arc::clone(&self.flushed)
    }

    /// Whether the thread has ended (error or stop).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until every partition's position reaches `target` (a missing
    /// partition counts as not reached), or the timeout passes.
    pub async fn wait_for(&self, target: &Positions, timeout: Duration) -> bool {
        wait_for_positions(self.status.clone(), target, timeout).await
    }

    /// Stops after the batch in hand is written, and returns how the loop ended.
    pub fn stop(mut self) -> Result<(), EngineError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| EngineError::Panicked("projector"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ProjectorHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits on a status channel until `target` positions are applied.
pub async fn wait_for_positions(
    mut status: watch::Receiver<ProjectorStatus>,
    target: &Positions,
    timeout: Duration,
) -> bool {
    let reached = |status: &ProjectorStatus| {
        target
            .iter()
            .all(|(p, next)| status.positions.get(p).is_some_and(|have| have >= next))
    };
    let wait = status.wait_for(|s| reached(s));
    matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
}

/// Starts the projector thread.
pub fn spawn_projector(
    brokers: &Brokers,
    kafka: &KafkaSettings,
    settings: &ProjectorSettings,
    store: Store,
) -> Result<ProjectorHandle, EngineError> {
    if settings.batch_max_records == 0 || settings.batch_max_records > BATCH_MAX_RECORDS_LIMIT {
        return Err(EngineError::Operator(format!(
            "projector.batch_max_records must be within 1..={BATCH_MAX_RECORDS_LIMIT}"
        )));
    }
    let topic = kafka.topics.events.clone();
    check_partition_count(&store, &topic, kafka.partitions)?;
    let start = Arc::new(StorePositions {
        store: store.clone(),
        topic: topic.clone(),
    });
    let consumer =
        PartitionConsumer::subscribe(brokers, kafka, &settings.group_id, &[topic.as_str()], start)?
            .without_headers();
    let partitions = kafka.partitions;
    let partition_of: stockline_store::PartitionOf =
        Arc::new(move |key: &[u8]| partition_for_key(key, partitions));
    let projection = Projection::new(store, topic.clone(), partition_of);
    let stop = Arc::new(AtomicBool::new(false));
    let (status_tx, status_rx) = watch::channel(ProjectorStatus::default());
    let status_tx = Arc::new(status_tx);
    let flushed = Arc::new(Notify::new());
    let writer = Writer::start(
        projection.store().clone(),
        settings.sync_writes,
        Arc::clone(&status_tx),
        Arc::clone(&flushed),
    )?;
    let worker = Worker {
        consumer,
        projection,
        writer,
        topic,
        settings: settings.clone(),
        stop: Arc::clone(&stop),
        status: status_tx,
        flushed: Arc::clone(&flushed),
    };
    let thread = std::thread::Builder::new()
        .name("stockline-projector".to_owned())
        .spawn(move || worker.run())
        .map_err(|e| EngineError::Operator(format!("cannot start the projector thread: {e}")))?;
    Ok(ProjectorHandle {
        stop,
        thread: Some(thread),
        status: status_rx,
        flushed,
    })
}

/// The partition count is part of the data: SKUs are placed by it. A store made
/// with another count cannot continue.
pub fn check_partition_count(
    store: &Store,
    topic: &str,
    partitions: u32,
) -> Result<(), EngineError> {
    let key = format!("partitions/{topic}");
    match store.meta_get::<u32>(&key)? {
        Some(stored) if stored != partitions => Err(EngineError::Operator(format!(
            "the store at {} was built for {stored} partitions of {topic}, the configuration says \
             {partitions}; keys would land on other partitions. Use the original count, or rebuild \
             into a new store with `stockline rebuild`",
            store.path().display()
        ))),
        Some(_) => Ok(()),
        None => {
            store.meta_put(&key, &partitions)?;
            Ok(())
        }
    }
}

struct Worker {
    consumer: PartitionConsumer,
    projection: Projection,
    writer: Writer,
    topic: String,
    settings: ProjectorSettings,
    stop: Arc<AtomicBool>,
    status: Arc<watch::Sender<ProjectorStatus>>,
    flushed: Arc<Notify>,
}

/// A prepared batch on its way to RocksDB, with what to report once it is durable.
struct WriteJob {
    batch: WriteBatch,
    positions: Positions,
    availability_since: Positions,
    records: u64,
    dead_letters: u64,
    /// When its records were in hand (for the batch latency histogram).
    polled_at: Instant,
}

/// The writer thread: writes prepared batches in order and reports each one's
/// positions once it is durable, while the projector thread polls and folds the
/// next batch (the fold and RocksDB's write overlap instead of taking turns).
///
/// What does not change: a batch is still one atomic `WriteBatch` of rows and
/// positions; positions are reported only after their batch is written (so
/// read-your-writes waits see the rows); at most one batch is in flight, and the
/// next one is prepared only once it is durable (preparing reads rows the previous
/// batch wrote: previous hold versions, counters).
struct Writer {
    jobs: Option<std::sync::mpsc::SyncSender<WriteJob>>,
    done: std::sync::mpsc::Receiver<Result<Positions, StoreError>>,
    thread: Option<JoinHandle<()>>,
    in_flight: bool,
    /// A batch failed to write (or the thread died): nothing may be written
    /// after it, since a later batch's positions would cover its lost rows.
    failed: bool,
}

impl Writer {
    fn start(
        store: Store,
        sync: bool,
        status: Arc<watch::Sender<ProjectorStatus>>,
        flushed: Arc<Notify>,
    ) -> Result<Writer, EngineError> {
        let (jobs_tx, jobs_rx) = std::sync::mpsc::sync_channel::<WriteJob>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("projector-writer".to_owned())
            .spawn(move || {
                while let Ok(job) = jobs_rx.recv() {
                    let result = store.write(job.batch, sync);
                    if result.is_ok() {
                        metrics::histogram!("stockline_projector_batch_seconds")
                            .record(job.polled_at.elapsed().as_secs_f64());
                        publish_status(
                            &status,
                            &flushed,
                            job.positions.clone(),
                            job.availability_since,
                            job.records,
                            job.dead_letters,
                        );
                    }
                    if done_tx.send(result.map(|()| job.positions)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| EngineError::Operator(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            jobs: Some(jobs_tx),
            done: done_rx,
            thread: Some(thread),
            in_flight: false,
            failed: false,
        })
    }

    fn send(&mut self, job: WriteJob) -> Result<(), EngineError> {
        debug_assert!(!self.in_flight, "one batch in flight at most");
        if self
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .is_none()
        {
            // The batch is lost with the thread.
            self.failed = true;
            return Err(EngineError::Panicked("projector writer"));
        }
        self.in_flight = true;
        Ok(())
    }

    /// Waits for the batch in flight, if any; its positions once durable.
    fn wait(&mut self) -> Result<Option<Positions>, EngineError> {
        if !self.in_flight {
            return Ok(None);
        }
        self.in_flight = false;
        match self.done.recv() {
            Ok(Ok(positions)) => Ok(Some(positions)),
            Ok(Err(error)) => {
                self.failed = true;
                Err(error.into())
            }
            Err(_) => {
                self.failed = true;
                Err(EngineError::Panicked("projector writer"))
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reports durable positions: status (read-your-writes waits on it), metrics, and
/// the outbox publisher's wake-up.
fn publish_status(
    status: &watch::Sender<ProjectorStatus>,
    flushed: &Notify,
    positions: Positions,
    availability_since: Positions,
    records: u64,
    dead_letters: u64,
) {
    for (p, next) in &positions {
        metrics::gauge!("stockline_projector_position", "partition" => p.to_string())
            .set(*next as f64);
    }
    status.send_modify(|s| {
        s.positions = positions;
        s.availability_since = availability_since;
        s.records += records;
        s.dead_letters += dead_letters;
        s.batches += 1;
    });
    flushed.notify_one();
}

impl Worker {
    fn run(mut self) -> Result<(), EngineError> {
        let result = self.run_loop();
        // Whatever ended the loop, keep what was applied: the batch in flight,
        // then anything applied since, unless a write failed (what was applied
        // after it must not be written: its positions would skip the lost rows;
        // the next start resumes from the last durable positions).
        let in_flight = self.writer.wait().map(|_| ());
        let flushed = if self.writer.failed {
            Ok(false)
        } else {
            self.projection.flush(self.settings.sync_writes)
        };
        if let Err(error) = &result {
            tracing::error!(%error, "projector stopped");
        }
        result
            .and(in_flight)
            .and(flushed.map(|_| ()).map_err(EngineError::from))
    }

    fn run_loop(&mut self) -> Result<(), EngineError> {
        let mut consecutive_errors = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            // Records are folded as they are polled, where librdkafka holds
            // them (nothing is copied but what the projection keeps).
            let mut dead_letters = 0u64;
            let mut first_record_at = None;
            let projection = &mut self.projection;
            let polled = self.consumer.poll_each(
                self.settings.batch_max_records,
                self.settings.batch_max_wait_ms.max(1),
                |record| -> Result<(), EngineError> {
                    first_record_at.get_or_insert_with(Instant::now);
                    let (Ok(partition), Ok(offset)) = (
                        u32::try_from(record.partition),
                        u64::try_from(record.offset),
                    ) else {
                        return Ok(());
                    };
                    let raw = RawRecord {
                        partition,
                        offset,
                        timestamp_ms: record.timestamp_ms.unwrap_or(-1),
                        key: record.key,
                        payload: record.payload,
                    };
                    if let stockline_store::Applied::DeadLettered(code) = projection.apply(&raw)? {
                        dead_letters += 1;
                        metrics::counter!("stockline_dead_letters_total", "reason" => code)
                            .increment(1);
                    }
                    Ok(())
                },
            );
            let batch = match polled {
                Ok(batch) => {
                    consecutive_errors = 0;
                    batch
                }
                Err(EngineError::Consume(ConsumeError::Position(problems))) => {
                    let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    return Err(EngineError::Operator(format!(
                        "the log cannot serve this store's positions: {}. The store at {} was \
                         built from a log that is gone (an embedded broker restarted without its \
                         archive, or another cluster). Rebuild it from what the log holds with \
                         `stockline rebuild --to NEW_DIR`, or point it at the original cluster.",
                        details.join("; "),
                        self.projection.store().path().display()
                    )));
                }
                // A consume error ends a poll with no record visited (one met
                // after a record is returned by the next poll): nothing to undo.
                Err(EngineError::Consume(error)) if error.is_retriable() => {
                    consecutive_errors += 1;
                    let backoff_ms = 50u64 << consecutive_errors.min(6);
                    tracing::warn!(%error, backoff_ms, "consume failed; retrying");
                    std::thread::sleep(Duration::from_millis(backoff_ms));
                    continue;
                }
                Err(error) => return Err(error),
            };
            let polled_at = first_record_at.unwrap_or_else(Instant::now);
            if batch.records > 0 {
                metrics::counter!("stockline_projector_records_total")
                    .increment(batch.records as u64);
            }
            // The previous batch is durable before this one is prepared (preparing
            // reads rows it wrote); it was written while this one was polled and
            // folded.
            if let Some(positions) = self.writer.wait()? {
                self.store_group_positions(&positions);
            }
            if let Some(write_batch) = self.projection.prepare_flush()? {
                let positions = self.positions();
                self.writer.send(WriteJob {
                    batch: write_batch,
                    positions,
                    availability_since: self.projection.availability_since(),
                    records: batch.records as u64,
                    dead_letters,
                    polled_at,
                })?;
            }
            if !batch.changes.is_empty() {
                // The batch in hand is written before any assignment change is
                // acted on, so a revoked partition's work is kept ("finish and
                // write the batch").
                if let Some(positions) = self.writer.wait()? {
                    self.store_group_positions(&positions);
                }
                self.handle_changes(&batch.changes)?;
                let positions = self.positions();
                publish_status(
                    &self.status,
                    &self.flushed,
                    positions,
                    self.projection.availability_since(),
                    0,
                    0,
                );
            }
        }
        Ok(())
    }

    /// The next offsets of the owned partitions, as applied in memory.
    fn positions(&self) -> Positions {
        self.projection
            .partitions()
            .filter_map(|p| self.projection.next_offset(p).map(|next| (p, next)))
            .collect()
    }

    /// Durable positions to the consumer group (lag monitoring only).
    fn store_group_positions(&self, positions: &Positions) {
        let stored: Vec<(&str, i32, i64)> = positions
            .iter()
            .filter_map(|(p, next)| {
                Some((
                    self.topic.as_str(),
                    i32::try_from(*p).ok()?,
                    i64::try_from(*next).ok()?,
                ))
            })
            .collect();
        if let Err(error) = self.consumer.store_positions(&stored) {
            // Only lag monitoring depends on it; expected right after a revoke.
            tracing::debug!(%error, "cannot store group offsets");
        }
    }

    fn handle_changes(&mut self, changes: &[AssignmentChange]) -> Result<(), EngineError> {
        for change in changes {
            match change {
                AssignmentChange::Assigned(parts) => {
                    let mut partitions = Vec::new();
                    let mut high = Positions::new();
                    for part in parts.iter().filter(|p| p.topic == self.topic) {
                        let Ok(partition) = u32::try_from(part.partition) else {
                            continue;
                        };
                        partitions.push(partition);
                        if let Some((_, high_watermark)) = part.watermarks {
                            high.insert(partition, u64::try_from(high_watermark).unwrap_or(0));
                        }
                    }
                    let positions = self.projection.assign(&partitions)?;
                    tracing::info!(?positions, "partitions assigned");
                    self.status
                        .send_modify(|s| s.assignment_high_watermarks.extend(high));
                }
                AssignmentChange::Revoked { partitions, lost } => {
                    let revoked: Vec<u32> = partitions
                        .iter()
                        .filter(|(topic, _)| *topic == self.topic)
                        .filter_map(|(_, p)| u32::try_from(*p).ok())
                        .collect();
                    tracing::info!(?revoked, lost, "partitions revoked");
                    self.projection.revoke(&revoked);
                    self.status.send_modify(|s| {
                        for p in &revoked {
                            s.positions.remove(p);
                            s.assignment_high_watermarks.remove(p);
                        }
                    });
                }
                AssignmentChange::Failed { code } => {
                    tracing::warn!(?code, "rebalance failed; the consumer rejoins the group");
                }
            }
        }
        Ok(())
    }
}
