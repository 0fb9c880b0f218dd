//! A reference model of the ledger, written from the design brief and the event
//! schema's documentation rather than from `fold.rs`: plain maps, no indexes, no
//! dirty tracking, every derived figure recomputed from scratch (reserved and
//! committed from the open holds, incoming from the purchase-order lines, in transit
//! from the transfer lines, allocations in use from the holds).
//!
//! [`Model::step`] folds one record the way the model understands it and checks the
//! fold's outcome against that: the verdict, the expiries (which holds, in which
//! order, at which instant), the hold decisions (where, or why not), the stock
//! effects (a `before -> after` chain per row that ends where the model ends),
//! shortfalls, count discrepancies and waitlist notifications. [`Model::compare`]
//! checks the whole ledger against the model. Both return a description of the first
//! difference.

use std::collections::{BTreeMap, BTreeSet};

use stockline_domain::fold::NOTIFICATION_NAMESPACE;
use stockline_domain::{
    ChannelId, CustomerRef, DEDUPE_WINDOW_MS, DocumentId, DocumentKind, Effect, Event, EventId,
    GroupId, HoldId, HoldKind, HoldStatus, Ledger, LocationId, LocationKind, LogTime, Outcome,
    Payload, Quantities, Rejection, ReturnDisposition, Sku, StockState, Verdict, WaitTarget,
};
use uuid::Uuid;

const QUANTITY_MAX: i64 = 1_000_000_000;
const TTL_MAX: u32 = 30 * 24 * 3_600;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Row {
    on_hand: i64,
    damaged: i64,
    quality_control: i64,
    safety_stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MHold {
    pub sku: Sku,
    pub location: Option<LocationId>,
    pub quantity: i64,
    pub channel: ChannelId,
    pub kind: HoldKind,
    pub status: HoldStatus,
    pub confirmed: bool,
    pub allocation_units: i64,
    pub expires_at: LogTime,
    pub updated_at: LogTime,
    pub ready_at: Option<LogTime>,
    pub rejection: Option<Rejection>,
}

impl MHold {
    pub fn is_open(&self) -> bool {
        matches!(self.status, HoldStatus::Held | HoldStatus::ReadyForPickup)
    }
}

#[derive(Debug, Clone)]
struct MLocation {
    kind: LocationKind,
    groups: BTreeSet<GroupId>,
    active: bool,
}

#[derive(Debug, Clone)]
struct MChannel {
    locations: BTreeSet<LocationId>,
    groups: BTreeSet<GroupId>,
    buffer: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Wish {
    customer: CustomerRef,
    target: WaitTarget,
    quantity: i64,
    joined: EventId,
}

/// What the model expects of one record.
#[derive(Debug, PartialEq)]
enum Expect {
    Applied,
    Rejected(Rejection),
    /// Invalid, with the code (the details are the scenarios' business).
    Invalid(&'static str),
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub now: LogTime,
    locations: BTreeMap<LocationId, MLocation>,
    channels: BTreeMap<ChannelId, MChannel>,
    rows: BTreeMap<(Sku, LocationId), Row>,
    pub holds: BTreeMap<HoldId, MHold>,
    allocated: BTreeMap<(Sku, LocationId, ChannelId), i64>,
    /// Purchase-order lines: (expected, received).
    po_lines: BTreeMap<(Sku, LocationId, DocumentId), (i64, i64)>,
    /// Transfers: (from, to, shipped, received).
    transfers: BTreeMap<(Sku, DocumentId), (LocationId, LocationId, i64, i64)>,
    waitlists: BTreeMap<Sku, Vec<Wish>>,
    seen: BTreeMap<EventId, LogTime>,
}

fn ok_or<T>(condition: bool, value: T) -> Result<(), T> {
    if condition { Ok(()) } else { Err(value) }
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    // ----- Derived figures, recomputed from scratch. -----

    /// The full quantities of one (SKU, location), as the model sees them.
    pub fn quantities(&self, sku: &Sku, location: &LocationId) -> Quantities {
        let row = self
            .rows
            .get(&(sku.clone(), location.clone()))
            .copied()
            .unwrap_or_default();
        let mut q = Quantities {
            on_hand: row.on_hand,
            damaged: row.damaged,
            quality_control: row.quality_control,
            safety_stock: row.safety_stock,
            ..Quantities::default()
        };
        for h in self.holds.values() {
            if h.is_open() && &h.sku == sku && h.location.as_ref() == Some(location) {
                if h.confirmed {
                    q.committed += h.quantity;
                } else {
                    q.reserved += h.quantity;
                }
            }
        }
        for ((s, l, _), (expected, received)) in &self.po_lines {
            if s == sku && l == location {
                q.incoming += (expected - received).max(0);
            }
        }
        for ((s, _), (_, to, shipped, received)) in &self.transfers {
            if s == sku && to == location {
                q.in_transit += (shipped - received).max(0);
            }
        }
        q
    }

    /// `on_hand - reserved - committed - damaged - quality_control - safety_stock`.
    pub fn available(&self, sku: &Sku, location: &LocationId) -> i64 {
        let q = self.quantities(sku, location);
        q.on_hand - q.reserved - q.committed - q.damaged - q.quality_control - q.safety_stock
    }

    fn in_use(&self, sku: &Sku, location: &LocationId, channel: &ChannelId) -> i64 {
        self.holds
            .values()
            .filter(|h| {
                h.is_open()
                    && &h.sku == sku
                    && h.location.as_ref() == Some(location)
                    && &h.channel == channel
            })
            .map(|h| h.allocation_units)
            .sum()
    }

    fn unused(&self, sku: &Sku, location: &LocationId, channel: &ChannelId) -> i64 {
        let allocated = self
            .allocated
            .get(&(sku.clone(), location.clone(), channel.clone()))
            .copied()
            .unwrap_or(0);
        (allocated - self.in_use(sku, location, channel)).max(0)
    }

    fn sells_from(&self, channel: &ChannelId, location: &LocationId) -> bool {
        let Some(c) = self.channels.get(channel) else {
            return false;
        };
        c.locations.contains(location)
            || self
                .locations
                .get(location)
                .is_some_and(|l| l.groups.iter().any(|g| c.groups.contains(g)))
    }

    /// What `channel` may promise at `location`: its own unused allocation, plus what
    /// every channel may sell minus its buffer, never more than is there once the
    /// other channels' allocations are set aside, never less than zero.
    pub fn view(&self, channel: &ChannelId, sku: &Sku, location: &LocationId) -> i64 {
        let Some(l) = self.locations.get(location) else {
            return 0;
        };
        if !l.active || !self.sells_from(channel, location) {
            return 0;
        }
        let buffer = self.channels.get(channel).map_or(0, |c| c.buffer);
        let mut own = 0;
        let mut others = 0;
        for (s, loc, c) in self.allocated.keys() {
            if s == sku && loc == location {
                if c == channel {
                    own += self.unused(sku, location, c);
                } else {
                    others += self.unused(sku, location, c);
                }
            }
        }
        let pool = self.available(sku, location) - others;
        let shared = pool - own;
        let view = own + (shared - buffer).max(0);
        view.clamp(0, pool.max(0))
    }

    fn group_members(&self, group: &GroupId) -> Vec<LocationId> {
        self.locations
            .iter()
            .filter(|(_, l)| l.groups.contains(group))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every (SKU, location) the model knows a figure for.
    fn keys(&self) -> BTreeSet<(Sku, LocationId)> {
        let mut keys: BTreeSet<_> = self.rows.keys().cloned().collect();
        for h in self.holds.values() {
            if let Some(l) = &h.location {
                keys.insert((h.sku.clone(), l.clone()));
            }
        }
        for (s, l, _) in self.po_lines.keys() {
            keys.insert((s.clone(), l.clone()));
        }
        for ((s, _), (from, to, _, _)) in &self.transfers {
            keys.insert((s.clone(), from.clone()));
            keys.insert((s.clone(), to.clone()));
        }
        keys
    }

    fn snapshot(&self) -> BTreeMap<(Sku, LocationId), Quantities> {
        self.keys()
            .into_iter()
            .map(|(s, l)| {
                let q = self.quantities(&s, &l);
                ((s, l), q)
            })
            .collect()
    }

    fn row(&mut self, sku: &Sku, location: &LocationId) -> &mut Row {
        self.rows
            .entry((sku.clone(), location.clone()))
            .or_default()
    }

    // ----- Folding one record. -----

    /// Folds `event` at record time `t` into the model and checks `outcome`, the
    /// fold's answer for the same record, against it.
    pub fn step(&mut self, event: &Event, t: LogTime, outcome: &Outcome) -> Result<(), String> {
        let before = self.snapshot();
        let mut notifications = Vec::new();

        // 1. Time passes: expiries at their TTL instant, in (instant, id) order; each
        //    gives its units back, which may satisfy a waiting customer.
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        let mut due: Vec<(LogTime, HoldId)> = self
            .holds
            .iter()
            .filter(|(_, h)| h.is_open() && !h.confirmed && h.expires_at <= now)
            .map(|(id, h)| (h.expires_at, id.clone()))
            .collect();
        due.sort();
        let mut expected_expiries = Vec::new();
        for (at, id) in &due {
            let h = self.holds[id].clone();
            let location = h.location.clone().expect("an open hold has a location");
            let available_before = self.available(&h.sku, &location);
            expected_expiries.push((id.clone(), h.status));
            let held = self.holds.get_mut(id).expect("due holds exist");
            held.status = HoldStatus::Expired;
            held.updated_at = *at;
            let available_after = self.available(&h.sku, &location);
            if available_after > available_before {
                self.notify(&h.sku, &location, available_after, &mut notifications);
            }
        }
        let expired: Vec<(HoldId, HoldStatus)> = outcome
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::HoldChanged {
                    hold_id,
                    from,
                    to: HoldStatus::Expired,
                    ..
                } => Some((hold_id.clone(), *from)),
                _ => None,
            })
            .collect();
        if expired != expected_expiries {
            return Err(format!(
                "at {now:?}: expected expiries {expected_expiries:?}, the fold expired {expired:?}"
            ));
        }
        // Forgetting: closed holds and event ids older than the window.
        let horizon = LogTime(now.millis().saturating_sub(DEDUPE_WINDOW_MS));
        self.holds
            .retain(|_, h| h.is_open() || h.updated_at >= horizon);
        self.seen.retain(|_, at| *at >= horizon);

        // 2. What the record asks for.
        let available_before: BTreeMap<(Sku, LocationId), i64> = self
            .keys()
            .into_iter()
            .map(|(s, l)| {
                let a = self.available(&s, &l);
                ((s, l), a)
            })
            .collect();
        let mut hold_effects: Vec<Effect> = Vec::new();
        let mut discrepancy = None;
        let expect = self.apply(
            event,
            &mut hold_effects,
            &mut discrepancy,
            &mut notifications,
        );
        for (s, l) in self.keys() {
            let was = available_before
                .get(&(s.clone(), l.clone()))
                .copied()
                .unwrap_or(0);
            let is = self.available(&s, &l);
            if is > was {
                self.notify(&s, &l, is, &mut notifications);
            }
        }
        let verdict_ok = match (&expect, &outcome.verdict) {
            (Expect::Applied, Verdict::Applied) => true,
            (Expect::Rejected(a), Verdict::Rejected { rejection }) => a == rejection,
            (Expect::Invalid("duplicate"), Verdict::Duplicate) => true,
            (Expect::Invalid(code), Verdict::Invalid { invalid }) => *code == invalid.code(),
            _ => false,
        };
        if !verdict_ok {
            return Err(format!(
                "at {now:?}: the model expects {expect:?}, the fold says {:?} for {event:?}",
                outcome.verdict
            ));
        }

        // 3. The hold effects of the event itself, and a count's discrepancy.
        let fold_hold_effects: Vec<&Effect> = outcome
            .effects
            .iter()
            .filter(|e| match e {
                Effect::HoldAccepted { .. }
                | Effect::HoldRejected { .. }
                | Effect::AllocationChanged { .. } => true,
                Effect::HoldChanged { to, .. } => *to != HoldStatus::Expired,
                _ => false,
            })
            .collect();
        if fold_hold_effects != hold_effects.iter().collect::<Vec<_>>() {
            return Err(format!(
                "hold effects: the model expects {hold_effects:?}, the fold reports {fold_hold_effects:?}"
            ));
        }
        let reported_discrepancy = outcome
            .effects
            .iter()
            .find(|e| matches!(e, Effect::CountDiscrepancy { .. }));
        if reported_discrepancy != discrepancy.as_ref() {
            return Err(format!(
                "count discrepancy: expected {discrepancy:?}, got {reported_discrepancy:?}"
            ));
        }

        // 4. Stock effects: per row, a chain from the state before to the state after,
        //    each link followed by a shortfall exactly when the deficit grew past zero.
        let after = self.snapshot();
        let mut chains: BTreeMap<(Sku, LocationId), Quantities> = BTreeMap::new();
        let deficit =
            |q: &Quantities| q.reserved + q.committed + q.damaged + q.quality_control - q.on_hand;
        for (i, effect) in outcome.effects.iter().enumerate() {
            let Effect::StockChanged {
                sku,
                location,
                before: b,
                after: a,
                ..
            } = effect
            else {
                continue;
            };
            if b == a {
                return Err(format!(
                    "a StockChanged effect that changes nothing: {effect:?}"
                ));
            }
            let key = (sku.clone(), location.clone());
            let start = before.get(&key).copied().unwrap_or_default();
            let at = chains.entry(key.clone()).or_insert(start);
            if at != b {
                return Err(format!(
                    "{key:?}: an effect starts from {b:?}, the row was {at:?}"
                ));
            }
            *at = *a;
            let shortfall_expected = deficit(a) > 0 && deficit(a) > deficit(b);
            let shortfall_follows = matches!(
                outcome.effects.get(i + 1),
                Some(Effect::Shortfall { sku: s, location: l, on_hand, obligations })
                    if s == sku && l == location && *on_hand == a.on_hand
                        && *obligations == a.reserved + a.committed + a.damaged + a.quality_control
            );
            if shortfall_expected != shortfall_follows {
                return Err(format!(
                    "{key:?}: {b:?} -> {a:?}: shortfall expected {shortfall_expected}, reported {shortfall_follows}"
                ));
            }
        }
        let shortfalls = outcome
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Shortfall { .. }))
            .count();
        let grown = outcome
            .effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::StockChanged { before: b, after: a, .. }
                    if deficit(a) > 0 && deficit(a) > deficit(b))
            })
            .count();
        if shortfalls != grown {
            return Err(format!(
                "{shortfalls} shortfalls reported for {grown} growing deficits"
            ));
        }
        for (key, q) in &after {
            let start = before.get(key).copied().unwrap_or_default();
            let end = chains.get(key).copied().unwrap_or(start);
            if end != *q {
                return Err(format!(
                    "{key:?}: the effects end at {end:?}, the model is at {q:?} (was {start:?})"
                ));
            }
        }

        // 5. Waitlist notifications, in order.
        let reported: Vec<&Effect> = outcome
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::WaitlistNotified { .. }))
            .collect();
        if reported != notifications.iter().collect::<Vec<_>>() {
            return Err(format!(
                "notifications: the model expects {notifications:?}, the fold reports {reported:?}"
            ));
        }
        Ok(())
    }

    /// Tells, in joining order, every customer waiting for `sku` whose wish
    /// `available` units at `location` satisfy, and takes them off the list.
    fn notify(&mut self, sku: &Sku, location: &LocationId, available: i64, out: &mut Vec<Effect>) {
        let groups = self.locations.get(location).map(|l| l.groups.clone());
        let Some(entries) = self.waitlists.get_mut(sku) else {
            return;
        };
        entries.retain(|w| {
            let covers = match &w.target {
                WaitTarget::Location(l) => l == location,
                WaitTarget::Group(g) => groups.as_ref().is_some_and(|gs| gs.contains(g)),
            };
            if !covers || available < w.quantity {
                return true;
            }
            // UUID v5 of the joining event id, the SKU and the customer.
            let mut name = w.joined.as_bytes().to_vec();
            name.extend_from_slice(sku.as_str().as_bytes());
            name.push(0);
            name.extend_from_slice(w.customer.as_str().as_bytes());
            out.push(Effect::WaitlistNotified {
                notification_id: Uuid::new_v5(&NOTIFICATION_NAMESPACE, &name),
                sku: sku.clone(),
                location: location.clone(),
                customer_ref: w.customer.clone(),
                quantity: w.quantity,
                available,
            });
            false
        });
        if entries.is_empty() {
            self.waitlists.remove(sku);
        }
    }

    fn require_location(&self, location: &LocationId) -> Result<(), Expect> {
        ok_or(
            self.locations.contains_key(location),
            Expect::Invalid("unknown_location"),
        )
    }

    /// Applies the record (after time passed) and says what the fold should answer.
    fn apply(
        &mut self,
        event: &Event,
        hold_effects: &mut Vec<Effect>,
        discrepancy: &mut Option<Effect>,
        notifications: &mut Vec<Effect>,
    ) -> Expect {
        if let Err(invalid) = event.validate() {
            return Expect::Invalid(invalid.code());
        }
        if matches!(event.payload, Payload::Tick {}) {
            return Expect::Applied;
        }
        if self.seen.contains_key(&event.event_id) {
            return Expect::Invalid("duplicate");
        }
        let expect = match self.apply_payload(event, hold_effects, discrepancy, notifications) {
            Ok(()) => Expect::Applied,
            Err(e) => e,
        };
        if matches!(expect, Expect::Applied | Expect::Rejected(_)) {
            self.seen.insert(event.event_id, self.now);
        }
        expect
    }

    fn apply_payload(
        &mut self,
        event: &Event,
        hold_effects: &mut Vec<Effect>,
        discrepancy: &mut Option<Effect>,
        notifications: &mut Vec<Effect>,
    ) -> Result<(), Expect> {
        let now = self.now;
        let site = || {
            (
                event.sku.clone().expect("validated"),
                event.location.clone().expect("validated"),
            )
        };
        let document = || event.document.as_ref().map(|d| d.id.clone());
        match &event.payload {
            Payload::StockReceived { quantity, .. } => {
                let (s, l) = site();
                self.require_location(&l)?;
                self.row(&s, &l).on_hand += quantity;
                if let Some(d) = &event.document
                    && d.kind == DocumentKind::PurchaseOrder
                    && let Some(line) = self.po_lines.get_mut(&(s, l, d.id.clone()))
                {
                    line.1 += quantity;
                }
            }
            Payload::StockAdjusted { delta, state } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let row = self.row(&s, &l);
                let bucket = match state {
                    StockState::Sellable => None,
                    StockState::Damaged => Some(&mut row.damaged),
                    StockState::QualityControl => Some(&mut row.quality_control),
                };
                if let Some(bucket) = bucket {
                    ok_or(*bucket + delta >= 0, Expect::Invalid("not_enough_in_state"))?;
                    *bucket += delta;
                }
                row.on_hand += delta;
            }
            Payload::StockCounted { quantity } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let row = self.row(&s, &l);
                let books = row.on_hand;
                row.on_hand = *quantity;
                if books != *quantity {
                    *discrepancy = Some(Effect::CountDiscrepancy {
                        sku: s,
                        location: l,
                        books,
                        counted: *quantity,
                    });
                }
            }
            Payload::StockStateChanged { quantity, from, to } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let row = self.row(&s, &l);
                let in_from = match from {
                    StockState::Sellable => row.on_hand - row.damaged - row.quality_control,
                    StockState::Damaged => row.damaged,
                    StockState::QualityControl => row.quality_control,
                };
                ok_or(in_from >= *quantity, Expect::Invalid("not_enough_in_state"))?;
                match from {
                    StockState::Sellable => {}
                    StockState::Damaged => row.damaged -= quantity,
                    StockState::QualityControl => row.quality_control -= quantity,
                }
                match to {
                    StockState::Sellable => {}
                    StockState::Damaged => row.damaged += quantity,
                    StockState::QualityControl => row.quality_control += quantity,
                }
            }
            Payload::TransferShipped {
                to_location,
                quantity,
            } => {
                let (s, l) = site();
                self.require_location(&l)?;
                self.require_location(to_location)?;
                let key = (s.clone(), document().expect("validated"));
                let line = self.transfers.entry(key.clone()).or_insert((
                    l.clone(),
                    to_location.clone(),
                    0,
                    0,
                ));
                if line.0 != l || &line.1 != to_location {
                    if line.2 == 0 && line.3 == 0 {
                        self.transfers.remove(&key);
                    }
                    return Err(Expect::Invalid("transfer_route_mismatch"));
                }
                line.2 += quantity;
                self.row(&s, &l).on_hand -= quantity;
            }
            Payload::TransferReceived {
                from_location,
                quantity,
            } => {
                let (s, l) = site();
                self.require_location(&l)?;
                self.require_location(from_location)?;
                let key = (s.clone(), document().expect("validated"));
                let line = self.transfers.entry(key.clone()).or_insert((
                    from_location.clone(),
                    l.clone(),
                    0,
                    0,
                ));
                if &line.0 != from_location || line.1 != l {
                    if line.2 == 0 && line.3 == 0 {
                        self.transfers.remove(&key);
                    }
                    return Err(Expect::Invalid("transfer_route_mismatch"));
                }
                line.3 += quantity;
                self.row(&s, &l).on_hand += quantity;
            }
            Payload::IncomingExpected { quantity, .. } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let line = self
                    .po_lines
                    .entry((s, l, document().expect("validated")))
                    .or_insert((0, 0));
                line.0 = *quantity;
            }
            Payload::IncomingCancelled {} => {
                let (s, l) = site();
                self.require_location(&l)?;
                let key = (s, l, document().expect("validated"));
                ok_or(
                    self.po_lines.remove(&key).is_some(),
                    Expect::Invalid("unknown_document"),
                )?;
            }
            Payload::TillSale { quantity, .. } => {
                let (s, l) = site();
                self.require_location(&l)?;
                self.row(&s, &l).on_hand -= quantity;
            }
            Payload::Returned {
                quantity,
                disposition,
                ..
            } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let row = self.row(&s, &l);
                match disposition {
                    ReturnDisposition::Restock => row.on_hand += quantity,
                    ReturnDisposition::Damaged => {
                        row.on_hand += quantity;
                        row.damaged += quantity;
                    }
                    ReturnDisposition::QualityControl => {
                        row.on_hand += quantity;
                        row.quality_control += quantity;
                    }
                    ReturnDisposition::Discard => {}
                }
            }
            Payload::HoldRequested {
                hold_id,
                quantity,
                ttl_seconds,
                kind,
                group,
                ..
            } => {
                let s = event.sku.clone().expect("validated");
                if self.holds.contains_key(hold_id) {
                    return Err(Expect::Rejected(Rejection::HoldIdInUse {
                        hold_id: hold_id.clone(),
                    }));
                }
                let decision = self.decide(
                    &s,
                    &event.channel,
                    event.location.as_ref(),
                    group.as_ref(),
                    *quantity,
                    *ttl_seconds,
                    *kind,
                );
                let mut hold = MHold {
                    sku: s.clone(),
                    location: None,
                    quantity: *quantity,
                    channel: event.channel.clone(),
                    kind: *kind,
                    status: HoldStatus::Rejected,
                    confirmed: false,
                    allocation_units: 0,
                    expires_at: LogTime(now.millis() + i64::from(*ttl_seconds) * 1_000),
                    updated_at: now,
                    ready_at: None,
                    rejection: None,
                };
                match decision {
                    Err(rejection) => {
                        hold.rejection = Some(rejection.clone());
                        self.holds.insert(hold_id.clone(), hold);
                        hold_effects.push(Effect::HoldRejected {
                            hold_id: hold_id.clone(),
                            sku: s,
                            rejection: rejection.clone(),
                        });
                        return Err(Expect::Rejected(rejection));
                    }
                    Ok(location) => {
                        hold.allocation_units =
                            self.unused(&s, &location, &event.channel).min(*quantity);
                        hold.location = Some(location.clone());
                        hold.status = HoldStatus::Held;
                        hold_effects.push(Effect::HoldAccepted {
                            hold_id: hold_id.clone(),
                            sku: s,
                            location,
                            quantity: *quantity,
                            expires_at: hold.expires_at,
                        });
                        self.holds.insert(hold_id.clone(), hold);
                    }
                }
            }
            Payload::HoldConfirmed { hold_id }
            | Payload::HoldReleased { hold_id }
            | Payload::HoldReadyForPickup { hold_id }
            | Payload::HoldCollected { hold_id }
            | Payload::HoldNoShow { hold_id }
            | Payload::HoldShipped { hold_id } => {
                self.transition(event, hold_id, hold_effects)?;
            }
            Payload::WaitlistJoined {
                customer_ref,
                quantity,
                group,
            } => {
                let s = event.sku.clone().expect("validated");
                let (target, locations) = match (&event.location, group) {
                    (Some(l), _) => {
                        ok_or(
                            self.locations.contains_key(l),
                            Expect::Rejected(Rejection::UnknownLocation {
                                location: l.clone(),
                            }),
                        )?;
                        (WaitTarget::Location(l.clone()), vec![l.clone()])
                    }
                    (None, Some(g)) => {
                        let members = self.group_members(g);
                        ok_or(
                            !members.is_empty(),
                            Expect::Rejected(Rejection::UnknownGroup { group: g.clone() }),
                        )?;
                        (WaitTarget::Group(g.clone()), members)
                    }
                    (None, None) => unreachable!("validated"),
                };
                // A second wish for the same target replaces the first.
                let entries = self.waitlists.entry(s.clone()).or_default();
                entries.retain(|w| !(&w.customer == customer_ref && w.target == target));
                entries.push(Wish {
                    customer: customer_ref.clone(),
                    target,
                    quantity: *quantity,
                    joined: event.event_id,
                });
                // Already there: told at once.
                for l in locations {
                    let available = self.available(&s, &l);
                    self.notify(&s, &l, available, notifications);
                }
            }
            Payload::WaitlistLeft { customer_ref } => {
                let s = event.sku.clone().expect("validated");
                let on_list = self
                    .waitlists
                    .get(&s)
                    .is_some_and(|ws| ws.iter().any(|w| &w.customer == customer_ref));
                ok_or(
                    on_list,
                    Expect::Rejected(Rejection::NotOnWaitlist {
                        customer_ref: customer_ref.clone(),
                    }),
                )?;
                // Leaving drops every wish of the customer for the SKU.
                let entries = self.waitlists.get_mut(&s).expect("on the list");
                entries.retain(|w| &w.customer != customer_ref);
                if entries.is_empty() {
                    self.waitlists.remove(&s);
                }
            }
            Payload::LocationDefined {
                kind,
                groups,
                active,
                ..
            } => {
                self.locations.insert(
                    event.location.clone().expect("validated"),
                    MLocation {
                        kind: *kind,
                        groups: groups.iter().cloned().collect(),
                        active: *active,
                    },
                );
            }
            Payload::ChannelDefined {
                channel,
                locations,
                groups,
                buffer,
            } => {
                self.channels.insert(
                    channel.clone(),
                    MChannel {
                        locations: locations.iter().cloned().collect(),
                        groups: groups.iter().cloned().collect(),
                        buffer: *buffer,
                    },
                );
            }
            Payload::SafetyStockSet { quantity } => {
                let (s, l) = site();
                self.require_location(&l)?;
                self.row(&s, &l).safety_stock = *quantity;
            }
            Payload::AllocationSet { channel, quantity } => {
                let (s, l) = site();
                self.require_location(&l)?;
                let key = (s.clone(), l.clone(), channel.clone());
                let before = self.allocated.get(&key).copied().unwrap_or(0);
                if before != *quantity {
                    let in_use = self.in_use(&s, &l, channel);
                    hold_effects.push(Effect::AllocationChanged {
                        sku: s,
                        location: l,
                        channel: channel.clone(),
                        before: stockline_domain::Allocation {
                            allocated: before,
                            in_use,
                        },
                        after: stockline_domain::Allocation {
                            allocated: *quantity,
                            in_use,
                        },
                    });
                }
                self.allocated.insert(key, *quantity);
            }
            Payload::Tick {} => {}
        }
        Ok(())
    }

    /// Where a hold goes, or why not.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        sku: &Sku,
        channel: &ChannelId,
        location: Option<&LocationId>,
        group: Option<&GroupId>,
        quantity: i64,
        ttl_seconds: u32,
        kind: HoldKind,
    ) -> Result<LocationId, Rejection> {
        ok_or(
            (1..=QUANTITY_MAX).contains(&quantity),
            Rejection::QuantityNotPositive {
                quantity,
                max: QUANTITY_MAX,
            },
        )?;
        ok_or(
            (1..=TTL_MAX).contains(&ttl_seconds),
            Rejection::TtlOutOfRange {
                ttl_seconds,
                max: TTL_MAX,
            },
        )?;
        ok_or(
            self.channels.contains_key(channel),
            Rejection::UnknownChannel {
                channel: channel.clone(),
            },
        )?;
        let eligible = |l: &LocationId, config: &MLocation| {
            config.active
                && (!kind.is_pickup() || config.kind == LocationKind::Store)
                && self.sells_from(channel, l)
        };
        if let Some(l) = location {
            let Some(config) = self.locations.get(l) else {
                return Err(Rejection::UnknownLocation {
                    location: l.clone(),
                });
            };
            ok_or(
                config.active,
                Rejection::LocationInactive {
                    location: l.clone(),
                },
            )?;
            ok_or(
                !kind.is_pickup() || config.kind == LocationKind::Store,
                Rejection::NotAPickupLocation {
                    location: l.clone(),
                },
            )?;
            ok_or(
                self.sells_from(channel, l),
                Rejection::NotSellableOnChannel {
                    channel: channel.clone(),
                    target: l.to_string(),
                },
            )?;
            let view = self.view(channel, sku, l);
            ok_or(
                view >= quantity,
                Rejection::InsufficientAvailability {
                    requested: quantity,
                    available: view,
                },
            )?;
            return Ok(l.clone());
        }
        let g = group.expect("validated: a location or a group");
        let members = self.group_members(g);
        ok_or(
            !members.is_empty(),
            Rejection::UnknownGroup { group: g.clone() },
        )?;
        // The most the channel may promise; the smallest id among equals.
        let best = members
            .iter()
            .filter(|l| eligible(l, &self.locations[*l]))
            .map(|l| (self.view(channel, sku, l), l))
            .fold(
                None,
                |best: Option<(i64, &LocationId)>, (v, l)| match best {
                    Some((bv, _)) if bv >= v => best,
                    _ => Some((v, l)),
                },
            );
        let Some((view, l)) = best else {
            return Err(Rejection::NotSellableOnChannel {
                channel: channel.clone(),
                target: format!("group {g}"),
            });
        };
        ok_or(
            view >= quantity,
            Rejection::InsufficientAvailability {
                requested: quantity,
                available: view,
            },
        )?;
        Ok(l.clone())
    }

    fn transition(
        &mut self,
        event: &Event,
        hold_id: &HoldId,
        hold_effects: &mut Vec<Effect>,
    ) -> Result<(), Expect> {
        let now = self.now;
        let reject = |r: Rejection| Err(Expect::Rejected(r));
        let id = || hold_id.clone();
        let Some(h) = self.holds.get(hold_id).cloned() else {
            return reject(Rejection::UnknownHold { hold_id: id() });
        };
        if event.sku.as_ref() != Some(&h.sku) {
            return reject(Rejection::SkuMismatch {
                hold_id: id(),
                hold_sku: h.sku.clone(),
            });
        }
        // Only a hold that holds units somewhere can be at the wrong place.
        if let (Some(l), Some(held_at)) = (&event.location, &h.location)
            && l != held_at
        {
            return reject(Rejection::LocationMismatch {
                hold_id: id(),
                hold_location: held_at.to_string(),
            });
        }
        if h.status == HoldStatus::Expired {
            return reject(Rejection::HoldExpired { hold_id: id() });
        }
        if !h.is_open() {
            return reject(Rejection::HoldClosed {
                hold_id: id(),
                status: h.status,
            });
        }
        let pickup_step = matches!(
            event.payload,
            Payload::HoldReadyForPickup { .. }
                | Payload::HoldCollected { .. }
                | Payload::HoldNoShow { .. }
        );
        if pickup_step && !h.kind.is_pickup() {
            return reject(Rejection::NotAPickup {
                hold_id: id(),
                kind: h.kind,
            });
        }
        let location = h.location.clone().expect("an open hold has a location");
        let mut next = h.clone();
        next.updated_at = now;
        match &event.payload {
            Payload::HoldConfirmed { .. } => {
                if h.confirmed {
                    return reject(Rejection::AlreadyConfirmed { hold_id: id() });
                }
                next.confirmed = true;
            }
            Payload::HoldReadyForPickup { .. } => {
                if h.status == HoldStatus::ReadyForPickup {
                    return reject(Rejection::AlreadyReady { hold_id: id() });
                }
                next.status = HoldStatus::ReadyForPickup;
                next.ready_at = Some(now);
            }
            Payload::HoldReleased { .. } => next.status = HoldStatus::Released,
            Payload::HoldNoShow { .. } => next.status = HoldStatus::NoShow,
            Payload::HoldCollected { .. } | Payload::HoldShipped { .. } => {
                if matches!(event.payload, Payload::HoldShipped { .. }) {
                    if !h.confirmed {
                        return reject(Rejection::NotConfirmed { hold_id: id() });
                    }
                    next.status = HoldStatus::Shipped;
                } else {
                    next.status = HoldStatus::Collected;
                }
                // The units leave; allocated units handed over are used up.
                self.row(&h.sku, &location).on_hand -= h.quantity;
                let key = (h.sku.clone(), location.clone(), h.channel.clone());
                if let Some(a) = self.allocated.get_mut(&key) {
                    *a = (*a - h.allocation_units).max(0);
                }
            }
            _ => unreachable!("only lifecycle events get here"),
        }
        hold_effects.push(Effect::HoldChanged {
            hold_id: id(),
            sku: h.sku.clone(),
            location,
            from: h.status,
            to: next.status,
            confirmed: next.confirmed,
        });
        self.holds.insert(id(), next);
        Ok(())
    }

    // ----- Comparing with the ledger. -----

    /// The whole ledger against the model: quantities of every row, holds, exclusive
    /// allocations, waitlists, log time and the remembered event ids.
    pub fn compare(&self, ledger: &Ledger) -> Result<(), String> {
        if ledger.log_time() != self.now {
            return Err(format!(
                "log time {:?}, the model says {:?}",
                ledger.log_time(),
                self.now
            ));
        }
        let mut keys = self.keys();
        keys.extend(ledger.stock().keys().cloned());
        for (s, l) in &keys {
            let want = self.quantities(s, l);
            let got = ledger.quantities(s, l);
            if want != got {
                return Err(format!(
                    "{s}@{l}: the ledger has {got:?}, the model {want:?}"
                ));
            }
        }
        let ids: BTreeSet<&HoldId> = self.holds.keys().chain(ledger.holds().keys()).collect();
        for id in ids {
            let (Some(want), Some(got)) = (self.holds.get(id), ledger.hold(id)) else {
                return Err(format!(
                    "hold {id}: the model has {:?}, the ledger {:?}",
                    self.holds.get(id),
                    ledger.hold(id)
                ));
            };
            let got_m = MHold {
                sku: got.sku.clone(),
                location: got.location.clone(),
                quantity: got.quantity,
                channel: got.channel.clone(),
                kind: got.kind,
                status: got.status,
                confirmed: got.confirmed,
                allocation_units: got.allocation_units,
                expires_at: got.expires_at,
                updated_at: got.updated_at,
                ready_at: got.ready_at,
                rejection: got.rejection.clone(),
            };
            if &got_m != want {
                return Err(format!(
                    "hold {id}: the ledger has {got_m:?}, the model {want:?}"
                ));
            }
        }
        let mut allocation_keys: BTreeSet<_> = self.allocated.keys().cloned().collect();
        allocation_keys.extend(ledger.allocations().keys().cloned());
        for key in allocation_keys {
            let allocated = self.allocated.get(&key).copied().unwrap_or(0);
            let in_use = self.in_use(&key.0, &key.1, &key.2);
            let got = ledger.allocations().get(&key).copied().unwrap_or_default();
            if (got.allocated, got.in_use) != (allocated, in_use) {
                return Err(format!(
                    "allocation {key:?}: the ledger has {got:?}, the model {allocated} allocated, {in_use} in use"
                ));
            }
        }
        let ledger_lists: BTreeMap<Sku, Vec<(CustomerRef, WaitTarget, i64, EventId)>> = ledger
            .waitlists()
            .iter()
            .map(|(s, es)| {
                let entries = es
                    .iter()
                    .map(|e| {
                        (
                            e.customer_ref.clone(),
                            e.target.clone(),
                            e.quantity,
                            e.joined_event_id,
                        )
                    })
                    .collect();
                (s.clone(), entries)
            })
            .collect();
        let model_lists: BTreeMap<Sku, Vec<(CustomerRef, WaitTarget, i64, EventId)>> = self
            .waitlists
            .iter()
            .map(|(s, ws)| {
                let entries = ws
                    .iter()
                    .map(|w| (w.customer.clone(), w.target.clone(), w.quantity, w.joined))
                    .collect();
                (s.clone(), entries)
            })
            .collect();
        if ledger_lists != model_lists {
            return Err(format!(
                "waitlists: the ledger has {ledger_lists:?}, the model {model_lists:?}"
            ));
        }
        let seen: BTreeMap<EventId, LogTime> =
            ledger.seen().iter().map(|(at, id)| (*id, *at)).collect();
        if seen != self.seen {
            return Err(format!(
                "remembered event ids differ: {} in the ledger, {} in the model",
                seen.len(),
                self.seen.len()
            ));
        }
        Ok(())
    }

    /// Holds that are open and unconfirmed, with their expiry.
    pub fn expiring(&self) -> Vec<(LogTime, HoldId)> {
        self.holds
            .iter()
            .filter(|(_, h)| h.is_open() && !h.confirmed)
            .map(|(id, h)| (h.expires_at, id.clone()))
            .collect()
    }
}
