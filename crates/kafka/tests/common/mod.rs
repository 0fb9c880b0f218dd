//! Runs one scenario against a broker: the embedded mock cluster or a tansu
//! broker started for the test. Every scenario makes its own topics and
//! groups with `unique_name`.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockline_kafka::{
    AssignmentChange, Brokers, ConsumeError, ConsumedRecord, EmbeddedBroker, KafkaSettings,
    OutgoingRecord, PartitionConsumer, RecordPosition, RecordProducer, StartPositions, TansuBroker,
    TopicSpec, ensure_topics, unique_name,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Tansu,
}

pub struct Env {
    pub kind: Kind,
    pub brokers: Brokers,
    pub settings: KafkaSettings,
    pub rt: tokio::runtime::Runtime,
    // Kept alive for the whole scenario; killed on drop.
    tansu: Option<TansuBroker>,
}

impl Env {
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Creates a fresh topic and returns its name.
    pub fn topic(&self, partitions: u32) -> String {
        let name = unique_name("t");
        self.block_on(ensure_topics(
            &self.brokers,
            &self.settings,
            &[TopicSpec::new(name.clone(), partitions)],
        ))
        .expect("create topic");
        name
    }

    pub fn producer(&self) -> RecordProducer {
        self.producer_with(&self.settings)
    }

    pub fn producer_with(&self, settings: &KafkaSettings) -> RecordProducer {
        // The producer needs a runtime context for its timers.
        let _guard = self.rt.enter();
        RecordProducer::new(&self.brokers, settings).expect("producer")
    }

    /// Sends every record and expects every one to succeed.
    pub fn produce(
        &self,
        producer: &RecordProducer,
        records: Vec<OutgoingRecord>,
    ) -> Vec<RecordPosition> {
        self.block_on(producer.send_all(records))
            .into_iter()
            .map(|r| r.expect("produce"))
            .collect()
    }

    pub fn consumer(
        &self,
        group: &str,
        topic: &str,
        start: Arc<dyn StartPositions>,
    ) -> PartitionConsumer {
        PartitionConsumer::subscribe(&self.brokers, &self.settings, group, &[topic], start)
            .expect("consumer")
    }

    pub fn tansu_log(&self) -> String {
        self.tansu
            .as_ref()
            .map(TansuBroker::log_tail)
            .unwrap_or_default()
    }
}

/// Runs `scenario` against a broker of `kind`. For tansu, a missing binary
/// fails the test with the install instructions, unless
/// `STOCKLINE_TANSU=skip` asks to skip tansu scenarios explicitly.
pub fn run(kind: Kind, scenario: impl FnOnce(&Env)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (brokers, tansu) = match kind {
        Kind::Embedded => (
            Brokers::Embedded(EmbeddedBroker::start().expect("embedded broker")),
            None,
        ),
        Kind::Tansu => {
            if std::env::var("STOCKLINE_TANSU").as_deref() == Ok("skip") {
                eprintln!("STOCKLINE_TANSU=skip: tansu scenario skipped");
                return;
            }
            let broker = TansuBroker::start().unwrap_or_else(|e| panic!("{e}"));
            (
                Brokers::External(broker.bootstrap_servers().to_owned()),
                Some(broker),
            )
        }
    };
    // With tansu, its workarounds: watermarks confirmed by reading (its
    // ListOffsets answers the newest batch's base offset + 1) and a short
    // fetch wait (it holds every fetch for the whole wait).
    let settings = match &brokers {
        Brokers::External(list) => KafkaSettings::for_tansu(list),
        Brokers::Embedded(_) => KafkaSettings::default(),
    };
    let env = Env {
        kind,
        brokers,
        settings,
        rt,
        tansu,
    };
    scenario(&env);
}

/// Generates `embedded` and `tansu` tests for a scenario function.
#[macro_export]
macro_rules! on_both_brokers {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn embedded() {
                    super::common::run(super::common::Kind::Embedded, super::$scenario);
                }
                #[test]
                fn tansu() {
                    super::common::run(super::common::Kind::Tansu, super::$scenario);
                }
            }
        )+
    };
}

/// Polls `consumer` until `want` records arrived (or `timeout_ms` passed),
/// collecting every assignment change seen on the way.
pub fn consume_n(
    consumer: &mut PartitionConsumer,
    want: usize,
    timeout_ms: u64,
) -> (Vec<ConsumedRecord>, Vec<AssignmentChange>) {
    let started = Instant::now();
    let mut records = Vec::new();
    let mut changes = Vec::new();
    while records.len() < want && started.elapsed() < Duration::from_millis(timeout_ms) {
        match consumer.poll_batch(want - records.len(), 200) {
            Ok(batch) => {
                records.extend(batch.records);
                changes.extend(batch.changes);
            }
            Err(e) if e.is_retriable() => eprintln!("retriable consumer error: {e}"),
            Err(e) => panic!("consumer error: {e}"),
        }
    }
    (records, changes)
}

/// Polls until `pred` holds for an error or `timeout_ms` passed; returns the
/// changes and the first non-retriable error.
pub fn poll_until_error(
    consumer: &mut PartitionConsumer,
    timeout_ms: u64,
) -> (Vec<AssignmentChange>, Option<ConsumeError>) {
    let started = Instant::now();
    let mut changes = Vec::new();
    while started.elapsed() < Duration::from_millis(timeout_ms) {
        match consumer.poll_batch(1_000, 200) {
            Ok(batch) => changes.extend(batch.changes),
            Err(e) if e.is_retriable() => eprintln!("retriable consumer error: {e}"),
            Err(e) => return (changes, Some(e)),
        }
    }
    (changes, None)
}

/// A fixed map of start positions.
pub struct Positions(pub Vec<((String, i32), i64)>);

impl StartPositions for Positions {
    fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0
            .iter()
            .find(|((t, p), _)| t == topic && *p == partition)
            .map(|(_, o)| *o)
    }
}
