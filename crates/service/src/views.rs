//! Response bodies: the HTTP edge's view of the domain's types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stockline_domain::{Hold, LogTime, Quantities};
use stockline_store::rows::HistoryEntry;
use utoipa::ToSchema;

/// Applied positions: partition -> next offset. A read reflects every write whose
/// token (partition, offset) has offset < position[partition].
pub type PositionMap = BTreeMap<u32, u64>;

fn rfc3339(time: LogTime) -> String {
    time.to_datetime()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| time.millis().to_string())
}

/// Every quantity state of one SKU at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuantitiesView {
    pub on_hand: i64,
    pub reserved: i64,
    pub committed: i64,
    pub damaged: i64,
    pub quality_control: i64,
    /// damaged + quality_control
    pub unavailable: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub in_transit: i64,
    /// on_hand - reserved - committed - unavailable - safety_stock (negative when
    /// facts contradicted the books)
    pub available: i64,
}

impl From<&Quantities> for QuantitiesView {
    fn from(q: &Quantities) -> Self {
        QuantitiesView {
            on_hand: q.on_hand,
            reserved: q.reserved,
            committed: q.committed,
            damaged: q.damaged,
            quality_control: q.quality_control,
            unavailable: q.unavailable(),
            safety_stock: q.safety_stock,
            incoming: q.incoming,
            in_transit: q.in_transit,
            available: q.available(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocationAvailability {
    pub location: String,
    /// `store`, `warehouse`, `partner`; absent for a location not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub quantities: QuantitiesView,
    /// Units reserved for one channel only, by channel (unused part).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exclusive_unused: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SkuAvailability {
    pub sku: String,
    pub locations: Vec<LocationAvailability>,
    /// Sum of `available` over locations where it is positive.
    pub total_available: i64,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelLocationView {
    pub location: String,
    /// What the channel may promise here (buffer and exclusive allocations applied).
    pub promisable: i64,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelAvailability {
    pub sku: String,
    pub channel: String,
    /// The channel's buffer per location.
    pub buffer: i64,
    pub locations: Vec<ChannelLocationView>,
    /// Sum of `promisable` over the channel's locations.
    pub total_promisable: i64,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchAvailabilityRequest {
    /// SKUs to look up.
    pub skus: Vec<String>,
    /// Only these locations (all when absent).
    #[serde(default)]
    pub locations: Option<Vec<String>>,
    /// Also compute what this channel may promise.
    #[serde(default)]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchAvailabilityItem {
    pub sku: String,
    pub location: String,
    pub quantities: QuantitiesView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promisable: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchAvailability {
    pub items: Vec<BatchAvailabilityItem>,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PickupOption {
    pub location: String,
    pub name: String,
    /// Units the channel may promise there now.
    pub available_now: i64,
    /// `now`, or the expected arrival (RFC 3339) of incoming stock that would cover
    /// the quantity.
    pub ready: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PickupOptions {
    pub sku: String,
    pub quantity: i64,
    /// Soonest first: stores with the units now (most units first), then stores
    /// where expected stock covers it (earliest first).
    pub options: Vec<PickupOption>,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectionView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldView {
    pub hold_id: String,
    pub sku: String,
    /// `rejected`, `held`, `ready_for_pickup`, `collected`, `shipped`, `released`,
    /// `expired`, `no_show`.
    pub status: String,
    /// Paid: the units are committed and the hold no longer expires.
    pub confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_group: Option<String>,
    pub quantity: i64,
    pub channel: String,
    pub kind: String,
    pub order_id: String,
    pub order_line: u32,
    pub customer_ref: String,
    pub requested_at: String,
    /// When an unconfirmed hold expires.
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<RejectionView>,
}

impl From<&Hold> for HoldView {
    fn from(hold: &Hold) -> Self {
        HoldView {
            hold_id: hold.hold_id.to_string(),
            sku: hold.sku.to_string(),
            status: hold.status.name().to_owned(),
            confirmed: hold.confirmed,
            location: hold.location.as_ref().map(ToString::to_string),
            requested_location: hold.requested_location.as_ref().map(ToString::to_string),
            requested_group: hold.requested_group.as_ref().map(ToString::to_string),
            quantity: hold.quantity,
            channel: hold.channel.to_string(),
            kind: serde_json::to_value(hold.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            order_id: hold.order_id.to_string(),
            order_line: hold.order_line,
            customer_ref: hold.customer_ref.to_string(),
            requested_at: rfc3339(hold.requested_at),
            expires_at: rfc3339(hold.expires_at),
            ready_at: hold.ready_at.map(rfc3339),
            updated_at: rfc3339(hold.updated_at),
            rejection: hold.rejection.as_ref().map(|r| RejectionView {
                code: r.code().to_owned(),
                message: r.to_string(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldResponse {
    pub hold: HoldView,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldList {
    pub holds: Vec<HoldView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub position: PositionMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    pub partition: u32,
    pub offset: u64,
    pub log_time: String,
    /// The event kind, or `hold_expired`.
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    pub location: String,
    pub before: QuantitiesView,
    pub after: QuantitiesView,
}

impl From<&HistoryEntry> for HistoryView {
    fn from(entry: &HistoryEntry) -> Self {
        let text = |v: &dyn erased::AsJsonText| v.as_json_text();
        HistoryView {
            partition: entry.partition,
            offset: entry.offset,
            log_time: rfc3339(entry.log_time),
            cause: entry.cause.to_string(),
            event_id: entry.event_id.map(|id| id.to_string()),
            occurred_at: entry
                .occurred_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            channel: entry.channel.as_ref().map(ToString::to_string),
            reason: entry.reason.as_ref().map(|r| text(r)),
            document: entry
                .document
                .as_ref()
                .map(|d| format!("{}:{}", text(&d.kind), d.id)),
            hold_id: entry.hold_id.as_ref().map(ToString::to_string),
            location: entry.location.to_string(),
            before: QuantitiesView::from(&entry.before),
            after: QuantitiesView::from(&entry.after),
        }
    }
}

mod erased {
    /// The JSON string form of a unit enum (`damage`, `purchase_order`).
    pub trait AsJsonText {
        fn as_json_text(&self) -> String;
    }

    impl<T: serde::Serialize> AsJsonText for T {
        fn as_json_text(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    pub sku: String,
    pub entries: Vec<HistoryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub position: PositionMap,
}

/// One item of an ingest batch's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestItem {
    pub index: usize,
    /// `accepted` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Consistency tokens `PARTITION:OFFSET` (one per partition written).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tokens: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<crate::error::Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub items: Vec<IngestItem>,
    /// `wait_for` value covering every accepted event.
    pub wait_for: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub position: PositionMap,
    /// High watermarks seen when the partitions were assigned.
    pub assigned_high_watermarks: PositionMap,
    pub records: u64,
    pub dead_letters: u64,
}

impl<'de> Deserialize<'de> for crate::error::Problem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            problem_type: String,
            title: String,
            status: u16,
            detail: String,
            field: Option<String>,
            code: Option<String>,
            context: Option<serde_json::Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(crate::error::Problem {
            problem_type: raw.problem_type,
            title: raw.title,
            status: raw.status,
            detail: raw.detail,
            field: raw.field,
            code: raw.code,
            context: raw.context,
        })
    }
}
