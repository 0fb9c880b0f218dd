//! A minimal running stack for the channel adapter tests: an embedded broker with
//! fresh topics, a store in a temporary directory, the projector, and the HTTP
//! service on a free 127.0.0.1 port with one admin token and the given adapter
//! settings. Locations, channels and stock are written through the ingest
//! endpoint; stock and holds are read back through the API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::Value;
use stockline_domain::{
    ChannelId, Event, GroupId, LocationId, LocationKind, Payload, ReceiptKind, SCHEMA_VERSION, Sku,
};
use stockline_engine::{EventPublisher, ProjectorHandle, ProjectorSettings};
use stockline_kafka::RecordProducer;
use stockline_service::{AppState, HttpSettings, Role, ServiceParts, TokenEntry};
use stockline_store::{OpenMode, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{BrokerKind, TestBroker};

pub const PARTITIONS: u32 = 4;

/// A test file of the adapters crate's fixtures.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../adapters/tests/fixtures")
        .join(path)
}

pub fn fixture_bytes(path: &str) -> Vec<u8> {
    let file = fixture(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// An HTTP answer: status, content type, JSON body (Null when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    async fn of(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request answered");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
        }
    }
}

pub struct AdapterStack {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub store: Store,
    projector: Option<ProjectorHandle>,
    server: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    pub broker: TestBroker,
    _dir: tempfile::TempDir,
}

impl AdapterStack {
    /// Starts everything with `http`'s adapter settings, then seeds locations,
    /// channels and stock (see [`AdapterStack::seed`]).
    pub async fn start(mut http: HttpSettings) -> AdapterStack {
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
        let publisher = EventPublisher::new(producer, &broker.settings.topics.events, PARTITIONS);
        let admin = stockline_service::new_token();
        http.tokens = vec![TokenEntry {
            name: "ops".into(),
            sha256: stockline_service::token_digest(&admin),
            role: Role::Admin,
        }];
        let state = AppState::new(ServiceParts {
            store: store.clone(),
            publisher,
            status: projector.status(),
            settings: http,
            embedded_broker: true,
            metrics: stockline_service::prometheus(),
        })
        .expect("service state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(stockline_service::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let stack = AdapterStack {
            base,
            admin,
            client,
            store,
            projector: Some(projector),
            server: Some((stop, server)),
            broker,
            _dir: dir,
        };
        let started = Instant::now();
        while stack.get("/ready").await.status != 200 {
            assert!(started.elapsed() < Duration::from_secs(30), "not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack.seed().await;
        stack
    }

    /// Stores `store-lyon`, `store-paris` (group `stores`) and warehouse
    /// `wh-paris` (group `warehouses`); channels `web`, `pos`, `app` selling from
    /// both groups; 10 units of SOFA-GREY, LAMP-BRASS and MUG-BLUE everywhere.
    async fn seed(&self) {
        let mut events = Vec::new();
        let mut counter = 0u128;
        let mut event = |location: Option<&str>, sku: Option<&str>, payload: Payload| {
            counter += 1;
            Event {
                event_id: Uuid::from_u128(0x5eed_0000 + counter),
                schema_version: SCHEMA_VERSION,
                occurred_at: Utc.timestamp_opt(1_741_900_000, 0).single().expect("time"),
                channel: ChannelId::new("admin").expect("id"),
                location: location.map(|l| LocationId::new(l).expect("id")),
                sku: sku.map(|s| Sku::new(s).expect("id")),
                document: None,
                reason: None,
                payload,
            }
        };
        for (id, kind, group) in [
            ("store-lyon", LocationKind::Store, "stores"),
            ("store-paris", LocationKind::Store, "stores"),
            ("wh-paris", LocationKind::Warehouse, "warehouses"),
        ] {
            events.push(event(
                Some(id),
                None,
                Payload::LocationDefined {
                    name: id.into(),
                    kind,
                    groups: vec![GroupId::new(group).expect("id")],
                    active: true,
                },
            ));
        }
        for name in ["web", "pos", "app"] {
            events.push(event(
                None,
                None,
                Payload::ChannelDefined {
                    channel: ChannelId::new(name).expect("id"),
                    locations: Vec::new(),
                    groups: vec![
                        GroupId::new("stores").expect("id"),
                        GroupId::new("warehouses").expect("id"),
                    ],
                    buffer: 0,
                },
            ));
        }
        for sku in ["SOFA-GREY", "LAMP-BRASS", "MUG-BLUE"] {
            for place in ["store-lyon", "store-paris", "wh-paris"] {
                events.push(event(
                    Some(place),
                    Some(sku),
                    Payload::StockReceived {
                        quantity: 10,
                        kind: ReceiptKind::InitialLoad,
                    },
                ));
            }
        }
        let body = serde_json::to_value(&events).expect("events as JSON");
        let reply = Reply::of(
            self.client
                .post(format!("{}/v1/events", self.base))
                .bearer_auth(&self.admin)
                .json(&body),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["rejected"], 0, "{reply:?}");
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::of(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.admin),
        )
        .await
    }

    /// A webhook delivery: the raw body with these headers, no bearer token.
    pub async fn webhook(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Reply::of(request).await
    }

    /// Quantities of `sku` at `location`, through the API.
    pub async fn quantities(&self, sku: &str, location: &str) -> Value {
        let reply = self
            .get(&format!("/v1/skus/{sku}/locations/{location}/availability"))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body["locations"][0]["quantities"].clone()
    }

    pub async fn on_hand(&self, sku: &str, location: &str) -> i64 {
        self.quantities(sku, location).await["on_hand"]
            .as_i64()
            .expect("on_hand")
    }

    /// A hold through the API (`None` when unknown).
    pub async fn hold(&self, hold_id: &str) -> Option<Value> {
        let reply = self
            .get(&format!("/v1/holds/{}", hold_id.replace('#', "%23")))
            .await;
        match reply.status {
            200 => Some(reply.body["hold"].clone()),
            404 => None,
            other => panic!("GET hold {hold_id}: {other} {:?}", reply.body),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some((stop, server)) = self.server.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        if let Some(projector) = self.projector.take() {
            tokio::task::spawn_blocking(move || projector.stop())
                .await
                .expect("projector joins")
                .expect("projector stops");
        }
    }
}
