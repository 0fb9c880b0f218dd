//! What the hot read path keeps between requests: the applied positions as
//! rendered for bodies and headers, a SKU's rows as of its partition's position,
//! and the request-latency histogram of each route.
//!
//! Consistency: a read takes a [`PositionSnapshot`] first (after any `wait_for`),
//! then reads rows; the projector reports positions only once their batch is
//! durable, so the rows are at least as recent as the positions the answer
//! reports. A SKU's rows change only when records of its own partition are
//! applied (the projection refuses a SKU's records on any other partition), and
//! the projector reports with each position the position `S` from which the
//! partition's stock, allocation and configuration rows have not changed. Rows
//! read when that partition's position was `P >= S` therefore still answer for
//! any snapshot whose `S` is at most `P`, whatever the other partitions did: a
//! tick or a hold's confirmation moves `P` every second, not `S`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Bytes;
use axum::http::{HeaderValue, Method};
use stockline_domain::{Allocation, ChannelId, Config, LocationId, Quantities};
use stockline_engine::Positions;

use crate::extract::render_positions;

/// Applied positions, rendered once for every answer that reports them.
#[derive(Debug)]
pub struct PositionSnapshot {
    /// partition -> next offset to apply.
    pub positions: Positions,
    /// partition -> the position from which its availability rows are unchanged
    /// ([`stockline_engine::ProjectorStatus::availability_since`]); a partition
    /// missing here counts as changed at its position.
    pub availability_since: Positions,
    /// `{"0":12,"1":7}`, as `position` in JSON bodies.
    pub json: Bytes,
    /// `0:12,1:7`, the `Stockline-Position` header.
    pub header: Option<HeaderValue>,
}

impl PositionSnapshot {
    pub fn new(positions: Positions, availability_since: Positions) -> PositionSnapshot {
        let json = serde_json::to_vec(&positions).unwrap_or_else(|_| b"{}".to_vec());
        let header = HeaderValue::from_str(&render_positions(&positions)).ok();
        PositionSnapshot {
            positions,
            availability_since,
            json: Bytes::from(json),
            header,
        }
    }

    /// Whether SKU rows read at `position` of `partition` are current in this
    /// snapshot. Rows read at a later position than this snapshot's are newer
    /// than it, which an answer may be (never older).
    pub fn rows_current(&self, partition: u32, position: u64) -> bool {
        match self.availability_since.get(&partition) {
            Some(since) => *since <= position,
            None => self.positions.get(&partition) == Some(&position),
        }
    }
}

/// The last snapshot, handed out while the projector's positions are unchanged.
#[derive(Debug)]
pub(crate) struct SnapshotCell(RwLock<Arc<PositionSnapshot>>);

impl SnapshotCell {
    pub fn new() -> SnapshotCell {
        SnapshotCell(RwLock::new(Arc::new(PositionSnapshot::new(
            Positions::new(),
            Positions::new(),
        ))))
    }

    /// The last snapshot, if it is of `current` (positions, availability since).
    pub fn cached(
        &self,
        current: &Positions,
        availability_since: &Positions,
    ) -> Option<Arc<PositionSnapshot>> {
        let last = self.0.read().ok()?;
        (last.positions == *current && last.availability_since == *availability_since)
            .then(|| Arc::clone(&last))
    }

    /// A snapshot of `positions`, kept for the next requests.
    pub fn refresh(
        &self,
        positions: Positions,
        availability_since: Positions,
    ) -> Arc<PositionSnapshot> {
        let fresh = Arc::new(PositionSnapshot::new(positions, availability_since));
        if let Ok(mut last) = self.0.write() {
            *last = Arc::clone(&fresh);
        }
        fresh
    }

    #[cfg(test)]
    fn of(&self, current: &Positions) -> Arc<PositionSnapshot> {
        self.cached(current, current)
            .unwrap_or_else(|| self.refresh(current.clone(), current.clone()))
    }
}

/// A SKU's stock and exclusive allocations, in key order.
#[derive(Debug, Default)]
pub struct SkuRows {
    pub stock: Vec<(LocationId, Quantities)>,
    pub allocations: Vec<(LocationId, ChannelId, Allocation)>,
}

/// A SKU's rows as of its partition's position, with what answers built from them.
#[derive(Debug)]
pub struct CachedSku {
    pub partition: u32,
    /// The partition's applied position when the rows were read (they are at
    /// least that recent).
    pub position: u64,
    pub rows: SkuRows,
    /// The partition's configuration (location kinds, channels), read after the
    /// same snapshot.
    pub config: Arc<Config>,
    /// The SKU's availability body up to its `position` value, built on first use.
    pub availability_head: OnceLock<Bytes>,
    /// Approximate bytes held, body included.
    cost: usize,
}

impl CachedSku {
    pub fn new(partition: u32, position: u64, rows: SkuRows, config: Arc<Config>) -> CachedSku {
        // Rows, their ids, and about 180 bytes of JSON per location once built.
        let cost = 256
            + rows.stock.len() * (std::mem::size_of::<(LocationId, Quantities)>() + 40 + 180)
            + rows.allocations.len()
                * (std::mem::size_of::<(LocationId, ChannelId, Allocation)>() + 80);
        CachedSku {
            partition,
            position,
            rows,
            config,
            availability_head: OnceLock::new(),
            cost,
        }
    }
}

/// SKU rows by SKU, valid while the SKU's partition has not changed availability
/// rows since the entry's position (see [`PositionSnapshot::rows_current`]).
/// Bounded in (approximate) bytes: an insert into a full shard first drops the
/// entries whose partition has moved on, then arbitrary ones.
#[derive(Debug)]
pub(crate) struct SkuCache {
    shards: Box<[Mutex<Shard>]>,
    shard_bytes_max: usize,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Box<str>, Arc<CachedSku>>,
    bytes: usize,
}

const SHARDS: usize = 16;

impl SkuCache {
    pub fn new(bytes_max: usize) -> SkuCache {
        SkuCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_bytes_max: bytes_max / SHARDS,
        }
    }

    fn shard(&self, sku: &str) -> &Mutex<Shard> {
        // FNV-1a: cheap, and SKUs of one partition spread over every shard.
        let hash = sku.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.shards[usize::try_from(hash % SHARDS as u64).unwrap_or(0)]
    }

    /// The entry of `sku`, if any and current in `snapshot`.
    pub fn get(&self, sku: &str, snapshot: &PositionSnapshot) -> Option<Arc<CachedSku>> {
        let shard = self.shard(sku).lock().ok()?;
        shard
            .entries
            .get(sku)
            .filter(|entry| snapshot.rows_current(entry.partition, entry.position))
            .map(Arc::clone)
    }

    /// Keeps `entry` for `sku`; `snapshot` tells which entries are still current.
    pub fn insert(&self, sku: &str, entry: Arc<CachedSku>, snapshot: &PositionSnapshot) {
        if self.shard_bytes_max == 0 {
            return;
        }
        let Ok(mut shard) = self.shard(sku).lock() else {
            return;
        };
        let cost = entry.cost + sku.len();
        if let Some(old) = shard.entries.remove(sku) {
            shard.bytes -= old.cost + sku.len();
        }
        if shard.bytes + cost > self.shard_bytes_max {
            let current = |e: &CachedSku| snapshot.rows_current(e.partition, e.position);
            shard.evict(self.shard_bytes_max * 3 / 4, current);
        }
        if shard.bytes + cost <= self.shard_bytes_max {
            shard.bytes += cost;
            shard.entries.insert(sku.into(), entry);
        }
    }
}

impl Shard {
    /// Drops stale entries, then others, until at most `target` bytes are held.
    fn evict(&mut self, target: usize, current: impl Fn(&CachedSku) -> bool) {
        let mut bytes = self.bytes;
        self.entries.retain(|sku, entry| {
            let keep = current(entry);
            if !keep {
                bytes -= entry.cost + sku.len();
            }
            keep
        });
        if bytes > target {
            self.entries.retain(|sku, entry| {
                if bytes <= target {
                    return true;
                }
                bytes -= entry.cost + sku.len();
                false
            });
        }
        self.bytes = bytes;
    }
}

/// Request-latency histograms by (route, method, status): registering one costs
/// a metric key (labels allocated and hashed) and a registry lookup; recording
/// into a handle costs an atomic append.
#[derive(Debug, Default)]
pub(crate) struct RouteHistograms(RwLock<HashMap<Box<str>, Vec<RouteHistogram>>>);

/// (method, status, handle) of one route.
type RouteHistogram = (Method, u16, metrics::Histogram);

/// Method and status pairs kept per route; more (odd methods) are registered on
/// every request, as before.
const PAIRS_PER_ROUTE_MAX: usize = 32;

pub(crate) const REQUEST_DURATION: &str = "stockline_http_request_duration_seconds";

impl RouteHistograms {
    pub fn get(&self, route: &str, method: &Method, status: u16) -> metrics::Histogram {
        if let Ok(map) = self.0.read()
            && let Some(pairs) = map.get(route)
            && let Some((_, _, histogram)) =
                pairs.iter().find(|(m, s, _)| m == method && *s == status)
        {
            return histogram.clone();
        }
        let histogram = metrics::histogram!(
            REQUEST_DURATION,
            "route" => route.to_owned(),
            "method" => method.as_str().to_owned(),
            "status" => status.to_string()
        );
        if let Ok(mut map) = self.0.write() {
            let pairs = map.entry(route.into()).or_default();
            if pairs.len() < PAIRS_PER_ROUTE_MAX
                && !pairs.iter().any(|(m, s, _)| m == method && *s == status)
            {
                pairs.push((method.clone(), status, histogram.clone()));
            }
        }
        histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(partition: u32, position: u64, locations: usize) -> Arc<CachedSku> {
        let stock = (0..locations)
            .map(|i| {
                (
                    LocationId::new(format!("loc-{i}")).expect("id"),
                    Quantities::default(),
                )
            })
            .collect();
        Arc::new(CachedSku::new(
            partition,
            position,
            SkuRows {
                stock,
                allocations: Vec::new(),
            },
            Arc::new(Config::default()),
        ))
    }

    fn snapshot(positions: &[(u32, u64)], since: &[(u32, u64)]) -> PositionSnapshot {
        PositionSnapshot::new(
            positions.iter().copied().collect(),
            since.iter().copied().collect(),
        )
    }

    #[test]
    fn entries_answer_while_their_partition_keeps_its_rows() {
        let cache = SkuCache::new(1 << 20);
        let at_5 = snapshot(&[(0, 5)], &[(0, 5)]);
        cache.insert("A", entry(0, 5, 3), &at_5);
        assert!(cache.get("A", &at_5).is_some());
        assert!(cache.get("B", &at_5).is_none());
        // Ticks moved the partition on, its rows did not change: still current.
        let ticked = snapshot(&[(0, 9)], &[(0, 5)]);
        assert!(cache.get("A", &ticked).is_some());
        // Rows changed after the entry was read: stale.
        let changed = snapshot(&[(0, 9)], &[(0, 8)]);
        assert!(cache.get("A", &changed).is_none());
        // Without a since (a status that does not say), only the same position.
        assert!(cache.get("A", &snapshot(&[(0, 5)], &[])).is_some());
        assert!(cache.get("A", &snapshot(&[(0, 6)], &[])).is_none());
        // Rows read at a newer position than a snapshot's are newer, not older:
        // they answer for it.
        cache.insert("A", entry(0, 9, 3), &changed);
        assert!(cache.get("A", &changed).is_some());
        assert!(cache.get("A", &at_5).is_some());
        // A partition the snapshot does not have (revoked): never current.
        assert!(cache.get("A", &snapshot(&[(1, 9)], &[(1, 0)])).is_none());
    }

    #[test]
    fn shards_stay_within_their_bytes() {
        let cache = SkuCache::new(SHARDS * 16 * 1024);
        let at_1 = snapshot(&[(0, 1)], &[(0, 1)]);
        for i in 0..2_000 {
            cache.insert(&format!("SKU-{i}"), entry(0, 1, 7), &at_1);
        }
        for shard in cache.shards.iter() {
            let shard = shard.lock().expect("lock");
            let counted: usize = shard
                .entries
                .iter()
                .map(|(sku, e)| e.cost + sku.len())
                .sum();
            assert_eq!(counted, shard.bytes);
            assert!(shard.bytes <= cache.shard_bytes_max);
            assert!(!shard.entries.is_empty());
        }
        // Stale entries go first.
        let moved = snapshot(&[(0, 2)], &[(0, 2)]);
        cache.insert("NEW", entry(0, 2, 7), &moved);
        let fresh = cache.get("NEW", &moved).expect("inserted");
        assert_eq!(fresh.position, 2);
        assert!(cache.get("SKU-0", &moved).is_none());
    }

    #[test]
    fn snapshots_are_reused_while_positions_stay() {
        let cell = SnapshotCell::new();
        let a = cell.of(&Positions::from([(0, 3), (1, 9)]));
        assert_eq!(&a.json[..], br#"{"0":3,"1":9}"#);
        assert_eq!(
            a.header.as_ref().map(|h| h.as_bytes()),
            Some(&b"0:3,1:9"[..])
        );
        let b = cell.of(&Positions::from([(0, 3), (1, 9)]));
        assert!(Arc::ptr_eq(&a, &b));
        let c = cell.of(&Positions::from([(0, 4), (1, 9)]));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
