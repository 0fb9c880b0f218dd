//! Channel adapters: what retailers' systems already send, as they send it, turned
//! into Stockline [`Event`]s.
//!
//! - [`shopify`]: Shopify webhooks (Admin REST API payloads): orders, refunds,
//!   fulfillments, inventory levels; `X-Shopify-Hmac-Sha256` verification.
//! - [`woocommerce`]: WooCommerce `order.created` / `order.updated` webhooks and their
//!   status transitions; `X-WC-Webhook-Signature` verification.
//! - [`tills`]: store till exports (CSV), line by line.
//!
//! Pure translation, no IO: a payload and a mapping in, events out. What an
//! adapter needs to know about the ledger (is this order line held, and how? what
//! does the ledger hold at this location?) it asks through [`Lookup`], which the
//! caller answers (the HTTP service answers from its store).
//!
//! Event ids are deterministic (UUID v5 over the platform's own ids and the action,
//! see [`event_id`]): a redelivered webhook or a re-imported file produces the same
//! event ids, which the fold ignores, and translating the same payload with the same
//! lookup answers twice gives byte-identical events.

pub mod money;
pub mod platform_id;
pub mod shopify;
pub mod signature;
pub mod tills;
pub mod woocommerce;

use serde::Serialize;
use stockline_domain::{
    ChannelId, CustomerRef, DocumentId, Event, HoldId, HoldKind, HoldStatus, LocationId, OrderId,
    Quantities, Sku,
};
use uuid::Uuid;

/// Namespace of every event id an adapter derives (UUID v5).
pub const ADAPTER_NAMESPACE: Uuid = Uuid::from_u128(0x9b2f_4c61_7d3e_4a85_b1c0_5e8d_2f47_a9c3);

/// The deterministic id of the event an adapter makes for `parts` (the platform,
/// its ids, the action). Parts are joined with NUL, which no id contains.
pub fn event_id(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&ADAPTER_NAMESPACE, parts.join("\0").as_bytes())
}

/// What a translation made of a payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// The events to publish, in order (per SKU, the order matters: a hold request
    /// before its confirmation).
    pub events: Vec<Event>,
    /// The parts of the payload that became no event, and why.
    pub skipped: Vec<Skipped>,
}

impl Translation {
    /// Adds an event, once: a payload that says the same thing twice (a cancelled
    /// order's line released, and its refund cancelling the same line) makes one.
    fn push(&mut self, event: Event) {
        if !self.events.iter().any(|e| e.event_id == event.event_id) {
            self.events.push(event);
        }
    }

    fn skip(&mut self, item: impl Into<String>, code: SkipCode, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            item: item.into(),
            code,
            reason: reason.into(),
        });
    }
}

/// One part of a payload (an order line, a refund line...) that became no event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Which part: `line_item 466157049`, `refund_line_item 104689539`...
    pub item: String,
    pub code: SkipCode,
    /// A sentence for people: what was missing, and where to configure it.
    pub reason: String,
}

/// Why a part of a payload became no event. Stable names (snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCode {
    /// No Stockline SKU for the platform's product (mapping, and no `sku` field).
    UnmappedSku,
    /// No Stockline location for the platform's location.
    UnmappedLocation,
    /// A pickup whose store is not in the pickup mapping.
    UnmappedPickup,
    /// A shipped order, and no fulfilment location or group is configured.
    NoFulfilmentLocation,
    /// Gift cards and other lines that are not stock.
    NotStock,
    /// A refund line that puts nothing back on the shelf (`no_restock`).
    NoRestock,
    /// A line Stockline holds nothing for (a till sale, an order from before
    /// Stockline, or an order whose creation has not arrived yet).
    NoHold,
    /// A part cancellation of a held line: holds are released whole.
    PartialCancel,
    /// The line's hold is already closed (shipped, collected, released, expired,
    /// rejected): nothing is left to do.
    HoldClosed,
    /// A fulfillment that did not succeed (pending, cancelled, failure...).
    NotFulfilled,
    /// An order status that changes no stock (draft, trash...).
    StatusIgnored,
    /// Inventory level webhooks are turned off in the mapping.
    Disabled,
    /// A value the platform sent that Stockline cannot accept (an id it cannot
    /// use, a zero or negative quantity).
    BadValue,
}

impl SkipCode {
    pub fn name(self) -> &'static str {
        match self {
            SkipCode::UnmappedSku => "unmapped_sku",
            SkipCode::UnmappedLocation => "unmapped_location",
            SkipCode::UnmappedPickup => "unmapped_pickup",
            SkipCode::NoFulfilmentLocation => "no_fulfilment_location",
            SkipCode::NotStock => "not_stock",
            SkipCode::NoRestock => "no_restock",
            SkipCode::NoHold => "no_hold",
            SkipCode::PartialCancel => "partial_cancel",
            SkipCode::HoldClosed => "hold_closed",
            SkipCode::NotFulfilled => "not_fulfilled",
            SkipCode::StatusIgnored => "status_ignored",
            SkipCode::Disabled => "disabled",
            SkipCode::BadValue => "bad_value",
        }
    }
}

/// A payload that cannot be translated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Not the JSON the platform documents: `path` names the offending field.
    #[error("malformed payload at `{path}`: {message}")]
    Malformed { path: String, message: String },
    /// The ledger could not be asked (a store error): try again later.
    #[error("lookup failed: {0}")]
    Lookup(String),
}

impl AdapterError {
    pub(crate) fn from_json(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        AdapterError::Malformed {
            path: if path.is_empty() { ".".into() } else { path },
            message: error.into_inner().to_string(),
        }
    }
}

/// Parses a JSON payload, naming the offending field on error.
pub(crate) fn parse_payload<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, AdapterError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(AdapterError::from_json)?;
    deserializer.end().map_err(|e| AdapterError::Malformed {
        path: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// What an adapter may know about a hold it derived from an order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldFacts {
    pub kind: HoldKind,
    pub status: HoldStatus,
    pub confirmed: bool,
    pub quantity: i64,
    /// Where it is held (none if it was rejected).
    pub location: Option<LocationId>,
    pub channel: ChannelId,
}

/// What an adapter asks the ledger. The HTTP service answers from its store; tools
/// without a store use [`NoLookup`]. An `Err` means "cannot tell now" (the
/// translation fails with [`AdapterError::Lookup`] and should be retried).
pub trait Lookup {
    /// The hold `hold_id` of `sku`, if the ledger has it.
    fn hold(&self, hold_id: &HoldId, sku: &Sku) -> Result<Option<HoldFacts>, String>;
    /// The channel an order was sold on, from the holds the ledger has for it.
    fn order_channel(&self, order_id: &OrderId) -> Result<Option<ChannelId>, String>;
    /// The ledger's quantities of `sku` at `location`.
    fn quantities(&self, sku: &Sku, location: &LocationId) -> Result<Option<Quantities>, String>;
}

/// A lookup that knows nothing: every hold is unknown, every position empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl Lookup for NoLookup {
    fn hold(&self, _: &HoldId, _: &Sku) -> Result<Option<HoldFacts>, String> {
        Ok(None)
    }
    fn order_channel(&self, _: &OrderId) -> Result<Option<ChannelId>, String> {
        Ok(None)
    }
    fn quantities(&self, _: &Sku, _: &LocationId) -> Result<Option<Quantities>, String> {
        Ok(None)
    }
}

/// A lookup over a ledger in memory (tests, simulations): what the fold has
/// decided so far.
#[derive(Debug, Clone, Copy)]
pub struct LedgerLookup<'a>(pub &'a stockline_domain::Ledger);

impl Lookup for LedgerLookup<'_> {
    fn hold(&self, hold_id: &HoldId, sku: &Sku) -> Result<Option<HoldFacts>, String> {
        Ok(self
            .0
            .hold(hold_id)
            .filter(|h| &h.sku == sku)
            .map(HoldFacts::from))
    }

    fn order_channel(&self, order_id: &OrderId) -> Result<Option<ChannelId>, String> {
        Ok(self
            .0
            .holds()
            .values()
            .find(|h| &h.order_id == order_id)
            .map(|h| h.channel.clone()))
    }

    fn quantities(&self, sku: &Sku, location: &LocationId) -> Result<Option<Quantities>, String> {
        Ok(Some(self.0.quantities(sku, location)))
    }
}

impl From<&stockline_domain::Hold> for HoldFacts {
    fn from(hold: &stockline_domain::Hold) -> Self {
        HoldFacts {
            kind: hold.kind,
            status: hold.status,
            confirmed: hold.confirmed,
            quantity: hold.quantity,
            location: hold.location.clone(),
            channel: hold.channel.clone(),
        }
    }
}

/// An identifier made of platform data: printable ASCII without spaces is kept,
/// anything else becomes `-`; cut to the id length limit.
pub(crate) fn sanitize_id(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '-' })
        .collect();
    out.truncate(stockline_domain::ids::ID_LEN_MAX);
    out
}

pub(crate) fn order_id(text: &str) -> Option<OrderId> {
    OrderId::new(text).ok()
}

pub(crate) fn hold_id(text: &str) -> Option<HoldId> {
    HoldId::new(text).ok()
}

pub(crate) fn document_id(text: &str) -> Option<DocumentId> {
    DocumentId::new(text).ok()
}

pub(crate) fn customer_ref(text: &str) -> Option<CustomerRef> {
    CustomerRef::new(sanitize_id(text)).ok()
}
