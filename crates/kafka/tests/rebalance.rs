//! A second group member takes partitions away from the first: the first
//! sees them revoked, eager and cooperative protocols alike, on both brokers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, consume_n};
use stockline_kafka::{
    AssignmentChange, FromBeginning, KafkaSettings, OutgoingRecord, PartitionConsumer, unique_name,
};

on_both_brokers!(eager_revoke_is_reported, cooperative_revoke_is_reported);

fn eager_revoke_is_reported(env: &Env) {
    revoke_scenario(env, "range");
}

fn cooperative_revoke_is_reported(env: &Env) {
    revoke_scenario(env, "cooperative-sticky");
}

fn revoke_scenario(env: &Env, strategy: &str) {
    let partitions = 4;
    let topic = env.topic(partitions);
    let producer = env.producer();
    let records = (0..40_i64)
        .map(|i| {
            OutgoingRecord::keyed(
                topic.as_str(),
                format!("k{i}"),
                partitions,
                b"v".to_vec(),
                1_750_000_000_000 + i,
            )
        })
        .collect();
    env.produce(&producer, records);

    let mut settings = env.settings.clone();
    settings.properties.insert(
        "partition.assignment.strategy".to_owned(),
        strategy.to_owned(),
    );
    // Quick group joins keep the test short.
    settings
        .properties
        .insert("session.timeout.ms".to_owned(), "6000".to_owned());
    settings
        .properties
        .insert("heartbeat.interval.ms".to_owned(), "500".to_owned());
    let group = unique_name("g");
    let subscribe = |settings: &KafkaSettings| {
        PartitionConsumer::subscribe(
            &env.brokers,
            settings,
            &group,
            &[topic.as_str()],
            Arc::new(FromBeginning),
        )
        .expect("consumer")
    };

    let started = Instant::now();
    let mut first = subscribe(&settings);
    let (records, changes) = consume_n(&mut first, 40, 30_000);
    assert_eq!(
        records.len(),
        40,
        "first member reads everything: {changes:?}"
    );
    eprintln!(
        "{:?} {strategy}: first member ready after {:?}",
        env.kind,
        started.elapsed()
    );

    // Both members are polled in turn (rebalance callbacks run inside
    // `poll`) until the group settles: disjoint assignments covering every
    // partition, after the first member saw a revoke.
    let mut second = subscribe(&settings);
    let mut first_changes = Vec::new();
    let mut second_changes = Vec::new();
    let all: Vec<(String, i32)> = (0..4).map(|p| (topic.clone(), p)).collect();
    let deadline = Instant::now() + Duration::from_secs(45);
    let (first_assignment, second_assignment) = loop {
        first_changes.extend(first.poll_batch(1_000, 50).expect("first poll").changes);
        second_changes.extend(second.poll_batch(1_000, 50).expect("second poll").changes);
        let a = first.assignment().expect("first assignment");
        let b = second.assignment().expect("second assignment");
        let revoked = first_changes
            .iter()
            .any(|c| matches!(c, AssignmentChange::Revoked { .. }));
        let disjoint = a.iter().all(|p| !b.contains(p));
        let covered = all.iter().all(|p| a.contains(p) || b.contains(p));
        if revoked && disjoint && covered && !a.is_empty() && !b.is_empty() {
            break (a, b);
        }
        assert!(
            Instant::now() < deadline,
            "group did not settle: first {a:?} {first_changes:?}, second {b:?} {second_changes:?}"
        );
    };
    eprintln!(
        "{:?} {strategy}: settled after {:?}; first saw {first_changes:?}, owns \
         {first_assignment:?}; second owns {second_assignment:?}",
        env.kind,
        started.elapsed(),
    );
    let second_assigned: Vec<_> = second_changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Assigned(parts) => Some(parts.clone()),
            _ => None,
        })
        .flatten()
        .filter(|p| second_assignment.contains(&(p.topic.clone(), p.partition)))
        .collect();

    assert!(!second_assigned.is_empty(), "second member got partitions");
    let revoked: Vec<(String, i32)> = first_changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Revoked { partitions, lost } => {
                assert!(!lost, "a clean revoke, not a lost assignment");
                Some(partitions.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!revoked.is_empty(), "first member saw a revoke");
    for moved in &second_assigned {
        assert!(
            revoked.contains(&(moved.topic.clone(), moved.partition)),
            "partition {} moved without being revoked from the first member",
            moved.partition
        );
        assert!(
            !first_assignment.contains(&(moved.topic.clone(), moved.partition)),
            "partition {} owned twice",
            moved.partition
        );
    }
}
