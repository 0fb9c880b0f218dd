//! Publishing events: validation, routing (one partition per SKU, every partition
//! for configuration and ticks), encoding, and the consistency tokens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stockline_domain::{ChannelId, Event, Payload, Routing, SCHEMA_VERSION};
use stockline_kafka::{OutgoingRecord, RecordProducer, partition_for_key};
use stockline_wire::encode_event;

use crate::error::PublishError;

/// Where a published record landed: a read that waits until the projector has
/// applied it sees the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token {
    pub partition: u32,
    pub offset: u64,
}

/// Milliseconds since the Unix epoch, now: the record timestamp, hence log time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Publishes events to the events topic.
#[derive(Clone, Debug)]
pub struct EventPublisher {
    producer: RecordProducer,
    topic: Arc<str>,
    partitions: u32,
}

impl EventPublisher {
    pub fn new(producer: RecordProducer, topic: &str, partitions: u32) -> Self {
        EventPublisher {
            producer,
            topic: Arc::from(topic),
            partitions,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn producer(&self) -> &RecordProducer {
        &self.producer
    }

    /// The partition a SKU's events go to.
    pub fn partition_of_sku(&self, sku: &str) -> u32 {
        partition_for_key(sku.as_bytes(), self.partitions)
    }

    /// The records an event becomes: one on its SKU's partition, or one per
    /// partition for configuration and ticks (same bytes, same event id).
    pub fn records(
        &self,
        event: &Event,
        timestamp_ms: i64,
    ) -> Result<Vec<OutgoingRecord>, PublishError> {
        event.validate()?;
        let payload = encode_event(event)?;
        match event.routing() {
            Some(Routing::Sku(sku)) => Ok(vec![OutgoingRecord::keyed(
                Arc::clone(&self.topic),
                sku.as_str().as_bytes().to_vec(),
                self.partitions,
                payload,
                timestamp_ms,
            )]),
            Some(Routing::AllPartitions) => Ok((0..self.partitions)
                .map(|p| {
                    OutgoingRecord::to_partition(
                        Arc::clone(&self.topic),
                        i32::try_from(p).unwrap_or(i32::MAX),
                        None,
                        payload.clone(),
                        timestamp_ms,
                    )
                })
                .collect()),
            None => Err(PublishError::Unroutable {
                kind: event.payload.kind().name(),
            }),
        }
    }

    /// Publishes one event and waits for the broker's acknowledgement.
    pub async fn publish(&self, event: &Event) -> Result<Vec<Token>, PublishError> {
        let records = self.records(event, now_ms())?;
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            pending.push(self.producer.enqueue(record).await?);
        }
        let mut tokens = Vec::with_capacity(pending.len());
        for delivery in pending {
            tokens.push(to_token(delivery.await?));
        }
        Ok(tokens)
    }

    /// Publishes many events, pipelined (the producer's in-flight bound applies),
    /// in order per partition. One result per event.
    pub async fn publish_all(&self, events: &[Event]) -> Vec<Result<Vec<Token>, PublishError>> {
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let records = match self.records(event, now_ms()) {
                Ok(records) => records,
                Err(e) => {
                    pending.push(Err(e));
                    continue;
                }
            };
            let mut deliveries = Vec::with_capacity(records.len());
            let mut failed = None;
            for record in records {
                match self.producer.enqueue(record).await {
                    Ok(delivery) => deliveries.push(delivery),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            pending.push(match failed {
                Some(e) => Err(PublishError::Produce(e)),
                None => Ok(deliveries),
            });
        }
        let mut results = Vec::with_capacity(pending.len());
        for item in pending {
            results.push(match item {
                Err(e) => Err(e),
                Ok(deliveries) => {
                    let mut tokens = Vec::with_capacity(deliveries.len());
                    let mut error = None;
                    for delivery in deliveries {
                        match delivery.await {
                            Ok(position) => tokens.push(to_token(position)),
                            Err(e) => error = Some(e),
                        }
                    }
                    match error {
                        Some(e) => Err(PublishError::Produce(e)),
                        None => Ok(tokens),
                    }
                }
            });
        }
        results
    }
}

fn to_token(position: stockline_kafka::RecordPosition) -> Token {
    Token {
        partition: u32::try_from(position.partition).unwrap_or(0),
        offset: u64::try_from(position.offset).unwrap_or(0),
    }
}

/// A tick: moves log time forward on every partition so holds on quiet SKUs expire.
pub fn tick_event() -> Event {
    Event {
        event_id: uuid::Uuid::new_v4(),
        schema_version: SCHEMA_VERSION,
        occurred_at: chrono::Utc::now(),
        channel: ChannelId::new("system").unwrap_or_else(|e| unreachable!("a valid id: {e}")),
        location: None,
        sku: None,
        document: None,
        reason: None,
        payload: Payload::Tick {},
    }
}
