//! Stockline's ledger core.
//!
//! Plain data and pure functions, in the style of `handle`/`apply` aggregates: the
//! [`Event`] types every channel writes, the per-partition [`Ledger`] state, and
//! [`fold`], which applies one event at one log time and says what it decided.
//!
//! This crate does no IO and reads no clock: it depends on serde, chrono (types only),
//! uuid and thiserror, nothing else. Kafka, RocksDB and HTTP live in other crates and
//! depend on this one, never the reverse. See `docs/ARCHITECTURE.md`.

pub mod analytics;
pub mod event;
pub mod fold;
mod hash;
pub mod ids;
pub mod state;
mod tables;
pub mod time;
pub mod validate;
pub mod view;

pub use event::{
    DocumentKind, DocumentRef, Event, EventId, HoldKind, LocationKind, Payload, PayloadKind, Price,
    ReasonCode, ReceiptKind, ReturnDisposition, Routing, SCHEMA_VERSION, StockState,
};
pub use fold::{
    Cause, Effect, Outcome, POSITION_ABS_MAX, Rejection, Verdict, advance, advance_into, fold,
    fold_into,
};
pub use hash::{BuildIdHasher, IdHashMap};
pub use ids::prefix128;
pub use ids::{
    ChannelId, CustomerRef, DocumentId, GroupId, HoldId, IdError, LocationId, OrderId, Sku,
};
pub use state::{
    Allocation, AllocationView, ChannelConfig, Config, DEDUPE_WINDOW_MS, Dirty, Hold, HoldStatus,
    HoldView, IncomingLine, Ledger, LedgerParts, LocationConfig, Quantities, StockView,
    TransferLine, WaitTarget, WaitlistEntry, WaitlistView,
};
pub use time::LogTime;
pub use validate::InvalidEvent;
pub use view::channel_view;
