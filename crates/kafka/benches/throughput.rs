//! Produce and raw consume throughput on the embedded mock cluster and on a
//! tansu broker: 200,000 records of 100 bytes, 1,000 distinct keys, 8
//! partitions. Plain `main` (harness = false):
//!
//! ```text
//! cargo bench -p stockline-kafka --bench throughput
//! ```
//!
//! `STOCKLINE_BENCH_RECORDS` changes the record count; tansu is skipped with
//! a message when its binary is not installed (scripts/install-tansu.sh).
//! `STOCKLINE_BENCH_FETCH_DEFAULTS=1` puts librdkafka's default fetch and
//! prefetch settings back, to measure what the crate's tuning buys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stockline_kafka::{
    Brokers, EmbeddedBroker, FromBeginning, KafkaSettings, OutgoingRecord, PartitionConsumer,
    RecordProducer, TansuBroker, TopicSpec, ensure_topics, unique_name,
};

const PARTITIONS: u32 = 8;
const PAYLOAD_BYTES: usize = 100;
const DISTINCT_KEYS: usize = 1_000;
const BASE_TIMESTAMP_MS: i64 = 1_750_000_000_000;
/// Records handed to `send_all` at once: bounds the caller-side futures.
const SEND_CHUNK_RECORDS: usize = 20_000;
/// Bound on the whole consume phase.
const CONSUME_TIMEOUT_MS: u64 = 300_000;

struct Figures {
    produce_per_s: f64,
    consume_per_s: f64,
    consume_after_first_record_per_s: f64,
    join_ms: u128,
}

fn run(label: &str, brokers: &Brokers, settings: &KafkaSettings, records: usize) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let topic = unique_name("bench");
    rt.block_on(ensure_topics(
        brokers,
        settings,
        &[TopicSpec::new(topic.clone(), PARTITIONS)],
    ))
    .expect("topic");

    let producer = {
        let _guard = rt.enter();
        RecordProducer::new(brokers, settings).expect("producer")
    };
    let keys: Vec<String> = (0..DISTINCT_KEYS).map(|i| format!("sku-{i:06}")).collect();
    let payload = vec![b'p'; PAYLOAD_BYTES];
    let topic_arc: Arc<str> = Arc::from(topic.as_str());

    let started = Instant::now();
    let mut sent = 0_usize;
    while sent < records {
        let n = SEND_CHUNK_RECORDS.min(records - sent);
        let chunk: Vec<OutgoingRecord> = (sent..sent + n)
            .map(|i| {
                OutgoingRecord::keyed(
                    Arc::clone(&topic_arc),
                    keys[i % DISTINCT_KEYS].as_bytes(),
                    PARTITIONS,
                    payload.clone(),
                    BASE_TIMESTAMP_MS + i64::try_from(i).expect("small"),
                )
            })
            .collect();
        let results = rt.block_on(producer.send_all(chunk));
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 0, "{label}: {failed} records failed");
        sent += n;
    }
    rt.block_on(producer.flush(30_000)).expect("flush");
    let produce_s = started.elapsed().as_secs_f64();
    println!(
        "{label}: produced {records} records in {produce_s:.2} s; producer stats {:?}",
        producer.stats()
    );

    let mut consumer = PartitionConsumer::subscribe(
        brokers,
        settings,
        &unique_name("bench-group"),
        &[topic.as_str()],
        Arc::new(FromBeginning),
    )
    .expect("consumer");
    let started = Instant::now();
    let mut first_record_at = None;
    let mut consumed = 0_usize;
    while consumed < records && started.elapsed() < Duration::from_millis(CONSUME_TIMEOUT_MS) {
        let batch = consumer.poll_batch(10_000, 100).expect("poll");
        if !batch.records.is_empty() && first_record_at.is_none() {
            first_record_at = Some(Instant::now());
        }
        consumed += batch.records.len();
    }
    let consume_s = started.elapsed().as_secs_f64();
    assert_eq!(
        consumed, records,
        "{label}: consumed {consumed} of {records}"
    );
    let first = first_record_at.unwrap_or(started);
    let after_first_s = first.elapsed().as_secs_f64();
    Figures {
        produce_per_s: count_f64(records) / produce_s,
        consume_per_s: count_f64(records) / consume_s,
        consume_after_first_record_per_s: count_f64(records) / after_first_s,
        join_ms: first.duration_since(started).as_millis(),
    }
}

fn count_f64(n: usize) -> f64 {
    // Exact for any count this benchmark uses.
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

fn report(label: &str, f: &Figures) {
    println!(
        "{label}: produce {:.0} msg/s; consume {:.0} msg/s including group join \
         ({} ms to first record), {:.0} msg/s from the first record",
        f.produce_per_s, f.consume_per_s, f.join_ms, f.consume_after_first_record_per_s
    );
}

/// librdkafka's defaults for the properties `consumer::fetch_tuning` sets.
fn fetch_defaults() -> std::collections::BTreeMap<String, String> {
    [
        ("fetch.wait.max.ms", "500"),
        ("fetch.min.bytes", "1"),
        ("max.partition.fetch.bytes", "1048576"),
        ("queued.min.messages", "100000"),
        ("queued.max.messages.kbytes", "65536"),
        ("fetch.queue.backoff.ms", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn main() {
    let properties = if std::env::var("STOCKLINE_BENCH_FETCH_DEFAULTS").as_deref() == Ok("1") {
        println!("consumer fetch settings: librdkafka defaults");
        fetch_defaults()
    } else {
        std::collections::BTreeMap::new()
    };
    let records: usize = std::env::var("STOCKLINE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!(
        "{records} records of {PAYLOAD_BYTES} bytes, {DISTINCT_KEYS} keys, {PARTITIONS} partitions"
    );

    {
        let broker = EmbeddedBroker::start().expect("embedded broker");
        let brokers = Brokers::Embedded(broker);
        let settings = KafkaSettings {
            properties: properties.clone(),
            ..KafkaSettings::default()
        };
        let figures = run("embedded", &brokers, &settings, records);
        report("embedded", &figures);
    }

    match TansuBroker::start() {
        Ok(tansu) => {
            let brokers = Brokers::External(tansu.bootstrap_servers().to_owned());
            let settings = KafkaSettings {
                properties,
                ..KafkaSettings::for_tansu(tansu.bootstrap_servers())
            };
            let figures = run("tansu", &brokers, &settings, records);
            report("tansu", &figures);
        }
        Err(e) => println!("tansu: skipped ({e})"),
    }
}
