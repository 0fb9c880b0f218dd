//! A real Kafka-API broker for tests and benchmarks: tansu 0.6.0 with its
//! in-memory storage engine, started as a child process.
//!
//! Install it once with `scripts/install-tansu.sh` (a cached `cargo
//! install`); [`TansuBroker::start`] finds it through `STOCKLINE_TANSU_BIN`
//! or the cache directory.

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use thiserror::Error;

/// Environment variable naming the tansu binary explicitly.
pub const TANSU_BIN_ENV: &str = "STOCKLINE_TANSU_BIN";
/// Where `scripts/install-tansu.sh` installs tansu, under the cache dir.
pub const TANSU_CACHE_SUBDIR: &str = "stockline/tansu-0.6.0-dynostore/bin/tansu";
/// `fetch.wait.max.ms` for consumers of tansu 0.6.0
/// ([`crate::KafkaSettings::fetch_wait_max_ms`]). Its fetch handler
/// (tansu-storage 0.6.0, `src/service/fetch.rs`, `FetchService::fetch`) sleeps
/// for the rest of the request's wait after every pass, records found or not,
/// and fills a response (at most 5 MiB) partition by partition: every fetch
/// takes the whole wait. Measured with 1M records of 8 partitions
/// (docs/benchmarks.md, 2026-12-07 afternoon): a consumer that does nothing
/// read 405K-419K records/s with 100 ms, 1.30-1.86M/s with 10 ms, 1.25-1.32M/s
/// with 20 ms; the projector's own rate hardly changed (interleaved: 250-323K
/// events/s with 100 ms, 266-315K/s with 10 ms), while the log's tail is seen
/// within 10 ms instead of 100. An idle consumer then sends 100 fetches a
/// second (tansu 6.7% of a core instead of 1.2%). [`KafkaSettings::for_tansu`]
/// sets it.
///
/// [`KafkaSettings::for_tansu`]: crate::KafkaSettings::for_tansu
pub const TANSU_FETCH_WAIT_MAX_MS: u64 = 10;
/// Bound on the wait for a fresh broker to answer a metadata request.
const READY_TIMEOUT_MS: u64 = 30_000;
/// Metadata timeout of one readiness probe.
const PROBE_TIMEOUT_MS: u64 = 500;
/// Pause between readiness probes.
const PROBE_PAUSE_MS: u64 = 50;
/// Start attempts, each on a fresh port, when tansu exits during start-up.
const START_ATTEMPTS: u32 = 3;
/// How much of the broker's log an error message quotes.
const LOG_TAIL_BYTES: u64 = 4_096;

/// A tansu broker that could not be started.
#[derive(Debug, Error)]
pub enum TansuError {
    #[error(
        "tansu binary not found at {path} (set {TANSU_BIN_ENV}, or run \
         scripts/install-tansu.sh to install tansu 0.6.0 into the cache)"
    )]
    NotInstalled { path: PathBuf },
    #[error("cannot find a cache directory: neither XDG_CACHE_HOME nor HOME is set")]
    NoCacheDir,
    #[error("cannot start tansu: {0}")]
    Io(#[from] std::io::Error),
    #[error("tansu exited during start-up ({status}); its log ends with:\n{log_tail}")]
    Exited { status: String, log_tail: String },
    #[error(
        "tansu did not answer a metadata request within {waited_ms} ms; its log ends with:\n{log_tail}"
    )]
    NotReady { waited_ms: u64, log_tail: String },
}

/// A tansu broker on `127.0.0.1:PORT` with in-memory storage, killed when
/// dropped. Each instance is empty and independent.
#[derive(Debug)]
pub struct TansuBroker {
    child: Child,
    bootstrap_servers: String,
    log: tempfile::NamedTempFile,
}

impl TansuBroker {
    /// The tansu binary: `$STOCKLINE_TANSU_BIN`, else
    /// `${XDG_CACHE_HOME:-$HOME/.cache}/stockline/tansu-0.6.0-dynostore/bin/tansu`.
    ///
    /// # Errors
    /// [`TansuError::NotInstalled`] if the file does not exist.
    pub fn binary_path() -> Result<PathBuf, TansuError> {
        let path = if let Some(explicit) = std::env::var_os(TANSU_BIN_ENV) {
            PathBuf::from(explicit)
        } else {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .ok_or(TansuError::NoCacheDir)?;
            cache.join(TANSU_CACHE_SUBDIR)
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(TansuError::NotInstalled { path })
        }
    }

    /// Starts a broker on a free port and waits (at most 30 s) until it
    /// answers a metadata request.
    ///
    /// # Errors
    /// [`TansuError`], with the tail of the broker's log when it started but
    /// failed.
    pub fn start() -> Result<Self, TansuError> {
        let binary = Self::binary_path()?;
        // The free port is only free when probed: a parallel test may take
        // it first, and tansu then exits at once. A few fresh ports settle it.
        let mut attempt = 1;
        loop {
            match Self::start_with(&binary) {
                Err(TansuError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    fn start_with(binary: &std::path::Path) -> Result<Self, TansuError> {
        // The port is free when probed; another process could take it before
        // tansu binds, in which case tansu exits and the error says so.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = tempfile::Builder::new()
            .prefix("stockline-tansu-")
            .suffix(".log")
            .tempfile()?;
        let child = Command::new(binary)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            // Environment variables tansu reads as defaults for flags we do
            // not pass; an inherited one must not change the test broker.
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("DATA_LAKE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()?;
        let mut broker = Self {
            child,
            bootstrap_servers: format!("127.0.0.1:{port}"),
            log,
        };
        broker.wait_ready()?;
        tracing::info!(bootstrap_servers = %broker.bootstrap_servers, "tansu broker started");
        Ok(broker)
    }

    fn wait_ready(&mut self) -> Result<(), TansuError> {
        let started = Instant::now();
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "stockline-tansu-probe")
            // Connection refused while tansu starts is expected: keep quiet.
            .set("log_level", "0")
            .create()
            .map_err(|e| TansuError::Io(std::io::Error::other(e.to_string())))?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(TansuError::Exited {
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            if probe
                .fetch_metadata(None, Duration::from_millis(PROBE_TIMEOUT_MS))
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() >= Duration::from_millis(READY_TIMEOUT_MS) {
                return Err(TansuError::NotReady {
                    waited_ms: READY_TIMEOUT_MS,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(PROBE_PAUSE_MS));
        }
    }

    /// The `bootstrap.servers` value (`127.0.0.1:PORT`).
    #[must_use]
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The last few KiB of the broker's stdout and stderr.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = self.log.reopen() else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if file
            .seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
            .is_err()
        {
            return String::new();
        }
        let mut tail = Vec::new();
        let _ = file.take(LOG_TAIL_BYTES).read_to_end(&mut tail);
        String::from_utf8_lossy(&tail).into_owned()
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        // Memory storage: nothing to flush, so a plain kill is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other test, process or run uses: `prefix-PID-NANOS-N`, made of
/// characters valid in topic and group names.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_topic_names() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        );
        assert!(a.len() < 249);
    }
}
