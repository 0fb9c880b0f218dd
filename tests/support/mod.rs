//! Shared support of the end-to-end tests: a broker per test (the embedded mock
//! cluster or a tansu broker started for the test on a free 127.0.0.1 port), fresh
//! topic and group names per test, and a realistic event log.

#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/domain/tests/support/mod.rs"]
#[allow(clippy::all)]
pub mod domain;

use std::time::{Duration, Instant};

use stockline_domain::{Event, LogTime};
use stockline_engine::{EventPublisher, Positions};
use stockline_kafka::{
    Brokers, EmbeddedBroker, KafkaSettings, OutgoingRecord, RecordProducer, TansuBroker,
    TopicNames, TopicSpec, ensure_topics, unique_name,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Embedded,
    Tansu,
}

/// A broker for one test, with its own topics.
pub struct TestBroker {
    pub kind: BrokerKind,
    pub brokers: Brokers,
    pub settings: KafkaSettings,
    tansu: Option<TansuBroker>,
}

impl TestBroker {
    pub fn start(kind: BrokerKind, partitions: u32) -> TestBroker {
        let (brokers, tansu) = match kind {
            BrokerKind::Embedded => (
                Brokers::Embedded(EmbeddedBroker::start().expect("embedded broker starts")),
                None,
            ),
            BrokerKind::Tansu => {
                let broker = TansuBroker::start().unwrap_or_else(|e| panic!("{e}"));
                (
                    Brokers::External(broker.bootstrap_servers().to_owned()),
                    Some(broker),
                )
            }
        };
        let settings = KafkaSettings {
            topics: TopicNames {
                events: unique_name("events"),
                dead_letters: unique_name("dead-letters"),
                notifications: unique_name("notifications"),
            },
            partitions,
            ..match &brokers {
                Brokers::External(list) => KafkaSettings::for_tansu(list),
                Brokers::Embedded(_) => KafkaSettings::default(),
            }
        };
        let broker = TestBroker {
            kind,
            brokers,
            settings,
            tansu,
        };
        broker.block_on_new_runtime(async {
            ensure_topics(
                &broker.brokers,
                &broker.settings,
                &TopicSpec::stockline_topics(&broker.settings),
            )
            .await
            .expect("topics created");
        });
        broker
    }

    fn block_on_new_runtime<F: std::future::Future>(&self, future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    pub fn bootstrap_servers(&self) -> String {
        self.brokers.bootstrap_servers().to_owned()
    }

    pub fn log_tail(&self) -> String {
        self.tansu
            .as_ref()
            .map(TansuBroker::log_tail)
            .unwrap_or_default()
    }

    /// High watermarks of the events topic now.
    pub fn event_ends(&self) -> Positions {
        stockline_kafka::topic_watermarks(
            &self.brokers,
            &self.settings,
            &self.settings.topics.events,
        )
        .expect("watermarks")
        .into_iter()
        .map(|w| {
            (
                u32::try_from(w.partition).expect("partition"),
                u64::try_from(w.high_watermark).expect("offset"),
            )
        })
        .collect()
    }
}

/// Produces events with the given record timestamps (log time), routed as the
/// publisher routes them. Returns the number of records written.
pub async fn produce_events(
    producer: &RecordProducer,
    publisher: &EventPublisher,
    events: &[(Event, LogTime)],
) -> usize {
    let mut records: Vec<OutgoingRecord> = Vec::new();
    for (event, time) in events {
        records.extend(
            publisher
                .records(event, time.millis())
                .unwrap_or_else(|e| panic!("valid generated event: {e}: {event:?}")),
        );
    }
    let count = records.len();
    for result in producer.send_all(records).await {
        result.expect("produced");
    }
    count
}

/// Generated traffic with only valid events (the generator also makes invalid
/// ones on purpose; those are tested separately).
pub fn valid_traffic(seed: u64, n: usize) -> Vec<(Event, LogTime)> {
    domain::realistic_log(domain::Mix::PARTITION, seed, n)
        .records()
        .into_iter()
        .filter(|(event, _)| event.validate().is_ok() && event.routing().is_some())
        .collect()
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

pub fn group() -> String {
    unique_name("group")
}

/// The in-process HTTP service harness (tests/http.rs).
pub mod http;

/// The running stack of the channel adapter tests (tests/adapters.rs).
pub mod adapters;
