//! Peak RSS of the projector in a process of its own.
//!
//! - tansu: this benchmark re-executed as a projector-only process (`projector-child`:
//!   consumer, projection, RocksDB, the same `spawn_projector` as `stockline run`),
//!   or the real `stockline run` (`--stockline-bin`, ticks off), reading a topic the
//!   parent filled; the figure is that process's `VmHWM` once caught up.
//! - embedded: the broker lives in the projector's process, so the child starts
//!   the mock cluster, a producer and the projector, feeds N records in rounds that
//!   fit the mock's window, waiting for the projector after each, and reports its
//!   whole `VmHWM` (broker and its log window, producer, projector).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use stockline_engine::{EventPublisher, Positions, ProjectorSettings, spawn_projector};
use stockline_kafka::{
    Brokers, EmbeddedBroker, KafkaSettings, RecordProducer, TopicSpec, ensure_topics, unique_name,
};
use stockline_store::{OpenMode, Store};

use crate::pipeline::PipelineArgs;
use crate::procfs;
use crate::workload::RecordSource;

/// What a child reports (one `RESULT {json}` line on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildFigures {
    pub what: String,
    pub records: u64,
    /// From the projector's start to caught up.
    pub seconds: f64,
    pub peak_kib: u64,
    pub now_kib: u64,
    /// RSS before the projector started (embedded: broker and clients).
    pub before_kib: u64,
}

fn parse_positions(text: &str) -> Result<Positions> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (p, o) = pair.split_once(':').context("positions are P:OFFSET,...")?;
            Ok((p.parse()?, o.parse()?))
        })
        .collect()
}

fn render_positions(positions: &Positions) -> String {
    positions
        .iter()
        .map(|(p, o)| format!("{p}:{o}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn read_result(child: std::process::Child) -> Result<ChildFigures> {
    let mut child = child;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<ChildFigures>(json)?);
        }
    }
    let status = child.wait()?;
    match result {
        Some(figures) if status.success() => Ok(figures),
        Some(_) => bail!("child exited with {status}"),
        None => bail!("child exited with {status} without a result"),
    }
}

/// Options of the hidden `projector-child` subcommand.
#[derive(Debug, Clone, Args)]
pub struct ProjectorChildArgs {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partitions: u32,
    /// P:OFFSET,... to reach.
    #[arg(long)]
    ends: String,
    #[arg(long)]
    batch_max_records: usize,
    #[arg(long)]
    batch_max_wait_ms: u64,
    #[arg(long)]
    fold_threads: usize,
    /// librdkafka property for every client (repeatable), e.g.
    /// `--kafka-property fetch.wait.max.ms=100`.
    #[arg(long = "kafka-property", value_parser = crate::parse_property)]
    kafka_properties: Vec<(String, String)>,
}

/// Parent side (tansu): the projector in its own process until it reaches `ends`.
pub fn projector_rss(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    ends: &Positions,
    projector: &ProjectorSettings,
    stockline_bin: Option<&Path>,
    properties: &[(String, String)],
) -> Result<ChildFigures> {
    if let Some(bin) = stockline_bin {
        if !properties.is_empty() {
            anyhow::bail!("--kafka-property is not passed to `stockline run`");
        }
        return stockline_run_rss(bin, bootstrap, topic, partitions, ends, projector);
    }
    let child = Command::new(std::env::current_exe()?)
        .args([
            "projector-child",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--ends",
            &render_positions(ends),
            "--batch-max-records",
            &projector.batch_max_records.to_string(),
            "--batch-max-wait-ms",
            &projector.batch_max_wait_ms.to_string(),
            "--fold-threads",
            &projector.fold_threads.to_string(),
        ])
        .args(crate::property_args(properties))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the projector child")?;
    read_result(child)
}

/// Child side of `projector-child`.
pub fn projector_child(args: &ProjectorChildArgs) -> Result<()> {
    let ends = parse_positions(&args.ends)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let settings = crate::pipeline::kafka_settings(
        Some(&args.bootstrap),
        args.partitions,
        &args.topic,
        &args.kafka_properties,
    );
    let brokers = Brokers::External(args.bootstrap.clone());
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), OpenMode::ReadWrite)?;
    let projector = ProjectorSettings {
        group_id: unique_name("bench-rss"),
        batch_max_records: args.batch_max_records,
        batch_max_wait_ms: args.batch_max_wait_ms,
        fold_threads: args.fold_threads,
        ..ProjectorSettings::default()
    };
    let before = procfs::memory(None).unwrap_or_default();
    let started = Instant::now();
    let handle = spawn_projector(&brokers, &settings, &projector, store)?;
    if !rt.block_on(handle.wait_for(&ends, Duration::from_secs(3_600))) {
        bail!("projector child: not caught up within an hour");
    }
    let seconds = started.elapsed().as_secs_f64();
    let memory = procfs::memory(None).context("reading /proc/self/status")?;
    let records = handle.status().borrow().records;
    handle.stop()?;
    let figures = ChildFigures {
        what: "projector-only process: consumer, projection, RocksDB".to_owned(),
        records,
        seconds,
        peak_kib: memory.peak_kib,
        now_kib: memory.now_kib,
        before_kib: before.now_kib,
    };
    println!("RESULT {}", serde_json::to_string(&figures)?);
    Ok(())
}

/// `stockline run` (ticks off) against tansu; caught up is read from its store
/// (opened read-only), the figure from `/proc/<pid>/status`.
fn stockline_run_rss(
    bin: &Path,
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    ends: &Positions,
    projector: &ProjectorSettings,
) -> Result<ChildFigures> {
    // tansu's workarounds, as the in-process runs have them.
    let tansu = KafkaSettings::for_tansu(bootstrap);
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(bin)
        .arg("run")
        .env("STOCKLINE_DATA_DIR", dir.path())
        .env("STOCKLINE_KAFKA__BROKERS", bootstrap)
        .env("STOCKLINE_KAFKA__PARTITIONS", partitions.to_string())
        .env(
            "STOCKLINE_KAFKA__VERIFY_HIGH_WATERMARKS_BY_READING",
            tansu.verify_high_watermarks_by_reading.to_string(),
        )
        .env(
            "STOCKLINE_KAFKA__FETCH_WAIT_MAX_MS",
            tansu
                .fetch_wait_ms(&Brokers::External(bootstrap.to_owned()))
                .to_string(),
        )
        .env("STOCKLINE_KAFKA__TOPICS__EVENTS", topic)
        .env(
            "STOCKLINE_KAFKA__TOPICS__DEAD_LETTERS",
            format!("{topic}-dlq"),
        )
        .env(
            "STOCKLINE_KAFKA__TOPICS__NOTIFICATIONS",
            format!("{topic}-notifications"),
        )
        .env("STOCKLINE_TICKS__ENABLED", "false")
        .env("STOCKLINE_PROJECTOR__GROUP_ID", unique_name("bench-run"))
        .env(
            "STOCKLINE_PROJECTOR__BATCH_MAX_RECORDS",
            projector.batch_max_records.to_string(),
        )
        .env(
            "STOCKLINE_PROJECTOR__BATCH_MAX_WAIT_MS",
            projector.batch_max_wait_ms.to_string(),
        )
        .env(
            "STOCKLINE_PROJECTOR__FOLD_THREADS",
            projector.fold_threads.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let started = Instant::now();
    let store_dir = dir.path().join("store");
    let records: u64 = ends.values().sum();
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("stockline run exited early: {status}"));
        }
        if started.elapsed() > Duration::from_secs(3_600) {
            break Err(anyhow::anyhow!(
                "stockline run: not caught up within an hour"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
        // Read-only opens do not take RocksDB's lock; a failed open (files moving
        // under a flush) is retried at the next round.
        let Ok(store) = Store::open(&store_dir, OpenMode::ReadOnly) else {
            continue;
        };
        let Ok(positions) = store.positions(topic) else {
            continue;
        };
        if ends
            .iter()
            .all(|(p, end)| positions.get(p).is_some_and(|have| have >= end))
        {
            let seconds = started.elapsed().as_secs_f64();
            let memory = procfs::memory(Some(pid)).context("reading the child's status")?;
            break Ok(ChildFigures {
                what: "`stockline run`, ticks off".to_owned(),
                records,
                seconds,
                peak_kib: memory.peak_kib,
                now_kib: memory.now_kib,
                before_kib: 0,
            });
        }
    };
    // SIGTERM: `stockline run` drains and stops cleanly.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait()?.is_none() {
        child.kill()?;
        child.wait()?;
    }
    outcome
}

/// Options of the hidden `embedded-rss-child` subcommand.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedChildArgs {
    #[arg(long)]
    events: u64,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    skus: usize,
    #[arg(long)]
    partitions: u32,
    /// Records per round (each round fits the mock's window).
    #[arg(long)]
    round: u64,
    #[arg(long)]
    batch_max_records: usize,
    #[arg(long)]
    batch_max_wait_ms: u64,
    #[arg(long)]
    fold_threads: usize,
    /// librdkafka property for every client (repeatable), e.g.
    /// `--kafka-property fetch.wait.max.ms=100`.
    #[arg(long = "kafka-property", value_parser = crate::parse_property)]
    kafka_properties: Vec<(String, String)>,
}

/// Parent side (embedded).
pub fn embedded_rss(
    args: &PipelineArgs,
    projector: &ProjectorSettings,
    round: u64,
) -> Result<ChildFigures> {
    let child = Command::new(std::env::current_exe()?)
        .args([
            "embedded-rss-child",
            "--events",
            &args.events.to_string(),
            "--seed",
            &args.seed.to_string(),
            "--skus",
            &args.skus.to_string(),
            "--partitions",
            &args.partitions.to_string(),
            "--round",
            &round.max(1).to_string(),
            "--batch-max-records",
            &projector.batch_max_records.to_string(),
            "--batch-max-wait-ms",
            &projector.batch_max_wait_ms.to_string(),
            "--fold-threads",
            &projector.fold_threads.to_string(),
        ])
        .args(crate::property_args(&args.kafka_properties))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the embedded child")?;
    read_result(child)
}

/// Child side of `embedded-rss-child`.
pub fn embedded_child(args: &EmbeddedChildArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let _guard = rt.enter();
    let topic = unique_name("bench-events");
    let settings =
        crate::pipeline::kafka_settings(None, args.partitions, &topic, &args.kafka_properties);
    let brokers = Brokers::Embedded(EmbeddedBroker::start()?);
    rt.block_on(ensure_topics(
        &brokers,
        &settings,
        &[TopicSpec::new(topic.clone(), args.partitions)],
    ))?;
    let producer = RecordProducer::new(&brokers, &settings)?;
    let publisher = EventPublisher::new(producer.clone(), &topic, args.partitions);
    let mut source = RecordSource::new(publisher, args.seed, args.skus, args.events);
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), OpenMode::ReadWrite)?;
    let projector = ProjectorSettings {
        group_id: unique_name("bench-rss"),
        batch_max_records: args.batch_max_records,
        batch_max_wait_ms: args.batch_max_wait_ms,
        fold_threads: args.fold_threads,
        ..ProjectorSettings::default()
    };
    let before = procfs::memory(None).unwrap_or_default();
    let started = Instant::now();
    let handle = spawn_projector(&brokers, &settings, &projector, store)?;
    let mut ends = Positions::new();
    let mut produced = 0u64;
    while produced < args.events {
        let n = args.round.min(args.events - produced);
        let records = source.next_records(usize::try_from(n)?)?;
        for result in rt.block_on(producer.send_all(records)) {
            let position = result?;
            let (Ok(p), Ok(o)) = (
                u32::try_from(position.partition),
                u64::try_from(position.offset),
            ) else {
                continue;
            };
            let end = ends.entry(p).or_insert(0);
            *end = (*end).max(o + 1);
        }
        produced += n;
        if !rt.block_on(handle.wait_for(&ends, Duration::from_secs(600))) {
            bail!("embedded child: the projector did not catch up within 10 minutes");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let memory = procfs::memory(None).context("reading /proc/self/status")?;
    let records = handle.status().borrow().records;
    handle.stop()?;
    rt.block_on(producer.flush(10_000)).ok();
    let figures = ChildFigures {
        what: "broker + producer + projector in one process".to_owned(),
        records,
        seconds,
        peak_kib: memory.peak_kib,
        now_kib: memory.now_kib,
        before_kib: before.now_kib,
    };
    println!("RESULT {}", serde_json::to_string(&figures)?);
    Ok(())
}
