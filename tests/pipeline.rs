//! The pipeline against real brokers (the embedded mock cluster and a tansu broker
//! started by the test) and a real RocksDB: rebuild equals live, bad records are
//! dead-lettered while good ones apply, the embedded broker survives a restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use stockline_domain::{
    ChannelId, DocumentKind, DocumentRef, Event, Hold, HoldStatus, LocationId, LocationKind,
    Payload, Quantities, ReceiptKind, SCHEMA_VERSION, Sku,
};
use stockline_engine::embedded::restore_embedded_log;
use stockline_engine::{
    EngineError, EventPublisher, ProjectorSettings, RebuildLimit, RebuildSource, rebuild,
    spawn_projector,
};
use stockline_kafka::{
    Brokers, EmbeddedBroker, OutgoingRecord, RecordProducer, partition_for_key, read_all,
};
use stockline_store::keys::Key;
use stockline_store::rows::{DeadLetter, HistoryEntry};
use stockline_store::{OpenMode, Store, StoreContents, cf, compare};
use stockline_wire::encode_event;
use support::{BrokerKind, TestBroker, eventually, group, produce_events, valid_traffic};
use uuid::Uuid;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn projector_settings() -> ProjectorSettings {
    ProjectorSettings {
        group_id: group(),
        ..ProjectorSettings::default()
    }
}

fn assert_identical(left: &Store, right: &Store, what: &str) {
    let comparison = compare(left, right, 10).expect("compare");
    assert!(
        comparison.difference_count == 0,
        "{what}: {} differences:\n{}",
        comparison.difference_count,
        comparison
            .differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// What most tests here start with: a broker with fresh topics, a store, a
/// projector folding into it, a producer and a publisher.
struct Stack {
    broker: TestBroker,
    rt: tokio::runtime::Runtime,
    _store_dir: tempfile::TempDir,
    store: Store,
    projector: stockline_engine::ProjectorHandle,
    producer: RecordProducer,
    publisher: EventPublisher,
}

impl Stack {
    fn start(kind: BrokerKind, partitions: u32) -> Stack {
        Stack::start_with(kind, partitions, &projector_settings())
    }

    fn start_with(kind: BrokerKind, partitions: u32, settings: &ProjectorSettings) -> Stack {
        let broker = TestBroker::start(kind, partitions);
        let rt = runtime();
        let store_dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(store_dir.path(), OpenMode::ReadWrite).expect("store");
        let projector = spawn_projector(&broker.brokers, &broker.settings, settings, store.clone())
            .expect("projector starts");
        let producer = {
            let _guard = rt.enter();
            RecordProducer::new(&broker.brokers, &broker.settings).expect("producer")
        };
        let publisher =
            EventPublisher::new(producer.clone(), &broker.settings.topics.events, partitions);
        Stack {
            broker,
            rt,
            _store_dir: store_dir,
            store,
            projector,
            producer,
            publisher,
        }
    }

    /// Waits until the projector has applied everything the topic holds now.
    fn caught_up(&self, timeout: Duration) -> bool {
        let ends = self.broker.event_ends();
        self.rt.block_on(self.projector.wait_for(&ends, timeout))
    }
}

/// `fold_threads`: the projector's lanes; the rebuilds fold on their own
/// threads, so a live store made by any number of lanes must equal them.
fn rebuild_equals_live(kind: BrokerKind, fold_threads: usize) {
    let settings = ProjectorSettings {
        fold_threads,
        ..projector_settings()
    };
    let Stack {
        broker,
        rt,
        _store_dir,
        store: live,
        projector,
        producer,
        publisher,
    } = Stack::start_with(kind, 4, &settings);
    let traffic = valid_traffic(11, 4_000);
    let produced = rt.block_on(produce_events(&producer, &publisher, &traffic));
    assert!(
        produced > 4_000,
        "broadcasts went to every partition ({produced} records)"
    );
    let ends = broker.event_ends();
    assert!(
        rt.block_on(projector.wait_for(&ends, Duration::from_secs(60))),
        "projector caught up with {ends:?}; status {:?}\n{}",
        *projector.status().borrow(),
        broker.log_tail()
    );
    projector.stop().expect("projector stops cleanly");

    // The run exercised what the issue asks for: holds, expiries, transfers, returns.
    let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (_, hold) in live
        .scan::<Hold>(cf::HOLDS, b"", None, usize::MAX)
        .expect("holds")
    {
        *statuses.entry(hold.status.name()).or_default() += 1;
    }
    for status in [
        HoldStatus::Held,
        HoldStatus::Expired,
        HoldStatus::Collected,
        HoldStatus::Rejected,
    ] {
        assert!(
            statuses.get(status.name()).copied().unwrap_or(0) > 0,
            "{status:?} in {statuses:?}"
        );
    }
    let mut causes: BTreeMap<String, usize> = BTreeMap::new();
    for (_, entry) in live
        .scan::<HistoryEntry>(cf::HISTORY, b"", None, usize::MAX)
        .expect("history")
    {
        *causes.entry(entry.cause.into_owned()).or_default() += 1;
    }
    for cause in [
        "transfer_shipped",
        "transfer_received",
        "returned",
        "hold_expired",
        "hold_requested",
    ] {
        assert!(
            causes.get(cause).copied().unwrap_or(0) > 0,
            "{cause} in {causes:?}"
        );
    }

    // A rebuild from offset 0 of the log is byte-for-byte the live store.
    let rebuilt_dir = tempfile::tempdir().expect("tempdir");
    let report = rebuild(
        RebuildSource::Kafka {
            brokers: &broker.brokers,
            settings: &broker.settings,
        },
        rebuilt_dir.path(),
        StoreContents::Full,
        &broker.settings.topics.events,
        4,
        &RebuildLimit::default(),
        &mut |_| {},
    )
    .expect("rebuild from the log");
    assert_eq!(report.positions, ends);
    let rebuilt = Store::open(rebuilt_dir.path(), OpenMode::ReadOnly).expect("rebuilt store");
    assert_identical(&live, &rebuilt, "rebuild from Kafka vs live");

    // So is a rebuild from the live store's archive.
    let from_archive_dir = tempfile::tempdir().expect("tempdir");
    rebuild(
        RebuildSource::Archive { store: &live },
        from_archive_dir.path(),
        StoreContents::Full,
        &broker.settings.topics.events,
        4,
        &RebuildLimit::default(),
        &mut |_| {},
    )
    .expect("rebuild from the archive");
    let from_archive = Store::open(from_archive_dir.path(), OpenMode::ReadOnly).expect("store");
    assert_identical(&live, &from_archive, "rebuild from the archive vs live");
}

/// Three lanes for four partitions: one lane folds two of them, the others
/// one each.
#[test]
fn rebuild_equals_live_on_the_embedded_broker() {
    rebuild_equals_live(BrokerKind::Embedded, 3);
}

/// The default lanes (two).
#[test]
fn rebuild_equals_live_on_tansu() {
    rebuild_equals_live(BrokerKind::Tansu, ProjectorSettings::default().fold_threads);
}

fn event(id: u128, sku: Option<&str>, location: Option<&str>, payload: Payload) -> Event {
    Event {
        event_id: Uuid::from_u128(id),
        schema_version: SCHEMA_VERSION,
        occurred_at: chrono::DateTime::from_timestamp(1_795_420_800, 0).expect("instant"),
        channel: ChannelId::new("wms").expect("id"),
        location: location.map(|l| LocationId::new(l).expect("id")),
        sku: sku.map(|s| Sku::new(s).expect("id")),
        document: Some(DocumentRef {
            kind: DocumentKind::Other,
            id: stockline_domain::DocumentId::new("doc-1").expect("id"),
        }),
        reason: None,
        payload,
    }
}

fn received(id: u128, quantity: i64, location: &str) -> Event {
    event(
        id,
        Some("SOFA"),
        Some(location),
        Payload::StockReceived {
            quantity,
            kind: ReceiptKind::Restock,
        },
    )
}

/// `fold_threads`: the projector's lanes (one, as well as the default two, is
/// a configuration operators may choose).
fn bad_records_are_dead_lettered(kind: BrokerKind, fold_threads: usize) {
    let settings = ProjectorSettings {
        fold_threads,
        ..projector_settings()
    };
    let Stack {
        broker,
        rt,
        _store_dir,
        store,
        projector,
        producer,
        publisher,
    } = Stack::start_with(kind, 2, &settings);
    let topic = broker.settings.topics.events.clone();
    let mut store_one = event(
        1,
        None,
        Some("store-1"),
        Payload::LocationDefined {
            name: "Store one".into(),
            kind: LocationKind::Store,
            groups: vec![],
            active: true,
        },
    );
    store_one.channel = ChannelId::new("admin").expect("id");
    rt.block_on(publisher.publish(&store_one))
        .expect("published");

    // Everything below goes to SOFA's partition, good and bad interleaved.
    let partition = partition_for_key(b"SOFA", 2);
    let raw = |payload: Vec<u8>| {
        OutgoingRecord::to_partition(
            topic.as_str(),
            i32::try_from(partition).expect("small"),
            Some(b"SOFA".to_vec()),
            payload,
            stockline_engine::now_ms(),
        )
    };
    let mut newer_format = encode_event(&received(10, 1, "store-1")).expect("encodes");
    newer_format[1] = 9;
    let mut newer_schema = received(11, 1, "store-1");
    newer_schema.schema_version = SCHEMA_VERSION + 1;
    let records = vec![
        raw(encode_event(&received(2, 5, "store-1")).expect("encodes")),
        raw(b"\x00\xffnot an event at all".to_vec()),
        raw(encode_event(&received(3, 7, "store-1")).expect("encodes")),
        raw(newer_format),
        raw(encode_event(&newer_schema).expect("encodes")),
        raw(encode_event(&received(4, -3, "store-1")).expect("encodes")),
        raw(encode_event(&received(5, 2, "the-moon")).expect("encodes")),
        raw(encode_event(&received(6, 11, "store-1")).expect("encodes")),
    ];
    let positions: Vec<i64> = rt
        .block_on(producer.send_all(records))
        .into_iter()
        .map(|r| r.expect("produced").offset)
        .collect();
    let ends = broker.event_ends();
    assert!(
        rt.block_on(projector.wait_for(&ends, Duration::from_secs(30))),
        "caught up"
    );

    // Every good record applied: 5 + 7 + 11.
    let key = Key::new().id("SOFA").last_id("store-1").build();
    let quantities: Quantities = store.get(cf::STOCK, &key).expect("read").expect("row");
    assert_eq!(quantities.on_hand, 23);

    // Every bad one is recorded with its reason and origin...
    let dead: Vec<DeadLetter> = store
        .scan::<DeadLetter>(cf::DEAD_LETTERS, b"", None, 100)
        .expect("dead letters")
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let codes: Vec<(&str, i64)> = dead
        .iter()
        .map(|d| {
            (
                d.reason_code.as_str(),
                i64::try_from(d.offset).expect("offset"),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("bad_magic", positions[1]),
            ("unsupported_format_version", positions[3]),
            ("unsupported_schema_version", positions[4]),
            ("out_of_range", positions[5]),
            ("unknown_location", positions[6]),
        ]
    );
    assert!(
        dead.iter()
            .all(|d| d.topic == topic && d.partition == partition)
    );

    // ...and published to the dead-letter topic, with the reason in headers, by
    // the outbox publisher (which `stockline run` runs after every batch).
    let outbox_published = rt
        .block_on(stockline_engine::outbox::publish_outbox(
            &store,
            &producer,
            &broker.settings.topics,
            2,
        ))
        .expect("outbox published");
    assert_eq!(outbox_published, 5);
    let mut published = Vec::new();
    assert!(
        eventually(Duration::from_secs(30), || {
            published = read_all(
                &broker.brokers,
                &broker.settings,
                &broker.settings.topics.dead_letters,
                100,
                5_000,
            )
            .expect("read dead letters");
            published.len() >= 5
        }),
        "5 dead letters published, got {}",
        published.len()
    );
    let mut published_codes: Vec<(String, String)> = published
        .iter()
        .map(|r| {
            let header =
                |name| String::from_utf8_lossy(r.header(name).unwrap_or_default()).into_owned();
            (
                header("stockline.reason_code"),
                header("stockline.origin_offset"),
            )
        })
        .collect();
    published_codes.sort();
    let mut expected: Vec<(String, String)> = codes
        .iter()
        .map(|(code, offset)| ((*code).to_owned(), offset.to_string()))
        .collect();
    expected.sort();
    assert_eq!(published_codes, expected);
    let bad_magic = published
        .iter()
        .find(|r| r.header("stockline.reason_code") == Some(b"bad_magic".as_slice()))
        .expect("bad_magic dead letter");
    assert_eq!(
        bad_magic.payload.as_deref(),
        Some(b"\x00\xffnot an event at all".as_slice())
    );
    projector.stop().expect("stops");
}

#[test]
fn bad_records_are_dead_lettered_on_the_embedded_broker() {
    bad_records_are_dead_lettered(BrokerKind::Embedded, 1);
}

#[test]
fn bad_records_are_dead_lettered_on_tansu() {
    bad_records_are_dead_lettered(BrokerKind::Tansu, ProjectorSettings::default().fold_threads);
}

/// The embedded broker forgets everything when its process stops. Started on an
/// existing store without its log, the projector refuses with the fix; restored
/// from the store's archive, it resumes exactly where it was.
#[test]
fn the_embedded_broker_is_restored_from_the_archive() {
    let rt = runtime();
    let first = TestBroker::start(BrokerKind::Embedded, 2);
    let settings = first.settings.clone();
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path(), OpenMode::ReadWrite).expect("store");
    let traffic = valid_traffic(5, 1_500);
    let (half, rest) = traffic.split_at(traffic.len() / 2);
    {
        let projector = spawn_projector(
            &first.brokers,
            &settings,
            &projector_settings(),
            store.clone(),
        )
        .expect("projector");
        let producer = {
            let _guard = rt.enter();
            RecordProducer::new(&first.brokers, &settings).expect("producer")
        };
        let publisher = EventPublisher::new(producer.clone(), &settings.topics.events, 2);
        rt.block_on(produce_events(&producer, &publisher, half));
        let ends = first.event_ends();
        assert!(rt.block_on(projector.wait_for(&ends, Duration::from_secs(30))));
        projector.stop().expect("stops");
    }
    let before = store.positions(&settings.topics.events).expect("positions");
    drop(first);

    // A new, empty embedded broker: the store's positions are beyond its log.
    let second = Brokers::Embedded(EmbeddedBroker::start().expect("broker"));
    rt.block_on(stockline_kafka::ensure_topics(
        &second,
        &settings,
        &stockline_kafka::TopicSpec::stockline_topics(&settings),
    ))
    .expect("topics");
    let refusing = spawn_projector(&second, &settings, &projector_settings(), store.clone())
        .expect("projector starts");
    assert!(
        eventually(Duration::from_secs(30), || refusing.is_finished()),
        "the projector stops by itself"
    );
    let refused = refusing.stop();
    match refused {
        Err(EngineError::Operator(message)) => {
            assert!(message.contains("beyond the high watermark"), "{message}");
            assert!(message.contains("stockline rebuild"), "{message}");
        }
        other => panic!("expected a refusal with instructions, got {other:?}"),
    }

    // Restored from the archive, the broker has the same offsets again.
    let producer = {
        let _guard = rt.enter();
        RecordProducer::new(&second, &settings).expect("producer")
    };
    let restored = rt
        .block_on(restore_embedded_log(
            &store,
            &producer,
            &settings.topics.events,
            2,
        ))
        .expect("restored");
    assert_eq!(restored, before.values().sum::<u64>());
    let projector = spawn_projector(&second, &settings, &projector_settings(), store.clone())
        .expect("projector");
    let publisher = EventPublisher::new(producer.clone(), &settings.topics.events, 2);
    rt.block_on(produce_events(&producer, &publisher, rest));
    let ends: stockline_engine::Positions =
        stockline_kafka::topic_watermarks(&second, &settings, &settings.topics.events)
            .expect("watermarks")
            .into_iter()
            .map(|w| {
                (
                    u32::try_from(w.partition).expect("p"),
                    u64::try_from(w.high_watermark).expect("o"),
                )
            })
            .collect();
    assert!(rt.block_on(projector.wait_for(&ends, Duration::from_secs(30))));
    projector.stop().expect("stops");
    let after = store.positions(&settings.topics.events).expect("positions");
    assert!(
        after.iter().all(|(p, next)| *next > before[p]),
        "{before:?} -> {after:?}"
    );

    // The whole history is still one log: a rebuild from the archive equals live.
    let rebuilt_dir = tempfile::tempdir().expect("tempdir");
    rebuild(
        RebuildSource::Archive { store: &store },
        rebuilt_dir.path(),
        StoreContents::Full,
        &settings.topics.events,
        2,
        &RebuildLimit::default(),
        &mut |_| {},
    )
    .expect("rebuild");
    let rebuilt = Store::open(rebuilt_dir.path(), OpenMode::ReadOnly).expect("store");
    assert_identical(
        &store,
        &rebuilt,
        "rebuild after an embedded restart vs live",
    );
}

/// Waitlist notifications decided by the fold reach the notifications topic with
/// a deterministic id; a rebuilt store never publishes them again.
#[test]
fn waitlist_notifications_are_published_once_and_never_by_a_rebuild() {
    let stack = Stack::start(BrokerKind::Embedded, 2);
    let Stack {
        broker,
        rt,
        store,
        producer,
        publisher,
        ..
    } = &stack;
    let topic = broker.settings.topics.events.clone();
    let mut store_one = event(
        1,
        None,
        Some("store-1"),
        Payload::LocationDefined {
            name: "Store one".into(),
            kind: LocationKind::Store,
            groups: vec![],
            active: true,
        },
    );
    store_one.channel = ChannelId::new("admin").expect("id");
    let join = event(
        2,
        Some("SOFA"),
        Some("store-1"),
        Payload::WaitlistJoined {
            customer_ref: stockline_domain::CustomerRef::new("jane").expect("id"),
            quantity: 2,
            group: None,
        },
    );
    for event in [
        store_one,
        join,
        received(3, 1, "store-1"),
        received(4, 5, "store-1"),
    ] {
        rt.block_on(publisher.publish(&event)).expect("published");
    }
    assert!(stack.caught_up(Duration::from_secs(30)));
    let topics = broker.settings.topics.clone();
    let published = rt
        .block_on(stockline_engine::outbox::publish_outbox(
            store, producer, &topics, 2,
        ))
        .expect("outbox");
    assert_eq!(
        published, 1,
        "one notification: the second receipt covers the wish"
    );
    // Publishing again finds nothing new (the cursor moved).
    let again = rt
        .block_on(stockline_engine::outbox::publish_outbox(
            store, producer, &topics, 2,
        ))
        .expect("outbox");
    assert_eq!(again, 0);
    let records = read_all(
        &broker.brokers,
        &broker.settings,
        &topics.notifications,
        10,
        5_000,
    )
    .expect("notifications read");
    assert_eq!(records.len(), 1);
    let body: serde_json::Value =
        serde_json::from_slice(records[0].payload.as_deref().expect("payload")).expect("JSON");
    assert_eq!(body["customer_ref"], "jane");
    assert_eq!(body["sku"], "SOFA");
    assert_eq!(body["available"], 6);
    let id = String::from_utf8(
        records[0]
            .header("stockline.notification_id")
            .expect("id header")
            .to_vec(),
    )
    .expect("text");
    assert_eq!(id, body["notification_id"].as_str().expect("id in body"));

    // A rebuild decides the same notification (same id) but does not publish it.
    let rebuilt_dir = tempfile::tempdir().expect("tempdir");
    rebuild(
        RebuildSource::Archive { store },
        rebuilt_dir.path(),
        StoreContents::Full,
        &topic,
        2,
        &RebuildLimit::default(),
        &mut |_| {},
    )
    .expect("rebuild");
    let rebuilt = Store::open(rebuilt_dir.path(), OpenMode::ReadWrite).expect("store");
    let republished = rt
        .block_on(stockline_engine::outbox::publish_outbox(
            &rebuilt, producer, &topics, 2,
        ))
        .expect("outbox");
    assert_eq!(republished, 0, "a rebuild never publishes the past");
    let outbox = rebuilt
        .scan::<stockline_store::rows::OutboxEntry>(cf::OUTBOX, b"", None, 10)
        .expect("outbox rows");
    assert!(
        outbox.iter().any(|(_, entry)| matches!(entry,
            stockline_store::rows::OutboxEntry::Notification(n) if n.notification_id.to_string() == id)),
        "the rebuild decided the same notification id"
    );
}
