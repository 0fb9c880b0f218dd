//! Store errors, classified: what the caller can do about each.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be opened (locked by another process, permissions,
    /// disk). Operator action.
    #[error("cannot open store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("no store at {path}")]
    Missing { path: PathBuf },
    #[error("store {path} cannot be used: {message}")]
    Incompatible { path: PathBuf, message: String },
    #[error("store {path} is open read-only")]
    ReadOnly { path: PathBuf },
    /// RocksDB refused a read or a write: IO trouble, possibly transient.
    #[error("store read failed: {0}")]
    Read(#[source] rocksdb::Error),
    #[error("store write failed: {0}")]
    Write(#[source] rocksdb::Error),
    /// A row does not decode: the store is damaged or was written by a newer build.
    #[error("corrupt row in {cf} at {key:?}: {message}")]
    Corrupt {
        cf: &'static str,
        key: String,
        message: String,
    },
    /// A value could not be encoded: a bug.
    #[error("cannot encode a row: {0}")]
    Encode(String),
    /// The restored fold state breaks an invariant: a bug or a damaged store.
    #[error("restored state of partition {partition} is inconsistent: {message}")]
    Inconsistent { partition: u32, message: String },
}

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying later may succeed.
    Transient,
    /// A person must act (configuration, disk, rebuild).
    Operator,
    /// Stockline is wrong; report it.
    Bug,
}

impl StoreError {
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Read(_) | StoreError::Write(_) => ErrorClass::Transient,
            StoreError::Open { .. }
            | StoreError::Missing { .. }
            | StoreError::Incompatible { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Corrupt { .. } => ErrorClass::Operator,
            StoreError::Encode(_) | StoreError::Inconsistent { .. } => ErrorClass::Bug,
        }
    }
}
