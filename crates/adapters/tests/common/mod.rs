//! Shared fixtures of the adapter tests: a ledger with locations, channels and
//! stock, folded with the real fold, so translations are checked by what they do.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use stockline_domain::{
    ChannelId, Event, GroupId, Ledger, LocationId, LocationKind, LogTime, Payload, ReceiptKind,
    SCHEMA_VERSION, Sku, Verdict, fold,
};
use uuid::Uuid;

pub fn fixture(path: &str) -> Vec<u8> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

pub fn sku(text: &str) -> Sku {
    Sku::new(text).expect("sku")
}

pub fn location(text: &str) -> LocationId {
    LocationId::new(text).expect("location")
}

pub fn channel(text: &str) -> ChannelId {
    ChannelId::new(text).expect("channel")
}

/// A ledger and the log time of its next record.
pub struct Books {
    pub ledger: Ledger,
    pub now: i64,
    counter: u128,
}

fn config_event(counter: u128, location: Option<&str>, payload: Payload) -> Event {
    Event {
        event_id: Uuid::from_u128(counter),
        schema_version: SCHEMA_VERSION,
        occurred_at: Utc.timestamp_opt(1_741_900_000, 0).single().expect("time"),
        channel: channel("admin"),
        location: location.map(self::location),
        sku: None,
        document: None,
        reason: None,
        payload,
    }
}

impl Books {
    /// Stores `store-lyon` and `store-paris` (group `stores`), warehouse `wh-paris`
    /// (group `warehouses`); channels `web`, `pos`, `app` selling from all of
    /// them; 10 units of SOFA-GREY, LAMP-BRASS and MUG-BLUE everywhere.
    pub fn new() -> Books {
        let mut books = Books {
            ledger: Ledger::new(),
            now: 1_741_942_800_000,
            counter: 1,
        };
        for (id, kind, group) in [
            ("store-lyon", LocationKind::Store, "stores"),
            ("store-paris", LocationKind::Store, "stores"),
            ("wh-paris", LocationKind::Warehouse, "warehouses"),
        ] {
            let event = config_event(
                books.next_id(),
                Some(id),
                Payload::LocationDefined {
                    name: id.to_owned(),
                    kind,
                    groups: vec![GroupId::new(group).expect("group")],
                    active: true,
                },
            );
            books.apply_one(&event);
        }
        for name in ["web", "pos", "app"] {
            let event = config_event(
                books.next_id(),
                None,
                Payload::ChannelDefined {
                    channel: channel(name),
                    locations: Vec::new(),
                    groups: vec![
                        GroupId::new("stores").expect("group"),
                        GroupId::new("warehouses").expect("group"),
                    ],
                    buffer: 0,
                },
            );
            books.apply_one(&event);
        }
        for sku_text in ["SOFA-GREY", "LAMP-BRASS", "MUG-BLUE"] {
            for place in ["store-lyon", "store-paris", "wh-paris"] {
                let mut event = config_event(
                    books.next_id(),
                    Some(place),
                    Payload::StockReceived {
                        quantity: 10,
                        kind: ReceiptKind::InitialLoad,
                    },
                );
                event.sku = Some(sku(sku_text));
                books.apply_one(&event);
            }
        }
        books
    }

    fn next_id(&mut self) -> u128 {
        self.counter += 1;
        self.counter
    }

    pub fn apply_one(&mut self, event: &Event) -> Verdict {
        self.now += 1_000;
        let outcome = fold(&mut self.ledger, event, LogTime::from_millis(self.now));
        self.ledger.take_dirty();
        outcome.verdict
    }

    /// Folds the events in order; every verdict.
    pub fn apply(&mut self, events: &[Event]) -> Vec<Verdict> {
        events.iter().map(|e| self.apply_one(e)).collect()
    }

    /// Folds the events and asserts each was applied.
    pub fn apply_ok(&mut self, events: &[Event]) {
        for (event, verdict) in events.iter().zip(self.apply(events)) {
            assert_eq!(verdict, Verdict::Applied, "{event:?}");
        }
    }

    pub fn q(&self, sku_text: &str, place: &str) -> stockline_domain::Quantities {
        self.ledger.quantities(&sku(sku_text), &location(place))
    }
}

/// The kinds of the events, in order, with their SKU: a compact expectation.
pub fn kinds(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.payload.kind().name().to_owned(),
                e.sku.as_ref().map(ToString::to_string).unwrap_or_default(),
            )
        })
        .collect()
}

/// The JSON bytes of the events: two translations are identical iff these are.
pub fn bytes(events: &[Event]) -> Vec<u8> {
    serde_json::to_vec(events).expect("events serialize")
}

/// Replaces a JSON value at a path of object keys.
pub fn with(body: &[u8], path: &[&str], value: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(body).expect("json fixture");
    let mut target = &mut json;
    for key in &path[..path.len() - 1] {
        target = target.get_mut(*key).expect("path exists");
    }
    target[path[path.len() - 1]] = value;
    serde_json::to_vec(&json).expect("json")
}
