//! `stockline-bench`: the benchmarks of issues 3 and 4. Each prints figures and
//! ratios; nothing here asserts a timing (figures measured on a shared 2-core
//! machine vary too much to gate anything on them). Results and their reading:
//! `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p stockline-bench -- pipeline   # issue 3
//! cargo run --release -p stockline-bench -- http       # issue 4
//! ```

mod child;
mod http;
mod pipeline;
mod procfs;
mod workload;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The `stockline` binary's allocator (crates/stockline/src/main.rs), so the
/// in-process figures are those of the product.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "stockline-bench", about = "Stockline's end-to-end benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue 3: end-to-end events/s through the projector next to the raw consume
    /// rate of the same broker (embedded and tansu), the projector's peak RSS,
    /// and a per-record breakdown of the projection's time.
    Pipeline(pipeline::PipelineArgs),
    /// Issue 4: availability lookups next to `/health` (requests/s, p50/p99), and
    /// hold requests' time to decision at a constant rate.
    Http(http::HttpArgs),
    /// (internal) The projector alone in this process, for its peak RSS.
    #[command(hide = true)]
    ProjectorChild(child::ProjectorChildArgs),
    /// (internal) Embedded broker, producer and projector in this process.
    #[command(hide = true)]
    EmbeddedRssChild(child::EmbeddedChildArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,librdkafka=error,rdkafka=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Pipeline(args) => pipeline::run(&args),
        Command::Http(args) => http::run(&args),
        Command::ProjectorChild(args) => child::projector_child(&args),
        Command::EmbeddedRssChild(args) => child::embedded_child(&args),
    }
}

/// A `--kafka-property KEY=VALUE` (librdkafka property for every client).
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// Renders properties back as `--kafka-property` arguments (for child processes).
pub fn property_args(properties: &[(String, String)]) -> Vec<String> {
    properties
        .iter()
        .flat_map(|(k, v)| ["--kafka-property".to_owned(), format!("{k}={v}")])
        .collect()
}

/// The benchmark's own runtime: two workers (the machine's cores).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Cores, load and build profile, printed with every result.
pub fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine: {cores} cores, load average {} (1/5/15 min); {} build",
        load.join(" "),
        if cfg!(debug_assertions) {
            "DEBUG (figures meaningless: use --release)"
        } else {
            "release"
        }
    );
}
