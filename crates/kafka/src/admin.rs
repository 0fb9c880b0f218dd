//! Topic creation and verification, for the embedded broker and real
//! clusters alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

use crate::brokers::Brokers;
use crate::config::{ConfigError, KafkaSettings, Reserved};
use crate::embedded::EmbeddedError;
use crate::error::{ErrorKind, classify, classify_code};

/// Pause between two metadata reads while waiting for a new topic to appear.
const METADATA_RETRY_PAUSE_MS: u64 = 100;

/// A topic Stockline needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    /// Ignored by the embedded broker (one broker).
    pub replication_factor: u16,
    /// Topic configuration entries for CreateTopics (`retention.ms`, ...).
    /// Ignored by the embedded broker.
    pub config: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with the given partitions, replication factor 1 and no
    /// configuration entries.
    #[must_use]
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: 1,
            config: BTreeMap::new(),
        }
    }

    /// The events, dead-letter and notification topics of `settings`, each
    /// with `settings.partitions` partitions and `settings.replication_factor`.
    #[must_use]
    pub fn stockline_topics(settings: &KafkaSettings) -> Vec<Self> {
        [
            &settings.topics.events,
            &settings.topics.dead_letters,
            &settings.topics.notifications,
        ]
        .into_iter()
        .map(|name| Self {
            name: name.clone(),
            partitions: settings.partitions,
            replication_factor: settings.replication_factor,
            config: BTreeMap::new(),
        })
        .collect()
    }
}

/// A failure to create or verify topics.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The admin client could not be created.
    #[error("cannot create the Kafka admin client: {0}")]
    Client(#[source] KafkaError),
    /// The CreateTopics request as a whole failed (timeout, transport).
    #[error("CreateTopics request failed: {0}")]
    Request(#[source] KafkaError),
    /// The broker refused to create one topic.
    #[error("cannot create topic `{topic}`: {code:?} ({code})")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    /// A metadata request failed.
    #[error("cannot read metadata of topic `{topic}`: {source}")]
    Metadata {
        topic: String,
        #[source]
        source: KafkaError,
    },
    /// The topic exists with another partition count: keys would land on
    /// other partitions than every component computes.
    #[error(
        "topic `{topic}` has {actual} partitions but Stockline is configured for {expected}; \
         partitions of an existing topic cannot be changed safely (keys would move)"
    )]
    PartitionMismatch {
        topic: String,
        expected: u32,
        actual: u32,
    },
    /// The topic did not show up in metadata in time after creation.
    #[error("topic `{topic}` is not visible in the cluster metadata after {waited_ms} ms")]
    NotVisible { topic: String, waited_ms: u64 },
    /// A bug: the verification task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
    /// A partition count or replication factor out of the protocol's range.
    #[error("invalid topic spec `{topic}`: {why}")]
    InvalidSpec { topic: String, why: &'static str },
}

impl AdminError {
    /// How a caller should react.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::InvalidSpec { .. } => ErrorKind::BadInput,
            Self::Embedded(_)
            | Self::Client(_)
            | Self::PartitionMismatch { .. }
            | Self::Internal(_) => ErrorKind::Fatal,
            Self::Request(e) | Self::Metadata { source: e, .. } => classify(e),
            Self::CreateTopic { code, .. } => classify_code(*code),
            Self::NotVisible { .. } => ErrorKind::Retriable,
        }
    }

    /// Whether retrying the same call may succeed.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        self.kind() == ErrorKind::Retriable
    }
}

fn admin_client(
    brokers: &Brokers,
    settings: &KafkaSettings,
) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    let config = settings.client_config(
        brokers.bootstrap_servers(),
        "admin",
        &[],
        &[Reserved {
            key: "allow.auto.create.topics",
            value: "false",
            why: "a topic auto-created with the broker's default partition count would place \
                  keys on other partitions than Stockline computes",
        }],
    )?;
    config.create().map_err(AdminError::Client)
}

/// Makes sure every topic exists with its partition count.
///
/// On an external cluster: one CreateTopics request (a topic that already
/// exists counts as success), then metadata is read until every topic is
/// visible, bounded by `settings.request_timeout_ms`. On the embedded broker:
/// the mock cluster's own topic creation (its CreateTopics is not
/// implemented). Either way an existing topic whose partition count differs
/// from the spec is an error ([`AdminError::PartitionMismatch`]).
///
/// # Errors
/// See [`AdminError`]; [`AdminError::kind`] classifies them.
pub async fn ensure_topics(
    brokers: &Brokers,
    settings: &KafkaSettings,
    topics: &[TopicSpec],
) -> Result<(), AdminError> {
    for spec in topics {
        if spec.partitions == 0 || i32::try_from(spec.partitions).is_err() {
            return Err(AdminError::InvalidSpec {
                topic: spec.name.clone(),
                why: "partition count must be between 1 and i32::MAX",
            });
        }
        if spec.replication_factor == 0 {
            return Err(AdminError::InvalidSpec {
                topic: spec.name.clone(),
                why: "replication factor must be at least 1",
            });
        }
    }
    let admin = Arc::new(admin_client(brokers, settings)?);
    let request_timeout = Duration::from_millis(settings.request_timeout_ms);

    match brokers {
        Brokers::Embedded(broker) => {
            for spec in topics {
                match broker.create_topic(&spec.name, spec.partitions) {
                    Ok(()) | Err(EmbeddedError::TopicExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Brokers::External(_) => {
            create_external(&admin, topics, request_timeout).await?;
        }
    }

    let expected: Vec<(String, u32)> = topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions))
        .collect();
    let verifier = Arc::clone(&admin);
    tokio::task::spawn_blocking(move || verify_partitions(&verifier, &expected, request_timeout))
        .await
        .map_err(|e| AdminError::Internal(format!("topic verification task failed: {e}")))?
}

async fn create_external(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[TopicSpec],
    request_timeout: Duration,
) -> Result<(), AdminError> {
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|spec| {
            // Both conversions were checked by `ensure_topics`.
            let partitions = i32::try_from(spec.partitions).unwrap_or(i32::MAX);
            let mut topic = NewTopic::new(
                &spec.name,
                partitions,
                TopicReplication::Fixed(i32::from(spec.replication_factor)),
            );
            for (key, value) in &spec.config {
                topic = topic.set(key, value);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(request_timeout))
        .operation_timeout(Some(request_timeout));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(AdminError::Request)?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created Kafka topic"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "Kafka topic already exists");
            }
            Err((topic, code)) => return Err(AdminError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Number of partitions of `topic` in the cluster metadata, `None` if the
/// broker does not know the topic.
fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<u32>, AdminError> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| AdminError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if entry.error().is_some() || entry.partitions().is_empty() {
        // UNKNOWN_TOPIC_OR_PART or LEADER_NOT_AVAILABLE right after creation.
        return Ok(None);
    }
    Ok(Some(
        u32::try_from(entry.partitions().len()).unwrap_or(u32::MAX),
    ))
}

fn verify_partitions(
    admin: &AdminClient<DefaultClientContext>,
    expected: &[(String, u32)],
    timeout: Duration,
) -> Result<(), AdminError> {
    let started = Instant::now();
    for (topic, want) in expected {
        loop {
            let remaining = timeout.saturating_sub(started.elapsed());
            match partition_count(admin, topic, remaining.max(Duration::from_millis(1)))? {
                Some(actual) if actual == *want => break,
                Some(actual) => {
                    return Err(AdminError::PartitionMismatch {
                        topic: topic.clone(),
                        expected: *want,
                        actual,
                    });
                }
                None if remaining.is_zero() => {
                    return Err(AdminError::NotVisible {
                        topic: topic.clone(),
                        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(METADATA_RETRY_PAUSE_MS)),
            }
        }
    }
    Ok(())
}

/// The partition count of `topic` as the cluster reports it, `None` if the
/// topic does not exist. Blocking (one metadata request, bounded by
/// `settings.request_timeout_ms`).
///
/// # Errors
/// [`AdminError::Metadata`] when the cluster cannot be asked.
pub fn topic_partition_count(
    brokers: &Brokers,
    settings: &KafkaSettings,
    topic: &str,
) -> Result<Option<u32>, AdminError> {
    let admin = admin_client(brokers, settings)?;
    partition_count(
        &admin,
        topic,
        Duration::from_millis(settings.request_timeout_ms),
    )
}
