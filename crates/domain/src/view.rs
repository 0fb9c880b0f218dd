//! Availability views: what a location has, and what a channel may promise.
//!
//! These are pure functions of a stock row, the exclusive allocations at the same
//! (SKU, location) and the configuration, so the fold (deciding holds) and the query
//! service (reading RocksDB rows) compute them with the same code.
//!
//! A channel's view of one location:
//!
//! ```text
//! base        = available (on_hand - reserved - committed - unavailable - safety_stock)
//! others      = unused exclusive allocations of every other channel at the location
//! own         = this channel's unused exclusive allocation at the location
//! pool        = base - others               (what this channel may touch at all)
//! shared      = pool - own                  (what every channel may sell)
//! view        = clamp(own + max(0, shared - buffer), 0, max(0, pool))
//! ```
//!
//! The buffer is taken from the shared units only: a channel's own allocation is
//! never hidden from it by its buffer. The view is zero where the channel does not
//! sell from the location, or the location is inactive or unknown. Since
//! `view <= max(0, pool) <= max(0, base)`, a hold of at most `view` units never drives
//! `available` below zero: that is the no-oversell rule.

use crate::ids::{ChannelId, LocationId};
use crate::state::{Allocation, Config, Quantities};

/// What `channel` may promise at one location.
pub fn channel_view<'a>(
    config: &Config,
    channel: &ChannelId,
    location: &LocationId,
    quantities: &Quantities,
    allocations: impl IntoIterator<Item = (&'a ChannelId, &'a Allocation)>,
) -> i64 {
    let Some(location_config) = config.locations.get(location) else {
        return 0;
    };
    if !location_config.active || !config.channel_sells_from(channel, location) {
        return 0;
    }
    let buffer = config.channels.get(channel).map_or(0, |c| c.buffer);
    eligible_view(channel, buffer, quantities, allocations)
}

/// [`channel_view`] at a location already known to be active and sold from by
/// `channel`, whose buffer is `buffer`.
pub(crate) fn eligible_view<'a>(
    channel: &ChannelId,
    buffer: i64,
    quantities: &Quantities,
    allocations: impl IntoIterator<Item = (&'a ChannelId, &'a Allocation)>,
) -> i64 {
    let mut own = 0;
    let mut others = 0;
    for (allocation_channel, allocation) in allocations {
        if allocation_channel == channel {
            own += allocation.unused();
        } else {
            others += allocation.unused();
        }
    }
    view_from_parts(quantities.available(), others, own, buffer)
}

/// The arithmetic of [`channel_view`], separated so it can be tested exhaustively.
pub fn view_from_parts(base: i64, others_unused: i64, own_unused: i64, buffer: i64) -> i64 {
    debug_assert!(others_unused >= 0 && own_unused >= 0 && buffer >= 0);
    let pool = base - others_unused;
    let shared = pool - own_unused;
    let view = own_unused + (shared - buffer).max(0);
    view.clamp(0, pool.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_never_exceeds_the_pool_and_never_goes_negative() {
        for base in -5..=12 {
            for others in 0..=6 {
                for own in 0..=6 {
                    for buffer in 0..=4 {
                        let view = view_from_parts(base, others, own, buffer);
                        assert!(view >= 0);
                        assert!(view <= (base - others).max(0));
                        assert!(view <= base.max(0));
                    }
                }
            }
        }
    }

    #[test]
    fn buffer_hides_shared_units_only() {
        // 10 available, 3 allocated to this channel, buffer 2: 3 own + (7 - 2) shared.
        assert_eq!(view_from_parts(10, 0, 3, 2), 8);
        // Another channel's 4 unused units are invisible.
        assert_eq!(view_from_parts(10, 4, 0, 0), 6);
        // Buffer larger than the shared pool leaves only the own allocation.
        assert_eq!(view_from_parts(5, 0, 3, 10), 3);
        // Own allocation cannot promise units that are not there.
        assert_eq!(view_from_parts(2, 0, 3, 0), 2);
    }
}
