//! The projector: a consumer-group member that folds its partitions into the store.
//!
//! One thread polls a batch (bounded by count and time) and hands each record
//! to the fold thread ("lane") that owns its partition; each lane folds what it
//! is given, writes its partitions' rows and positions in one `WriteBatch`, then
//! reports the new positions (read-your-writes waits on them) and wakes the
//! outbox publisher.
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
    AssignmentChange, BorrowedRecord, Brokers, ConsumeError, KafkaSettings, PartitionConsumer,
    StartPositions, partition_for_key,
};
use stockline_store::{Projection, RawRecord, Store};
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
    /// Threads that fold and write, each for its share of the partitions
    /// (partition modulo this count), beside the thread that polls. Partitions
    /// are independent by construction, so their folds run in parallel; two
    /// use both cores of a small machine. Default: 2.
    pub fold_threads: usize,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            group_id: "stockline-projector".to_owned(),
            batch_max_records: 5_000,
            batch_max_wait_ms: 2,
            sync_writes: false,
            fold_threads: 2,
        }
    }
}

/// Upper bound of `batch_max_records`: a batch is held in memory whole.
pub const BATCH_MAX_RECORDS_LIMIT: usize = 100_000;

/// Upper bound of `fold_threads`.
pub const FOLD_THREADS_LIMIT: usize = 8;

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
    if settings.fold_threads == 0 || settings.fold_threads > FOLD_THREADS_LIMIT {
        return Err(EngineError::Operator(format!(
            "projector.fold_threads must be within 1..={FOLD_THREADS_LIMIT}"
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
    let stop = Arc::new(AtomicBool::new(false));
    let (status_tx, status_rx) = watch::channel(ProjectorStatus::default());
    let status_tx = Arc::new(status_tx);
    let flushed = Arc::new(Notify::new());
    let shared = Arc::new(LaneShared {
        store: store.clone(),
        sync_writes: settings.sync_writes,
        counters_lock: std::sync::Mutex::new(()),
        status: Arc::clone(&status_tx),
        flushed: Arc::clone(&flushed),
    });
    let lane_count = settings
        .fold_threads
        .min(usize::try_from(partitions).unwrap_or(1).max(1));
    let lanes = (0..lane_count)
        .map(|index| {
            let projection =
                Projection::new(store.clone(), topic.clone(), Arc::clone(&partition_of));
            Lane::start(index, projection, Arc::clone(&shared))
        })
        .collect::<Result<Vec<Lane>, EngineError>>()?;
    let coordinator = Coordinator {
        consumer,
        filling: (0..lane_count).map(|_| LaneBatch::default()).collect(),
        lanes,
        topic,
        settings: settings.clone(),
        stop: Arc::clone(&stop),
        status: status_tx,
        flushed: Arc::clone(&flushed),
        store_path: store.path().to_path_buf(),
    };
    let thread = std::thread::Builder::new()
        .name("stockline-projector".to_owned())
        .spawn(move || coordinator.run())
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

/// The thread that polls: it copies each record into the buffer of the fold
/// thread ("lane") that owns the record's partition, hands every lane its
/// share once the poll ends, and polls the next batch while the lanes fold and
/// write. Assignment changes wait until every lane has written what it was
/// given, then are carried out lane by lane.
struct Coordinator {
    consumer: PartitionConsumer,
    lanes: Vec<Lane>,
    /// One buffer per lane, being filled by the poll.
    filling: Vec<LaneBatch>,
    topic: String,
    settings: ProjectorSettings,
    stop: Arc<AtomicBool>,
    status: Arc<watch::Sender<ProjectorStatus>>,
    flushed: Arc<Notify>,
    store_path: std::path::PathBuf,
}

/// Which lane folds `partition`'s records. Partitions are the unit of
/// ownership (one writer per SKU), so a partition's records stay in order on
/// one lane, and lanes never write the same row (every row key but the daily
/// counters' belongs to one partition).
fn lane_of(partition: u32, lanes: usize) -> usize {
    usize::try_from(partition).map_or(0, |p| p % lanes.max(1))
}

/// One poll's records for one lane, copied out of librdkafka into two reused
/// buffers: once they have grown to a batch, a record costs no allocation.
#[derive(Debug, Default)]
struct LaneBatch {
    records: Vec<LaneRecord>,
    /// Keys and payloads back to back.
    bytes: Vec<u8>,
    /// When the poll handed over its first record (batch latency histogram).
    polled_at: Option<Instant>,
}

#[derive(Debug)]
struct LaneRecord {
    partition: u32,
    offset: u64,
    timestamp_ms: i64,
    key: Option<std::ops::Range<usize>>,
    payload: Option<std::ops::Range<usize>>,
}

impl LaneBatch {
    fn push(&mut self, partition: u32, offset: u64, record: &BorrowedRecord<'_>) {
        self.polled_at.get_or_insert_with(Instant::now);
        let bytes = &mut self.bytes;
        let mut copy = |part: Option<&[u8]>| {
            part.map(|part| {
                let start = bytes.len();
                bytes.extend_from_slice(part);
                start..bytes.len()
            })
        };
        let key = copy(record.key);
        let payload = copy(record.payload);
        self.records.push(LaneRecord {
            partition,
            offset,
            timestamp_ms: record.timestamp_ms.unwrap_or(-1),
            key,
            payload,
        });
    }

    fn raw<'a>(&'a self, record: &LaneRecord) -> RawRecord<'a> {
        RawRecord {
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key: record.key.clone().and_then(|range| self.bytes.get(range)),
            payload: record
                .payload
                .clone()
                .and_then(|range| self.bytes.get(range)),
        }
    }

    /// What the batch holds in memory, as the lanes' queue bound counts it.
    fn queued_bytes(&self) -> usize {
        self.bytes.len() + self.records.len() * std::mem::size_of::<LaneRecord>()
    }

    fn clear(&mut self) {
        self.records.clear();
        self.bytes.clear();
        self.polled_at = None;
    }
}

/// What a lane is asked to do, in order.
enum LaneJob {
    /// Fold these records, then write the rows and positions of everything
    /// applied in one `WriteBatch`.
    Fold(LaneBatch),
    /// Take these partitions (restored from the store); answers their positions.
    Assign(Vec<u32>),
    /// Give these partitions up (everything given before was written).
    Revoke(Vec<u32>),
}

enum LaneDone {
    /// The batch, emptied, for the next poll to fill.
    Folded(LaneBatch),
    Assigned(Positions),
    Revoked,
}

/// What the lanes of one projector share.
struct LaneShared {
    store: Store,
    sync_writes: bool,
    /// The daily counters are rows every lane adds to: a lane reads them, adds
    /// its deltas and writes its batch under this lock, so no increment is
    /// lost between two lanes' read and write.
    counters_lock: std::sync::Mutex<()>,
    status: Arc<watch::Sender<ProjectorStatus>>,
    flushed: Arc<Notify>,
}

/// Bytes of records handed to one lane and not written yet, at most (keys,
/// payloads and their offsets; the batch being filled comes on top). The
/// coordinator polls on while lanes fold and write, but a broker may serve a
/// backlog one partition at a time: tansu 0.6.0 sends every record of one
/// partition before the next (a 1M-record backlog of 8 partitions came as
/// runs of 125,000 records), so only the lane of that partition has work
/// unless it can queue a long run. Room for 4 batches of 5,000 records gave
/// 230-238K events/s, for 32 batches 248-273K, one lane 194-223K (docs/
/// benchmarks.md, Pipeline 2026-12-07 morning); 24 MiB holds about 34 such
/// batches (~140 bytes a record here).
const LANE_QUEUED_BYTES_MAX: usize = 24 << 20;
/// Jobs handed to one lane and not answered yet, at most (the queues'
/// capacity; many small batches at low load stay far below the byte bound).
const LANE_JOBS_MAX: usize = 64;

/// The coordinator's handle on one fold thread.
struct Lane {
    jobs: Option<std::sync::mpsc::SyncSender<LaneJob>>,
    done: std::sync::mpsc::Receiver<Result<LaneDone, EngineError>>,
    thread: Option<JoinHandle<Result<(), EngineError>>>,
    /// Jobs sent and not answered yet (at most [`LANE_JOBS_MAX`]).
    outstanding: usize,
    /// The bytes of each fold job not answered yet, oldest first (a lane
    /// answers in order).
    outstanding_bytes: std::collections::VecDeque<usize>,
    /// Emptied batches returned by the lane, for the next polls to fill.
    spare: Vec<LaneBatch>,
    /// A batch was written since the coordinator last stored the group's
    /// positions.
    written_since_stored: bool,
}

impl Lane {
    fn start(
        index: usize,
        projection: Projection,
        shared: Arc<LaneShared>,
    ) -> Result<Lane, EngineError> {
        // Both queues hold LANE_JOBS_MAX: the coordinator never has more jobs
        // outstanding, so neither side blocks on a full queue but by design.
        let (jobs_tx, jobs_rx) = std::sync::mpsc::sync_channel::<LaneJob>(LANE_JOBS_MAX);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(LANE_JOBS_MAX);
        let thread = std::thread::Builder::new()
            .name(format!("projector-fold{index}"))
            .spawn(move || run_lane(projection, &jobs_rx, &done_tx, &shared))
            .map_err(|e| EngineError::Operator(format!("cannot start a fold thread: {e}")))?;
        Ok(Lane {
            jobs: Some(jobs_tx),
            done: done_rx,
            thread: Some(thread),
            outstanding: 0,
            outstanding_bytes: std::collections::VecDeque::new(),
            spare: Vec::new(),
            written_since_stored: false,
        })
    }

    /// Hands `job` over, first waiting for answers while [`LANE_JOBS_MAX`]
    /// jobs or [`LANE_QUEUED_BYTES_MAX`] bytes of records are outstanding;
    /// the positions of assignments answered meanwhile.
    fn send(&mut self, job: LaneJob) -> Result<Positions, EngineError> {
        let bytes = match &job {
            LaneJob::Fold(batch) => batch.queued_bytes(),
            LaneJob::Assign(_) | LaneJob::Revoke(_) => 0,
        };
        let mut assigned = Positions::new();
        while self.outstanding >= LANE_JOBS_MAX
            || (self.outstanding > 0
                && self.outstanding_bytes.iter().sum::<usize>() + bytes > LANE_QUEUED_BYTES_MAX)
        {
            assigned.extend(self.receive(true)?.unwrap_or_default());
        }
        if self
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .is_none()
        {
            return Err(EngineError::Panicked("projector fold"));
        }
        self.outstanding += 1;
        self.outstanding_bytes.push_back(bytes);
        Ok(assigned)
    }

    /// Takes one answer (waiting for it if `block`); `None` if there was none
    /// to take. Emptied batches go to the spares; an assignment's answer
    /// returns its positions.
    fn receive(&mut self, block: bool) -> Result<Option<Positions>, EngineError> {
        if self.outstanding == 0 {
            return Ok(None);
        }
        let answer = if block {
            self.done
                .recv()
                .map_err(|_| EngineError::Panicked("projector fold"))?
        } else {
            match self.done.try_recv() {
                Ok(answer) => answer,
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(None),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(EngineError::Panicked("projector fold"));
                }
            }
        };
        self.outstanding -= 1;
        self.outstanding_bytes.pop_front();
        match answer? {
            LaneDone::Folded(batch) => {
                self.spare.push(batch);
                self.written_since_stored = true;
                Ok(Some(Positions::new()))
            }
            LaneDone::Assigned(positions) => Ok(Some(positions)),
            LaneDone::Revoked => Ok(Some(Positions::new())),
        }
    }

    /// Takes the answers already there without waiting.
    fn receive_ready(&mut self) -> Result<(), EngineError> {
        while self.receive(false)?.is_some() {}
        Ok(())
    }

    /// Waits until every job handed over is answered; the positions of the
    /// assignments among them.
    fn wait_all(&mut self) -> Result<Positions, EngineError> {
        let mut assigned = Positions::new();
        while let Some(positions) = self.receive(true)? {
            assigned.extend(positions);
        }
        Ok(assigned)
    }

    /// An empty batch to fill: a spare one if the lane returned any.
    fn take_spare(&mut self) -> LaneBatch {
        self.spare.pop().unwrap_or_default()
    }

    /// Closes the job queue and waits for the thread, which first writes what
    /// it applied (unless a write failed).
    fn finish(&mut self) -> Result<(), EngineError> {
        drop(self.jobs.take());
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or(Err(EngineError::Panicked("projector fold"))),
            None => Ok(()),
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// A fold thread: folds the batches it is given into its projection (its
/// share of the partitions) and writes each one, rows and positions in one
/// `WriteBatch`, before it answers. When its queue closes it writes what it
/// applied since (records of a batch whose fold failed half way), unless a
/// write failed: what was applied after a lost write must not be written, its
/// positions would skip the lost rows (the next start resumes from the last
/// durable positions).
fn run_lane(
    mut projection: Projection,
    jobs: &std::sync::mpsc::Receiver<LaneJob>,
    done: &std::sync::mpsc::SyncSender<Result<LaneDone, EngineError>>,
    shared: &LaneShared,
) -> Result<(), EngineError> {
    let mut write_failed = false;
    while let Ok(job) = jobs.recv() {
        let answer = match job {
            LaneJob::Fold(mut batch) => {
                let folded = fold_batch(&mut projection, &batch, shared, &mut write_failed);
                batch.clear();
                folded.map(|()| LaneDone::Folded(batch))
            }
            LaneJob::Assign(partitions) => projection
                .assign(&partitions)
                .map(LaneDone::Assigned)
                .map_err(EngineError::from),
            LaneJob::Revoke(partitions) => {
                projection.revoke(&partitions);
                Ok(LaneDone::Revoked)
            }
        };
        let failed = answer.is_err();
        if done.send(answer).is_err() || failed {
            break;
        }
    }
    if write_failed {
        return Ok(());
    }
    write_applied(&mut projection, shared, None).map(|_| ())
}

/// Folds one batch and writes it.
fn fold_batch(
    projection: &mut Projection,
    batch: &LaneBatch,
    shared: &LaneShared,
    write_failed: &mut bool,
) -> Result<(), EngineError> {
    let mut dead_letters = 0u64;
    for record in &batch.records {
        if let stockline_store::Applied::DeadLettered(code) =
            projection.apply(&batch.raw(record))?
        {
            dead_letters += 1;
            metrics::counter!("stockline_dead_letters_total", "reason" => code).increment(1);
        }
    }
    let written = write_applied(projection, shared, batch.polled_at);
    if written.is_err() {
        *write_failed = true;
    }
    let records = batch.records.len() as u64;
    if let Some(positions) = written? {
        publish_status(
            shared,
            positions,
            projection.availability_since(),
            records,
            dead_letters,
        );
    }
    Ok(())
}

/// Writes what `projection` applied since its last write, with the daily
/// counters' new totals, in one `WriteBatch`; its positions once durable
/// (`None` when nothing was applied).
fn write_applied(
    projection: &mut Projection,
    shared: &LaneShared,
    polled_at: Option<Instant>,
) -> Result<Option<Positions>, EngineError> {
    let Some(mut batch) = projection.prepare_rows()? else {
        return Ok(None);
    };
    {
        let _counters = shared
            .counters_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        projection.add_counters(&mut batch)?;
        shared.store.write(batch, shared.sync_writes)?;
    }
    if let Some(polled_at) = polled_at {
        metrics::histogram!("stockline_projector_batch_seconds")
            .record(polled_at.elapsed().as_secs_f64());
    }
    Ok(Some(
        projection
            .partitions()
            .filter_map(|p| projection.next_offset(p).map(|next| (p, next)))
            .collect(),
    ))
}

/// Reports a lane's durable positions: status (read-your-writes waits on it),
/// metrics, and the outbox publisher's wake-up.
fn publish_status(
    shared: &LaneShared,
    positions: Positions,
    availability_since: Positions,
    records: u64,
    dead_letters: u64,
) {
    for (p, next) in &positions {
        metrics::gauge!("stockline_projector_position", "partition" => p.to_string())
            .set(*next as f64);
    }
    shared.status.send_modify(|s| {
        s.positions.extend(positions);
        s.availability_since.extend(availability_since);
        s.records += records;
        s.dead_letters += dead_letters;
        s.batches += 1;
    });
    shared.flushed.notify_one();
}

impl Coordinator {
    fn run(mut self) -> Result<(), EngineError> {
        let result = self.run_loop();
        if let Err(error) = &result {
            tracing::error!(%error, "projector stopped");
        }
        // Whatever ended the loop, the lanes finish the batch in hand and
        // write what they applied (see `run_lane`).
        let mut finished = Ok(());
        for lane in &mut self.lanes {
            let answered = lane.wait_all().map(|_| ());
            let ended = lane.finish();
            finished = finished.and(answered).and(ended);
        }
        result.and(finished)
    }

    fn run_loop(&mut self) -> Result<(), EngineError> {
        let mut consecutive_errors = 0u32;
        let lanes = self.lanes.len();
        while !self.stop.load(Ordering::SeqCst) {
            let filling = &mut self.filling;
            let polled = self.consumer.poll_each(
                self.settings.batch_max_records,
                self.settings.batch_max_wait_ms.max(1),
                |record| -> Result<(), EngineError> {
                    let (Ok(partition), Ok(offset)) = (
                        u32::try_from(record.partition),
                        u64::try_from(record.offset),
                    ) else {
                        return Ok(());
                    };
                    if let Some(batch) = filling.get_mut(lane_of(partition, lanes)) {
                        batch.push(partition, offset, record);
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
                        self.store_path.display()
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
            if batch.records > 0 {
                metrics::counter!("stockline_projector_records_total")
                    .increment(batch.records as u64);
            }
            // Each lane with records gets them (waiting only while its queue
            // is full, see LANE_QUEUED_BYTES_MAX); the buffer the next poll
            // fills is one the lane emptied.
            for index in 0..lanes {
                let lane = &mut self.lanes[index];
                lane.receive_ready()?;
                if self.filling[index].records.is_empty() {
                    continue;
                }
                let full = std::mem::replace(&mut self.filling[index], lane.take_spare());
                lane.send(LaneJob::Fold(full))?;
            }
            if self.lanes.iter().any(|lane| lane.written_since_stored) {
                self.store_group_positions();
                for lane in &mut self.lanes {
                    lane.written_since_stored = false;
                }
            }
            if !batch.changes.is_empty() {
                // Every batch handed out is written before any assignment
                // change is acted on, so a revoked partition's work is kept
                // ("finish and write the batch").
                for lane in &mut self.lanes {
                    lane.wait_all()?;
                }
                self.handle_changes(&batch.changes)?;
            }
        }
        Ok(())
    }

    /// Durable positions to the consumer group (lag monitoring only).
    fn store_group_positions(&self) {
        let positions = self.status.borrow().positions.clone();
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

    /// Sends each lane its share of `partitions` as `job` and waits for all.
    fn each_lane(
        &mut self,
        partitions: &[u32],
        job: impl Fn(Vec<u32>) -> LaneJob,
    ) -> Result<Positions, EngineError> {
        let lanes = self.lanes.len();
        let mut positions = Positions::new();
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            let share: Vec<u32> = partitions
                .iter()
                .copied()
                .filter(|p| lane_of(*p, lanes) == index)
                .collect();
            if !share.is_empty() {
                positions.extend(lane.send(job(share))?);
            }
        }
        for lane in &mut self.lanes {
            positions.extend(lane.wait_all()?);
        }
        Ok(positions)
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
                    let positions = self.each_lane(&partitions, LaneJob::Assign)?;
                    tracing::info!(?positions, "partitions assigned");
                    // A partition taken over answers from its rows as of now:
                    // rows written before are current from its position on.
                    self.status.send_modify(|s| {
                        s.availability_since.extend(positions.clone());
                        s.positions.extend(positions);
                        s.assignment_high_watermarks.extend(high);
                    });
                }
                AssignmentChange::Revoked { partitions, lost } => {
                    let revoked: Vec<u32> = partitions
                        .iter()
                        .filter(|(topic, _)| *topic == self.topic)
                        .filter_map(|(_, p)| u32::try_from(*p).ok())
                        .collect();
                    tracing::info!(?revoked, lost, "partitions revoked");
                    self.each_lane(&revoked, LaneJob::Revoke)?;
                    self.status.send_modify(|s| {
                        for p in &revoked {
                            s.positions.remove(p);
                            s.availability_since.remove(p);
                            s.assignment_high_watermarks.remove(p);
                        }
                    });
                }
                AssignmentChange::Failed { code } => {
                    tracing::warn!(?code, "rebalance failed; the consumer rejoins the group");
                }
            }
        }
        self.flushed.notify_one();
        Ok(())
    }
}
