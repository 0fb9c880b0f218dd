//! The versioned binary format.
//!
//! ```text
//! byte 0     magic: 0xA7 for an event record, 0xB3 for a store row
//! byte 1     format version (this build writes and reads 1)
//! byte 2..   bincode 2, standard configuration (little-endian varints), of the value
//! ```
//!
//! The magic byte tells an event from a row and both from stray bytes (JSON starts
//! with `{`, 0x7B). Decoding is bounded: no value may claim more than
//! [`DECODE_LIMIT_BYTES`], so a corrupt length prefix cannot make the reader
//! allocate gigabytes. Trailing bytes are an error: a record is exactly one value.

use serde::Serialize;
use serde::de::DeserializeOwned;
use stockline_domain::Event;

/// Header byte of an event record on Kafka.
pub const EVENT_MAGIC: u8 = 0xA7;
/// Header byte of a RocksDB row value.
pub const ROW_MAGIC: u8 = 0xB3;
/// The event format version this build writes, and the newest it reads.
pub const EVENT_FORMAT_VERSION: u8 = 1;
/// The row format version this build writes, and the newest it reads.
pub const ROW_FORMAT_VERSION: u8 = 1;
/// Largest value the decoder accepts (1 MiB; Kafka's default `message.max.bytes` is
/// about 1 MiB as well).
pub const DECODE_LIMIT_BYTES: usize = 1 << 20;

const HEADER_LEN: usize = 2;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>()
}

/// Why bytes are not a value of this build's formats: always bad input (or a
/// newer writer), never a bug of the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {len_bytes} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort { len_bytes: usize },
    #[error("record starts with byte {found:#04x}, not the {what} magic {expected:#04x}")]
    BadMagic {
        what: &'static str,
        found: u8,
        expected: u8,
    },
    #[error(
        "{what} format version {found} is newer than this build reads (up to {supported}); upgrade stockline"
    )]
    UnsupportedFormatVersion {
        what: &'static str,
        found: u8,
        supported: u8,
    },
    #[error("{what} does not decode: {message}")]
    Malformed { what: &'static str, message: String },
    #[error("{what} has {trailing_bytes} trailing bytes after the value")]
    TrailingBytes {
        what: &'static str,
        trailing_bytes: usize,
    },
}

impl DecodeError {
    /// Stable machine-readable code, for dead letters and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadMagic { .. } => "bad_magic",
            DecodeError::UnsupportedFormatVersion { .. } => "unsupported_format_version",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
        }
    }
}

/// Encoding only fails on values serde cannot represent in bincode: a bug.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {what}: {source}")]
pub struct EncodeError {
    what: &'static str,
    #[source]
    source: bincode::error::EncodeError,
}

fn encode<T: Serialize>(
    magic: u8,
    version: u8,
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    append_encoded(&mut out, magic, version, what, value)?;
    Ok(out)
}

/// Appends the encoding of `value` (the header, then bincode) to `out`.
fn append_encoded<T: Serialize>(
    out: &mut Vec<u8>,
    magic: u8,
    version: u8,
    what: &'static str,
    value: &T,
) -> Result<(), EncodeError> {
    out.push(magic);
    out.push(version);
    bincode::serde::encode_into_std_write(value, out, config())
        .map_err(|source| EncodeError { what, source })?;
    Ok(())
}

/// The body after a header of `magic` and a version this build reads.
fn check_header<'a>(
    magic: u8,
    version: u8,
    what: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [u8], DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort {
            len_bytes: bytes.len(),
        });
    }
    if bytes[0] != magic {
        return Err(DecodeError::BadMagic {
            what,
            found: bytes[0],
            expected: magic,
        });
    }
    if bytes[1] == 0 || bytes[1] > version {
        return Err(DecodeError::UnsupportedFormatVersion {
            what,
            found: bytes[1],
            supported: version,
        });
    }
    Ok(&bytes[HEADER_LEN..])
}

fn decode<T: DeserializeOwned>(
    magic: u8,
    version: u8,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let body = check_header(magic, version, what, bytes)?;
    decode_body(what, body)
}

/// Decodes a body (the bytes after the header) through serde, all of it.
fn decode_body<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    let (value, read) = bincode::serde::decode_from_slice::<T, _>(body, config()).map_err(|e| {
        DecodeError::Malformed {
            what,
            message: e.to_string(),
        }
    })?;
    whole_body(what, body, read)?;
    Ok(value)
}

/// A value must end where its body ends: `read` bytes of `body` were decoded.
fn whole_body(what: &'static str, body: &[u8], read: usize) -> Result<(), DecodeError> {
    if read != body.len() {
        return Err(DecodeError::TrailingBytes {
            what,
            trailing_bytes: body.len() - read,
        });
    }
    Ok(())
}

/// The bytes of an event record on Kafka.
pub fn encode_event(event: &Event) -> Result<Vec<u8>, EncodeError> {
    encode(EVENT_MAGIC, EVENT_FORMAT_VERSION, "event", event)
}

/// An event record from Kafka. Identifier rules are enforced while decoding; the
/// event's semantic validity is `Event::validate`'s business.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    let body = check_header(EVENT_MAGIC, EVENT_FORMAT_VERSION, "event", bytes)?;
    // serde's decoder counts at most 8 bytes against the limit per byte it
    // reads: a body of up to an eighth of the limit never reaches it, and the
    // decoder written for events gives the same results there (see
    // `event_decoder`). Longer ones, which the limit may refuse, go through serde.
    if body.len() > DECODE_LIMIT_BYTES / 8 {
        return decode_body("event", body);
    }
    let (event, read) = crate::event_decoder::decode_event_body(body).map_err(|message| {
        DecodeError::Malformed {
            what: "event",
            message,
        }
    })?;
    whole_body("event", body, read)?;
    Ok(event)
}

/// [`decode_event`] through serde alone: the reference the event decoder is
/// tested against.
#[cfg(test)]
pub(crate) fn decode_event_with_serde(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode(EVENT_MAGIC, EVENT_FORMAT_VERSION, "event", bytes)
}

/// The bytes of a RocksDB row value.
pub fn encode_row<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    encode(ROW_MAGIC, ROW_FORMAT_VERSION, "row", value)
}

/// [`encode_row`] into a buffer the caller reuses: writing a batch of rows
/// through one buffer saves an allocation and a free per row.
pub fn encode_row_into<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    out.clear();
    encode_row_appending(out, value)
}

/// [`encode_row`] appended to `out`, whatever it holds already: rows made one at
/// a time and written later are kept encoded, side by side in one buffer.
pub fn encode_row_appending<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    append_encoded(out, ROW_MAGIC, ROW_FORMAT_VERSION, "row", value)
}

/// A row value written field by field, in exactly the bytes [`encode_row`] gives
/// the same value through serde: for the rows a replay writes once per record
/// (history entries), where serde's generic path cost about 1,700 instructions
/// a row. The caller writes the fields in declaration order with the types'
/// serde encodings (documented per method); a proptest next to each caller
/// pins its bytes to [`encode_row`]'s.
pub struct RowWriter<'a> {
    out: &'a mut Vec<u8>,
}

/// bincode's varint markers (standard configuration): values up to 250 are one
/// byte; larger ones are a marker and the little-endian integer. Shared with
/// the event decoder.
pub(crate) const VARINT_SINGLE_BYTE_MAX: u8 = 250;
pub(crate) const VARINT_U16: u8 = 251;
pub(crate) const VARINT_U32: u8 = 252;
pub(crate) const VARINT_U64: u8 = 253;

impl<'a> RowWriter<'a> {
    /// Appends the row header to `out`; the fields follow.
    pub fn appending(out: &'a mut Vec<u8>) -> RowWriter<'a> {
        out.push(ROW_MAGIC);
        out.push(ROW_FORMAT_VERSION);
        RowWriter { out }
    }

    /// Appends fields to `out` without a header: for a part of a row built
    /// ahead of the rest (an archive chunk's records, encoded as they arrive,
    /// put after the header and the chunk's length at the flush).
    pub fn fields(out: &'a mut Vec<u8>) -> RowWriter<'a> {
        RowWriter { out }
    }

    /// Any unsigned integer (`u16`, `u32`, `u64`, `usize`: the same bytes for the
    /// same value), and collection and string lengths.
    #[inline]
    pub fn unsigned(&mut self, value: u64) -> &mut Self {
        // The casts are exact: each branch checks the value's range first.
        #[allow(clippy::cast_possible_truncation)]
        if value <= u64::from(VARINT_SINGLE_BYTE_MAX) {
            self.out.push(value as u8);
        } else if value <= u64::from(u16::MAX) {
            self.out.push(VARINT_U16);
            self.out.extend_from_slice(&(value as u16).to_le_bytes());
        } else if value <= u64::from(u32::MAX) {
            self.out.push(VARINT_U32);
            self.out.extend_from_slice(&(value as u32).to_le_bytes());
        } else {
            self.out.push(VARINT_U64);
            self.out.extend_from_slice(&value.to_le_bytes());
        }
        self
    }

    /// A signed integer: zigzag (0, -1, 1, -2... as 0, 1, 2, 3...), then as
    /// [`Self::unsigned`].
    #[inline]
    pub fn signed(&mut self, value: i64) -> &mut Self {
        // Reinterpreting the bits is the point of zigzag.
        #[allow(clippy::cast_sign_loss)]
        let zigzag = ((value << 1) ^ (value >> 63)) as u64;
        self.unsigned(zigzag)
    }

    /// A string: its length in bytes, then the bytes.
    #[inline]
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// A byte string (serde's `serialize_bytes`: a UUID in a binary format): its
    /// length, then the bytes.
    #[inline]
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.unsigned(value.len() as u64);
        self.out.extend_from_slice(value);
        self
    }

    /// A unit variant of an enum, or the tag of a variant with fields: the
    /// variant's index in declaration order.
    #[inline]
    pub fn variant(&mut self, index: u32) -> &mut Self {
        self.unsigned(u64::from(index))
    }

    /// An `Option`: a byte 0 for `None`; 1 for `Some`, then the value as `write`
    /// writes it.
    #[inline]
    pub fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) -> &mut Self {
        match value {
            None => self.out.push(0),
            Some(value) => {
                self.out.push(1);
                write(self, value);
            }
        }
        self
    }
}

/// A RocksDB row value.
pub fn decode_row<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode(ROW_MAGIC, ROW_FORMAT_VERSION, "row", bytes)
}
