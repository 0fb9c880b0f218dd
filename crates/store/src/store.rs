//! The RocksDB database: column families, opening, atomic batches, typed reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stockline_wire::codec::{decode_row, encode_row};

use crate::error::StoreError;
use crate::keys::{Key, prefix_end};

/// Column families. Every one except [`cf::META`] is a pure function of the log
/// prefix the store has applied: a rebuild from the log reproduces them byte for
/// byte, and `compare` checks exactly that.
pub mod cf {
    /// Store identity, format, and operational cursors (outbox publishing). Not
    /// compared: it holds facts about this copy, not about the log.
    pub const META: &str = "meta";
    /// (topic, partition) -> next offset to apply.
    pub const POSITIONS: &str = "positions";
    /// partition -> log time and configuration (fold state).
    pub const PARTITION_STATE: &str = "partition_state";
    /// sku \0 location -> Quantities.
    pub const STOCK: &str = "stock";
    /// sku \0 location \0 channel -> Allocation.
    pub const ALLOCATIONS: &str = "allocations";
    /// hold id \0 sku -> Hold (every hold ever decided).
    pub const HOLDS: &str = "holds";
    /// partition, hold row key -> (): the holds the fold still tracks.
    pub const FOLD_HOLDS: &str = "fold_holds";
    /// order id \0 hold row key -> ().
    pub const HOLDS_BY_ORDER: &str = "holds_by_order";
    /// customer ref \0 hold row key -> ().
    pub const HOLDS_BY_CUSTOMER: &str = "holds_by_customer";
    /// location \0 status, hold row key -> (): the pickup desk's queues.
    pub const PICKUPS: &str = "pickups";
    /// expires_at, hold row key -> (): open unconfirmed holds by expiry.
    pub const EXPIRIES: &str = "expiries";
    /// sku -> waitlist entries, in joining order.
    pub const WAITLISTS: &str = "waitlists";
    /// sku \0 location \0 purchase order -> IncomingLine.
    pub const INCOMING: &str = "incoming";
    /// sku \0 transfer -> TransferLine.
    pub const TRANSFERS: &str = "transfers";
    /// sku \0 offset \0 index -> HistoryEntry: the audit trail.
    pub const HISTORY: &str = "history";
    /// day \0 channel \0 location \0 metric \0 detail (currency, rejection code) -> i64.
    pub const CHANNEL_STATS: &str = "channel_stats";
    /// partition, chunk start offset -> SeenChunk: the dedupe window.
    pub const SEEN: &str = "seen";
    /// partition, chunk start offset -> ArchiveChunk: every record consumed.
    pub const ARCHIVE: &str = "archive";
    /// partition, offset -> DeadLetter.
    pub const DEAD_LETTERS: &str = "dead_letters";
    /// partition, offset, index -> OutboxEntry: what to publish once durable.
    pub const OUTBOX: &str = "outbox";
    /// partition, offset -> VerdictRow, for records the fold refused or found
    /// repeated (applied records have none; invalid ones are dead letters). How a
    /// writer learns what became of its event from its consistency token.
    pub const VERDICTS: &str = "verdicts";

    pub const ALL: [&str; 21] = [
        META,
        POSITIONS,
        PARTITION_STATE,
        STOCK,
        ALLOCATIONS,
        HOLDS,
        FOLD_HOLDS,
        HOLDS_BY_ORDER,
        HOLDS_BY_CUSTOMER,
        PICKUPS,
        EXPIRIES,
        WAITLISTS,
        INCOMING,
        TRANSFERS,
        HISTORY,
        CHANNEL_STATS,
        SEEN,
        ARCHIVE,
        DEAD_LETTERS,
        OUTBOX,
        VERDICTS,
    ];

    /// The column families that must be identical between a live store and a
    /// rebuild of the same log prefix.
    pub fn model() -> impl Iterator<Item = &'static str> {
        ALL.into_iter().filter(|name| *name != META)
    }
}

/// What a store holds besides what queries read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreContents {
    /// Everything: the read models, the archive (the copy of the log the
    /// projector consumed) and the dedupe record. A live projector's store and a
    /// rebuild's: a projector can continue it, and its archive can be replayed.
    Full,
    /// The read models only: what `stockline replay` and `reconcile` write, to
    /// answer questions about the past. None of the rows only a projector
    /// continuing the store reads: no archive (the log it was replayed from has
    /// it already; copying it was 28% of a replay's bytes), no dedupe record, no
    /// set of the holds the fold tracks. Such a store is queried, never
    /// continued nor replayed from: opening it read-write or as an archive
    /// source is refused.
    ReadModels,
}

impl StoreContents {
    /// Whether a store of these contents has rows in column family `name`.
    pub fn holds(self, name: &str) -> bool {
        match self {
            StoreContents::Full => true,
            StoreContents::ReadModels => !matches!(name, cf::ARCHIVE | cf::SEEN | cf::FOLD_HOLDS),
        }
    }
}

/// The on-disk layout version; a store of another layout is refused.
/// 2: archive chunks of 64 records and dedupe chunks of 256 offsets (were 256 and
/// 4,096); a store of format 1 would continue with chunks of another size, and no
/// longer equal its rebuild byte for byte.
/// 3: history entries keep `occurred_at` as microseconds, not RFC 3339 text.
pub const STORE_FORMAT: u32 = 3;
/// The oldest format whose archive and positions are laid out as this build's: a
/// store of this format or newer (up to [`STORE_FORMAT`]) can be the source of a
/// rebuild or replay ([`OpenMode::ArchiveSource`]), the way from an older store
/// to one this build reads (the embedded broker's log is in that archive).
pub const ARCHIVE_FORMAT_OLDEST: u32 = 2;
const META_FORMAT_KEY: &[u8] = b"store_format";
/// Present (with value `"read_models"`) in a [`StoreContents::ReadModels`] store
/// only: a store without it is [`StoreContents::Full`], as every store was
/// before replays left the archive out.
const META_CONTENTS_KEY: &[u8] = b"store_contents";
const META_CONTENTS_READ_MODELS: &str = "read_models";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The projector's mode: one writer per store directory (RocksDB locks it).
    ReadWrite,
    /// Queries against a store another process may be writing, or a replay's output.
    ReadOnly,
    /// Read-only, for reading only the archive and positions (the source of a
    /// rebuild or replay): a store of an older format is accepted from
    /// [`ARCHIVE_FORMAT_OLDEST`] on.
    ArchiveSource,
}

/// A (key, value) pair as stored.
pub type RawRow = (Vec<u8>, Vec<u8>);

/// A Stockline store: one RocksDB database.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    path: PathBuf,
    mode: OpenMode,
    contents: StoreContents,
    /// Bulk loading (rebuilds, replays): writes skip the WAL, and
    /// [`Store::finish_bulk_load`] flushes the memtables. A store being bulk
    /// loaded is worthless until finished, so a crash loses nothing of value.
    bulk: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Memtable bytes of all column families together (RocksDB's
/// `db_write_buffer_size`); see `db_options`.
const DB_WRITE_BUFFER_BYTES: usize = 128 << 20;

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Two cores here; background flushes and compactions get both.
    options.increase_parallelism(2);
    // Batches are large and frequent: a bigger memtable means fewer flushes.
    options.set_write_buffer_size(64 << 20);
    options.set_max_write_buffer_number(4);
    // That size is per column family: with a dozen of them written by every
    // batch, memtables alone could hold gigabytes. Cap them all together; the
    // largest is flushed when the cap is reached.
    options.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
    // Keep file handles bounded (the default is unlimited).
    options.set_max_open_files(512);
    options
}

fn cf_options(name: &str) -> Options {
    let mut options = Options::default();
    let mut block = BlockBasedOptions::default();
    // Point lookups (holds by id, stock rows, previous hold versions at flush) skip
    // files that cannot hold the key. Column families that are only ever scanned
    // by prefix have none: whole-key filters serve no scan, and building them
    // for the audit trail and the hold indexes, most of a store's rows, was 1%
    // of a replay's instructions.
    if !matches!(
        name,
        cf::HISTORY
            | cf::HOLDS_BY_ORDER
            | cf::HOLDS_BY_CUSTOMER
            | cf::PICKUPS
            | cf::EXPIRIES
            | cf::FOLD_HOLDS
            | cf::SEEN
            | cf::DEAD_LETTERS
            | cf::OUTBOX
    ) {
        block.set_bloom_filter(10.0, false);
    }
    block.set_block_size(16 << 10);
    options.set_block_based_table_factory(&block);
    // Every flush of the projection looks up the stored version of each hold it
    // changed, and nearly all miss (holds made and finished within the batch):
    // a miss walks the memtables' skip lists, a cache miss per level. A bloom
    // filter of the whole keys in each memtable answers most misses at once
    // (1% of the memtable's size: about 16 bits a row of some 200 bytes).
    if name == cf::HOLDS {
        options.set_memtable_prefix_bloom_ratio(0.01);
        options.set_memtable_whole_key_filtering(true);
    }
    // Nothing is compressed when memtables are flushed or on the way down;
    // archive and history, append-mostly and large, are compressed in the last
    // level, where nearly all their bytes end up (levels are sized dynamically,
    // RocksDB's default: a compaction from L0 goes straight there). Compressing
    // at flush cost 7% of a replay's CPU, and the data was decompressed and
    // compressed again by that compaction anyway.
    options.set_compression_type(rocksdb::DBCompressionType::None);
    if matches!(name, cf::ARCHIVE | cf::HISTORY | cf::OUTBOX) {
        options.set_bottommost_compression_type(rocksdb::DBCompressionType::Lz4);
    }
    options
}

impl Store {
    /// Opens (or, read-write, creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = db_options();
        let descriptors: Vec<ColumnFamilyDescriptor> = cf::ALL
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)))
            .collect();
        let db = match mode {
            OpenMode::ReadWrite => DB::open_cf_descriptors(&options, &path, descriptors),
            OpenMode::ReadOnly | OpenMode::ArchiveSource => {
                if !path.join("CURRENT").exists() {
                    return Err(StoreError::Missing { path });
                }
                DB::open_cf_descriptors_read_only(&options, &path, descriptors, false)
            }
        }
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let mut store = Store {
            db: Arc::new(db),
            path,
            mode,
            contents: StoreContents::Full,
            bulk: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        store.check_format()?;
        store.contents = store.read_contents()?;
        store.check_contents()?;
        Ok(store)
    }

    /// Creates a new store of `contents` at `path`, which must not hold one yet.
    pub fn create(path: impl AsRef<Path>, contents: StoreContents) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if path.join("CURRENT").exists() {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                message: "the directory already holds a store; use a new directory".into(),
            });
        }
        let mut store = Store::open(path, OpenMode::ReadWrite)?;
        if contents == StoreContents::ReadModels {
            let mut batch = WriteBatch::default();
            batch.put_cf(
                store.cf(cf::META),
                META_CONTENTS_KEY,
                encode(&META_CONTENTS_READ_MODELS)?,
            );
            store.write(batch, true)?;
            store.contents = contents;
        }
        debug_assert_eq!(store.read_contents()?, contents);
        Ok(store)
    }

    fn read_contents(&self) -> Result<StoreContents, StoreError> {
        let Some(bytes) = self.get_raw(cf::META, META_CONTENTS_KEY)? else {
            return Ok(StoreContents::Full);
        };
        let found: String =
            decode_row(&bytes).map_err(|e| self.corrupt(cf::META, META_CONTENTS_KEY, e))?;
        if found == META_CONTENTS_READ_MODELS {
            Ok(StoreContents::ReadModels)
        } else {
            Err(self.corrupt(
                cf::META,
                META_CONTENTS_KEY,
                format!("unknown store contents {found:?}"),
            ))
        }
    }

    /// A read-models store is only ever queried.
    fn check_contents(&self) -> Result<(), StoreError> {
        if self.contents == StoreContents::Full || self.mode == OpenMode::ReadOnly {
            return Ok(());
        }
        let message = match self.mode {
            OpenMode::ArchiveSource => "it is a replay's store (read models only) and has \
                 no archive; read the log from the live store's archive (`--archive \
                 LIVE_STORE_DIR`, `--from-archive LIVE_STORE_DIR`) or from Kafka instead"
                .to_owned(),
            _ => "it is a replay's store (read models only: no archive, no dedupe record), \
                  which can be queried with --store but not continued by a projector; \
                  `stockline rebuild --to NEW_DIR` makes a store a projector can continue"
                .to_owned(),
        };
        Err(StoreError::Incompatible {
            path: self.path.clone(),
            message,
        })
    }

    fn check_format(&self) -> Result<(), StoreError> {
        match self.get_raw(cf::META, META_FORMAT_KEY)? {
            Some(bytes) => {
                let found: u32 =
                    decode_row(&bytes).map_err(|e| self.corrupt(cf::META, META_FORMAT_KEY, e))?;
                let archive_readable = (ARCHIVE_FORMAT_OLDEST..=STORE_FORMAT).contains(&found);
                if found == STORE_FORMAT
                    || (self.mode == OpenMode::ArchiveSource && archive_readable)
                {
                    return Ok(());
                }
                let how = if archive_readable {
                    format!(
                        "rebuild it into a new directory from its archive with `stockline rebuild --from-archive {} --to NEW_DIR` (or from Kafka with `stockline rebuild --to NEW_DIR`), then use NEW_DIR",
                        self.path.display()
                    )
                } else {
                    "rebuild it from Kafka with `stockline rebuild --to NEW_DIR`, then use NEW_DIR"
                        .to_owned()
                };
                Err(StoreError::Incompatible {
                    path: self.path.clone(),
                    message: format!(
                        "store format {found}, this build reads {STORE_FORMAT}; {how}"
                    ),
                })
            }
            None if self.mode == OpenMode::ReadWrite => {
                let mut batch = WriteBatch::default();
                batch.put_cf(self.cf(cf::META), META_FORMAT_KEY, encode(&STORE_FORMAT)?);
                self.write(batch, false)
            }
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    pub fn contents(&self) -> StoreContents {
        self.contents
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every name in cf::ALL is created at open; asking for another is a bug.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| unreachable!("column family {name} is opened with the store"))
    }

    /// A `Corrupt` error about a row.
    pub fn corrupt(
        &self,
        cf_name: &'static str,
        key: &[u8],
        error: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            cf: cf_name,
            key: String::from_utf8_lossy(key).into_owned(),
            message: error.to_string(),
        }
    }

    /// Writes a batch atomically. `sync` also fsyncs the WAL: needed against power
    /// loss, not against a killed process (the OS keeps the written WAL).
    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StoreError> {
        if self.mode != OpenMode::ReadWrite {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let mut options = WriteOptions::default();
        if self.bulk.load(std::sync::atomic::Ordering::Relaxed) {
            options.disable_wal(true);
        } else {
            options.set_sync(sync);
        }
        self.db
            .write_opt(batch, &options)
            .map_err(StoreError::Write)
    }

    /// Starts a bulk load: writes skip the WAL until [`Store::finish_bulk_load`].
    pub fn start_bulk_load(&self) {
        self.bulk.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ends a bulk load: flushes every memtable to disk, then writes use the WAL
    /// again.
    pub fn finish_bulk_load(&self) -> Result<(), StoreError> {
        for name in cf::ALL {
            self.db.flush_cf(self.cf(name)).map_err(StoreError::Write)?;
        }
        self.bulk.store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub fn get_raw(
        &self,
        cf_name: &'static str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(cf_name), key)
            .map_err(StoreError::Read)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        cf_name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.get_raw(cf_name, key)? {
            None => Ok(None),
            Some(bytes) => decode_row(&bytes)
                .map(Some)
                .map_err(|e| self.corrupt(cf_name, key, e)),
        }
    }

    /// Point lookups of many keys in one call.
    pub fn multi_get<T: DeserializeOwned, K: AsRef<[u8]>>(
        &self,
        cf_name: &'static str,
        keys: &[K],
    ) -> Result<Vec<Option<T>>, StoreError> {
        let handle = self.cf(cf_name);
        // Callers mostly ask in key order (a batch's hold versions, its counters):
        // RocksDB then skips sorting them again.
        let sorted = keys
            .windows(2)
            .all(|pair| pair[0].as_ref() < pair[1].as_ref());
        let results = self
            .db
            .batched_multi_get_cf(handle, keys.iter().map(AsRef::as_ref), sorted);
        // Sized up front: collecting through `?` does not know the length, and
        // grew the vector of a rebuild's thousands of hold versions by doubling.
        let mut rows = Vec::with_capacity(keys.len());
        for (result, key) in results.into_iter().zip(keys) {
            rows.push(match result.map_err(StoreError::Read)? {
                None => None,
                Some(bytes) => {
                    Some(decode_row(&bytes).map_err(|e| self.corrupt(cf_name, key.as_ref(), e))?)
                }
            });
        }
        Ok(rows)
    }

    /// Raw (key, value) pairs whose key starts with `prefix`, in key order, starting
    /// at `start` (inclusive; `None` = the prefix itself), at most `limit`.
    pub fn scan_raw(
        &self,
        cf_name: &'static str,
        prefix: &[u8],
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StoreError> {
        let mut read_options = ReadOptions::default();
        if let Some(end) = prefix_end(prefix) {
            read_options.set_iterate_upper_bound(end);
        }
        let from = start.unwrap_or(prefix);
        let iter = self.db.iterator_cf_opt(
            self.cf(cf_name),
            read_options,
            IteratorMode::From(from, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(StoreError::Read)?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }

    /// Visits the rows whose key starts with `prefix`, in key order, without
    /// copying them (a raw iterator bounded by the prefix's end); `visit` returns
    /// `false` to stop. For hot reads (a SKU's stock and allocations per HTTP
    /// lookup), where [`Store::scan_raw`]'s two buffers per row add up.
    pub fn visit_prefix(
        &self,
        cf_name: &'static str,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut read_options = ReadOptions::default();
        if let Some(end) = prefix_end(prefix) {
            read_options.set_iterate_upper_bound(end);
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf_name), read_options);
        iter.seek(prefix);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !key.starts_with(prefix) || !visit(key, value)? {
                break;
            }
            iter.next();
        }
        iter.status().map_err(StoreError::Read)
    }

    /// Decoded rows whose key starts with `prefix` (see [`Store::scan_raw`]).
    pub fn scan<T: DeserializeOwned>(
        &self,
        cf_name: &'static str,
        prefix: &[u8],
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.scan_raw(cf_name, prefix, start, limit)?
            .into_iter()
            .map(|(key, value)| {
                let row = decode_row(&value).map_err(|e| self.corrupt(cf_name, &key, e))?;
                Ok((key, row))
            })
            .collect()
    }

    /// Visits every (key, value) of a column family in key order.
    pub fn for_each_raw(
        &self,
        cf_name: &'static str,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.db.iterator_cf(self.cf(cf_name), IteratorMode::Start) {
            let (key, value) = item.map_err(StoreError::Read)?;
            visit(&key, &value)?;
        }
        Ok(())
    }

    /// The applied positions: partition -> next offset, for one topic.
    pub fn positions(&self, topic: &str) -> Result<BTreeMap<u32, u64>, StoreError> {
        let prefix = Key::new().id(topic).build();
        let mut out = BTreeMap::new();
        for (key, value) in self.scan_raw(cf::POSITIONS, &prefix, None, usize::MAX)? {
            let (partition, next) = decode_position(&key[prefix.len()..], &value)
                .ok_or_else(|| self.corrupt(cf::POSITIONS, &key, "bad position row"))?;
            out.insert(partition, next);
        }
        Ok(out)
    }

    /// Writes one row outside any projection batch (operators' repairs, tests).
    pub fn put<T: Serialize>(
        &self,
        cf_name: &'static str,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf_name), key, encode(value)?);
        self.write(batch, false)
    }

    pub fn meta_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.get(cf::META, key.as_bytes())
    }

    pub fn meta_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::META), key.as_bytes(), encode(value)?);
        self.write(batch, false)
    }
}

pub fn position_key(topic: &str, partition: u32) -> Vec<u8> {
    Key::new().id(topic).u32(partition).build()
}

fn decode_position(partition_bytes: &[u8], value: &[u8]) -> Option<(u32, u64)> {
    let partition = u32::from_be_bytes(partition_bytes.try_into().ok()?);
    let next = u64::from_be_bytes(value.try_into().ok()?);
    Some((partition, next))
}

/// Encodes a row value; failures are bugs (types that bincode cannot represent).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode_row(value).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Encodes row values one after the other through one buffer: a `WriteBatch`
/// copies each value it is given, so a batch of thousands of rows needs no
/// allocation per row.
#[derive(Debug, Default)]
pub struct RowEncoder {
    buffer: Vec<u8>,
}

impl RowEncoder {
    /// The bytes of `value`, valid until the next call.
    pub fn encode<T: Serialize>(&mut self, value: &T) -> Result<&[u8], StoreError> {
        stockline_wire::encode_row_into(&mut self.buffer, value)
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok(&self.buffer)
    }
}
