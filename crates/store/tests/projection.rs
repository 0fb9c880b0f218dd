#![allow(clippy::cast_possible_truncation)] // Test logs are small.
//! The projection against a real RocksDB: batches cut anywhere, restarts anywhere,
//! and the store is byte-for-byte what one uninterrupted run writes.

#[path = "../../domain/tests/support/mod.rs"]
#[allow(dead_code, unreachable_pub, clippy::all)]
mod support;

use std::sync::Arc;

use stockline_domain::{Event, LogTime, Routing};
use stockline_store::{
    Applied, OpenMode, PartitionOf, Projection, RawRecord, Store, StoreContents, cf, compare,
};
use stockline_wire::codec::encode_event;
use support::{Mix, Rng, realistic_log};

const TOPIC: &str = "events";
const PARTITIONS: u32 = 4;

fn partition_of() -> PartitionOf {
    // Any deterministic function will do for the store: the projection only checks
    // that every record sits in the partition its SKU maps to.
    Arc::new(|key: &[u8]| {
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        u32::try_from(hash % u64::from(PARTITIONS)).expect("below partition count")
    })
}

/// One partition's log: (offset, timestamp, key, payload).
type PartitionLog = Vec<(u64, i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

/// Routes a generated log onto partitions as the producer would, with some
/// undecodable records mixed in.
fn partitioned_log(records: &[(Event, LogTime)], seed: u64) -> Vec<PartitionLog> {
    let route = partition_of();
    let mut rng = Rng::new(seed);
    let mut logs: Vec<PartitionLog> = vec![Vec::new(); PARTITIONS as usize];
    let push = |logs: &mut Vec<PartitionLog>, p: u32, ts: i64, key: Option<Vec<u8>>, payload| {
        let log = &mut logs[p as usize];
        let offset = log.len() as u64;
        log.push((offset, ts, key, payload));
    };
    for (event, time) in records {
        let payload = encode_event(event).expect("encodes");
        match event.routing() {
            Some(Routing::Sku(sku)) => {
                let p = route(sku.as_str().as_bytes());
                push(
                    &mut logs,
                    p,
                    time.millis(),
                    Some(sku.as_str().as_bytes().to_vec()),
                    Some(payload),
                );
            }
            _ => {
                for p in 0..PARTITIONS {
                    push(&mut logs, p, time.millis(), None, Some(payload.clone()));
                }
            }
        }
        if rng.chance(5) {
            let p = u32::try_from(rng.below(u64::from(PARTITIONS))).expect("small");
            push(
                &mut logs,
                p,
                time.millis(),
                None,
                Some(b"{not bincode".to_vec()),
            );
        }
    }
    logs
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, OpenMode::ReadWrite).expect("store opens")
}

fn all_partitions() -> Vec<u32> {
    (0..PARTITIONS).collect()
}

/// Feeds every partition's records from its stored position, round-robin, calling
/// `after_each` after every record.
fn feed(
    projection: &mut Projection,
    logs: &[PartitionLog],
    mut after_each: impl FnMut(&mut Projection) -> bool,
) -> bool {
    let mut cursors: Vec<usize> = (0..PARTITIONS)
        .map(|p| projection.next_offset(p).expect("assigned") as usize)
        .collect();
    loop {
        let mut progressed = false;
        for p in 0..PARTITIONS as usize {
            let Some((offset, ts, key, payload)) = logs[p].get(cursors[p]) else {
                continue;
            };
            let record = RawRecord {
                partition: p as u32,
                offset: *offset,
                timestamp_ms: *ts,
                key: key.as_deref(),
                payload: payload.as_deref(),
            };
            let applied = projection.apply(&record).expect("applies");
            assert_ne!(applied, Applied::Skipped, "fed from the stored position");
            cursors[p] += 1;
            progressed = true;
            if !after_each(projection) {
                return false;
            }
        }
        if !progressed {
            return true;
        }
    }
}

#[test]
fn batches_cut_anywhere_and_restarts_anywhere_write_the_same_store() {
    let generated = realistic_log(Mix::PARTITION, 7, 6_000);
    let logs = partitioned_log(&generated.records(), 7);

    // Reference: one uninterrupted run, one flush at the end.
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let reference_store = open(reference_dir.path());
    let mut reference = Projection::new(reference_store.clone(), TOPIC, partition_of());
    reference.assign(&all_partitions()).expect("assign");
    feed(&mut reference, &logs, |_| true);
    reference.flush(false).expect("flush");
    let stats = reference.stats();
    assert!(stats.dead_letters > 0, "garbage records were dead-lettered");
    assert!(stats.applied > 5_000, "{stats:?}");

    // Chopped: flushes at random points, and "crashes" (the projection is dropped
    // with unflushed work and rebuilt from the store) at other random points.
    let chopped_dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(99);
    let mut restarts = 0;
    loop {
        let store = open(chopped_dir.path());
        let mut projection = Projection::new(store, TOPIC, partition_of());
        projection.assign(&all_partitions()).expect("assign");
        let done = feed(&mut projection, &logs, |projection| {
            if rng.chance(15) {
                projection.flush(false).expect("flush");
            }
            // A crash loses whatever was not flushed.
            !rng.chance(2)
        });
        if done {
            projection.flush(false).expect("flush");
            break;
        }
        restarts += 1;
    }
    assert!(restarts >= 5, "the test exercised restarts ({restarts})");

    let chopped = open(chopped_dir.path());
    let comparison = compare(&reference_store, &chopped, 10).expect("compare");
    assert!(
        comparison.difference_count == 0,
        "{} differences, first: {}",
        comparison.difference_count,
        comparison
            .differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let compared: u64 = comparison.keys_compared.iter().map(|(_, n)| n).sum();
    assert!(compared > 10_000, "compared {compared} keys");

    // The restored fold state equals the live one.
    let mut restored = Projection::new(chopped, TOPIC, partition_of());
    restored.assign(&all_partitions()).expect("assign");
    for p in all_partitions() {
        assert!(
            restored.ledger(p) == reference.ledger(p),
            "partition {p}: restored ledger differs from the live one"
        );
        assert_eq!(restored.next_offset(p), reference.next_offset(p));
    }
}

#[test]
fn a_tampered_row_is_reported_by_compare() {
    let generated = realistic_log(Mix::PARTITION, 3, 500);
    let logs = partitioned_log(&generated.records(), 3);
    let left_dir = tempfile::tempdir().expect("tempdir");
    let right_dir = tempfile::tempdir().expect("tempdir");
    for dir in [left_dir.path(), right_dir.path()] {
        let mut projection = Projection::new(open(dir), TOPIC, partition_of());
        projection.assign(&all_partitions()).expect("assign");
        feed(&mut projection, &logs, |_| true);
        projection.flush(false).expect("flush");
    }
    let left = open(left_dir.path());
    let right = open(right_dir.path());
    assert_eq!(
        compare(&left, &right, 10)
            .expect("compare")
            .difference_count,
        0
    );
    let (key, _) = right
        .scan_raw(cf::STOCK, b"", None, 1)
        .expect("scan")
        .into_iter()
        .next()
        .expect("a stock row");
    let tampered = stockline_domain::Quantities {
        on_hand: 424_242,
        ..Default::default()
    };
    right
        .meta_put("unused", &0u8)
        .expect("meta writes are not compared");
    right
        .put(cf::STOCK, &key, &tampered)
        .expect("tamper with a row");
    let comparison = compare(&left, &right, 10).expect("compare");
    assert_eq!(comparison.difference_count, 1);
    assert_eq!(comparison.differences[0].cf, cf::STOCK);
    assert_eq!(comparison.differences[0].key, key);
}

/// A replay's store ([`StoreContents::ReadModels`]) holds every read model a
/// full store holds, byte for byte, batches cut at the same places or not, and
/// none of the rows only a projector continuing the store reads; it is marked
/// so, and refused for anything but queries.
#[test]
fn a_read_models_store_equals_a_full_one_in_every_read_model() {
    let generated = realistic_log(Mix::PARTITION, 11, 3_000);
    let logs = partitioned_log(&generated.records(), 11);
    let full_dir = tempfile::tempdir().expect("tempdir");
    let models_dir = tempfile::tempdir().expect("tempdir");
    let full = Store::create(full_dir.path(), StoreContents::Full).expect("creates");
    let models = Store::create(models_dir.path(), StoreContents::ReadModels).expect("creates");
    let mut rng = Rng::new(5);
    for (store, flush_one_in) in [(&full, 0u64), (&models, 40)] {
        let mut projection = Projection::new(store.clone(), TOPIC, partition_of());
        projection.assign(&all_partitions()).expect("assign");
        feed(&mut projection, &logs, |projection| {
            if flush_one_in > 0 && rng.chance(flush_one_in) {
                projection.flush(false).expect("flush");
            }
            true
        });
        projection.flush(false).expect("flush");
    }

    let comparison = compare(&full, &models, 10).expect("compare");
    assert_eq!(
        comparison.difference_count, 0,
        "{:?}",
        comparison.differences
    );
    let compared: Vec<&str> = comparison.keys_compared.iter().map(|(cf, _)| *cf).collect();
    for name in cf::model() {
        let full_rows = full.scan_raw(name, b"", None, usize::MAX).expect("scan");
        let model_rows = models.scan_raw(name, b"", None, usize::MAX).expect("scan");
        if StoreContents::ReadModels.holds(name) {
            assert!(compared.contains(&name), "{name} compared");
        } else {
            assert!(!full_rows.is_empty(), "the full store has {name} rows");
            assert!(
                model_rows.is_empty(),
                "the read-models store has {name} rows"
            );
            assert!(!compared.contains(&name), "{name} not compared");
        }
    }
    for name in [cf::STOCK, cf::HOLDS, cf::HISTORY, cf::PICKUPS] {
        let rows = models.scan_raw(name, b"", None, 1).expect("scan");
        assert!(!rows.is_empty(), "the read-models store has {name} rows");
    }

    drop(models);
    let reopened = Store::open(models_dir.path(), OpenMode::ReadOnly).expect("queries open it");
    assert_eq!(reopened.contents(), StoreContents::ReadModels);
    drop(reopened);
    for mode in [OpenMode::ReadWrite, OpenMode::ArchiveSource] {
        let refused = Store::open(models_dir.path(), mode).expect_err("refused");
        assert!(
            matches!(refused, stockline_store::StoreError::Incompatible { .. }),
            "{mode:?}: {refused}"
        );
    }
    assert_eq!(full.contents(), StoreContents::Full);
    let again = Store::create(full_dir.path(), StoreContents::ReadModels).expect_err("exists");
    assert!(
        again.to_string().contains("already holds a store"),
        "{again}"
    );
}
