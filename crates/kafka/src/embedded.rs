//! The embedded broker: librdkafka's in-process mock cluster.
//!
//! **It is a window, not a log.** librdkafka's mock broker keeps at most
//! 5 MiB of record batches (or 100,000 batches) per partition and silently
//! drops the oldest beyond that (hard-coded in `rdkafka_mock.c`). Anything that
//! needs the whole history (rebuild from offset 0, replay, restarting the
//! embedded mode) must keep that history itself; reading from an offset that
//! fell out of the window is reported by the consumer as
//! [`crate::consumer::PositionProblem::BelowLogStart`], never skipped.
//!
//! The mock does not implement the admin API's CreateTopics (the request hangs
//! until it times out): create topics with [`EmbeddedBroker::create_topic`], or
//! through [`crate::admin::ensure_topics`], which does so for you.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use thiserror::Error;

/// Bound on create-topic requests queued for the mock cluster's owner thread.
const COMMAND_QUEUE_CAPACITY: usize = 16;

/// A failure of the embedded broker.
#[derive(Debug, Error)]
pub enum EmbeddedError {
    /// librdkafka could not create the mock cluster.
    #[error("cannot start the embedded Kafka broker: {0}")]
    Start(String),
    /// The mock cluster refused to create a topic.
    #[error("embedded broker cannot create topic `{topic}`: {source}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    /// A topic already exists (the caller decides whether that is fine).
    #[error("topic `{0}` already exists on the embedded broker")]
    TopicExists(String),
    /// A partition count or name librdkafka cannot take.
    #[error("invalid topic request for `{topic}`: {why}")]
    Invalid { topic: String, why: &'static str },
    /// The owner thread is gone (it only stops when the broker is dropped).
    #[error("the embedded broker has stopped")]
    Stopped,
}

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: mpsc::SyncSender<Result<(), KafkaError>>,
    },
}

struct Inner {
    bootstrap_servers: String,
    // Options so that `drop` can close the channel before joining the thread.
    commands: Option<mpsc::SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
}

/// An in-process, single-broker Kafka cluster (librdkafka's mock cluster).
///
/// Cheap to clone: clones share the same cluster, which stops when the last
/// clone is dropped. Keep one alive for as long as any client uses
/// [`Self::bootstrap_servers`].
///
/// The mock cluster handle is not `Send`, so a dedicated thread owns it and
/// serves topic creation over a bounded channel; this keeps the type `Send +
/// Sync` without any `unsafe`.
#[derive(Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap_servers", &self.inner.bootstrap_servers)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster listening on a 127.0.0.1 port.
    ///
    /// # Errors
    /// [`EmbeddedError::Start`] if librdkafka cannot create it or the owner
    /// thread cannot be spawned.
    pub fn start() -> Result<Self, EmbeddedError> {
        let (command_tx, command_rx) = mpsc::sync_channel::<Command>(COMMAND_QUEUE_CAPACITY);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<String, String>>(1);
        let thread = std::thread::Builder::new()
            .name("stockline-embedded-kafka".to_owned())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        // The receiver only disappears if `start` gave up.
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                if ready_tx.send(Ok(cluster.bootstrap_servers())).is_err() {
                    return;
                }
                // Runs until every sender (the broker handle) is dropped.
                while let Ok(command) = command_rx.recv() {
                    match command {
                        Command::CreateTopic {
                            name,
                            partitions,
                            reply,
                        } => {
                            // Replication factor 1: there is one broker.
                            let result = cluster.create_topic(&name, partitions, 1);
                            let _ = reply.send(result);
                        }
                    }
                }
                drop(cluster);
            })
            .map_err(|e| EmbeddedError::Start(format!("cannot spawn owner thread: {e}")))?;

        let bootstrap_servers = match ready_rx.recv() {
            Ok(Ok(servers)) => servers,
            Ok(Err(message)) => {
                let _ = thread.join();
                return Err(EmbeddedError::Start(message));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(EmbeddedError::Start(
                    "owner thread stopped during start".to_owned(),
                ));
            }
        };
        tracing::info!(%bootstrap_servers, "embedded Kafka broker (librdkafka mock cluster) started");
        Ok(Self {
            inner: Arc::new(Inner {
                bootstrap_servers,
                commands: Some(command_tx),
                thread: Some(thread),
            }),
        })
    }

    /// The `bootstrap.servers` value of the mock cluster (`127.0.0.1:PORT`).
    #[must_use]
    pub fn bootstrap_servers(&self) -> &str {
        &self.inner.bootstrap_servers
    }

    /// Creates a topic with `partitions` partitions.
    ///
    /// # Errors
    /// [`EmbeddedError::TopicExists`] if it exists already,
    /// [`EmbeddedError::CreateTopic`] for any other refusal.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), EmbeddedError> {
        let partitions_i32 = i32::try_from(partitions)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| EmbeddedError::Invalid {
                topic: name.to_owned(),
                why: "partition count must be between 1 and i32::MAX",
            })?;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.inner
            .commands
            .as_ref()
            .ok_or(EmbeddedError::Stopped)?
            .send(Command::CreateTopic {
                name: name.to_owned(),
                partitions: partitions_i32,
                reply: reply_tx,
            })
            .map_err(|_| EmbeddedError::Stopped)?;
        match reply_rx.recv().map_err(|_| EmbeddedError::Stopped)? {
            Ok(()) => Ok(()),
            Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => {
                Err(EmbeddedError::TopicExists(name.to_owned()))
            }
            Err(source) => Err(EmbeddedError::CreateTopic {
                topic: name.to_owned(),
                source,
            }),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the owner thread's loop, which destroys the
        // mock cluster; joining makes the port free once drop returns.
        drop(self.commands.take());
        if let Some(handle) = self.thread.take() {
            let _ = handle.join();
        }
    }
}
