//! Per-channel counters: what each fold outcome adds to the daily figures.
//!
//! A pure function of the event, the outcome and the ledger after the fold, so the
//! live projector, a rebuild and an analyst's replay count identically. Counters are
//! attributed to the channel that sold (a hold's channel, even when the store hands
//! it over) and to the location where it happened; days are UTC days of log time.

use serde::{Deserialize, Serialize};

use crate::event::{Event, Payload};
use crate::fold::Effect;
use crate::ids::{ChannelId, LocationId};
use crate::state::{HoldStatus, Ledger};
use crate::time::LogTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Units that left through a sale: till sales, collected and shipped holds.
    UnitsSold,
    /// Revenue of those units, in minor currency units (where events carry prices).
    RevenueMinor,
    TillSales,
    HoldsRequested,
    HoldsAccepted,
    HoldsRejected,
    HoldsExpired,
    HoldsConfirmed,
    HoldsReleased,
    HoldsReadyForPickup,
    HoldsCollected,
    HoldsNoShow,
    HoldsShipped,
    /// Click & collect and reserve-in-store holds collected, counted for the channel
    /// that took the order: for an online channel this is its web-to-store figure.
    /// The pickup rate is collected / (collected + no-show + expired pickups).
    PickupsCollected,
    PickupsNoShow,
    PickupsExpired,
    /// Milliseconds from ready-for-pickup to collected, summed (divide by
    /// `PickupsCollectedAfterReady` for the mean).
    PickupReadyToCollectedMs,
    PickupsCollectedAfterReady,
    UnitsReturned,
    /// Returns taken back through another channel than the one that sold.
    ReturnsCrossChannel,
    UnitsReceived,
    CountDiscrepancies,
    WaitlistJoined,
    WaitlistNotified,
}

impl Metric {
    pub const ALL: [Metric; 24] = [
        Metric::UnitsSold,
        Metric::RevenueMinor,
        Metric::TillSales,
        Metric::HoldsRequested,
        Metric::HoldsAccepted,
        Metric::HoldsRejected,
        Metric::HoldsExpired,
        Metric::HoldsConfirmed,
        Metric::HoldsReleased,
        Metric::HoldsReadyForPickup,
        Metric::HoldsCollected,
        Metric::HoldsNoShow,
        Metric::HoldsShipped,
        Metric::PickupsCollected,
        Metric::PickupsNoShow,
        Metric::PickupsExpired,
        Metric::PickupReadyToCollectedMs,
        Metric::PickupsCollectedAfterReady,
        Metric::UnitsReturned,
        Metric::ReturnsCrossChannel,
        Metric::UnitsReceived,
        Metric::CountDiscrepancies,
        Metric::WaitlistJoined,
        Metric::WaitlistNotified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::UnitsSold => "units_sold",
            Metric::RevenueMinor => "revenue_minor",
            Metric::TillSales => "till_sales",
            Metric::HoldsRequested => "holds_requested",
            Metric::HoldsAccepted => "holds_accepted",
            Metric::HoldsRejected => "holds_rejected",
            Metric::HoldsExpired => "holds_expired",
            Metric::HoldsConfirmed => "holds_confirmed",
            Metric::HoldsReleased => "holds_released",
            Metric::HoldsReadyForPickup => "holds_ready_for_pickup",
            Metric::HoldsCollected => "holds_collected",
            Metric::HoldsNoShow => "holds_no_show",
            Metric::HoldsShipped => "holds_shipped",
            Metric::PickupsCollected => "pickups_collected",
            Metric::PickupsNoShow => "pickups_no_show",
            Metric::PickupsExpired => "pickups_expired",
            Metric::PickupReadyToCollectedMs => "pickup_ready_to_collected_ms",
            Metric::PickupsCollectedAfterReady => "pickups_collected_after_ready",
            Metric::UnitsReturned => "units_returned",
            Metric::ReturnsCrossChannel => "returns_cross_channel",
            Metric::UnitsReceived => "units_received",
            Metric::CountDiscrepancies => "count_discrepancies",
            Metric::WaitlistJoined => "waitlist_joined",
            Metric::WaitlistNotified => "waitlist_notified",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// One increment of one daily counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterDelta {
    /// UTC day of log time, as days since the Unix epoch.
    pub day: i64,
    pub channel: ChannelId,
    /// Where it happened, when it happened somewhere.
    pub location: Option<LocationId>,
    pub metric: Metric,
    /// A breakdown of the metric: the ISO 4217 currency of `RevenueMinor`, the
    /// rejection code of `HoldsRejected`; `None` for the others.
    pub detail: Option<String>,
    pub delta: i64,
}

/// The counters one folded record adds: `applied` is the event when the fold applied
/// or rejected it (not for duplicates, invalid or undecodable records), `effects`
/// everything that changed (expiries included), `ledger` the state after the fold
/// (holds just changed are still in it). Appended to `out`, which a caller folding
/// many records reuses (an allocation per record otherwise).
pub fn counters(
    out: &mut Vec<CounterDelta>,
    applied: Option<&Event>,
    effects: &[Effect],
    ledger: &Ledger,
    now: LogTime,
) {
    let event = applied;
    let day = now.day_index();
    let mut push = |channel: &ChannelId,
                    location: Option<&LocationId>,
                    metric,
                    detail: Option<&str>,
                    delta| {
        if delta != 0 {
            out.push(CounterDelta {
                day,
                channel: channel.clone(),
                location: location.cloned(),
                metric,
                detail: detail.map(str::to_owned),
                delta,
            });
        }
    };
    let mut add = |channel: &ChannelId, location: Option<&LocationId>, metric, delta| {
        push(channel, location, metric, None, delta);
    };
    let mut revenues: Vec<(ChannelId, Option<LocationId>, String, i64)> = Vec::new();
    let mut rejections: Vec<(ChannelId, Option<LocationId>, &'static str)> = Vec::new();
    if let Some(event) = applied {
        let location = event.location.as_ref();
        match &event.payload {
            Payload::TillSale { quantity, price } => {
                add(&event.channel, location, Metric::TillSales, 1);
                add(&event.channel, location, Metric::UnitsSold, *quantity);
                if let Some(price) = price {
                    revenues.push((
                        event.channel.clone(),
                        location.cloned(),
                        price.currency.clone(),
                        price.unit_minor.saturating_mul(*quantity),
                    ));
                }
            }
            Payload::Returned {
                quantity,
                sold_by_channel,
                ..
            } => {
                add(&event.channel, location, Metric::UnitsReturned, *quantity);
                if sold_by_channel
                    .as_ref()
                    .is_some_and(|sold_by| sold_by != &event.channel)
                {
                    add(
                        &event.channel,
                        location,
                        Metric::ReturnsCrossChannel,
                        *quantity,
                    );
                }
            }
            Payload::StockReceived { quantity, .. } => {
                add(&event.channel, location, Metric::UnitsReceived, *quantity);
            }
            Payload::HoldRequested { .. } => {
                add(&event.channel, location, Metric::HoldsRequested, 1);
            }
            Payload::WaitlistJoined { .. } => {
                add(&event.channel, location, Metric::WaitlistJoined, 1);
            }
            _ => {}
        }
    }
    for effect in effects {
        match effect {
            Effect::HoldAccepted {
                hold_id, location, ..
            } => {
                if let Some(hold) = ledger.hold(hold_id) {
                    add(&hold.channel, Some(location), Metric::HoldsAccepted, 1);
                }
            }
            Effect::HoldRejected {
                hold_id, rejection, ..
            } => {
                if let Some(hold) = ledger.hold(hold_id) {
                    let at = hold.requested_location.as_ref();
                    rejections.push((hold.channel.clone(), at.cloned(), rejection.code()));
                }
            }
            Effect::HoldChanged {
                hold_id,
                location,
                from,
                to,
                ..
            } => {
                let Some(hold) = ledger.hold(hold_id) else {
                    continue;
                };
                let channel = &hold.channel;
                let at = Some(location);
                let pickup = hold.kind.is_pickup();
                match to {
                    HoldStatus::Held if from == to => add(channel, at, Metric::HoldsConfirmed, 1),
                    HoldStatus::ReadyForPickup => {
                        add(channel, at, Metric::HoldsReadyForPickup, 1);
                    }
                    HoldStatus::Released => add(channel, at, Metric::HoldsReleased, 1),
                    HoldStatus::Expired => {
                        add(channel, at, Metric::HoldsExpired, 1);
                        if pickup {
                            add(channel, at, Metric::PickupsExpired, 1);
                        }
                    }
                    HoldStatus::NoShow => {
                        add(channel, at, Metric::HoldsNoShow, 1);
                        add(channel, at, Metric::PickupsNoShow, 1);
                    }
                    HoldStatus::Collected | HoldStatus::Shipped => {
                        let metric = if *to == HoldStatus::Collected {
                            Metric::HoldsCollected
                        } else {
                            Metric::HoldsShipped
                        };
                        add(channel, at, metric, 1);
                        add(channel, at, Metric::UnitsSold, hold.quantity);
                        if let Some(price) = &hold.unit_price {
                            revenues.push((
                                channel.clone(),
                                Some(location.clone()),
                                price.currency.clone(),
                                price.unit_minor.saturating_mul(hold.quantity),
                            ));
                        }
                        if *to == HoldStatus::Collected && pickup {
                            add(channel, at, Metric::PickupsCollected, 1);
                            if let Some(ready_at) = hold.ready_at {
                                let waited_ms =
                                    (hold.updated_at.millis() - ready_at.millis()).max(0);
                                add(channel, at, Metric::PickupReadyToCollectedMs, waited_ms);
                                add(channel, at, Metric::PickupsCollectedAfterReady, 1);
                            }
                        }
                    }
                    HoldStatus::Held | HoldStatus::Rejected => {}
                }
            }
            Effect::CountDiscrepancy { location, .. } => {
                if let Some(event) = event {
                    add(
                        &event.channel,
                        Some(location),
                        Metric::CountDiscrepancies,
                        1,
                    );
                }
            }
            Effect::WaitlistNotified { location, .. } => {
                let channel = event.map_or("system", |e| e.channel.as_str());
                if let Ok(channel) = ChannelId::new(channel) {
                    add(&channel, Some(location), Metric::WaitlistNotified, 1);
                }
            }
            Effect::StockChanged { .. }
            | Effect::AllocationChanged { .. }
            | Effect::Shortfall { .. } => {}
        }
    }
    for (channel, location, code) in rejections {
        push(
            &channel,
            location.as_ref(),
            Metric::HoldsRejected,
            Some(code),
            1,
        );
    }
    for (channel, location, currency, revenue) in revenues {
        push(
            &channel,
            location.as_ref(),
            Metric::RevenueMinor,
            Some(&currency),
            revenue,
        );
    }
}
