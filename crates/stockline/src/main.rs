//! `stockline`: one binary for every role. Subcommands are thin: they parse
//! arguments and configuration, then call the library crates.

mod config;
mod pipeline;
mod tools;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Settings;

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
    /// Run the pipeline and the HTTP API ([http] settings) until Ctrl-C.
    Serve,
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
    /// The JSON Schemas of the event types (schemas/).
    Schemas {
        #[command(subcommand)]
        action: tools::SchemasAction,
    },
    /// Check a JSON-lines file of events (or stdin with `-`) without publishing it.
    CheckEvents { input: PathBuf },
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
        command => {
            let settings = Settings::load(cli.config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                match command {
                    Command::Run => run(settings).await,
                    Command::Serve => serve(settings).await,
                    Command::Publish { input } => tools::publish(&settings, &input).await,
                    Command::Rebuild { to, from_archive } => {
                        tools::rebuild(&settings, &to, from_archive.as_deref()).await
                    }
                    Command::Schemas { .. }
                    | Command::CheckEvents { .. }
                    | Command::Diff { .. }
                    | Command::Token { .. } => unreachable!("handled above"),
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
    eprintln!(
        "stockline serving http://{} (brokers {}, store {})",
        listener.local_addr()?,
        pipeline.brokers.bootstrap_servers(),
        pipeline.store.path().display()
    );
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stockline_service::serve(listener, state, async move {
        let _ = http_stopped.await;
    }));
    wait_for_stop(&pipeline).await;
    eprintln!("stopping...");
    let _ = stop_http.send(());
    server.await.context("joining the HTTP server")??;
    pipeline.shutdown(Duration::from_secs(10)).await
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
