//! The fold: `fold(&mut ledger, &event, log_time) -> Outcome`.
//!
//! Pure and deterministic: the outcome and the new state depend only on the state and
//! the arguments. No clock (time is the log time handed in, kept monotonic), no IO, no
//! randomness, no iteration over unordered collections.
//!
//! Order of work for every record:
//! 1. advance log time to `max(previous, record time)`; expire every unconfirmed hold
//!    whose TTL has passed; forget event ids and closed holds older than the dedupe
//!    window;
//! 2. reject an unsupported schema version or an invalid event (state untouched);
//! 3. ignore a repeated event id;
//! 4. apply the event, checking everything before changing anything, so an event
//!    either applies whole or not at all.

use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{
    DocumentKind, Event, HOLD_TTL_SECONDS_MAX, HoldKind, LocationKind, Payload, QUANTITY_MAX,
    ReturnDisposition, StockState,
};
use crate::ids::{ChannelId, CustomerRef, DocumentId, GroupId, HoldId, LocationId, Sku};
use crate::state::{
    Allocation, ChannelConfig, DEDUPE_WINDOW_MS, Hold, HoldStatus, IncomingLine, Ledger,
    LocationConfig, Quantities, TransferLine, WaitTarget, WaitlistEntry,
};
use crate::tables::SkuState;
use crate::time::LogTime;
use crate::validate::{InvalidEvent, state_name};
use crate::view::{channel_view, eligible_view};

/// No quantity of a position may leave `[-POSITION_ABS_MAX, POSITION_ABS_MAX]`: an
/// event that would push one there is invalid. 10^15 units is far beyond any real
/// stock and far from `i64` overflow.
pub const POSITION_ABS_MAX: i64 = 1_000_000_000_000_000;

/// Namespace of the deterministic (UUID v5) ids of waitlist notifications.
pub const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_52d5_8f0b_4f0e_9d0e_51c1_3a7e_0b01);

/// What the fold decided about one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Everything that changed, in order: expiries caused by time passing first,
    /// then the event's own effects.
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The event was applied (possibly changing nothing, e.g. a discarded return).
    Applied,
    /// A decision was refused (a hold, a hold transition, a waitlist change): the
    /// refusal is recorded; quantities did not change.
    Rejected { rejection: Rejection },
    /// The event id was seen before: nothing changed.
    Duplicate,
    /// The event cannot be applied at all: nothing changed, it is dead-lettered.
    Invalid { invalid: InvalidEvent },
}

/// Why a decision was refused; [`Rejection::code`] is its stable name. Externally
/// tagged (`{"insufficient_availability": {...}}`) because holds, which keep their
/// rejection, are stored in bincode, which cannot decode internally tagged enums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    #[error("quantity {quantity} is not within 1..={max}")]
    QuantityNotPositive { quantity: i64, max: i64 },
    #[error("ttl of {ttl_seconds}s is not within 1..={max}")]
    TtlOutOfRange { ttl_seconds: u32, max: u32 },
    #[error("channel {channel} is not configured")]
    UnknownChannel { channel: ChannelId },
    #[error("location {location} is not defined")]
    UnknownLocation { location: LocationId },
    #[error("location {location} is not active")]
    LocationInactive { location: LocationId },
    #[error("group {group} has no locations")]
    UnknownGroup { group: GroupId },
    #[error("location {location} is not a store; pickups need one")]
    NotAPickupLocation { location: LocationId },
    #[error("channel {channel} does not sell from {target}")]
    NotSellableOnChannel { channel: ChannelId, target: String },
    #[error("{requested} requested, {available} available to this channel")]
    InsufficientAvailability { requested: i64, available: i64 },
    #[error("hold id {hold_id} is already used (its decision stands)")]
    HoldIdInUse { hold_id: HoldId },
    #[error("no hold {hold_id}")]
    UnknownHold { hold_id: HoldId },
    #[error("hold {hold_id} is for SKU {hold_sku}")]
    SkuMismatch { hold_id: HoldId, hold_sku: Sku },
    #[error("hold {hold_id} is at {hold_location}")]
    LocationMismatch {
        hold_id: HoldId,
        hold_location: String,
    },
    #[error("hold {hold_id} expired")]
    HoldExpired { hold_id: HoldId },
    #[error("hold {hold_id} is {status:?}")]
    HoldClosed { hold_id: HoldId, status: HoldStatus },
    #[error("hold {hold_id} is already confirmed")]
    AlreadyConfirmed { hold_id: HoldId },
    #[error("hold {hold_id} is already ready for pickup")]
    AlreadyReady { hold_id: HoldId },
    #[error("hold {hold_id} is not confirmed")]
    NotConfirmed { hold_id: HoldId },
    #[error("hold {hold_id} is not a pickup ({kind:?})")]
    NotAPickup { hold_id: HoldId, kind: HoldKind },
    #[error("{customer_ref} is not on the waitlist")]
    NotOnWaitlist { customer_ref: CustomerRef },
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::QuantityNotPositive { .. } => "quantity_not_positive",
            Rejection::TtlOutOfRange { .. } => "ttl_out_of_range",
            Rejection::UnknownChannel { .. } => "unknown_channel",
            Rejection::UnknownLocation { .. } => "unknown_location",
            Rejection::LocationInactive { .. } => "location_inactive",
            Rejection::UnknownGroup { .. } => "unknown_group",
            Rejection::NotAPickupLocation { .. } => "not_a_pickup_location",
            Rejection::NotSellableOnChannel { .. } => "not_sellable_on_channel",
            Rejection::InsufficientAvailability { .. } => "insufficient_availability",
            Rejection::HoldIdInUse { .. } => "hold_id_in_use",
            Rejection::UnknownHold { .. } => "unknown_hold",
            Rejection::SkuMismatch { .. } => "sku_mismatch",
            Rejection::LocationMismatch { .. } => "location_mismatch",
            Rejection::HoldExpired { .. } => "hold_expired",
            Rejection::HoldClosed { .. } => "hold_closed",
            Rejection::AlreadyConfirmed { .. } => "already_confirmed",
            Rejection::AlreadyReady { .. } => "already_ready",
            Rejection::NotConfirmed { .. } => "not_confirmed",
            Rejection::NotAPickup { .. } => "not_a_pickup",
            Rejection::NotOnWaitlist { .. } => "not_on_waitlist",
        }
    }
}

/// What made a stock row change: the event being folded, or time passing a hold's
/// TTL (which happens while folding whatever record moved log time past it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    Event,
    HoldExpired { hold_id: HoldId },
}

/// One thing that changed. The projector turns these into history rows, counters
/// and notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    StockChanged {
        sku: Sku,
        location: LocationId,
        before: Quantities,
        after: Quantities,
        cause: Cause,
    },
    AllocationChanged {
        sku: Sku,
        location: LocationId,
        channel: ChannelId,
        before: Allocation,
        after: Allocation,
    },
    HoldAccepted {
        hold_id: HoldId,
        sku: Sku,
        location: LocationId,
        quantity: i64,
        expires_at: LogTime,
    },
    HoldRejected {
        hold_id: HoldId,
        sku: Sku,
        rejection: Rejection,
    },
    /// A hold moved on: confirmed (status unchanged, `confirmed` now true), ready,
    /// collected, shipped, released, expired or no-show.
    HoldChanged {
        hold_id: HoldId,
        sku: Sku,
        location: LocationId,
        from: HoldStatus,
        to: HoldStatus,
        confirmed: bool,
    },
    /// A waiting customer should be told the SKU is available. The id is
    /// deterministic, so a consumer can deduplicate.
    WaitlistNotified {
        notification_id: Uuid,
        sku: Sku,
        location: LocationId,
        customer_ref: CustomerRef,
        quantity: i64,
        available: i64,
    },
    /// A count disagreed with the books.
    CountDiscrepancy {
        sku: Sku,
        location: LocationId,
        books: i64,
        counted: i64,
    },
    /// Physical stock no longer covers what is held, sold and set aside: some
    /// holds cannot be honoured until stock arrives or a count corrects the books.
    Shortfall {
        sku: Sku,
        location: LocationId,
        on_hand: i64,
        obligations: i64,
    },
}

/// Folds one record into the ledger. `record_time` is the record's log timestamp;
/// log time never goes back, so an earlier timestamp folds at the current log time.
pub fn fold(ledger: &mut Ledger, event: &Event, record_time: LogTime) -> Outcome {
    let mut effects = Vec::new();
    let verdict = fold_into(ledger, event, record_time, &mut effects);
    Outcome { verdict, effects }
}

/// [`fold`], with the effects appended to `effects` (which a caller folding
/// many records reuses: a vector grown per record was 0.7% of a replay).
pub fn fold_into(
    ledger: &mut Ledger,
    event: &Event,
    record_time: LogTime,
    effects: &mut Vec<Effect>,
) -> Verdict {
    let now = ledger.advance_to(record_time, effects);
    ledger.apply(event, now, effects)
}

/// Advances log time for a record that could not be decoded: time passes, holds
/// expire, nothing else changes.
pub fn advance(ledger: &mut Ledger, record_time: LogTime) -> Vec<Effect> {
    let mut effects = Vec::new();
    advance_into(ledger, record_time, &mut effects);
    effects
}

/// [`advance`], with the effects appended to `effects`.
pub fn advance_into(ledger: &mut Ledger, record_time: LogTime, effects: &mut Vec<Effect>) {
    ledger.advance_to(record_time, effects);
}

/// A stock row before and after a change that has been checked but not committed.
struct Edit {
    sku: Sku,
    location: LocationId,
    before: Quantities,
    after: Quantities,
    cause: Cause,
}

fn check_bounds(q: &Quantities) -> Result<(), InvalidEvent> {
    let fields = [
        ("on_hand", q.on_hand),
        ("reserved", q.reserved),
        ("committed", q.committed),
        ("damaged", q.damaged),
        ("quality_control", q.quality_control),
        ("safety_stock", q.safety_stock),
        ("incoming", q.incoming),
        ("in_transit", q.in_transit),
    ];
    for (field, value) in fields {
        if value.abs() > POSITION_ABS_MAX {
            return Err(InvalidEvent::PositionOutOfRange {
                field,
                value,
                max: POSITION_ABS_MAX,
            });
        }
    }
    Ok(())
}

/// What a lifecycle event asks of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Confirm,
    Release,
    Ready,
    Collect,
    NoShow,
    Ship,
}

impl Ledger {
    fn advance_to(&mut self, record_time: LogTime, effects: &mut Vec<Effect>) -> LogTime {
        if record_time > self.log_time {
            self.log_time = record_time;
        }
        let now = self.log_time;
        // Peek before cloning: most records expire nothing.
        while let Some((expires_at, hold_id)) = self.expiries.first() {
            if *expires_at > now {
                break;
            }
            let (expires_at, hold_id) = (*expires_at, hold_id.clone());
            self.expire(&hold_id, expires_at, effects);
        }
        let horizon = now.minus_millis(DEDUPE_WINDOW_MS);
        self.seen
            .evict_before(horizon, &mut self.dirty.seen_evicted);
        while let Some((closed_at, _)) = self.closed_holds.front() {
            if *closed_at >= horizon {
                break;
            }
            let Some((_, hold_id)) = self.closed_holds.pop_front() else {
                unreachable!("the queue has a front")
            };
            let Some(forgotten) = self.holds.remove(&hold_id) else {
                unreachable!("closed-hold queue names {hold_id}, which does not exist")
            };
            assert!(
                forgotten.status.is_closed(),
                "closed-hold queue names {hold_id}, which is open"
            );
            // Its id leaves the dirty holds at the next drain (no longer tracked).
            self.dirty.holds_forgotten.insert(hold_id, *forgotten);
        }
        now
    }

    fn apply(&mut self, event: &Event, now: LogTime, effects: &mut Vec<Effect>) -> Verdict {
        if let Err(invalid) = event.validate() {
            return Verdict::Invalid { invalid };
        }
        if matches!(event.payload, Payload::Tick {}) {
            // Ticks only move time; they are written to every partition at a fixed
            // rate, and remembering their ids would fill the dedupe window for nothing.
            return Verdict::Applied;
        }
        if self.seen.contains(&event.event_id) {
            return Verdict::Duplicate;
        }
        let verdict = match self.apply_payload(event, now, effects) {
            Ok(None) => Verdict::Applied,
            Ok(Some(rejection)) => Verdict::Rejected { rejection },
            Err(invalid) => return Verdict::Invalid { invalid },
        };
        self.seen.insert(event.event_id, now);
        self.dirty.seen_added.push((event.event_id, now));
        verdict
    }

    /// `Ok(None)`: applied. `Ok(Some(r))`: a recorded refusal. `Err`: invalid, and
    /// nothing was changed.
    fn apply_payload(
        &mut self,
        event: &Event,
        now: LogTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<Rejection>, InvalidEvent> {
        match &event.payload {
            Payload::StockReceived { quantity, .. } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                edit.after.on_hand += quantity;
                let mut line_update = None;
                if let Some(doc) = &event.document
                    && doc.kind == DocumentKind::PurchaseOrder
                {
                    let key = (site.sku.clone(), site.location.clone(), doc.id.clone());
                    if let Some(line) = self.incoming.get(&key) {
                        let mut updated = *line;
                        updated.received += quantity;
                        edit.after.incoming -= line.outstanding() - updated.outstanding();
                        line_update = Some((key, updated));
                    }
                }
                self.commit([edit], effects)?;
                if let Some((key, line)) = line_update {
                    self.dirty.incoming.insert(key.clone());
                    self.incoming.insert(key, line);
                }
                Ok(None)
            }
            Payload::StockAdjusted { delta, state } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                edit.after.on_hand += delta;
                if let Some(bucket) = unavailable_bucket(&mut edit.after, *state) {
                    if *bucket + delta < 0 {
                        return Err(InvalidEvent::NotEnoughInState {
                            location: site.location.to_string(),
                            state: state_name(*state),
                            available: *bucket,
                            requested: -delta,
                        });
                    }
                    *bucket += delta;
                }
                self.commit([edit], effects)?;
                Ok(None)
            }
            Payload::StockCounted { quantity } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                let books = edit.before.on_hand;
                edit.after.on_hand = *quantity;
                self.commit([edit], effects)?;
                if books != *quantity {
                    effects.push(Effect::CountDiscrepancy {
                        sku: site.sku.clone(),
                        location: site.location.clone(),
                        books,
                        counted: *quantity,
                    });
                }
                Ok(None)
            }
            Payload::StockStateChanged { quantity, from, to } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                let in_from = match unavailable_bucket(&mut edit.after, *from) {
                    Some(bucket) => *bucket,
                    None => edit.before.on_hand - edit.before.unavailable(),
                };
                if in_from < *quantity {
                    return Err(InvalidEvent::NotEnoughInState {
                        location: site.location.to_string(),
                        state: state_name(*from),
                        available: in_from,
                        requested: *quantity,
                    });
                }
                if let Some(bucket) = unavailable_bucket(&mut edit.after, *from) {
                    *bucket -= quantity;
                }
                if let Some(bucket) = unavailable_bucket(&mut edit.after, *to) {
                    *bucket += quantity;
                }
                self.commit([edit], effects)?;
                Ok(None)
            }
            Payload::TransferShipped {
                to_location,
                quantity,
            } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                self.require_location(to_location)?;
                let transfer_id = document_id(event);
                let key = (site.sku.clone(), transfer_id.clone());
                let mut line = self.transfer_line(&key, site.location, to_location)?;
                let in_transit_before = line.in_transit();
                line.shipped += quantity;
                let mut source = self.edit(site.sku, site.location);
                source.after.on_hand -= quantity;
                let mut destination = self.edit(site.sku, to_location);
                destination.after.in_transit += line.in_transit() - in_transit_before;
                self.commit([source, destination], effects)?;
                self.dirty.transfers.insert(key.clone());
                self.transfers.insert(key, line);
                Ok(None)
            }
            Payload::TransferReceived {
                from_location,
                quantity,
            } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                self.require_location(from_location)?;
                let transfer_id = document_id(event);
                let key = (site.sku.clone(), transfer_id.clone());
                let mut line = self.transfer_line(&key, from_location, site.location)?;
                let in_transit_before = line.in_transit();
                line.received += quantity;
                let mut destination = self.edit(site.sku, site.location);
                destination.after.on_hand += quantity;
                destination.after.in_transit -= in_transit_before - line.in_transit();
                self.commit([destination], effects)?;
                self.dirty.transfers.insert(key.clone());
                self.transfers.insert(key, line);
                Ok(None)
            }
            Payload::IncomingExpected {
                quantity,
                expected_at,
            } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let key = (site.sku.clone(), site.location.clone(), document_id(event));
                let line = self.incoming.get(&key).copied();
                let outstanding_before = line.map_or(0, |l| l.outstanding());
                let updated = IncomingLine {
                    expected: *quantity,
                    received: line.map_or(0, |l| l.received),
                    expected_at_micros: expected_at.timestamp_micros(),
                };
                let mut edit = self.edit(site.sku, site.location);
                edit.after.incoming += updated.outstanding() - outstanding_before;
                self.commit([edit], effects)?;
                self.dirty.incoming.insert(key.clone());
                self.incoming.insert(key, updated);
                Ok(None)
            }
            Payload::IncomingCancelled {} => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let key = (site.sku.clone(), site.location.clone(), document_id(event));
                let Some(line) = self.incoming.get(&key).copied() else {
                    return Err(InvalidEvent::UnknownDocument {
                        document: key.2.to_string(),
                    });
                };
                let mut edit = self.edit(site.sku, site.location);
                edit.after.incoming -= line.outstanding();
                self.commit([edit], effects)?;
                self.dirty.incoming.insert(key.clone());
                self.incoming.remove(&key);
                Ok(None)
            }
            Payload::TillSale { quantity, .. } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                edit.after.on_hand -= quantity;
                self.commit([edit], effects)?;
                Ok(None)
            }
            Payload::Returned {
                quantity,
                disposition,
                ..
            } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                match disposition {
                    ReturnDisposition::Restock => edit.after.on_hand += quantity,
                    ReturnDisposition::Damaged => {
                        edit.after.on_hand += quantity;
                        edit.after.damaged += quantity;
                    }
                    ReturnDisposition::QualityControl => {
                        edit.after.on_hand += quantity;
                        edit.after.quality_control += quantity;
                    }
                    ReturnDisposition::Discard => {}
                }
                self.commit([edit], effects)?;
                Ok(None)
            }
            Payload::HoldRequested { .. } => Ok(self.request_hold(event, now, effects)),
            Payload::HoldConfirmed { hold_id } => {
                self.transition(event, hold_id, Transition::Confirm, now, effects)
            }
            Payload::HoldReleased { hold_id } => {
                self.transition(event, hold_id, Transition::Release, now, effects)
            }
            Payload::HoldReadyForPickup { hold_id } => {
                self.transition(event, hold_id, Transition::Ready, now, effects)
            }
            Payload::HoldCollected { hold_id } => {
                self.transition(event, hold_id, Transition::Collect, now, effects)
            }
            Payload::HoldNoShow { hold_id } => {
                self.transition(event, hold_id, Transition::NoShow, now, effects)
            }
            Payload::HoldShipped { hold_id } => {
                self.transition(event, hold_id, Transition::Ship, now, effects)
            }
            Payload::WaitlistJoined {
                customer_ref,
                quantity,
                group,
            } => self.join_waitlist(event, customer_ref, *quantity, group.as_ref(), now, effects),
            Payload::WaitlistLeft { customer_ref } => {
                let sku = event.sku.as_ref().ok_or(InvalidEvent::MissingField {
                    kind: "waitlist_left",
                    field: "sku",
                })?;
                let on_list = self
                    .skus
                    .get(sku)
                    .is_some_and(|s| s.waitlist.iter().any(|e| &e.customer_ref == customer_ref));
                if !on_list {
                    return Ok(Some(Rejection::NotOnWaitlist {
                        customer_ref: customer_ref.clone(),
                    }));
                }
                self.skus.change_waitlist(sku, |entries| {
                    entries.retain(|e| &e.customer_ref != customer_ref);
                });
                self.dirty.waitlists.push(sku.clone());
                Ok(None)
            }
            Payload::LocationDefined {
                name,
                kind,
                groups,
                active,
            } => {
                let location = event.location.clone().ok_or(InvalidEvent::MissingField {
                    kind: "location_defined",
                    field: "location",
                })?;
                self.config.locations.insert(
                    location,
                    LocationConfig {
                        name: name.clone(),
                        kind: *kind,
                        groups: groups.iter().cloned().collect(),
                        active: *active,
                    },
                );
                self.dirty.config = true;
                Ok(None)
            }
            Payload::ChannelDefined {
                channel,
                locations,
                groups,
                buffer,
            } => {
                self.config.channels.insert(
                    channel.clone(),
                    ChannelConfig {
                        locations: locations.iter().cloned().collect(),
                        groups: groups.iter().cloned().collect(),
                        buffer: *buffer,
                    },
                );
                self.dirty.config = true;
                Ok(None)
            }
            Payload::SafetyStockSet { quantity } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let mut edit = self.edit(site.sku, site.location);
                edit.after.safety_stock = *quantity;
                self.commit([edit], effects)?;
                Ok(None)
            }
            Payload::AllocationSet { channel, quantity } => {
                let site = event.require_site()?;
                self.require_location(site.location)?;
                let before = self.skus.allocation(site.sku, site.location, channel);
                let after = Allocation {
                    allocated: *quantity,
                    in_use: before.in_use,
                };
                self.skus
                    .set_allocation(site.sku, site.location, channel, after);
                self.dirty.allocations.push((
                    site.sku.clone(),
                    site.location.clone(),
                    channel.clone(),
                ));
                if before != after {
                    effects.push(Effect::AllocationChanged {
                        sku: site.sku.clone(),
                        location: site.location.clone(),
                        channel: channel.clone(),
                        before,
                        after,
                    });
                }
                Ok(None)
            }
            Payload::Tick {} => Ok(None),
        }
    }

    fn require_location(&self, location: &LocationId) -> Result<&LocationConfig, InvalidEvent> {
        self.config
            .locations
            .get(location)
            .ok_or_else(|| InvalidEvent::UnknownLocation {
                location: location.to_string(),
            })
    }

    fn transfer_line(
        &self,
        key: &(Sku, DocumentId),
        from: &LocationId,
        to: &LocationId,
    ) -> Result<TransferLine, InvalidEvent> {
        match self.transfers.get(key) {
            None => Ok(TransferLine {
                from: from.clone(),
                to: to.clone(),
                shipped: 0,
                received: 0,
            }),
            Some(line) if &line.from == from && &line.to == to => Ok(line.clone()),
            Some(line) => Err(InvalidEvent::TransferRouteMismatch {
                transfer: key.1.to_string(),
                recorded: format!("{} -> {}", line.from, line.to),
                found: format!("{from} -> {to}"),
            }),
        }
    }

    fn edit(&self, sku: &Sku, location: &LocationId) -> Edit {
        let before = self.quantities(sku, location);
        Edit {
            sku: sku.clone(),
            location: location.clone(),
            before,
            after: before,
            cause: Cause::Event,
        }
    }

    /// Checks every edit, then writes them all, reports the changes and runs the
    /// waitlists of the changed rows. Nothing is written if any edit is out of bounds.
    fn commit<const N: usize>(
        &mut self,
        edits: [Edit; N],
        effects: &mut Vec<Effect>,
    ) -> Result<(), InvalidEvent> {
        for edit in &edits {
            check_bounds(&edit.after)?;
        }
        for edit in edits {
            edit.after.assert_invariants();
            if edit.after == edit.before {
                continue;
            }
            let Edit {
                sku,
                location,
                before,
                after,
                cause,
            } = edit;
            let raised = after.available() > before.available();
            let dirty = &mut self.dirty;
            let waiting = self
                .skus
                .write_stock(&sku, &location, after, |state, index| {
                    let row = &mut state.stock[index];
                    if row.marked != dirty.epoch {
                        row.marked = dirty.epoch;
                        dirty.stock.push(row.key.clone());
                    }
                    raised && !state.waitlist.is_empty()
                });
            let deficit_before = before.obligations() - before.on_hand;
            let deficit_after = after.obligations() - after.on_hand;
            let shortfall =
                (deficit_after > 0 && deficit_after > deficit_before).then(|| Effect::Shortfall {
                    sku: sku.clone(),
                    location: location.clone(),
                    on_hand: after.on_hand,
                    obligations: after.obligations(),
                });
            // The edit's ids move into the effect; copies only when a waitlist
            // needs them afterwards.
            let notify = waiting.then(|| (sku.clone(), location.clone()));
            effects.push(Effect::StockChanged {
                sku,
                location,
                before,
                after,
                cause,
            });
            effects.extend(shortfall);
            if let Some((sku, location)) = notify {
                self.notify_waitlist(&sku, &location, after.available(), effects);
            }
        }
        Ok(())
    }

    /// What `channel` may promise at `location` now.
    pub fn channel_available(&self, channel: &ChannelId, sku: &Sku, location: &LocationId) -> i64 {
        let quantities = self.quantities(sku, location);
        channel_view(
            &self.config,
            channel,
            location,
            &quantities,
            self.allocations_at(sku, location),
        )
    }

    fn request_hold(
        &mut self,
        event: &Event,
        now: LogTime,
        effects: &mut Vec<Effect>,
    ) -> Option<Rejection> {
        let Payload::HoldRequested {
            hold_id,
            order_id,
            order_line,
            customer_ref,
            quantity,
            ttl_seconds,
            kind,
            group,
            price,
        } = &event.payload
        else {
            unreachable!("request_hold is only called for hold requests")
        };
        let Some(sku) = event.sku.as_ref() else {
            unreachable!("validate() requires a SKU on hold requests")
        };
        // Decided before the id is looked up, so that one search of the hold map
        // both checks the id and makes room for the new hold.
        let decision = self.decide_hold(
            sku,
            &event.channel,
            event.location.as_ref(),
            group.as_ref(),
            *quantity,
            *ttl_seconds,
            *kind,
        );
        let slot = match self.holds.entry(hold_id.clone()) {
            // The id names an earlier decision, which stands; the hold row says what
            // it was. Nothing is recorded over it (this decision is dropped).
            Entry::Occupied(_) => {
                return Some(Rejection::HoldIdInUse {
                    hold_id: hold_id.clone(),
                });
            }
            Entry::Vacant(slot) => slot,
        };
        let expires_at = now.plus_seconds(*ttl_seconds);
        let mut hold = Hold {
            hold_id: hold_id.clone(),
            sku: sku.clone(),
            requested_location: event.location.clone(),
            requested_group: group.clone(),
            location: None,
            quantity: *quantity,
            channel: event.channel.clone(),
            order_id: order_id.clone(),
            order_line: *order_line,
            customer_ref: customer_ref.clone(),
            kind: *kind,
            status: HoldStatus::Rejected,
            confirmed: false,
            allocation_units: 0,
            unit_price: price.clone(),
            rejection: None,
            request_event_id: event.event_id,
            ttl_seconds: *ttl_seconds,
            requested_at: now,
            expires_at,
            ready_at: None,
            updated_at: now,
        };
        match decision {
            Err(rejection) => {
                hold.rejection = Some(rejection.clone());
                slot.insert(Box::new(hold));
                self.closed_holds.push_back((now, hold_id.clone()));
                self.dirty.holds.push(hold_id.clone());
                effects.push(Effect::HoldRejected {
                    hold_id: hold_id.clone(),
                    sku: sku.clone(),
                    rejection: rejection.clone(),
                });
                Some(rejection)
            }
            Ok((location, before)) => {
                let own_unused = self
                    .skus
                    .allocation(sku, &location, &event.channel)
                    .unused();
                let allocation_units = own_unused.min(*quantity);
                hold.location = Some(location.clone());
                hold.status = HoldStatus::Held;
                hold.allocation_units = allocation_units;
                slot.insert(Box::new(hold));
                let mut edit = Edit {
                    sku: sku.clone(),
                    location: location.clone(),
                    before,
                    after: before,
                    cause: Cause::Event,
                };
                edit.after.reserved += quantity;
                assert!(
                    edit.after.available() >= 0,
                    "hold {hold_id} accepted beyond availability"
                );
                // A reservation is bounded by availability, which is within bounds.
                if let Err(e) = self.commit([edit], effects) {
                    unreachable!("a hold within availability is within bounds: {e}")
                }
                if allocation_units > 0 {
                    self.change_allocation(sku, &location, &event.channel, allocation_units, 0);
                }
                self.expiries.insert((expires_at, hold_id.clone()));
                effects.push(Effect::HoldAccepted {
                    hold_id: hold_id.clone(),
                    sku: sku.clone(),
                    location,
                    quantity: *quantity,
                    expires_at,
                });
                self.dirty.holds.push(hold_id.clone());
                None
            }
        }
    }

    /// Where to hold, or why not. For "any location of group G": among the active
    /// locations of G that the channel sells from (stores only, for pickups), the one
    /// where the channel may promise the most units; ties go to the smallest location
    /// id. Spreading holds to the fullest location keeps the last units of small
    /// stores for walk-in customers.
    #[allow(clippy::too_many_arguments)]
    fn decide_hold(
        &self,
        sku: &Sku,
        channel: &ChannelId,
        location: Option<&LocationId>,
        group: Option<&GroupId>,
        quantity: i64,
        ttl_seconds: u32,
        kind: HoldKind,
    ) -> Result<(LocationId, Quantities), Rejection> {
        if !(1..=QUANTITY_MAX).contains(&quantity) {
            return Err(Rejection::QuantityNotPositive {
                quantity,
                max: QUANTITY_MAX,
            });
        }
        if !(1..=HOLD_TTL_SECONDS_MAX).contains(&ttl_seconds) {
            return Err(Rejection::TtlOutOfRange {
                ttl_seconds,
                max: HOLD_TTL_SECONDS_MAX,
            });
        }
        let Some(channel_config) = self.config.channels.get(channel) else {
            return Err(Rejection::UnknownChannel {
                channel: channel.clone(),
            });
        };
        // The SKU's rows, found once for every location considered.
        let sku_state = self.skus.get(sku);
        match (location, group) {
            (Some(location), _) => {
                let Some(config) = self.config.locations.get(location) else {
                    return Err(Rejection::UnknownLocation {
                        location: location.clone(),
                    });
                };
                if !config.active {
                    return Err(Rejection::LocationInactive {
                        location: location.clone(),
                    });
                }
                if kind.is_pickup() && config.kind != LocationKind::Store {
                    return Err(Rejection::NotAPickupLocation {
                        location: location.clone(),
                    });
                }
                if !channel_config.sells_from(location, config) {
                    return Err(Rejection::NotSellableOnChannel {
                        channel: channel.clone(),
                        target: location.to_string(),
                    });
                }
                // Checked above: the location is active and the channel sells there.
                let (quantities, available) =
                    view_at_eligible(sku_state, channel, channel_config, location);
                if available < quantity {
                    return Err(Rejection::InsufficientAvailability {
                        requested: quantity,
                        available,
                    });
                }
                Ok((location.clone(), quantities))
            }
            (None, Some(group)) => {
                let mut any_member = false;
                let mut best: Option<(i64, &LocationId, Quantities)> = None;
                for (member, config) in self.config.group_members(group) {
                    any_member = true;
                    if !config.active
                        || (kind.is_pickup() && config.kind != LocationKind::Store)
                        || !channel_config.sells_from(member, config)
                    {
                        continue;
                    }
                    let (quantities, available) =
                        view_at_eligible(sku_state, channel, channel_config, member);
                    // Strictly greater: the first (smallest id) wins ties.
                    if best.is_none_or(|(best_available, _, _)| available > best_available) {
                        best = Some((available, member, quantities));
                    }
                }
                match best {
                    None if !any_member => Err(Rejection::UnknownGroup {
                        group: group.clone(),
                    }),
                    None => Err(Rejection::NotSellableOnChannel {
                        channel: channel.clone(),
                        target: format!("group {group}"),
                    }),
                    Some((available, _, _)) if available < quantity => {
                        Err(Rejection::InsufficientAvailability {
                            requested: quantity,
                            available,
                        })
                    }
                    Some((_, member, quantities)) => Ok((member.clone(), quantities)),
                }
            }
            (None, None) => unreachable!("validate() requires a location or a group"),
        }
    }

    /// Adds `in_use_delta` to the channel's allocation in use and removes
    /// `consumed` allocated units (handed over), keeping the row tidy.
    fn change_allocation(
        &mut self,
        sku: &Sku,
        location: &LocationId,
        channel: &ChannelId,
        in_use_delta: i64,
        consumed: i64,
    ) {
        let before = self.skus.allocation(sku, location, channel);
        let after = Allocation {
            allocated: (before.allocated - consumed).max(0),
            in_use: before.in_use + in_use_delta,
        };
        assert!(
            after.in_use >= 0,
            "allocation in use went negative at {:?}",
            (sku, location, channel)
        );
        self.skus.set_allocation(sku, location, channel, after);
        self.dirty
            .allocations
            .push((sku.clone(), location.clone(), channel.clone()));
    }

    fn transition(
        &mut self,
        event: &Event,
        hold_id: &HoldId,
        transition: Transition,
        now: LogTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<Rejection>, InvalidEvent> {
        let rejection = |r| Ok(Some(r));
        // One search of the hold map: the hold is checked, then updated in place
        // once the stock change is known to be within bounds.
        let Some(hold) = self.holds.get_mut(hold_id) else {
            return rejection(Rejection::UnknownHold {
                hold_id: hold_id.clone(),
            });
        };
        if event.sku.as_ref() != Some(&hold.sku) {
            return rejection(Rejection::SkuMismatch {
                hold_id: hold_id.clone(),
                hold_sku: hold.sku.clone(),
            });
        }
        // A step named at another location than the one holding the units is
        // refused. A rejected hold holds nothing anywhere: it is answered as closed
        // below, whatever location the step names.
        if let (Some(location), Some(held_at)) = (&event.location, &hold.location)
            && location != held_at
        {
            return rejection(Rejection::LocationMismatch {
                hold_id: hold_id.clone(),
                hold_location: held_at.to_string(),
            });
        }
        match hold.status {
            HoldStatus::Expired => {
                return rejection(Rejection::HoldExpired {
                    hold_id: hold_id.clone(),
                });
            }
            status if status.is_closed() => {
                return rejection(Rejection::HoldClosed {
                    hold_id: hold_id.clone(),
                    status,
                });
            }
            _ => {}
        }
        let pickup_only = matches!(
            transition,
            Transition::Ready | Transition::Collect | Transition::NoShow
        );
        if pickup_only && !hold.kind.is_pickup() {
            return rejection(Rejection::NotAPickup {
                hold_id: hold_id.clone(),
                kind: hold.kind,
            });
        }
        match transition {
            Transition::Confirm if hold.confirmed => {
                return rejection(Rejection::AlreadyConfirmed {
                    hold_id: hold_id.clone(),
                });
            }
            Transition::Ready if hold.status == HoldStatus::ReadyForPickup => {
                return rejection(Rejection::AlreadyReady {
                    hold_id: hold_id.clone(),
                });
            }
            Transition::Ship if !hold.confirmed => {
                return rejection(Rejection::NotConfirmed {
                    hold_id: hold_id.clone(),
                });
            }
            _ => {}
        }
        // What the change needs, copied out of the hold (ids are reference-counted);
        // the hold itself is updated in place once everything is checked.
        let Some(location) = hold.location.clone() else {
            unreachable!("an open hold has a location")
        };
        let (sku, channel) = (hold.sku.clone(), hold.channel.clone());
        let (quantity, allocation_units, expires_at) =
            (hold.quantity, hold.allocation_units, hold.expires_at);
        let (from, was_confirmed, was_expiring) = (hold.status, hold.confirmed, hold.can_expire());
        let (mut status, mut confirmed, mut ready_at) = (from, was_confirmed, hold.ready_at);
        let before = self.skus.quantities(&sku, &location);
        let mut edit = Edit {
            sku: sku.clone(),
            location: location.clone(),
            before,
            after: before,
            cause: Cause::Event,
        };
        let mut allocation_in_use_delta = 0;
        let mut allocation_consumed = 0;
        match transition {
            Transition::Confirm => {
                take_held_units(&mut edit.after, was_confirmed, quantity);
                edit.after.committed += quantity;
                confirmed = true;
            }
            Transition::Ready => {
                status = HoldStatus::ReadyForPickup;
                ready_at = Some(now);
            }
            Transition::Release | Transition::NoShow => {
                take_held_units(&mut edit.after, was_confirmed, quantity);
                allocation_in_use_delta = -allocation_units;
                status = if transition == Transition::Release {
                    HoldStatus::Released
                } else {
                    HoldStatus::NoShow
                };
            }
            Transition::Collect | Transition::Ship => {
                take_held_units(&mut edit.after, was_confirmed, quantity);
                edit.after.on_hand -= quantity;
                allocation_in_use_delta = -allocation_units;
                allocation_consumed = allocation_units;
                status = if transition == Transition::Collect {
                    HoldStatus::Collected
                } else {
                    HoldStatus::Shipped
                };
            }
        }
        // Checked before anything is written: a hand-over can push a position that
        // facts already drove to the limit beyond it.
        check_bounds(&edit.after)?;
        hold.status = status;
        hold.confirmed = confirmed;
        hold.ready_at = ready_at;
        hold.updated_at = now;
        let can_expire = !status.is_closed() && !confirmed;
        if was_expiring && !can_expire {
            let removed = self.expiries.remove(&(expires_at, hold_id.clone()));
            assert!(removed, "expiry index lost {hold_id}");
        }
        if status.is_closed() {
            self.closed_holds.push_back((now, hold_id.clone()));
        }
        effects.push(Effect::HoldChanged {
            hold_id: hold_id.clone(),
            sku: sku.clone(),
            location: location.clone(),
            from,
            to: status,
            confirmed,
        });
        self.dirty.holds.push(hold_id.clone());
        if allocation_in_use_delta != 0 || allocation_consumed != 0 {
            self.change_allocation(
                &sku,
                &location,
                &channel,
                allocation_in_use_delta,
                allocation_consumed,
            );
        }
        self.commit([edit], effects)?;
        Ok(None)
    }

    /// Expires an unconfirmed open hold whose TTL passed.
    fn expire(&mut self, hold_id: &HoldId, expires_at: LogTime, effects: &mut Vec<Effect>) {
        let removed = self.expiries.remove(&(expires_at, hold_id.clone()));
        assert!(removed, "expiry index lost {hold_id}");
        let Some(hold) = self.holds.get_mut(hold_id) else {
            unreachable!("the expiry index names hold {hold_id}, which does not exist")
        };
        assert!(
            hold.can_expire(),
            "hold {hold_id} in the expiry index cannot expire"
        );
        let Some(location) = hold.location.clone() else {
            unreachable!("an open hold has a location")
        };
        let from = hold.status;
        hold.status = HoldStatus::Expired;
        // The hold closes at its expiry instant, whatever record made time pass it.
        hold.updated_at = expires_at;
        let (sku, channel, quantity, allocation_units) = (
            hold.sku.clone(),
            hold.channel.clone(),
            hold.quantity,
            hold.allocation_units,
        );
        self.closed_holds.push_back((expires_at, hold_id.clone()));
        self.dirty.holds.push(hold_id.clone());
        effects.push(Effect::HoldChanged {
            hold_id: hold_id.clone(),
            sku: sku.clone(),
            location: location.clone(),
            from,
            to: HoldStatus::Expired,
            confirmed: false,
        });
        if allocation_units > 0 {
            self.change_allocation(&sku, &location, &channel, -allocation_units, 0);
        }
        let mut edit = self.edit(&sku, &location);
        edit.after.reserved -= quantity;
        edit.cause = Cause::HoldExpired {
            hold_id: hold_id.clone(),
        };
        if let Err(e) = self.commit([edit], effects) {
            unreachable!("releasing a reservation stays within bounds: {e}")
        }
    }

    fn join_waitlist(
        &mut self,
        event: &Event,
        customer_ref: &CustomerRef,
        quantity: i64,
        group: Option<&GroupId>,
        now: LogTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<Rejection>, InvalidEvent> {
        let Some(sku) = event.sku.clone() else {
            unreachable!("validate() requires a SKU on waitlist events")
        };
        let target = match (&event.location, group) {
            (Some(location), _) => {
                if !self.config.locations.contains_key(location) {
                    return Ok(Some(Rejection::UnknownLocation {
                        location: location.clone(),
                    }));
                }
                WaitTarget::Location(location.clone())
            }
            (None, Some(group)) => {
                if self.config.group_members(group).next().is_none() {
                    return Ok(Some(Rejection::UnknownGroup {
                        group: group.clone(),
                    }));
                }
                WaitTarget::Group(group.clone())
            }
            (None, None) => unreachable!("validate() requires a location or a group"),
        };
        self.skus.change_waitlist(&sku, |entries| {
            // Joining again replaces the earlier wish for the same target.
            entries.retain(|e| !(&e.customer_ref == customer_ref && e.target == target));
            entries.push(WaitlistEntry {
                customer_ref: customer_ref.clone(),
                target: target.clone(),
                quantity,
                channel: event.channel.clone(),
                joined_event_id: event.event_id,
                joined_at: now,
            });
        });
        self.dirty.waitlists.push(sku.clone());
        // Already available: tell them now rather than at the next change.
        let locations: Vec<LocationId> = match &target {
            WaitTarget::Location(location) => vec![location.clone()],
            WaitTarget::Group(group) => self
                .config
                .group_members(group)
                .map(|(id, _)| id.clone())
                .collect(),
        };
        for location in locations {
            let available = self.quantities(&sku, &location).available();
            self.notify_waitlist(&sku, &location, available, effects);
        }
        Ok(None)
    }

    /// Notifies, in joining order, every waiting customer whose wish `available`
    /// units at `location` satisfy, and takes them off the list.
    fn notify_waitlist(
        &mut self,
        sku: &Sku,
        location: &LocationId,
        available: i64,
        effects: &mut Vec<Effect>,
    ) {
        if self.skus.get(sku).is_none_or(|s| s.waitlist.is_empty()) {
            return;
        }
        let location_groups = self.config.locations.get(location).map(|l| &l.groups);
        let mut notified_any = false;
        self.skus.change_waitlist(sku, |entries| {
            entries.retain(|entry| {
                let covers = match &entry.target {
                    WaitTarget::Location(l) => l == location,
                    WaitTarget::Group(g) => {
                        location_groups.is_some_and(|groups| groups.contains(g))
                    }
                };
                if !covers || available < entry.quantity {
                    return true;
                }
                notified_any = true;
                effects.push(Effect::WaitlistNotified {
                    notification_id: notification_id(sku, entry),
                    sku: sku.clone(),
                    location: location.clone(),
                    customer_ref: entry.customer_ref.clone(),
                    quantity: entry.quantity,
                    available,
                });
                false
            });
        });
        if notified_any {
            self.dirty.waitlists.push(sku.clone());
        }
    }
}

/// The stock row at `location` of a SKU (`sku_state`) and what `channel` may
/// promise there, for a location the caller found active and sold from by the
/// channel (the checks [`channel_view`] starts with): a hold decision reads the row
/// once and edits the copy it decided on.
fn view_at_eligible(
    sku_state: Option<&SkuState>,
    channel: &ChannelId,
    channel_config: &ChannelConfig,
    location: &LocationId,
) -> (Quantities, i64) {
    let Some(state) = sku_state else {
        let zero = Quantities::default();
        let view = eligible_view(channel, channel_config.buffer, &zero, std::iter::empty());
        return (zero, view);
    };
    let quantities = state.quantities(location);
    let view = eligible_view(
        channel,
        channel_config.buffer,
        &quantities,
        state.allocations_at(location),
    );
    (quantities, view)
}

/// The deterministic id of the notification that closes a waitlist entry: the same
/// entry always gives the same id, on replay too.
fn notification_id(sku: &Sku, entry: &WaitlistEntry) -> Uuid {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(entry.joined_event_id.as_bytes());
    name.extend_from_slice(sku.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(entry.customer_ref.as_str().as_bytes());
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, &name)
}

/// The unavailable bucket of a state, or `None` for sellable.
fn unavailable_bucket(q: &mut Quantities, state: StockState) -> Option<&mut i64> {
    match state {
        StockState::Sellable => None,
        StockState::Damaged => Some(&mut q.damaged),
        StockState::QualityControl => Some(&mut q.quality_control),
    }
}

/// The document id of an event whose kind requires one (checked by `validate`).
fn document_id(event: &Event) -> DocumentId {
    match &event.document {
        Some(doc) => doc.id.clone(),
        None => unreachable!("validate() requires a document on this kind"),
    }
}

/// Takes a hold's units out of `reserved` (unpaid) or `committed` (paid).
fn take_held_units(q: &mut Quantities, confirmed: bool, quantity: i64) {
    if confirmed {
        q.committed -= quantity;
    } else {
        q.reserved -= quantity;
    }
}
