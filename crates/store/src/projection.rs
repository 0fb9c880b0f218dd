//! The projection: folds consumed records into the per-partition ledgers and turns
//! what changed into rows, written with the consumer position in one atomic
//! `WriteBatch`.
//!
//! Kafka-agnostic on purpose: the live projector (records from a consumer group),
//! a rebuild (records from offset 0) and a replay (records from the archive) all
//! drive this same code, which is what makes "rebuild equals live" hold by
//! construction rather than by a second implementation.
//!
//! Determinism of what is written: every row is a function of the records applied,
//! never of where batches were cut. Rows are keyed by offsets (history, dead letters,
//! outbox), rewritten whole (stock, holds, chunks), or read-modify-written (daily
//! counters); chunks of archive and dedupe records cover fixed offset ranges.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use rocksdb::WriteBatch;
use stockline_domain::analytics::{CounterDelta, Metric, counters};
use stockline_domain::{
    Cause, ChannelId, DEDUPE_WINDOW_MS, Dirty, Effect, Event, EventId, Hold, HoldId, IdHashMap,
    Ledger, LocationId, LogTime, Payload, Routing, Sku, Verdict, advance_into, fold_into,
    prefix128,
};
use stockline_wire::codec::decode_event;

use crate::error::StoreError;
use crate::keys::{Key, log_time_key, status_code};
use crate::rows::{
    ArchiveChunkBuilder, DeadLetter, HistoryEntry, Notification, OutboxEntry, PartitionState,
    SeenChunk, VerdictRow,
};
use crate::store::{RowEncoder, Store, StoreContents, cf, position_key};

/// Records per archive chunk. A chunk is one RocksDB value (about 6 KiB of
/// 100-byte records): few writes per record, and a replay reads sequential values.
///
/// Every flush rewrites each touched partition's open chunk as it stands (rows do
/// not depend on batch boundaries), so a small batch pays for half a chunk per
/// partition. At 256 records (and 4,096 offsets per dedupe chunk) that was about
/// 75 KiB of encoding, memtable and WAL per partition per flush: with the
/// 10-20-record batches of hold traffic, most of the projector's time
/// (docs/benchmarks.md, store format 2).
pub const ARCHIVE_CHUNK_RECORDS: u64 = 64;
/// Offsets per dedupe chunk (about 8 KiB of entries at most; see
/// [`ARCHIVE_CHUNK_RECORDS`] for why small).
pub const SEEN_CHUNK_OFFSETS: u64 = 256;

/// Which partition a Kafka key belongs to (the producer's partitioner).
pub type PartitionOf = Arc<dyn Fn(&[u8]) -> u32 + Send + Sync>;

/// One consumed record, whatever it came from.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub partition: u32,
    pub offset: u64,
    /// Record timestamp (log time); `-1` when the broker gave none.
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Already applied (its offset is below the partition's position).
    Skipped,
    /// Folded; the verdict's kind.
    Folded(VerdictKind),
    /// Dead-lettered with this reason code.
    DeadLettered(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    Applied,
    Rejected,
    Duplicate,
}

/// Totals since the projection was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionStats {
    pub records: u64,
    pub applied: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub skipped: u64,
    /// Records that arrived above their partition's next offset: the offsets in
    /// between never arrived. Legitimate on Kafka topics written by transactional
    /// producers (control records take offsets) or compacted; anywhere else it
    /// means records were lost on the way (a broker that skips part of a batch, a
    /// consumer that seeked), so each one is logged as a warning.
    pub gaps: u64,
    pub flushes: u64,
}

#[derive(Debug, Default)]
struct Pending {
    history: PendingHistory,
    verdicts: Vec<(Vec<u8>, VerdictRow)>,
    dead_letters: Vec<(Vec<u8>, DeadLetter)>,
    outbox: Vec<(Vec<u8>, OutboxEntry)>,
    /// Closed chunks to write (start offset, chunk).
    archive_closed: Vec<(u64, ArchiveChunkBuilder)>,
    seen_closed: Vec<(u64, SeenChunk)>,
    /// The keys the fold changed since the last flush, drained from the ledger at
    /// the flush and after records that forgot holds (see
    /// [`PartitionProjection::drain_dirty`]); its
    /// `holds_forgotten` stays empty: forgotten holds are in `forgotten_holds`.
    dirty: Dirty,
    /// The final version of every hold the fold forgot since the last flush, by row
    /// key (a later version of the same row replaces an earlier one).
    forgotten_holds: BTreeMap<Vec<u8>, Hold>,
    /// Whether anything was applied since the last flush.
    touched: bool,
}

/// History rows of a batch, encoded as the fold makes them, in one buffer per
/// SKU: keys and values side by side. A batch holds tens of thousands of them;
/// as entries (a key vector and a 200-byte struct each) they were allocated one
/// by one, moved as the vector grew into fresh pages, and encoded at the flush
/// anyway.
///
/// They are written in key order (RocksDB's memtable inserts a key next to the
/// previous one much faster than at a random place). A key is `SKU \0 offset
/// index`, and one partition's rows arrive in offset order, so key order is the
/// SKUs in order, each SKU's rows in arrival order: a SKU's buffer is already in
/// key order, and the flush reads the buffers one after the other, SKUs sorted.
/// (Rows in one buffer, gathered in key order at the flush, cost a cache miss
/// or more per row: 11-18 ms of a 50,000-record batch.)
#[derive(Debug, Default)]
struct PendingHistory {
    /// Each SKU with rows in this batch: its group's position in `groups`.
    group_of: IdHashMap<Sku, usize>,
    /// In order of first arrival.
    groups: Vec<HistoryGroup>,
    /// Bytes of all groups.
    bytes_total: usize,
}

/// One SKU's history rows of a batch.
#[derive(Debug)]
struct HistoryGroup {
    sku: Sku,
    bytes: Vec<u8>,
    /// `(key end, row end)` of each row in `bytes`, in arrival order; a row
    /// starts where the previous one ended.
    rows: Vec<(usize, usize)>,
}

impl PendingHistory {
    /// Empty, with room for as many SKUs as `previous` had, each with room for
    /// as many bytes as the average SKU of `previous` (growing by doubling
    /// copied every byte about once more).
    fn sized_like(previous: &PendingHistory) -> PendingHistory {
        PendingHistory {
            group_of: IdHashMap::with_capacity_and_hasher(
                previous.groups.len(),
                Default::default(),
            ),
            groups: Vec::with_capacity(previous.groups.len()),
            bytes_total: 0,
        }
    }

    /// Bytes a new group reserves: the average of the groups so far.
    fn group_bytes_hint(&self) -> usize {
        self.bytes_total.checked_div(self.groups.len()).unwrap_or(0)
    }

    /// Adds the row of the `index`th effect of the record at `offset` of `sku`.
    /// Rows of one SKU must come in (offset, index) order.
    fn push(&mut self, sku: &Sku, offset: u64, index: u16, entry: &HistoryEntry) {
        let position = match self.group_of.get(sku) {
            Some(position) => *position,
            None => {
                let position = self.groups.len();
                let bytes_hint = self.group_bytes_hint();
                self.group_of.insert(sku.clone(), position);
                self.groups.push(HistoryGroup {
                    sku: sku.clone(),
                    bytes: Vec::with_capacity(bytes_hint),
                    rows: Vec::new(),
                });
                position
            }
        };
        let group = &mut self.groups[position];
        let start = group.bytes.len();
        let key = Key::appending(std::mem::take(&mut group.bytes))
            .id(sku.as_str())
            .u64(offset)
            .u16(index);
        group.bytes = key.build();
        let key_end = group.bytes.len();
        entry.encode_appending(&mut group.bytes);
        group.rows.push((key_end, group.bytes.len()));
        self.bytes_total += group.bytes.len() - start;
    }

    /// Calls `write` with each row's key and value, in key order (see the
    /// type's documentation), and leaves none.
    fn drain_in_key_order(&mut self, mut write: impl FnMut(&[u8], &[u8])) {
        let mut groups = std::mem::take(&mut self.groups);
        self.group_of.clear();
        self.bytes_total = 0;
        groups.sort_unstable_by(|a, b| a.sku.as_str().cmp(b.sku.as_str()));
        let mut previous_key: Option<&[u8]> = None;
        for group in &groups {
            let mut start = 0;
            for (key_end, end) in &group.rows {
                let key = &group.bytes[start..*key_end];
                debug_assert!(
                    previous_key.is_none_or(|previous| previous < key),
                    "history rows in key order"
                );
                write(key, &group.bytes[*key_end..*end]);
                previous_key = Some(key);
                start = *end;
            }
        }
    }
}

/// One partition's fold state and unwritten rows.
#[derive(Debug)]
struct PartitionProjection {
    ledger: Ledger,
    next_offset: u64,
    archive: (u64, ArchiveChunkBuilder),
    seen: (u64, SeenChunk),
    /// Written dedupe chunks (start, newest log time), oldest first, excluding the
    /// open one: deleted once entirely older than the dedupe window.
    seen_written: VecDeque<(u64, LogTime)>,
    /// The next offset of the last flush that changed a stock or allocation row or
    /// the configuration of this partition (its offset at assignment, before any):
    /// availability rows read at any position from here on are still current.
    availability_since: u64,
    pending: Pending,
}

/// The projection of one topic into one store.
pub struct Projection {
    store: Store,
    topic: String,
    partition_of: PartitionOf,
    partitions: BTreeMap<u32, PartitionProjection>,
    /// Daily counter deltas since the last flush, by place (day, channel,
    /// location), then metric: a record's deltas share their place, looked up
    /// once for them all (a row key built and hashed for every delta was 3% of
    /// a replay). Hashed with the fold's fixed hash, not SipHash; row keys are
    /// built and sorted at the flush, so no hash order reaches a row.
    counters: IdHashMap<CounterPlace, CounterTotals>,
    /// The deltas of the record being applied (reused: one allocation per
    /// record otherwise).
    counter_deltas: Vec<CounterDelta>,
    /// The effects of the record being applied (reused, as `counter_deltas`).
    effects: Vec<Effect>,
    stats: ProjectionStats,
    /// Bytes of the last batch prepared (at most [`BATCH_BYTES_RESERVED_MAX`]): the
    /// next one reserves as much.
    batch_bytes_last: usize,
    /// Encodes every row value of a batch (see [`RowEncoder`]).
    row_encoder: RowEncoder,
    /// An archive chunk's row value, reused from chunk to chunk.
    archive_row: Vec<u8>,
    /// Whether the rows only a projector continuing the store reads are written
    /// (the archive, the dedupe record, the holds the fold tracks): not in a
    /// replay's read-models store ([`StoreContents::ReadModels`]).
    continuable: bool,
}

/// The most a batch reserves up front: a live projector's batches are small, a
/// rebuild's tens of MiB; beyond this a batch grows as it needs.
const BATCH_BYTES_RESERVED_MAX: usize = 64 << 20;

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish()
    }
}

fn chunk_start(offset: u64, size: u64) -> u64 {
    offset - offset % size
}

impl Projection {
    /// A projection into `store`, writing what the store holds
    /// ([`Store::contents`]).
    pub fn new(store: Store, topic: impl Into<String>, partition_of: PartitionOf) -> Projection {
        Projection {
            continuable: store.contents() == StoreContents::Full,
            store,
            topic: topic.into(),
            partition_of,
            partitions: BTreeMap::new(),
            counters: IdHashMap::default(),
            counter_deltas: Vec::new(),
            effects: Vec::new(),
            stats: ProjectionStats::default(),
            batch_bytes_last: 0,
            row_encoder: RowEncoder::default(),
            archive_row: Vec::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn stats(&self) -> ProjectionStats {
        self.stats
    }

    /// The partitions currently owned.
    pub fn partitions(&self) -> impl Iterator<Item = u32> + '_ {
        self.partitions.keys().copied()
    }

    /// Next offset to apply of an owned partition.
    pub fn next_offset(&self, partition: u32) -> Option<u64> {
        self.partitions.get(&partition).map(|p| p.next_offset)
    }

    /// Per owned partition, the position from which its SKUs' stock and allocation
    /// rows and its configuration are unchanged, as of the last prepared flush:
    /// rows read at a position at or after it answer for every position up to
    /// the partition's current one (the service's read cache relies on it).
    pub fn availability_since(&self) -> BTreeMap<u32, u64> {
        self.partitions
            .iter()
            .map(|(partition, state)| (*partition, state.availability_since))
            .collect()
    }

    pub fn ledger(&self, partition: u32) -> Option<&Ledger> {
        self.partitions.get(&partition).map(|p| &p.ledger)
    }

    /// Takes ownership of partitions: restores their fold state from the store.
    /// Returns each one's next offset (where consumption must resume).
    pub fn assign(&mut self, partitions: &[u32]) -> Result<BTreeMap<u32, u64>, StoreError> {
        let wanted: BTreeSet<u32> = partitions
            .iter()
            .copied()
            .filter(|p| !self.partitions.contains_key(p))
            .collect();
        if !wanted.is_empty() {
            let restored = crate::restore::restore_partitions(
                &self.store,
                &self.topic,
                &wanted,
                &self.partition_of,
            )?;
            for (partition, state) in restored {
                self.insert_restored(partition, state);
            }
        }
        Ok(partitions
            .iter()
            .filter_map(|p| self.partitions.get(p).map(|s| (*p, s.next_offset)))
            .collect())
    }

    /// [`Projection::assign`] for partitions of a store being built from offset
    /// 0 (a rebuild, a replay), which holds none of their rows: they start empty
    /// without reading the store. Restoring scans every SKU-keyed row of the
    /// store for those of the wanted partitions, and in a rebuild those are the
    /// rows the other workers are writing: 1.8% of a 100K-record replay's
    /// instructions, and growing with the store. Refused for a partition the
    /// store has a position of: its rows exist.
    pub fn assign_new(&mut self, partitions: &[u32]) -> Result<(), StoreError> {
        let positions = self.store.positions(&self.topic)?;
        for partition in partitions {
            if self.partitions.contains_key(partition) {
                continue;
            }
            if let Some(next_offset) = positions.get(partition) {
                return Err(StoreError::Inconsistent {
                    partition: *partition,
                    message: format!(
                        "assigned as new, but the store is at offset {next_offset} of it"
                    ),
                });
            }
            let state =
                crate::restore::empty_partition().map_err(|message| StoreError::Inconsistent {
                    partition: *partition,
                    message,
                })?;
            self.insert_restored(*partition, state);
        }
        Ok(())
    }

    fn insert_restored(&mut self, partition: u32, state: crate::restore::RestoredPartition) {
        self.partitions.insert(
            partition,
            PartitionProjection {
                ledger: state.ledger,
                next_offset: state.next_offset,
                archive: (
                    state.archive.0,
                    ArchiveChunkBuilder::from_chunk(&state.archive.1),
                ),
                seen: state.seen,
                seen_written: state.seen_written,
                // Rows written before this process owned the partition
                // changed at an unknown position: at most this one.
                availability_since: state.next_offset,
                pending: Pending::default(),
            },
        );
    }

    /// Gives partitions up. Call [`Projection::flush`] first to keep their work.
    pub fn revoke(&mut self, partitions: &[u32]) {
        for partition in partitions {
            self.partitions.remove(partition);
        }
    }

    /// Folds one record of an owned partition.
    pub fn apply(&mut self, record: &RawRecord<'_>) -> Result<Applied, StoreError> {
        let Some(state) = self.partitions.get_mut(&record.partition) else {
            return Err(StoreError::Inconsistent {
                partition: record.partition,
                message: "record of a partition this projection does not own".into(),
            });
        };
        self.stats.records += 1;
        if record.offset < state.next_offset {
            self.stats.skipped += 1;
            return Ok(Applied::Skipped);
        }
        let partition = record.partition;
        let offset = record.offset;
        if offset > state.next_offset {
            self.stats.gaps += 1;
            tracing::warn!(
                topic = %self.topic,
                partition,
                expected_offset = state.next_offset,
                found_offset = offset,
                missing = offset - state.next_offset,
                "gap in the log: offsets {}..{} of {}/{partition} never arrived",
                state.next_offset,
                offset,
                self.topic,
            );
        }
        let record_time = LogTime::from_millis(record.timestamp_ms.max(0));

        let decoded = match record.payload {
            None => Err(("empty_record".to_owned(), "record has no value".to_owned())),
            Some(bytes) => decode_event(bytes).map_err(|e| (e.code().to_owned(), e.to_string())),
        }
        .and_then(|event| match event.routing() {
            Some(Routing::Sku(sku)) => {
                let expected = (self.partition_of)(sku.as_str().as_bytes());
                if expected == partition {
                    Ok(event)
                } else {
                    Err((
                        "wrong_partition".to_owned(),
                        format!(
                            "SKU {sku} belongs to partition {expected}, found in {partition}: written by a producer that does not key by SKU"
                        ),
                    ))
                }
            }
            _ => Ok(event),
        });

        let mut effects = std::mem::take(&mut self.effects);
        effects.clear();
        let (event, verdict) = match decoded {
            Ok(event) => {
                let verdict = fold_into(&mut state.ledger, &event, record_time, &mut effects);
                (Some(event), Ok(verdict))
            }
            Err(reason) => {
                advance_into(&mut state.ledger, record_time, &mut effects);
                (None, Err(reason))
            }
        };
        // Only after a record that forgot holds (see `drain_dirty`); otherwise
        // the ledger's log of changed keys grows until the flush, which sorts and
        // deduplicates it once (it cost 8% of a replay drained after every record).
        if state.ledger.forgot_holds() {
            state.drain_dirty();
        }
        let now = state.ledger.log_time();
        let counted_event = match &verdict {
            Ok(Verdict::Applied | Verdict::Rejected { .. }) => event.as_ref(),
            _ => None,
        };
        let mut deltas = std::mem::take(&mut self.counter_deltas);
        counters(&mut deltas, counted_event, &effects, &state.ledger, now);
        // Deltas of one place come together: one lookup for each run of them.
        let mut run_start = 0;
        while let Some(first) = deltas.get(run_start) {
            let run_len = deltas[run_start..]
                .iter()
                .take_while(|delta| CounterPlace::holds(first, delta))
                .count();
            let totals = self.counters.entry(CounterPlace::of(first)).or_default();
            for delta in &deltas[run_start..run_start + run_len] {
                totals.add(delta.metric, delta.detail.as_deref(), delta.delta);
            }
            run_start += run_len;
        }
        deltas.clear();
        self.counter_deltas = deltas;

        let applied = match verdict {
            Ok(Verdict::Applied) => {
                self.stats.applied += 1;
                Applied::Folded(VerdictKind::Applied)
            }
            Ok(Verdict::Rejected { rejection }) => {
                self.stats.rejected += 1;
                if let Some(event) = &event {
                    state.pending.verdicts.push((
                        Key::new().u32(partition).u64(offset).build(),
                        VerdictRow::Rejected {
                            event_id: event.event_id,
                            rejection,
                        },
                    ));
                }
                Applied::Folded(VerdictKind::Rejected)
            }
            Ok(Verdict::Duplicate) => {
                self.stats.duplicates += 1;
                if let Some(event) = &event {
                    state.pending.verdicts.push((
                        Key::new().u32(partition).u64(offset).build(),
                        VerdictRow::Duplicate {
                            event_id: event.event_id,
                        },
                    ));
                }
                Applied::Folded(VerdictKind::Duplicate)
            }
            Ok(Verdict::Invalid { invalid }) => {
                self.stats.dead_letters += 1;
                let code = invalid.code().to_owned();
                state.dead_letter(
                    &self.topic,
                    record,
                    code.clone(),
                    invalid.to_string(),
                    event.as_ref().map(|e| e.event_id),
                );
                Applied::DeadLettered(code)
            }
            Err((code, reason)) => {
                self.stats.dead_letters += 1;
                state.dead_letter(&self.topic, record, code.clone(), reason, None);
                Applied::DeadLettered(code)
            }
        };

        if self.continuable {
            if let (Applied::Folded(VerdictKind::Applied | VerdictKind::Rejected), Some(event)) =
                (&applied, &event)
                && !matches!(event.payload, Payload::Tick {})
            {
                state.remember_seen(offset, event.event_id, now);
            }
            state.archive(record);
        }
        let recorded = state.record_effects(partition, offset, now, event.as_ref(), &effects);
        self.effects = effects;
        recorded?;
        state.next_offset = offset + 1;
        state.pending.touched = true;
        Ok(applied)
    }

    /// Writes everything applied since the last flush, with the positions, in one
    /// atomic batch. Returns whether anything was written.
    pub fn flush(&mut self, sync: bool) -> Result<bool, StoreError> {
        let Some(mut batch) = self.prepare_rows()? else {
            return Ok(false);
        };
        self.add_counters(&mut batch)?;
        self.store.write(batch, sync)?;
        Ok(true)
    }

    /// The batch [`Projection::flush`] would write (rows, archive, positions of
    /// everything applied since the last one) without the daily counters, which
    /// stay pending until [`Projection::add_counters`]; `None` when nothing was
    /// applied. The caller writes it with [`Store::write`], and must have
    /// written it before the next `prepare_rows` or `flush`: they read rows it
    /// changes (previous hold versions). For writers of one store that fold
    /// disjoint partitions on several threads (a rebuild, the projector's
    /// lanes): every other row belongs to one partition, so their row batches
    /// need no coordination, and only the read-modify-write of the shared
    /// counters does.
    pub fn prepare_rows(&mut self) -> Result<Option<WriteBatch>, StoreError> {
        // Sized like the last batch: growing a batch of tens of MiB by doubling
        // copied it about twice and faulted in fresh pages each time.
        let mut batch = WriteBatch::with_capacity_bytes(self.batch_bytes_last);
        let mut any = false;
        let partitions: Vec<u32> = self.partitions.keys().copied().collect();
        for partition in partitions {
            any |= self.flush_partition(partition, &mut batch)?;
        }
        if !any {
            return Ok(None);
        }
        self.batch_bytes_last = batch.size_in_bytes().min(BATCH_BYTES_RESERVED_MAX);
        self.stats.flushes += 1;
        Ok(Some(batch))
    }

    /// Adds the daily counters folded since the last call to `batch`: each
    /// total is the stored one plus the deltas, so the caller must write `batch`
    /// before anyone reads or adds to those counters again.
    pub fn add_counters(&mut self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        if self.counters.is_empty() {
            return Ok(());
        }
        let mut deltas: Vec<(Vec<u8>, i64)> = Vec::new();
        for (place, totals) in self.counters.drain() {
            totals.row_deltas(&place, &mut deltas);
        }
        deltas.sort_unstable();
        debug_assert!(
            deltas.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "one delta per counter row"
        );
        let keys: Vec<&[u8]> = deltas.iter().map(|(key, _)| key.as_slice()).collect();
        let existing: Vec<Option<i64>> = self.store.multi_get(cf::CHANNEL_STATS, &keys)?;
        let stats_cf = self.store.cf(cf::CHANNEL_STATS);
        for ((key, delta), previous) in deltas.iter().zip(existing) {
            let total = previous.unwrap_or(0).saturating_add(*delta);
            batch.put_cf(stats_cf, key, self.row_encoder.encode(&total)?);
        }
        Ok(())
    }

    fn flush_partition(
        &mut self,
        partition: u32,
        batch: &mut WriteBatch,
    ) -> Result<bool, StoreError> {
        let store = self.store.clone();
        let topic = self.topic.clone();
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Ok(false);
        };
        if !state.pending.touched {
            return Ok(false);
        }
        state.drain_dirty();
        let mut pending = std::mem::take(&mut state.pending);
        state.pending.history = PendingHistory::sized_like(&pending.history);
        let dirty = std::mem::take(&mut pending.dirty);
        let forgotten = std::mem::take(&mut pending.forgotten_holds);
        if !dirty.stock.is_empty() || !dirty.allocations.is_empty() || dirty.config {
            state.availability_since = state.next_offset;
        }
        let ledger = &state.ledger;
        let rows = &mut self.row_encoder;
        let continuable = self.continuable;

        let stock_cf = store.cf(cf::STOCK);
        for key in &dirty.stock {
            let quantities = ledger.quantities(&key.0, &key.1);
            quantities.assert_invariants();
            batch.put_cf(
                stock_cf,
                Key::new()
                    .id(key.0.as_str())
                    .last_id(key.1.as_str())
                    .build(),
                rows.encode(&quantities)?,
            );
        }
        for key in &dirty.allocations {
            let row_key = Key::new()
                .id(key.0.as_str())
                .id(key.1.as_str())
                .last_id(key.2.as_str())
                .build();
            match ledger.allocations().get(key) {
                Some(allocation) => {
                    batch.put_cf(store.cf(cf::ALLOCATIONS), row_key, rows.encode(allocation)?)
                }
                None => batch.delete_cf(store.cf(cf::ALLOCATIONS), row_key),
            }
        }

        // Holds: the new version of each row, and its index entries diffed against
        // the version last written. A hold id can be used again once the fold forgot
        // its previous hold, for another SKU too (another row), so the forgotten
        // versions are kept by row key, and a tracked hold replaces a forgotten
        // version of the same row (it came later).
        // (key prefix, row key, version, tracked), sorted on integer prefixes
        // first like the index changes below (a map of row keys was 1% of a
        // replay).
        let mut versions: Vec<(u128, Vec<u8>, &Hold, bool)> =
            Vec::with_capacity(forgotten.len() + dirty.holds.len());
        for (row_key, hold) in &forgotten {
            versions.push((prefix128(row_key), row_key.clone(), hold, false));
        }
        for hold_id in &dirty.holds {
            let Some(hold) = ledger.hold(hold_id) else {
                return Err(StoreError::Inconsistent {
                    partition,
                    message: format!("dirty hold {hold_id} is neither tracked nor forgotten"),
                });
            };
            let row_key = hold_key(hold);
            versions.push((prefix128(&row_key), row_key, hold, true));
        }
        // A row's tracked version sorts after its forgotten one and is the one
        // kept (`dedup_by` drops the later of two equal rows: swapped first).
        versions.sort_unstable_by(|a, b| (a.0, &a.1, a.3).cmp(&(b.0, &b.1, b.3)));
        versions.dedup_by(|later, earlier| {
            let same_row = later.1 == earlier.1;
            if same_row {
                std::mem::swap(later, earlier);
            }
            same_row
        });
        debug_assert!(versions.windows(2).all(|pair| pair[0].1 < pair[1].1));
        let (row_keys, versions): (Vec<Vec<u8>>, Vec<(&Hold, bool)>) = versions
            .into_iter()
            .map(|(_, row_key, hold, tracked)| (row_key, (hold, tracked)))
            .unzip();
        let previous: Vec<Option<Hold>> = store.multi_get(cf::HOLDS, &row_keys)?;
        // Index changes (position in HOLD_INDEXES, key prefix, key, put or
        // delete), written in key order after the loop (see the history rows).
        // Every index key ends with its hold's row key, and each row is here
        // once: the keys are unique.
        let mut index_changes: Vec<(usize, u128, Vec<u8>, bool)> = Vec::new();
        let (holds_cf, fold_holds_cf) = (store.cf(cf::HOLDS), store.cf(cf::FOLD_HOLDS));
        for (((current, tracked), row_key), previous) in
            versions.into_iter().zip(row_keys).zip(previous)
        {
            let old_keys = previous.as_ref().map(hold_index_keys).unwrap_or_default();
            let new_keys = hold_index_keys(current);
            for (index, (old, new)) in old_keys.into_iter().zip(new_keys).enumerate() {
                if old == new {
                    continue;
                }
                if let Some(old) = old {
                    index_changes.push((index, prefix128(&old), old, false));
                }
                if let Some(new) = new {
                    index_changes.push((index, prefix128(&new), new, true));
                }
            }
            batch.put_cf(holds_cf, &row_key, rows.encode(current)?);
            if continuable {
                let fold_key = Key::new().u32(partition).bytes(&row_key).build();
                if tracked {
                    batch.put_cf(fold_holds_cf, fold_key, []);
                } else {
                    batch.delete_cf(fold_holds_cf, fold_key);
                }
            }
        }
        index_changes
            .sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| a.2.cmp(&b.2)));
        let index_cfs = HOLD_INDEXES.map(|name| store.cf(name));
        for (index, _, key, put) in index_changes {
            if put {
                batch.put_cf(index_cfs[index], key, []);
            } else {
                batch.delete_cf(index_cfs[index], key);
            }
        }
        for sku in &dirty.waitlists {
            let key = Key::new().last_id(sku.as_str()).build();
            match ledger.waitlists().get(sku) {
                Some(entries) => batch.put_cf(store.cf(cf::WAITLISTS), key, rows.encode(entries)?),
                None => batch.delete_cf(store.cf(cf::WAITLISTS), key),
            }
        }
        for key in &dirty.incoming {
            let row_key = Key::new()
                .id(key.0.as_str())
                .id(key.1.as_str())
                .last_id(key.2.as_str())
                .build();
            match ledger.incoming().get(key) {
                Some(line) => batch.put_cf(store.cf(cf::INCOMING), row_key, rows.encode(line)?),
                None => batch.delete_cf(store.cf(cf::INCOMING), row_key),
            }
        }
        for key in &dirty.transfers {
            let row_key = Key::new()
                .id(key.0.as_str())
                .last_id(key.1.as_str())
                .build();
            match ledger.transfers().get(key) {
                Some(line) => batch.put_cf(store.cf(cf::TRANSFERS), row_key, rows.encode(line)?),
                None => batch.delete_cf(store.cf(cf::TRANSFERS), row_key),
            }
        }

        // In key order (see `PendingHistory`).
        let history_cf = store.cf(cf::HISTORY);
        pending
            .history
            .drain_in_key_order(|key, value| batch.put_cf(history_cf, key, value));
        for (key, verdict) in &pending.verdicts {
            batch.put_cf(store.cf(cf::VERDICTS), key, rows.encode(verdict)?);
        }
        for (key, dead_letter) in &pending.dead_letters {
            batch.put_cf(store.cf(cf::DEAD_LETTERS), key, rows.encode(dead_letter)?);
        }
        for (key, entry) in &pending.outbox {
            batch.put_cf(store.cf(cf::OUTBOX), key, rows.encode(entry)?);
        }

        // Archive: closed chunks, then the open one as it stands.
        let mut chunk_row = std::mem::take(&mut self.archive_row);
        for (start, chunk) in pending.archive_closed.iter().chain([&state.archive]) {
            if chunk.is_empty() {
                continue;
            }
            chunk.encode_row_into(&mut chunk_row);
            batch.put_cf(
                store.cf(cf::ARCHIVE),
                Key::new().u32(partition).u64(*start).build(),
                &chunk_row,
            );
        }
        self.archive_row = chunk_row;
        // Dedupe chunks: closed ones are final; the open one is rewritten.
        for (start, chunk) in &pending.seen_closed {
            batch.put_cf(
                store.cf(cf::SEEN),
                Key::new().u32(partition).u64(*start).build(),
                rows.encode(chunk)?,
            );
            if let Some(newest) = chunk.newest() {
                state.seen_written.push_back((*start, newest));
            }
        }
        if !state.seen.1.entries.is_empty() {
            batch.put_cf(
                store.cf(cf::SEEN),
                Key::new().u32(partition).u64(state.seen.0).build(),
                rows.encode(&state.seen.1)?,
            );
        }
        // Closed chunks wholly older than the window are forgotten, oldest first.
        // Log time is monotonic in offsets, so this front-to-back sweep is exact and
        // its result does not depend on when flushes happened.
        let horizon = ledger.log_time().minus_millis(DEDUPE_WINDOW_MS);
        while let Some((start, newest)) = state.seen_written.front().copied() {
            if newest >= horizon {
                break;
            }
            batch.delete_cf(
                store.cf(cf::SEEN),
                Key::new().u32(partition).u64(start).build(),
            );
            state.seen_written.pop_front();
        }

        let partition_state = PartitionState {
            log_time: ledger.log_time(),
            config: ledger.config().clone(),
        };
        batch.put_cf(
            store.cf(cf::PARTITION_STATE),
            Key::new().u32(partition).build(),
            rows.encode(&partition_state)?,
        );
        batch.put_cf(
            store.cf(cf::POSITIONS),
            position_key(&topic, partition),
            state.next_offset.to_be_bytes(),
        );
        Ok(true)
    }
}

impl PartitionProjection {
    /// Moves what the fold changed into the pending rows. Done at every flush and
    /// after every record that forgot holds: the ledger names forgotten holds by
    /// id, and between two flushes an id can be forgotten, used again and
    /// forgotten again, possibly for another SKU. Drained whenever something was
    /// forgotten, every version reaches its row whatever the batch boundaries, as
    /// a rebuild (one batch over weeks of log time) and a live projector (many
    /// small batches, restarts) must agree. Between two drains the ledger's log
    /// grows by a few keys per record, up to one batch's records.
    fn drain_dirty(&mut self) {
        let mut dirty = self.ledger.take_dirty();
        let pending = &mut self.pending;
        // A record forgets holds (time passed) before it changes any: a hold it
        // forgets is older than one it creates under the same id.
        for (hold_id, hold) in dirty.holds_forgotten {
            pending.dirty.holds.remove(&hold_id);
            pending.forgotten_holds.insert(hold_key(&hold), hold);
        }
        // `append`: into an empty set (the usual case: one drain per batch) it
        // moves the whole tree; otherwise it merges in one pass. Inserting key
        // by key was 1% of a replay.
        let into = &mut pending.dirty;
        into.stock.append(&mut dirty.stock);
        into.allocations.append(&mut dirty.allocations);
        into.holds.append(&mut dirty.holds);
        into.waitlists.append(&mut dirty.waitlists);
        into.incoming.append(&mut dirty.incoming);
        into.transfers.append(&mut dirty.transfers);
        into.seen_added.append(&mut dirty.seen_added);
        into.seen_evicted.append(&mut dirty.seen_evicted);
        into.config |= dirty.config;
    }

    fn dead_letter(
        &mut self,
        topic: &str,
        record: &RawRecord<'_>,
        reason_code: String,
        reason: String,
        event_id: Option<EventId>,
    ) {
        let dead_letter = DeadLetter {
            topic: topic.to_owned(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            reason_code,
            reason,
            event_id,
        };
        let key = Key::new().u32(record.partition).u64(record.offset).build();
        self.pending.outbox.push((
            Key::new()
                .u32(record.partition)
                .u64(record.offset)
                .u16(0)
                .build(),
            OutboxEntry::DeadLetter {
                dead_letter: dead_letter.clone(),
                key: record.key.map(<[u8]>::to_vec),
                payload: record.payload.map(<[u8]>::to_vec),
            },
        ));
        self.pending.dead_letters.push((key, dead_letter));
    }

    fn remember_seen(&mut self, offset: u64, event_id: EventId, now: LogTime) {
        let start = chunk_start(offset, SEEN_CHUNK_OFFSETS);
        if start != self.seen.0 {
            let closed = std::mem::replace(&mut self.seen, (start, SeenChunk::default()));
            if !closed.1.entries.is_empty() {
                self.pending.seen_closed.push(closed);
            }
        }
        self.seen.1.entries.push((offset, event_id, now));
    }

    fn archive(&mut self, record: &RawRecord<'_>) {
        let start = chunk_start(record.offset, ARCHIVE_CHUNK_RECORDS);
        if start != self.archive.0 {
            let closed =
                std::mem::replace(&mut self.archive, (start, ArchiveChunkBuilder::default()));
            if !closed.1.is_empty() {
                self.pending.archive_closed.push(closed);
            }
        }
        self.archive.1.push(
            record.offset,
            record.timestamp_ms,
            record.key,
            record.payload,
        );
    }

    fn record_effects(
        &mut self,
        partition: u32,
        offset: u64,
        now: LogTime,
        event: Option<&Event>,
        effects: &[Effect],
    ) -> Result<(), StoreError> {
        // Outbox index 0 is reserved for this record's dead letter.
        let mut outbox_index: u16 = 1;
        for (index, effect) in effects.iter().enumerate() {
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            match effect {
                Effect::StockChanged {
                    sku,
                    location,
                    before,
                    after,
                    cause,
                } => {
                    let (cause_name, event_fields, hold_id) = match cause {
                        Cause::Event => (
                            event.map_or("unknown", |e| e.payload.kind().name()),
                            event,
                            event.and_then(|e| e.payload.hold_id().cloned()),
                        ),
                        Cause::HoldExpired { hold_id } => {
                            ("hold_expired", None, Some(hold_id.clone()))
                        }
                    };
                    let entry = HistoryEntry {
                        partition,
                        offset,
                        log_time: now,
                        cause: std::borrow::Cow::Borrowed(cause_name),
                        event_id: event_fields.map(|e| e.event_id),
                        occurred_at: event_fields.map(|e| e.occurred_at),
                        channel: event_fields.map(|e| e.channel.clone()),
                        reason: event_fields.and_then(|e| e.reason),
                        document: event_fields.and_then(|e| e.document.clone()),
                        hold_id,
                        location: location.clone(),
                        before: *before,
                        after: *after,
                    };
                    self.pending.history.push(sku, offset, index, &entry);
                }
                Effect::WaitlistNotified {
                    notification_id,
                    sku,
                    location,
                    customer_ref,
                    quantity,
                    available,
                } => {
                    let key = Key::new()
                        .u32(partition)
                        .u64(offset)
                        .u16(outbox_index)
                        .build();
                    outbox_index = outbox_index.saturating_add(1);
                    self.pending.outbox.push((
                        key,
                        OutboxEntry::Notification(Notification {
                            notification_id: *notification_id,
                            sku: sku.clone(),
                            location: location.clone(),
                            customer_ref: customer_ref.clone(),
                            quantity: *quantity,
                            available: *available,
                            log_time: now,
                        }),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub fn counter_key(delta: &CounterDelta) -> Vec<u8> {
    counter_row_key(
        &CounterPlace::of(delta),
        delta.metric,
        delta.detail.as_deref().unwrap_or(""),
    )
}

/// `day, channel \0 location \0 metric \0 detail`; no location and no detail
/// are empty parts.
fn counter_row_key(place: &CounterPlace, metric: Metric, detail: &str) -> Vec<u8> {
    Key::new()
        .i64(place.day)
        .id(place.channel.as_str())
        .id(place.location.as_ref().map_or("", |l| l.as_str()))
        .id(metric.name())
        .last_id(detail)
        .build()
}

/// The day, channel and location of daily counters: what a record's counter
/// deltas nearly always share.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CounterPlace {
    day: i64,
    channel: ChannelId,
    location: Option<LocationId>,
}

impl CounterPlace {
    fn of(delta: &CounterDelta) -> CounterPlace {
        CounterPlace {
            day: delta.day,
            channel: delta.channel.clone(),
            location: delta.location.clone(),
        }
    }

    /// Whether `delta` counts at the place of `first`.
    fn holds(first: &CounterDelta, delta: &CounterDelta) -> bool {
        delta.day == first.day && delta.channel == first.channel && delta.location == first.location
    }
}

/// The totals of one place's counters since the last flush.
#[derive(Debug, Default)]
struct CounterTotals {
    /// Metrics without a detail, by position in `Metric::ALL`.
    plain: [Option<i64>; Metric::ALL.len()],
    /// (metric, detail, total), for the few with a detail (a currency, a
    /// rejection code).
    detailed: Vec<(Metric, String, i64)>,
}

impl CounterTotals {
    fn add(&mut self, metric: Metric, detail: Option<&str>, delta: i64) {
        // An empty detail is the row of no detail (see `counter_row_key`).
        match detail.filter(|detail| !detail.is_empty()) {
            None => {
                let total = &mut self.plain[metric_position(metric)];
                *total = Some(total.unwrap_or(0).saturating_add(delta));
            }
            Some(detail) => {
                match self
                    .detailed
                    .iter_mut()
                    .find(|(m, d, _)| *m == metric && d == detail)
                {
                    Some((_, _, total)) => *total = total.saturating_add(delta),
                    None => self.detailed.push((metric, detail.to_owned(), delta)),
                }
            }
        }
    }

    /// Appends (row key, delta) of every counter with a delta.
    fn row_deltas(self, place: &CounterPlace, out: &mut Vec<(Vec<u8>, i64)>) {
        for (metric, total) in Metric::ALL.into_iter().zip(self.plain) {
            if let Some(total) = total {
                out.push((counter_row_key(place, metric, ""), total));
            }
        }
        for (metric, detail, total) in self.detailed {
            out.push((counter_row_key(place, metric, &detail), total));
        }
    }
}

/// `metric`'s position in `Metric::ALL`, which lists the metrics in
/// declaration order: its discriminant (a test checks every one).
fn metric_position(metric: Metric) -> usize {
    let position = metric as usize;
    debug_assert!(Metric::ALL.get(position) == Some(&metric));
    position
}

/// A hold's row key: `hold id \0 sku`. Hold ids are chosen by channels, and two
/// partitions cannot see each other's holds, so the same id used for two SKUs makes
/// two holds; the SKU keeps them apart. Lookups by id scan the `hold id \0` prefix.
pub fn hold_key(hold: &Hold) -> Vec<u8> {
    hold_row_key(&hold.hold_id, &hold.sku)
}

pub fn hold_row_key(hold_id: &HoldId, sku: &Sku) -> Vec<u8> {
    Key::new()
        .id(hold_id.as_str())
        .last_id(sku.as_str())
        .build()
}

/// The index column families of holds, in the order [`hold_index_keys`] gives
/// their keys. A hold has at most one key in each.
const HOLD_INDEXES: [&str; 4] = [
    cf::HOLDS_BY_ORDER,
    cf::HOLDS_BY_CUSTOMER,
    cf::PICKUPS,
    cf::EXPIRIES,
];

/// A hold's key in each of [`HOLD_INDEXES`], where it has one. A fixed array,
/// not a set: comparing a hold's versions is four comparisons of at most one
/// key each, with no tree to build per version (2% of a replay).
fn hold_index_keys(hold: &Hold) -> [Option<Vec<u8>>; 4] {
    // Every index key ends with the hold's row key.
    let row_key = hold_key(hold);
    let id = row_key.as_slice();
    let by_order = Key::new().id(hold.order_id.as_str()).bytes(id).build();
    let by_customer = Key::new().id(hold.customer_ref.as_str()).bytes(id).build();
    let pickup = match &hold.location {
        Some(location) if hold.kind.is_pickup() => Some(
            Key::new()
                .id(location.as_str())
                .u8(status_code(hold.status))
                .bytes(id)
                .build(),
        ),
        _ => None,
    };
    let expiry = hold.can_expire().then(|| {
        Key::new()
            .bytes(&log_time_key(hold.expires_at))
            .bytes(id)
            .build()
    });
    [Some(by_order), Some(by_customer), pickup, expiry]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;

    fn record(offset: u64) -> RawRecord<'static> {
        RawRecord {
            partition: 0,
            offset,
            timestamp_ms: 1_795_420_800_000,
            key: None,
            // No value: dead-lettered, which is enough to move the position.
            payload: None,
        }
    }

    const T0_MS: i64 = 1_795_420_800_000;
    const DAY_MS: i64 = 24 * 3_600_000;

    fn event(n: u128, sku: Option<&str>, location: Option<&str>, payload: Payload) -> Event {
        use stockline_domain::{ChannelId, DocumentId, DocumentKind, DocumentRef, LocationId, Sku};
        let channel = match payload {
            Payload::LocationDefined { .. } | Payload::ChannelDefined { .. } => "admin",
            Payload::StockReceived { .. } => "wms",
            _ => "web",
        };
        Event {
            event_id: uuid::Uuid::from_u128(n),
            schema_version: stockline_domain::SCHEMA_VERSION,
            occurred_at: chrono::DateTime::from_timestamp_millis(T0_MS).expect("instant"),
            channel: ChannelId::new(channel).expect("id"),
            location: location.map(|l| LocationId::new(l).expect("id")),
            sku: sku.map(|s| Sku::new(s).expect("id")),
            document: Some(DocumentRef {
                kind: DocumentKind::Other,
                id: DocumentId::new(format!("doc-{n}")).expect("id"),
            }),
            reason: None,
            payload,
        }
    }

    fn hold_requested(n: u128, hold_id: &str, sku: &str) -> Event {
        use stockline_domain::{CustomerRef, HoldKind, OrderId};
        event(
            n,
            Some(sku),
            Some("store-1"),
            Payload::HoldRequested {
                hold_id: HoldId::new(hold_id).expect("id"),
                order_id: OrderId::new(format!("order-{n}")).expect("id"),
                order_line: 1,
                customer_ref: CustomerRef::new(format!("customer-{n}")).expect("id"),
                quantity: 1,
                ttl_seconds: 900,
                kind: HoldKind::Checkout,
                group: None,
                price: None,
            },
        )
    }

    /// A hold id used again, for another SKU, once the fold forgot its first hold
    /// (closed a week ago), and with a batch boundary before or after the first
    /// hold closed.
    fn hold_id_reuse_log() -> Vec<(Event, i64)> {
        use stockline_domain::{ChannelId, LocationId, LocationKind, ReceiptKind};
        let received = |n, sku| {
            event(
                n,
                Some(sku),
                Some("store-1"),
                Payload::StockReceived {
                    quantity: 5,
                    kind: ReceiptKind::Restock,
                },
            )
        };
        vec![
            event(
                1,
                None,
                Some("store-1"),
                Payload::LocationDefined {
                    name: "Store one".into(),
                    kind: LocationKind::Store,
                    groups: vec![],
                    active: true,
                },
            ),
            event(
                2,
                None,
                None,
                Payload::ChannelDefined {
                    channel: ChannelId::new("web").expect("id"),
                    locations: vec![LocationId::new("store-1").expect("id")],
                    groups: vec![],
                    buffer: 0,
                },
            ),
            received(3, "SKU-A"),
            received(4, "SKU-B"),
            hold_requested(5, "h-1", "SKU-A"),
            event(
                6,
                Some("SKU-A"),
                Some("store-1"),
                Payload::HoldReleased {
                    hold_id: HoldId::new("h-1").expect("id"),
                },
            ),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e, T0_MS + i64::try_from(i).expect("small") * 1_000))
        .chain([(hold_requested(7, "h-1", "SKU-B"), T0_MS + 8 * DAY_MS)])
        .collect()
    }

    /// Applies `log` to a new store, flushing after the records whose index is in
    /// `flush_after`, and (when `restart`) restoring the projection from the store
    /// after each flush. Returns the store and the last projection.
    fn project(
        dir: &std::path::Path,
        log: &[(Event, i64)],
        flush_after: &[usize],
        restart: bool,
    ) -> (Store, Projection) {
        let open = || {
            let store = Store::open(dir, OpenMode::ReadWrite).expect("store");
            let mut projection = Projection::new(store, "events", Arc::new(|_: &[u8]| 0));
            projection.assign(&[0]).expect("restored");
            projection
        };
        let mut projection = open();
        for (offset, (event, timestamp_ms)) in log.iter().enumerate() {
            let payload = stockline_wire::codec::encode_event(event).expect("encodes");
            let applied = projection
                .apply(&RawRecord {
                    partition: 0,
                    offset: offset as u64,
                    timestamp_ms: *timestamp_ms,
                    key: None,
                    payload: Some(&payload),
                })
                .expect("applied");
            assert_eq!(applied, Applied::Folded(VerdictKind::Applied), "{event:?}");
            if flush_after.contains(&offset) {
                projection.flush(false).expect("flush");
                if restart {
                    drop(projection);
                    projection = open();
                }
            }
        }
        projection.flush(false).expect("flush");
        (projection.store().clone(), projection)
    }

    #[test]
    fn a_hold_id_used_again_writes_the_same_rows_wherever_batches_end() {
        let log = hold_id_reuse_log();
        let one_dir = tempfile::tempdir().expect("tempdir");
        let (one_batch, reference) = project(one_dir.path(), &log, &[], false);
        for (flush_after, restart) in [(vec![4], false), (vec![4], true), (vec![3, 5], true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (store, _) = project(dir.path(), &log, &flush_after, restart);
            let comparison = crate::compare(&one_batch, &store, 10).expect("compare");
            assert_eq!(
                comparison.difference_count, 0,
                "flushes after {flush_after:?} (restart {restart}): {:?}",
                comparison.differences
            );
            // The store restores to the fold state of the uninterrupted run.
            let mut restored = Projection::new(store, "events", Arc::new(|_: &[u8]| 0));
            restored.assign(&[0]).expect("restored");
            assert!(restored.ledger(0) == reference.ledger(0));
        }
        // Both holds keep their row: the first one released, the second held.
        let statuses: Vec<(String, String)> = one_batch
            .scan::<Hold>(cf::HOLDS, b"", None, 10)
            .expect("holds")
            .into_iter()
            .map(|(_, h)| (h.sku.as_str().to_owned(), h.status.name().to_owned()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("SKU-A".to_owned(), "released".to_owned()),
                ("SKU-B".to_owned(), "held".to_owned())
            ]
        );
    }

    /// The counter rows are the sums of the fold's deltas by `counter_key`,
    /// over two days and flushes in between.
    #[test]
    fn counter_rows_sum_the_deltas_by_counter_key() {
        let log = hold_id_reuse_log();
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = project(dir.path(), &log, &[3, 5], false);
        let mut ledger = Ledger::new();
        let mut expected: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for (event, timestamp_ms) in &log {
            let outcome =
                stockline_domain::fold(&mut ledger, event, LogTime::from_millis(*timestamp_ms));
            let mut deltas = Vec::new();
            counters(
                &mut deltas,
                Some(event),
                &outcome.effects,
                &ledger,
                ledger.log_time(),
            );
            for delta in &deltas {
                *expected.entry(counter_key(delta)).or_default() += delta.delta;
            }
        }
        assert!(expected.len() > 3, "the log counts something: {expected:?}");
        let written: BTreeMap<Vec<u8>, i64> = store
            .scan::<i64>(cf::CHANNEL_STATS, b"", None, usize::MAX)
            .expect("counters")
            .into_iter()
            .collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn metrics_are_at_their_position_in_all() {
        for (position, metric) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(metric_position(metric), position, "{metric:?}");
        }
    }

    #[test]
    fn a_partition_assigned_as_new_starts_as_one_restored_from_no_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), OpenMode::ReadWrite).expect("store");
        let mut restored = Projection::new(store.clone(), "events", Arc::new(|_: &[u8]| 0));
        restored.assign(&[0]).expect("restored");
        let mut new = Projection::new(store.clone(), "events", Arc::new(|_: &[u8]| 0));
        new.assign_new(&[0]).expect("assigned");
        assert!(new.ledger(0) == restored.ledger(0));
        assert_eq!(new.next_offset(0), restored.next_offset(0));
        drop((store, restored, new));
        // Once the store has rows of the partition, it is not new.
        let log = hold_id_reuse_log();
        let (store, _) = project(dir.path(), &log[..2], &[], false);
        let mut again = Projection::new(store, "events", Arc::new(|_: &[u8]| 0));
        assert!(matches!(
            again.assign_new(&[0]),
            Err(StoreError::Inconsistent { partition: 0, .. })
        ));
    }

    #[test]
    fn availability_since_moves_only_with_stock_allocation_or_configuration_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = hold_id_reuse_log();
        // Configuration and two receipts, flushed: rows changed up to offset 4.
        let (store, mut projection) = project(dir.path(), &log[..4], &[3], false);
        assert_eq!(projection.availability_since(), BTreeMap::from([(0, 4)]));
        // Records that change no stock row (here: dead letters) move the position
        // but not the since.
        for offset in 4..7 {
            projection.apply(&record(offset)).expect("applied");
        }
        projection.flush(false).expect("flush");
        assert_eq!(projection.next_offset(0), Some(7));
        assert_eq!(projection.availability_since(), BTreeMap::from([(0, 4)]));
        // A hold reserves stock: the since moves to the end of its batch.
        let payload = stockline_wire::codec::encode_event(&log[4].0).expect("encodes");
        projection
            .apply(&RawRecord {
                payload: Some(&payload),
                ..record(7)
            })
            .expect("applied");
        projection.flush(false).expect("flush");
        assert_eq!(projection.availability_since(), BTreeMap::from([(0, 8)]));
        // A projection restored from the store does not know when rows changed
        // before it: from its position on.
        drop(projection);
        let mut restored = Projection::new(store, "events", Arc::new(|_: &[u8]| 0));
        restored.assign(&[0]).expect("restored");
        assert_eq!(restored.availability_since(), BTreeMap::from([(0, 8)]));
    }

    #[test]
    fn gaps_are_counted_and_the_position_moves_past_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), OpenMode::ReadWrite).expect("store");
        let mut projection = Projection::new(store, "events", Arc::new(|_: &[u8]| 0));
        projection.assign(&[0]).expect("assign");
        for offset in [0, 1, 4, 5, 9] {
            projection.apply(&record(offset)).expect("applied");
        }
        assert_eq!(projection.stats().gaps, 2, "2..4 and 6..9 never arrived");
        assert_eq!(projection.next_offset(0), Some(10));
        // A record below the position is skipped, not a gap.
        assert_eq!(
            projection.apply(&record(3)).expect("applied"),
            Applied::Skipped
        );
        assert_eq!(projection.stats().gaps, 2);
        assert_eq!(projection.stats().skipped, 1);
    }
}
