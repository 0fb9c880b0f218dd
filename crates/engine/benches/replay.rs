//! Replay benchmark (analysts' replays): events/s for at least 1M events.
//!
//! `cargo bench -p stockline-engine --bench replay` (`STOCKLINE_BENCH_EVENTS=N` to
//! change the count; `STOCKLINE_BENCH_SOURCE=DIR` keeps the source store in `DIR`
//! and reuses it on the next run with the same count, for profiling the replay
//! alone; `STOCKLINE_BENCH_ONLY=replay` measures the full replay and nothing
//! else, for a profile of that alone). Builds a store whose archive holds N simulated events, then measures,
//! from that archive:
//! - the fold alone (decode + fold into in-memory ledgers: what a report or a
//!   question about the past costs when nothing is written);
//! - a full replay into a fresh store (`stockline replay`: every read model,
//!   history row and index written to RocksDB);
//! - a rebuild into a fresh store (`stockline rebuild`: the same, plus the
//!   archive copy and the dedupe record a projector needs to continue it).
//!
//! Prints figures; the only checks are that every record was folded and replayed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use stockline_domain::{Ledger, LogTime, fold};
use stockline_engine::archive::for_each_archived;
use stockline_engine::{RebuildLimit, RebuildSource, rebuild};
use stockline_kafka::partition_for_key;
use stockline_simulator::{SimConfig, Simulator};
use stockline_store::{OpenMode, Projection, RawRecord, Store, StoreContents};
use stockline_wire::{decode_event, encode_event};

// The allocator the `stockline` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: u32 = 8;
const TOPIC: &str = "bench.events";

/// One record of a partition's log: (timestamp in ms, key, payload).
type LogRecord = (i64, Option<Vec<u8>>, Vec<u8>);

fn main() {
    let events: u64 = std::env::var("STOCKLINE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = std::env::var_os("STOCKLINE_BENCH_SOURCE")
        .map(|d| std::path::PathBuf::from(d).join(format!("source-{events}")));
    let source_dir = kept.clone().unwrap_or_else(|| dir.path().join("source"));
    let complete = source_dir.join("stockline-bench-complete");
    // A kept store whose archive this build cannot read is made again.
    let reused = complete
        .exists()
        .then(|| Store::open(&source_dir, OpenMode::ArchiveSource).ok())
        .flatten();
    let (source, records) = if let Some(source) = reused {
        let records: u64 = source.positions(TOPIC).expect("positions").values().sum();
        println!(
            "reusing the source store {} ({records} records)",
            source_dir.display()
        );
        (source, records)
    } else {
        if kept.is_some() && source_dir.exists() {
            std::fs::remove_dir_all(&source_dir).expect("incomplete source store removed");
        }
        let source = build_source(events, &source_dir);
        let records: u64 = source.positions(TOPIC).expect("positions").values().sum();
        if kept.is_some() {
            std::fs::write(&complete, b"").expect("marker");
        }
        (source, records)
    };

    let replay_only = std::env::var("STOCKLINE_BENCH_ONLY").is_ok_and(|only| only == "replay");
    if replay_only {
        let replayed = replay_into(
            &source,
            &dir.path().join("replay"),
            StoreContents::ReadModels,
        );
        assert_eq!(replayed.records, records);
        println!(
            "full replay of {records} records: {:.2} s, {:.0} records/s, {} CPU per record",
            replayed.elapsed.as_secs_f64(),
            records as f64 / replayed.elapsed.as_secs_f64(),
            replayed.cpu_per_record(records),
        );
        return;
    }

    // 3. Fold alone, from the archive.
    let started = Instant::now();
    let mut folded = 0u64;
    for partition in 0..PARTITIONS {
        let mut ledger = Ledger::new();
        for_each_archived(&source, partition, 0, |record| {
            if let Some(event) = record.payload.as_deref().and_then(|p| decode_event(p).ok()) {
                let _ = fold(
                    &mut ledger,
                    &event,
                    LogTime::from_millis(record.timestamp_ms),
                );
            }
            folded += 1;
            Ok(true)
        })
        .expect("archive read");
    }
    let fold_only = started.elapsed();

    // 4. Replays into fresh stores: `stockline replay` (read models only) and
    //    `stockline rebuild` (also the archive copy and the dedupe record).
    let replayed = replay_into(
        &source,
        &dir.path().join("replay"),
        StoreContents::ReadModels,
    );
    let rebuilt = replay_into(&source, &dir.path().join("rebuild"), StoreContents::Full);
    assert_eq!(folded, records);
    for run in [&replayed, &rebuilt] {
        assert_eq!(run.records, records);
    }

    println!();
    println!(
        "| replay of {records} records ({events} events) | seconds | records/s | CPU per record | store on disk |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| fold only (archive read, decode, fold) | {:.2} | {:.0} | | |",
        fold_only.as_secs_f64(),
        records as f64 / fold_only.as_secs_f64()
    );
    for (name, run) in [
        (
            "full replay into a new store (stockline replay: read models)",
            &replayed,
        ),
        (
            "rebuild into a new store (stockline rebuild: read models, archive, dedupe record)",
            &rebuilt,
        ),
    ] {
        println!(
            "| {name} | {:.2} | {:.0} | {} | {:.0} MiB |",
            run.elapsed.as_secs_f64(),
            records as f64 / run.elapsed.as_secs_f64(),
            run.cpu_per_record(records),
            run.disk_bytes as f64 / f64::from(1u32 << 20),
        );
    }
    println!("target: >= 500,000 events/s");
}

/// What one replay took.
struct ReplayRun {
    records: u64,
    elapsed: std::time::Duration,
    /// All threads of the process, RocksDB's included.
    cpu_seconds: Option<f64>,
    /// The new store's files once written.
    disk_bytes: u64,
}

impl ReplayRun {
    /// CPU time per record, all threads: steadier than the wall time on a
    /// shared machine, and what a faster replay must cut (500K records/s on 2
    /// cores is 4 us of CPU per record).
    fn cpu_per_record(&self, records: u64) -> String {
        self.cpu_seconds.map_or("n/a".to_owned(), |cpu| {
            format!("{:.2} us", cpu * 1e6 / records as f64)
        })
    }
}

/// Replays `source`'s archive into a new store of `contents` at `target`.
fn replay_into(source: &Store, target: &std::path::Path, contents: StoreContents) -> ReplayRun {
    let cpu_started = process_cpu_seconds();
    let started = Instant::now();
    let report = rebuild(
        RebuildSource::Archive { store: source },
        target,
        contents,
        TOPIC,
        PARTITIONS,
        &RebuildLimit::default(),
        &mut |_| {},
    )
    .expect("replay");
    let elapsed = started.elapsed();
    let cpu_seconds = process_cpu_seconds()
        .zip(cpu_started)
        .map(|(end, start)| end - start);
    let disk_bytes = std::fs::read_dir(target)
        .expect("store directory")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    ReplayRun {
        records: report.records,
        elapsed,
        cpu_seconds,
        disk_bytes,
    }
}

/// User + system CPU time of this process so far (Linux: `/proc/self/stat`,
/// fields 14 and 15, in clock ticks of 1/100 s); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is fields[0] here, so field N is fields[N - 3].
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    const TICKS_PER_SECOND: f64 = 100.0;
    Some((user + system) / TICKS_PER_SECOND)
}

/// Generates `events` simulated events and projects them into a new store at
/// `source_dir` (the live projector's work, done here without Kafka): its archive
/// is the replay's input.
fn build_source(events: u64, source_dir: &std::path::Path) -> Store {
    // 1. The log: simulated events, routed and encoded as the publisher does.
    let started = Instant::now();
    let start = chrono::DateTime::from_timestamp(1_795_420_800, 0).expect("instant");
    let mut config = SimConfig::new(42, start);
    config.step_ms = 20;
    let mut simulator = Simulator::new(config);
    let mut logs: BTreeMap<u32, Vec<LogRecord>> = BTreeMap::new();
    let mut records = 0u64;
    for _ in 0..events {
        let event = simulator.next_event();
        let bytes = encode_event(&event).expect("encodes");
        let time = event.occurred_at.timestamp_millis();
        match &event.sku {
            Some(sku) => {
                let key = sku.as_str().as_bytes().to_vec();
                let p = partition_for_key(&key, PARTITIONS);
                logs.entry(p).or_default().push((time, Some(key), bytes));
                records += 1;
            }
            None => {
                for p in 0..PARTITIONS {
                    logs.entry(p).or_default().push((time, None, bytes.clone()));
                    records += 1;
                }
            }
        }
    }
    println!(
        "generated {events} events ({records} records over {PARTITIONS} partitions) in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // 2. A store whose archive holds them.
    let source = Store::open(source_dir, OpenMode::ReadWrite).expect("store");
    source.start_bulk_load();
    let partition_of: stockline_store::PartitionOf =
        Arc::new(|key: &[u8]| partition_for_key(key, PARTITIONS));
    let mut projection = Projection::new(source.clone(), TOPIC, partition_of);
    let all: Vec<u32> = (0..PARTITIONS).collect();
    projection.assign(&all).expect("assign");
    let started = Instant::now();
    for (partition, log) in &logs {
        for (offset, (time, key, payload)) in log.iter().enumerate() {
            projection
                .apply(&RawRecord {
                    partition: *partition,
                    offset: offset as u64,
                    timestamp_ms: *time,
                    key: key.as_deref(),
                    payload: Some(payload),
                })
                .expect("applies");
            if offset % 50_000 == 49_999 {
                projection.flush(false).expect("flush");
            }
        }
        projection.flush(false).expect("flush");
    }
    source.finish_bulk_load().expect("flushed");
    let projected = started.elapsed();
    println!(
        "projected into the source store in {:.1}s ({:.0} records/s)",
        projected.as_secs_f64(),
        records as f64 / projected.as_secs_f64()
    );
    source
}
