//! The `[http]` settings of the service.

use serde::{Deserialize, Serialize};

use stockline_adapters::shopify::ShopifySettings;
use stockline_adapters::woocommerce::WooSettings;

use crate::auth::TokenEntry;

/// Largest request body accepted, in bytes (default): a batch of 1,000 events of
/// about 600 bytes of JSON each.
pub const BODY_BYTES_MAX_DEFAULT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    pub listen: String,
    /// Bearer tokens (stored as SHA-256 digests) and their roles. The service
    /// refuses to start without any. `stockline token new` makes one.
    pub tokens: Vec<TokenEntry>,
    /// Largest request body, in bytes. Default: 1 MiB.
    pub body_bytes_max: usize,
    /// Most events in one ingest batch. Default: 1,000.
    pub batch_events_max: usize,
    /// Most SKUs x locations cells in one batch availability request. Default: 2,000.
    pub availability_cells_max: usize,
    /// Most items in one page. Default: 500 (the default page is 50).
    pub page_size_max: usize,
    /// How long a hold request or a hold action waits for the projector's decision
    /// before answering 503 with the hold id to look up later, in ms. Default: 5,000.
    pub decision_timeout_ms: u64,
    /// Longest `wait_ms` a read may ask for. Default: 30,000.
    pub wait_ms_max: u64,
    /// Answer ingest requests only once their events are projected (not just
    /// acknowledged by the broker). `None` (the default) means yes with the embedded
    /// broker, whose log is the store's archive, and no with a real cluster.
    pub ack_after_applied: Option<bool>,
    /// `[http.shopify]`: Shopify webhooks at `POST /v1/webhooks/shopify` (client
    /// secret and mapping). Unset: the endpoint answers 401 (nothing to check
    /// signatures with).
    pub shopify: Option<ShopifySettings>,
    /// `[http.woocommerce]`: WooCommerce webhooks at `POST /v1/webhooks/woocommerce`.
    /// Unset: the endpoint answers 401.
    pub woocommerce: Option<WooSettings>,
}

impl HttpSettings {
    /// What the types cannot check: the adapters' secrets and mappings.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(shopify) = &self.shopify {
            shopify.validate()?;
        }
        if let Some(woocommerce) = &self.woocommerce {
            woocommerce.validate()?;
        }
        Ok(())
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".to_owned(),
            tokens: Vec::new(),
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            batch_events_max: 1_000,
            availability_cells_max: 2_000,
            page_size_max: 500,
            decision_timeout_ms: 5_000,
            wait_ms_max: 30_000,
            ack_after_applied: None,
            shopify: None,
            woocommerce: None,
        }
    }
}
