//! Publishing what the projector decided, once it is durable: dead letters and
//! waitlist notifications.
//!
//! The projector writes outbox rows in the same `WriteBatch` as the records that
//! caused them; this publisher reads them after the write and produces them, then
//! advances a per-partition cursor. A crash between producing and moving the
//! cursor publishes a row again (at least once); every published record carries a
//! deterministic id (the origin position, the notification id) so consumers can
//! deduplicate. A rebuilt or replayed store starts with its cursor at the end, so
//! it never publishes the past again.

use std::sync::Arc;
use std::time::Duration;

use stockline_kafka::{OutgoingRecord, RecordProducer, TopicNames, partition_for_key};
use stockline_store::keys::Key;
use stockline_store::rows::OutboxEntry;
use stockline_store::{Store, cf};
use tokio::sync::Notify;

use crate::error::EngineError;

/// Most outbox rows published per partition per round.
pub const OUTBOX_BATCH_MAX: usize = 1_000;

fn cursor_key(partition: u32) -> String {
    format!("outbox_cursor/{partition}")
}

/// Moves every partition's cursor past the last outbox row: nothing written so
/// far will be published (rebuilt and replayed stores).
pub fn mark_outbox_published(store: &Store, partitions: u32) -> Result<(), EngineError> {
    for partition in 0..partitions {
        let prefix = Key::new().u32(partition).build();
        let mut last: Option<Vec<u8>> = None;
        let mut start: Option<Vec<u8>> = None;
        loop {
            let rows = store.scan_raw(cf::OUTBOX, &prefix, start.as_deref(), 10_000)?;
            let Some((key, _)) = rows.last() else { break };
            let mut next = key.clone();
            next.push(0);
            last = Some(key.clone());
            start = Some(next);
            if rows.len() < 10_000 {
                break;
            }
        }
        if let Some(last) = last {
            store.meta_put(&cursor_key(partition), &last)?;
        }
    }
    Ok(())
}

/// Publishes outbox rows of every partition until the outbox is empty. Returns
/// how many were published.
pub async fn publish_outbox(
    store: &Store,
    producer: &RecordProducer,
    topics: &TopicNames,
    partitions: u32,
) -> Result<u64, EngineError> {
    let mut published = 0u64;
    for partition in 0..partitions {
        loop {
            let prefix = Key::new().u32(partition).build();
            let cursor: Option<Vec<u8>> = store.meta_get(&cursor_key(partition))?;
            let start = cursor.map(|mut key| {
                key.push(0);
                key
            });
            let rows: Vec<(Vec<u8>, OutboxEntry)> =
                store.scan(cf::OUTBOX, &prefix, start.as_deref(), OUTBOX_BATCH_MAX)?;
            let Some((last_key, _)) = rows.last() else {
                break;
            };
            let last_key = last_key.clone();
            let mut deliveries = Vec::with_capacity(rows.len());
            for (_, entry) in &rows {
                deliveries.push(
                    producer
                        .enqueue(outbox_record(entry, topics, partitions))
                        .await?,
                );
            }
            for delivery in deliveries {
                delivery.await?;
            }
            published += rows.len() as u64;
            store.meta_put(&cursor_key(partition), &last_key)?;
            metrics::counter!("stockline_outbox_published_total").increment(rows.len() as u64);
            if rows.len() < OUTBOX_BATCH_MAX {
                break;
            }
        }
    }
    Ok(published)
}

fn outbox_record(entry: &OutboxEntry, topics: &TopicNames, partitions: u32) -> OutgoingRecord {
    match entry {
        OutboxEntry::DeadLetter {
            dead_letter,
            key,
            payload,
        } => OutgoingRecord::to_partition(
            topics.dead_letters.as_str(),
            i32::try_from(dead_letter.partition).unwrap_or(0),
            key.clone(),
            payload.clone().unwrap_or_default(),
            dead_letter.timestamp_ms.max(1),
        )
        .with_header("stockline.reason_code", dead_letter.reason_code.as_bytes())
        .with_header("stockline.reason", dead_letter.reason.as_bytes())
        .with_header("stockline.origin_topic", dead_letter.topic.as_bytes())
        .with_header(
            "stockline.origin_partition",
            dead_letter.partition.to_string().as_bytes(),
        )
        .with_header(
            "stockline.origin_offset",
            dead_letter.offset.to_string().as_bytes(),
        ),
        OutboxEntry::Notification(notification) => {
            let payload = serde_json::to_vec(notification)
                .unwrap_or_else(|e| unreachable!("notifications serialize: {e}"));
            let key = notification.customer_ref.as_str().as_bytes().to_vec();
            let partition = partition_for_key(&key, partitions);
            OutgoingRecord::to_partition(
                topics.notifications.as_str(),
                i32::try_from(partition).unwrap_or(0),
                Some(key),
                payload,
                notification.log_time.millis().max(1),
            )
            .with_header(
                "stockline.notification_id",
                notification.notification_id.to_string().as_bytes(),
            )
        }
    }
}

/// Publishes the outbox after every projector batch (and every second, to retry
/// after a broker hiccup) until `stop` is notified.
pub async fn run_outbox_publisher(
    store: Store,
    producer: RecordProducer,
    topics: TopicNames,
    partitions: u32,
    flushed: Arc<Notify>,
    stop: Arc<Notify>,
) {
    loop {
        tokio::select! {
            () = flushed.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.notified() => return,
        }
        if let Err(error) = publish_outbox(&store, &producer, &topics, partitions).await {
            tracing::warn!(%error, "outbox publishing failed; retrying");
        }
    }
}
