//! How the ledger stores what it looks up on every record, and the read-only views
//! it lends out.
//!
//! Stock rows, exclusive allocations and waitlists are grouped by SKU in a hash map
//! ([`SkuTable`]): a record hashes its SKU once per lookup and then searches a short
//! vector sorted by location (a partition sees a few dozen locations), instead of
//! comparing id strings down a B-tree of every (SKU, location) of the partition.
//! Holds live in a hash map keyed by id.
//!
//! Nothing here is iterated in hash order where it could reach an output: the views
//! ([`StockView`], [`AllocationView`], [`HoldView`], [`WaitlistView`]) list entries
//! sorted by key, as the ordered maps they replace did, and compare as maps.

use std::fmt;

use crate::hash::IdHashMap;
use crate::ids::{ChannelId, HoldId, LocationId, Sku};
use crate::state::{Allocation, Hold, Quantities, WaitlistEntry};

/// One (SKU, location) row of stock.
#[derive(Debug, Clone)]
pub(crate) struct StockRow {
    /// `key.1.prefix64()`: most searches compare these integers, not strings.
    location_prefix: u64,
    pub(crate) key: (Sku, LocationId),
    pub(crate) quantities: Quantities,
    /// The dirty epoch in which the row was last recorded as dirty: a row changed
    /// twice between two drains is recorded once (see `Ledger::take_dirty`).
    pub(crate) marked: u64,
}

/// Everything the ledger keeps per SKU that a record looks up by (SKU, location).
#[derive(Debug, Clone, Default)]
pub(crate) struct SkuState {
    /// Stock rows, sorted by location.
    pub(crate) stock: Vec<StockRow>,
    /// Exclusive allocations, sorted by (location, channel).
    pub(crate) allocations: Vec<((Sku, LocationId, ChannelId), Allocation)>,
    /// Waiting customers in joining order; empty when nobody waits.
    pub(crate) waitlist: Vec<WaitlistEntry>,
}

impl SkuState {
    fn is_empty(&self) -> bool {
        self.stock.is_empty() && self.allocations.is_empty() && self.waitlist.is_empty()
    }

    #[inline]
    fn stock_index(&self, location: &LocationId) -> Result<usize, usize> {
        let prefix = location.prefix64();
        self.stock.binary_search_by(|row| {
            row.location_prefix
                .cmp(&prefix)
                .then_with(|| row.key.1.cmp(location))
        })
    }

    /// The stock row at `location`, zero where there is none.
    #[inline]
    pub(crate) fn quantities(&self, location: &LocationId) -> Quantities {
        match self.stock_index(location) {
            Ok(i) => self.stock[i].quantities,
            Err(_) => Quantities::default(),
        }
    }

    /// The index of the row at `location`, made (zero) if there is none, and
    /// whether it was made.
    fn stock_slot(&mut self, sku: &Sku, location: &LocationId) -> (usize, bool) {
        match self.stock_index(location) {
            Ok(i) => (i, false),
            Err(i) => {
                self.stock.insert(
                    i,
                    StockRow {
                        location_prefix: location.prefix64(),
                        key: (sku.clone(), location.clone()),
                        quantities: Quantities::default(),
                        marked: 0,
                    },
                );
                (i, true)
            }
        }
    }

    fn allocation_index(&self, location: &LocationId, channel: &ChannelId) -> Result<usize, usize> {
        self.allocations
            .binary_search_by(|((_, l, c), _)| l.cmp(location).then_with(|| c.cmp(channel)))
    }

    /// The allocations at `location`, in channel order.
    #[inline]
    pub(crate) fn allocations_at<'a>(
        &'a self,
        location: &'a LocationId,
    ) -> impl Iterator<Item = (&'a ChannelId, &'a Allocation)> + 'a {
        // Usually empty: most SKUs have no exclusive allocation anywhere.
        let start = if self.allocations.is_empty() {
            0
        } else {
            self.allocations
                .partition_point(|((_, l, _), _)| l < location)
        };
        self.allocations[start..]
            .iter()
            .take_while(move |((_, l, _), _)| l == location)
            .map(|((_, _, c), a)| (c, a))
    }

    /// The allocation of `channel` at `location`, zero where there is none.
    pub(crate) fn allocation(&self, location: &LocationId, channel: &ChannelId) -> Allocation {
        if self.allocations.is_empty() {
            return Allocation::default();
        }
        match self.allocation_index(location, channel) {
            Ok(i) => self.allocations[i].1,
            Err(_) => Allocation::default(),
        }
    }
}

/// Stock rows, allocations and waitlists by SKU, with the counts the views report.
#[derive(Debug, Clone, Default)]
pub(crate) struct SkuTable {
    pub(crate) by_sku: IdHashMap<Sku, SkuState>,
    stock_rows: usize,
    allocation_rows: usize,
    /// SKUs with at least one waiting customer.
    waitlists: usize,
}

impl SkuTable {
    #[inline]
    pub(crate) fn get(&self, sku: &Sku) -> Option<&SkuState> {
        if self.by_sku.is_empty() {
            return None;
        }
        self.by_sku.get(sku)
    }

    /// The stock row at (`sku`, `location`), zero where there is none.
    #[inline]
    pub(crate) fn quantities(&self, sku: &Sku, location: &LocationId) -> Quantities {
        self.get(sku)
            .map_or_else(Quantities::default, |s| s.quantities(location))
    }

    pub(crate) fn allocation(
        &self,
        sku: &Sku,
        location: &LocationId,
        channel: &ChannelId,
    ) -> Allocation {
        self.get(sku)
            .map_or_else(Allocation::default, |s| s.allocation(location, channel))
    }

    /// Writes the stock row at (`sku`, `location`) and hands the SKU's state and the
    /// row to `then` (the caller records the change and runs the waitlist).
    pub(crate) fn write_stock<R>(
        &mut self,
        sku: &Sku,
        location: &LocationId,
        quantities: Quantities,
        then: impl FnOnce(&mut SkuState, usize) -> R,
    ) -> R {
        let state = match self.by_sku.get_mut(sku) {
            Some(state) => state,
            None => self.by_sku.entry(sku.clone()).or_default(),
        };
        let (index, created) = state.stock_slot(sku, location);
        state.stock[index].quantities = quantities;
        if created {
            self.stock_rows += 1;
        }
        then(state, index)
    }

    /// Sets the allocation of `channel` at (`sku`, `location`); a zero allocation
    /// is no row at all.
    pub(crate) fn set_allocation(
        &mut self,
        sku: &Sku,
        location: &LocationId,
        channel: &ChannelId,
        allocation: Allocation,
    ) {
        let remove = allocation == Allocation::default();
        let Some(state) = self.by_sku.get_mut(sku) else {
            if !remove {
                let mut state = SkuState::default();
                state
                    .allocations
                    .push(((sku.clone(), location.clone(), channel.clone()), allocation));
                self.by_sku.insert(sku.clone(), state);
                self.allocation_rows += 1;
            }
            return;
        };
        match (state.allocation_index(location, channel), remove) {
            (Ok(i), false) => state.allocations[i].1 = allocation,
            (Ok(i), true) => {
                state.allocations.remove(i);
                self.allocation_rows -= 1;
            }
            (Err(i), false) => {
                state.allocations.insert(
                    i,
                    ((sku.clone(), location.clone(), channel.clone()), allocation),
                );
                self.allocation_rows += 1;
            }
            (Err(_), true) => {}
        }
        if state.is_empty() {
            self.by_sku.remove(sku);
        }
    }

    /// The waitlist of `sku`, made if there is none, to be changed by `change`.
    /// Keeps the count of non-empty waitlists and drops a SKU left with nothing.
    pub(crate) fn change_waitlist<R>(
        &mut self,
        sku: &Sku,
        change: impl FnOnce(&mut Vec<WaitlistEntry>) -> R,
    ) -> R {
        let state = match self.by_sku.get_mut(sku) {
            Some(state) => state,
            None => self.by_sku.entry(sku.clone()).or_default(),
        };
        let was_empty = state.waitlist.is_empty();
        let result = change(&mut state.waitlist);
        let is_empty = state.waitlist.is_empty();
        if was_empty && !is_empty {
            self.waitlists += 1;
        } else if !was_empty && is_empty {
            self.waitlists -= 1;
        }
        if state.is_empty() {
            self.by_sku.remove(sku);
        }
        result
    }

    pub(crate) fn stock(&self) -> StockView<'_> {
        StockView { table: self }
    }

    pub(crate) fn allocations(&self) -> AllocationView<'_> {
        AllocationView { table: self }
    }

    pub(crate) fn waitlists(&self) -> WaitlistView<'_> {
        WaitlistView { table: self }
    }
}

/// What every view shares: the map-like reading methods, sorted iteration, `Index`,
/// `Debug` as a map, and equality as maps.
macro_rules! sorted_view {
    ($view:ident, $key:ty, $value:ty) => {
        impl<'a> $view<'a> {
            pub fn is_empty(self) -> bool {
                self.len() == 0
            }

            pub fn contains_key(self, key: &$key) -> bool {
                self.get(key).is_some()
            }

            /// Every entry in key order. Sorts on each call: for reading the whole
            /// table (restore, tests, tools), not for per-record paths.
            pub fn iter(self) -> std::vec::IntoIter<(&'a $key, &'a $value)> {
                let mut entries: Vec<(&'a $key, &'a $value)> = self.unordered().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                entries.into_iter()
            }

            /// The keys, in order.
            pub fn keys(self) -> impl Iterator<Item = &'a $key> + 'a {
                self.iter().map(|(key, _)| key)
            }

            /// The values, in key order.
            pub fn values(self) -> impl Iterator<Item = &'a $value> + 'a {
                self.iter().map(|(_, value)| value)
            }
        }

        impl<'a> IntoIterator for $view<'a> {
            type Item = (&'a $key, &'a $value);
            type IntoIter = std::vec::IntoIter<(&'a $key, &'a $value)>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }

        impl<'a> IntoIterator for &$view<'a> {
            type Item = (&'a $key, &'a $value);
            type IntoIter = std::vec::IntoIter<(&'a $key, &'a $value)>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }

        impl std::ops::Index<&$key> for $view<'_> {
            type Output = $value;
            fn index(&self, key: &$key) -> &$value {
                match self.get(key) {
                    Some(value) => value,
                    None => panic!("no entry found for key {key:?}"),
                }
            }
        }

        impl fmt::Debug for $view<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.iter()).finish()
            }
        }

        impl PartialEq for $view<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.len() == other.len()
                    && self
                        .unordered()
                        .all(|(key, value)| other.get(key) == Some(value))
            }
        }

        impl Eq for $view<'_> {}
    };
}

/// The stock rows of a ledger, as a map from (SKU, location) to quantities.
#[derive(Clone, Copy)]
pub struct StockView<'a> {
    table: &'a SkuTable,
}

impl<'a> StockView<'a> {
    pub fn get(self, key: &(Sku, LocationId)) -> Option<&'a Quantities> {
        let state = self.table.get(&key.0)?;
        let i = state.stock_index(&key.1).ok()?;
        Some(&state.stock[i].quantities)
    }

    pub fn len(self) -> usize {
        self.table.stock_rows
    }

    fn unordered(self) -> impl Iterator<Item = (&'a (Sku, LocationId), &'a Quantities)> + 'a {
        self.table
            .by_sku
            .values()
            .flat_map(|s| s.stock.iter().map(|row| (&row.key, &row.quantities)))
    }

    /// The rows of one SKU, in location order.
    pub fn of_sku(self, sku: &Sku) -> impl Iterator<Item = (&'a LocationId, &'a Quantities)> + 'a {
        self.table
            .get(sku)
            .into_iter()
            .flat_map(|s| s.stock.iter().map(|row| (&row.key.1, &row.quantities)))
    }
}

sorted_view!(StockView, (Sku, LocationId), Quantities);

/// The exclusive allocations of a ledger, as a map from (SKU, location, channel).
#[derive(Clone, Copy)]
pub struct AllocationView<'a> {
    table: &'a SkuTable,
}

impl<'a> AllocationView<'a> {
    pub fn get(self, key: &(Sku, LocationId, ChannelId)) -> Option<&'a Allocation> {
        let state = self.table.get(&key.0)?;
        let i = state.allocation_index(&key.1, &key.2).ok()?;
        Some(&state.allocations[i].1)
    }

    pub fn len(self) -> usize {
        self.table.allocation_rows
    }

    fn unordered(
        self,
    ) -> impl Iterator<Item = (&'a (Sku, LocationId, ChannelId), &'a Allocation)> + 'a {
        self.table
            .by_sku
            .values()
            .flat_map(|s| s.allocations.iter().map(|(k, a)| (k, a)))
    }
}

sorted_view!(AllocationView, (Sku, LocationId, ChannelId), Allocation);

/// The waitlists of a ledger, as a map from SKU to its entries in joining order.
/// SKUs nobody waits for are absent.
#[derive(Clone, Copy)]
pub struct WaitlistView<'a> {
    table: &'a SkuTable,
}

impl<'a> WaitlistView<'a> {
    pub fn get(self, sku: &Sku) -> Option<&'a Vec<WaitlistEntry>> {
        self.table
            .get(sku)
            .map(|s| &s.waitlist)
            .filter(|w| !w.is_empty())
    }

    pub fn len(self) -> usize {
        self.table.waitlists
    }

    fn unordered(self) -> impl Iterator<Item = (&'a Sku, &'a Vec<WaitlistEntry>)> + 'a {
        self.table
            .by_sku
            .iter()
            .filter(|(_, s)| !s.waitlist.is_empty())
            .map(|(sku, s)| (sku, &s.waitlist))
    }
}

sorted_view!(WaitlistView, Sku, Vec<WaitlistEntry>);

/// The holds of a ledger, as a map from hold id.
#[derive(Clone, Copy)]
pub struct HoldView<'a> {
    holds: &'a IdHashMap<HoldId, Box<Hold>>,
}

impl<'a> HoldView<'a> {
    pub(crate) fn new(holds: &'a IdHashMap<HoldId, Box<Hold>>) -> Self {
        HoldView { holds }
    }

    pub fn get(self, hold_id: &HoldId) -> Option<&'a Hold> {
        if self.holds.is_empty() {
            return None;
        }
        self.holds.get(hold_id).map(|hold| &**hold)
    }

    pub fn len(self) -> usize {
        self.holds.len()
    }

    fn unordered(self) -> impl Iterator<Item = (&'a HoldId, &'a Hold)> + 'a {
        self.holds.iter().map(|(id, hold)| (id, &**hold))
    }
}

sorted_view!(HoldView, HoldId, Hold);
