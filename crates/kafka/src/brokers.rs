//! Where the Kafka protocol is spoken: the embedded mock cluster or an
//! external cluster (tansu on localhost, Apache Kafka in production).

use crate::config::KafkaSettings;
use crate::embedded::{EmbeddedBroker, EmbeddedError};

/// The brokers every client of one process connects to.
///
/// Keep the value alive while clients use it: dropping the last clone of an
/// `Embedded` broker stops it.
#[derive(Debug, Clone)]
pub enum Brokers {
    /// librdkafka's in-process mock cluster (a 5 MiB-per-partition window,
    /// see [`crate::embedded`]).
    Embedded(EmbeddedBroker),
    /// A real cluster, given by its `bootstrap.servers` list.
    External(String),
}

impl Brokers {
    /// `External(brokers)` when the settings name brokers, otherwise starts
    /// an embedded broker.
    ///
    /// # Errors
    /// [`EmbeddedError`] if the embedded broker cannot start.
    pub fn from_settings(settings: &KafkaSettings) -> Result<Self, EmbeddedError> {
        match &settings.brokers {
            Some(list) => Ok(Self::External(list.clone())),
            None => Ok(Self::Embedded(EmbeddedBroker::start()?)),
        }
    }

    /// The `bootstrap.servers` value for clients.
    #[must_use]
    pub fn bootstrap_servers(&self) -> &str {
        match self {
            Self::Embedded(broker) => broker.bootstrap_servers(),
            Self::External(list) => list,
        }
    }

    /// Whether this is the embedded mock cluster.
    #[must_use]
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }
}
