//! The ledger's state: plain data, one [`Ledger`] per Kafka partition.
//!
//! Iterating the state, and therefore what the projector writes, is deterministic:
//! ordered maps where order matters (configuration, expiries, purchase-order and
//! transfer lines, the dirty keys handed to the projector), and hash maps only for
//! what the fold looks up by key on every record (stock rows, allocations and
//! waitlists grouped by SKU, holds by id, seen event ids). The views over the hashed
//! ones ([`StockView`], [`HoldView`], ...) list them sorted by key; nothing iterates
//! a hash map in its own order where it could reach an output.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::event::{EventId, HoldKind, LocationKind};
use crate::hash::IdHashMap;
use crate::ids::{ChannelId, CustomerRef, DocumentId, GroupId, HoldId, LocationId, OrderId, Sku};
use crate::tables::SkuTable;
pub use crate::tables::{AllocationView, HoldView, StockView, WaitlistView};
use crate::time::LogTime;

/// The quantity states of one SKU at one location, as the industry names them.
///
/// `on_hand` counts every unit physically there, whatever its state; `reserved`,
/// `committed`, `damaged` and `quality_control` are parts of it. `on_hand` may go
/// below those parts (even below zero) when a fact contradicts the books, say a till
/// sells a unit the books did not know about: facts are recorded as they happened,
/// the fold reports a shortfall, and a stock count puts the books right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Quantities {
    /// Physically at the location, in any state.
    pub on_hand: i64,
    /// Held by pending (unpaid) holds.
    pub reserved: i64,
    /// Sold (paid holds), not yet handed over or shipped.
    pub committed: i64,
    /// Damaged, not sellable.
    pub damaged: i64,
    /// Waiting for quality control, not sellable.
    pub quality_control: i64,
    /// Never promised to any channel.
    pub safety_stock: i64,
    /// Expected on open purchase orders.
    pub incoming: i64,
    /// Shipped from another location towards this one, not yet received.
    pub in_transit: i64,
}

impl Quantities {
    /// Units that are there but cannot be sold.
    pub fn unavailable(&self) -> i64 {
        self.damaged + self.quality_control
    }

    /// `on_hand - reserved - committed - unavailable - safety_stock`. May be
    /// negative when facts contradicted the books; holds never make it negative.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved - self.committed - self.unavailable() - self.safety_stock
    }

    /// Units promised or set aside that physically must be there.
    pub fn obligations(&self) -> i64 {
        self.reserved + self.committed + self.unavailable()
    }

    /// The invariants no input can break (asserted after every change).
    pub fn assert_invariants(&self) {
        assert!(self.reserved >= 0, "reserved went negative: {self:?}");
        assert!(self.committed >= 0, "committed went negative: {self:?}");
        assert!(self.damaged >= 0, "damaged went negative: {self:?}");
        assert!(
            self.quality_control >= 0,
            "quality_control went negative: {self:?}"
        );
        assert!(
            self.safety_stock >= 0,
            "safety_stock went negative: {self:?}"
        );
        assert!(self.incoming >= 0, "incoming went negative: {self:?}");
        assert!(self.in_transit >= 0, "in_transit went negative: {self:?}");
    }
}

/// Units at one (SKU, location) that only one channel may sell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Allocation {
    /// Units set aside for the channel and not yet handed over.
    pub allocated: i64,
    /// Of those, units held or committed by the channel's open holds.
    pub in_use: i64,
}

impl Allocation {
    /// Allocated units no hold uses yet: withheld from every other channel.
    pub fn unused(&self) -> i64 {
        (self.allocated - self.in_use).max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct LocationConfig {
    pub name: String,
    pub kind: LocationKind,
    pub groups: BTreeSet<GroupId>,
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct ChannelConfig {
    pub locations: BTreeSet<LocationId>,
    pub groups: BTreeSet<GroupId>,
    /// Units this channel must leave untouched at each location.
    pub buffer: i64,
}

impl ChannelConfig {
    /// Whether this channel sells from `location`, configured as `config`: listed
    /// directly, or through one of its groups ([`Config::channel_sells_from`] with
    /// both configurations at hand).
    pub(crate) fn sells_from(&self, location: &LocationId, config: &LocationConfig) -> bool {
        self.locations.contains(location) || self.sells_from_groups_of(config)
    }

    fn sells_from_groups_of(&self, config: &LocationConfig) -> bool {
        config.groups.iter().any(|g| self.groups.contains(g))
    }
}

/// Configuration that applies to every SKU: copied into every partition's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Config {
    pub locations: BTreeMap<LocationId, LocationConfig>,
    pub channels: BTreeMap<ChannelId, ChannelConfig>,
}

impl Config {
    /// Whether `channel` may sell from `location`: listed directly, or through one
    /// of the location's groups.
    pub fn channel_sells_from(&self, channel: &ChannelId, location: &LocationId) -> bool {
        let Some(channel) = self.channels.get(channel) else {
            return false;
        };
        if channel.locations.contains(location) {
            return true;
        }
        self.locations
            .get(location)
            .is_some_and(|loc| channel.sells_from_groups_of(loc))
    }

    /// Locations of a group, in id order (the order "any location of G" decisions
    /// break ties in).
    pub fn group_members<'a>(
        &'a self,
        group: &'a GroupId,
    ) -> impl Iterator<Item = (&'a LocationId, &'a LocationConfig)> + 'a {
        self.locations
            .iter()
            .filter(move |(_, loc)| loc.groups.contains(group))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// The request was refused; nothing is held. Kept so a retry gets the same answer.
    Rejected,
    /// Units reserved (or committed, once confirmed).
    Held,
    /// Prepared at the pickup desk.
    ReadyForPickup,
    Collected,
    Shipped,
    Released,
    Expired,
    NoShow,
}

impl HoldStatus {
    /// No further transition is possible.
    pub fn is_closed(self) -> bool {
        !matches!(self, HoldStatus::Held | HoldStatus::ReadyForPickup)
    }

    pub fn name(self) -> &'static str {
        match self {
            HoldStatus::Rejected => "rejected",
            HoldStatus::Held => "held",
            HoldStatus::ReadyForPickup => "ready_for_pickup",
            HoldStatus::Collected => "collected",
            HoldStatus::Shipped => "shipped",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
            HoldStatus::NoShow => "no_show",
        }
    }
}

/// A hold, from request to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Hold {
    pub hold_id: HoldId,
    pub sku: Sku,
    /// The location the request named, if it named one.
    pub requested_location: Option<LocationId>,
    /// The group the request named ("any location of G"), if it named one.
    pub requested_group: Option<GroupId>,
    /// Where the units are held; `None` when rejected.
    pub location: Option<LocationId>,
    pub quantity: i64,
    pub channel: ChannelId,
    pub order_id: OrderId,
    pub order_line: u32,
    pub customer_ref: CustomerRef,
    pub kind: HoldKind,
    pub status: HoldStatus,
    /// Paid: the units are in `committed` rather than `reserved`, and the hold no
    /// longer expires.
    pub confirmed: bool,
    /// Units taken from the channel's exclusive allocation at the location.
    pub allocation_units: i64,
    /// The order line's unit price, when the request carried one (revenue figures).
    pub unit_price: Option<crate::event::Price>,
    /// Why the request was refused, when it was.
    pub rejection: Option<crate::fold::Rejection>,
    /// The event that requested it.
    pub request_event_id: EventId,
    pub ttl_seconds: u32,
    /// Log time of the decision.
    pub requested_at: LogTime,
    /// Log time at which an unconfirmed hold expires.
    pub expires_at: LogTime,
    /// Log time it became ready for pickup, if it did.
    pub ready_at: Option<LogTime>,
    /// Log time of its last status change.
    pub updated_at: LogTime,
}

impl Hold {
    /// Units this hold keeps out of `available` while open.
    pub fn is_holding_units(&self) -> bool {
        !self.status.is_closed()
    }

    /// Whether this hold is waiting for its TTL (open and unpaid).
    pub fn can_expire(&self) -> bool {
        !self.status.is_closed() && !self.confirmed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WaitTarget {
    Location(LocationId),
    Group(GroupId),
}

/// A customer waiting for a SKU to be available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct WaitlistEntry {
    pub customer_ref: CustomerRef,
    pub target: WaitTarget,
    pub quantity: i64,
    pub channel: ChannelId,
    pub joined_event_id: EventId,
    pub joined_at: LogTime,
}

/// What remains expected of one purchase order line at one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct IncomingLine {
    pub expected: i64,
    pub received: i64,
    /// Microseconds since the epoch of the expected arrival (sender's clock).
    pub expected_at_micros: i64,
}

impl IncomingLine {
    pub fn outstanding(&self) -> i64 {
        (self.expected - self.received).max(0)
    }
}

/// One transfer of one SKU between two locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct TransferLine {
    pub from: LocationId,
    pub to: LocationId,
    pub shipped: i64,
    pub received: i64,
}

impl TransferLine {
    pub fn in_transit(&self) -> i64 {
        (self.shipped - self.received).max(0)
    }
}

/// How long event ids (and closed holds' ids) are remembered, in log time: 7 days.
/// A repeat of an event within the window changes nothing. Beyond it the id is
/// forgotten, so that memory stays bounded; 7 days matches Kafka's default
/// retention, beyond which a producer retry is not a thing that happens.
pub const DEDUPE_WINDOW_MS: i64 = 7 * 24 * 3_600 * 1_000;

/// Event ids seen within the dedupe window, with the log time they were applied at.
#[derive(Debug, Clone, Default)]
pub struct SeenEvents {
    pub(crate) by_id: IdHashMap<EventId, LogTime>,
    /// In application order; log time is monotonic, so also in time order.
    pub(crate) in_order: VecDeque<(LogTime, EventId)>,
}

/// Two windows are equal when they remember the same ids at the same times. The
/// queue's order among equal times is an accident of application order (a restored
/// window sorts them by id), and eviction does not depend on it.
impl PartialEq for SeenEvents {
    fn eq(&self, other: &Self) -> bool {
        self.by_id == other.by_id
    }
}

impl Eq for SeenEvents {}

impl SeenEvents {
    pub fn contains(&self, id: &EventId) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.in_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_order.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(LogTime, EventId)> {
        self.in_order.iter()
    }

    pub(crate) fn insert(&mut self, id: EventId, at: LogTime) {
        let previous = self.by_id.insert(id, at);
        assert!(previous.is_none(), "event {id} recorded twice");
        if let Some((last, _)) = self.in_order.back() {
            assert!(*last <= at, "seen events out of log-time order");
        }
        self.in_order.push_back((at, id));
    }

    /// Forgets ids seen before `horizon`; returns them (the store deletes them).
    pub(crate) fn evict_before(&mut self, horizon: LogTime, evicted: &mut Vec<EventId>) {
        while let Some(&(at, id)) = self.in_order.front() {
            if at >= horizon {
                break;
            }
            self.in_order.pop_front();
            self.by_id.remove(&id);
            evicted.push(id);
        }
        assert_eq!(self.by_id.len(), self.in_order.len());
    }
}

/// Keys changed since the projector last drained them: the rows to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    pub stock: BTreeSet<(Sku, LocationId)>,
    pub allocations: BTreeSet<(Sku, LocationId, ChannelId)>,
    pub holds: BTreeSet<HoldId>,
    /// Holds forgotten by the fold (closed, past the dedupe window), with their final
    /// state: the read model keeps them, the fold state does not. A hold can change
    /// and be forgotten between two drains (a replay spans days in one batch), so
    /// the final state travels here.
    pub holds_forgotten: BTreeMap<HoldId, Hold>,
    pub waitlists: BTreeSet<Sku>,
    pub incoming: BTreeSet<(Sku, LocationId, DocumentId)>,
    pub transfers: BTreeSet<(Sku, DocumentId)>,
    pub seen_added: Vec<(EventId, LogTime)>,
    pub seen_evicted: Vec<EventId>,
    pub config: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        *self == Dirty::default()
    }
}

/// What the fold records as it changes rows, turned into a [`Dirty`] by
/// [`Ledger::take_dirty`]: vectors to push to, sorted and deduplicated once per
/// drain rather than a B-tree insert per change.
#[derive(Debug, Clone)]
pub(crate) struct DirtyLog {
    /// Counts drains. A stock row whose `marked` equals it is already in `stock`.
    pub(crate) epoch: u64,
    /// Each row at most once per drain (see `epoch`).
    pub(crate) stock: Vec<(Sku, LocationId)>,
    /// Possibly repeated.
    pub(crate) allocations: Vec<(Sku, LocationId, ChannelId)>,
    /// Possibly repeated, and possibly naming holds forgotten since: a drain keeps
    /// the ids the ledger still tracks (a forgotten id used again is tracked again).
    pub(crate) holds: Vec<HoldId>,
    pub(crate) holds_forgotten: BTreeMap<HoldId, Hold>,
    /// Possibly repeated.
    pub(crate) waitlists: Vec<Sku>,
    pub(crate) incoming: BTreeSet<(Sku, LocationId, DocumentId)>,
    pub(crate) transfers: BTreeSet<(Sku, DocumentId)>,
    pub(crate) seen_added: Vec<(EventId, LogTime)>,
    pub(crate) seen_evicted: Vec<EventId>,
    pub(crate) config: bool,
}

impl Default for DirtyLog {
    fn default() -> Self {
        DirtyLog {
            // Rows start unmarked (0).
            epoch: 1,
            stock: Vec::new(),
            allocations: Vec::new(),
            holds: Vec::new(),
            holds_forgotten: BTreeMap::new(),
            waitlists: Vec::new(),
            incoming: BTreeSet::new(),
            transfers: BTreeSet::new(),
            seen_added: Vec::new(),
            seen_evicted: Vec::new(),
            config: false,
        }
    }
}

/// The keys of `keys` as a set, leaving `keys` empty (its capacity kept for the next
/// drain). Sorted on integer prefixes of their ids first (see `ids::prefix64`), then
/// on the keys where prefixes tie: string comparisons were most of a drain's cost.
fn sorted_set<K: Ord>(keys: &mut Vec<K>, prefix: impl Fn(&K) -> (u128, u64)) -> BTreeSet<K> {
    if keys.len() < 2 {
        return keys.drain(..).collect();
    }
    let mut keyed: Vec<((u128, u64), K)> = keys.drain(..).map(|k| (prefix(&k), k)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    // Collecting sorted keys into a set checks the order in one pass and drops
    // repeats.
    keyed.into_iter().map(|(_, k)| k).collect()
}

/// Everything a [`Ledger`] is made of, as rows: what the projector persists and
/// restores. Derived indexes (expiry queue, closed-hold queue) are rebuilt.
#[derive(Debug, Clone, Default)]
pub struct LedgerParts {
    pub log_time: LogTime,
    pub config: Config,
    pub stock: Vec<((Sku, LocationId), Quantities)>,
    pub allocations: Vec<((Sku, LocationId, ChannelId), Allocation)>,
    /// Open holds and closed ones still within the dedupe window.
    pub holds: Vec<Hold>,
    pub waitlists: Vec<(Sku, Vec<WaitlistEntry>)>,
    pub incoming: Vec<((Sku, LocationId, DocumentId), IncomingLine)>,
    pub transfers: Vec<((Sku, DocumentId), TransferLine)>,
    /// Event ids with the log time they were applied at.
    pub seen: Vec<(LogTime, EventId)>,
}

/// The fold state of one partition.
#[derive(Clone, Default)]
pub struct Ledger {
    pub(crate) log_time: LogTime,
    pub(crate) config: Config,
    /// Stock rows, exclusive allocations and waitlists, by SKU.
    pub(crate) skus: SkuTable,
    /// Boxed: a hold is a few hundred bytes, and as the table grows every
    /// doubling moved all of them into freshly zeroed pages (4% of a replay's
    /// samples); a box moves as one pointer.
    pub(crate) holds: IdHashMap<HoldId, Box<Hold>>,
    /// Unconfirmed open holds by expiry time.
    pub(crate) expiries: BTreeSet<(LogTime, HoldId)>,
    /// Closed holds by the log time they closed, to forget them after the window.
    pub(crate) closed_holds: VecDeque<(LogTime, HoldId)>,
    pub(crate) incoming: BTreeMap<(Sku, LocationId, DocumentId), IncomingLine>,
    pub(crate) transfers: BTreeMap<(Sku, DocumentId), TransferLine>,
    pub(crate) seen: SeenEvents,
    pub(crate) dirty: DirtyLog,
}

/// Ledgers are equal when their state is; pending dirty keys are bookkeeping for the
/// projector, not state.
impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        self.log_time == other.log_time
            && self.config == other.config
            && self.stock() == other.stock()
            && self.allocations() == other.allocations()
            && self.holds() == other.holds()
            && self.expiries == other.expiries
            && sorted(&self.closed_holds) == sorted(&other.closed_holds)
            && self.waitlists() == other.waitlists()
            && self.incoming == other.incoming
            && self.transfers == other.transfers
            && self.seen == other.seen
    }
}

/// The state in key order (as the views list it); dirty keys left out.
impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("log_time", &self.log_time)
            .field("config", &self.config)
            .field("stock", &self.stock())
            .field("allocations", &self.allocations())
            .field("holds", &self.holds())
            .field("expiries", &self.expiries)
            .field("closed_holds", &self.closed_holds)
            .field("waitlists", &self.waitlists())
            .field("incoming", &self.incoming)
            .field("transfers", &self.transfers)
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl Eq for Ledger {}

fn sorted(queue: &VecDeque<(LogTime, HoldId)>) -> Vec<&(LogTime, HoldId)> {
    let mut items: Vec<_> = queue.iter().collect();
    items.sort();
    items
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log_time(&self) -> LogTime {
        self.log_time
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn quantities(&self, sku: &Sku, location: &LocationId) -> Quantities {
        self.skus.quantities(sku, location)
    }

    /// Every stock row, as a map from (SKU, location).
    pub fn stock(&self) -> StockView<'_> {
        self.skus.stock()
    }

    /// Every (SKU, location) row of one SKU, in location order.
    pub fn stock_of<'a>(
        &'a self,
        sku: &'a Sku,
    ) -> impl Iterator<Item = (&'a LocationId, &'a Quantities)> + 'a {
        self.skus.stock().of_sku(sku)
    }

    /// Every exclusive allocation, as a map from (SKU, location, channel).
    pub fn allocations(&self) -> AllocationView<'_> {
        self.skus.allocations()
    }

    /// The exclusive allocations at one (SKU, location), by channel.
    pub fn allocations_at<'a>(
        &'a self,
        sku: &'a Sku,
        location: &'a LocationId,
    ) -> impl Iterator<Item = (&'a ChannelId, &'a Allocation)> + 'a {
        self.skus
            .get(sku)
            .into_iter()
            .flat_map(move |s| s.allocations_at(location))
    }

    pub fn hold(&self, hold_id: &HoldId) -> Option<&Hold> {
        self.holds().get(hold_id)
    }

    /// Every hold remembered, as a map from hold id.
    pub fn holds(&self) -> HoldView<'_> {
        HoldView::new(&self.holds)
    }

    /// Every non-empty waitlist, as a map from SKU.
    pub fn waitlists(&self) -> WaitlistView<'_> {
        self.skus.waitlists()
    }

    pub fn incoming(&self) -> &BTreeMap<(Sku, LocationId, DocumentId), IncomingLine> {
        &self.incoming
    }

    pub fn transfers(&self) -> &BTreeMap<(Sku, DocumentId), TransferLine> {
        &self.transfers
    }

    pub fn seen(&self) -> &SeenEvents {
        &self.seen
    }

    /// Unconfirmed open holds by expiry.
    pub fn expiries(&self) -> &BTreeSet<(LogTime, HoldId)> {
        &self.expiries
    }

    /// Closed holds still remembered, by closing time.
    pub fn closed_holds(&self) -> &VecDeque<(LogTime, HoldId)> {
        &self.closed_holds
    }

    /// Rebuilds a ledger from persisted rows, dropping what the fold would already
    /// have forgotten at `parts.log_time`, and checks every invariant.
    pub fn from_parts(parts: LedgerParts) -> Result<Ledger, String> {
        let horizon = parts.log_time.minus_millis(DEDUPE_WINDOW_MS);
        let mut ledger = Ledger {
            log_time: parts.log_time,
            config: parts.config,
            incoming: parts.incoming.into_iter().collect(),
            transfers: parts.transfers.into_iter().collect(),
            ..Ledger::default()
        };
        // A key given twice keeps its last value, as collecting into a map would.
        for ((sku, location), quantities) in parts.stock {
            ledger
                .skus
                .write_stock(&sku, &location, quantities, |_, _| ());
        }
        for ((sku, location, channel), allocation) in parts.allocations {
            ledger
                .skus
                .set_allocation(&sku, &location, &channel, allocation);
        }
        for (sku, entries) in parts.waitlists {
            if !entries.is_empty() {
                ledger.skus.change_waitlist(&sku, |list| *list = entries);
            }
        }
        let mut closed = Vec::new();
        for hold in parts.holds {
            if hold.status.is_closed() {
                if hold.updated_at < horizon {
                    continue;
                }
                closed.push((hold.updated_at, hold.hold_id.clone()));
            } else if hold.can_expire() {
                ledger
                    .expiries
                    .insert((hold.expires_at, hold.hold_id.clone()));
            }
            ledger.holds.insert(hold.hold_id.clone(), Box::new(hold));
        }
        closed.sort();
        ledger.closed_holds = closed.into();
        let mut seen = parts.seen;
        seen.sort();
        for (at, id) in seen {
            if at < horizon {
                continue;
            }
            if ledger.seen.contains(&id) {
                return Err(format!("event {id} is recorded twice"));
            }
            ledger.seen.insert(id, at);
        }
        ledger.check_invariants()?;
        Ok(ledger)
    }

    /// Whether the fold forgot holds since the last [`Ledger::take_dirty`]. A
    /// caller that drains less often than once per event must drain before the
    /// next event then: a forgotten hold is named by its id, which a later event
    /// may use again (and which may be forgotten again).
    pub fn forgot_holds(&self) -> bool {
        !self.dirty.holds_forgotten.is_empty()
    }

    /// The keys changed since the last call: what the projector must write.
    pub fn take_dirty(&mut self) -> Dirty {
        let log = &mut self.dirty;
        // Rows marked with the old epoch are unmarked from here on.
        log.epoch += 1;
        let holds = &self.holds;
        log.holds.retain(|id| holds.contains_key(id));
        Dirty {
            stock: sorted_set(&mut log.stock, |(s, l)| (s.prefix128(), l.prefix64())),
            allocations: sorted_set(&mut log.allocations, |(s, l, _)| {
                (s.prefix128(), l.prefix64())
            }),
            holds: sorted_set(&mut log.holds, |id| (id.prefix128(), 0)),
            holds_forgotten: std::mem::take(&mut log.holds_forgotten),
            waitlists: sorted_set(&mut log.waitlists, |s| (s.prefix128(), 0)),
            incoming: std::mem::take(&mut log.incoming),
            transfers: std::mem::take(&mut log.transfers),
            seen_added: std::mem::take(&mut log.seen_added),
            seen_evicted: std::mem::take(&mut log.seen_evicted),
            config: std::mem::take(&mut log.config),
        }
    }

    /// Checks every cross-structure invariant of the state. Cost is linear in the
    /// state: tests and the projector's restore path call it, the fold does not.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut reserved: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        let mut committed: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        let mut in_use: BTreeMap<(Sku, LocationId, ChannelId), i64> = BTreeMap::new();
        let mut expiring = BTreeSet::new();
        for (id, hold) in self.holds() {
            if id != &hold.hold_id {
                return Err(format!(
                    "hold stored under {id} says it is {}",
                    hold.hold_id
                ));
            }
            if !hold.is_holding_units() {
                continue;
            }
            let Some(location) = hold.location.clone() else {
                return Err(format!("open hold {id} has no location"));
            };
            let key = (hold.sku.clone(), location.clone());
            let bucket = if hold.confirmed {
                &mut committed
            } else {
                &mut reserved
            };
            *bucket.entry(key).or_default() += hold.quantity;
            if hold.allocation_units > 0 {
                *in_use
                    .entry((hold.sku.clone(), location, hold.channel.clone()))
                    .or_default() += hold.allocation_units;
            }
            if hold.can_expire() {
                expiring.insert((hold.expires_at, id.clone()));
            }
        }
        if expiring != self.expiries {
            return Err("expiry index differs from the open unconfirmed holds".into());
        }
        for (key, q) in self.stock() {
            q.assert_invariants();
            let want_reserved = reserved.remove(key).unwrap_or(0);
            let want_committed = committed.remove(key).unwrap_or(0);
            if q.reserved != want_reserved || q.committed != want_committed {
                return Err(format!(
                    "{key:?}: reserved {} / committed {} but open holds sum to {want_reserved} / {want_committed}",
                    q.reserved, q.committed
                ));
            }
        }
        if let Some((key, _)) = reserved
            .iter()
            .chain(committed.iter())
            .find(|(_, v)| **v != 0)
        {
            return Err(format!("open holds at {key:?} have no stock row"));
        }
        for (key, allocation) in self.allocations() {
            let want = in_use.remove(key).unwrap_or(0);
            if allocation.in_use != want {
                return Err(format!(
                    "{key:?}: allocation in use {} but holds use {want}",
                    allocation.in_use
                ));
            }
        }
        if let Some((key, _)) = in_use.iter().find(|(_, v)| **v != 0) {
            return Err(format!("holds use allocation {key:?} that does not exist"));
        }
        let mut incoming: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        for ((sku, location, _), line) in &self.incoming {
            *incoming.entry((sku.clone(), location.clone())).or_default() += line.outstanding();
        }
        let mut in_transit: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        for ((sku, _), line) in &self.transfers {
            *in_transit
                .entry((sku.clone(), line.to.clone()))
                .or_default() += line.in_transit();
        }
        for (key, q) in self.stock() {
            let want_incoming = incoming.remove(key).unwrap_or(0);
            let want_in_transit = in_transit.remove(key).unwrap_or(0);
            if q.incoming != want_incoming || q.in_transit != want_in_transit {
                return Err(format!(
                    "{key:?}: incoming {} / in transit {} but open lines sum to {want_incoming} / {want_in_transit}",
                    q.incoming, q.in_transit
                ));
            }
        }
        if let Some((key, _)) = incoming
            .iter()
            .chain(in_transit.iter())
            .find(|(_, v)| **v != 0)
        {
            return Err(format!(
                "open incoming or transfer lines at {key:?} have no stock row"
            ));
        }
        if self.seen.by_id.len() != self.seen.in_order.len() {
            return Err("seen-event index and queue differ".into());
        }
        Ok(())
    }
}
