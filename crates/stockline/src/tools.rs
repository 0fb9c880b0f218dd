//! One-shot commands: schemas, checking and publishing event files, rebuilds,
//! store comparison.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use stockline_engine::{EventPublisher, RebuildLimit, RebuildSource, rebuild as rebuild_store};
use stockline_kafka::{Brokers, RecordProducer};
use stockline_store::{OpenMode, Store, StoreContents, compare};

use crate::config::Settings;

#[derive(Subcommand)]
pub enum SchemasAction {
    /// Write the generated schemas into a directory.
    Write {
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
    /// Fail if the schemas in a directory differ from the generated ones.
    Check {
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Make a new random token; prints it once, and the configuration entry
    /// holding only its SHA-256 digest.
    New {
        /// Who holds it ("web shop", "store 12 desk").
        #[arg(long)]
        name: String,
        /// channel, store, analyst or admin.
        #[arg(long)]
        role: String,
        /// For `--role channel`: the channel.
        #[arg(long)]
        channel: Option<String>,
        /// For `--role store`: its locations (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        locations: Vec<String>,
    },
    /// Print the SHA-256 digest of a token read from stdin.
    Hash,
}

pub fn token(action: TokenAction) -> Result<()> {
    match action {
        TokenAction::Hash => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token)?;
            println!("{}", stockline_service::token_digest(token.trim()));
            Ok(())
        }
        TokenAction::New {
            name,
            role,
            channel,
            locations,
        } => {
            let role_line = match role.as_str() {
                "channel" => {
                    let channel = channel.context("--role channel needs --channel")?;
                    stockline_domain::ChannelId::new(&channel).map_err(anyhow::Error::msg)?;
                    format!("role = \"channel\"\nchannel = {channel:?}")
                }
                "store" => {
                    if locations.is_empty() {
                        bail!("--role store needs --locations");
                    }
                    for location in &locations {
                        stockline_domain::LocationId::new(location).map_err(anyhow::Error::msg)?;
                    }
                    format!("role = \"store\"\nlocations = {locations:?}")
                }
                "analyst" | "admin" => format!("role = {role:?}"),
                other => bail!("unknown role {other:?}: channel, store, analyst or admin"),
            };
            let token = stockline_service::new_token();
            println!("# token (shown once; give it to {name}):\n# {token}");
            println!(
                "[[http.tokens]]\nname = {name:?}\nsha256 = {:?}\n{role_line}",
                stockline_service::token_digest(&token)
            );
            Ok(())
        }
    }
}

pub fn schemas(action: SchemasAction) -> Result<()> {
    let generated = stockline_wire::schema::generate();
    match action {
        SchemasAction::Write { dir } => {
            for (path, text) in &generated {
                let target = dir.join(path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&target, text)
                    .with_context(|| format!("writing {}", target.display()))?;
            }
            println!(
                "wrote {} schema files under {}",
                generated.len(),
                dir.display()
            );
            Ok(())
        }
        SchemasAction::Check { dir } => {
            let stale: Vec<&String> = generated
                .iter()
                .filter(|(path, text)| {
                    std::fs::read_to_string(dir.join(path)).ok().as_deref() != Some(text.as_str())
                })
                .map(|(path, _)| path)
                .collect();
            if stale.is_empty() {
                println!("{} schema files are up to date", generated.len());
                Ok(())
            } else {
                bail!(
                    "stale schema files: {stale:?}; run `stockline schemas write --dir {}`",
                    dir.display()
                )
            }
        }
    }
}

fn open_lines(input: &Path) -> Result<Box<dyn BufRead>> {
    Ok(if input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        Box::new(BufReader::new(file))
    })
}

/// Parses and validates one JSON line.
fn parse_line(line: &str) -> std::result::Result<stockline_domain::Event, String> {
    let event = stockline_wire::json::event_from_json(line.as_bytes())
        .map_err(|e| format!("at `{}`: {}", e.path, e.message))?;
    event
        .validate()
        .map_err(|e| format!("{} ({})", e, e.code()))?;
    Ok(event)
}

pub fn check_events(input: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let (mut good, mut bad) = (0u64, 0u64);
    for (index, line) in open_lines(input)?.lines().enumerate() {
        let line_number = index + 1;
        let line = line.with_context(|| format!("reading line {line_number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(_) => good += 1,
            Err(reason) => {
                bad += 1;
                writeln!(out, "line {line_number}: {reason}")?;
            }
        }
    }
    writeln!(out, "{good} valid, {bad} invalid")?;
    if bad > 0 {
        bail!("{bad} invalid events");
    }
    Ok(())
}

/// Publishing needs a broker other processes can reach: the embedded one lives
/// inside `stockline run` / `stockline up`.
fn external_brokers(settings: &Settings) -> Result<Brokers> {
    match &settings.kafka.brokers {
        Some(list) => Ok(Brokers::External(list.clone())),
        None => bail!(
            "no brokers configured: the embedded broker lives inside `stockline run` or `stockline up`. \
             Post events to its HTTP API, or set STOCKLINE_KAFKA__BROKERS (or [kafka] brokers) to a \
             Kafka cluster"
        ),
    }
}

pub async fn publish(settings: &Settings, input: &Path) -> Result<()> {
    let brokers = external_brokers(settings)?;
    let producer = RecordProducer::new(&brokers, &settings.kafka)?;
    let publisher = EventPublisher::new(
        producer.clone(),
        &settings.kafka.topics.events,
        settings.kafka.partitions,
    );
    let mut out = std::io::stdout().lock();
    let (mut published, mut bad) = (0u64, 0u64);
    // Published in chunks: pipelined within a chunk, bounded memory overall.
    const CHUNK_EVENTS: usize = 1_000;
    let mut chunk: Vec<(usize, stockline_domain::Event)> = Vec::with_capacity(CHUNK_EVENTS);
    let mut lines = open_lines(input)?.lines().enumerate().peekable();
    loop {
        let next = lines.next();
        if let Some((index, line)) = next {
            let line_number = index + 1;
            let line = line.with_context(|| format!("reading line {line_number}"))?;
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(&line) {
                Ok(event) => chunk.push((line_number, event)),
                Err(reason) => {
                    bad += 1;
                    writeln!(out, "line {line_number}: rejected: {reason}")?;
                }
            }
        }
        let finished = lines.peek().is_none();
        if chunk.len() >= CHUNK_EVENTS || (finished && !chunk.is_empty()) {
            let events: Vec<stockline_domain::Event> =
                chunk.iter().map(|(_, e)| e.clone()).collect();
            let results = publisher.publish_all(&events).await;
            for ((line_number, event), result) in chunk.drain(..).zip(results) {
                match result {
                    Ok(tokens) => {
                        published += 1;
                        let tokens: Vec<String> = tokens
                            .iter()
                            .map(|t| format!("{}:{}", t.partition, t.offset))
                            .collect();
                        writeln!(
                            out,
                            "line {line_number}: {} at {}",
                            event.event_id,
                            tokens.join(",")
                        )?;
                    }
                    Err(error) => {
                        bad += 1;
                        writeln!(out, "line {line_number}: not published: {error}")?;
                    }
                }
            }
        }
        if finished {
            break;
        }
    }
    producer.flush(10_000).await?;
    writeln!(out, "{published} published, {bad} not published")?;
    if bad > 0 {
        bail!("{bad} events not published");
    }
    Ok(())
}

pub async fn rebuild(settings: &Settings, to: &Path, from_archive: Option<&Path>) -> Result<()> {
    let settings = settings.clone();
    let to = to.to_path_buf();
    let from_archive = from_archive.map(Path::to_path_buf);
    let report = tokio::task::spawn_blocking(move || -> Result<_> {
        let topic = settings.kafka.topics.events.clone();
        let partitions = settings.kafka.partitions;
        let mut progress = |records: u64| eprintln!("rebuild: {records} records applied");
        let limit = RebuildLimit::default();
        match from_archive {
            Some(dir) => {
                let source = Store::open(&dir, OpenMode::ArchiveSource)?;
                Ok(rebuild_store(
                    RebuildSource::Archive { store: &source },
                    &to,
                    StoreContents::Full,
                    &topic,
                    partitions,
                    &limit,
                    &mut progress,
                )?)
            }
            None => {
                let brokers = external_brokers(&settings)?;
                Ok(rebuild_store(
                    RebuildSource::Kafka {
                        brokers: &brokers,
                        settings: &settings.kafka,
                    },
                    &to,
                    StoreContents::Full,
                    &topic,
                    partitions,
                    &limit,
                    &mut progress,
                )?)
            }
        }
    })
    .await??;
    let rate = report.records as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "rebuilt {} records ({} dead letters) in {:.2}s ({rate:.0} records/s); positions {:?}",
        report.records,
        report.dead_letters,
        report.elapsed.as_secs_f64(),
        report.positions
    );
    Ok(())
}

pub fn diff(left: &Path, right: &Path, limit: usize) -> Result<()> {
    let left_store = Store::open(left, OpenMode::ReadOnly)?;
    let right_store = Store::open(right, OpenMode::ReadOnly)?;
    let comparison = compare(&left_store, &right_store, limit)?;
    let keys: u64 = comparison.keys_compared.iter().map(|(_, n)| n).sum();
    if comparison.difference_count == 0 {
        println!(
            "identical: {keys} keys in {} column families",
            comparison.keys_compared.len()
        );
        return Ok(());
    }
    for difference in &comparison.differences {
        println!("{difference}");
    }
    bail!(
        "{} differences ({} shown) between {} and {}",
        comparison.difference_count,
        comparison.differences.len(),
        left.display(),
        right.display()
    )
}
