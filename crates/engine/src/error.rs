//! Engine errors, classified by what can be done about them.

use stockline_kafka::{AdminError, ConsumeError, EmbeddedError, ProduceError};
use stockline_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("embedded broker: {0}")]
    Embedded(#[from] EmbeddedError),
    /// A situation a person must resolve; the message says how.
    #[error("{0}")]
    Operator(String),
    /// A worker thread died: a bug.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event is invalid: the caller's fault, nothing was written.
    #[error("invalid event: {0}")]
    Invalid(#[from] stockline_domain::InvalidEvent),
    /// The event cannot be routed (a SKU event without a SKU).
    #[error("event kind {kind} needs a `sku` to be routed")]
    Unroutable { kind: &'static str },
    /// Encoding failed: a bug.
    #[error(transparent)]
    Encode(#[from] stockline_wire::EncodeError),
    /// Kafka refused or timed out; `kind()` says whether to retry.
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

impl PublishError {
    /// Whether the caller sent something wrong (4xx), as opposed to a failure of
    /// the system (5xx / retry).
    pub fn is_bad_input(&self) -> bool {
        match self {
            PublishError::Invalid(_) | PublishError::Unroutable { .. } => true,
            PublishError::Produce(e) => e.kind() == stockline_kafka::ErrorKind::BadInput,
            PublishError::Encode(_) => false,
        }
    }
}
