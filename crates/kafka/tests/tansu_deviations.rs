//! Where tansu 0.6.0 (memory engine) behaves differently from Apache Kafka
//! and librdkafka's mock, measured here so a tansu upgrade that fixes them is
//! noticed, and the embedded-broker counterparts that show the Kafka
//! behaviour the crate relies on.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Kind, Positions, consume_n};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use stockline_kafka::{KafkaSettings, OutgoingRecord, PartitionConsumer, unique_name};

const BASE_TIMESTAMP_MS: i64 = 1_750_000_000_000;

/// Two batches of 50 records each on partition 0 (each acknowledged before
/// the next is sent).
fn two_batches(env: &Env) -> String {
    let topic = env.topic(1);
    let producer = env.producer();
    for round in 0..2_i64 {
        let records = (0..50_i64)
            .map(|i| {
                OutgoingRecord::to_partition(
                    topic.as_str(),
                    0,
                    None,
                    vec![1_u8; 10],
                    BASE_TIMESTAMP_MS + round * 50 + i,
                )
            })
            .collect();
        env.produce(&producer, records);
    }
    topic
}

fn raw_consumer(env: &Env) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", env.brokers.bootstrap_servers())
        .set("group.id", unique_name("raw"))
        .set("auto.offset.reset", "error")
        .set("enable.auto.commit", "false")
        .create()
        .expect("raw consumer")
}

/// Offsets read from `start` for `wait_ms`.
fn read_from(consumer: &BaseConsumer, topic: &str, start: i64, wait_ms: u64) -> Vec<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(start))
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let started = Instant::now();
    let mut offsets = Vec::new();
    while started.elapsed() < Duration::from_millis(wait_ms) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            offsets.push(m.offset());
        }
    }
    offsets
}

#[test]
fn tansu_deviations_from_kafka() {
    common::run(Kind::Tansu, |env| {
        let topic = two_batches(env);
        let raw = raw_consumer(env);

        // 1. ListOffsets(latest) is the newest batch's base offset + 1, not
        //    the log end (100).
        let (_, listed_high) = raw
            .fetch_watermarks(&topic, 0, Duration::from_secs(5))
            .expect("watermarks");
        assert_eq!(
            listed_high, 51,
            "tansu fixed ListOffsets? then drop the workaround"
        );

        // ...which `verify_high_watermarks_by_reading` corrects.
        let settings = KafkaSettings {
            verify_high_watermarks_by_reading: true,
            ..env.settings.clone()
        };
        let consumer = PartitionConsumer::subscribe(
            &env.brokers,
            &settings,
            &unique_name("g"),
            &[topic.as_str()],
            Arc::new(stockline_kafka::FromBeginning),
        )
        .expect("consumer");
        let verified = consumer.high_watermarks(&topic).expect("watermarks");
        assert_eq!(verified[0].high_watermark, 100);

        // 2. A fetch from inside a batch skips to the next batch: records
        //    17..49 are silently not delivered.
        let from_17 = read_from(&raw, &topic, 17, 2_000);
        assert_eq!(from_17.first(), Some(&50), "tansu fixed mid-batch fetch?");
        assert_eq!(from_17.len(), 50);

        // 3. A fetch beyond the end is not an error (Kafka answers
        //    OFFSET_OUT_OF_RANGE): nothing arrives and nothing is reported.
        let beyond = read_from(&raw, &topic, 500, 1_000);
        assert!(beyond.is_empty());

        // The group consumer still reports a stored position beyond the
        // end (watermark check at assignment, confirmed by reading).
        let start = Arc::new(Positions(vec![((topic.clone(), 0), 500)]));
        let mut consumer = env.consumer(&unique_name("g"), &topic, start);
        let (_, error) = common::poll_until_error(&mut consumer, 20_000);
        let error = error.expect("position problem reported");
        assert!(
            error.to_string().contains("beyond the high watermark 100"),
            "{error}"
        );
    });
}

/// The Kafka behaviour tansu misses, on the embedded mock cluster.
#[test]
fn embedded_serves_fetches_from_inside_a_batch() {
    common::run(Kind::Embedded, |env| {
        let topic = two_batches(env);
        let raw = raw_consumer(env);
        let (_, high) = raw
            .fetch_watermarks(&topic, 0, Duration::from_secs(5))
            .expect("watermarks");
        assert_eq!(high, 100);

        // The group consumer resumes inside the first batch.
        let start = Arc::new(Positions(vec![((topic.clone(), 0), 17)]));
        let mut consumer = env.consumer(&unique_name("g"), &topic, start);
        let (records, _) = consume_n(&mut consumer, 83, 20_000);
        assert_eq!(records.first().map(|r| r.offset), Some(17));
        assert_eq!(records.len(), 83);
    });
}
