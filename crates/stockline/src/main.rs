//! `stockline`: one binary for every role. Subcommands are thin: they parse
//! arguments and configuration, then call the library crates.

mod analyst;
mod config;
mod imports;
mod pipeline;
mod simulate;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Settings;

/// mimalloc rather than glibc's malloc: the projection allocates and frees many
/// small buffers per record; a replay ran about 40% faster with it
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "stockline",
    version,
    about = "Event-sourced omnichannel inventory ledger"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables STOCKLINE_<SECTION>__<KEY>
    /// override it; see docs/configuration.md.
    #[arg(long, global = true, env = "STOCKLINE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline: broker connection (embedded when no brokers are
    /// configured), projector, tick and outbox publishers, until Ctrl-C.
    Run,
    /// Run the pipeline and the HTTP API ([http] settings) until Ctrl-C. With
    /// `--store DIR`, serve that store read-only instead (a replay), without
    /// broker or projector.
    Serve {
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// The main job: the pipeline, the HTTP API and a simulated retailer's traffic,
    /// on the embedded broker unless brokers are configured. Prints where to look.
    Up {
        /// Seed of the traffic (default: from the clock, so each run adds new
        /// traffic to the same store).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated events per second.
        #[arg(long, default_value_t = 20)]
        rate: u64,
    },
    /// Publish a simulated retailer's traffic (seeded, reproducible): to the
    /// configured brokers, or to a running service with `--url`.
    Simulate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Events per second (0: as fast as possible).
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Stop after this many events (setup included).
        #[arg(long)]
        events: Option<u64>,
        /// Stop after this long (`90s`, `5m`, `2h`).
        #[arg(long)]
        duration: Option<String>,
        /// Post to a running service's ingest endpoint instead of Kafka.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token for `--url` (an admin token: the setup defines locations).
        #[arg(long, env = "STOCKLINE_TOKEN")]
        token: Option<String>,
        /// Simulated time of the first event (its `occurred_at`), RFC 3339, or
        /// `now`. Fixed by default so that a seed always yields the same events.
        #[arg(long, default_value = "2026-01-05T09:00:00Z")]
        start: String,
    },
    /// Bearer tokens for the HTTP API.
    Token {
        #[command(subcommand)]
        action: tools::TokenAction,
    },
    /// Publish events from a JSON-lines file (or `-` for stdin) to the events
    /// topic: each line is validated; bad lines are reported with their number and
    /// not published. Prints each event's consistency tokens.
    Publish { input: PathBuf },
    /// Rebuild a store from the log into a fresh directory: from the events topic
    /// (offset 0 to the current end), or from another store's archive.
    Rebuild {
        /// The new store's directory (must not hold a store).
        #[arg(long)]
        to: PathBuf,
        /// Read another store's archive instead of Kafka (the embedded broker keeps
        /// no history of its own).
        #[arg(long)]
        from_archive: Option<PathBuf>,
    },
    /// Compare two stores column family by column family, byte for byte; print the
    /// differences. Exits 1 when they differ.
    Diff {
        left: PathBuf,
        right: PathBuf,
        /// Differences printed at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Replay the log from the beginning into a separate store, up to an instant
    /// (`--until`) or offsets (`--to-offsets`). Never publishes anything. Query the
    /// result with `stockline query --store DIR`.
    Replay {
        /// The new store's directory.
        #[arg(long)]
        to: PathBuf,
        /// Stop before the first record later than this instant (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Stop at these offsets, exclusive: `PARTITION:OFFSET,...`.
        #[arg(long)]
        to_offsets: Option<String>,
        #[command(flatten)]
        source: analyst::LogSource,
    },
    /// Replay the log up to the store's positions and compare with the store;
    /// then list stock counts that disagreed with the books and what explains it.
    Reconcile {
        /// The store to check (default: the configured one).
        #[arg(long)]
        store: Option<PathBuf>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        source: analyst::LogSource,
    },
    /// Per-channel (or per-location) performance over a date range.
    Report {
        /// First day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: String,
        /// Last day, included.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value = "day")]
        by: analyst::Period,
        #[arg(long, value_enum, default_value = "channel")]
        group: analyst::Grouping,
        #[arg(long, value_enum, default_value = "table")]
        format: analyst::Format,
        /// Also draw one figure over time as SVG: `units_sold`, `revenue`,
        /// `pickup_rate`...
        #[arg(long, requires = "svg")]
        chart: Option<String>,
        /// Where to write the SVG chart.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// The store to read (default: the configured one; or a replay's).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// The event log (or a time range of it) as JSON lines or CSV.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: analyst::ExportFormat,
        /// From this log time (RFC 3339), included.
        #[arg(long)]
        from: Option<String>,
        /// Until this log time, excluded.
        #[arg(long)]
        to: Option<String>,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The store whose archive to export (default: the configured one).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Read a store's read models (live or replayed).
    Query {
        #[arg(long, global = true)]
        store: Option<PathBuf>,
        #[command(subcommand)]
        action: analyst::QueryAction,
    },
    /// The JSON Schemas of the event types (schemas/).
    Schemas {
        #[command(subcommand)]
        action: tools::SchemasAction,
    },
    /// Check a JSON-lines file of events (or stdin with `-`) without publishing it.
    CheckEvents { input: PathBuf },
    /// Import a store till export (CSV): till sales and returns, published to the
    /// configured brokers or a running service (`--url`). Bad rows are reported
    /// with their line number; importing a file again changes nothing.
    ImportTills(imports::ImportTills),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Schemas { action } => tools::schemas(action),
        Command::CheckEvents { input } => tools::check_events(&input),
        Command::Diff { left, right, limit } => tools::diff(&left, &right, limit),
        Command::Token { action } => tools::token(action),
        Command::Replay {
            to,
            until,
            to_offsets,
            source,
        } => analyst::replay(
            &Settings::load(cli.config.as_deref())?,
            &source,
            &to,
            until.as_deref(),
            to_offsets.as_deref(),
        ),
        Command::Reconcile {
            store,
            limit,
            source,
        } => analyst::reconcile(
            &Settings::load(cli.config.as_deref())?,
            &source,
            store.as_deref(),
            limit,
        ),
        Command::Report {
            from,
            to,
            by,
            group,
            format,
            chart,
            svg,
            store,
        } => analyst::report(
            &Settings::load(cli.config.as_deref())?,
            store.as_deref(),
            &from,
            &to,
            by,
            group,
            format,
            chart.as_deref().zip(svg.as_deref()),
        ),
        Command::Export {
            format,
            from,
            to,
            out,
            store,
        } => analyst::export(
            &Settings::load(cli.config.as_deref())?,
            store.as_deref(),
            format,
            from.as_deref(),
            to.as_deref(),
            out.as_deref(),
        ),
        Command::Query { store, action } => analyst::query(
            &Settings::load(cli.config.as_deref())?,
            store.as_deref(),
            action,
        ),
        command => {
            let settings = Settings::load(cli.config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                match command {
                    Command::Run => run(settings).await,
                    Command::Serve { store: None } => serve(settings).await,
                    Command::Serve { store: Some(dir) } => serve_read_only(settings, &dir).await,
                    Command::Up { seed, rate } => up(settings, seed, rate).await,
                    Command::Simulate {
                        seed,
                        rate,
                        events,
                        duration,
                        url,
                        token,
                        start,
                    } => simulate(settings, seed, rate, events, duration, url, token, &start).await,
                    Command::Publish { input } => tools::publish(&settings, &input).await,
                    Command::ImportTills(args) => imports::import_tills(&settings, args).await,
                    Command::Rebuild { to, from_archive } => {
                        tools::rebuild(&settings, &to, from_archive.as_deref()).await
                    }
                    Command::Schemas { .. }
                    | Command::CheckEvents { .. }
                    | Command::Diff { .. }
                    | Command::Token { .. }
                    | Command::Replay { .. }
                    | Command::Reconcile { .. }
                    | Command::Report { .. }
                    | Command::Export { .. }
                    | Command::Query { .. } => unreachable!("handled above"),
                }
            })
        }
    }
}

async fn run(settings: Settings) -> Result<()> {
    let pipeline = pipeline::Pipeline::start(settings).await?;
    eprintln!(
        "stockline running: brokers {} ({}), store {}",
        pipeline.brokers.bootstrap_servers(),
        if pipeline.brokers.is_embedded() {
            "embedded"
        } else {
            "external"
        },
        pipeline.store.path().display()
    );
    wait_for_stop(&pipeline).await;
    eprintln!("stopping: draining the projector...");
    pipeline.shutdown(Duration::from_secs(10)).await
}

async fn serve(settings: Settings) -> Result<()> {
    // Installed before anything records, so the projector's metrics are kept.
    let metrics = stockline_service::prometheus();
    let pipeline = pipeline::Pipeline::start(settings.clone()).await?;
    let (address, stop_http, server) = start_service(&settings, &pipeline, metrics).await?;
    eprintln!(
        "stockline serving http://{address} (brokers {}, store {})",
        pipeline.brokers.bootstrap_servers(),
        pipeline.store.path().display()
    );
    wait_for_stop(&pipeline).await;
    eprintln!("stopping...");
    let _ = stop_http.send(());
    server.await.context("joining the HTTP server")??;
    pipeline.shutdown(Duration::from_secs(10)).await
}

async fn serve_read_only(settings: Settings, dir: &std::path::Path) -> Result<()> {
    let store = stockline_store::Store::open(dir, stockline_store::OpenMode::ReadOnly)
        .with_context(|| format!("opening {}", dir.display()))?;
    let state = stockline_service::AppState::read_only(
        store,
        &settings.kafka.topics.events,
        settings.kafka.partitions,
        settings.http.clone(),
        stockline_service::prometheus(),
    )
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("listening on {}", settings.http.listen))?;
    eprintln!(
        "stockline serving http://{} read-only from {}",
        listener.local_addr()?,
        dir.display()
    );
    stockline_service::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn start_service(
    settings: &Settings,
    pipeline: &pipeline::Pipeline,
    metrics: Option<stockline_service::PrometheusHandle>,
) -> Result<(
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let state = stockline_service::AppState::new(stockline_service::ServiceParts {
        store: pipeline.store.clone(),
        publisher: pipeline.publisher.clone(),
        status: pipeline.projector.status(),
        settings: settings.http.clone(),
        embedded_broker: pipeline.brokers.is_embedded(),
        metrics,
    })
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("listening on {}", settings.http.listen))?;
    let address = listener.local_addr()?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stockline_service::serve(listener, state, async move {
        let _ = http_stopped.await;
    }));
    Ok((address, stop_http, server))
}

async fn up(mut settings: Settings, seed: Option<u64>, rate: u64) -> Result<()> {
    let metrics = stockline_service::prometheus();
    let demo_token = if settings.http.tokens.is_empty() {
        let token = stockline_service::new_token();
        settings.http.tokens.push(stockline_service::TokenEntry {
            name: "demo admin".to_owned(),
            sha256: stockline_service::token_digest(&token),
            role: stockline_service::Role::Admin,
        });
        Some(token)
    } else {
        None
    };
    let seed =
        seed.unwrap_or_else(|| u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1));
    let pipeline = pipeline::Pipeline::start(settings.clone()).await?;
    let (address, stop_http, server) = start_service(&settings, &pipeline, metrics).await?;
    let progress = Arc::new(simulate::SimProgress::default());
    let stop_simulation = Arc::new(tokio::sync::Notify::new());
    let simulation = tokio::spawn(simulate::run_simulation(
        stockline_simulator::SimConfig::new(seed, chrono::Utc::now()),
        simulate::Sink::Publisher(pipeline.publisher.clone()),
        simulate::Pace {
            rate_per_s: rate,
            events: None,
            duration: None,
        },
        Arc::clone(&progress),
        Arc::clone(&stop_simulation),
    ));
    print_banner(
        &pipeline,
        address,
        seed,
        rate,
        demo_token.as_deref(),
        &progress,
    )
    .await;
    let status_lines = {
        let progress = Arc::clone(&progress);
        let status = pipeline.projector.status();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(30));
            interval.tick().await;
            loop {
                interval.tick().await;
                let s = status.borrow().clone();
                eprintln!(
                    "[up] {} simulated events published; projector applied {} records in {} batches ({} dead letters)",
                    progress
                        .published
                        .load(std::sync::atomic::Ordering::Relaxed),
                    s.records,
                    s.batches,
                    s.dead_letters
                );
            }
        })
    };
    wait_for_stop(&pipeline).await;
    eprintln!("stopping: simulation, HTTP, projector...");
    status_lines.abort();
    stop_simulation.notify_one();
    if let Ok(Err(error)) = simulation.await {
        tracing::warn!(%error, "simulation ended with an error");
    }
    let _ = stop_http.send(());
    server.await.context("joining the HTTP server")??;
    pipeline.shutdown(Duration::from_secs(10)).await
}

async fn print_banner(
    pipeline: &pipeline::Pipeline,
    address: std::net::SocketAddr,
    seed: u64,
    rate: u64,
    token: Option<&str>,
    progress: &simulate::SimProgress,
) {
    // Wait (bounded) for the first click & collect hold to be decided, so the
    // examples below return data.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut example = None;
    while std::time::Instant::now() < deadline {
        let first = progress.first_pickup.lock().ok().and_then(|f| f.clone());
        if let Some((hold, sku, store)) = first
            && let (Ok(hold_id), Ok(sku_id)) = (
                stockline_domain::HoldId::new(&hold),
                stockline_domain::Sku::new(&sku),
            )
            && pipeline
                .store
                .hold(&hold_id, &sku_id)
                .ok()
                .flatten()
                .is_some()
        {
            example = Some((hold, sku, store));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (hold, sku, store) =
        example.unwrap_or_else(|| ("(none yet)".into(), "SOFA-0001".into(), "paris-01".into()));
    let base = format!("http://{address}");
    let auth = match token {
        Some(token) => format!("-H 'Authorization: Bearer {token}'"),
        None => "-H \"Authorization: Bearer $STOCKLINE_TOKEN\"".to_owned(),
    };
    println!();
    println!("Stockline is up.");
    println!(
        "  API        {base}  (OpenAPI {base}/openapi.json, metrics {base}/metrics, readiness {base}/ready)"
    );
    println!(
        "  broker     {} ({})",
        pipeline.brokers.bootstrap_servers(),
        if pipeline.brokers.is_embedded() {
            "embedded"
        } else {
            "external"
        }
    );
    println!("  store      {}", pipeline.store.path().display());
    println!(
        "  traffic    simulated retailer, seed {seed}, {rate} events/s (5 stores, a warehouse, 6 channels)"
    );
    if token.is_some() {
        println!("  token      a demo admin token for this run is in the commands below");
    }
    println!();
    println!("Availability of a SKU in every location:");
    println!("  curl -s {auth} {base}/v1/skus/{sku}/availability");
    println!("The pickup queue of store {store} (click & collect awaiting preparation):");
    println!("  curl -s {auth} '{base}/v1/locations/{store}/pickups?status=awaiting_preparation'");
    println!("A hold by id:");
    println!("  curl -s {auth} {base}/v1/holds/{hold}");
    println!();
    println!("Ctrl-C stops everything cleanly.");
}

#[allow(clippy::too_many_arguments)]
async fn simulate(
    settings: Settings,
    seed: u64,
    rate: u64,
    events: Option<u64>,
    duration: Option<String>,
    url: Option<String>,
    token: Option<String>,
    start: &str,
) -> Result<()> {
    let duration = duration
        .as_deref()
        .map(simulate::parse_duration)
        .transpose()?;
    let start = if start == "now" {
        chrono::Utc::now()
    } else {
        chrono::DateTime::parse_from_rfc3339(start)
            .with_context(|| format!("--start {start:?} is not RFC 3339 or `now`"))?
            .with_timezone(&chrono::Utc)
    };
    if events.is_none() && duration.is_none() {
        eprintln!("no --events or --duration: running until Ctrl-C");
    }
    let (sink, producer) = match url {
        Some(url) => {
            let token = token.context("--url needs --token (or STOCKLINE_TOKEN)")?;
            (
                simulate::Sink::Http {
                    client: reqwest::Client::new(),
                    url,
                    token,
                },
                None,
            )
        }
        None => {
            let Some(brokers) = settings.kafka.brokers.clone() else {
                anyhow::bail!(
                    "no brokers configured: the embedded broker lives inside `stockline up`/`serve`; \
                     pass --url http://HOST:PORT --token T to post to a running service, or set \
                     STOCKLINE_KAFKA__BROKERS"
                );
            };
            let producer = stockline_kafka::RecordProducer::new(
                &stockline_kafka::Brokers::External(brokers),
                &settings.kafka,
            )?;
            let publisher = stockline_engine::EventPublisher::new(
                producer.clone(),
                &settings.kafka.topics.events,
                settings.kafka.partitions,
            );
            (simulate::Sink::Publisher(publisher), Some(producer))
        }
    };
    let progress = Arc::new(simulate::SimProgress::default());
    let stop = Arc::new(tokio::sync::Notify::new());
    let bar = indicatif::ProgressBar::new(events.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {pos} events published ({per_sec}) {bar:30} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let run = tokio::spawn(simulate::run_simulation(
        stockline_simulator::SimConfig::new(seed, start),
        sink,
        simulate::Pace {
            rate_per_s: rate,
            events,
            duration,
        },
        Arc::clone(&progress),
        Arc::clone(&stop),
    ));
    let ticker = {
        let bar = bar.clone();
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            loop {
                bar.set_position(
                    progress
                        .published
                        .load(std::sync::atomic::Ordering::Relaxed),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let interrupted = tokio::select! {
        result = run => { result.context("simulation task")??; false }
        _ = tokio::signal::ctrl_c() => { stop.notify_one(); true }
    };
    ticker.abort();
    bar.set_position(
        progress
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    bar.finish();
    if let Some(producer) = producer {
        producer.flush(10_000).await?;
    }
    println!(
        "{} events published, {} refused{}",
        progress
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        progress.refused.load(std::sync::atomic::Ordering::Relaxed),
        if interrupted { " (interrupted)" } else { "" }
    );
    Ok(())
}

/// Waits for Ctrl-C (or SIGTERM), or for the projector to die.
async fn wait_for_stop(pipeline: &pipeline::Pipeline) {
    let mut status = pipeline.projector.status();
    let terminate = async {
        #[cfg(unix)]
        {
            if let Ok(mut signal) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                signal.recv().await;
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    let projector_died = async {
        loop {
            if status.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = projector_died => {
            tracing::error!("the projector stopped");
        }
    }
}
