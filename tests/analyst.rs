//! Analysts: replay to an instant, reconciliation, per-channel report, export,
//! through the `stockline` binary against stores made by the real pipeline.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use stockline_domain::{
    ChannelId, CustomerRef, DocumentId, DocumentKind, DocumentRef, Event, GroupId, HoldId,
    HoldKind, LocationKind, LogTime, OrderId, Payload, Price, Quantities, ReceiptKind,
    ReturnDisposition, SCHEMA_VERSION,
};
use stockline_engine::{EventPublisher, ProjectorHandle, ProjectorSettings, spawn_projector};
use stockline_kafka::{RecordProducer, partition_for_key};
use stockline_store::{OpenMode, Projection, RawRecord, Store, StoreContents, cf};
use stockline_wire::encode_event;
use support::{BrokerKind, TestBroker, group, produce_events, valid_traffic};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_stockline");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the binary with a configuration pointing at `data_dir` and `topic`.
fn stockline(
    data_dir: &Path,
    topic: &str,
    partitions: u32,
    args: &[&str],
) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env("STOCKLINE_DATA_DIR", data_dir)
        .env("STOCKLINE_KAFKA__TOPICS__EVENTS", topic)
        .env("STOCKLINE_KAFKA__PARTITIONS", partitions.to_string())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the stockline binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every row of the column families a replay must reproduce, as bytes.
fn snapshot(store: &Store) -> BTreeMap<&'static str, Vec<stockline_store::store::RawRow>> {
    let mut out = BTreeMap::new();
    for name in cf::model() {
        let mut rows = Vec::new();
        store
            .for_each_raw(name, |k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .expect("read");
        out.insert(name, rows);
    }
    out
}

/// A store with `data/store` layout in a tempdir, fed live by the projector.
struct LiveRun {
    broker: TestBroker,
    data: tempfile::TempDir,
    store: Store,
    rt: tokio::runtime::Runtime,
    producer: RecordProducer,
    publisher: EventPublisher,
}

impl LiveRun {
    fn start() -> LiveRun {
        let broker = TestBroker::start(BrokerKind::Embedded, 4);
        let rt = runtime();
        let data = tempfile::tempdir().expect("tempdir");
        let store = Store::open(data.path().join("store"), OpenMode::ReadWrite).expect("store");
        let producer = {
            let _guard = rt.enter();
            RecordProducer::new(&broker.brokers, &broker.settings).expect("producer")
        };
        let publisher = EventPublisher::new(producer.clone(), &broker.settings.topics.events, 4);
        LiveRun {
            broker,
            data,
            store,
            rt,
            producer,
            publisher,
        }
    }

    fn topic(&self) -> &str {
        &self.broker.settings.topics.events
    }

    /// A projector with default settings and a fresh group, into the store.
    fn spawn_projector(&self) -> ProjectorHandle {
        spawn_projector(
            &self.broker.brokers,
            &self.broker.settings,
            &ProjectorSettings {
                group_id: group(),
                ..ProjectorSettings::default()
            },
            self.store.clone(),
        )
        .expect("projector")
    }

    /// Publishes `events` events of valid traffic (simulator seed `seed`) and
    /// projects them into the store with a projector started and stopped here.
    fn project_valid_traffic(&self, seed: u64, events: usize) {
        let projector = self.spawn_projector();
        self.rt.block_on(produce_events(
            &self.producer,
            &self.publisher,
            &valid_traffic(seed, events),
        ));
        let ends = self.broker.event_ends();
        assert!(
            self.rt
                .block_on(projector.wait_for(&ends, Duration::from_secs(60)))
        );
        projector.stop().expect("stops");
    }
}

/// Replaying up to an instant gives exactly what the live store held at that
/// instant: snapshots of the live store taken during a run equal replays to their
/// instants, column family by column family.
#[test]
fn replay_to_an_instant_equals_the_live_store_at_that_instant() {
    let run = LiveRun::start();
    let projector = run.spawn_projector();
    // Strictly increasing record times, so "up to an instant" is a prefix of
    // every partition.
    let mut traffic = valid_traffic(21, 2_400);
    let mut last = 0;
    for (_, time) in &mut traffic {
        let ms = time.millis().max(last + 1);
        *time = LogTime::from_millis(ms);
        last = ms;
    }
    let mut snapshots = Vec::new();
    for chunk in traffic.chunks(traffic.len().div_ceil(4)) {
        run.rt
            .block_on(produce_events(&run.producer, &run.publisher, chunk));
        let ends = run.broker.event_ends();
        assert!(
            run.rt
                .block_on(projector.wait_for(&ends, Duration::from_secs(60)))
        );
        let instant = chunk.last().expect("non-empty chunk").1;
        snapshots.push((instant, snapshot(&run.store)));
    }
    projector.stop().expect("stops");
    assert_eq!(snapshots.len(), 4);
    for (index, (instant, live)) in snapshots.iter().enumerate() {
        let replay_dir = run.data.path().join(format!("replay-{index}"));
        let until = instant
            .to_datetime()
            .expect("valid instant")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let replay_arg = replay_dir.to_string_lossy().into_owned();
        let (ok, stdout, stderr) = stockline(
            run.data.path(),
            run.topic(),
            4,
            &["replay", "--until", &until, "--to", &replay_arg],
        );
        assert!(ok, "replay failed: {stdout}\n{stderr}");
        let replayed = Store::open(&replay_dir, OpenMode::ReadOnly).expect("replayed store");
        assert_eq!(replayed.contents(), StoreContents::ReadModels);
        let replayed = snapshot(&replayed);
        // Every read model, row for row; what only a projector continuing the
        // store reads (archive, dedupe record, tracked holds) is not written.
        for (name, rows) in live {
            if !StoreContents::ReadModels.holds(name) {
                assert!(replayed[name].is_empty(), "a replay writes no {name} rows");
                continue;
            }
            assert!(
                &replayed[name] == rows,
                "snapshot {index} at {until}: column family {name} differs ({} live rows, {} replayed)",
                rows.len(),
                replayed[name].len()
            );
        }
        // The replay answers queries like any store: open holds at a store.
        let (ok, stdout, _) = stockline(
            run.data.path(),
            run.topic(),
            4,
            &["query", "--store", &replay_arg, "open-holds", "st-001"],
        );
        assert!(ok && stdout.contains("open holds at st-001"), "{stdout}");
    }

    // The last replay also answers the HTTP routes, read-only.
    let replay_dir = run.data.path().join("replay-3");
    let token = stockline_service::new_token();
    let desk_token = stockline_service::new_token();
    let config = run.data.path().join("read-only.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\npartitions = 4\n[kafka.topics]\nevents = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[[http.tokens]]\nname = \"analyst\"\nsha256 = {:?}\nrole = \"analyst\"\n[[http.tokens]]\nname = \"desk\"\nsha256 = {:?}\nrole = \"store\"\nlocations = [\"st-001\"]\n",
            run.topic(),
            stockline_service::token_digest(&token),
            stockline_service::token_digest(&desk_token)
        ),
    )
    .expect("config");
    let mut server = Command::new(BIN)
        .args([
            "--config",
            &config.to_string_lossy(),
            "serve",
            "--store",
            &replay_dir.to_string_lossy(),
        ])
        .env("RUST_BACKTRACE", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("read-only serve starts");
    let stderr = server.stderr.take().expect("piped");
    let mut address = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        if let Some(rest) = line.split("serving http://").nth(1) {
            address = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            break;
        }
    }
    assert!(!address.is_empty(), "the server printed its address");
    let replayed = Store::open(&replay_dir, OpenMode::ReadOnly).expect("replayed store");
    let (key, value) = replayed
        .scan_raw(cf::STOCK, b"", None, 1)
        .expect("scan")
        .into_iter()
        .next()
        .expect("a stock row");
    let quantities: Quantities = stockline_wire::decode_row(&value).expect("decodes");
    let parts = stockline_store::keys::split_ids(&key);
    let client = reqwest::blocking::Client::new();
    let body: serde_json::Value = client
        .get(format!(
            "http://{address}/v1/skus/{}/locations/{}/availability",
            parts[0], parts[1]
        ))
        .bearer_auth(&token)
        .send()
        .expect("request")
        .json()
        .expect("JSON");
    assert_eq!(
        body["locations"][0]["quantities"]["on_hand"], quantities.on_hand,
        "{body}"
    );
    let refused = client
        .post(format!("http://{address}/v1/events"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .expect("request");
    assert_eq!(refused.status(), 405);
    let problem: serde_json::Value = refused.json().expect("problem");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/read-only")),
        "{problem}"
    );
    // Outcomes by consistency token: an analyst's are answered; a store
    // desk's are refused with why, as the replay keeps no copy of the records
    // to check whose event each was.
    let outcome_url = format!("http://{address}/v1/outcomes/0/0");
    let outcome: serde_json::Value = client
        .get(&outcome_url)
        .bearer_auth(&token)
        .send()
        .expect("request")
        .json()
        .expect("JSON");
    assert!(outcome["outcome"].is_string(), "{outcome}");
    let refused = client
        .get(&outcome_url)
        .bearer_auth(&desk_token)
        .send()
        .expect("request");
    assert_eq!(refused.status(), 403);
    let problem = refused.text().expect("body");
    assert!(problem.contains("a replay's store"), "{problem}");
    let _ = server.kill();
    let _ = server.wait();

    // A replay's store is only queried: a projector cannot continue it and it
    // has no archive to replay from; both refusals say what to do instead.
    let continued = Store::open(&replay_dir, OpenMode::ReadWrite).expect_err("refused");
    assert!(
        continued
            .to_string()
            .contains("stockline rebuild --to NEW_DIR"),
        "{continued}"
    );
    let replay_arg = replay_dir.to_string_lossy().into_owned();
    let again = run.data.path().join("replay-of-a-replay");
    let (ok, stdout, stderr) = stockline(
        run.data.path(),
        run.topic(),
        4,
        &[
            "replay",
            "--archive",
            &replay_arg,
            "--to",
            &again.to_string_lossy(),
        ],
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("a replay's store (read models only) and has no archive"),
        "{stderr}"
    );
}

/// Reconciliation: nothing to report after a normal run; the exact row after
/// tampering with the store.
#[test]
fn reconcile_finds_nothing_then_the_tampered_row() {
    let run = LiveRun::start();
    run.project_valid_traffic(33, 1_500);

    let (ok, stdout, stderr) = stockline(run.data.path(), run.topic(), 4, &["reconcile"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("reconciled: the store equals a replay of the log"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stock counts that disagreed with the books"),
        "{stdout}"
    );

    // Tamper with one stock row.
    let (key, value) = run
        .store
        .scan_raw(cf::STOCK, b"", None, 1)
        .expect("scan")
        .into_iter()
        .next()
        .expect("a stock row");
    let mut quantities: Quantities = stockline_wire::decode_row(&value).expect("decodes");
    let books = quantities.on_hand;
    quantities.on_hand += 7;
    run.store
        .put(cf::STOCK, &key, &quantities)
        .expect("tampered");

    let (ok, stdout, _) = stockline(run.data.path(), run.topic(), 4, &["reconcile"]);
    assert!(!ok, "a difference fails the command: {stdout}");
    assert!(
        stdout.contains("1 differences between the store and a replay"),
        "{stdout}"
    );
    let printable_key = stockline_store::compare::printable(&key);
    assert!(
        stdout.contains(&format!("stock {printable_key}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("live:     Quantities {{ on_hand: {}", books + 7)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("replayed: Quantities {{ on_hand: {books}")),
        "{stdout}"
    );
}

/// The way from a store of an older format to this build's: refused for
/// queries, with the command in the message; rebuilt from its archive (the
/// embedded broker's log is in it), it equals the live store row for row.
#[test]
fn a_store_of_the_previous_format_is_refused_then_rebuilt_from_its_archive() {
    let run = LiveRun::start();
    run.project_valid_traffic(35, 600);
    let live = snapshot(&run.store);
    assert!(!live[cf::HISTORY].is_empty(), "the run changed stock");

    let previous = stockline_store::ARCHIVE_FORMAT_OLDEST;
    assert!(previous < stockline_store::STORE_FORMAT);
    run.store
        .meta_put("store_format", &previous)
        .expect("format rewritten");
    let store_dir = run.data.path().join("store");
    let refused = Store::open(&store_dir, OpenMode::ReadOnly)
        .expect_err("a store of another format is refused")
        .to_string();
    assert!(
        refused.contains(&format!("store format {previous}"))
            && refused.contains("stockline rebuild --from-archive"),
        "{refused}"
    );

    let rebuilt_dir = run.data.path().join("rebuilt");
    let (ok, stdout, stderr) = stockline(
        run.data.path(),
        run.topic(),
        4,
        &[
            "rebuild",
            "--from-archive",
            store_dir.to_str().expect("utf-8 path"),
            "--to",
            rebuilt_dir.to_str().expect("utf-8 path"),
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let rebuilt = Store::open(&rebuilt_dir, OpenMode::ReadOnly).expect("this build's format");
    assert_eq!(snapshot(&rebuilt), live);
}

fn id<T: TryFrom<String>>(text: &str) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(text.to_owned()).expect("valid id")
}

struct HandLog {
    events: Vec<(Event, i64)>,
    next: u128,
}

impl HandLog {
    fn event(
        &mut self,
        at_s: i64,
        channel: &str,
        location: Option<&str>,
        sku: Option<&str>,
        payload: Payload,
    ) -> &mut Event {
        self.next += 1;
        // 2026-11-24T00:00:00Z + at_s.
        let at_ms = 1_795_478_400_000 + at_s * 1_000;
        self.events.push((
            Event {
                event_id: Uuid::from_u128(self.next),
                schema_version: SCHEMA_VERSION,
                occurred_at: DateTime::from_timestamp_millis(at_ms).expect("instant"),
                channel: id(channel),
                location: location.map(id),
                sku: sku.map(id),
                document: None,
                reason: None,
                payload,
            },
            at_ms,
        ));
        &mut self.events.last_mut().expect("just pushed").0
    }

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        at_s: i64,
        channel: &str,
        hold: &str,
        location: &str,
        kind: HoldKind,
        ttl: u32,
        price: Option<i64>,
    ) {
        self.event(
            at_s,
            channel,
            Some(location),
            Some("SOFA"),
            Payload::HoldRequested {
                hold_id: id::<HoldId>(hold),
                order_id: id::<OrderId>(&format!("o-{hold}")),
                order_line: 1,
                customer_ref: id::<CustomerRef>("jane"),
                quantity: 1,
                ttl_seconds: ttl,
                kind,
                group: None::<GroupId>,
                price: price.map(|unit_minor| Price {
                    unit_minor,
                    currency: "EUR".into(),
                }),
            },
        );
    }
}

/// The KPI report of a small hand-made log gives the figures computed by hand.
#[test]
fn the_kpi_report_of_a_hand_made_log_gives_hand_computed_figures() {
    let mut log = HandLog {
        events: Vec::new(),
        next: 0,
    };
    for store in ["store-1", "store-2"] {
        log.event(
            0,
            "admin",
            Some(store),
            None,
            Payload::LocationDefined {
                name: store.into(),
                kind: LocationKind::Store,
                groups: vec![id("city")],
                active: true,
            },
        );
    }
    for (channel, buffer) in [("web", 0), ("marketplace", 0), ("pos", 0)] {
        log.event(
            0,
            "admin",
            None,
            None,
            Payload::ChannelDefined {
                channel: id::<ChannelId>(channel),
                locations: vec![],
                groups: vec![id("city")],
                buffer,
            },
        );
    }
    log.event(
        1,
        "wms",
        Some("store-1"),
        Some("SOFA"),
        Payload::StockReceived {
            quantity: 3,
            kind: ReceiptKind::Restock,
        },
    );
    // Day 1: 2026-11-24 (UTC); times are seconds after its midnight.
    // web click & collect: held, ready at 10 min, collected at 40 min: 30 min wait.
    log.hold(
        60,
        "web",
        "cc-1",
        "store-1",
        HoldKind::ClickAndCollect,
        7_200,
        Some(89_900),
    );
    log.event(
        600,
        "store",
        None,
        Some("SOFA"),
        Payload::HoldReadyForPickup {
            hold_id: id("cc-1"),
        },
    );
    log.event(
        2_400,
        "store",
        None,
        Some("SOFA"),
        Payload::HoldCollected {
            hold_id: id("cc-1"),
        },
    );
    // web asks for 1 at store-2, which has none: rejected.
    log.hold(
        2_500,
        "web",
        "cc-2",
        "store-2",
        HoldKind::ClickAndCollect,
        7_200,
        None,
    );
    // marketplace checkout never paid: expires after 5 minutes.
    log.hold(
        2_600,
        "marketplace",
        "mp-1",
        "store-1",
        HoldKind::Checkout,
        300,
        None,
    );
    // the till sells 2 at 10.00 EUR each.
    {
        let sale = log.event(
            3_000,
            "pos",
            Some("store-1"),
            Some("SOFA"),
            Payload::TillSale {
                quantity: 2,
                price: Some(Price {
                    unit_minor: 1_000,
                    currency: "EUR".into(),
                }),
            },
        );
        sale.document = Some(DocumentRef {
            kind: DocumentKind::TillReceipt,
            id: id::<DocumentId>("r-1"),
        });
    }
    // a web order returned at the store's till (cross-channel return), restocked.
    log.event(
        3_600,
        "pos",
        Some("store-1"),
        Some("SOFA"),
        Payload::Returned {
            quantity: 1,
            disposition: ReturnDisposition::Restock,
            sold_by_channel: Some(id("web")),
            original_order: Some(id("o-cc-1")),
            price: None,
        },
    );
    // Day 2: one more web click & collect, no-show.
    log.hold(
        86_400 + 60,
        "web",
        "cc-3",
        "store-1",
        HoldKind::ClickAndCollect,
        7_200,
        None,
    );
    log.event(
        86_400 + 3_000,
        "store",
        None,
        Some("SOFA"),
        Payload::HoldNoShow {
            hold_id: id("cc-3"),
        },
    );

    // Fold it through the projection into a store, as a replay does.
    let data = tempfile::tempdir().expect("tempdir");
    let store = Store::open(data.path().join("store"), OpenMode::ReadWrite).expect("store");
    let partitions = 2;
    let mut projection = Projection::new(
        store,
        "hand",
        Arc::new(move |key: &[u8]| partition_for_key(key, partitions)),
    );
    projection.assign(&[0, 1]).expect("assign");
    let mut offsets = [0u64; 2];
    for (event, at_ms) in &log.events {
        let targets: Vec<u32> = match &event.sku {
            Some(sku) => vec![partition_for_key(sku.as_str().as_bytes(), partitions)],
            None => vec![0, 1],
        };
        let bytes = encode_event(event).expect("encodes");
        for partition in targets {
            let offset = offsets[partition as usize];
            offsets[partition as usize] += 1;
            projection
                .apply(&RawRecord {
                    partition,
                    offset,
                    timestamp_ms: *at_ms,
                    key: event.sku.as_ref().map(|s| s.as_str().as_bytes()),
                    payload: Some(&bytes),
                })
                .expect("applies");
        }
    }
    projection.flush(false).expect("flush");
    drop(projection);

    let (ok, stdout, stderr) = stockline(
        data.path(),
        "hand",
        partitions,
        &[
            "report",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-25",
            "--format",
            "json",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("JSON report");
    let row = |period: &str, channel: &str| {
        rows.iter()
            .find(|r| r["period"] == period && r["channel"] == channel)
            .unwrap_or_else(|| panic!("no row {period} {channel} in {stdout}"))
            .clone()
    };
    let web = row("2026-11-24", "web");
    assert_eq!(web["holds_requested"], 2);
    assert_eq!(web["holds_accepted"], 1);
    assert_eq!(web["holds_rejected"], 1);
    assert_eq!(web["rejected_by_reason"]["insufficient_availability"], 1);
    assert_eq!(web["holds_collected"], 1);
    assert_eq!(web["pickups_collected"], 1);
    assert_eq!(web["pickup_rate"], 1.0);
    assert_eq!(web["ready_to_collected_minutes"], 30.0);
    assert_eq!(web["units_sold"], 1);
    assert_eq!(web["revenue_minor"]["EUR"], 89_900);
    let marketplace = row("2026-11-24", "marketplace");
    assert_eq!(marketplace["holds_accepted"], 1);
    assert_eq!(marketplace["holds_expired"], 1);
    let pos = row("2026-11-24", "pos");
    assert_eq!(pos["till_sales"], 1);
    assert_eq!(pos["units_sold"], 2);
    assert_eq!(pos["revenue_minor"]["EUR"], 2_000);
    assert_eq!(pos["units_returned"], 1);
    assert_eq!(pos["returns_cross_channel"], 1);
    let web_day2 = row("2026-11-25", "web");
    assert_eq!(web_day2["holds_no_show"], 1);
    assert_eq!(web_day2["pickups_no_show"], 1);
    assert_eq!(web_day2["pickup_rate"], 0.0);

    // The same figures as CSV and as a table, and one of them as an SVG chart.
    let svg = data.path().join("units.svg");
    let svg_arg = svg.to_string_lossy().into_owned();
    let (ok, table, _) = stockline(
        data.path(),
        "hand",
        partitions,
        &[
            "report",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-25",
            "--chart",
            "units_sold",
            "--svg",
            &svg_arg,
        ],
    );
    assert!(ok);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.starts_with("period")),
        "{table}"
    );
    assert!(table.contains("EUR 899.00"), "{table}");
    let chart = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        chart.starts_with("<svg") && chart.contains("polyline") && chart.contains("web"),
        "{chart}"
    );
    let (ok, csv, _) = stockline(
        data.path(),
        "hand",
        partitions,
        &[
            "report",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-25",
            "--by",
            "week",
            "--format",
            "csv",
        ],
    );
    assert!(ok);
    assert!(
        csv.lines().count() >= 4 && csv.contains("week of 2026-11-23"),
        "{csv}"
    );

    // The log exports as JSON lines and CSV, one column per envelope field.
    let (ok, jsonl, _) = stockline(data.path(), "hand", partitions, &["export"]);
    assert!(ok);
    let exported: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    // Configuration goes to both partitions: 5 broadcasts twice, 10 SKU events once.
    assert_eq!(exported.len(), 5 * 2 + 10);
    assert!(
        exported
            .iter()
            .any(|e| e["kind"] == "till_sale" && e["payload"]["quantity"] == 2)
    );
    let (ok, csv, _) = stockline(
        data.path(),
        "hand",
        partitions,
        &["export", "--format", "csv"],
    );
    assert!(ok);
    assert!(csv.starts_with("partition,offset,log_time,event_id,schema_version,occurred_at,channel,location,sku,document_kind,document_id,reason,kind,payload"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 5 * 2 + 10);
}
