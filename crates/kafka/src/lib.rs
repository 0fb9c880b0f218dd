//! Stockline's only door to Kafka, through rdkafka (librdkafka).
//!
//! This crate moves bytes, keys, partitions, offsets, timestamps and headers;
//! it knows nothing of Stockline's events.
//!
//! - [`partitioner`]: Kafka's Java default partitioner, so every component
//!   computes a key's partition without asking a broker.
//! - [`config::KafkaSettings`]: brokers (or embedded), pass-through librdkafka
//!   properties, topics, partitions, bounds.
//! - [`brokers::Brokers`]: the embedded mock cluster ([`embedded`]) or an
//!   external cluster; [`admin::ensure_topics`] creates topics on either.
//! - [`producer::RecordProducer`]: idempotent, explicit partition and
//!   timestamp, bounded in-flight records, classified errors.
//! - [`consumer::PartitionConsumer`]: group consumer whose start positions
//!   come from the caller's store; [`reader::RangeReader`] reads fixed
//!   ranges (rebuilds, replays).
//! - [`tansu`]: a real Kafka-API broker as a child process, for tests and
//!   benchmarks.

pub mod admin;
pub mod brokers;
pub mod config;
pub mod consumer;
pub mod embedded;
pub mod error;
pub mod partitioner;
pub mod producer;
pub mod reader;
pub mod record;
pub mod tansu;

pub use admin::{AdminError, TopicSpec, ensure_topics};
pub use brokers::Brokers;
pub use config::{ConfigError, KafkaSettings, TopicNames};
pub use consumer::{
    AssignedPartition, AssignmentChange, BorrowedRecord, ConsumeError, ConsumedBatch,
    FromBeginning, PartitionConsumer, PartitionWatermarks, PolledBatch, PositionProblem,
    StartPositions,
};
pub use embedded::{EmbeddedBroker, EmbeddedError};
pub use error::ErrorKind;
pub use partitioner::partition_for_key;
pub use producer::{PendingDelivery, ProduceError, ProducerStats, RecordProducer};
pub use reader::{PartitionRange, RangeReader, read_all, topic_watermarks};
pub use record::{ConsumedRecord, OutgoingRecord, RecordHeader, RecordPosition, TimestampKind};
pub use tansu::{TANSU_FETCH_WAIT_MAX_MS, TansuBroker, TansuError, unique_name};
