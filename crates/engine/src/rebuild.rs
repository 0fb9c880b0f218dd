//! Rebuilding a store from the log: offset 0 of every partition, through the same
//! projection the live projector uses, into a fresh directory. Nothing is ever
//! published from a rebuild.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockline_kafka::{Brokers, FromBeginning, KafkaSettings, RangeReader, partition_for_key};
use stockline_store::{OpenMode, Projection, RawRecord, Store};

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

/// Rebuilds into `target`, which must not hold a store yet.
pub fn rebuild(
    source: RebuildSource<'_>,
    target: &Path,
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
    let store = Store::open(target, OpenMode::ReadWrite)?;
    // A half-built store is thrown away, so its writes need no WAL; the memtables
    // are flushed at the end.
    store.start_bulk_load();
    check_partition_count(&store, topic, partitions)?;
    let partition_of: stockline_store::PartitionOf =
        Arc::new(move |key: &[u8]| partition_for_key(key, partitions));
    let mut projection = Projection::new(store.clone(), topic, partition_of);
    let all: Vec<u32> = (0..partitions).collect();
    projection.assign(&all)?;
    let mut applied = 0u64;
    let mut since_flush = 0u64;
    let mut apply = |projection: &mut Projection, raw: RawRecord<'_>| -> Result<(), EngineError> {
        projection.apply(&raw)?;
        applied += 1;
        since_flush += 1;
        if since_flush >= REBUILD_BATCH_RECORDS {
            projection.flush(false)?;
            since_flush = 0;
            progress(applied);
        }
        Ok(())
    };
    match source {
        RebuildSource::Archive { store: source } => {
            for partition in 0..partitions {
                for_each_archived(source, partition, 0, |record| {
                    if !limit.admits(partition, record.offset, record.timestamp_ms) {
                        return Ok(false);
                    }
                    apply(
                        &mut projection,
                        RawRecord {
                            partition,
                            offset: record.offset,
                            timestamp_ms: record.timestamp_ms,
                            key: record.key.as_deref(),
                            payload: record.payload.as_deref(),
                        },
                    )?;
                    Ok(true)
                })?;
            }
        }
        RebuildSource::Kafka { brokers, settings } => {
            let mut reader =
                RangeReader::to_high_watermarks(brokers, settings, topic, &FromBeginning)?;
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
                    if stopped.contains(&partition)
                        || !limit.admits(partition, offset, timestamp_ms)
                    {
                        stopped.insert(partition);
                        continue;
                    }
                    apply(
                        &mut projection,
                        RawRecord {
                            partition,
                            offset,
                            timestamp_ms,
                            key: record.key.as_deref(),
                            payload: record.payload.as_deref(),
                        },
                    )?;
                }
            }
        }
    }
    projection.flush(false)?;
    store.finish_bulk_load()?;
    progress(applied);
    mark_outbox_published(&store, partitions)?;
    let positions = all
        .iter()
        .filter_map(|p| projection.next_offset(*p).map(|next| (*p, next)))
        .collect();
    Ok(RebuildReport {
        records: applied,
        dead_letters: projection.stats().dead_letters,
        positions,
        elapsed: started.elapsed(),
    })
}
