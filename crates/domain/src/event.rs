//! The event schema: one envelope for every event, then a payload per kind.
//!
//! These types are the contract with channel integrators. JSON (HTTP edge) and
//! bincode (Kafka records) are both serde encodings of exactly these types; the
//! generated JSON Schemas in `schemas/` and the golden-bytes tests in `stockline-wire`
//! pin them. Changing a field here is a schema change: bump [`SCHEMA_VERSION`] or the
//! wire format version and regenerate the schemas.
//!
//! Serde attributes are restricted to what both encodings support: externally tagged
//! enums (bincode cannot decode internally tagged ones) and no skipped fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ChannelId, CustomerRef, DocumentId, GroupId, HoldId, LocationId, OrderId, Sku};

/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u16 = 1;

/// Largest quantity a single event may carry. Keeps every sum far from overflow:
/// positions are bounded by [`crate::POSITION_ABS_MAX`].
pub const QUANTITY_MAX: i64 = 1_000_000_000;

/// Longest time-to-live of a hold: 30 days.
pub const HOLD_TTL_SECONDS_MAX: u32 = 30 * 24 * 3_600;

/// Largest number of groups a location belongs to, or locations and groups a
/// channel lists. Configuration is copied to every partition; keep it small.
pub const CONFIG_LIST_LEN_MAX: usize = 256;

/// The sender-chosen id of an event: the idempotency key. A repeated id changes
/// nothing.
pub type EventId = Uuid;

/// One event, as every channel writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Chosen by the sender (a UUID); the idempotency key.
    pub event_id: EventId,
    /// The version of this schema the sender wrote; this build reads up to
    /// [`SCHEMA_VERSION`].
    pub schema_version: u16,
    /// When it happened in the sender's world (UTC). Recorded, never used to decide:
    /// decisions use log time.
    #[serde(with = "crate::time::timestamp_serde")]
    #[cfg_attr(feature = "json-schema", schemars(with = "DateTime<Utc>"))]
    pub occurred_at: DateTime<Utc>,
    /// The channel that wrote the event (`web`, `pos`, `marketplace`, `admin`...).
    pub channel: ChannelId,
    /// The location the event is about, where it applies (see each payload).
    pub location: Option<LocationId>,
    /// The SKU the event is about, where it applies. Required for every event that
    /// changes a SKU's quantities: it is the Kafka key.
    pub sku: Option<Sku>,
    /// The source document: order, purchase order, transfer, till receipt...
    pub document: Option<DocumentRef>,
    /// Why, where one applies (required for adjustments).
    pub reason: Option<ReasonCode>,
    pub payload: Payload,
}

/// A reference to the document an event came from: the audit trail's link back to
/// the retailer's own systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    pub kind: DocumentKind,
    pub id: DocumentId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Order,
    PurchaseOrder,
    Transfer,
    TillReceipt,
    Return,
    StockCount,
    Adjustment,
    Other,
}

/// Why stock changed, where the reason matters for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    Damage,
    Theft,
    Loss,
    Correction,
    Found,
    Expired,
    QualityControl,
    CustomerReturn,
    Recall,
    Other,
}

/// A unit price in minor units of an ISO 4217 currency (cents for EUR): what
/// revenue figures are computed from. Optional everywhere: stock does not need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub unit_minor: i64,
    /// Three upper-case letters (`EUR`, `USD`).
    pub currency: String,
}

/// Where a unit physically is, within a location: sellable, or in one of the
/// unavailable states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    Sellable,
    Damaged,
    QualityControl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    PurchaseOrder,
    Restock,
    InitialLoad,
    Other,
}

/// What happens to a returned unit at the location where it physically is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReturnDisposition {
    /// Back on the shelf: on hand and sellable.
    Restock,
    /// On hand, but damaged.
    Damaged,
    /// On hand, waiting for quality control.
    QualityControl,
    /// Thrown away or sent back to the supplier: no stock change, recorded only.
    Discard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// An online checkout reserving stock until payment.
    Checkout,
    /// Click & collect: held at a store, prepared, picked up (or not).
    ClickAndCollect,
    /// Reserve in store, pay at the desk.
    ReserveInStore,
    /// Shipped to the customer from a store's stock.
    ShipFromStore,
}

impl HoldKind {
    /// Whether the customer comes to the location to collect.
    pub fn is_pickup(self) -> bool {
        matches!(self, HoldKind::ClickAndCollect | HoldKind::ReserveInStore)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Store,
    Warehouse,
    Partner,
}

// Every variant of the event's field-less enums, in declaration order: the
// order of serde's variant indexes, which binary decoders and encoders that
// bypass serde write and read (tests below check the order against serde's).
impl DocumentKind {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [DocumentKind; 8] = [
        DocumentKind::Order,
        DocumentKind::PurchaseOrder,
        DocumentKind::Transfer,
        DocumentKind::TillReceipt,
        DocumentKind::Return,
        DocumentKind::StockCount,
        DocumentKind::Adjustment,
        DocumentKind::Other,
    ];
}

impl ReasonCode {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [ReasonCode; 10] = [
        ReasonCode::Damage,
        ReasonCode::Theft,
        ReasonCode::Loss,
        ReasonCode::Correction,
        ReasonCode::Found,
        ReasonCode::Expired,
        ReasonCode::QualityControl,
        ReasonCode::CustomerReturn,
        ReasonCode::Recall,
        ReasonCode::Other,
    ];
}

impl StockState {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [StockState; 3] = [
        StockState::Sellable,
        StockState::Damaged,
        StockState::QualityControl,
    ];
}

impl ReceiptKind {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [ReceiptKind; 4] = [
        ReceiptKind::PurchaseOrder,
        ReceiptKind::Restock,
        ReceiptKind::InitialLoad,
        ReceiptKind::Other,
    ];
}

impl ReturnDisposition {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [ReturnDisposition; 4] = [
        ReturnDisposition::Restock,
        ReturnDisposition::Damaged,
        ReturnDisposition::QualityControl,
        ReturnDisposition::Discard,
    ];
}

impl HoldKind {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [HoldKind; 4] = [
        HoldKind::Checkout,
        HoldKind::ClickAndCollect,
        HoldKind::ReserveInStore,
        HoldKind::ShipFromStore,
    ];
}

impl LocationKind {
    /// Every variant, in declaration order (serde's variant indexes).
    pub const ALL: [LocationKind; 3] = [
        LocationKind::Store,
        LocationKind::Warehouse,
        LocationKind::Partner,
    ];
}

/// What the event says happened. Each variant documents which envelope fields it
/// requires; [`crate::validate`] enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    // ----- Stock facts. All require `sku` and `location`. -----
    /// Units arrived and are sellable. With a `purchase_order` document, the
    /// matching expected quantity is no longer incoming.
    StockReceived {
        quantity: i64,
        kind: ReceiptKind,
    },
    /// Units appeared or disappeared outside any flow (requires `reason`). `state`
    /// says which units: sellable ones, or damaged / quality-control ones being
    /// written off.
    StockAdjusted {
        delta: i64,
        state: StockState,
    },
    /// A stock count: the absolute number of units physically at the location (all
    /// states). The difference with the books is reported.
    StockCounted {
        quantity: i64,
    },
    /// Units moved between sellable and an unavailable state, within the location.
    StockStateChanged {
        quantity: i64,
        from: StockState,
        to: StockState,
    },
    /// Units left `location` for `to_location` (requires a `transfer` document).
    TransferShipped {
        to_location: LocationId,
        quantity: i64,
    },
    /// Units of a transfer arrived at `location` (requires a `transfer` document).
    TransferReceived {
        from_location: LocationId,
        quantity: i64,
    },
    /// A purchase order line is expected (requires a `purchase_order` document).
    IncomingExpected {
        quantity: i64,
        #[cfg_attr(feature = "json-schema", schemars(with = "DateTime<Utc>"))]
        #[serde(with = "crate::time::timestamp_serde")]
        expected_at: DateTime<Utc>,
    },
    /// What remains expected of a purchase order line will not come.
    IncomingCancelled {},
    /// Sold at a till, no hold involved.
    TillSale {
        quantity: i64,
        price: Option<Price>,
    },
    /// Units returned at `location`, where they physically are, whichever channel
    /// sold them.
    Returned {
        quantity: i64,
        disposition: ReturnDisposition,
        sold_by_channel: Option<ChannelId>,
        original_order: Option<OrderId>,
        /// The refunded unit price, when known.
        price: Option<Price>,
    },

    // ----- Holds. All require `sku`. -----
    /// Ask to hold units for a customer's order line. `location` names one location,
    /// or leave it empty and name `group` to accept any location of that group.
    HoldRequested {
        hold_id: HoldId,
        order_id: OrderId,
        order_line: u32,
        customer_ref: CustomerRef,
        quantity: i64,
        ttl_seconds: u32,
        kind: HoldKind,
        group: Option<GroupId>,
        /// The unit price of the order line, for revenue figures.
        price: Option<Price>,
    },
    /// Paid: the held units move from reserved to committed and no longer expire.
    HoldConfirmed {
        hold_id: HoldId,
    },
    /// Cancelled: the units are available again.
    HoldReleased {
        hold_id: HoldId,
    },
    /// Prepared and waiting at the pickup desk.
    HoldReadyForPickup {
        hold_id: HoldId,
    },
    /// Handed over to the customer: the units leave the location.
    HoldCollected {
        hold_id: HoldId,
    },
    /// The customer never came: the units are available again.
    HoldNoShow {
        hold_id: HoldId,
    },
    /// Shipped to the customer (a confirmed hold): the units leave the location.
    HoldShipped {
        hold_id: HoldId,
    },

    // ----- Waitlist. Requires `sku`, and `location` or `group`. -----
    /// Tell `customer_ref` when `quantity` units are available at `location`, or at
    /// any location of `group`.
    WaitlistJoined {
        customer_ref: CustomerRef,
        quantity: i64,
        group: Option<GroupId>,
    },
    WaitlistLeft {
        customer_ref: CustomerRef,
    },

    // ----- Configuration. -----
    /// Defines or redefines `location` (required). Written to every partition.
    LocationDefined {
        name: String,
        kind: LocationKind,
        groups: Vec<GroupId>,
        active: bool,
    },
    /// Which locations `channel` sells from (listed, or through their groups), and
    /// how many units it must leave untouched at each location (`buffer`). Written to
    /// every partition.
    ChannelDefined {
        channel: ChannelId,
        locations: Vec<LocationId>,
        groups: Vec<GroupId>,
        buffer: i64,
    },
    /// Units at (`sku`, `location`) that no channel may promise.
    SafetyStockSet {
        quantity: i64,
    },
    /// Units at (`sku`, `location`) that only `channel` may sell (0 removes).
    AllocationSet {
        channel: ChannelId,
        quantity: i64,
    },

    // ----- Time. -----
    /// Advances log time on a quiet partition so that holds expire on time. Written
    /// to every partition by the tick publisher.
    Tick {},
}

/// The stable name of each payload kind, as it appears in JSON and in `schemas/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PayloadKind {
    StockReceived,
    StockAdjusted,
    StockCounted,
    StockStateChanged,
    TransferShipped,
    TransferReceived,
    IncomingExpected,
    IncomingCancelled,
    TillSale,
    Returned,
    HoldRequested,
    HoldConfirmed,
    HoldReleased,
    HoldReadyForPickup,
    HoldCollected,
    HoldNoShow,
    HoldShipped,
    WaitlistJoined,
    WaitlistLeft,
    LocationDefined,
    ChannelDefined,
    SafetyStockSet,
    AllocationSet,
    Tick,
}

impl PayloadKind {
    pub const ALL: [PayloadKind; 24] = [
        PayloadKind::StockReceived,
        PayloadKind::StockAdjusted,
        PayloadKind::StockCounted,
        PayloadKind::StockStateChanged,
        PayloadKind::TransferShipped,
        PayloadKind::TransferReceived,
        PayloadKind::IncomingExpected,
        PayloadKind::IncomingCancelled,
        PayloadKind::TillSale,
        PayloadKind::Returned,
        PayloadKind::HoldRequested,
        PayloadKind::HoldConfirmed,
        PayloadKind::HoldReleased,
        PayloadKind::HoldReadyForPickup,
        PayloadKind::HoldCollected,
        PayloadKind::HoldNoShow,
        PayloadKind::HoldShipped,
        PayloadKind::WaitlistJoined,
        PayloadKind::WaitlistLeft,
        PayloadKind::LocationDefined,
        PayloadKind::ChannelDefined,
        PayloadKind::SafetyStockSet,
        PayloadKind::AllocationSet,
        PayloadKind::Tick,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::StockReceived => "stock_received",
            PayloadKind::StockAdjusted => "stock_adjusted",
            PayloadKind::StockCounted => "stock_counted",
            PayloadKind::StockStateChanged => "stock_state_changed",
            PayloadKind::TransferShipped => "transfer_shipped",
            PayloadKind::TransferReceived => "transfer_received",
            PayloadKind::IncomingExpected => "incoming_expected",
            PayloadKind::IncomingCancelled => "incoming_cancelled",
            PayloadKind::TillSale => "till_sale",
            PayloadKind::Returned => "returned",
            PayloadKind::HoldRequested => "hold_requested",
            PayloadKind::HoldConfirmed => "hold_confirmed",
            PayloadKind::HoldReleased => "hold_released",
            PayloadKind::HoldReadyForPickup => "hold_ready_for_pickup",
            PayloadKind::HoldCollected => "hold_collected",
            PayloadKind::HoldNoShow => "hold_no_show",
            PayloadKind::HoldShipped => "hold_shipped",
            PayloadKind::WaitlistJoined => "waitlist_joined",
            PayloadKind::WaitlistLeft => "waitlist_left",
            PayloadKind::LocationDefined => "location_defined",
            PayloadKind::ChannelDefined => "channel_defined",
            PayloadKind::SafetyStockSet => "safety_stock_set",
            PayloadKind::AllocationSet => "allocation_set",
            PayloadKind::Tick => "tick",
        }
    }
}

impl Payload {
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::StockReceived { .. } => PayloadKind::StockReceived,
            Payload::StockAdjusted { .. } => PayloadKind::StockAdjusted,
            Payload::StockCounted { .. } => PayloadKind::StockCounted,
            Payload::StockStateChanged { .. } => PayloadKind::StockStateChanged,
            Payload::TransferShipped { .. } => PayloadKind::TransferShipped,
            Payload::TransferReceived { .. } => PayloadKind::TransferReceived,
            Payload::IncomingExpected { .. } => PayloadKind::IncomingExpected,
            Payload::IncomingCancelled {} => PayloadKind::IncomingCancelled,
            Payload::TillSale { .. } => PayloadKind::TillSale,
            Payload::Returned { .. } => PayloadKind::Returned,
            Payload::HoldRequested { .. } => PayloadKind::HoldRequested,
            Payload::HoldConfirmed { .. } => PayloadKind::HoldConfirmed,
            Payload::HoldReleased { .. } => PayloadKind::HoldReleased,
            Payload::HoldReadyForPickup { .. } => PayloadKind::HoldReadyForPickup,
            Payload::HoldCollected { .. } => PayloadKind::HoldCollected,
            Payload::HoldNoShow { .. } => PayloadKind::HoldNoShow,
            Payload::HoldShipped { .. } => PayloadKind::HoldShipped,
            Payload::WaitlistJoined { .. } => PayloadKind::WaitlistJoined,
            Payload::WaitlistLeft { .. } => PayloadKind::WaitlistLeft,
            Payload::LocationDefined { .. } => PayloadKind::LocationDefined,
            Payload::ChannelDefined { .. } => PayloadKind::ChannelDefined,
            Payload::SafetyStockSet { .. } => PayloadKind::SafetyStockSet,
            Payload::AllocationSet { .. } => PayloadKind::AllocationSet,
            Payload::Tick {} => PayloadKind::Tick,
        }
    }

    /// The hold a lifecycle event acts on.
    pub fn hold_id(&self) -> Option<&HoldId> {
        match self {
            Payload::HoldRequested { hold_id, .. }
            | Payload::HoldConfirmed { hold_id }
            | Payload::HoldReleased { hold_id }
            | Payload::HoldReadyForPickup { hold_id }
            | Payload::HoldCollected { hold_id }
            | Payload::HoldNoShow { hold_id }
            | Payload::HoldShipped { hold_id } => Some(hold_id),
            _ => None,
        }
    }
}

/// Where an event goes in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing<'a> {
    /// Keyed by SKU: the one partition that orders everything about this SKU.
    Sku(&'a Sku),
    /// Configuration that every SKU's fold needs, and ticks: the same event (same id)
    /// is written to every partition, so each partition folds it in its own order.
    AllPartitions,
}

impl Event {
    /// Which partition(s) this event must be written to. Events that need a SKU and
    /// lack one are invalid; they route to all partitions only if their kind is
    /// broadcast, otherwise `None` (reject before publishing).
    pub fn routing(&self) -> Option<Routing<'_>> {
        match self.payload.kind() {
            PayloadKind::LocationDefined | PayloadKind::ChannelDefined | PayloadKind::Tick => {
                Some(Routing::AllPartitions)
            }
            _ => self.sku.as_ref().map(Routing::Sku),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::{DeserializeOwned, IntoDeserializer, value::Error};

    use super::*;

    /// `all` lists every variant of `T` in the order of serde's variant indexes:
    /// index `i` deserializes to `all[i]`, and the index after the last to none.
    fn in_serde_order<T: DeserializeOwned + PartialEq + std::fmt::Debug>(all: &[T]) {
        let variant = |index: usize| {
            let index = u32::try_from(index).expect("few variants");
            T::deserialize(IntoDeserializer::<Error>::into_deserializer(index))
        };
        for (index, expected) in all.iter().enumerate() {
            assert_eq!(&variant(index).expect("a variant"), expected);
        }
        assert!(variant(all.len()).is_err(), "a variant missing from ALL");
    }

    #[test]
    fn every_all_lists_the_variants_in_serde_order() {
        in_serde_order(&DocumentKind::ALL);
        in_serde_order(&ReasonCode::ALL);
        in_serde_order(&StockState::ALL);
        in_serde_order(&ReceiptKind::ALL);
        in_serde_order(&ReturnDisposition::ALL);
        in_serde_order(&HoldKind::ALL);
        in_serde_order(&LocationKind::ALL);
    }
}
