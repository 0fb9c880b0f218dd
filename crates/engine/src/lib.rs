//! Stockline's running pipeline, built from the pure core (`stockline-domain`), the
//! store (`stockline-store`) and Kafka (`stockline-kafka`):
//!
//! - [`publish`]: events to the events topic, validated and routed (one partition
//!   per SKU; configuration and ticks to every partition), with consistency tokens;
//! - [`projector`]: the consumer-group member folding its partitions into the store;
//! - [`ticks`]: tick records so that holds expire on quiet partitions;
//! - [`outbox`]: dead letters and notifications published once durable;
//! - [`rebuild`]: a fresh store from the log or from an archive;
//! - [`embedded`]: the embedded broker restored from the store's archive.

pub mod archive;
pub mod embedded;
pub mod error;
pub mod outbox;
pub mod projector;
pub mod publish;
pub mod rebuild;
pub mod ticks;

pub use error::{EngineError, PublishError};
pub use projector::{
    Positions, ProjectorHandle, ProjectorSettings, ProjectorStatus, spawn_projector,
    wait_for_positions,
};
pub use publish::{EventPublisher, Token, now_ms, tick_event};
pub use rebuild::{RebuildLimit, RebuildReport, RebuildSource, rebuild};
