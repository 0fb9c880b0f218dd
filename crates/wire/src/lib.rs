//! Stockline's encodings, and the only crate that knows them.
//!
//! - [`codec`]: the binary format of Kafka records (events) and RocksDB rows:
//!   a two-byte header (magic, format version) and then bincode 2 (standard config,
//!   varint integers) of the serde types. An old reader refuses a newer format
//!   version with a precise error instead of misreading it. Events are decoded,
//!   and history rows encoded, by code written for them (`event_decoder`,
//!   [`RowWriter`]) that tests pin to serde's bytes: those are per record.
//! - [`json`]: the HTTP edge's JSON, the same serde types, with errors that name the
//!   offending field.
//! - [`schema`]: the JSON Schemas in `schemas/`, generated from the Rust types.

pub mod codec;
mod event_decoder;
pub mod json;
pub mod schema;

pub use codec::{
    DecodeError, EVENT_FORMAT_VERSION, EncodeError, RowWriter, decode_event, decode_row,
    encode_event, encode_row, encode_row_appending, encode_row_into,
};
