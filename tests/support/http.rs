//! An in-process Stockline service for HTTP-level tests: an embedded broker with
//! fresh topics, a RocksDB store in a temporary directory, the projector (its own
//! consumer group), the tick and outbox publishers, and the HTTP service on a free
//! 127.0.0.1 port, with one bearer token per role. Plus a `reqwest` client whose
//! answers keep status, headers and body together, and a seeding helper that writes
//! configuration and stock through the ingest endpoint as admin.
//!
//! Every wait is bounded: the client has a request timeout, and every poll has a
//! deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stockline_domain::{ChannelId, LocationId};
use stockline_engine::outbox::run_outbox_publisher;
use stockline_engine::ticks::run_tick_publisher;
use stockline_engine::{EventPublisher, ProjectorHandle, ProjectorSettings, ProjectorStatus};
use stockline_kafka::{RecordProducer, unique_name};
use stockline_service::{AppState, HttpSettings, Role, ServiceParts, TokenEntry};
use stockline_store::{OpenMode, Store};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{BrokerKind, TestBroker};

/// Partitions of the events topic in every HTTP test.
pub const PARTITIONS: u32 = 4;

/// Longest any single HTTP request may take (decisions wait up to 5 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The problem type URI prefix; the rest is the stable code.
pub const PROBLEM_BASE: &str = "https://stockline.dev/problems/";

/// One bearer token per role.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub admin: String,
    pub analyst: String,
    /// Channel `web`.
    pub web: String,
    /// Channel `marketplace`.
    pub marketplace: String,
    /// Store desk of `store-1`.
    pub store1: String,
}

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Tick interval in ms (ticks make unconfirmed holds expire on quiet partitions).
    pub tick_interval_ms: u64,
    pub http: HttpSettings,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            tick_interval_ms: 200,
            http: HttpSettings::default(),
        }
    }
}

/// A whole Stockline process, in this test process.
pub struct HttpStack {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    pub tokens: Tokens,
    pub store: Store,
    pub publisher: EventPublisher,
    /// The settings the service runs with (tokens included).
    pub http_settings: HttpSettings,
    projector: Option<ProjectorHandle>,
    stop: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    servers: Vec<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    // Dropped last: the broker outlives every client of it, the directory the store.
    broker: TestBroker,
    _dir: tempfile::TempDir,
}

impl HttpStack {
    pub async fn start() -> HttpStack {
        HttpStack::start_with(StackOptions::default()).await
    }

    /// Starts everything and waits (bounded) until the service reports ready.
    pub async fn start_with(options: StackOptions) -> HttpStack {
        // Installed before anything records, so the projector's metrics are kept
        // (one recorder per process, shared by every stack of the test binary).
        let _ = stockline_service::prometheus();
        // TestBroker::start runs its own runtime to create the topics.
        let broker =
            tokio::task::spawn_blocking(|| TestBroker::start(BrokerKind::Embedded, PARTITIONS))
                .await
                .expect("broker starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), OpenMode::ReadWrite).expect("store opens");
        let projector = stockline_engine::spawn_projector(
            &broker.brokers,
            &broker.settings,
            &ProjectorSettings {
                group_id: super::group(),
                ..ProjectorSettings::default()
            },
            store.clone(),
        )
        .expect("projector starts");
        let producer = RecordProducer::new(&broker.brokers, &broker.settings).expect("producer");
        let publisher =
            EventPublisher::new(producer.clone(), &broker.settings.topics.events, PARTITIONS);
        let stop = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(run_tick_publisher(
                publisher.clone(),
                options.tick_interval_ms,
                Arc::clone(&stop),
            )),
            tokio::spawn(run_outbox_publisher(
                store.clone(),
                producer,
                broker.settings.topics.clone(),
                PARTITIONS,
                projector.flushed(),
                Arc::clone(&stop),
            )),
        ];

        let tokens = Tokens {
            admin: stockline_service::new_token(),
            analyst: stockline_service::new_token(),
            web: stockline_service::new_token(),
            marketplace: stockline_service::new_token(),
            store1: stockline_service::new_token(),
        };
        let entry = |name: &str, token: &str, role: Role| TokenEntry {
            name: name.to_owned(),
            sha256: stockline_service::token_digest(token),
            role,
        };
        let mut http = options.http;
        http.listen = "127.0.0.1:0".to_owned();
        http.tokens = vec![
            entry("ops", &tokens.admin, Role::Admin),
            entry("analyst", &tokens.analyst, Role::Analyst),
            entry(
                "web shop",
                &tokens.web,
                Role::Channel {
                    channel: ChannelId::new("web").expect("id"),
                },
            ),
            entry(
                "marketplace",
                &tokens.marketplace,
                Role::Channel {
                    channel: ChannelId::new("marketplace").expect("id"),
                },
            ),
            entry(
                "store 1 desk",
                &tokens.store1,
                Role::Store {
                    locations: vec![LocationId::new("store-1").expect("id")],
                },
            ),
        ];
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("http client");
        let mut stack = HttpStack {
            base: String::new(),
            client,
            tokens,
            store,
            publisher,
            http_settings: http,
            projector: None,
            stop,
            tasks,
            servers: Vec::new(),
            broker,
            _dir: dir,
        };
        stack.base = stack.serve_with_status(projector.status()).await;
        stack.projector = Some(projector);
        stack.wait_until_ready(Duration::from_secs(30)).await;
        stack
    }

    /// Serves another instance of the service on this stack's store and publisher,
    /// fed by `status` (a test can drive readiness by hand). Returns its base URL.
    pub async fn serve_with_status(&mut self, status: watch::Receiver<ProjectorStatus>) -> String {
        let state = AppState::new(ServiceParts {
            store: self.store.clone(),
            publisher: self.publisher.clone(),
            status,
            settings: self.http_settings.clone(),
            embedded_broker: true,
            metrics: stockline_service::prometheus(),
        })
        .expect("service state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen on a free port");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(stockline_service::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        self.servers.push((stop, server));
        format!("http://{address}")
    }

    /// Polls `/ready` until it answers 200 (panics after `timeout`).
    pub async fn wait_until_ready(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let answer = self.get("", "/ready").await;
            if answer.status == 200 {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "service not ready after {timeout:?}: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The projector's status now.
    pub fn projector_status(&self) -> ProjectorStatus {
        self.projector
            .as_ref()
            .map(|p| p.status().borrow().clone())
            .unwrap_or_default()
    }

    /// Stops the servers, the publishers and the projector.
    pub async fn shutdown(mut self) {
        for (stop, server) in std::mem::take(&mut self.servers) {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        self.stop.notify_waiters();
        self.stop.notify_one();
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
        if let Some(projector) = self.projector.take() {
            tokio::task::spawn_blocking(move || projector.stop())
                .await
                .expect("projector thread joins")
                .expect("projector stops cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `token` as bearer (none when empty).
    pub fn request(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        if token.is_empty() {
            builder
        } else {
            builder.bearer_auth(token)
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        Answer::of(self.request(reqwest::Method::GET, token, path)).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        Answer::of(self.request(reqwest::Method::POST, token, path).json(body)).await
    }

    /// A POST without a body (hold actions).
    pub async fn post_empty(&self, token: &str, path: &str) -> Answer {
        Answer::of(self.request(reqwest::Method::POST, token, path)).await
    }

    /// Ingest: `POST /v1/events` with these events.
    pub async fn ingest(&self, token: &str, events: &[Value]) -> Answer {
        self.post(token, "/v1/events", &Value::Array(events.to_vec()))
            .await
    }

    /// Ingests events as admin; every item must be accepted. Returns `wait_for`.
    pub async fn ingest_ok(&self, events: &[Value]) -> String {
        let answer = self.ingest(&self.tokens.admin, events).await.expect(200);
        assert_eq!(
            answer.body["rejected"], 0,
            "every seeded event is accepted: {answer:?}"
        );
        answer.body["wait_for"]
            .as_str()
            .expect("wait_for")
            .to_owned()
    }

    /// Writes the configuration and stock of `seed` through the ingest endpoint as
    /// admin, then waits (bounded) until a read with the returned `wait_for`
    /// reflects them. Returns that `wait_for`.
    pub async fn seed(&self, seed: &Seed) -> String {
        let mut events = Vec::new();
        for location in &seed.locations {
            events.push(location_defined(location));
        }
        for channel in &seed.channels {
            events.push(channel_defined(channel));
        }
        let mut wait_for = if events.is_empty() {
            String::new()
        } else {
            self.ingest_ok(&events).await
        };
        if !seed.stock.is_empty() {
            let events: Vec<Value> = seed
                .stock
                .iter()
                .map(|(sku, location, quantity)| received(sku, location, *quantity))
                .collect();
            wait_for = self.ingest_ok(&events).await;
        }
        self.wait_for(&wait_for).await;
        wait_for
    }

    /// Waits (bounded, 10 s) until the projection has applied `wait_for`, through a
    /// read that carries it.
    pub async fn wait_for(&self, wait_for: &str) {
        if wait_for.is_empty() {
            return;
        }
        // Any read takes `wait_for`; an order lookup is cheap and always answers.
        let answer = self
            .get(
                &self.tokens.admin,
                &format!("/v1/orders/seed/holds?wait_for={wait_for}&wait_ms=10000"),
            )
            .await;
        assert_eq!(answer.status, 200, "waiting for {wait_for}: {answer:?}");
    }

    /// Requests a hold as `token`; the answer is returned whatever it is.
    pub async fn hold(&self, token: &str, request: &Value) -> Answer {
        self.post(token, "/v1/holds", request).await
    }

    /// The quantities of `sku` at `location` (as admin), or panics.
    pub async fn quantities(&self, sku: &str, location: &str) -> Value {
        let answer = self
            .get(
                &self.tokens.admin,
                &format!("/v1/skus/{sku}/locations/{location}/availability"),
            )
            .await
            .expect(200);
        answer.body["locations"][0]["quantities"].clone()
    }

    /// Polls `check` on an answer of GET `path` until it holds, at most `timeout`.
    pub async fn poll(
        &self,
        token: &str,
        path: &str,
        timeout: Duration,
        check: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let started = Instant::now();
        loop {
            let answer = self.get(token, path).await;
            if check(&answer) || started.elapsed() > timeout {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One HTTP answer: status, headers, and the body as JSON (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub async fn of(request: reqwest::RequestBuilder) -> Answer {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        let method = request.method().to_string();
        let url = request.url().to_string();
        let response = client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            method,
            url,
            status,
            headers,
            text,
            body,
        }
    }

    /// Asserts the status; returns the answer for further checks.
    #[track_caller]
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(
            self.status, status,
            "{} {} answered {} (expected {status}): {}",
            self.method, self.url, self.status, self.text
        );
        self
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The problem code: the part of `type` after the base URI.
    pub fn problem_type(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix(PROBLEM_BASE))
            .unwrap_or("")
    }

    /// Asserts a problem+json answer with this status and problem type.
    #[track_caller]
    pub fn expect_problem(self, status: u16, problem_type: &str) -> Answer {
        assert_eq!(
            (self.status, self.problem_type()),
            (status, problem_type),
            "{} {}: {}",
            self.method,
            self.url,
            self.text
        );
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{} {}: problem content type",
            self.method,
            self.url
        );
        assert_eq!(
            self.body["status"], status,
            "status in the body: {}",
            self.text
        );
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "title and detail: {}",
            self.text
        );
        self
    }

    /// Asserts the problem's `code` (a rejection or invalid-event code).
    #[track_caller]
    pub fn expect_code(self, code: &str) -> Answer {
        assert_eq!(
            self.body["code"], code,
            "{} {}: {}",
            self.method, self.url, self.text
        );
        self
    }

    /// Asserts the problem's `field`.
    #[track_caller]
    pub fn expect_field(self, field: &str) -> Answer {
        assert_eq!(
            self.body["field"], field,
            "{} {}: {}",
            self.method, self.url, self.text
        );
        self
    }
}

/// A fresh event id.
pub fn event_id() -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, unique_name("event").as_bytes()).to_string()
}

/// A fresh identifier (SKU, hold, order...) with a readable prefix.
pub fn fresh(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{n}")
}

/// An event as JSON, every envelope field written out.
pub fn event(
    channel: &str,
    location: Option<&str>,
    sku: Option<&str>,
    document: Option<(&str, &str)>,
    payload: Value,
) -> Value {
    json!({
        "event_id": event_id(),
        "schema_version": 1,
        "occurred_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "channel": channel,
        "location": location,
        "sku": sku,
        "document": document.map(|(kind, id)| json!({"kind": kind, "id": id})),
        "reason": null,
        "payload": payload,
    })
}

/// `stock_received` (restock) of `quantity` units, written by the warehouse system.
pub fn received(sku: &str, location: &str, quantity: i64) -> Value {
    event(
        "wms",
        Some(location),
        Some(sku),
        None,
        json!({"stock_received": {"quantity": quantity, "kind": "restock"}}),
    )
}

/// A location of the configuration.
#[derive(Debug, Clone)]
pub struct LocationSeed {
    pub id: String,
    /// `store`, `warehouse`, `partner`.
    pub kind: String,
    pub groups: Vec<String>,
}

/// A channel of the configuration: the groups it sells from and its buffer.
#[derive(Debug, Clone)]
pub struct ChannelSeed {
    pub id: String,
    pub groups: Vec<String>,
    pub buffer: i64,
}

pub fn location_defined(location: &LocationSeed) -> Value {
    event(
        "admin",
        Some(&location.id),
        None,
        None,
        json!({"location_defined": {
            "name": format!("Location {}", location.id),
            "kind": location.kind,
            "groups": location.groups,
            "active": true,
        }}),
    )
}

pub fn channel_defined(channel: &ChannelSeed) -> Value {
    event(
        "admin",
        None,
        None,
        None,
        json!({"channel_defined": {
            "channel": channel.id,
            "locations": [],
            "groups": channel.groups,
            "buffer": channel.buffer,
        }}),
    )
}

/// Configuration and stock written before a test.
#[derive(Debug, Clone, Default)]
pub struct Seed {
    pub locations: Vec<LocationSeed>,
    pub channels: Vec<ChannelSeed>,
    /// (SKU, location, units received).
    pub stock: Vec<(String, String, i64)>,
}

impl Seed {
    /// Two stores of group `paris` (also in `stores`), a warehouse (group
    /// `warehouses`); channels `web` and `marketplace` (no buffer, every location)
    /// and `app` (stores only, buffer 2).
    pub fn standard() -> Seed {
        let location = |id: &str, kind: &str, groups: &[&str]| LocationSeed {
            id: id.to_owned(),
            kind: kind.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let channel = |id: &str, groups: &[&str], buffer: i64| ChannelSeed {
            id: id.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            buffer,
        };
        Seed {
            locations: vec![
                location("store-1", "store", &["paris", "stores"]),
                location("store-2", "store", &["paris", "stores"]),
                location("wh-1", "warehouse", &["warehouses"]),
            ],
            channels: vec![
                channel("web", &["stores", "warehouses"], 0),
                channel("marketplace", &["stores", "warehouses"], 0),
                channel("app", &["stores"], 2),
            ],
            stock: Vec::new(),
        }
    }

    /// Adds `quantity` units of `sku` received at `location`.
    pub fn with_stock(mut self, sku: &str, location: &str, quantity: i64) -> Seed {
        self.stock
            .push((sku.to_owned(), location.to_owned(), quantity));
        self
    }
}

/// A hold request body.
pub fn hold_request(
    hold_id: &str,
    sku: &str,
    location: &str,
    quantity: i64,
    kind: &str,
    customer: &str,
) -> Value {
    json!({
        "hold_id": hold_id,
        "sku": sku,
        "location": location,
        "quantity": quantity,
        "ttl_seconds": 900,
        "kind": kind,
        "order_id": format!("order-{hold_id}"),
        "customer_ref": customer,
    })
}
