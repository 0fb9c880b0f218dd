//! Stateless validation: what can be said about an event without the ledger.
//!
//! The HTTP edge runs this before publishing (so a caller gets a precise 4xx), and the
//! fold runs it again on every record it reads (the log may have been written by
//! anything). An invalid event changes nothing and goes to the dead-letter topic with
//! the reason.

use serde::Serialize;

use crate::event::{
    CONFIG_LIST_LEN_MAX, DocumentKind, Event, Payload, Price, QUANTITY_MAX, SCHEMA_VERSION,
    StockState,
};
use crate::ids::{LocationId, Sku};

/// Why an event cannot be applied at all. Serializable: it travels with the
/// dead-lettered record and in HTTP error bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum InvalidEvent {
    #[error("schema version {found} is not supported (this build reads 1..={supported})")]
    UnsupportedSchemaVersion { found: u16, supported: u16 },
    #[error("{kind} requires `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("{kind} does not take `{field}`")]
    UnexpectedField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("`{field}` is {value}; it must be within {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("{kind} requires a `{expected}` document, got `{found}`")]
    WrongDocumentKind {
        kind: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`from` and `to` are both {state}")]
    SameState { state: &'static str },
    #[error("a transfer cannot go from {location} to itself")]
    SameLocation { location: String },
    #[error("`{field}` lists {len} entries; the limit is {max}")]
    ListTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("`name` must be 1..=200 characters without control characters")]
    BadName,
    #[error("`currency` must be three upper-case letters (ISO 4217)")]
    BadCurrency,
    #[error("location {location} is not defined")]
    UnknownLocation { location: String },
    #[error("only {available} units are {state} at {location}; cannot move {requested}")]
    NotEnoughInState {
        location: String,
        state: &'static str,
        available: i64,
        requested: i64,
    },
    #[error("no open line of document {document} here")]
    UnknownDocument { document: String },
    #[error("transfer {transfer} goes {recorded}, this event says {found}")]
    TransferRouteMismatch {
        transfer: String,
        recorded: String,
        found: String,
    },
    #[error("{field} would reach {value}, beyond the position limit of +/-{max}")]
    PositionOutOfRange {
        field: &'static str,
        value: i64,
        max: i64,
    },
}

impl InvalidEvent {
    /// The stable, machine-readable code (the serde tag).
    pub fn code(&self) -> &'static str {
        match self {
            InvalidEvent::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            InvalidEvent::MissingField { .. } => "missing_field",
            InvalidEvent::UnexpectedField { .. } => "unexpected_field",
            InvalidEvent::OutOfRange { .. } => "out_of_range",
            InvalidEvent::WrongDocumentKind { .. } => "wrong_document_kind",
            InvalidEvent::SameState { .. } => "same_state",
            InvalidEvent::SameLocation { .. } => "same_location",
            InvalidEvent::ListTooLong { .. } => "list_too_long",
            InvalidEvent::BadName => "bad_name",
            InvalidEvent::BadCurrency => "bad_currency",
            InvalidEvent::UnknownLocation { .. } => "unknown_location",
            InvalidEvent::NotEnoughInState { .. } => "not_enough_in_state",
            InvalidEvent::UnknownDocument { .. } => "unknown_document",
            InvalidEvent::TransferRouteMismatch { .. } => "transfer_route_mismatch",
            InvalidEvent::PositionOutOfRange { .. } => "position_out_of_range",
        }
    }

    /// The envelope or payload field the problem is about, for HTTP error bodies.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            InvalidEvent::UnsupportedSchemaVersion { .. } => Some("schema_version"),
            InvalidEvent::MissingField { field, .. }
            | InvalidEvent::UnexpectedField { field, .. }
            | InvalidEvent::OutOfRange { field, .. }
            | InvalidEvent::ListTooLong { field, .. }
            | InvalidEvent::PositionOutOfRange { field, .. } => Some(field),
            InvalidEvent::WrongDocumentKind { .. } => Some("document.kind"),
            InvalidEvent::SameState { .. } => Some("payload.to"),
            InvalidEvent::SameLocation { .. } => Some("payload.to_location"),
            InvalidEvent::BadName => Some("payload.name"),
            InvalidEvent::BadCurrency => Some("payload.price.currency"),
            InvalidEvent::UnknownLocation { .. } => Some("location"),
            InvalidEvent::NotEnoughInState { .. } => Some("payload.quantity"),
            InvalidEvent::UnknownDocument { .. } | InvalidEvent::TransferRouteMismatch { .. } => {
                Some("document.id")
            }
        }
    }
}

pub(crate) fn state_name(state: StockState) -> &'static str {
    match state {
        StockState::Sellable => "sellable",
        StockState::Damaged => "damaged",
        StockState::QualityControl => "quality_control",
    }
}

fn document_kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Order => "order",
        DocumentKind::PurchaseOrder => "purchase_order",
        DocumentKind::Transfer => "transfer",
        DocumentKind::TillReceipt => "till_receipt",
        DocumentKind::Return => "return",
        DocumentKind::StockCount => "stock_count",
        DocumentKind::Adjustment => "adjustment",
        DocumentKind::Other => "other",
    }
}

/// A quantity carried by an event: 1..=QUANTITY_MAX.
fn positive(field: &'static str, value: i64) -> Result<(), InvalidEvent> {
    in_range(field, value, 1, QUANTITY_MAX)
}

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), InvalidEvent> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(InvalidEvent::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

fn short_list<T>(field: &'static str, list: &[T]) -> Result<(), InvalidEvent> {
    if list.len() > CONFIG_LIST_LEN_MAX {
        Err(InvalidEvent::ListTooLong {
            field,
            len: list.len(),
            max: CONFIG_LIST_LEN_MAX,
        })
    } else {
        Ok(())
    }
}

/// Largest unit price, in minor units (10^12: ten billion euros).
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;

fn check_price(price: Option<&Price>) -> Result<(), InvalidEvent> {
    let Some(price) = price else {
        return Ok(());
    };
    in_range(
        "payload.price.unit_minor",
        price.unit_minor,
        0,
        PRICE_MINOR_MAX,
    )?;
    let currency_ok =
        price.currency.len() == 3 && price.currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency_ok {
        return Err(InvalidEvent::BadCurrency);
    }
    Ok(())
}

/// The SKU and location of an event that is about one (SKU, location).
pub(crate) struct Site<'a> {
    pub sku: &'a Sku,
    pub location: &'a LocationId,
}

impl Event {
    fn require_sku(&self) -> Result<&Sku, InvalidEvent> {
        self.sku.as_ref().ok_or(InvalidEvent::MissingField {
            kind: self.payload.kind().name(),
            field: "sku",
        })
    }

    fn require_location(&self) -> Result<&LocationId, InvalidEvent> {
        self.location.as_ref().ok_or(InvalidEvent::MissingField {
            kind: self.payload.kind().name(),
            field: "location",
        })
    }

    pub(crate) fn require_site(&self) -> Result<Site<'_>, InvalidEvent> {
        Ok(Site {
            sku: self.require_sku()?,
            location: self.require_location()?,
        })
    }

    fn forbid_sku(&self) -> Result<(), InvalidEvent> {
        if self.sku.is_some() {
            return Err(InvalidEvent::UnexpectedField {
                kind: self.payload.kind().name(),
                field: "sku",
            });
        }
        Ok(())
    }

    fn require_document(&self, expected: DocumentKind) -> Result<(), InvalidEvent> {
        let kind = self.payload.kind().name();
        match &self.document {
            None => Err(InvalidEvent::MissingField {
                kind,
                field: "document",
            }),
            Some(doc) if doc.kind != expected => Err(InvalidEvent::WrongDocumentKind {
                kind,
                expected: document_kind_name(expected),
                found: document_kind_name(doc.kind),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Everything that can be checked without the ledger. Hold requests are an
    /// exception by design: a hold request with a bad quantity or TTL is still a
    /// request with an id, so it is answered with a recorded rejection by the fold,
    /// not dead-lettered; only its structural fields are checked here.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return Err(InvalidEvent::UnsupportedSchemaVersion {
                found: self.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let kind = self.payload.kind();
        match &self.payload {
            Payload::StockReceived { quantity, .. } => {
                self.require_site()?;
                positive("payload.quantity", *quantity)
            }
            Payload::TillSale { quantity, price }
            | Payload::Returned {
                quantity, price, ..
            } => {
                self.require_site()?;
                check_price(price.as_ref())?;
                positive("payload.quantity", *quantity)
            }
            Payload::StockAdjusted { delta, .. } => {
                self.require_site()?;
                if self.reason.is_none() {
                    return Err(InvalidEvent::MissingField {
                        kind: kind.name(),
                        field: "reason",
                    });
                }
                if *delta == 0 {
                    return Err(InvalidEvent::OutOfRange {
                        field: "payload.delta",
                        value: 0,
                        min: -QUANTITY_MAX,
                        max: QUANTITY_MAX,
                    });
                }
                in_range("payload.delta", *delta, -QUANTITY_MAX, QUANTITY_MAX)
            }
            Payload::StockCounted { quantity } => {
                self.require_site()?;
                in_range("payload.quantity", *quantity, 0, QUANTITY_MAX)
            }
            Payload::StockStateChanged { quantity, from, to } => {
                self.require_site()?;
                if from == to {
                    return Err(InvalidEvent::SameState {
                        state: state_name(*from),
                    });
                }
                positive("payload.quantity", *quantity)
            }
            Payload::TransferShipped {
                to_location: other,
                quantity,
            }
            | Payload::TransferReceived {
                from_location: other,
                quantity,
            } => {
                let site = self.require_site()?;
                self.require_document(DocumentKind::Transfer)?;
                if site.location == other {
                    return Err(InvalidEvent::SameLocation {
                        location: other.to_string(),
                    });
                }
                positive("payload.quantity", *quantity)
            }
            Payload::IncomingExpected { quantity, .. } => {
                self.require_site()?;
                self.require_document(DocumentKind::PurchaseOrder)?;
                positive("payload.quantity", *quantity)
            }
            Payload::IncomingCancelled {} => {
                self.require_site()?;
                self.require_document(DocumentKind::PurchaseOrder)
            }
            Payload::HoldRequested { group, price, .. } => {
                self.require_sku()?;
                check_price(price.as_ref())?;
                match (&self.location, group) {
                    (None, None) => Err(InvalidEvent::MissingField {
                        kind: kind.name(),
                        field: "location",
                    }),
                    (Some(_), Some(_)) => Err(InvalidEvent::UnexpectedField {
                        kind: kind.name(),
                        field: "payload.group",
                    }),
                    _ => Ok(()),
                }
            }
            Payload::HoldConfirmed { .. }
            | Payload::HoldReleased { .. }
            | Payload::HoldReadyForPickup { .. }
            | Payload::HoldCollected { .. }
            | Payload::HoldNoShow { .. }
            | Payload::HoldShipped { .. }
            | Payload::WaitlistLeft { .. } => self.require_sku().map(|_| ()),
            Payload::WaitlistJoined {
                quantity, group, ..
            } => {
                self.require_sku()?;
                match (&self.location, group) {
                    (None, None) => {
                        return Err(InvalidEvent::MissingField {
                            kind: kind.name(),
                            field: "location",
                        });
                    }
                    (Some(_), Some(_)) => {
                        return Err(InvalidEvent::UnexpectedField {
                            kind: kind.name(),
                            field: "payload.group",
                        });
                    }
                    _ => {}
                }
                positive("payload.quantity", *quantity)
            }
            Payload::LocationDefined { name, groups, .. } => {
                self.require_location()?;
                self.forbid_sku()?;
                short_list("payload.groups", groups)?;
                let name_ok = (1..=200).contains(&name.chars().count())
                    && !name.chars().any(char::is_control);
                if !name_ok {
                    return Err(InvalidEvent::BadName);
                }
                Ok(())
            }
            Payload::ChannelDefined {
                locations,
                groups,
                buffer,
                ..
            } => {
                self.forbid_sku()?;
                short_list("payload.locations", locations)?;
                short_list("payload.groups", groups)?;
                in_range("payload.buffer", *buffer, 0, QUANTITY_MAX)
            }
            Payload::SafetyStockSet { quantity } | Payload::AllocationSet { quantity, .. } => {
                self.require_site()?;
                in_range("payload.quantity", *quantity, 0, QUANTITY_MAX)
            }
            Payload::Tick {} => Ok(()),
        }
    }
}
