//! The running pipeline of one process: broker connection (or the embedded
//! broker), topics, store, producer, projector, tick and outbox publishers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use stockline_engine::embedded::restore_embedded_log;
use stockline_engine::outbox::{publish_outbox, run_outbox_publisher};
use stockline_engine::ticks::run_tick_publisher;
use stockline_engine::{EventPublisher, Positions, ProjectorHandle, spawn_projector};
use stockline_kafka::{Brokers, RecordProducer, TopicSpec, ensure_topics};
use stockline_store::{OpenMode, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Settings;

pub struct Pipeline {
    pub settings: Settings,
    pub store: Store,
    pub publisher: EventPublisher,
    pub projector: ProjectorHandle,
    stop: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    /// Last, so that it is dropped after every client of it (fields drop in
    /// declaration order): an embedded broker going first makes the clients log
    /// "all brokers down" on the way out.
    pub brokers: Brokers,
}

impl Pipeline {
    pub async fn start(settings: Settings) -> Result<Pipeline> {
        let brokers =
            Brokers::from_settings(&settings.kafka).context("starting the embedded broker")?;
        let mut topics = TopicSpec::stockline_topics(&settings.kafka);
        // The events topic is the system of record: it must never expire.
        if let Some(events) = topics
            .iter_mut()
            .find(|t| t.name == settings.kafka.topics.events)
        {
            events
                .config
                .insert("retention.ms".to_owned(), "-1".to_owned());
        }
        ensure_topics(&brokers, &settings.kafka, &topics)
            .await
            .context("creating the topics")?;
        let store_dir = settings.store_dir();
        std::fs::create_dir_all(&store_dir)
            .with_context(|| format!("creating {}", store_dir.display()))?;
        let store = Store::open(&store_dir, OpenMode::ReadWrite)?;
        let producer = RecordProducer::new(&brokers, &settings.kafka)?;
        let topic = settings.kafka.topics.events.clone();
        let partitions = settings.kafka.partitions;
        if brokers.is_embedded() {
            let restored = restore_embedded_log(&store, &producer, &topic, partitions).await?;
            if restored > 0 {
                tracing::info!(
                    restored,
                    "embedded broker restored from the store's archive"
                );
            }
        }
        let projector = spawn_projector(
            &brokers,
            &settings.kafka,
            &settings.projector,
            store.clone(),
        )?;
        let publisher = EventPublisher::new(producer.clone(), &topic, partitions);
        let stop = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if settings.ticks.enabled {
            tasks.push(tokio::spawn(run_tick_publisher(
                publisher.clone(),
                settings.ticks.interval_ms,
                Arc::clone(&stop),
            )));
        }
        tasks.push(tokio::spawn(report_lag(
            brokers.clone(),
            settings.kafka.clone(),
            projector.status(),
        )));
        tasks.push(tokio::spawn(run_outbox_publisher(
            store.clone(),
            producer,
            settings.kafka.topics.clone(),
            partitions,
            projector.flushed(),
            Arc::clone(&stop),
        )));
        Ok(Pipeline {
            settings,
            brokers,
            store,
            publisher,
            projector,
            stop,
            tasks,
        })
    }

    /// Stops the publishers, lets the projector apply what was published (bounded
    /// by `drain_timeout`), stops it, and publishes the outbox one last time.
    pub async fn shutdown(mut self, drain_timeout: Duration) -> Result<()> {
        // notify_waiters reaches every task waiting now; a permit covers a task
        // between two waits.
        self.stop.notify_waiters();
        self.stop.notify_one();
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
        self.publisher.producer().flush(5_000).await.ok();
        let target = self.published_ends().await;
        if !self.projector.wait_for(&target, drain_timeout).await {
            tracing::warn!(?target, "projector did not catch up before shutdown");
        }
        let store = self.store.clone();
        let producer = self.publisher.producer().clone();
        let topics = self.settings.kafka.topics.clone();
        let partitions = self.settings.kafka.partitions;
        tokio::task::spawn_blocking(move || self.projector.stop())
            .await
            .context("joining the projector")??;
        if let Err(error) = publish_outbox(&store, &producer, &topics, partitions).await {
            tracing::warn!(%error, "outbox not fully published at shutdown");
        }
        producer.flush(5_000).await.ok();
        drop(producer);
        Ok(())
    }

    /// The high watermarks of the events topic now (what a drain must reach).
    async fn published_ends(&self) -> Positions {
        let brokers = self.brokers.clone();
        let settings = self.settings.kafka.clone();
        let topic = settings.topics.events.clone();
        tokio::task::spawn_blocking(move || {
            stockline_kafka::topic_watermarks(&brokers, &settings, &topic)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .map(|marks| {
            marks
                .into_iter()
                .filter_map(|w| {
                    Some((
                        u32::try_from(w.partition).ok()?,
                        u64::try_from(w.high_watermark).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
    }
}

/// Interval of the projector lag gauge's refresh.
const LAG_REFRESH_SECONDS: u64 = 5;

/// Publishes `stockline_projector_lag_records{partition}`: the records of each
/// assigned partition the projector has not applied yet (high watermark minus
/// position), refreshed every few seconds.
async fn report_lag(
    brokers: Brokers,
    settings: stockline_kafka::KafkaSettings,
    status: tokio::sync::watch::Receiver<stockline_engine::ProjectorStatus>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(LAG_REFRESH_SECONDS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let brokers = brokers.clone();
        let settings = settings.clone();
        let marks = tokio::task::spawn_blocking(move || {
            stockline_kafka::topic_watermarks(&brokers, &settings, &settings.topics.events)
        })
        .await;
        let Ok(Ok(marks)) = marks else {
            continue;
        };
        let positions = status.borrow().positions.clone();
        for mark in marks {
            let Ok(partition) = u32::try_from(mark.partition) else {
                continue;
            };
            let Some(next) = positions.get(&partition) else {
                continue;
            };
            let lag = u64::try_from(mark.high_watermark)
                .unwrap_or(0)
                .saturating_sub(*next);
            metrics::gauge!("stockline_projector_lag_records", "partition" => partition.to_string())
                .set(lag as f64);
        }
    }
}
