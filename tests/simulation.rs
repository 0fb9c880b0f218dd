//! The simulator through the real processes: `stockline serve` on the embedded
//! broker, `stockline simulate --url` posting to it. A fixed seed produces the same
//! events twice, and afterwards the ledger's invariants hold as checked through the
//! HTTP API: the audit trail accounts for every unit (conservation) and no hold
//! ever drove availability below zero (no oversell).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_stockline");
const SEED: &str = "7";
const EVENTS: &str = "2500";

/// A `stockline serve` child process, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_config(dir: &Path, token_digest: &str) -> std::path::PathBuf {
    let path = dir.join("stockline.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[[http.tokens]]\nname = \"test admin\"\nsha256 = \"{token_digest}\"\nrole = \"admin\"\n",
            dir.join("data")
        ),
    )
    .expect("config written");
    path
}

fn serve(config: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["--config", &config.to_string_lossy(), "serve"])
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("stockline serve starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving http://").nth(1) {
                let address = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(address);
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints its address");
    Server {
        child,
        base: format!("http://{address}"),
    }
}

fn get(client: &reqwest::blocking::Client, token: &str, url: &str) -> Value {
    let response = client.get(url).bearer_auth(token).send().expect("request");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().expect("JSON body")
}

/// Runs the simulator into a fresh stack; checks the invariants through the API;
/// returns the events it left in the log (ticks excluded), per partition.
fn simulate_and_check(dir: &Path, token: &str, digest: &str) -> Vec<Vec<Value>> {
    let config = token_config(dir, digest);
    let server = serve(&config);
    let status = Command::new(BIN)
        .args([
            "simulate",
            "--url",
            &server.base,
            "--token",
            token,
            "--seed",
            SEED,
            "--events",
            EVENTS,
            "--rate",
            "0",
        ])
        .env("RUST_BACKTRACE", "0")
        .status()
        .expect("stockline simulate runs");
    assert!(status.success(), "simulate failed");

    let client = reqwest::blocking::Client::new();
    let catalogue: Vec<String> = (0..120).map(stockline_simulator::sku_name).collect();
    let mut checked_entries = 0;
    let mut holds_checked = 0;
    for sku in &catalogue {
        let availability = client
            .get(format!("{}/v1/skus/{sku}/availability", server.base))
            .bearer_auth(token)
            .send()
            .expect("request");
        if availability.status() == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        let availability: Value = availability.json().expect("JSON");
        // The audit trail, page by page.
        let mut entries: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/skus/{sku}/history?page_size=500", server.base);
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page = get(&client, token, &url);
            entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        for location in availability["locations"].as_array().expect("locations") {
            let place = location["location"].as_str().expect("location id");
            let mut expected = serde_json::json!({
                "on_hand": 0, "reserved": 0, "committed": 0, "damaged": 0, "quality_control": 0,
                "unavailable": 0, "safety_stock": 0, "incoming": 0, "in_transit": 0, "available": 0
            });
            for entry in entries.iter().filter(|e| e["location"] == place) {
                // Conservation: every change starts where the previous one ended.
                assert_eq!(
                    entry["before"], expected,
                    "{sku} at {place}: the trail is broken at {entry}"
                );
                expected = entry["after"].clone();
                for field in [
                    "reserved",
                    "committed",
                    "damaged",
                    "quality_control",
                    "incoming",
                    "in_transit",
                ] {
                    assert!(
                        entry["after"][field].as_i64().expect("number") >= 0,
                        "{sku} {place} {field}: {entry}"
                    );
                }
                // No oversell: a hold never takes availability below zero.
                if entry["cause"] == "hold_requested" {
                    holds_checked += 1;
                    assert!(
                        entry["after"]["available"].as_i64().expect("number") >= 0,
                        "oversold: {entry}"
                    );
                }
                checked_entries += 1;
            }
            // ... and the trail ends exactly at the current quantities.
            assert_eq!(
                location["quantities"], expected,
                "{sku} at {place}: quantities differ from the trail"
            );
        }
    }
    assert!(
        checked_entries > 2_000,
        "the run changed stock ({checked_entries} entries)"
    );
    assert!(holds_checked > 100, "holds were checked ({holds_checked})");
    drop(server);

    // The log the run left, read back from the store's archive.
    let export = Command::new(BIN)
        .args(["--config", &config.to_string_lossy(), "export"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("stockline export runs");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let mut by_partition: Vec<Vec<Value>> = vec![Vec::new(); 8];
    for line in String::from_utf8_lossy(&export.stdout).lines() {
        let mut record: Value = serde_json::from_str(line).expect("JSON line");
        if record["kind"] == "tick" {
            continue;
        }
        let partition =
            usize::try_from(record["partition"].as_u64().expect("partition")).expect("small");
        // Offsets and log times depend on the interleaved ticks; the events do not.
        for field in ["offset", "log_time", "partition"] {
            record.as_object_mut().expect("object").remove(field);
        }
        by_partition[partition].push(record);
    }
    by_partition
}

#[test]
fn the_simulator_is_reproducible_and_leaves_the_invariants_intact() {
    let token = stockline_service::new_token();
    let digest = stockline_service::token_digest(&token);
    let first_dir = tempfile::tempdir().expect("tempdir");
    let second_dir = tempfile::tempdir().expect("tempdir");
    let first = simulate_and_check(first_dir.path(), &token, &digest);
    let second = simulate_and_check(second_dir.path(), &token, &digest);
    let total: usize = first.iter().map(Vec::len).sum();
    assert!(
        total >= 2_500,
        "every simulated event is in the log ({total})"
    );
    assert!(first == second, "the same seed produced different logs");
}
