//! Shared support for the domain crate's tests and its fold benchmark.
//!
//! Three parts:
//! - **ids and time**: `sku("SOFA")`, `T0`, `secs(n)`;
//! - **scenario builders**: an event builder per kind with sensible defaults ([`E`]),
//!   and a [`World`] with a fixed clock that only moves when told (`w.at(secs)`),
//!   which gives every event a fresh deterministic id from a counter;
//! - **a generator** of realistic omnichannel traffic: [`Op`]s are sampled from a
//!   seeded [`Rng`] and rendered into a log of `(Event, LogTime)` records by
//!   [`render`], which resolves references to earlier holds, transfers and purchase
//!   orders. [`realistic_log`] is the seeded entry point (used by the benchmark);
//!   [`strategies`] wraps it for proptest, where shrinking removes operations.
//!
//! `benches/fold.rs` includes this file with `#[path]`; everything except
//! [`strategies`] (compiled for tests only) is plain Rust with no proptest types.

#![allow(dead_code)] // Each test crate (and the benchmark) uses a different subset.

use chrono::{DateTime, Utc};
use stockline_domain::{
    ChannelId, CustomerRef, DEDUPE_WINDOW_MS, DocumentId, DocumentKind, DocumentRef, Effect, Event,
    GroupId, Hold, HoldId, HoldKind, InvalidEvent, Ledger, LocationId, LocationKind, LogTime,
    OrderId, Outcome, Payload, Price, Quantities, ReasonCode, ReceiptKind, Rejection,
    ReturnDisposition, SCHEMA_VERSION, Sku, StockState, Verdict, fold,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// Ids and time.
// ---------------------------------------------------------------------------------

pub fn sku(s: &str) -> Sku {
    Sku::new(s).expect("test SKUs are valid ids")
}
pub fn loc(s: &str) -> LocationId {
    LocationId::new(s).expect("test location ids are valid ids")
}
pub fn ch(s: &str) -> ChannelId {
    ChannelId::new(s).expect("test channel ids are valid ids")
}
pub fn grp(s: &str) -> GroupId {
    GroupId::new(s).expect("test group ids are valid ids")
}
pub fn hid(s: &str) -> HoldId {
    HoldId::new(s).expect("test hold ids are valid ids")
}
pub fn doc_id(s: &str) -> DocumentId {
    DocumentId::new(s).expect("test document ids are valid ids")
}
pub fn cust(s: &str) -> CustomerRef {
    CustomerRef::new(s).expect("test customer refs are valid ids")
}
pub fn order(s: &str) -> OrderId {
    OrderId::new(s).expect("test order ids are valid ids")
}

/// Log time of the first record of every test: 2026-11-23T08:00:00Z.
pub const T0_MS: i64 = 1_795_420_800_000;

/// `T0 + seconds`, in log time.
pub fn secs(seconds: i64) -> LogTime {
    LogTime(T0_MS + seconds * 1_000)
}

/// A wall-clock instant for `occurred_at` fields, from log-time milliseconds.
pub fn wall(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("test instants are within chrono's range")
}

// ---------------------------------------------------------------------------------
// Event builders.
// ---------------------------------------------------------------------------------

/// An event under construction. Builders start from sensible defaults (a channel
/// that writes such facts, the documents and reasons the kind requires); the
/// methods change one thing. The event id is nil until [`World::when`] (or
/// [`E::id`]) gives it one.
#[derive(Debug, Clone)]
pub struct E(pub Event);

fn envelope(channel: &str, sku_: Option<&str>, location: Option<&str>, payload: Payload) -> E {
    E(Event {
        event_id: Uuid::nil(),
        schema_version: SCHEMA_VERSION,
        occurred_at: wall(T0_MS),
        channel: ch(channel),
        location: location.map(loc),
        sku: sku_.map(sku),
        document: None,
        reason: None,
        payload,
    })
}

fn document(kind: DocumentKind, id: &str) -> Option<DocumentRef> {
    Some(DocumentRef {
        kind,
        id: doc_id(id),
    })
}

impl E {
    /// The channel that writes the event.
    pub fn by(mut self, channel: &str) -> E {
        self.0.channel = ch(channel);
        self
    }
    /// The envelope location. For hold requests and waitlists this also clears the
    /// group: one names a location or a group.
    pub fn at(mut self, location: &str) -> E {
        self.0.location = Some(loc(location));
        self.set_group(None);
        self
    }
    /// "Any location of `group`" (hold requests and waitlists): clears the location.
    pub fn in_group(mut self, group: &str) -> E {
        self.0.location = None;
        self.set_group(Some(grp(group)));
        self
    }
    pub fn no_location(mut self) -> E {
        self.0.location = None;
        self
    }
    pub fn sku(mut self, s: &str) -> E {
        self.0.sku = Some(sku(s));
        self
    }
    pub fn no_sku(mut self) -> E {
        self.0.sku = None;
        self
    }
    pub fn document(mut self, kind: DocumentKind, id: &str) -> E {
        self.0.document = document(kind, id);
        self
    }
    pub fn no_document(mut self) -> E {
        self.0.document = None;
        self
    }
    pub fn reason(mut self, reason: ReasonCode) -> E {
        self.0.reason = Some(reason);
        self
    }
    pub fn no_reason(mut self) -> E {
        self.0.reason = None;
        self
    }
    pub fn schema_version(mut self, version: u16) -> E {
        self.0.schema_version = version;
        self
    }
    /// A fixed event id (to write a duplicate on purpose).
    pub fn id(mut self, n: u128) -> E {
        self.0.event_id = Uuid::from_u128(n);
        self
    }
    /// Location definitions: the display name.
    pub fn name(mut self, new_name: &str) -> E {
        match &mut self.0.payload {
            Payload::LocationDefined { name, .. } => *name = new_name.to_owned(),
            other => panic!("name() on {other:?}"),
        }
        self
    }
    /// Changes the quantity of payloads that carry one.
    pub fn qty(mut self, q: i64) -> E {
        match &mut self.0.payload {
            Payload::StockReceived { quantity, .. }
            | Payload::StockCounted { quantity }
            | Payload::StockStateChanged { quantity, .. }
            | Payload::TransferShipped { quantity, .. }
            | Payload::TransferReceived { quantity, .. }
            | Payload::IncomingExpected { quantity, .. }
            | Payload::TillSale { quantity, .. }
            | Payload::Returned { quantity, .. }
            | Payload::HoldRequested { quantity, .. }
            | Payload::WaitlistJoined { quantity, .. }
            | Payload::SafetyStockSet { quantity }
            | Payload::AllocationSet { quantity, .. } => *quantity = q,
            Payload::StockAdjusted { delta, .. } => *delta = q,
            other => panic!("qty() on a payload without a quantity: {other:?}"),
        }
        self
    }
    /// Hold requests: the time-to-live.
    pub fn ttl(mut self, seconds: u32) -> E {
        match &mut self.0.payload {
            Payload::HoldRequested { ttl_seconds, .. } => *ttl_seconds = seconds,
            other => panic!("ttl() on {other:?}"),
        }
        self
    }
    /// Hold requests: the kind of hold.
    pub fn kind(mut self, k: HoldKind) -> E {
        match &mut self.0.payload {
            Payload::HoldRequested { kind, .. } => *kind = k,
            other => panic!("kind() on {other:?}"),
        }
        self
    }
    /// Hold requests: click & collect (a pickup at a store).
    pub fn click_and_collect(self) -> E {
        self.kind(HoldKind::ClickAndCollect)
    }
    /// Hold requests: reserve in store, pay at the desk.
    pub fn reserve_in_store(self) -> E {
        self.kind(HoldKind::ReserveInStore)
    }
    /// Hold requests: the customer.
    pub fn customer(mut self, c: &str) -> E {
        match &mut self.0.payload {
            Payload::HoldRequested { customer_ref, .. } => *customer_ref = cust(c),
            other => panic!("customer() on {other:?}"),
        }
        self
    }
    /// Stock state (adjustments).
    pub fn state(mut self, s: StockState) -> E {
        match &mut self.0.payload {
            Payload::StockAdjusted { state, .. } => *state = s,
            other => panic!("state() on {other:?}"),
        }
        self
    }
    /// Returns: which channel sold the unit, and the order.
    pub fn sold_by(mut self, channel: &str, order_id: &str) -> E {
        match &mut self.0.payload {
            Payload::Returned {
                sold_by_channel,
                original_order,
                ..
            } => {
                *sold_by_channel = Some(ch(channel));
                *original_order = Some(order(order_id));
            }
            other => panic!("sold_by() on {other:?}"),
        }
        self
    }
    /// Till sales, returns and hold requests: the unit price.
    pub fn price(mut self, unit_minor: i64, currency: &str) -> E {
        let new = Some(Price {
            unit_minor,
            currency: currency.to_owned(),
        });
        match &mut self.0.payload {
            Payload::TillSale { price, .. }
            | Payload::Returned { price, .. }
            | Payload::HoldRequested { price, .. } => *price = new,
            other => panic!("price() on {other:?}"),
        }
        self
    }
    /// Receipts against a purchase order.
    pub fn against_po(self, po: &str) -> E {
        self.document(DocumentKind::PurchaseOrder, po)
    }
    pub fn event(self) -> Event {
        self.0
    }
    fn set_group(&mut self, g: Option<GroupId>) {
        match &mut self.0.payload {
            Payload::HoldRequested { group, .. } | Payload::WaitlistJoined { group, .. } => {
                *group = g;
            }
            _ => {}
        }
    }
}

pub fn received(s: &str, at: &str, quantity: i64) -> E {
    envelope(
        "wms",
        Some(s),
        Some(at),
        Payload::StockReceived {
            quantity,
            kind: ReceiptKind::Restock,
        },
    )
}

pub fn adjusted(s: &str, at: &str, delta: i64, reason: ReasonCode) -> E {
    envelope(
        "admin",
        Some(s),
        Some(at),
        Payload::StockAdjusted {
            delta,
            state: StockState::Sellable,
        },
    )
    .reason(reason)
    .document(DocumentKind::Adjustment, "adj-1")
}

pub fn counted(s: &str, at: &str, quantity: i64) -> E {
    envelope(
        "admin",
        Some(s),
        Some(at),
        Payload::StockCounted { quantity },
    )
    .document(DocumentKind::StockCount, "count-1")
}

pub fn state_changed(s: &str, at: &str, quantity: i64, from: StockState, to: StockState) -> E {
    envelope(
        "admin",
        Some(s),
        Some(at),
        Payload::StockStateChanged { quantity, from, to },
    )
    .reason(ReasonCode::QualityControl)
}

pub fn transfer_shipped(s: &str, from: &str, to: &str, quantity: i64, transfer: &str) -> E {
    envelope(
        "wms",
        Some(s),
        Some(from),
        Payload::TransferShipped {
            to_location: loc(to),
            quantity,
        },
    )
    .document(DocumentKind::Transfer, transfer)
}

pub fn transfer_received(s: &str, at: &str, from: &str, quantity: i64, transfer: &str) -> E {
    envelope(
        "wms",
        Some(s),
        Some(at),
        Payload::TransferReceived {
            from_location: loc(from),
            quantity,
        },
    )
    .document(DocumentKind::Transfer, transfer)
}

pub fn expected(s: &str, at: &str, quantity: i64, po: &str) -> E {
    envelope(
        "erp",
        Some(s),
        Some(at),
        Payload::IncomingExpected {
            quantity,
            expected_at: wall(T0_MS + 7 * 86_400_000),
        },
    )
    .against_po(po)
}

pub fn po_cancelled(s: &str, at: &str, po: &str) -> E {
    envelope("erp", Some(s), Some(at), Payload::IncomingCancelled {}).against_po(po)
}

pub fn till_sale(s: &str, at: &str, quantity: i64) -> E {
    envelope(
        "pos",
        Some(s),
        Some(at),
        Payload::TillSale {
            quantity,
            price: None,
        },
    )
    .document(DocumentKind::TillReceipt, "till-1")
}

pub fn returned(s: &str, at: &str, quantity: i64, disposition: ReturnDisposition) -> E {
    envelope(
        "pos",
        Some(s),
        Some(at),
        Payload::Returned {
            quantity,
            disposition,
            sold_by_channel: None,
            original_order: None,
            price: None,
        },
    )
    .document(DocumentKind::Return, "ret-1")
    .reason(ReasonCode::CustomerReturn)
}

/// A checkout hold of `quantity` units by `web`, 15 minutes TTL. Name where with
/// [`E::at`] or [`E::in_group`].
pub fn hold(hold_id: &str, s: &str, quantity: i64) -> E {
    envelope(
        "web",
        Some(s),
        None,
        Payload::HoldRequested {
            hold_id: hid(hold_id),
            order_id: order(&format!("order-{hold_id}")),
            order_line: 1,
            customer_ref: cust(&format!("cust-{hold_id}")),
            quantity,
            ttl_seconds: 900,
            kind: HoldKind::Checkout,
            group: None,
            price: None,
        },
    )
    .document(DocumentKind::Order, &format!("order-{hold_id}"))
}

fn lifecycle(s: &str, channel: &str, payload: Payload) -> E {
    envelope(channel, Some(s), None, payload)
}

pub fn confirm(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "web",
        Payload::HoldConfirmed {
            hold_id: hid(hold_id),
        },
    )
}
pub fn release(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "web",
        Payload::HoldReleased {
            hold_id: hid(hold_id),
        },
    )
}
pub fn ready(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "pos",
        Payload::HoldReadyForPickup {
            hold_id: hid(hold_id),
        },
    )
}
pub fn collected(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "pos",
        Payload::HoldCollected {
            hold_id: hid(hold_id),
        },
    )
}
pub fn no_show(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "pos",
        Payload::HoldNoShow {
            hold_id: hid(hold_id),
        },
    )
}
pub fn shipped(hold_id: &str, s: &str) -> E {
    lifecycle(
        s,
        "wms",
        Payload::HoldShipped {
            hold_id: hid(hold_id),
        },
    )
}

/// `customer` waits for `quantity` units of `s`. Name where with [`E::at`] or
/// [`E::in_group`].
pub fn waitlist_join(s: &str, customer: &str, quantity: i64) -> E {
    envelope(
        "app",
        Some(s),
        None,
        Payload::WaitlistJoined {
            customer_ref: cust(customer),
            quantity,
            group: None,
        },
    )
}

pub fn waitlist_leave(s: &str, customer: &str) -> E {
    envelope(
        "app",
        Some(s),
        None,
        Payload::WaitlistLeft {
            customer_ref: cust(customer),
        },
    )
}

pub fn location_defined(id: &str, kind: LocationKind, groups: &[&str], active: bool) -> E {
    envelope(
        "admin",
        None,
        Some(id),
        Payload::LocationDefined {
            name: format!("Location {id}"),
            kind,
            groups: groups.iter().map(|g| grp(g)).collect(),
            active,
        },
    )
}

pub fn channel_defined(id: &str, locations: &[&str], groups: &[&str], buffer: i64) -> E {
    envelope(
        "admin",
        None,
        None,
        Payload::ChannelDefined {
            channel: ch(id),
            locations: locations.iter().map(|l| loc(l)).collect(),
            groups: groups.iter().map(|g| grp(g)).collect(),
            buffer,
        },
    )
}

pub fn safety_stock(s: &str, at: &str, quantity: i64) -> E {
    envelope(
        "admin",
        Some(s),
        Some(at),
        Payload::SafetyStockSet { quantity },
    )
}

pub fn allocation(s: &str, at: &str, channel: &str, quantity: i64) -> E {
    envelope(
        "admin",
        Some(s),
        Some(at),
        Payload::AllocationSet {
            channel: ch(channel),
            quantity,
        },
    )
}

pub fn tick() -> E {
    envelope("ticker", None, None, Payload::Tick {})
}

// ---------------------------------------------------------------------------------
// The scenario world.
// ---------------------------------------------------------------------------------

pub const LYON_1: &str = "lyon-1";
pub const LYON_2: &str = "lyon-2";
pub const PARIS_1: &str = "paris-1";
pub const WH_LYON: &str = "wh-lyon";
pub const PARTNER: &str = "partner-1";

/// One partition's ledger, a clock that moves only when told, and the log so far.
pub struct World {
    pub ledger: Ledger,
    now: LogTime,
    next_id: u128,
    /// Every record folded, in order, with the outcome.
    pub log: Vec<(Event, LogTime, Outcome)>,
}

/// An empty ledger: no locations, no channels. The clock is at `T0`.
pub fn empty_world() -> World {
    World {
        ledger: Ledger::new(),
        now: secs(0),
        next_id: 0,
        log: Vec::new(),
    }
}

/// The standard retailer, configured at `T0`:
///
/// | location    | kind      | groups               |
/// |-------------|-----------|----------------------|
/// | `lyon-1`    | store     | lyon, stores         |
/// | `lyon-2`    | store     | lyon, stores         |
/// | `paris-1`   | store     | paris, stores        |
/// | `wh-lyon`   | warehouse | lyon, warehouses     |
/// | `partner-1` | partner   | partners             |
///
/// | channel       | sells from                 | buffer |
/// |---------------|----------------------------|--------|
/// | `web`, `app`  | stores, warehouses         | 0      |
/// | `pos`         | stores                     | 0      |
/// | `marketplace` | stores, warehouses         | 2      |
/// | `kiosk`       | `lyon-1` only              | 0      |
///
/// No stock anywhere.
pub fn world() -> World {
    let mut w = empty_world();
    w.given(location_defined(
        LYON_1,
        LocationKind::Store,
        &["lyon", "stores"],
        true,
    ));
    w.given(location_defined(
        LYON_2,
        LocationKind::Store,
        &["lyon", "stores"],
        true,
    ));
    w.given(location_defined(
        PARIS_1,
        LocationKind::Store,
        &["paris", "stores"],
        true,
    ));
    w.given(location_defined(
        WH_LYON,
        LocationKind::Warehouse,
        &["lyon", "warehouses"],
        true,
    ));
    w.given(location_defined(
        PARTNER,
        LocationKind::Partner,
        &["partners"],
        true,
    ));
    w.given(channel_defined("web", &[], &["stores", "warehouses"], 0));
    w.given(channel_defined("app", &[], &["stores", "warehouses"], 0));
    w.given(channel_defined("pos", &[], &["stores"], 0));
    w.given(channel_defined(
        "marketplace",
        &[],
        &["stores", "warehouses"],
        2,
    ));
    w.given(channel_defined("kiosk", &[LYON_1], &[], 0));
    w
}

impl World {
    /// Moves the clock to `T0 + seconds`. Records folded next carry that time (the
    /// clock may be set back: log time stays monotonic, that is one of the stories).
    pub fn at(&mut self, seconds: i64) -> &mut Self {
        self.now = secs(seconds);
        self
    }

    /// Moves the clock to an exact log time.
    pub fn at_time(&mut self, t: LogTime) -> &mut Self {
        self.now = t;
        self
    }

    /// The time the next record will carry.
    pub fn clock(&self) -> LogTime {
        self.now
    }

    /// Folds a fact that must apply (a precondition of the story).
    pub fn given(&mut self, e: E) -> Outcome {
        let out = self.when(e);
        assert_eq!(
            out.verdict,
            Verdict::Applied,
            "a `given` event must apply: {:?}",
            self.log.last().map(|(e, _, _)| e)
        );
        out
    }

    /// Folds an event at the current clock, giving it a fresh id unless it has one.
    pub fn when(&mut self, e: E) -> Outcome {
        let mut event = e.0;
        if event.event_id.is_nil() {
            self.next_id += 1;
            event.event_id =
                Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 + self.next_id);
        }
        event.occurred_at = self
            .now
            .to_datetime()
            .expect("the test clock is within range");
        self.replay(event)
    }

    /// Folds exactly this event (same id) at the current clock. Every fold of a
    /// story is followed by the ledger's own invariant check.
    pub fn replay(&mut self, event: Event) -> Outcome {
        let out = fold(&mut self.ledger, &event, self.now);
        if let Err(broken) = self.ledger.check_invariants() {
            panic!("invariant broken after {event:?}: {broken}");
        }
        self.log.push((event, self.now, out.clone()));
        out
    }

    /// The last event folded, as it was written (to send it again).
    pub fn last_event(&self) -> Event {
        self.log.last().expect("something was folded").0.clone()
    }

    pub fn q(&self, s: &str, at: &str) -> Quantities {
        self.ledger.quantities(&sku(s), &loc(at))
    }

    pub fn available(&self, s: &str, at: &str) -> i64 {
        self.q(s, at).available()
    }

    /// What `channel` may promise of `s` at `at`.
    pub fn view(&self, channel: &str, s: &str, at: &str) -> i64 {
        self.ledger
            .channel_available(&ch(channel), &sku(s), &loc(at))
    }

    pub fn hold(&self, id: &str) -> &Hold {
        self.ledger.hold(&hid(id)).expect("the hold exists")
    }

    /// Folds the recorded log again into a fresh ledger: the replay of the story.
    pub fn replayed(&self) -> (Ledger, Vec<Outcome>) {
        let mut ledger = Ledger::new();
        let outcomes = self
            .log
            .iter()
            .map(|(event, t, _)| fold(&mut ledger, event, *t))
            .collect();
        (ledger, outcomes)
    }
}

impl World {
    /// Folding the story's log again from nothing gives the same ledger and the same
    /// outcomes: the replay principle, checked at the end of a story.
    pub fn assert_replay_is_identical(&self) {
        let (ledger, outcomes) = self.replayed();
        assert_eq!(ledger, self.ledger, "replayed ledger differs");
        let live: Vec<&Outcome> = self.log.iter().map(|(_, _, o)| o).collect();
        let replayed: Vec<&Outcome> = outcomes.iter().collect();
        assert_eq!(replayed, live, "replayed outcomes differ");
    }
}

/// Reading outcomes.
pub trait OutcomeExt {
    fn assert_applied(&self) -> &Self;
    fn rejection(&self) -> &Rejection;
    fn invalid(&self) -> &InvalidEvent;
    fn is_duplicate(&self) -> bool;
    /// Where the hold was accepted.
    fn accepted_at(&self) -> LocationId;
    fn stock_changes(&self) -> Vec<(&Sku, &LocationId, Quantities, Quantities)>;
    fn shortfalls(&self) -> Vec<&Effect>;
    fn notifications(&self) -> Vec<&Effect>;
    fn hold_changes(&self) -> Vec<&Effect>;
}

impl OutcomeExt for Outcome {
    fn assert_applied(&self) -> &Self {
        assert_eq!(self.verdict, Verdict::Applied, "expected applied: {self:?}");
        self
    }
    fn rejection(&self) -> &Rejection {
        match &self.verdict {
            Verdict::Rejected { rejection } => rejection,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    fn invalid(&self) -> &InvalidEvent {
        match &self.verdict {
            Verdict::Invalid { invalid } => invalid,
            other => panic!("expected an invalid event, got {other:?}"),
        }
    }
    fn is_duplicate(&self) -> bool {
        self.verdict == Verdict::Duplicate
    }
    fn accepted_at(&self) -> LocationId {
        self.effects
            .iter()
            .find_map(|e| match e {
                Effect::HoldAccepted { location, .. } => Some(location.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("expected an accepted hold: {self:?}"))
    }
    fn stock_changes(&self) -> Vec<(&Sku, &LocationId, Quantities, Quantities)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::StockChanged {
                    sku,
                    location,
                    before,
                    after,
                    ..
                } => Some((sku, location, *before, *after)),
                _ => None,
            })
            .collect()
    }
    fn shortfalls(&self) -> Vec<&Effect> {
        self.effects
            .iter()
            .filter(|e| matches!(e, Effect::Shortfall { .. }))
            .collect()
    }
    fn notifications(&self) -> Vec<&Effect> {
        self.effects
            .iter()
            .filter(|e| matches!(e, Effect::WaitlistNotified { .. }))
            .collect()
    }
    fn hold_changes(&self) -> Vec<&Effect> {
        self.effects
            .iter()
            .filter(|e| matches!(e, Effect::HoldChanged { .. }))
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// Deterministic randomness.
// ---------------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        u32::try_from(self.next_u64() >> 32).expect("the top 32 bits fit a u32")
    }
    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).expect("lo <= hi");
        lo + i64::try_from(self.below(span)).expect("span fits i64")
    }
    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1_000) < per_mille
    }
}

/// A unit price in euro cents for two sales out of three (the third channel does
/// not send prices).
fn list_price(raw: u32) -> Option<Price> {
    (!raw.is_multiple_of(3)).then(|| Price {
        unit_minor: 499 + i64::from(raw % 150_000),
        currency: "EUR".to_owned(),
    })
}

fn pick<T>(raw: u32, items: &[T]) -> &T {
    let i = usize::try_from(raw).expect("u32 fits usize") % items.len();
    &items[i]
}

fn index(raw: u32, len: usize) -> usize {
    usize::try_from(raw).expect("u32 fits usize") % len
}

// ---------------------------------------------------------------------------------
// The traffic generator.
// ---------------------------------------------------------------------------------

/// The shape of a retailer, as seen by one partition.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub skus: usize,
    pub stores: usize,
    pub warehouses: usize,
    pub partners: usize,
    /// Regional groups the stores are spread over (each warehouse serves some).
    pub regions: usize,
    /// Customers (for holds and waitlists).
    pub customers: usize,
    pub pace: Pace,
}

/// How fast the generator's clock moves between records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Seconds between records, often quiet stretches of minutes, rarely hours, and
    /// now and then a week (event ids and closed holds are forgotten): most holds
    /// meet their TTL. For the properties.
    Sparse,
    /// A busy partition: a fraction of a second between records, now and then a
    /// quiet minute; 100k records span about a day and a half. For the benchmark.
    Busy,
}

impl Pace {
    /// Milliseconds between two records, from an operation's raw gap numbers.
    pub fn gap_ms(self, roll: u16, raw: u32) -> i64 {
        let raw = i64::from(raw);
        let hour = 3_600_000;
        match (self, roll) {
            (Pace::Sparse, 0..850) => raw % 15_000,
            (Pace::Sparse, 850..990) => 15_000 + raw % (30 * 60_000),
            (Pace::Sparse, 990..998) => 30 * 60_000 + raw % (36 * hour),
            (Pace::Sparse, _) => 6 * 24 * hour + raw % (2 * 24 * hour),
            (Pace::Busy, 0..950) => raw % 400,
            (Pace::Busy, 950..999) => 400 + raw % 20_000,
            (Pace::Busy, _) => 20_000 + raw % (20 * 60_000),
        }
    }
}

impl Mix {
    /// A few SKUs and locations so that channels collide on the same units: what the
    /// properties need.
    pub const SMALL: Mix = Mix {
        skus: 3,
        stores: 3,
        warehouses: 1,
        partners: 1,
        regions: 2,
        customers: 6,
        pace: Pace::Sparse,
    };
    /// One partition of a mid-size retailer: what the benchmark folds.
    pub const PARTITION: Mix = Mix {
        skus: 1_000,
        stores: 20,
        warehouses: 2,
        partners: 2,
        regions: 4,
        customers: 5_000,
        pace: Pace::Busy,
    };
}

/// One step of generated traffic. Fields are raw random numbers; [`render`] maps
/// them onto the mix's SKUs, locations and earlier documents, so any sequence of
/// `Op`s (and any sub-sequence, which is what shrinking produces) renders to a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// How far the generator's clock moves before this record: raw numbers that
    /// [`Pace::gap_ms`] turns into milliseconds (the mix decides the pace).
    pub gap: (u16, u32),
    /// How far behind the clock the record's timestamp is (0 for most records).
    pub skew_back_ms: u32,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Receive {
        sku: u32,
        loc: u32,
        qty: u8,
        against_po: Option<u32>,
    },
    Adjust {
        sku: u32,
        loc: u32,
        delta: i8,
        state: u8,
    },
    Count {
        sku: u32,
        loc: u32,
        qty: u8,
    },
    StateChange {
        sku: u32,
        loc: u32,
        qty: u8,
        from: u8,
        to: u8,
    },
    TransferShip {
        sku: u32,
        from: u32,
        to: u32,
        qty: u8,
    },
    TransferReceive {
        transfer: u32,
        qty: u8,
    },
    Expect {
        sku: u32,
        loc: u32,
        qty: u8,
    },
    CancelPo {
        po: u32,
    },
    TillSale {
        sku: u32,
        store: u32,
        qty: u8,
    },
    Return {
        sku: u32,
        loc: u32,
        qty: u8,
        disposition: u8,
        sold_by: u8,
    },
    Hold {
        sku: u32,
        target: u32,
        qty: u8,
        channel: u8,
        kind: u8,
        ttl: u8,
    },
    Lifecycle {
        hold: u32,
        action: u8,
        with_location: bool,
    },
    ReuseHoldId {
        hold: u32,
        sku: u32,
        loc: u32,
    },
    WaitJoin {
        sku: u32,
        target: u32,
        customer: u32,
        qty: u8,
    },
    WaitLeave {
        sku: u32,
        customer: u32,
    },
    SafetyStock {
        sku: u32,
        loc: u32,
        qty: u8,
    },
    Allocate {
        sku: u32,
        loc: u32,
        channel: u8,
        qty: u8,
    },
    Redefine {
        loc: u32,
        active: bool,
    },
    Tick,
    Duplicate {
        back: u32,
    },
    Malformed {
        which: u8,
    },
}

impl Op {
    /// Samples one step of realistic traffic.
    pub fn sample(rng: &mut Rng) -> Op {
        let r = |rng: &mut Rng| rng.next_u32();
        let small = |rng: &mut Rng, lo: i64, hi: i64| {
            u8::try_from(rng.range(lo, hi)).expect("small quantities fit u8")
        };
        // Per-mille weights of each kind of step.
        let roll = rng.below(1_000);
        let action = match roll {
            0..220 => Action::Hold {
                sku: r(rng),
                target: r(rng),
                // Mostly one unit; sometimes more; rarely a bad quantity.
                qty: match rng.below(100) {
                    0 => 0,
                    1..80 => 1,
                    80..95 => 2,
                    _ => small(rng, 3, 6),
                },
                channel: small(rng, 0, 255),
                kind: small(rng, 0, 255),
                ttl: small(rng, 0, 255),
            },
            220..520 => Action::Lifecycle {
                hold: r(rng),
                action: small(rng, 0, 255),
                with_location: rng.chance(300),
            },
            520..570 => Action::Receive {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 1, 12),
                against_po: rng.chance(300).then(|| r(rng)),
            },
            570..650 => Action::TillSale {
                sku: r(rng),
                store: r(rng),
                qty: if rng.chance(900) { 1 } else { 2 },
            },
            650..680 => Action::Return {
                sku: r(rng),
                loc: r(rng),
                qty: 1,
                disposition: small(rng, 0, 255),
                sold_by: small(rng, 0, 255),
            },
            680..695 => Action::Count {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 0, 15),
            },
            695..715 => Action::Adjust {
                sku: r(rng),
                loc: r(rng),
                delta: i8::try_from(if rng.chance(500) {
                    rng.range(1, 3)
                } else {
                    rng.range(-3, -1)
                })
                .expect("small deltas fit i8"),
                state: small(rng, 0, 255),
            },
            715..730 => Action::StateChange {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 1, 2),
                from: small(rng, 0, 255),
                to: small(rng, 0, 255),
            },
            730..750 => Action::TransferShip {
                sku: r(rng),
                from: r(rng),
                to: r(rng),
                qty: small(rng, 1, 4),
            },
            750..768 => Action::TransferReceive {
                transfer: r(rng),
                qty: small(rng, 1, 4),
            },
            768..782 => Action::Expect {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 5, 20),
            },
            782..786 => Action::CancelPo { po: r(rng) },
            786..812 => Action::WaitJoin {
                sku: r(rng),
                target: r(rng),
                customer: r(rng),
                qty: small(rng, 1, 2),
            },
            812..820 => Action::WaitLeave {
                sku: r(rng),
                customer: r(rng),
            },
            820..828 => Action::SafetyStock {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 0, 2),
            },
            828..840 => Action::Allocate {
                sku: r(rng),
                loc: r(rng),
                channel: small(rng, 0, 255),
                qty: small(rng, 0, 3),
            },
            840..842 => Action::Redefine {
                loc: r(rng),
                active: rng.chance(900),
            },
            842..872 => Action::Tick,
            872..902 => Action::Duplicate { back: r(rng) },
            902..913 => Action::ReuseHoldId {
                hold: r(rng),
                sku: r(rng),
                loc: r(rng),
            },
            913..920 => Action::Malformed {
                which: small(rng, 0, 255),
            },
            // The rest: a plain restock, the most common stock fact.
            _ => Action::Receive {
                sku: r(rng),
                loc: r(rng),
                qty: small(rng, 1, 6),
                against_po: None,
            },
        };
        let gap = (
            u16::try_from(rng.below(1_000)).expect("below 1000 fits u16"),
            rng.next_u32(),
        );
        let skew_back_ms = if rng.chance(100) {
            rng.range(1, 120_000)
        } else {
            0
        };
        Op {
            gap,
            skew_back_ms: u32::try_from(skew_back_ms).expect("skews fit u32"),
            action,
        }
    }
}

/// `n` steps of traffic from `seed`.
pub fn random_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| Op::sample(&mut rng)).collect()
}

/// A generated log: the configuration and opening stock, then the traffic.
#[derive(Debug, Clone)]
pub struct Generated {
    pub setup: Vec<(Event, LogTime)>,
    pub traffic: Vec<(Event, LogTime)>,
}

impl Generated {
    /// Setup then traffic, as one partition's log.
    pub fn records(&self) -> Vec<(Event, LogTime)> {
        self.setup.iter().chain(&self.traffic).cloned().collect()
    }
}

/// The seeded generator: `n` records of realistic traffic after the setup of `mix`.
pub fn realistic_log(mix: Mix, seed: u64, n: usize) -> Generated {
    render(mix, &random_ops(seed, n))
}

/// The channels of a generated world, with their hold kinds. `callcentre` is not
/// configured: its requests are rejected as unknown_channel.
const CHANNELS: [(&str, &[HoldKind]); 6] = [
    (
        "web",
        &[
            HoldKind::Checkout,
            HoldKind::Checkout,
            HoldKind::ClickAndCollect,
            HoldKind::ShipFromStore,
            HoldKind::ReserveInStore,
        ],
    ),
    (
        "app",
        &[
            HoldKind::Checkout,
            HoldKind::ClickAndCollect,
            HoldKind::ReserveInStore,
        ],
    ),
    (
        "marketplace",
        &[HoldKind::Checkout, HoldKind::ShipFromStore],
    ),
    (
        "pos",
        &[HoldKind::ReserveInStore, HoldKind::ClickAndCollect],
    ),
    (
        "kiosk",
        &[HoldKind::ClickAndCollect, HoldKind::ReserveInStore],
    ),
    ("callcentre", &[HoldKind::Checkout]),
];

/// Weights (out of 100) of the channels above.
const CHANNEL_WEIGHTS: [u8; 6] = [35, 25, 15, 12, 10, 3];

const TTLS: [u32; 8] = [60, 300, 900, 900, 1_800, 3_600, 7_200, 86_400];

/// Where the generator means to take a hold next. It does not fold, so it does not
/// know whether the hold was accepted or has expired: the fold will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Requested,
    Confirmed,
    Ready,
    Done,
}

struct HoldRef {
    id: HoldId,
    sku: Sku,
    location: Option<LocationId>,
    kind: HoldKind,
    stage: Stage,
}

/// Holds the generator still means to move on, most recent last. Older ones are
/// abandoned (they expire, like real abandoned checkouts).
const OPEN_HOLDS_MAX: usize = 256;

struct TransferRef {
    doc: DocumentId,
    sku: Sku,
    from: LocationId,
    to: LocationId,
    shipped: u8,
}

struct PoRef {
    doc: DocumentId,
    sku: Sku,
    location: LocationId,
}

struct Renderer {
    mix: Mix,
    skus: Vec<Sku>,
    stores: Vec<LocationId>,
    warehouses: Vec<LocationId>,
    partners: Vec<LocationId>,
    all: Vec<LocationId>,
    /// Locations that hold sellable stock and ship: stores and warehouses.
    stocked: Vec<LocationId>,
    groups: Vec<GroupId>,
    channels: Vec<ChannelId>,
    customers: Vec<CustomerRef>,
    next_id: u128,
    id_base: u128,
    clock: i64,
    /// The generator folds what it writes, to hear the answers a channel hears.
    feedback: Ledger,
    holds: Vec<HoldRef>,
    /// The hold the action being rendered requests, if it does.
    requested: Option<usize>,
    /// Indexes into `holds` of the holds not yet `Done`.
    open: std::collections::VecDeque<usize>,
    /// Per channel (in `CHANNELS` order): the locations, the stores, and the groups
    /// it sells from.
    sells: Vec<Vec<LocationId>>,
    sells_stores: Vec<Vec<LocationId>>,
    sells_groups: Vec<Vec<GroupId>>,
    transfers: Vec<TransferRef>,
    pos: Vec<PoRef>,
    waiting: Vec<(Sku, CustomerRef)>,
    out: Vec<(Event, LogTime)>,
}

impl Renderer {
    fn new(mix: Mix) -> Self {
        let skus = (0..mix.skus).map(|i| sku(&format!("sku-{i:05}"))).collect();
        let stores: Vec<_> = (0..mix.stores)
            .map(|i| loc(&format!("st-{i:03}")))
            .collect();
        let warehouses: Vec<_> = (0..mix.warehouses)
            .map(|i| loc(&format!("wh-{i:02}")))
            .collect();
        let partners: Vec<_> = (0..mix.partners)
            .map(|i| loc(&format!("pt-{i:02}")))
            .collect();
        let all = stores
            .iter()
            .chain(&warehouses)
            .chain(&partners)
            .cloned()
            .collect();
        let stocked = stores.iter().chain(&warehouses).cloned().collect();
        let mut groups: Vec<_> = (0..mix.regions)
            .map(|i| grp(&format!("region-{i}")))
            .collect();
        groups.extend(["stores", "warehouses", "partners"].map(grp));
        Renderer {
            mix,
            skus,
            stores,
            warehouses,
            partners,
            all,
            stocked,
            groups,
            channels: CHANNELS.iter().map(|(c, _)| ch(c)).collect(),
            customers: (0..mix.customers)
                .map(|i| cust(&format!("cust-{i:05}")))
                .collect(),
            next_id: 0,
            id_base: 0x6e6e_0000_0000_0000_0000_0000_0000_0000,
            clock: T0_MS,
            feedback: Ledger::new(),
            holds: Vec::new(),
            requested: None,
            open: std::collections::VecDeque::new(),
            sells: Vec::new(),
            sells_stores: Vec::new(),
            sells_groups: Vec::new(),
            transfers: Vec::new(),
            pos: Vec::new(),
            waiting: Vec::new(),
            out: Vec::new(),
        }
    }

    fn event(
        &mut self,
        channel: &ChannelId,
        sku: Option<&Sku>,
        location: Option<&LocationId>,
        document: Option<DocumentRef>,
        reason: Option<ReasonCode>,
        payload: Payload,
    ) -> Event {
        self.next_id += 1;
        Event {
            event_id: Uuid::from_u128(self.id_base + self.next_id),
            schema_version: SCHEMA_VERSION,
            occurred_at: wall(self.clock),
            channel: channel.clone(),
            location: location.cloned(),
            sku: sku.cloned(),
            document,
            reason,
            payload,
        }
    }

    /// Popular SKUs sell more: the smaller of two uniform picks.
    fn sku(&self, raw: u32) -> Sku {
        let a = index(raw, self.skus.len());
        let b = index(raw.rotate_left(16), self.skus.len());
        self.skus[a.min(b)].clone()
    }

    fn channel(&self, raw: u8) -> (usize, ChannelId) {
        let mut roll = raw % 100;
        for (i, w) in CHANNEL_WEIGHTS.iter().enumerate() {
            if roll < *w {
                return (i, self.channels[i].clone());
            }
            roll -= w;
        }
        (0, self.channels[0].clone())
    }

    fn setup(&mut self) -> Vec<(Event, LogTime)> {
        let admin = ch("admin");
        let t = LogTime(self.clock);
        let mut events = Vec::new();
        let regions = self.mix.regions.max(1);
        let region = |i: usize| grp(&format!("region-{}", i % regions));
        let mut defs: Vec<(LocationId, LocationKind, Vec<GroupId>)> = Vec::new();
        for (i, s) in self.stores.iter().enumerate() {
            defs.push((
                s.clone(),
                LocationKind::Store,
                vec![region(i), grp("stores")],
            ));
        }
        for (i, w) in self.warehouses.iter().enumerate() {
            // A warehouse serves two regions.
            defs.push((
                w.clone(),
                LocationKind::Warehouse,
                vec![region(i), region(i + 1), grp("warehouses")],
            ));
        }
        for p in &self.partners {
            defs.push((p.clone(), LocationKind::Partner, vec![grp("partners")]));
        }
        for (id, kind, groups) in defs.clone() {
            let e = self.event(
                &admin,
                None,
                Some(&id),
                None,
                None,
                Payload::LocationDefined {
                    name: format!("Location {id}"),
                    kind,
                    groups,
                    active: true,
                },
            );
            events.push((e, t));
        }
        let channel_defs: [(&str, Vec<LocationId>, Vec<GroupId>, i64); 5] = [
            ("web", vec![], vec![grp("stores"), grp("warehouses")], 0),
            ("app", vec![], vec![grp("stores"), grp("warehouses")], 0),
            (
                "marketplace",
                vec![],
                vec![grp("warehouses"), grp("partners"), region(0)],
                2,
            ),
            ("pos", vec![], vec![grp("stores")], 0),
            (
                "kiosk",
                self.stores.iter().take(2).cloned().collect(),
                vec![region(1)],
                1,
            ),
        ];
        self.sells = Vec::new();
        self.sells_stores = Vec::new();
        self.sells_groups = Vec::new();
        for (name, _) in CHANNELS {
            let def = channel_defs.iter().find(|(c, ..)| *c == name);
            let (mut sells, mut stores, mut groups) = (Vec::new(), Vec::new(), Vec::new());
            if let Some((_, locations, channel_groups, _)) = def {
                groups.clone_from(channel_groups);
                for (id, kind, location_groups) in &defs {
                    if locations.contains(id)
                        || location_groups.iter().any(|g| channel_groups.contains(g))
                    {
                        sells.push(id.clone());
                        if *kind == LocationKind::Store {
                            stores.push(id.clone());
                        }
                    }
                }
            }
            self.sells.push(sells);
            self.sells_stores.push(stores);
            self.sells_groups.push(groups);
        }
        for (channel, locations, groups, buffer) in channel_defs {
            let e = self.event(
                &admin,
                None,
                None,
                None,
                None,
                Payload::ChannelDefined {
                    channel: ch(channel),
                    locations,
                    groups,
                    buffer,
                },
            );
            events.push((e, t));
        }
        // Opening stock: most SKUs at most stocked locations, a little of each.
        let wms = ch("wms");
        for si in 0..self.skus.len() {
            for li in 0..self.stocked.len() {
                let quantity = i64::try_from((si * 7 + li * 3) % 9).expect("small");
                if quantity == 0 {
                    continue;
                }
                let (s, l) = (self.skus[si].clone(), self.stocked[li].clone());
                let e = self.event(
                    &wms,
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::StockReceived {
                        quantity,
                        kind: ReceiptKind::InitialLoad,
                    },
                );
                events.push((e, t));
            }
            // Some safety stock, and web-only units at the first warehouse.
            if si % 5 == 0 {
                let (s, l) = (
                    self.skus[si].clone(),
                    self.stocked[si % self.stocked.len()].clone(),
                );
                let e = self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::SafetyStockSet { quantity: 1 },
                );
                events.push((e, t));
            }
            if si % 4 == 0
                && let Some(w) = self.warehouses.first().cloned()
            {
                let s = self.skus[si].clone();
                let e = self.event(
                    &admin,
                    Some(&s),
                    Some(&w),
                    None,
                    None,
                    Payload::AllocationSet {
                        channel: ch("web"),
                        quantity: 2,
                    },
                );
                events.push((e, t));
            }
        }
        events
    }

    fn render(&mut self, op: &Op) {
        let gap = self.mix.pace.gap_ms(op.gap.0, op.gap.1);
        self.clock += gap;
        // A quiet week ends exactly when the oldest closed hold or remembered event
        // id reaches the end of the dedupe window, or one millisecond later: the two
        // sides of the boundary where they must be forgotten.
        if gap >= DEDUPE_WINDOW_MS - 86_400_000 {
            let oldest = [
                self.feedback.closed_holds().front().map(|(t, _)| *t),
                self.feedback.seen().iter().next().map(|(t, _)| *t),
            ];
            let boundary = oldest
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.millis() + DEDUPE_WINDOW_MS + i64::from(op.gap.1 % 2));
            if let Some(boundary) = boundary
                && boundary > self.clock - gap
            {
                self.clock = boundary;
            }
        }
        let mut record_time = LogTime(self.clock - i64::from(op.skew_back_ms));
        // Half the ticks land on the next expiry instant, if it has come, or one
        // millisecond before it: the two sides of the boundary where a hold must go.
        if op.action == Action::Tick
            && op.gap.1 % 4 < 2
            && let Some((due, _)) = self.feedback.expiries().first()
            && due.millis() <= self.clock
        {
            record_time = if op.gap.1.is_multiple_of(4) {
                *due
            } else {
                due.minus_millis(1)
            };
        }
        let Some(event) = self.action(&op.action) else {
            return;
        };
        // A channel hears back synchronously: it knows where a hold was taken, and
        // it does not move on a hold that was refused.
        let out = fold(&mut self.feedback, &event, record_time);
        if let Some(i) = self.requested.take() {
            let accepted = out.effects.iter().find_map(|e| match e {
                Effect::HoldAccepted { location, .. } => Some(location.clone()),
                _ => None,
            });
            match accepted {
                Some(location) => self.holds[i].location = Some(location),
                None => {
                    self.holds[i].stage = Stage::Done;
                    self.open.retain(|&o| o != i);
                }
            }
        }
        self.out.push((event, record_time));
    }

    fn action(&mut self, action: &Action) -> Option<Event> {
        let wms = ch("wms");
        let pos = ch("pos");
        let admin = ch("admin");
        Some(match *action {
            Action::Receive {
                sku,
                loc,
                qty,
                against_po,
            } => {
                let (s, l, document, kind) = match against_po {
                    Some(po) if !self.pos.is_empty() => {
                        let p = &self.pos[index(po, self.pos.len())];
                        let document = Some(DocumentRef {
                            kind: DocumentKind::PurchaseOrder,
                            id: p.doc.clone(),
                        });
                        (
                            p.sku.clone(),
                            p.location.clone(),
                            document,
                            ReceiptKind::PurchaseOrder,
                        )
                    }
                    _ => (
                        self.sku(sku),
                        pick(loc, &self.stocked).clone(),
                        None,
                        ReceiptKind::Restock,
                    ),
                };
                self.event(
                    &wms,
                    Some(&s),
                    Some(&l),
                    document,
                    None,
                    Payload::StockReceived {
                        quantity: i64::from(qty),
                        kind,
                    },
                )
            }
            Action::Adjust {
                sku,
                loc,
                delta,
                state,
            } => {
                let (s, l) = (self.sku(sku), pick(loc, &self.all).clone());
                let (state, reason) = match state % 10 {
                    0 => (StockState::Damaged, ReasonCode::Damage),
                    1 => (StockState::QualityControl, ReasonCode::QualityControl),
                    2 | 3 => (StockState::Sellable, ReasonCode::Theft),
                    4 => (StockState::Sellable, ReasonCode::Found),
                    _ => (StockState::Sellable, ReasonCode::Correction),
                };
                self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    None,
                    Some(reason),
                    Payload::StockAdjusted {
                        delta: i64::from(delta),
                        state,
                    },
                )
            }
            Action::Count { sku, loc, qty } => {
                let (s, l) = (self.sku(sku), pick(loc, &self.stocked).clone());
                let id = doc_id(&format!("count-{}", self.next_id));
                self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    Some(DocumentRef {
                        kind: DocumentKind::StockCount,
                        id,
                    }),
                    None,
                    Payload::StockCounted {
                        quantity: i64::from(qty),
                    },
                )
            }
            Action::StateChange {
                sku,
                loc,
                qty,
                from,
                to,
            } => {
                let states = [
                    StockState::Sellable,
                    StockState::Damaged,
                    StockState::QualityControl,
                ];
                let from_i = usize::from(from % 3);
                let from = states[from_i];
                // Mostly a different state; rarely the same one (invalid: same_state).
                let to = if to % 50 == 0 {
                    from
                } else {
                    states[(from_i + 1 + usize::from(to % 2)) % 3]
                };
                let (s, l) = (self.sku(sku), pick(loc, &self.stocked).clone());
                self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    None,
                    Some(ReasonCode::QualityControl),
                    Payload::StockStateChanged {
                        quantity: i64::from(qty),
                        from,
                        to,
                    },
                )
            }
            Action::TransferShip { sku, from, to, qty } => {
                let s = self.sku(sku);
                let from_i = index(from, self.stocked.len());
                let mut to_i = index(to, self.stocked.len());
                if to_i == from_i {
                    to_i = (to_i + 1) % self.stocked.len();
                }
                let (from_l, to_l) = (self.stocked[from_i].clone(), self.stocked[to_i].clone());
                let doc = doc_id(&format!("tr-{}", self.transfers.len()));
                self.transfers.push(TransferRef {
                    doc: doc.clone(),
                    sku: s.clone(),
                    from: from_l.clone(),
                    to: to_l.clone(),
                    shipped: qty,
                });
                self.event(
                    &wms,
                    Some(&s),
                    Some(&from_l),
                    Some(DocumentRef {
                        kind: DocumentKind::Transfer,
                        id: doc,
                    }),
                    None,
                    Payload::TransferShipped {
                        to_location: to_l,
                        quantity: i64::from(qty),
                    },
                )
            }
            Action::TransferReceive { transfer, qty } => {
                if self.transfers.is_empty() {
                    return None;
                }
                let t = &self.transfers[index(transfer, self.transfers.len())];
                let (s, from, to, doc) =
                    (t.sku.clone(), t.from.clone(), t.to.clone(), t.doc.clone());
                // Usually what was shipped; sometimes a partial or an over-receipt.
                let quantity = if qty % 4 == 0 {
                    i64::from(qty)
                } else {
                    i64::from(t.shipped)
                };
                self.event(
                    &wms,
                    Some(&s),
                    Some(&to),
                    Some(DocumentRef {
                        kind: DocumentKind::Transfer,
                        id: doc,
                    }),
                    None,
                    Payload::TransferReceived {
                        from_location: from,
                        quantity,
                    },
                )
            }
            Action::Expect { sku, loc, qty } => {
                let s = self.sku(sku);
                // Purchase orders mostly go to warehouses.
                let l = if loc % 4 == 0 {
                    pick(loc >> 2, &self.stores).clone()
                } else {
                    pick(loc >> 2, &self.warehouses).clone()
                };
                let doc = doc_id(&format!("po-{}", self.pos.len()));
                self.pos.push(PoRef {
                    doc: doc.clone(),
                    sku: s.clone(),
                    location: l.clone(),
                });
                let expected_at = wall(self.clock + 5 * 86_400_000);
                self.event(
                    &ch("erp"),
                    Some(&s),
                    Some(&l),
                    Some(DocumentRef {
                        kind: DocumentKind::PurchaseOrder,
                        id: doc,
                    }),
                    None,
                    Payload::IncomingExpected {
                        quantity: i64::from(qty),
                        expected_at,
                    },
                )
            }
            Action::CancelPo { po } => {
                if self.pos.is_empty() {
                    return None;
                }
                let p = &self.pos[index(po, self.pos.len())];
                let (s, l, doc) = (p.sku.clone(), p.location.clone(), p.doc.clone());
                self.event(
                    &ch("erp"),
                    Some(&s),
                    Some(&l),
                    Some(DocumentRef {
                        kind: DocumentKind::PurchaseOrder,
                        id: doc,
                    }),
                    None,
                    Payload::IncomingCancelled {},
                )
            }
            Action::TillSale { sku, store, qty } => {
                let (s, l) = (self.sku(sku), pick(store, &self.stores).clone());
                let id = doc_id(&format!("till-{}", self.next_id));
                self.event(
                    &pos,
                    Some(&s),
                    Some(&l),
                    Some(DocumentRef {
                        kind: DocumentKind::TillReceipt,
                        id,
                    }),
                    None,
                    Payload::TillSale {
                        quantity: i64::from(qty),
                        price: list_price(sku ^ store),
                    },
                )
            }
            Action::Return {
                sku,
                loc,
                qty,
                disposition,
                sold_by,
            } => {
                // Returns come back to stores mostly, whichever channel sold the unit.
                let l = if loc % 5 == 0 {
                    pick(loc, &self.all).clone()
                } else {
                    pick(loc, &self.stores).clone()
                };
                let s = self.sku(sku);
                let disposition = match disposition % 10 {
                    0..6 => ReturnDisposition::Restock,
                    6 => ReturnDisposition::Damaged,
                    7 | 8 => ReturnDisposition::QualityControl,
                    _ => ReturnDisposition::Discard,
                };
                let (_, sold_by) = self.channel(sold_by);
                self.event(
                    &pos,
                    Some(&s),
                    Some(&l),
                    None,
                    Some(ReasonCode::CustomerReturn),
                    Payload::Returned {
                        quantity: i64::from(qty),
                        disposition,
                        sold_by_channel: Some(sold_by),
                        original_order: None,
                        price: list_price(sku ^ loc),
                    },
                )
            }
            Action::Hold {
                sku,
                target,
                qty,
                channel,
                kind,
                ttl,
            } => {
                let s = self.sku(sku);
                let (ci, channel) = self.channel(channel);
                let kind = *pick(u32::from(kind), CHANNELS[ci].1);
                // Rarely a TTL out of range.
                let ttl_seconds = if ttl == 255 {
                    0
                } else {
                    *pick(u32::from(ttl), &TTLS)
                };
                // Mostly where the channel sells (stores, for pickups); sometimes
                // any location or group, which the fold refuses one way or another.
                let mine = if kind.is_pickup() {
                    &self.sells_stores[ci]
                } else {
                    &self.sells[ci]
                };
                let (location, group) = match target % 20 {
                    0..3 if !self.sells_groups[ci].is_empty() => (
                        None,
                        Some(pick(target / 20, &self.sells_groups[ci]).clone()),
                    ),
                    0..4 => (None, Some(pick(target / 20, &self.groups).clone())),
                    4..19 if !mine.is_empty() => (Some(pick(target / 20, mine).clone()), None),
                    _ => (Some(pick(target / 20, &self.all).clone()), None),
                };
                let n = self.holds.len();
                let hold_id = hid(&format!("h-{n}"));
                self.holds.push(HoldRef {
                    id: hold_id.clone(),
                    sku: s.clone(),
                    location: location.clone(),
                    kind,
                    stage: Stage::Requested,
                });
                self.open.push_back(n);
                self.requested = Some(n);
                if self.open.len() > OPEN_HOLDS_MAX {
                    self.open.pop_front();
                }
                let customer = pick(target, &self.customers).clone();
                self.event(
                    &channel,
                    Some(&s),
                    location.as_ref(),
                    Some(DocumentRef {
                        kind: DocumentKind::Order,
                        id: doc_id(&format!("o-{n}")),
                    }),
                    None,
                    Payload::HoldRequested {
                        hold_id,
                        order_id: order(&format!("o-{n}")),
                        order_line: 1,
                        customer_ref: customer,
                        quantity: i64::from(qty),
                        ttl_seconds,
                        kind,
                        group,
                        price: list_price(sku ^ target),
                    },
                )
            }
            Action::Lifecycle {
                hold,
                action,
                with_location,
            } => {
                if self.holds.is_empty() {
                    return None;
                }
                // Mostly the next step of a recent hold the generator still means
                // to move on; sometimes any hold, closed or expired ones included.
                let n = self.holds.len();
                let open_at = (!self.open.is_empty() && hold % 10 != 0).then(|| {
                    let k = self.open.len();
                    k - 1 - index(hold >> 4, k.min(32))
                });
                let i = open_at.map_or_else(|| index(hold >> 4, n), |j| self.open[j]);
                let h = &self.holds[i];
                let (id, s, location, kind, stage) = (
                    h.id.clone(),
                    h.sku.clone(),
                    h.location.clone(),
                    h.kind,
                    h.stage,
                );
                let step = next_step(kind, stage, action % 100);
                let stage = match step {
                    Step::Confirm if stage == Stage::Requested => Stage::Confirmed,
                    Step::Ready => Stage::Ready,
                    Step::Collect | Step::NoShow | Step::Release | Step::Ship => Stage::Done,
                    _ => stage,
                };
                self.holds[i].stage = stage;
                if stage == Stage::Done
                    && let Some(j) = self.open.iter().position(|&o| o == i)
                {
                    self.open.remove(j);
                }
                let payload = match step {
                    Step::Confirm => Payload::HoldConfirmed { hold_id: id },
                    Step::Ready => Payload::HoldReadyForPickup { hold_id: id },
                    Step::Collect => Payload::HoldCollected { hold_id: id },
                    Step::NoShow => Payload::HoldNoShow { hold_id: id },
                    Step::Release => Payload::HoldReleased { hold_id: id },
                    Step::Ship => Payload::HoldShipped { hold_id: id },
                };
                let channel = if kind.is_pickup() {
                    pos.clone()
                } else {
                    ch("web")
                };
                // Rarely the wrong SKU (sku_mismatch).
                let s = if action == 255 { self.sku(hold) } else { s };
                // Sometimes named, as a store's scanner does; now and then at the
                // wrong store (location_mismatch).
                let location = match (with_location, hold % 8) {
                    (false, _) => None,
                    (true, 0) => Some(pick(hold >> 3, &self.stocked).clone()),
                    (true, _) => location,
                };
                self.event(&channel, Some(&s), location.as_ref(), None, None, payload)
            }
            Action::ReuseHoldId { hold, sku, loc } => {
                if self.holds.is_empty() {
                    return None;
                }
                let id = self.holds[index(hold, self.holds.len())].id.clone();
                let (s, l) = (self.sku(sku), pick(loc, &self.stocked).clone());
                self.event(
                    &ch("app"),
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::HoldRequested {
                        hold_id: id,
                        order_id: order("o-reused"),
                        order_line: 2,
                        customer_ref: cust("cust-reuse"),
                        quantity: 1,
                        ttl_seconds: 600,
                        kind: HoldKind::Checkout,
                        group: None,
                        price: None,
                    },
                )
            }
            Action::WaitJoin {
                sku,
                target,
                customer,
                qty,
            } => {
                let s = self.sku(sku);
                let c = pick(customer, &self.customers).clone();
                let (location, group) = if target % 3 == 0 {
                    (None, Some(pick(target / 3, &self.groups).clone()))
                } else {
                    (Some(pick(target / 3, &self.stores).clone()), None)
                };
                self.waiting.push((s.clone(), c.clone()));
                self.event(
                    &ch("app"),
                    Some(&s),
                    location.as_ref(),
                    None,
                    None,
                    Payload::WaitlistJoined {
                        customer_ref: c,
                        quantity: i64::from(qty),
                        group,
                    },
                )
            }
            Action::WaitLeave { sku, customer } => {
                // Mostly someone who joined; sometimes someone who never did.
                let (s, c) = if !self.waiting.is_empty() && customer % 5 != 0 {
                    self.waiting[index(customer, self.waiting.len())].clone()
                } else {
                    (self.sku(sku), pick(customer, &self.customers).clone())
                };
                self.event(
                    &ch("app"),
                    Some(&s),
                    None,
                    None,
                    None,
                    Payload::WaitlistLeft { customer_ref: c },
                )
            }
            Action::SafetyStock { sku, loc, qty } => {
                let (s, l) = (self.sku(sku), pick(loc, &self.stocked).clone());
                self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::SafetyStockSet {
                        quantity: i64::from(qty),
                    },
                )
            }
            Action::Allocate {
                sku,
                loc,
                channel,
                qty,
            } => {
                let (s, l) = (self.sku(sku), pick(loc, &self.stocked).clone());
                let (_, channel) = self.channel(channel);
                self.event(
                    &admin,
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::AllocationSet {
                        channel,
                        quantity: i64::from(qty),
                    },
                )
            }
            Action::Redefine { loc, active } => {
                // A store closes for a while, or reopens.
                let l = pick(loc, &self.stores).clone();
                let i = self.stores.iter().position(|s| s == &l).expect("a store");
                let groups = vec![
                    grp(&format!("region-{}", i % self.mix.regions.max(1))),
                    grp("stores"),
                ];
                self.event(
                    &admin,
                    None,
                    Some(&l),
                    None,
                    None,
                    Payload::LocationDefined {
                        name: format!("Location {l}"),
                        kind: LocationKind::Store,
                        groups,
                        active,
                    },
                )
            }
            Action::Tick => self.event(&ch("ticker"), None, None, None, None, Payload::Tick {}),
            Action::Duplicate { back } => {
                // A producer retry: the same event (same id) again.
                if self.out.is_empty() {
                    return None;
                }
                let n = self.out.len();
                let i = n - 1 - index(back, n.min(64));
                self.out[i].0.clone()
            }
            Action::Malformed { which } => {
                let s = self.skus[0].clone();
                let l = self.stores[0].clone();
                let mut e = self.event(
                    &pos,
                    Some(&s),
                    Some(&l),
                    None,
                    None,
                    Payload::TillSale {
                        quantity: 1,
                        price: None,
                    },
                );
                // What a misconfigured or buggy sender writes: each of these is
                // refused, dead-lettered or answered with a rejection.
                let hold = |group: Option<GroupId>| Payload::HoldRequested {
                    hold_id: hid(&format!("bad-{which}")),
                    order_id: order("o-bad"),
                    order_line: 1,
                    customer_ref: cust("cust-bad"),
                    quantity: 1,
                    ttl_seconds: 600,
                    kind: HoldKind::Checkout,
                    group,
                    price: None,
                };
                let transfer = |id: &str| {
                    Some(DocumentRef {
                        kind: DocumentKind::Transfer,
                        id: doc_id(id),
                    })
                };
                match which % 16 {
                    0 => e.sku = None,
                    1 => e.location = Some(loc("nowhere")),
                    2 => e.schema_version = SCHEMA_VERSION + 1,
                    3 => {
                        e.payload = Payload::TillSale {
                            quantity: 0,
                            price: None,
                        };
                    }
                    4 => {
                        e.payload = Payload::TransferShipped {
                            to_location: self.stores[self.stores.len() - 1].clone(),
                            quantity: 1,
                        };
                    }
                    5 => {
                        e.payload = Payload::StockAdjusted {
                            delta: -1,
                            state: StockState::Damaged,
                        };
                    }
                    6 => {
                        e.channel = ch("web");
                        e.location = Some(loc("nowhere"));
                        e.payload = hold(None);
                    }
                    7 | 8 => {
                        e.channel = ch("web");
                        e.location = None;
                        e.payload = hold(Some(grp("mars")));
                        if which % 16 == 8 {
                            e.payload = Payload::WaitlistJoined {
                                customer_ref: cust("cust-bad"),
                                quantity: 1,
                                group: Some(grp("mars")),
                            };
                        }
                    }
                    9 => {
                        // Both a location and a group.
                        e.channel = ch("web");
                        e.payload = hold(Some(grp("stores")));
                    }
                    10 => {
                        e.payload = Payload::TillSale {
                            quantity: 1,
                            price: Some(Price {
                                unit_minor: 1_999,
                                currency: "euro".to_owned(),
                            }),
                        };
                    }
                    11 => {
                        e.document = transfer("tr-self");
                        e.payload = Payload::TransferShipped {
                            to_location: l.clone(),
                            quantity: 1,
                        };
                    }
                    12 => {
                        e.document = Some(DocumentRef {
                            kind: DocumentKind::PurchaseOrder,
                            id: doc_id("po-x"),
                        });
                        e.payload = Payload::TransferReceived {
                            from_location: self.stores[self.stores.len() - 1].clone(),
                            quantity: 1,
                        };
                    }
                    13 => {
                        // A receipt of a known transfer from the wrong origin.
                        let t = self.transfers.first()?;
                        let wrong = self.stocked.iter().find(|x| **x != t.from && **x != t.to);
                        let wrong = wrong.cloned()?;
                        e.sku = Some(t.sku.clone());
                        e.location = Some(t.to.clone());
                        e.document = transfer(t.doc.as_str());
                        e.payload = Payload::TransferReceived {
                            from_location: wrong,
                            quantity: 1,
                        };
                    }
                    14 => {
                        e.sku = None;
                        e.payload = Payload::LocationDefined {
                            name: String::new(),
                            kind: LocationKind::Store,
                            groups: vec![],
                            active: true,
                        };
                    }
                    _ => {
                        e.channel = ch("app");
                        e.location = Some(loc("nowhere"));
                        e.payload = Payload::WaitlistJoined {
                            customer_ref: cust("cust-bad"),
                            quantity: 1,
                            group: None,
                        };
                    }
                }
                e
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Confirm,
    Ready,
    Collect,
    NoShow,
    Release,
    Ship,
}

/// What usually happens next to a hold of `kind` at `stage` (`roll` in 0..100).
/// Now and then something that does not fit (a second confirm, a pickup step on a
/// checkout, a step on a finished hold): the fold's rejections are part of the mix.
fn next_step(kind: HoldKind, stage: Stage, roll: u8) -> Step {
    use Step::*;
    const ANY: [Step; 6] = [Confirm, Ready, Collect, NoShow, Release, Ship];
    match (kind.is_pickup(), stage) {
        (_, Stage::Done) => ANY[usize::from(roll) % ANY.len()],
        (true, Stage::Requested) => match roll {
            0..45 => Confirm,
            45..70 => Ready,
            70..85 => Release,
            85..93 => Collect,
            93..97 => NoShow,
            _ => Ship,
        },
        (true, Stage::Confirmed) => match roll {
            0..70 => Ready,
            70..80 => Release,
            80..90 => Collect,
            90..95 => Ship,
            _ => Confirm,
        },
        (true, Stage::Ready) => match roll {
            0..70 => Collect,
            70..92 => NoShow,
            92..97 => Release,
            _ => Ready,
        },
        (false, Stage::Requested) => match roll {
            0..70 => Confirm,
            70..92 => Release,
            92..97 => Ship,
            _ => Ready,
        },
        (false, _) => match roll {
            0..85 => Ship,
            85..95 => Release,
            95..98 => Confirm,
            _ => Collect,
        },
    }
}

/// Renders operations into a log: setup (configuration and opening stock, at `T0`)
/// then one record per operation (an operation that refers to something that does
/// not exist yet, say a receipt of a transfer before any transfer, renders nothing).
pub fn render(mix: Mix, ops: &[Op]) -> Generated {
    let mut r = Renderer::new(mix);
    let setup = r.setup();
    fold_all(&mut r.feedback, &setup);
    for op in ops {
        r.render(op);
    }
    Generated {
        setup,
        traffic: r.out,
    }
}

/// Folds records into `ledger`, returning the outcomes.
pub fn fold_all(ledger: &mut Ledger, records: &[(Event, LogTime)]) -> Vec<Outcome> {
    records.iter().map(|(e, t)| fold(ledger, e, *t)).collect()
}

/// The reference model the properties check the fold against.
#[cfg(test)]
pub mod model;

/// Proptest strategies over the generator. Shrinking removes operations (and moves
/// the remaining ones' random numbers towards zero), so a failure is reported as a
/// short list of [`Op`]s.
#[cfg(test)]
pub mod strategies {
    use proptest::prelude::*;

    use super::{Op, Rng};

    /// Between `min` and `max` operations of realistic traffic. Each operation
    /// carries a switch that shrinking turns off, so a failing case shrinks below
    /// `min` down to the few operations that matter.
    pub fn ops(min: usize, max: usize) -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            (proptest::bool::weighted(0.98), any::<u64>().no_shrink()),
            min..=max,
        )
        .prop_map(|seeds| {
            seeds
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, s)| Op::sample(&mut Rng::new(s)))
                .collect()
        })
    }
}
