//! Golden bytes: the binary encoding of one event of every kind is pinned, so an
//! accidental format change (a reordered field, a renamed variant, a changed
//! integer encoding, a dependency upgrade) fails here instead of in production,
//! where an old projector would misread a new producer's records.
//!
//! After an intentional format change: bump `EVENT_FORMAT_VERSION` (or
//! `SCHEMA_VERSION`), then `STOCKLINE_BLESS=1 cargo test -p stockline-wire --test golden`.

use std::fmt::Write as _;

use chrono::{TimeZone, Utc};
use stockline_domain::{
    ChannelId, CustomerRef, DocumentId, DocumentKind, DocumentRef, Event, GroupId, HoldId,
    HoldKind, LocationId, LocationKind, OrderId, Payload, PayloadKind, Price, ReasonCode,
    ReceiptKind, ReturnDisposition, SCHEMA_VERSION, Sku, StockState,
};
use stockline_wire::codec::{DecodeError, EVENT_FORMAT_VERSION, decode_event, encode_event};
use uuid::Uuid;

const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events.golden");

fn loc(id: &str) -> LocationId {
    LocationId::new(id).expect("valid location id")
}

fn doc(kind: DocumentKind, id: &str) -> Option<DocumentRef> {
    Some(DocumentRef {
        kind,
        id: DocumentId::new(id).expect("valid document id"),
    })
}

/// One fixed, fully populated event of `kind`.
fn sample(kind: PayloadKind) -> Event {
    let hold = || HoldId::new("hold-7").expect("valid hold id");
    let mut event = Event {
        event_id: Uuid::from_u128(0x0193_5a1e_7c00_7000_8000_0000_0000_0001 + kind as u128),
        schema_version: SCHEMA_VERSION,
        occurred_at: Utc
            .with_ymd_and_hms(2026, 11, 23, 16, 30, 5)
            .single()
            .expect("valid date"),
        channel: ChannelId::new("web").expect("valid channel"),
        location: Some(loc("store-12")),
        sku: Some(Sku::new("SOFA-GREY-3P").expect("valid sku")),
        document: None,
        reason: None,
        payload: Payload::Tick {},
    };
    event.payload = match kind {
        PayloadKind::StockReceived => {
            event.document = doc(DocumentKind::PurchaseOrder, "PO-1001");
            Payload::StockReceived {
                quantity: 12,
                kind: ReceiptKind::PurchaseOrder,
            }
        }
        PayloadKind::StockAdjusted => {
            event.reason = Some(ReasonCode::Damage);
            event.document = doc(DocumentKind::Adjustment, "ADJ-9");
            Payload::StockAdjusted {
                delta: -2,
                state: StockState::Damaged,
            }
        }
        PayloadKind::StockCounted => {
            event.document = doc(DocumentKind::StockCount, "COUNT-2026-11");
            Payload::StockCounted { quantity: 40 }
        }
        PayloadKind::StockStateChanged => {
            event.reason = Some(ReasonCode::QualityControl);
            Payload::StockStateChanged {
                quantity: 3,
                from: StockState::Sellable,
                to: StockState::QualityControl,
            }
        }
        PayloadKind::TransferShipped => {
            event.document = doc(DocumentKind::Transfer, "TR-55");
            Payload::TransferShipped {
                to_location: loc("store-3"),
                quantity: 5,
            }
        }
        PayloadKind::TransferReceived => {
            event.document = doc(DocumentKind::Transfer, "TR-55");
            Payload::TransferReceived {
                from_location: loc("warehouse-1"),
                quantity: 5,
            }
        }
        PayloadKind::IncomingExpected => {
            event.document = doc(DocumentKind::PurchaseOrder, "PO-1002");
            Payload::IncomingExpected {
                quantity: 100,
                expected_at: Utc
                    .with_ymd_and_hms(2026, 12, 1, 8, 0, 0)
                    .single()
                    .expect("valid date"),
            }
        }
        PayloadKind::IncomingCancelled => {
            event.document = doc(DocumentKind::PurchaseOrder, "PO-1002");
            Payload::IncomingCancelled {}
        }
        PayloadKind::TillSale => {
            event.channel = ChannelId::new("pos").expect("valid channel");
            event.document = doc(DocumentKind::TillReceipt, "R-12-000042");
            Payload::TillSale {
                quantity: 1,
                price: Some(Price {
                    unit_minor: 89_900,
                    currency: "EUR".to_owned(),
                }),
            }
        }
        PayloadKind::Returned => {
            event.channel = ChannelId::new("pos").expect("valid channel");
            event.reason = Some(ReasonCode::CustomerReturn);
            event.document = doc(DocumentKind::Return, "RET-8");
            Payload::Returned {
                quantity: 1,
                disposition: ReturnDisposition::Restock,
                sold_by_channel: Some(ChannelId::new("web").expect("valid channel")),
                original_order: Some(OrderId::new("#1001").expect("valid order id")),
                price: None,
            }
        }
        PayloadKind::HoldRequested => {
            event.document = doc(DocumentKind::Order, "#1001");
            event.location = None;
            Payload::HoldRequested {
                hold_id: hold(),
                order_id: OrderId::new("#1001").expect("valid order id"),
                order_line: 1,
                customer_ref: CustomerRef::new("jane@example.com").expect("valid customer"),
                quantity: 1,
                ttl_seconds: 7_200,
                kind: HoldKind::ClickAndCollect,
                group: Some(GroupId::new("lyon").expect("valid group")),
                price: Some(Price {
                    unit_minor: 89_900,
                    currency: "EUR".to_owned(),
                }),
            }
        }
        PayloadKind::HoldConfirmed => Payload::HoldConfirmed { hold_id: hold() },
        PayloadKind::HoldReleased => Payload::HoldReleased { hold_id: hold() },
        PayloadKind::HoldReadyForPickup => Payload::HoldReadyForPickup { hold_id: hold() },
        PayloadKind::HoldCollected => Payload::HoldCollected { hold_id: hold() },
        PayloadKind::HoldNoShow => Payload::HoldNoShow { hold_id: hold() },
        PayloadKind::HoldShipped => Payload::HoldShipped { hold_id: hold() },
        PayloadKind::WaitlistJoined => Payload::WaitlistJoined {
            customer_ref: CustomerRef::new("jane@example.com").expect("valid customer"),
            quantity: 1,
            group: None,
        },
        PayloadKind::WaitlistLeft => Payload::WaitlistLeft {
            customer_ref: CustomerRef::new("jane@example.com").expect("valid customer"),
        },
        PayloadKind::LocationDefined => {
            event.sku = None;
            event.channel = ChannelId::new("admin").expect("valid channel");
            Payload::LocationDefined {
                name: "Lyon Part-Dieu".to_owned(),
                kind: LocationKind::Store,
                groups: vec![GroupId::new("lyon").expect("valid group")],
                active: true,
            }
        }
        PayloadKind::ChannelDefined => {
            event.sku = None;
            event.location = None;
            event.channel = ChannelId::new("admin").expect("valid channel");
            Payload::ChannelDefined {
                channel: ChannelId::new("marketplace").expect("valid channel"),
                locations: vec![loc("warehouse-1")],
                groups: vec![GroupId::new("lyon").expect("valid group")],
                buffer: 2,
            }
        }
        PayloadKind::SafetyStockSet => Payload::SafetyStockSet { quantity: 1 },
        PayloadKind::AllocationSet => Payload::AllocationSet {
            channel: ChannelId::new("web").expect("valid channel"),
            quantity: 4,
        },
        PayloadKind::Tick => {
            event.sku = None;
            event.location = None;
            event.channel = ChannelId::new("system").expect("valid channel");
            Payload::Tick {}
        }
    };
    event
        .validate()
        .unwrap_or_else(|e| panic!("sample {kind:?} must be valid: {e}"));
    event
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn render_all() -> String {
    let mut text = String::from(
        "# Golden bytes of one event of every kind: `kind hex`.\n\
         # Regenerate only after an intentional, versioned format change (see golden.rs).\n",
    );
    for kind in PayloadKind::ALL {
        let bytes = encode_event(&sample(kind)).expect("samples encode");
        let _ = writeln!(text, "{} {}", kind.name(), hex(&bytes));
    }
    text
}

#[test]
fn every_event_kind_encodes_to_its_golden_bytes() {
    let rendered = render_all();
    if std::env::var_os("STOCKLINE_BLESS").is_some() {
        std::fs::write(GOLDEN_PATH, &rendered).expect("write golden file");
    }
    let golden = std::fs::read_to_string(GOLDEN_PATH)
        .expect("tests/golden/events.golden exists (bless it once with STOCKLINE_BLESS=1)");
    for (want, got) in golden.lines().zip(rendered.lines()) {
        assert_eq!(
            want, got,
            "the binary encoding changed; if intended, bump the format version and re-bless"
        );
    }
    assert_eq!(golden.lines().count(), rendered.lines().count());
}

#[test]
fn golden_bytes_decode_back_to_the_samples() {
    let golden = std::fs::read_to_string(GOLDEN_PATH).expect("golden file exists");
    let mut seen = 0;
    for line in golden.lines().filter(|l| !l.starts_with('#')) {
        let (name, hex_text) = line.split_once(' ').expect("`kind hex` lines");
        let kind = PayloadKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .expect("known kind");
        let bytes: Vec<u8> = (0..hex_text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(
            decode_event(&bytes).expect("golden bytes decode"),
            sample(kind)
        );
        seen += 1;
    }
    assert_eq!(seen, PayloadKind::ALL.len(), "one golden line per kind");
}

#[test]
fn a_newer_format_version_is_refused_with_a_clear_error() {
    let mut bytes = encode_event(&sample(PayloadKind::TillSale)).expect("encodes");
    bytes[1] = EVENT_FORMAT_VERSION + 1;
    let err = decode_event(&bytes).expect_err("newer version refused");
    assert_eq!(
        err,
        DecodeError::UnsupportedFormatVersion {
            what: "event",
            found: EVENT_FORMAT_VERSION + 1,
            supported: EVENT_FORMAT_VERSION,
        }
    );
    assert!(err.to_string().contains("upgrade stockline"));
}

#[test]
fn json_and_binary_encode_the_same_values() {
    for kind in PayloadKind::ALL {
        let event = sample(kind);
        let json = stockline_wire::json::event_to_json(&event);
        let from_json =
            stockline_wire::json::event_from_json(json.as_bytes()).expect("own JSON parses");
        assert_eq!(from_json, event, "{json}");
        let bytes = encode_event(&from_json).expect("encodes");
        assert_eq!(decode_event(&bytes).expect("decodes"), event);
    }
}
