//! The service's shared state: the store (shared with the projector of the same
//! process), the publisher, the projector's status, configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use stockline_domain::{Config, Sku};
use stockline_engine::{EventPublisher, Positions, ProjectorStatus, Token};
use stockline_store::Store;
use tokio::sync::watch;

use crate::auth::TokenTable;
use crate::cache::{PositionSnapshot, RouteHistograms, SkuCache, SnapshotCell};
use crate::error::ApiError;
use crate::settings::HttpSettings;

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub store: Store,
    /// `None` when serving a read-only store (a replay): every write is refused by
    /// the router before a handler runs.
    pub publisher: Option<EventPublisher>,
    pub partitions: u32,
    pub status: watch::Receiver<ProjectorStatus>,
    /// Keeps a read-only store's fixed status channel open.
    _status_sender: Option<watch::Sender<ProjectorStatus>>,
    pub settings: HttpSettings,
    pub tokens: TokenTable,
    pub ack_after_applied: bool,
    pub metrics: Option<PrometheusHandle>,
    /// partition -> (projector batch count when read, configuration).
    config_cache: Mutex<BTreeMap<u32, (u64, Arc<Config>)>>,
    /// The applied positions as last rendered.
    snapshot: SnapshotCell,
    /// SKU rows by SKU, as of their partition's position.
    sku_cache: SkuCache,
    pub(crate) route_histograms: RouteHistograms,
}

/// Bytes the SKU cache holds at most (about 2 KiB per SKU of 7 locations: some
/// 15,000 SKUs).
pub const SKU_CACHE_BYTES: usize = 32 << 20;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// What the service needs from its process.
pub struct ServiceParts {
    pub store: Store,
    pub publisher: EventPublisher,
    pub status: watch::Receiver<ProjectorStatus>,
    pub settings: HttpSettings,
    /// Whether the broker is the embedded one (its log is the store's archive).
    pub embedded_broker: bool,
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(parts: ServiceParts) -> Result<AppState, String> {
        parts.settings.validate()?;
        let tokens = TokenTable::new(&parts.settings.tokens)?;
        if tokens.is_empty() {
            return Err(
                "no [http] tokens are configured: every request would be refused. Create one with \
                 `stockline token new --role admin --name ops` and add it to the configuration"
                    .to_owned(),
            );
        }
        let ack_after_applied = parts
            .settings
            .ack_after_applied
            .unwrap_or(parts.embedded_broker);
        Ok(AppState(Arc::new(Inner {
            store: parts.store,
            partitions: parts.publisher.partitions(),
            publisher: Some(parts.publisher),
            status: parts.status,
            _status_sender: None,
            settings: parts.settings,
            tokens,
            ack_after_applied,
            metrics: parts.metrics,
            config_cache: Mutex::new(BTreeMap::new()),
            snapshot: SnapshotCell::new(),
            sku_cache: SkuCache::new(SKU_CACHE_BYTES),
            route_histograms: RouteHistograms::default(),
        })))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Serves a store read-only (a replay, a copy): reads answer from it as it is,
    /// at its stored positions; writes are refused with 405 `read-only`.
    pub fn read_only(
        store: Store,
        topic: &str,
        partitions: u32,
        settings: HttpSettings,
        metrics: Option<PrometheusHandle>,
    ) -> Result<AppState, String> {
        settings.validate()?;
        let tokens = TokenTable::new(&settings.tokens)?;
        if tokens.is_empty() {
            return Err(
                "no [http] tokens are configured: every request would be refused".to_owned(),
            );
        }
        let positions = store.positions(topic).map_err(|e| e.to_string())?;
        let (sender, status) = watch::channel(ProjectorStatus {
            assignment_high_watermarks: positions.clone(),
            // Nothing writes a read-only store: every row is current.
            availability_since: positions.clone(),
            positions,
            ..ProjectorStatus::default()
        });
        Ok(AppState(Arc::new(Inner {
            store,
            publisher: None,
            partitions,
            status,
            _status_sender: Some(sender),
            settings,
            tokens,
            ack_after_applied: false,
            metrics,
            config_cache: Mutex::new(BTreeMap::new()),
            snapshot: SnapshotCell::new(),
            sku_cache: SkuCache::new(SKU_CACHE_BYTES),
            route_histograms: RouteHistograms::default(),
        })))
    }

    pub fn is_read_only(&self) -> bool {
        self.0.publisher.is_none()
    }

    pub fn publisher(&self) -> &EventPublisher {
        match &self.0.publisher {
            Some(publisher) => publisher,
            // The router answers every write to a read-only store with 405 before
            // any handler (the only callers of this) runs.
            None => unreachable!("a read-only store has no publisher"),
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.0.settings
    }

    pub fn positions(&self) -> Positions {
        self.0.status.borrow().positions.clone()
    }

    /// The applied positions, rendered for bodies and the `Stockline-Position`
    /// header. Take it before reading rows: rows read after it are at least as
    /// recent as the positions it reports.
    pub fn snapshot(&self) -> Arc<PositionSnapshot> {
        let (positions, availability_since) = {
            let status = self.0.status.borrow();
            if let Some(snapshot) = self
                .0
                .snapshot
                .cached(&status.positions, &status.availability_since)
            {
                return snapshot;
            }
            (status.positions.clone(), status.availability_since.clone())
        };
        self.0.snapshot.refresh(positions, availability_since)
    }

    pub(crate) fn sku_cache(&self) -> &SkuCache {
        &self.0.sku_cache
    }

    pub fn status(&self) -> ProjectorStatus {
        self.0.status.borrow().clone()
    }

    pub fn partition_of(&self, sku: &Sku) -> u32 {
        stockline_kafka::partition_for_key(sku.as_str().as_bytes(), self.0.partitions)
    }

    /// The configuration a SKU's partition has folded (locations, channels).
    /// Cached until the projector writes its next batch.
    pub fn config_for(&self, sku: &Sku) -> Result<Arc<Config>, ApiError> {
        self.config_of_partition(self.partition_of(sku))
    }

    pub fn config_of_partition(&self, partition: u32) -> Result<Arc<Config>, ApiError> {
        let batches = self.0.status.borrow().batches;
        if let Ok(cache) = self.0.config_cache.lock()
            && let Some((seen, config)) = cache.get(&partition)
            && *seen == batches
        {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(
            self.0
                .store
                .partition_state(partition)?
                .map(|state| state.config)
                .unwrap_or_default(),
        );
        if let Ok(mut cache) = self.0.config_cache.lock() {
            cache.insert(partition, (batches, Arc::clone(&config)));
        }
        Ok(config)
    }

    /// Waits until the projector has applied every token (bounded).
    pub async fn wait_for_tokens(&self, tokens: &[Token], timeout: Duration) -> bool {
        let mut target = Positions::new();
        for token in tokens {
            let next = token.offset + 1;
            let entry = target.entry(token.partition).or_insert(next);
            *entry = (*entry).max(next);
        }
        stockline_engine::wait_for_positions(self.0.status.clone(), &target, timeout).await
    }

    pub fn decision_timeout(&self) -> Duration {
        Duration::from_millis(self.0.settings.decision_timeout_ms)
    }

    pub fn ack_after_applied(&self) -> bool {
        self.0.ack_after_applied
    }

    pub(crate) fn tokens(&self) -> &TokenTable {
        &self.0.tokens
    }

    pub(crate) fn metrics(&self) -> Option<&PrometheusHandle> {
        self.0.metrics.as_ref()
    }
}
