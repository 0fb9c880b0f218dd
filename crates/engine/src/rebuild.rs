//! Rebuilding a store from the log: offset 0 of every partition, through the same
//! projection the live projector uses, into a fresh directory. Nothing is ever
//! published from a rebuild.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use stockline_kafka::{Brokers, FromBeginning, KafkaSettings, RangeReader, partition_for_key};
use stockline_store::{Projection, RawRecord, Store, StoreContents};

use crate::archive::for_each_archived;
use crate::error::EngineError;
use crate::outbox::mark_outbox_published;
use crate::projector::{Positions, check_partition_count};

/// Records applied between two writes of a rebuild: big batches are what make a
/// rebuild fast, and a rebuild has no reader waiting on it.
pub const REBUILD_BATCH_RECORDS: u64 = 50_000;

/// Where a rebuild reads the log.
pub enum RebuildSource<'a> {
    /// The events topic, from offset 0 up to the high watermarks at the start.
    /// Refused if the log no longer starts at 0 (retention, the embedded broker's
    /// window): a rebuild sees every record or fails.
    Kafka {
        brokers: &'a Brokers,
        settings: &'a KafkaSettings,
    },
    /// Another store's archive (what its projector consumed).
    Archive { store: &'a Store },
}

/// Where to stop: the first of the limits reached, per partition.
#[derive(Debug, Clone, Default)]
pub struct RebuildLimit {
    /// Exclusive end offsets per partition (`--to-offsets`); partitions not named
    /// are read to their end.
    pub offsets: Option<Positions>,
    /// Stop before the first record whose timestamp is later than this (ms since
    /// the epoch): the state as it was at that instant.
    pub until_ms: Option<i64>,
}

impl RebuildLimit {
    fn admits(&self, partition: u32, offset: u64, timestamp_ms: i64) -> bool {
        if let Some(end) = self.offsets.as_ref().and_then(|o| o.get(&partition))
            && offset >= *end
        {
            return false;
        }
        self.until_ms.is_none_or(|until| timestamp_ms <= until)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub records: u64,
    pub dead_letters: u64,
    pub positions: Positions,
    pub elapsed: Duration,
}

/// Rebuilds into `target`, which must not hold a store yet: a store of
/// `contents`, [`StoreContents::Full`] for one a projector can continue (`stockline
/// rebuild`), [`StoreContents::ReadModels`] for one that is only queried
/// (`stockline replay`, `reconcile`: no archive copy, no dedupe record).
pub fn rebuild(
    source: RebuildSource<'_>,
    target: &Path,
    contents: StoreContents,
    topic: &str,
    partitions: u32,
    limit: &RebuildLimit,
    progress: &mut dyn FnMut(u64),
) -> Result<RebuildReport, EngineError> {
    if target.join("CURRENT").exists() {
        return Err(EngineError::Operator(format!(
            "{} already holds a store; rebuild into a new directory",
            target.display()
        )));
    }
    let started = Instant::now();
    let store = Store::create(target, contents)?;
    // A half-built store is thrown away, so its writes need no WAL; the memtables
    // are flushed at the end.
    store.start_bulk_load();
    check_partition_count(&store, topic, partitions)?;
    let partition_of: stockline_store::PartitionOf =
        Arc::new(move |key: &[u8]| partition_for_key(key, partitions));
    let all: Vec<u32> = (0..partitions).collect();
    let into = Target {
        store: &store,
        topic,
        partition_of: &partition_of,
        partitions: &all,
        limit,
    };
    let (positions, dead_letters, applied) = match source {
        RebuildSource::Archive { store: source } => rebuild_from_archive(source, &into, progress)?,
        RebuildSource::Kafka { brokers, settings } => {
            rebuild_from_kafka(brokers, settings, &into, progress)?
        }
    };
    store.finish_bulk_load()?;
    progress(applied);
    mark_outbox_published(&store, partitions)?;
    Ok(RebuildReport {
        records: applied,
        dead_letters,
        positions,
        elapsed: started.elapsed(),
    })
}

/// Worker threads of a rebuild from an archive, at most: partitions are
/// independent by construction, so each worker folds its own share of them into
/// the same store. Two is what the 2-core machines here can use.
pub const REBUILD_THREADS_MAX: usize = 2;

/// How often the progress callback hears from a threaded rebuild.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// (positions, dead letters, records applied) of a finished rebuild.
type Rebuilt = (Positions, u64, u64);

/// What a rebuild folds into, whatever it reads.
struct Target<'a> {
    store: &'a Store,
    topic: &'a str,
    partition_of: &'a stockline_store::PartitionOf,
    partitions: &'a [u32],
    limit: &'a RebuildLimit,
}

/// A projection of some partitions of a rebuild, written every
/// [`REBUILD_BATCH_RECORDS`] records and when a partition is finished. One per
/// worker, whatever partitions it takes in turn: its buffers keep the size the
/// batches need (a first batch grown from nothing copied itself about twenty
/// times and faulted in fresh pages each time). Row batches are written
/// without coordination (the workers' rows are disjoint); the daily counters,
/// which every partition adds to, are read, added to and written under
/// `counters_lock`, shared by the workers of one rebuild. A rebuild's batches
/// need not be atomic with one another: the store is worthless until finished.
struct BatchedProjection<'a> {
    projection: Projection,
    since_flush: u64,
    counters_lock: &'a Mutex<()>,
}

impl<'a> BatchedProjection<'a> {
    fn new(into: &Target<'_>, counters_lock: &'a Mutex<()>) -> BatchedProjection<'a> {
        BatchedProjection {
            projection: Projection::new(
                into.store.clone(),
                into.topic,
                Arc::clone(into.partition_of),
            ),
            since_flush: 0,
            counters_lock,
        }
    }

    /// A rebuild's store is new: its partitions start empty, nothing is read
    /// back (see [`Projection::assign_new`]).
    fn assign(&mut self, partitions: &[u32]) -> Result<(), EngineError> {
        self.projection.assign_new(partitions)?;
        Ok(())
    }

    /// Folds one record; returns whether its batch was written after it.
    fn apply(&mut self, record: &RawRecord<'_>) -> Result<bool, EngineError> {
        self.projection.apply(record)?;
        self.since_flush += 1;
        if self.since_flush < REBUILD_BATCH_RECORDS {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        let store = self.projection.store().clone();
        if let Some(rows) = self.projection.prepare_rows()? {
            store.write(rows, false)?;
        }
        let _counters = self
            .counters_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut counters = stockline_store::WriteBatch::default();
        self.projection.add_counters(&mut counters)?;
        if !counters.is_empty() {
            store.write(counters, false)?;
        }
        self.since_flush = 0;
        Ok(())
    }

    /// Writes the last batch of `partitions` and gives them up: their positions.
    fn finish(&mut self, partitions: &[u32]) -> Result<Positions, EngineError> {
        self.flush()?;
        let positions = partitions
            .iter()
            .filter_map(|p| self.projection.next_offset(*p).map(|next| (*p, next)))
            .collect();
        self.projection.revoke(partitions);
        Ok(positions)
    }

    /// Records dead-lettered since the projection was created.
    fn dead_letters(&self) -> u64 {
        self.projection.stats().dead_letters
    }
}

/// Folds the archive's partitions on up to [`REBUILD_THREADS_MAX`] threads. A
/// worker takes the largest partition nobody has taken yet and folds it with its
/// own [`Projection`], until none is left: partitions differ in size (a 1M-record
/// log of 8 partitions had 0.2 to 0.7 s of work per partition), and handing them
/// out fixed, round robin, left one worker alone for up to 0.45 s at the end.
/// The batches of partitions touch disjoint rows (every row key but the daily
/// counters' holds a SKU, which owns a partition, or a partition) and are written
/// concurrently; only the counters are read, added to and written under one
/// lock: the store ends the same as a sequential rebuild's, byte for byte.
fn rebuild_from_archive(
    source: &Store,
    into: &Target<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Rebuilt, EngineError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, REBUILD_THREADS_MAX)
        .min(into.partitions.len().max(1));
    // Smallest first: workers pop the largest from the end. The source's
    // positions count the offsets it consumed per partition.
    let sizes = source.positions(into.topic)?;
    let mut remaining: Vec<u32> = into.partitions.to_vec();
    remaining.sort_by_key(|partition| (sizes.get(partition).copied().unwrap_or(0), *partition));
    let remaining = Mutex::new(remaining);
    let next_partition = || {
        remaining
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    };
    let counters_lock = Mutex::new(());
    let applied = AtomicU64::new(0);
    // Each worker holds a sender and drops it when it ends (returns or panics):
    // the receiver learns that all ended at once, not at the next progress tick.
    let (running_sender, running) = std::sync::mpsc::channel::<()>();
    let results: Vec<Result<(Positions, u64), EngineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (counters_lock, applied, next_partition) =
                    (&counters_lock, &applied, &next_partition);
                let running_sender = running_sender.clone();
                scope.spawn(move || {
                    let _running = running_sender;
                    let mut positions = Positions::new();
                    let mut projection = BatchedProjection::new(into, counters_lock);
                    while let Some(partition) = next_partition() {
                        projection.assign(&[partition])?;
                        for_each_archived(source, partition, 0, |record| {
                            if !into
                                .limit
                                .admits(partition, record.offset, record.timestamp_ms)
                            {
                                return Ok(false);
                            }
                            projection.apply(&RawRecord {
                                partition,
                                offset: record.offset,
                                timestamp_ms: record.timestamp_ms,
                                key: record.key.as_deref(),
                                payload: record.payload.as_deref(),
                            })?;
                            applied.fetch_add(1, Ordering::Relaxed);
                            Ok(true)
                        })?;
                        positions.extend(projection.finish(&[partition])?);
                    }
                    Ok((positions, projection.dead_letters()))
                })
            })
            .collect();
        drop(running_sender);
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            running.recv_timeout(PROGRESS_INTERVAL)
        {
            progress(applied.load(Ordering::Relaxed));
        }
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or(Err(EngineError::Panicked("rebuild worker")))
            })
            .collect()
    });
    let mut positions = Positions::new();
    let mut dead_letters = 0;
    for result in results {
        let (worker_positions, worker_dead_letters) = result?;
        positions.extend(worker_positions);
        dead_letters += worker_dead_letters;
    }
    Ok((positions, dead_letters, applied.into_inner()))
}

fn rebuild_from_kafka(
    brokers: &Brokers,
    settings: &KafkaSettings,
    into: &Target<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Rebuilt, EngineError> {
    let topic = into.topic;
    let counters_lock = Mutex::new(());
    let mut projection = BatchedProjection::new(into, &counters_lock);
    projection.assign(into.partitions)?;
    let mut applied = 0u64;
    let mut reader = RangeReader::to_high_watermarks(brokers, settings, topic, &FromBeginning)?;
    let mut stopped = std::collections::BTreeSet::new();
    let mut idle_since = Instant::now();
    while !reader.is_done() {
        let batch = reader.next_batch(10_000, 200)?;
        if batch.is_empty() {
            if idle_since.elapsed() > Duration::from_millis(settings.request_timeout_ms) {
                return Err(EngineError::Operator(format!(
                    "no record arrived for {} ms while rebuilding from {topic}",
                    settings.request_timeout_ms
                )));
            }
            continue;
        }
        idle_since = Instant::now();
        for record in &batch {
            let (Ok(partition), Ok(offset)) = (
                u32::try_from(record.partition),
                u64::try_from(record.offset),
            ) else {
                continue;
            };
            let timestamp_ms = record.timestamp_ms.unwrap_or(-1);
            if stopped.contains(&partition) || !into.limit.admits(partition, offset, timestamp_ms) {
                stopped.insert(partition);
                continue;
            }
            let flushed = projection.apply(&RawRecord {
                partition,
                offset,
                timestamp_ms,
                key: record.key.as_deref(),
                payload: record.payload.as_deref(),
            })?;
            applied += 1;
            if flushed {
                progress(applied);
            }
        }
    }
    let positions = projection.finish(into.partitions)?;
    Ok((positions, projection.dead_letters(), applied))
}
