//! Store till exports (CSV) to till sales and returns.
//!
//! One row per receipt line, with a header row naming the columns (in any order,
//! case-insensitive; columns not listed here are ignored and reported):
//!
//! | column | required | meaning |
//! | --- | --- | --- |
//! | `receipt_id` | yes | the till's receipt number (an id: printable ASCII, no spaces) |
//! | `line` | yes | the line number on the receipt (1, 2, ...) |
//! | `time` | yes | when: RFC 3339 (`2025-03-14T10:02:00+01:00`), or `YYYY-MM-DD HH:MM:SS` read as UTC |
//! | `location` | yes | the Stockline location (store) of the till |
//! | `sku` | yes | the Stockline SKU |
//! | `quantity` | yes | units, a positive integer |
//! | `kind` | yes | `sale` or `return` |
//! | `disposition` | no | returns only: `restock` (default), `damaged`, `quality_control`, `discard` |
//! | `unit_price_minor` | no | unit price in minor units (cents); with `currency` |
//! | `currency` | no | ISO 4217 code (`EUR`); with `unit_price_minor` |
//! | `original_order` | no | returns only: the order the unit was sold on |
//! | `sold_by_channel` | no | returns only: the channel that sold it (`web` for an online order returned in store) |
//!
//! Blank lines and lines starting with `#` are skipped. Each row becomes one event
//! whose id is derived from (`location`, `receipt_id`, `line`), so importing a file
//! again (or a file that overlaps a previous one) changes nothing. Receipt numbers
//! need only be unique per location. A bad row is reported with its line number in
//! the file and the others are still imported.

use std::collections::VecDeque;
use std::io::Read;

use chrono::{DateTime, NaiveDateTime, Utc};
use stockline_domain::event::QUANTITY_MAX;
use stockline_domain::{
    ChannelId, DocumentId, DocumentKind, DocumentRef, Event, LocationId, OrderId, Payload, Price,
    ReasonCode, ReturnDisposition, SCHEMA_VERSION, Sku,
};

use crate::event_id;

/// One row, translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillLine {
    /// The row's line number in the file (the header is line 1).
    pub line: u64,
    pub event: Event,
}

/// Why a row (or the header) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    ReceiptId,
    Line,
    Time,
    Location,
    Sku,
    Quantity,
    Kind,
    Disposition,
    UnitPriceMinor,
    Currency,
    OriginalOrder,
    SoldByChannel,
}

const COLUMNS: [(&str, Column, bool); 12] = [
    ("receipt_id", Column::ReceiptId, true),
    ("line", Column::Line, true),
    ("time", Column::Time, true),
    ("location", Column::Location, true),
    ("sku", Column::Sku, true),
    ("quantity", Column::Quantity, true),
    ("kind", Column::Kind, true),
    ("disposition", Column::Disposition, false),
    ("unit_price_minor", Column::UnitPriceMinor, false),
    ("currency", Column::Currency, false),
    ("original_order", Column::OriginalOrder, false),
    ("sold_by_channel", Column::SoldByChannel, false),
];

/// The input, counting lines as bytes go through: the csv reader does not count
/// skipped comment lines, and people read files by line number.
struct LineCounter<R> {
    inner: R,
    offset: u64,
    /// Byte offsets of the newlines read but not yet behind a record.
    pending: VecDeque<u64>,
    /// Newlines behind the last record asked about.
    behind: u64,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                self.pending.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    /// The 1-based line of the byte at `offset` (asked in increasing order).
    fn line_of(&mut self, offset: u64) -> u64 {
        while self
            .pending
            .front()
            .is_some_and(|newline| *newline < offset)
        {
            self.pending.pop_front();
            self.behind += 1;
        }
        self.behind + 1
    }
}

/// Reads a till export row by row: an iterator of translated rows or row errors.
pub struct TillsReader<R> {
    reader: csv::Reader<LineCounter<R>>,
    /// Column index of each known column, by `COLUMNS` position.
    index: [Option<usize>; 12],
    ignored: Vec<String>,
    channel: ChannelId,
    record: csv::StringRecord,
    /// An input error ends the iteration (after being reported once).
    done: bool,
}

impl<R: Read> TillsReader<R> {
    /// Reads the header. `channel` is the channel the events are recorded under
    /// (`pos`).
    pub fn new(input: R, channel: ChannelId) -> Result<TillsReader<R>, LineError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(LineCounter {
                inner: input,
                offset: 0,
                pending: VecDeque::new(),
                behind: 0,
            });
        let header_error = |message: String| LineError { line: 1, message };
        let headers = reader
            .headers()
            .map_err(|e| header_error(format!("unreadable header: {e}")))?
            .clone();
        let mut index = [None; 12];
        let mut ignored = Vec::new();
        for (position, name) in headers.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            match COLUMNS.iter().position(|(known, _, _)| *known == name) {
                Some(slot) if index[slot].is_some() => {
                    return Err(header_error(format!("column {name:?} appears twice")));
                }
                Some(slot) => index[slot] = Some(position),
                None => ignored.push(name),
            }
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .zip(index)
            .filter(|((_, _, required), found)| *required && found.is_none())
            .map(|((name, _, _), _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(header_error(format!(
                "missing column(s) {}; the header must name receipt_id,line,time,location,sku,quantity,kind",
                missing.join(", ")
            )));
        }
        Ok(TillsReader {
            reader,
            index,
            ignored,
            channel,
            record: csv::StringRecord::new(),
            done: false,
        })
    }

    /// Header columns that are not till columns (ignored).
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// Bytes of input consumed so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    fn field(&self, column: Column) -> Option<&str> {
        let slot = COLUMNS.iter().position(|(_, c, _)| *c == column)?;
        let value = self.record.get(self.index[slot]?)?.trim();
        (!value.is_empty()).then_some(value)
    }

    fn required(&self, column: Column, name: &str) -> Result<&str, String> {
        self.field(column).ok_or_else(|| format!("{name} is empty"))
    }

    fn translate(&self) -> Result<Event, String> {
        let receipt = self.required(Column::ReceiptId, "receipt_id")?;
        let receipt_id =
            DocumentId::new(receipt).map_err(|e| format!("receipt_id {receipt:?}: {e}"))?;
        let line_text = self.required(Column::Line, "line")?;
        let line: u32 = line_text
            .parse()
            .ok()
            .filter(|l| *l >= 1)
            .ok_or_else(|| format!("line {line_text:?} is not a positive integer"))?;
        let time = parse_time(self.required(Column::Time, "time")?)?;
        let location_text = self.required(Column::Location, "location")?;
        let location = LocationId::new(location_text)
            .map_err(|e| format!("location {location_text:?}: {e}"))?;
        let sku_text = self.required(Column::Sku, "sku")?;
        let sku = Sku::new(sku_text).map_err(|e| format!("sku {sku_text:?}: {e}"))?;
        let quantity_text = self.required(Column::Quantity, "quantity")?;
        let quantity: i64 = quantity_text
            .parse()
            .ok()
            .filter(|q| (1..=QUANTITY_MAX).contains(q))
            .ok_or_else(|| {
                format!("quantity {quantity_text:?} is not an integer within 1..={QUANTITY_MAX}")
            })?;
        let price = match (
            self.field(Column::UnitPriceMinor),
            self.field(Column::Currency),
        ) {
            (None, None) => None,
            (Some(amount), Some(currency)) => {
                let unit_minor: i64 = amount.parse().ok().filter(|a| *a >= 0).ok_or_else(|| {
                    format!("unit_price_minor {amount:?} is not a non-negative integer")
                })?;
                let currency = currency.to_ascii_uppercase();
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!("currency {currency:?} is not an ISO 4217 code"));
                }
                Some(Price {
                    unit_minor,
                    currency,
                })
            }
            _ => return Err("unit_price_minor and currency go together".to_owned()),
        };
        let kind = self.required(Column::Kind, "kind")?.to_ascii_lowercase();
        let returns_only = [
            (Column::Disposition, "disposition"),
            (Column::OriginalOrder, "original_order"),
            (Column::SoldByChannel, "sold_by_channel"),
        ];
        let (payload, reason) = match kind.as_str() {
            "sale" => {
                if let Some((_, name)) = returns_only.iter().find(|(c, _)| self.field(*c).is_some())
                {
                    return Err(format!("{name} is for returns only"));
                }
                (Payload::TillSale { quantity, price }, None)
            }
            "return" => {
                let disposition = match self.field(Column::Disposition).map(str::to_ascii_lowercase)
                {
                    None => ReturnDisposition::Restock,
                    Some(d) => match d.as_str() {
                        "restock" => ReturnDisposition::Restock,
                        "damaged" => ReturnDisposition::Damaged,
                        "quality_control" => ReturnDisposition::QualityControl,
                        "discard" => ReturnDisposition::Discard,
                        other => {
                            return Err(format!(
                                "disposition {other:?} is not restock, damaged, quality_control or discard"
                            ));
                        }
                    },
                };
                let original_order = self
                    .field(Column::OriginalOrder)
                    .map(|o| OrderId::new(o).map_err(|e| format!("original_order {o:?}: {e}")))
                    .transpose()?;
                let sold_by_channel = self
                    .field(Column::SoldByChannel)
                    .map(|c| ChannelId::new(c).map_err(|e| format!("sold_by_channel {c:?}: {e}")))
                    .transpose()?;
                (
                    Payload::Returned {
                        quantity,
                        disposition,
                        sold_by_channel,
                        original_order,
                        price,
                    },
                    Some(ReasonCode::CustomerReturn),
                )
            }
            other => return Err(format!("kind {other:?} is not sale or return")),
        };
        let event = Event {
            event_id: event_id(&[
                "tills",
                location.as_str(),
                receipt_id.as_str(),
                &line.to_string(),
            ]),
            schema_version: SCHEMA_VERSION,
            occurred_at: time,
            channel: self.channel.clone(),
            location: Some(location),
            sku: Some(sku),
            document: Some(DocumentRef {
                kind: DocumentKind::TillReceipt,
                id: receipt_id,
            }),
            reason,
            payload,
        };
        event
            .validate()
            .map_err(|e| format!("{e} ({})", e.code()))?;
        Ok(event)
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(time.and_utc());
        }
    }
    Err(format!(
        "time {text:?} is not RFC 3339 (2025-03-14T10:02:00+01:00) or YYYY-MM-DD HH:MM:SS (UTC)"
    ))
}

impl<R: Read> Iterator for TillsReader<R> {
    type Item = Result<TillLine, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut record = std::mem::take(&mut self.record);
        let read = self.reader.read_record(&mut record);
        // The line of the record's last byte: its start position may be that of a
        // comment line skipped before it.
        let last = self.reader.position().byte().saturating_sub(1);
        self.record = record;
        match read {
            Ok(false) => None,
            Err(e) => {
                if e.is_io_error() {
                    self.done = true;
                }
                let line = self.reader.get_mut().line_of(last);
                Some(Err(LineError {
                    line,
                    message: format!("unreadable row: {e}"),
                }))
            }
            Ok(true) => {
                let line = self.reader.get_mut().line_of(last);
                Some(
                    self.translate()
                        .map(|event| TillLine { line, event })
                        .map_err(|message| LineError { line, message }),
                )
            }
        }
    }
}
