//! `stockline import-tills`: a store till export (CSV) published as till sales and
//! returns, through the configured brokers (as `stockline publish`) or a running
//! service's ingest endpoint (`--url`, `--token`).
//!
//! Rows are translated by `stockline_adapters::tills` (columns documented there and
//! in docs/adapters.md). A bad row is reported with its line number and the good
//! ones are still imported; event ids come from (location, receipt, line), so
//! importing the same file again changes nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use stockline_adapters::tills::{TillLine, TillsReader};
use stockline_domain::{ChannelId, Event};
use stockline_engine::EventPublisher;
use stockline_kafka::{Brokers, RecordProducer};

use crate::config::Settings;

#[derive(clap::Args)]
pub struct ImportTills {
    /// The till export: CSV with a header naming
    /// receipt_id,line,time,location,sku,quantity,kind (see docs/adapters.md), or
    /// `-` for stdin.
    pub file: PathBuf,
    /// The channel the sales and returns are recorded under.
    #[arg(long, default_value = "pos")]
    pub channel: String,
    /// Post to a running service's ingest endpoint (`http://127.0.0.1:8080`)
    /// instead of the configured brokers (useful with the embedded broker, which
    /// lives inside `stockline serve` / `stockline up`).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for `--url`: admin, a store token of the file's locations, or
    /// a channel token of `--channel`.
    #[arg(long, env = "STOCKLINE_TOKEN")]
    pub token: Option<String>,
    /// Events per request or publish batch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

/// Where the events go.
enum Sink {
    Publisher {
        publisher: EventPublisher,
        producer: RecordProducer,
    },
    Http {
        client: reqwest::Client,
        url: String,
        token: String,
    },
}

/// What became of one batch: (accepted, refused rows with the reason).
type Sent = (u64, Vec<(u64, String)>);

impl Sink {
    async fn send(&self, rows: &[TillLine]) -> Result<Sent> {
        let events: Vec<Event> = rows.iter().map(|r| r.event.clone()).collect();
        match self {
            Sink::Publisher { publisher, .. } => {
                let mut accepted = 0;
                let mut refused = Vec::new();
                for (row, result) in rows.iter().zip(publisher.publish_all(&events).await) {
                    match result {
                        Ok(_) => accepted += 1,
                        Err(error) if error.is_bad_input() => {
                            refused.push((row.line, error.to_string()));
                        }
                        Err(error) => {
                            return Err(error).with_context(|| {
                                format!("publishing line {} (nothing after it was sent)", row.line)
                            });
                        }
                    }
                }
                Ok((accepted, refused))
            }
            Sink::Http { client, url, token } => {
                let response = client
                    .post(format!("{}/v1/events", url.trim_end_matches('/')))
                    .bearer_auth(token)
                    .json(&events)
                    .send()
                    .await
                    .with_context(|| format!("posting to {url}"))?;
                let status = response.status();
                let body: serde_json::Value =
                    response.json().await.context("reading the ingest answer")?;
                if !status.is_success() {
                    bail!(
                        "ingest answered {status} for the batch from line {}: {body}",
                        rows.first().map_or(0, |r| r.line)
                    );
                }
                let items = body
                    .get("items")
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut accepted = 0;
                let mut refused = Vec::new();
                for item in &items {
                    let index = item
                        .get("index")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|i| usize::try_from(i).ok());
                    let line = index.and_then(|i| rows.get(i)).map_or(0, |r| r.line);
                    if item.get("status").and_then(serde_json::Value::as_str) == Some("accepted") {
                        accepted += 1;
                    } else {
                        let detail = item
                            .pointer("/error/detail")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("refused");
                        refused.push((line, detail.to_owned()));
                    }
                }
                Ok((accepted, refused))
            }
        }
    }

    async fn finish(&self) -> Result<()> {
        if let Sink::Publisher { producer, .. } = self {
            producer.flush(10_000).await?;
        }
        Ok(())
    }
}

/// A bad row, on stdout above the bar: a list to fix the file by.
fn report(bar: &ProgressBar, bad: &mut u64, line: u64, reason: &str) {
    *bad += 1;
    bar.suspend(|| println!("line {line}: {reason}"));
}

fn open(path: &Path) -> Result<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let length = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(std::io::BufReader::new(file)), length))
}

pub async fn import_tills(settings: &Settings, args: ImportTills) -> Result<()> {
    let channel = ChannelId::new(&args.channel)
        .map_err(|e| anyhow::anyhow!("--channel {:?}: {e}", args.channel))?;
    let batch = args.batch.clamp(1, 1_000);
    let sink = match &args.url {
        Some(url) => Sink::Http {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
            url: url.clone(),
            token: args
                .token
                .clone()
                .context("--url needs --token (or STOCKLINE_TOKEN)")?,
        },
        None => {
            let Some(list) = &settings.kafka.brokers else {
                bail!(
                    "no brokers configured: the embedded broker lives inside `stockline serve` or \
                     `stockline up`. Import through its HTTP API with --url and --token, or set \
                     STOCKLINE_KAFKA__BROKERS (or [kafka] brokers) to a Kafka cluster"
                );
            };
            let producer = RecordProducer::new(&Brokers::External(list.clone()), &settings.kafka)?;
            Sink::Publisher {
                publisher: EventPublisher::new(
                    producer.clone(),
                    &settings.kafka.topics.events,
                    settings.kafka.partitions,
                ),
                producer,
            }
        }
    };
    let (input, length) = open(&args.file)?;
    let mut rows = TillsReader::new(input, channel)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let bar = match length {
        Some(length) => ProgressBar::new(length).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    if !rows.ignored_columns().is_empty() {
        bar.println(format!(
            "ignoring column(s) {}",
            rows.ignored_columns().join(", ")
        ));
    }
    let (mut imported, mut bad) = (0u64, 0u64);
    let mut pending: Vec<TillLine> = Vec::with_capacity(batch);
    loop {
        let next = rows.next();
        let done = next.is_none();
        match next {
            Some(Ok(row)) => pending.push(row),
            Some(Err(error)) => report(&bar, &mut bad, error.line, &error.message),
            None => {}
        }
        if pending.len() >= batch || (done && !pending.is_empty()) {
            let (accepted, refused) = sink.send(&pending).await?;
            imported += accepted;
            for (line, reason) in refused {
                report(&bar, &mut bad, line, &reason);
            }
            pending.clear();
            bar.set_position(rows.bytes_read());
            bar.set_message(format!("{imported} imported, {bad} bad"));
        }
        if done {
            break;
        }
    }
    sink.finish().await?;
    bar.finish_and_clear();
    println!(
        "{imported} rows imported, {bad} bad rows, from {} (rows imported before change nothing)",
        args.file.display()
    );
    if bad > 0 {
        bail!("{bad} bad rows (listed above with their line numbers); the others were imported");
    }
    Ok(())
}
