//! Restoring the fold state of partitions from the rows the projection wrote.
//!
//! SKU-keyed rows carry no partition in their key (queries look them up by SKU), so
//! restoring scans them once and keeps the rows whose SKU hashes to a wanted
//! partition. One scan serves every partition assigned at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stockline_domain::{
    Allocation, ChannelId, DocumentId, Hold, IncomingLine, Ledger, LedgerParts, LocationId,
    LogTime, Quantities, Sku, TransferLine, WaitlistEntry,
};
use stockline_wire::codec::decode_row;

use crate::error::StoreError;
use crate::keys::{Key, split_ids};
use crate::projection::{ARCHIVE_CHUNK_RECORDS, PartitionOf};
use crate::rows::{ArchiveChunk, PartitionState, SeenChunk};
use crate::store::{Store, cf};

pub(crate) struct RestoredPartition {
    pub ledger: Ledger,
    pub next_offset: u64,
    pub archive: (u64, ArchiveChunk),
    pub seen: (u64, crate::rows::SeenChunk),
    pub seen_written: VecDeque<(u64, LogTime)>,
}

fn parse_ids<const N: usize>(
    store: &Store,
    cf_name: &'static str,
    key: &[u8],
) -> Result<[String; N], StoreError> {
    let parts = split_ids(key);
    if parts.len() != N || parts.iter().any(|p| p.is_empty()) {
        return Err(store.corrupt(cf_name, key, format!("expected {N} key parts")));
    }
    Ok(std::array::from_fn(|i| parts[i].to_owned()))
}

fn id<T: TryFrom<String, Error = stockline_domain::IdError>>(
    store: &Store,
    cf_name: &'static str,
    key: &[u8],
    value: String,
) -> Result<T, StoreError> {
    T::try_from(value).map_err(|e| store.corrupt(cf_name, key, e))
}

pub(crate) fn restore_partitions(
    store: &Store,
    topic: &str,
    partitions: &BTreeSet<u32>,
    partition_of: &PartitionOf,
) -> Result<BTreeMap<u32, RestoredPartition>, StoreError> {
    let positions = store.positions(topic)?;
    let mut parts: BTreeMap<u32, LedgerParts> = partitions
        .iter()
        .map(|p| (*p, LedgerParts::default()))
        .collect();
    let wanted = |sku: &str| {
        let partition = partition_of(sku.as_bytes());
        partitions.contains(&partition).then_some(partition)
    };

    for (partition, part) in &mut parts {
        let state: PartitionState = store
            .get(cf::PARTITION_STATE, &Key::new().u32(*partition).build())?
            .unwrap_or_default();
        part.log_time = state.log_time;
        part.config = state.config;
    }

    store.for_each_raw(cf::STOCK, |key, value| {
        let [sku, location] = parse_ids::<2>(store, cf::STOCK, key)?;
        if let Some(partition) = wanted(&sku) {
            let quantities: Quantities =
                decode_row(value).map_err(|e| store.corrupt(cf::STOCK, key, e))?;
            let row_key: (Sku, LocationId) = (
                id(store, cf::STOCK, key, sku)?,
                id(store, cf::STOCK, key, location)?,
            );
            if let Some(part) = parts.get_mut(&partition) {
                part.stock.push((row_key, quantities));
            }
        }
        Ok(())
    })?;
    store.for_each_raw(cf::ALLOCATIONS, |key, value| {
        let [sku, location, channel] = parse_ids::<3>(store, cf::ALLOCATIONS, key)?;
        if let Some(partition) = wanted(&sku) {
            let allocation: Allocation =
                decode_row(value).map_err(|e| store.corrupt(cf::ALLOCATIONS, key, e))?;
            let row_key: (Sku, LocationId, ChannelId) = (
                id(store, cf::ALLOCATIONS, key, sku)?,
                id(store, cf::ALLOCATIONS, key, location)?,
                id(store, cf::ALLOCATIONS, key, channel)?,
            );
            if let Some(part) = parts.get_mut(&partition) {
                part.allocations.push((row_key, allocation));
            }
        }
        Ok(())
    })?;
    store.for_each_raw(cf::WAITLISTS, |key, value| {
        let [sku] = parse_ids::<1>(store, cf::WAITLISTS, key)?;
        if let Some(partition) = wanted(&sku) {
            let entries: Vec<WaitlistEntry> =
                decode_row(value).map_err(|e| store.corrupt(cf::WAITLISTS, key, e))?;
            let sku: Sku = id(store, cf::WAITLISTS, key, sku)?;
            if let Some(part) = parts.get_mut(&partition) {
                part.waitlists.push((sku, entries));
            }
        }
        Ok(())
    })?;
    store.for_each_raw(cf::INCOMING, |key, value| {
        let [sku, location, document] = parse_ids::<3>(store, cf::INCOMING, key)?;
        if let Some(partition) = wanted(&sku) {
            let line: IncomingLine =
                decode_row(value).map_err(|e| store.corrupt(cf::INCOMING, key, e))?;
            let row_key: (Sku, LocationId, DocumentId) = (
                id(store, cf::INCOMING, key, sku)?,
                id(store, cf::INCOMING, key, location)?,
                id(store, cf::INCOMING, key, document)?,
            );
            if let Some(part) = parts.get_mut(&partition) {
                part.incoming.push((row_key, line));
            }
        }
        Ok(())
    })?;
    store.for_each_raw(cf::TRANSFERS, |key, value| {
        let [sku, document] = parse_ids::<2>(store, cf::TRANSFERS, key)?;
        if let Some(partition) = wanted(&sku) {
            let line: TransferLine =
                decode_row(value).map_err(|e| store.corrupt(cf::TRANSFERS, key, e))?;
            let row_key: (Sku, DocumentId) = (
                id(store, cf::TRANSFERS, key, sku)?,
                id(store, cf::TRANSFERS, key, document)?,
            );
            if let Some(part) = parts.get_mut(&partition) {
                part.transfers.push((row_key, line));
            }
        }
        Ok(())
    })?;

    let mut restored = BTreeMap::new();
    for (partition, mut part) in parts {
        let prefix = Key::new().u32(partition).build();

        let hold_keys: Vec<Vec<u8>> = store
            .scan_raw(cf::FOLD_HOLDS, &prefix, None, usize::MAX)?
            .into_iter()
            .map(|(key, _)| key[prefix.len()..].to_vec())
            .collect();
        for (key, hold) in hold_keys
            .iter()
            .zip(store.multi_get::<Hold, _>(cf::HOLDS, &hold_keys)?)
        {
            let hold =
                hold.ok_or_else(|| store.corrupt(cf::HOLDS, key, "tracked hold has no row"))?;
            part.holds.push(hold);
        }

        let chunks: Vec<(Vec<u8>, SeenChunk)> = store.scan(cf::SEEN, &prefix, None, usize::MAX)?;
        let mut seen_written = VecDeque::new();
        let mut open_seen = (0, SeenChunk::default());
        let count = chunks.len();
        for (index, (key, chunk)) in chunks.into_iter().enumerate() {
            let start = chunk_key_offset(store, cf::SEEN, &key)?;
            part.seen.extend(
                chunk
                    .entries
                    .iter()
                    .map(|(_, event_id, at)| (*at, *event_id)),
            );
            if index + 1 == count {
                open_seen = (start, chunk);
            } else if let Some(newest) = chunk.newest() {
                seen_written.push_back((start, newest));
            }
        }

        let next_offset = positions.get(&partition).copied().unwrap_or(0);
        let archive = if next_offset == 0 {
            (0, ArchiveChunk::default())
        } else {
            let start = (next_offset - 1) - (next_offset - 1) % ARCHIVE_CHUNK_RECORDS;
            let chunk: ArchiveChunk = store
                .get(cf::ARCHIVE, &Key::new().u32(partition).u64(start).build())?
                .unwrap_or_default();
            (start, chunk)
        };

        let ledger = Ledger::from_parts(part)
            .map_err(|message| StoreError::Inconsistent { partition, message })?;
        restored.insert(
            partition,
            RestoredPartition {
                ledger,
                next_offset,
                archive,
                seen: open_seen,
                seen_written,
            },
        );
    }
    Ok(restored)
}

/// What [`restore_partitions`] restores of a partition the store has no rows
/// of: an empty ledger at offset 0.
pub(crate) fn empty_partition() -> Result<RestoredPartition, String> {
    Ok(RestoredPartition {
        ledger: Ledger::from_parts(LedgerParts::default())?,
        next_offset: 0,
        archive: (0, ArchiveChunk::default()),
        seen: (0, SeenChunk::default()),
        seen_written: VecDeque::new(),
    })
}

fn chunk_key_offset(store: &Store, cf_name: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    key.get(4..12)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| store.corrupt(cf_name, key, "bad chunk key"))
}
