//! Scenarios run against both the embedded mock cluster and a real tansu
//! broker (see `common::run`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use common::{Env, Positions, consume_n, poll_until_error};
use stockline_kafka::{
    AdminError, AssignmentChange, ConsumeError, ErrorKind, FromBeginning, KafkaSettings,
    OutgoingRecord, PartitionRange, PositionProblem, ProduceError, RangeReader, TimestampKind,
    TopicSpec, ensure_topics, partition_for_key, read_all, topic_watermarks, unique_name,
};

on_both_brokers!(
    keyed_records_get_contiguous_offsets_per_partition,
    group_consumer_starts_where_the_store_says,
    stored_offset_beyond_high_watermark_is_reported,
    bad_input_is_classified,
    in_flight_records_stay_within_the_bound,
    ensure_topics_is_idempotent_and_checks_partitions,
    librdkafka_murmur2_agrees_with_our_partitioner,
    range_reader_reads_exact_ranges,
);

const BASE_TIMESTAMP_MS: i64 = 1_750_000_000_000;

fn keyed_records_get_contiguous_offsets_per_partition(env: &Env) {
    let partitions = 4;
    let topic = env.topic(partitions);
    let producer = env.producer();
    let records: Vec<OutgoingRecord> = (0..1_000_i64)
        .map(|i| {
            OutgoingRecord::keyed(
                topic.as_str(),
                format!("sku-{}", i % 97),
                partitions,
                format!("payload-{i}"),
                BASE_TIMESTAMP_MS + i,
            )
            .with_header("event-id", format!("e{i}"))
        })
        .collect();
    let expected = records.clone();
    let positions = env.produce(&producer, records);

    // Offsets of each partition are 0, 1, 2, ... in send order.
    let mut next_by_partition: BTreeMap<i32, i64> = BTreeMap::new();
    for (record, position) in expected.iter().zip(&positions) {
        assert_eq!(position.partition, record.partition);
        let key = record.key.as_deref().expect("keyed");
        assert_eq!(
            u32::try_from(position.partition).expect("non-negative"),
            partition_for_key(key, partitions)
        );
        let next = next_by_partition.entry(position.partition).or_insert(0);
        assert_eq!(position.offset, *next, "offsets must be contiguous");
        *next += 1;
    }
    assert_eq!(
        next_by_partition.len(),
        4,
        "97 keys spread over 4 partitions"
    );
    env.block_on(producer.flush(5_000)).expect("flush");

    // Read back everything up to the high watermarks: same bytes, keys,
    // timestamps and headers, in offset order per partition.
    let read = read_all(&env.brokers, &env.settings, &topic, 10_000, 10_000).expect("read_all");
    assert_eq!(read.len(), expected.len());
    let by_position: BTreeMap<(i32, i64), &OutgoingRecord> = expected
        .iter()
        .zip(&positions)
        .map(|(r, p)| ((p.partition, p.offset), r))
        .collect();
    for record in &read {
        let sent = by_position[&(record.partition, record.offset)];
        assert_eq!(record.key, sent.key);
        assert_eq!(record.payload.as_deref(), Some(sent.payload.as_slice()));
        assert_eq!(record.timestamp_ms, Some(sent.timestamp_ms));
        assert_eq!(record.timestamp_kind, Some(TimestampKind::CreateTime));
        assert_eq!(
            record.header("event-id"),
            sent.headers[0].value.as_deref(),
            "headers survive"
        );
    }
}

fn group_consumer_starts_where_the_store_says(env: &Env) {
    let topic = env.topic(2);
    let producer = env.producer();
    let record = |i: i64| {
        let partition = i32::from(i % 2 == 1);
        OutgoingRecord::to_partition(
            topic.as_str(),
            partition,
            Some(format!("k{i}").into_bytes()),
            format!("v{i}"),
            BASE_TIMESTAMP_MS + i,
        )
        .with_header("event-id", format!("e{i}"))
    };
    // Two rounds, each acknowledged before the next, so offset 17 of
    // partition 0 starts a record batch: tansu 0.6.0 cannot serve a fetch
    // from inside a batch (see `tansu_deviations_from_kafka`); Kafka and the
    // mock can, and the mock is also checked mid-batch below.
    env.produce(&producer, (0..34).map(record).collect());
    env.produce(&producer, (34..100).map(record).collect());

    // Partition 0 resumes at 17 (records 0..17 "already applied"),
    // partition 1 has no stored position: from the beginning.
    let start = Arc::new(Positions(vec![((topic.clone(), 0), 17)]));
    let group = unique_name("g");
    let mut consumer = env.consumer(&group, &topic, start);
    let want = (50 - 17) + 50;
    let (records, changes) = consume_n(&mut consumer, want, 20_000);
    assert_eq!(records.len(), want, "changes seen: {changes:?}");
    for record in &records {
        let i = record.payload.as_deref().and_then(|v| v.strip_prefix(b"v"));
        let header = i.map(|i| [b"e", i].concat());
        assert_eq!(record.header("event-id"), header.as_deref(), "headers read");
    }

    let first_of = |p: i32| {
        records
            .iter()
            .find(|r| r.partition == p)
            .map(|r| r.offset)
            .expect("records of partition")
    };
    assert_eq!(
        first_of(0),
        17,
        "first record delivered is the stored position"
    );
    assert_eq!(first_of(1), 0, "no stored position: from the beginning");
    for p in [0, 1] {
        let offsets: Vec<i64> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, no gap"
        );
    }

    // The assignment was reported with the stored positions and watermarks.
    let assigned: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Assigned(parts) => Some(parts.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let p0 = assigned
        .iter()
        .find(|a| a.partition == 0)
        .expect("partition 0 assigned");
    assert_eq!(p0.stored_next_offset, Some(17));
    assert_eq!(p0.watermarks, Some((0, 50)));
    assert!(p0.problem.is_none());

    // Positions stored after "applying" reach the group (lag monitoring).
    consumer
        .store_positions(&[(topic.as_str(), 0, 50), (topic.as_str(), 1, 50)])
        .expect("store");
    consumer.commit_stored().expect("commit");
    let committed = consumer.committed_offsets().expect("committed");
    for p in [0, 1] {
        let entry = committed
            .iter()
            .find(|(t, part, _)| *t == topic && *part == p)
            .expect("committed entry");
        assert_eq!(entry.2, Some(50), "partition {p}: {committed:?}");
    }

    // A consumer without headers reads the same records, headers left out.
    let start = Arc::new(Positions(vec![((topic.clone(), 0), 17)]));
    let mut bare = env
        .consumer(&unique_name("g"), &topic, start)
        .without_headers();
    let (bare_records, _) = consume_n(&mut bare, want, 20_000);
    let strip =
        |records: &[stockline_kafka::ConsumedRecord]| -> BTreeMap<(i32, i64), Option<Vec<u8>>> {
            records
                .iter()
                .map(|r| ((r.partition, r.offset), r.payload.clone()))
                .collect()
        };
    assert_eq!(strip(&bare_records), strip(&records));
    assert!(bare_records.iter().all(|r| r.headers.is_empty()));
}

fn stored_offset_beyond_high_watermark_is_reported(env: &Env) {
    let topic = env.topic(1);
    let producer = env.producer();
    let records = (0..10_i64)
        .map(|i| OutgoingRecord::to_partition(topic.as_str(), 0, None, vec![1_u8; 10], i + 1))
        .collect();
    env.produce(&producer, records);

    // The store says 50 records were applied; the log only has 10: the
    // broker lost its log (or the store belongs to another cluster).
    let start = Arc::new(Positions(vec![((topic.clone(), 0), 50)]));
    let mut consumer = env.consumer(&unique_name("g"), &topic, start);
    let (changes, error) = poll_until_error(&mut consumer, 20_000);
    let problem = changes
        .iter()
        .find_map(|c| match c {
            AssignmentChange::Assigned(parts) => parts.iter().find_map(|p| p.problem.clone()),
            _ => None,
        })
        .expect("assignment reports the problem");
    assert_eq!(
        problem,
        PositionProblem::BeyondHighWatermark {
            topic: topic.clone(),
            partition: 0,
            next_offset: 50,
            high_watermark: 10,
        }
    );
    let error = error.expect("poll_batch returns the problem as an error");
    assert_eq!(error, ConsumeError::Position(vec![problem]));
    assert_eq!(error.kind(), ErrorKind::Fatal);
    assert!(
        error.to_string().contains("beyond the high watermark"),
        "{error}"
    );
}

fn bad_input_is_classified(env: &Env) {
    let topic = env.topic(2);
    let producer = env.producer();

    // Larger than librdkafka's message.max.bytes (1,000,000 by default).
    let oversize = OutgoingRecord::to_partition(topic.as_str(), 0, None, vec![0_u8; 2_000_000], 1);
    let error = env
        .block_on(producer.send(oversize))
        .expect_err("oversize must fail");
    assert_eq!(error.kind(), ErrorKind::BadInput, "{error}");
    assert!(!error.is_retriable());

    // A partition the topic does not have.
    let nowhere = OutgoingRecord::to_partition(topic.as_str(), 7, None, b"x".to_vec(), 1);
    let error = env
        .block_on(producer.send(nowhere))
        .expect_err("partition 7 of 2");
    assert_eq!(error.kind(), ErrorKind::BadInput, "{error}");

    // librdkafka would silently replace a 0 timestamp with "now".
    let no_time = OutgoingRecord::to_partition(topic.as_str(), 0, None, b"x".to_vec(), 0);
    let error = env
        .block_on(producer.send(no_time))
        .expect_err("timestamp 0");
    assert_eq!(error.kind(), ErrorKind::BadInput, "{error}");

    let negative = OutgoingRecord::to_partition(topic.as_str(), -1, None, b"x".to_vec(), 1);
    let error = env
        .block_on(producer.send(negative))
        .expect_err("negative partition");
    assert!(matches!(error, ProduceError::BadInput { .. }), "{error}");

    // The producer is still usable afterwards.
    let ok = OutgoingRecord::to_partition(topic.as_str(), 1, None, b"fine".to_vec(), 1);
    let position = env
        .block_on(producer.send(ok))
        .expect("good record after bad ones");
    assert_eq!(position.partition, 1);
    assert_eq!(producer.stats().in_flight, 0);
}

fn in_flight_records_stay_within_the_bound(env: &Env) {
    let max_in_flight = 16;
    let settings = KafkaSettings {
        max_in_flight_records: max_in_flight,
        ..env.settings.clone()
    };
    let topic = env.topic(4);
    let producer = env.producer_with(&settings);

    // An independent observer: librdkafka's own count of undelivered
    // messages, sampled on another thread while the sends run.
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicI32::new(0));
    let sampler = {
        let (producer, stop, max_seen) = (producer.clone(), stop.clone(), max_seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                max_seen.fetch_max(producer.librdkafka_queue_len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };

    let records: Vec<OutgoingRecord> = (0..10_000_i64)
        .map(|i| {
            OutgoingRecord::keyed(
                topic.as_str(),
                format!("sku-{}", i % 1_000),
                4,
                vec![7_u8; 100],
                BASE_TIMESTAMP_MS + i,
            )
        })
        .collect();
    let results = env.block_on(producer.send_all(records));
    assert_eq!(results.len(), 10_000);
    assert!(results.iter().all(Result::is_ok), "every record delivered");

    // Concurrent single sends from many tasks share the same bound.
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let producer = producer.clone();
            let topic = topic.clone();
            env.rt.spawn(async move {
                for i in 0..20_i64 {
                    let record = OutgoingRecord::keyed(
                        topic.as_str(),
                        format!("task-{t}-{i}"),
                        4,
                        vec![1_u8; 100],
                        i + 1,
                    );
                    producer.send(record).await.expect("send");
                }
            })
        })
        .collect();
    for task in tasks {
        env.block_on(task).expect("task");
    }

    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let stats = producer.stats();
    eprintln!(
        "{:?}: stats {stats:?}, librdkafka max queue seen {}",
        env.kind,
        max_seen.load(Ordering::Relaxed)
    );
    assert!(stats.peak_in_flight <= max_in_flight, "{stats:?}");
    assert!(
        stats.peak_in_flight > 1,
        "records were pipelined: {stats:?}"
    );
    // librdkafka also counts reported-but-not-yet-freed messages and pending
    // delivery-report events, which lag our count by one report batch.
    let librdkafka_max = max_seen.load(Ordering::Relaxed);
    assert!(
        librdkafka_max <= 2 * 16,
        "librdkafka's queue: {librdkafka_max}"
    );
    assert_eq!(stats.queue_full_retries, 0, "the count limit never bites");
    assert_eq!(stats.delivered_total, 10_000 + 64 * 20);
    assert_eq!(stats.in_flight, 0);
}

fn ensure_topics_is_idempotent_and_checks_partitions(env: &Env) {
    let name = unique_name("t");
    let spec = TopicSpec::new(name.clone(), 3);
    env.block_on(ensure_topics(
        &env.brokers,
        &env.settings,
        std::slice::from_ref(&spec),
    ))
    .expect("create");
    env.block_on(ensure_topics(
        &env.brokers,
        &env.settings,
        std::slice::from_ref(&spec),
    ))
    .expect("exists already: fine");

    let wrong = TopicSpec::new(name.clone(), 8);
    let error = env
        .block_on(ensure_topics(&env.brokers, &env.settings, &[wrong]))
        .expect_err("partition count differs");
    match &error {
        AdminError::PartitionMismatch {
            expected, actual, ..
        } => assert_eq!((*expected, *actual), (8, 3)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Fatal);

    // The three Stockline topics, with the settings' partition count.
    let settings = KafkaSettings {
        topics: stockline_kafka::TopicNames {
            events: unique_name("events"),
            dead_letters: unique_name("dead"),
            notifications: unique_name("notes"),
        },
        ..env.settings.clone()
    };
    env.block_on(ensure_topics(
        &env.brokers,
        &settings,
        &TopicSpec::stockline_topics(&settings),
    ))
    .expect("stockline topics");
    let count = stockline_kafka::admin::topic_partition_count(
        &env.brokers,
        &settings,
        &settings.topics.events,
    )
    .expect("metadata");
    assert_eq!(count, Some(8));
}

/// librdkafka's `murmur2_random` partitioner is documented as Java
/// compatible: letting it place keys must give our partitions.
fn librdkafka_murmur2_agrees_with_our_partitioner(env: &Env) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let partitions = 7;
    let topic = env.topic(partitions);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", env.brokers.bootstrap_servers())
        .set("partitioner", "murmur2_random")
        .create()
        .expect("raw producer");
    for i in 0..200 {
        let key = format!("key-{i}-{}", i * 7919);
        let delivery = env
            .block_on(producer.send(
                FutureRecord::to(&topic).key(&key).payload("p"),
                Duration::from_secs(10),
            ))
            .expect("delivered");
        assert_eq!(
            u32::try_from(delivery.partition).expect("non-negative"),
            partition_for_key(key.as_bytes(), partitions),
            "key {key}"
        );
    }
}

/// Default consumer with no stored positions reads everything.
#[test]
fn from_beginning_reads_everything_embedded() {
    common::run(common::Kind::Embedded, |env| {
        let topic = env.topic(3);
        let producer = env.producer();
        let records = (0..300_i64)
            .map(|i| OutgoingRecord::keyed(topic.as_str(), format!("k{i}"), 3, vec![0; 10], i + 1))
            .collect();
        env.produce(&producer, records);
        let mut consumer = env.consumer(&unique_name("g"), &topic, Arc::new(FromBeginning));
        let (records, _) = consume_n(&mut consumer, 300, 20_000);
        assert_eq!(records.len(), 300);
    });
}

/// The mock cluster keeps a 5 MiB window per partition: once a partition
/// passed it, a stored position (or a rebuild) from offset 0 is reported as
/// below the log start, never skipped. tansu's memory engine keeps
/// everything, so this one is embedded-only.
#[test]
fn embedded_window_truncation_is_reported_not_skipped() {
    common::run(common::Kind::Embedded, |env| {
        let topic = env.topic(1);
        let producer = env.producer();
        // 8,000 records of 1 KiB: about 8 MiB in one partition.
        for chunk in 0..8_i64 {
            let records = (0..1_000_i64)
                .map(|i| {
                    OutgoingRecord::to_partition(
                        topic.as_str(),
                        0,
                        None,
                        vec![b'x'; 1_024],
                        BASE_TIMESTAMP_MS + chunk * 1_000 + i,
                    )
                })
                .collect();
            env.produce(&producer, records);
        }
        let consumer_view = env.consumer(&unique_name("g"), &topic, Arc::new(FromBeginning));
        let watermarks = consumer_view.high_watermarks(&topic).expect("watermarks");
        drop(consumer_view);
        assert_eq!(watermarks.len(), 1);
        let (log_start, high) = (watermarks[0].log_start, watermarks[0].high_watermark);
        eprintln!("mock window: log start {log_start}, high watermark {high}");
        assert_eq!(high, 8_000);
        assert!(log_start > 0, "the mock dropped the oldest records");

        // A consumer whose store says "resume at 0".
        let start = Arc::new(Positions(vec![((topic.clone(), 0), 0)]));
        let mut consumer = env.consumer(&unique_name("g"), &topic, start);
        let (_, error) = poll_until_error(&mut consumer, 20_000);
        assert_eq!(
            error,
            Some(ConsumeError::Position(vec![
                PositionProblem::BelowLogStart {
                    topic: topic.clone(),
                    partition: 0,
                    next_offset: 0,
                    log_start,
                }
            ]))
        );

        // A rebuild from offset 0 refuses to start rather than skip.
        let error = read_all(&env.brokers, &env.settings, &topic, 100_000, 5_000)
            .expect_err("history is gone");
        assert!(
            matches!(&error, ConsumeError::Position(p) if matches!(p[0], PositionProblem::BelowLogStart { .. })),
            "{error}"
        );
    });
}

fn range_reader_reads_exact_ranges(env: &Env) {
    let topic = env.topic(2);
    let producer = env.producer();
    // Five acknowledged rounds of 10 records per partition: offsets 0, 10,
    // 20, ... start record batches (tansu cannot start inside one).
    for round in 0..5_i64 {
        let records = (0..20_i64)
            .map(|i| {
                OutgoingRecord::to_partition(
                    topic.as_str(),
                    i32::from(i % 2 == 1),
                    None,
                    format!("r{round}-{i}"),
                    BASE_TIMESTAMP_MS + round * 20 + i,
                )
            })
            .collect();
        env.produce(&producer, records);
    }
    let watermarks = topic_watermarks(&env.brokers, &env.settings, &topic).expect("watermarks");
    let ends: Vec<(i32, i64, i64)> = watermarks
        .iter()
        .map(|w| (w.partition, w.log_start, w.high_watermark))
        .collect();
    assert_eq!(ends, vec![(0, 0, 50), (1, 0, 50)]);

    let mut reader = RangeReader::open(
        &env.brokers,
        &env.settings,
        &topic,
        &[
            PartitionRange {
                partition: 0,
                from_offset: 10,
                until_offset: 30,
            },
            PartitionRange {
                partition: 1,
                from_offset: 0,
                until_offset: 50,
            },
        ],
    )
    .expect("reader");
    let mut read = Vec::new();
    for _ in 0..200 {
        if reader.is_done() {
            break;
        }
        read.extend(reader.next_batch(1_000, 100).expect("batch"));
    }
    assert!(reader.is_done(), "ranges finished");
    let p0: Vec<i64> = read
        .iter()
        .filter(|r| r.partition == 0)
        .map(|r| r.offset)
        .collect();
    let p1: Vec<i64> = read
        .iter()
        .filter(|r| r.partition == 1)
        .map(|r| r.offset)
        .collect();
    assert_eq!(p0, (10..30).collect::<Vec<_>>());
    assert_eq!(p1, (0..50).collect::<Vec<_>>());

    // A range past the end is refused rather than waited for.
    let error = RangeReader::open(
        &env.brokers,
        &env.settings,
        &topic,
        &[PartitionRange {
            partition: 0,
            from_offset: 0,
            until_offset: 60,
        }],
    )
    .expect_err("beyond the end");
    assert!(matches!(error, ConsumeError::Position(_)), "{error}");
}
