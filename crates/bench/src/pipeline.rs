//! `stockline-bench pipeline` (issue 3): end-to-end events/s through the projector
//! next to the raw consume rate of the same broker, measured in the same run, on
//! the embedded broker (librdkafka's mock cluster, in process) and on tansu (a
//! child process); the projector's peak RSS after N events in a process of its own;
//! and where a record's time goes when the projection runs without Kafka.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use stockline_domain::{Ledger, LogTime, fold};
use stockline_engine::{EventPublisher, Positions, ProjectorSettings, spawn_projector};
use stockline_kafka::{
    AssignmentChange, Brokers, EmbeddedBroker, FromBeginning, KafkaSettings, OutgoingRecord,
    PartitionConsumer, RecordProducer, TansuBroker, TopicSpec, ensure_topics, partition_for_key,
    topic_watermarks, unique_name,
};
use stockline_store::{OpenMode, Projection, RawRecord, Store};
use stockline_wire::codec::decode_event;

use crate::child::{self, ChildFigures};
use crate::procfs::{self, mib};
use crate::workload::RecordSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    Embedded,
    Tansu,
}

#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Records to produce and project per broker (the simulator's events; a
    /// configuration event is one record per partition, as published).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Simulator seed (same seed, same records).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// SKUs in the simulated catalogue.
    #[arg(long, default_value_t = 2_000)]
    pub skus: usize,
    #[arg(long, default_value_t = stockline_kafka::KafkaSettings::default().partitions)]
    pub partitions: u32,
    /// Brokers to measure, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["embedded", "tansu"])]
    pub brokers: Vec<BrokerKind>,
    /// The projector's `batch_max_records` (default: the projector's default).
    #[arg(long)]
    pub batch_max_records: Option<usize>,
    /// The projector's `batch_max_wait_ms` (default: the projector's default).
    #[arg(long)]
    pub batch_max_wait_ms: Option<u64>,
    /// The projector's `fold_threads` (default: the projector's default).
    #[arg(long)]
    pub fold_threads: Option<usize>,
    /// Skip the peak-RSS runs (each is a separate process).
    #[arg(long)]
    pub no_rss: bool,
    /// Measure tansu's RSS figure with this `stockline` binary (`stockline run`,
    /// ticks off) instead of this benchmark re-executed as a projector-only process.
    #[arg(long)]
    pub stockline_bin: Option<PathBuf>,
    /// Skip the offline breakdown (decode, fold, rows, RocksDB write per record).
    #[arg(long)]
    pub no_breakdown: bool,
    /// Fraction of the embedded broker's retained window (5 MiB per partition)
    /// the embedded run may fill; records beyond it would be dropped before being
    /// read, so the embedded run is capped.
    #[arg(long, default_value_t = 0.6)]
    pub embedded_window_fill: f64,
    /// librdkafka property for every client (repeatable), e.g.
    /// `--kafka-property fetch.wait.max.ms=100`.
    #[arg(long = "kafka-property", value_parser = crate::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

impl PipelineArgs {
    pub fn projector_settings(&self) -> ProjectorSettings {
        let defaults = ProjectorSettings::default();
        ProjectorSettings {
            batch_max_records: self.batch_max_records.unwrap_or(defaults.batch_max_records),
            batch_max_wait_ms: self.batch_max_wait_ms.unwrap_or(defaults.batch_max_wait_ms),
            fold_threads: self.fold_threads.unwrap_or(defaults.fold_threads),
            ..defaults
        }
    }
}

/// The mock cluster's retained bytes per partition (hard-coded in librdkafka).
const MOCK_WINDOW_BYTES: f64 = 5.0 * 1024.0 * 1024.0;
/// Kafka record overhead inside a batch beyond key and value (varints,
/// attributes, deltas), an upper estimate.
const RECORD_OVERHEAD_BYTES: f64 = 24.0;
const SEND_CHUNK: usize = 20_000;

#[derive(Debug, Clone, Default)]
struct BrokerFigures {
    broker: &'static str,
    records: u64,
    produce_s: f64,
    raw: Option<Rate>,
    e2e: Option<E2e>,
    rss: Option<Result<ChildFigures, String>>,
    note: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    records: u64,
    /// From the assignment to the last record.
    seconds: f64,
    /// From subscribe to the assignment (group join).
    join_s: f64,
}

impl Rate {
    fn per_s(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }
}

#[derive(Debug, Clone, Default)]
struct E2e {
    rate: Rate,
    batches: u64,
    store_mib: f64,
    /// CPU seconds by thread of this process while the projector caught up.
    cpu: Vec<(String, f64)>,
}

pub fn run(args: &PipelineArgs) -> Result<()> {
    let projector = args.projector_settings();
    println!(
        "pipeline benchmark: {} records per broker (simulator seed {}, {} SKUs), {} partitions, \
         projector batch_max_records={} batch_max_wait_ms={} fold_threads={}",
        args.events,
        args.seed,
        args.skus,
        args.partitions,
        projector.batch_max_records,
        projector.batch_max_wait_ms,
        projector.fold_threads
    );
    crate::print_machine();

    let rt = crate::runtime()?;
    let topic = unique_name("bench-events");

    // The records, generated once (same bytes for every broker).
    let started = Instant::now();
    let (records, mean_payload) = {
        let _guard = rt.enter();
        // A producer is only needed for the publisher's routing; nothing is sent.
        let broker = EmbeddedBroker::start()?;
        let brokers = Brokers::Embedded(broker);
        let producer = RecordProducer::new(&brokers, &KafkaSettings::default())?;
        let publisher = EventPublisher::new(producer, &topic, args.partitions);
        let mut source = RecordSource::new(publisher, args.seed, args.skus, args.events);
        let n = usize::try_from(args.events).context("--events")?;
        let records = source.next_records(n)?;
        println!(
            "generated {} records from {} simulated events in {:.1} s; mean payload {:.0} bytes",
            records.len(),
            source.events,
            started.elapsed().as_secs_f64(),
            source.mean_payload_bytes()
        );
        (records, source.mean_payload_bytes())
    };

    let mut all = Vec::new();
    let mut breakdown_done = args.no_breakdown;
    for kind in &args.brokers {
        let figures = match kind {
            BrokerKind::Embedded => {
                let per_record = mean_payload + 12.0 + RECORD_OVERHEAD_BYTES;
                let cap = float_to_count(
                    MOCK_WINDOW_BYTES * f64::from(args.partitions) * args.embedded_window_fill
                        / per_record,
                );
                let n = records.len().min(cap);
                let note = (n < records.len()).then(|| {
                    format!(
                        "capped at {n} records: the mock cluster keeps 5 MiB per partition and \
                         drops older records, {} would not all be readable from offset 0",
                        records.len()
                    )
                });
                let broker = EmbeddedBroker::start()?;
                let brokers = Brokers::Embedded(broker);
                let settings =
                    kafka_settings(None, args.partitions, &topic, &args.kafka_properties);
                let mut f = measure(
                    &rt,
                    "embedded",
                    &brokers,
                    &settings,
                    &records[..n],
                    &projector,
                )?;
                f.note = note;
                if !args.no_rss {
                    println!(
                        "embedded: peak RSS run (broker + producer + projector in one process, \
                         {} records in rounds)...",
                        args.events
                    );
                    f.rss = Some(
                        child::embedded_rss(args, &projector, n as u64)
                            .map_err(|e| format!("{e:#}")),
                    );
                }
                f
            }
            BrokerKind::Tansu => {
                let tansu = match TansuBroker::start() {
                    Ok(tansu) => tansu,
                    Err(error) => {
                        println!("tansu: skipped ({error})");
                        continue;
                    }
                };
                let bootstrap = tansu.bootstrap_servers().to_owned();
                let brokers = Brokers::External(bootstrap.clone());
                let settings = kafka_settings(
                    Some(&bootstrap),
                    args.partitions,
                    &topic,
                    &args.kafka_properties,
                );
                println!(
                    "tansu: consumers' fetch.wait.max.ms {} ms (tansu holds every fetch for the \
                     whole wait and returns at most 5 MiB: with Stockline's cluster default of \
                     100 ms, raw consume would be capped near 5 MiB per 100 ms; \
                     crates/kafka/README.md)",
                    // A `--kafka-property` overrides the setting.
                    settings
                        .properties
                        .get("fetch.wait.max.ms")
                        .cloned()
                        .unwrap_or_else(|| settings.fetch_wait_ms(&brokers).to_string())
                );
                let mut f = measure(&rt, "tansu", &brokers, &settings, &records, &projector)?;
                if !args.no_rss {
                    let ends = ends_of(&rt, &brokers, &settings, &topic)?;
                    println!("tansu: peak RSS run (projector in its own process)...");
                    f.rss = Some(
                        child::projector_rss(
                            &bootstrap,
                            &topic,
                            args.partitions,
                            &ends,
                            &projector,
                            args.stockline_bin.as_deref(),
                            &args.kafka_properties,
                        )
                        .map_err(|e| format!("{e:#}")),
                    );
                }
                drop(tansu);
                f
            }
        };
        print_broker(&figures);
        all.push(figures);
        if !breakdown_done {
            breakdown_done = true;
            let n = records.len().min(200_000);
            breakdown(&records[..n], &topic, args.partitions, &projector)?;
        }
    }
    print_table(&all, &projector);
    Ok(())
}

/// A non-negative float as a count (saturating; NaN is 0).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn float_to_count(value: f64) -> usize {
    value.max(0.0).min(usize::MAX as f64) as usize
}

pub fn kafka_settings(
    bootstrap: Option<&str>,
    partitions: u32,
    topic: &str,
    properties: &[(String, String)],
) -> KafkaSettings {
    // An external broker here is tansu, with its workarounds
    // (crates/kafka/README.md).
    let mut settings = KafkaSettings {
        properties: properties.iter().cloned().collect(),
        partitions,
        ..bootstrap.map_or_else(KafkaSettings::default, KafkaSettings::for_tansu)
    };
    settings.topics.events = topic.to_owned();
    settings
}

fn ends_of(
    rt: &tokio::runtime::Runtime,
    brokers: &Brokers,
    settings: &KafkaSettings,
    topic: &str,
) -> Result<Positions> {
    let brokers = brokers.clone();
    let settings = settings.clone();
    let topic = topic.to_owned();
    let marks = rt
        .block_on(rt.spawn_blocking(move || topic_watermarks(&brokers, &settings, &topic)))?
        .context("watermarks")?;
    Ok(marks
        .into_iter()
        .filter_map(|w| {
            Some((
                u32::try_from(w.partition).ok()?,
                u64::try_from(w.high_watermark).ok()?,
            ))
        })
        .collect())
}

fn measure(
    rt: &tokio::runtime::Runtime,
    label: &'static str,
    brokers: &Brokers,
    settings: &KafkaSettings,
    records: &[OutgoingRecord],
    projector: &ProjectorSettings,
) -> Result<BrokerFigures> {
    let topic = settings.topics.events.clone();
    let mut spec = TopicSpec::new(topic.clone(), settings.partitions);
    spec.config
        .insert("retention.ms".to_owned(), "-1".to_owned());
    rt.block_on(ensure_topics(brokers, settings, &[spec]))
        .context("creating the topic")?;

    // Produce everything first.
    let producer = {
        let _guard = rt.enter();
        RecordProducer::new(brokers, settings)?
    };
    let started = Instant::now();
    for chunk in records.chunks(SEND_CHUNK) {
        let results = rt.block_on(producer.send_all(chunk.to_vec()));
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            bail!("{label}: produce failed: {error}");
        }
    }
    rt.block_on(producer.flush(60_000))?;
    let produce_s = started.elapsed().as_secs_f64();
    drop(producer);
    println!(
        "{label}: produced {} records in {produce_s:.2} s ({:.0}/s)",
        records.len(),
        records.len() as f64 / produce_s
    );

    // What the log holds (the mock drops the oldest records past its window).
    let marks = {
        let brokers = brokers.clone();
        let settings = settings.clone();
        let topic = topic.clone();
        rt.block_on(rt.spawn_blocking(move || topic_watermarks(&brokers, &settings, &topic)))?
            .context("watermarks")?
    };
    let ends: Positions = marks
        .iter()
        .filter_map(|w| {
            Some((
                u32::try_from(w.partition).ok()?,
                u64::try_from(w.high_watermark).ok()?,
            ))
        })
        .collect();
    let readable: i64 = marks.iter().map(|w| w.high_watermark - w.log_start).sum();
    let readable = u64::try_from(readable).unwrap_or(0);
    if readable != records.len() as u64 {
        println!(
            "{label}: WARNING the log holds {readable} of the {} records produced (log starts: {:?})",
            records.len(),
            marks.iter().map(|w| w.log_start).collect::<Vec<_>>()
        );
    }

    let raw = raw_consume(brokers, settings, &topic, &ends, projector)?;
    println!(
        "{label}: raw consume {} records in {:.2} s after assignment: {:.0} records/s (group join {:.1} s)",
        raw.records,
        raw.seconds,
        raw.per_s(),
        raw.join_s
    );
    let e2e = end_to_end(rt, brokers, settings, projector, &ends)?;
    println!(
        "{label}: end to end {} records in {:.2} s after assignment: {:.0} events/s, {} batches, \
         store {:.0} MiB (group join {:.1} s)",
        e2e.rate.records,
        e2e.rate.seconds,
        e2e.rate.per_s(),
        e2e.batches,
        e2e.store_mib,
        e2e.rate.join_s
    );
    let busy: f64 = e2e.cpu.iter().map(|(_, t)| t).sum();
    println!(
        "{label}: CPU while catching up: {busy:.2} s over {:.2} s ({:.2} cores busy): {}",
        e2e.rate.seconds,
        busy / e2e.rate.seconds.max(1e-9),
        e2e.cpu
            .iter()
            .map(|(name, t)| format!("{name} {t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(BrokerFigures {
        broker: label,
        records: readable,
        produce_s,
        raw: Some(raw),
        e2e: Some(e2e.clone()),
        rss: None,
        note: None,
    })
}

fn all_reached(next: &BTreeMap<u32, u64>, ends: &Positions) -> bool {
    ends.iter()
        .all(|(p, end)| next.get(p).copied().unwrap_or(0) >= *end)
}

/// A group consumer (the projector's consumer, settings and batch bounds, a fresh
/// group) reading every record and doing nothing with it.
fn raw_consume(
    brokers: &Brokers,
    settings: &KafkaSettings,
    topic: &str,
    ends: &Positions,
    projector: &ProjectorSettings,
) -> Result<Rate> {
    let mut consumer = PartitionConsumer::subscribe(
        brokers,
        settings,
        &unique_name("bench-raw"),
        &[topic],
        Arc::new(FromBeginning),
    )?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1_800);
    let mut assigned_at = None;
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    let mut records = 0u64;
    let mut cpu_before = procfs::thread_cpu();
    while !all_reached(&next, ends) {
        if Instant::now() > deadline {
            bail!("raw consume: not done after 30 minutes ({records} records)");
        }
        // Each record visited where librdkafka holds it, as the projector
        // reads them (`poll_each`): the consumer's own cost, no copy.
        let batch = match consumer.poll_each(
            projector.batch_max_records,
            projector.batch_max_wait_ms.max(1),
            |record| {
                records += 1;
                if let (Ok(p), Ok(o)) = (
                    u32::try_from(record.partition),
                    u64::try_from(record.offset),
                ) {
                    let entry = next.entry(p).or_insert(0);
                    *entry = (*entry).max(o + 1);
                }
                Ok::<(), stockline_kafka::ConsumeError>(())
            },
        ) {
            Ok(batch) => batch,
            Err(error) if error.is_retriable() => continue,
            Err(error) => return Err(error.into()),
        };
        if assigned_at.is_none()
            && batch
                .changes
                .iter()
                .any(|c| matches!(c, AssignmentChange::Assigned(_)))
        {
            assigned_at = Some(Instant::now());
            cpu_before = procfs::thread_cpu();
        }
    }
    let done = Instant::now();
    let cpu = procfs::cpu_delta(&cpu_before, &procfs::thread_cpu());
    let assigned_at = assigned_at.unwrap_or(started);
    let _ = consumer.close();
    let seconds = done.duration_since(assigned_at).as_secs_f64();
    println!(
        "raw consume CPU: {}",
        cpu.iter()
            .map(|(name, t)| format!("{name} {t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Rate {
        records,
        seconds,
        join_s: assigned_at.duration_since(started).as_secs_f64(),
    })
}

/// The projector (fresh store, fresh group) from offset 0 until its positions
/// reach the high watermarks.
fn end_to_end(
    rt: &tokio::runtime::Runtime,
    brokers: &Brokers,
    settings: &KafkaSettings,
    projector: &ProjectorSettings,
    ends: &Positions,
) -> Result<E2e> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), OpenMode::ReadWrite)?;
    let mut projector = projector.clone();
    projector.group_id = unique_name("bench-projector");
    let started = Instant::now();
    let handle = spawn_projector(brokers, settings, &projector, store)?;
    let mut status = handle.status();
    let assigned = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120),
            status.wait_for(|s| !s.assignment_high_watermarks.is_empty()),
        )
        .await
        .is_ok()
    });
    if !assigned {
        bail!("the projector was not assigned its partitions within 120 s");
    }
    let assigned_at = Instant::now();
    let cpu_before = procfs::thread_cpu();
    if !rt.block_on(handle.wait_for(ends, Duration::from_secs(3_600))) {
        bail!("the projector did not reach the high watermarks within an hour");
    }
    let done = Instant::now();
    let cpu = procfs::cpu_delta(&cpu_before, &procfs::thread_cpu());
    let final_status = handle.status().borrow().clone();
    handle.stop()?;
    let store_mib = mib(dir_size(dir.path()) / 1024);
    Ok(E2e {
        rate: Rate {
            records: final_status.records,
            seconds: done.duration_since(assigned_at).as_secs_f64(),
            join_s: assigned_at.duration_since(started).as_secs_f64(),
        },
        batches: final_status.batches,
        store_mib,
        cpu,
    })
}

pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Where a record's time goes without Kafka: decode, fold, the whole `apply`
/// (decode, routing check, fold, counters, rows, archive copy), and `flush`
/// (encoding the rows, building the `WriteBatch`, RocksDB's write with its WAL).
fn breakdown(
    records: &[OutgoingRecord],
    topic: &str,
    partitions: u32,
    projector: &ProjectorSettings,
) -> Result<()> {
    // Offsets as the broker gives them: per partition, in produce order.
    let mut next: BTreeMap<i32, u64> = BTreeMap::new();
    let offsets: Vec<u64> = records
        .iter()
        .map(|r| {
            let entry = next.entry(r.partition).or_insert(0);
            *entry += 1;
            *entry - 1
        })
        .collect();
    let n = records.len() as f64;

    let started = Instant::now();
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        events.push(decode_event(&record.payload).context("decoding a generated record")?);
    }
    let decode_s = started.elapsed().as_secs_f64();

    let mut ledgers: BTreeMap<i32, Ledger> = BTreeMap::new();
    let started = Instant::now();
    for (event, record) in events.iter().zip(records) {
        let ledger = ledgers.entry(record.partition).or_default();
        let outcome = fold(ledger, event, LogTime::from_millis(record.timestamp_ms));
        std::hint::black_box(outcome);
    }
    let fold_s = started.elapsed().as_secs_f64();
    drop(ledgers);
    drop(events);

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), OpenMode::ReadWrite)?;
    let mut projection = Projection::new(
        store,
        topic,
        Arc::new(move |key: &[u8]| partition_for_key(key, partitions)),
    );
    projection.assign(&(0..partitions).collect::<Vec<_>>())?;
    let mut apply_s = 0.0;
    let mut flush_s = 0.0;
    let indexed: Vec<(usize, &OutgoingRecord)> = records.iter().enumerate().collect();
    for chunk in indexed.chunks(projector.batch_max_records.max(1)) {
        let started = Instant::now();
        for (index, record) in chunk {
            projection.apply(&RawRecord {
                partition: u32::try_from(record.partition).unwrap_or(0),
                offset: offsets[*index],
                timestamp_ms: record.timestamp_ms,
                key: record.key.as_deref(),
                payload: Some(&record.payload),
            })?;
        }
        apply_s += started.elapsed().as_secs_f64();
        let started = Instant::now();
        projection.flush(projector.sync_writes)?;
        flush_s += started.elapsed().as_secs_f64();
    }
    let us = |s: f64| s * 1e6 / n;
    println!(
        "offline projection of {} records (no Kafka, batches of {}), per record:",
        records.len(),
        projector.batch_max_records
    );
    println!(
        "  decode (bincode)                          {:>6.2} µs",
        us(decode_s)
    );
    println!(
        "  fold (pure domain)                        {:>6.2} µs",
        us(fold_s)
    );
    println!(
        "  apply = decode + fold + counters + rows   {:>6.2} µs  (rows, counters, archive copy: {:.2} µs)",
        us(apply_s),
        us(apply_s - decode_s - fold_s)
    );
    println!(
        "  flush = encode rows + WriteBatch + write   {:>6.2} µs",
        us(flush_s)
    );
    println!(
        "  total                                     {:>6.2} µs  => {:.0} records/s on one core",
        us(apply_s + flush_s),
        n / (apply_s + flush_s)
    );
    Ok(())
}

fn print_broker(f: &BrokerFigures) {
    if let Some(note) = &f.note {
        println!("{}: note: {note}", f.broker);
    }
    if let Some(Ok(rss)) = &f.rss {
        println!(
            "{}: peak RSS {:.0} MiB ({}; {} records applied, {:.1} s from its start to caught up, \
             start-up and, embedded, producing included)",
            f.broker,
            mib(rss.peak_kib),
            rss.what,
            rss.records,
            rss.seconds,
        );
    }
    if let Some(Err(error)) = &f.rss {
        println!("{}: peak RSS run failed: {error}", f.broker);
    }
}

fn print_table(all: &[BrokerFigures], projector: &ProjectorSettings) {
    println!();
    println!(
        "| broker | records | produce/s | raw consume/s | end-to-end events/s | ratio | batches (avg size) | projector peak RSS |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for f in all {
        let raw = f.raw.map(|r| r.per_s()).unwrap_or(0.0);
        let e2e = f.e2e.as_ref().map(|e| e.rate.per_s()).unwrap_or(0.0);
        let batches = f.e2e.as_ref().map(|e| e.batches).unwrap_or(0);
        let rss = match &f.rss {
            Some(Ok(r)) => format!("{:.0} MiB ({})", mib(r.peak_kib), r.what),
            Some(Err(_)) => "failed".to_owned(),
            None => "not measured".to_owned(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {} ({:.0}) | {} |",
            f.broker,
            f.records,
            f.records as f64 / f.produce_s.max(1e-9),
            raw,
            e2e,
            e2e / raw.max(1e-9),
            batches,
            f.records as f64 / batches.max(1) as f64,
            rss
        );
    }
    println!(
        "(rates from partition assignment to the last record; projector batch_max_records={}, batch_max_wait_ms={}, fold_threads={}; target ratio >= 0.8)",
        projector.batch_max_records, projector.batch_max_wait_ms, projector.fold_threads
    );
}
