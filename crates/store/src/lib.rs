//! Stockline's RocksDB store: read models and fold-state persistence.
//!
//! - [`store`]: the database, its column families, atomic batches, typed reads.
//! - [`projection`]: folds consumed records into per-partition ledgers and writes
//!   what changed, with the consumer positions, in one `WriteBatch`.
//! - [`restore`]: rebuilds the fold state of assigned partitions from those rows.
//! - [`compare`]: two stores, column family by column family, byte for byte.
//!
//! Only this crate knows the key layout (see `keys`); values are encoded by
//! `stockline-wire`'s row codec.

pub mod compare;
pub mod error;
pub mod keys;
pub mod projection;
pub mod queries;
mod restore;
pub mod rows;
pub mod store;

pub use compare::{Comparison, Difference, compare};
pub use error::{ErrorClass, StoreError};
pub use projection::{
    ARCHIVE_CHUNK_RECORDS, Applied, PartitionOf, Projection, ProjectionStats, RawRecord,
    SEEN_CHUNK_OFFSETS, VerdictKind,
};
pub use queries::{CounterRow, Page, describe_value};
/// The batch type of [`Projection::prepare_rows`] (written with [`Store::write`]).
pub use rocksdb::WriteBatch;
pub use store::{ARCHIVE_FORMAT_OLDEST, OpenMode, STORE_FORMAT, Store, StoreContents, cf};
