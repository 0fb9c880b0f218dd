//! Typed reads of the read models, for the query service and the CLI.
//!
//! Paged reads return an opaque cursor (the hex of the last key read); the next page
//! starts strictly after it. Filtered scans bound the rows they examine per call
//! (`SCAN_ROWS_PER_ITEM_MAX` per wanted item), so a selective filter returns a short
//! page with a cursor rather than scanning a whole SKU's history in one request.

use stockline_domain::{
    Allocation, ChannelId, DocumentId, Hold, HoldId, HoldStatus, IncomingLine, LocationId, OrderId,
    Quantities, Sku,
};
use stockline_wire::codec::decode_row;

use crate::error::StoreError;
use crate::keys::{Key, split_ids, status_code};
use crate::projection::hold_row_key;
use crate::rows::{
    ArchiveChunk, ArchivedRecord, DeadLetter, HistoryEntry, PartitionState, VerdictRow,
};
use crate::store::{Store, cf};

/// Rows examined per item asked for, at most, in a filtered scan.
pub const SCAN_ROWS_PER_ITEM_MAX: usize = 20;

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A cursor that is not one this store handed out.
fn bad_cursor() -> StoreError {
    StoreError::Corrupt {
        cf: "cursor",
        key: String::new(),
        message: "not a cursor this service returned".into(),
    }
}

pub fn encode_cursor(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key to resume after, from a cursor; `Err` for anything malformed.
pub fn decode_cursor(cursor: &str) -> Result<Vec<u8>, StoreError> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1_024 {
        return Err(bad_cursor());
    }
    (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).map_err(|_| bad_cursor()))
        .collect()
}

/// The first key strictly after `key`.
fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

impl Store {
    /// Every location's quantities of a SKU, by location id.
    pub fn stock_of(&self, sku: &Sku) -> Result<Vec<(LocationId, Quantities)>, StoreError> {
        let prefix = Key::new().id(sku.as_str()).build();
        // A SKU has a row per location it was ever stocked at: a handful.
        let mut out = Vec::with_capacity(8);
        self.visit_prefix(cf::STOCK, &prefix, |key, value| {
            let location = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|l| LocationId::new(l).ok())
                .ok_or_else(|| self.corrupt(cf::STOCK, key, "bad location in key"))?;
            let q: Quantities = decode_row(value).map_err(|e| self.corrupt(cf::STOCK, key, e))?;
            out.push((location, q));
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn quantities_at(
        &self,
        sku: &Sku,
        location: &LocationId,
    ) -> Result<Option<Quantities>, StoreError> {
        self.get(
            cf::STOCK,
            &Key::new()
                .id(sku.as_str())
                .last_id(location.as_str())
                .build(),
        )
    }

    /// Exclusive allocations of a SKU: (location, channel, allocation), in key
    /// order (by location, then channel).
    pub fn allocations_of(
        &self,
        sku: &Sku,
    ) -> Result<Vec<(LocationId, ChannelId, Allocation)>, StoreError> {
        let prefix = Key::new().id(sku.as_str()).build();
        let mut out = Vec::new();
        self.visit_prefix(cf::ALLOCATIONS, &prefix, |key, value| {
            let mut parts = key[prefix.len()..].split(|b| *b == crate::keys::SEP);
            let location = parts
                .next()
                .and_then(|l| std::str::from_utf8(l).ok())
                .and_then(|l| LocationId::new(l).ok());
            let channel = parts
                .next()
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| ChannelId::new(c).ok());
            let (Some(location), Some(channel)) = (location, channel) else {
                return Err(self.corrupt(cf::ALLOCATIONS, key, "bad allocation key"));
            };
            let allocation: Allocation =
                decode_row(value).map_err(|e| self.corrupt(cf::ALLOCATIONS, key, e))?;
            out.push((location, channel, allocation));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Open purchase-order lines of a SKU: (location, purchase order, line).
    pub fn incoming_of(
        &self,
        sku: &Sku,
    ) -> Result<Vec<(LocationId, DocumentId, IncomingLine)>, StoreError> {
        let prefix = Key::new().id(sku.as_str()).build();
        self.scan::<IncomingLine>(cf::INCOMING, &prefix, None, usize::MAX)?
            .into_iter()
            .map(|(key, line)| {
                let parts = split_ids(&key[prefix.len()..]);
                match (
                    parts.first().and_then(|l| LocationId::new(l).ok()),
                    parts.get(1).and_then(|d| DocumentId::new(d).ok()),
                ) {
                    (Some(location), Some(document)) => Ok((location, document, line)),
                    _ => Err(self.corrupt(cf::INCOMING, &key, "bad incoming key")),
                }
            })
            .collect()
    }

    /// A partition's log time and configuration (locations, channels).
    pub fn partition_state(&self, partition: u32) -> Result<Option<PartitionState>, StoreError> {
        self.get(cf::PARTITION_STATE, &Key::new().u32(partition).build())
    }

    /// Every hold with this id (one per SKU it was used for; normally one).
    pub fn holds_by_id(&self, hold_id: &HoldId) -> Result<Vec<Hold>, StoreError> {
        let prefix = Key::new().id(hold_id.as_str()).build();
        Ok(self
            .scan::<Hold>(cf::HOLDS, &prefix, None, 64)?
            .into_iter()
            .map(|(_, hold)| hold)
            .collect())
    }

    pub fn hold(&self, hold_id: &HoldId, sku: &Sku) -> Result<Option<Hold>, StoreError> {
        self.get(cf::HOLDS, &hold_row_key(hold_id, sku))
    }

    /// Holds through an index whose keys end with the hold's row key.
    fn holds_via_index(
        &self,
        index: &'static str,
        prefix: &[u8],
        cursor: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&Hold) -> bool,
    ) -> Result<Page<Hold>, StoreError> {
        let start = cursor.map(decode_cursor).transpose()?.map(|k| after(&k));
        let scan_max = limit.saturating_mul(SCAN_ROWS_PER_ITEM_MAX).max(limit);
        let rows = self.scan_raw(index, prefix, start.as_deref(), scan_max)?;
        let row_keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|(k, _)| k[prefix.len()..].to_vec())
            .collect();
        let holds: Vec<Option<Hold>> = self.multi_get(cf::HOLDS, &row_keys)?;
        let mut items = Vec::new();
        let mut last_key = None;
        for ((index_key, _), hold) in rows.iter().zip(holds) {
            last_key = Some(index_key.clone());
            let hold =
                hold.ok_or_else(|| self.corrupt(index, index_key, "index names a missing hold"))?;
            if keep(&hold) {
                items.push(hold);
                if items.len() == limit {
                    break;
                }
            }
        }
        let exhausted = rows.len() < scan_max && items.len() < limit;
        Ok(Page {
            items,
            next_cursor: if exhausted {
                None
            } else {
                last_key.map(|k| encode_cursor(&k))
            },
        })
    }

    pub fn holds_by_order(
        &self,
        order_id: &OrderId,
        cursor: Option<&str>,
        limit: usize,
        keep: impl FnMut(&Hold) -> bool,
    ) -> Result<Page<Hold>, StoreError> {
        let prefix = Key::new().id(order_id.as_str()).build();
        self.holds_via_index(cf::HOLDS_BY_ORDER, &prefix, cursor, limit, keep)
    }

    pub fn holds_by_customer(
        &self,
        customer_ref: &stockline_domain::CustomerRef,
        cursor: Option<&str>,
        limit: usize,
        keep: impl FnMut(&Hold) -> bool,
    ) -> Result<Page<Hold>, StoreError> {
        let prefix = Key::new().id(customer_ref.as_str()).build();
        self.holds_via_index(cf::HOLDS_BY_CUSTOMER, &prefix, cursor, limit, keep)
    }

    /// Pickup holds (click & collect, reserve in store) at a location in a status.
    pub fn pickups(
        &self,
        location: &LocationId,
        status: HoldStatus,
        cursor: Option<&str>,
        limit: usize,
        keep: impl FnMut(&Hold) -> bool,
    ) -> Result<Page<Hold>, StoreError> {
        let prefix = Key::new()
            .id(location.as_str())
            .u8(status_code(status))
            .build();
        self.holds_via_index(cf::PICKUPS, &prefix, cursor, limit, keep)
    }

    /// A SKU's audit trail in log order, filtered.
    pub fn history(
        &self,
        sku: &Sku,
        cursor: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&HistoryEntry) -> bool,
    ) -> Result<Page<HistoryEntry>, StoreError> {
        let prefix = Key::new().id(sku.as_str()).build();
        let start = cursor.map(decode_cursor).transpose()?.map(|k| after(&k));
        let scan_max = limit.saturating_mul(SCAN_ROWS_PER_ITEM_MAX).max(limit);
        let rows = self.scan_raw(cf::HISTORY, &prefix, start.as_deref(), scan_max)?;
        let mut items = Vec::new();
        let mut last_key = None;
        for (key, value) in &rows {
            last_key = Some(key.clone());
            let entry: HistoryEntry =
                decode_row(value).map_err(|e| self.corrupt(cf::HISTORY, key, e))?;
            if keep(&entry) {
                items.push(entry);
                if items.len() == limit {
                    break;
                }
            }
        }
        let exhausted = rows.len() < scan_max && items.len() < limit;
        Ok(Page {
            items,
            next_cursor: if exhausted {
                None
            } else {
                last_key.map(|k| encode_cursor(&k))
            },
        })
    }

    /// What the fold said of the record at (partition, offset), when it refused it
    /// or found it repeated.
    pub fn verdict_at(
        &self,
        partition: u32,
        offset: u64,
    ) -> Result<Option<VerdictRow>, StoreError> {
        self.get(cf::VERDICTS, &Key::new().u32(partition).u64(offset).build())
    }

    /// The dead letter of the record at (partition, offset), if it was one.
    pub fn dead_letter_at(
        &self,
        partition: u32,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        self.get(
            cf::DEAD_LETTERS,
            &Key::new().u32(partition).u64(offset).build(),
        )
    }

    /// The record at (partition, offset) as the projector consumed it, from the
    /// archive; `None` when it was not consumed (yet).
    pub fn archived_at(
        &self,
        partition: u32,
        offset: u64,
    ) -> Result<Option<ArchivedRecord>, StoreError> {
        let start = offset - offset % crate::ARCHIVE_CHUNK_RECORDS;
        let chunk: Option<ArchiveChunk> =
            self.get(cf::ARCHIVE, &Key::new().u32(partition).u64(start).build())?;
        Ok(chunk.and_then(|chunk| {
            chunk
                .records
                .into_iter()
                .find(|record| record.offset == offset)
        }))
    }
}

/// One daily counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    /// UTC day, as days since the Unix epoch.
    pub day: i64,
    pub channel: String,
    /// Empty when the counter is not about one location.
    pub location: String,
    pub metric: String,
    /// Currency of revenue, code of a rejection; empty otherwise.
    pub detail: String,
    pub value: i64,
}

impl Store {
    /// Daily counters of days `from_day..=to_day`.
    pub fn channel_stats(&self, from_day: i64, to_day: i64) -> Result<Vec<CounterRow>, StoreError> {
        let start = Key::new().i64(from_day).build();
        let mut rows = Vec::new();
        let mut next = Some(start);
        while let Some(from) = next.take() {
            let page = self.scan_raw(cf::CHANNEL_STATS, b"", Some(&from), 10_000)?;
            for (key, value) in &page {
                let day_bytes: [u8; 8] = key
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| self.corrupt(cf::CHANNEL_STATS, key, "short key"))?;
                let day = crate::keys::from_sortable_i64(day_bytes);
                if day > to_day {
                    return Ok(rows);
                }
                let parts = split_ids(&key[8..]);
                let [channel, location, metric, detail] = parts.as_slice() else {
                    return Err(self.corrupt(cf::CHANNEL_STATS, key, "expected 4 key parts"));
                };
                let value: i64 =
                    decode_row(value).map_err(|e| self.corrupt(cf::CHANNEL_STATS, key, e))?;
                rows.push(CounterRow {
                    day,
                    channel: (*channel).to_owned(),
                    location: (*location).to_owned(),
                    metric: (*metric).to_owned(),
                    detail: (*detail).to_owned(),
                    value,
                });
            }
            if page.len() == 10_000 {
                next = page.last().map(|(k, _)| after(k));
            }
        }
        Ok(rows)
    }

    /// Every SKU's quantities at one location (a scan of every stock row).
    pub fn stock_at(&self, location: &LocationId) -> Result<Vec<(Sku, Quantities)>, StoreError> {
        let mut out = Vec::new();
        self.for_each_raw(cf::STOCK, |key, value| {
            let parts = split_ids(key);
            if parts.len() == 2 && parts[1] == location.as_str() {
                let sku = Sku::new(parts[0]).map_err(|e| self.corrupt(cf::STOCK, key, e))?;
                let q: Quantities =
                    decode_row(value).map_err(|e| self.corrupt(cf::STOCK, key, e))?;
                out.push((sku, q));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every hold accepted for `location` that is still open (held or ready).
    pub fn open_holds_at(&self, location: &LocationId) -> Result<Vec<Hold>, StoreError> {
        let mut out = Vec::new();
        self.for_each_raw(cf::HOLDS, |key, value| {
            let hold: Hold = decode_row(value).map_err(|e| self.corrupt(cf::HOLDS, key, e))?;
            if hold.location.as_ref() == Some(location) && hold.is_holding_units() {
                out.push(hold);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// A row value decoded for people: the column family says which type it is.
pub fn describe_value(cf_name: &str, bytes: &[u8]) -> String {
    fn show<T: serde::de::DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) -> String {
        match decode_row::<T>(bytes) {
            Ok(value) => format!("{value:?}"),
            Err(e) => format!("<undecodable: {e}>"),
        }
    }
    match cf_name {
        cf::POSITIONS => bytes
            .try_into()
            .map(|b: [u8; 8]| format!("next offset {}", u64::from_be_bytes(b)))
            .unwrap_or_else(|_| "<bad position>".to_owned()),
        cf::STOCK => show::<Quantities>(bytes),
        cf::ALLOCATIONS => show::<Allocation>(bytes),
        cf::HOLDS => show::<Hold>(bytes),
        cf::PARTITION_STATE => show::<PartitionState>(bytes),
        cf::WAITLISTS => show::<Vec<stockline_domain::WaitlistEntry>>(bytes),
        cf::INCOMING => show::<IncomingLine>(bytes),
        cf::TRANSFERS => show::<stockline_domain::TransferLine>(bytes),
        cf::HISTORY => show::<HistoryEntry>(bytes),
        cf::CHANNEL_STATS => show::<i64>(bytes),
        cf::DEAD_LETTERS => show::<DeadLetter>(bytes),
        cf::VERDICTS => show::<VerdictRow>(bytes),
        cf::OUTBOX => show::<crate::rows::OutboxEntry>(bytes),
        cf::SEEN => show::<crate::rows::SeenChunk>(bytes),
        cf::ARCHIVE => show::<crate::rows::ArchiveChunk>(bytes)
            .chars()
            .take(200)
            .collect(),
        _ if bytes.is_empty() => "(index entry)".to_owned(),
        _ => format!("{} bytes", bytes.len()),
    }
}
