//! Shopify webhook translation, topic by topic and mapping branch by mapping
//! branch, checked by folding the events into a ledger.

mod common;

use std::collections::BTreeMap;

use common::{Books, bytes, channel, fixture, kinds, location, sku, with};
use serde_json::json;
use stockline_adapters::platform_id::PlatformId;
use stockline_adapters::shopify::{CustomerRefSource, Shopify, ShopifySettings, Topic};
use stockline_adapters::{AdapterError, LedgerLookup, NoLookup, SkipCode, Translation};
use stockline_domain::{
    DocumentKind, GroupId, HoldKind, HoldStatus, Payload, Price, ReturnDisposition, Verdict,
};

fn settings() -> ShopifySettings {
    ShopifySettings {
        client_secret: "shpss_test".into(),
        locations: BTreeMap::from([
            (PlatformId(72_738_423_006), location("wh-paris")),
            (PlatformId(72_738_455_774), location("store-lyon")),
            (PlatformId(9_007_199_254_740_995), location("store-paris")),
        ]),
        variants: BTreeMap::from([
            (PlatformId(39_072_856), sku("SOFA-GREY")),
            (PlatformId(9_007_199_254_741_000), sku("LAMP-BRASS")),
        ]),
        inventory_items: BTreeMap::from([(PlatformId(808_950_810), sku("SOFA-GREY"))]),
        pickup_lines: BTreeMap::from([("Lyon Part-Dieu".to_owned(), location("store-lyon"))]),
        ship_from_location: Some(location("wh-paris")),
        ..ShopifySettings::default()
    }
}

fn translate(settings: &ShopifySettings, topic: Topic, body: &[u8], books: &Books) -> Translation {
    Shopify::new(settings)
        .translate(topic, body, &LedgerLookup(&books.ledger))
        .expect("translates")
}

fn skipped(t: &Translation) -> Vec<(String, SkipCode)> {
    t.skipped.iter().map(|s| (s.item.clone(), s.code)).collect()
}

fn k(kind: &str, sku: &str) -> (String, String) {
    (kind.to_owned(), sku.to_owned())
}

#[test]
fn topics_parse_and_unknown_ones_are_none() {
    for topic in Topic::ALL {
        assert_eq!(Topic::parse(topic.name()), Some(topic));
    }
    assert_eq!(Topic::parse("ORDERS/CREATE"), Some(Topic::OrdersCreate));
    assert_eq!(Topic::parse("products/update"), None);
    assert_eq!(Topic::parse("orders/updated"), None);
}

#[test]
fn pickup_order_holds_each_line_at_the_pickup_store_and_confirms_when_paid() {
    let settings = settings();
    let mut books = Books::new();
    let body = fixture("shopify/orders_create_pickup.json");
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(
        kinds(&t.events),
        vec![
            k("hold_requested", "SOFA-GREY"),
            k("hold_confirmed", "SOFA-GREY"),
            k("hold_requested", "MUG-BLUE"),
            k("hold_confirmed", "MUG-BLUE"),
        ]
    );
    assert_eq!(
        skipped(&t),
        vec![("line_item 9007199254741005".into(), SkipCode::NotStock)]
    );
    let request = &t.events[0];
    assert_eq!(request.channel, channel("web"));
    assert_eq!(request.location, Some(location("store-lyon")));
    assert_eq!(
        request
            .document
            .as_ref()
            .map(|d| (d.kind, d.id.to_string())),
        Some((DocumentKind::Order, "shopify-9007199254740993".into()))
    );
    let Payload::HoldRequested {
        hold_id,
        order_id,
        order_line,
        customer_ref,
        quantity,
        ttl_seconds,
        kind,
        group,
        price,
    } = &request.payload
    else {
        panic!("a hold request: {request:?}");
    };
    // 2^53 + 1 and 2^53 + 9: ids beyond f64 precision come through exactly.
    assert_eq!(
        hold_id.as_str(),
        "shopify-9007199254740993-9007199254741001"
    );
    assert_eq!(order_id.as_str(), "shopify-9007199254740993");
    assert_eq!(*order_line, 1);
    assert_eq!(customer_ref.as_str(), "#1001");
    assert_eq!(*quantity, 1);
    assert_eq!(*ttl_seconds, settings.pickup_hold_ttl_seconds);
    assert_eq!(*kind, HoldKind::ClickAndCollect);
    assert_eq!(*group, None);
    assert_eq!(
        price,
        &Some(Price {
            unit_minor: 129_900,
            currency: "EUR".into()
        })
    );
    // The mug's variant is not mapped: its `sku` field is the SKU.
    assert_eq!(t.events[2].sku, Some(sku("MUG-BLUE")));

    books.apply_ok(&t.events);
    let sofa = books.q("SOFA-GREY", "store-lyon");
    assert_eq!((sofa.committed, sofa.reserved), (1, 0));
    assert_eq!(books.q("MUG-BLUE", "store-lyon").committed, 2);
}

#[test]
fn translations_are_deterministic_and_redeliveries_change_nothing() {
    let settings = settings();
    let mut books = Books::new();
    let body = fixture("shopify/orders_create_pickup.json");
    let first = translate(&settings, Topic::OrdersCreate, &body, &books);
    let second = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(bytes(&first.events), bytes(&second.events));
    let mut ids: Vec<_> = first.events.iter().map(|e| e.event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), first.events.len(), "event ids are distinct");
    books.apply_ok(&first.events);
    let before = books.q("SOFA-GREY", "store-lyon");
    // Redelivered: every event is a duplicate, nothing moves.
    let again = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert!(
        books
            .apply(&again.events)
            .iter()
            .all(|v| *v == Verdict::Duplicate)
    );
    assert_eq!(books.q("SOFA-GREY", "store-lyon"), before);
}

#[test]
fn unpaid_orders_are_held_unconfirmed_and_orders_paid_confirms_them() {
    let settings = settings();
    let mut books = Books::new();
    let pending = with(
        &fixture("shopify/orders_create_shipped.json"),
        &["financial_status"],
        json!("pending"),
    );
    let created = translate(&settings, Topic::OrdersCreate, &pending, &books);
    assert_eq!(
        kinds(&created.events),
        vec![k("hold_requested", "LAMP-BRASS")]
    );
    let Payload::HoldRequested {
        ttl_seconds, kind, ..
    } = &created.events[0].payload
    else {
        panic!("hold request");
    };
    assert_eq!(*ttl_seconds, settings.unpaid_hold_ttl_seconds);
    assert_eq!(*kind, HoldKind::Checkout);
    books.apply_ok(&created.events);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").reserved, 2);

    let paid = fixture("shopify/orders_create_shipped.json");
    let confirmed = translate(&settings, Topic::OrdersPaid, &paid, &books);
    assert_eq!(
        kinds(&confirmed.events),
        vec![
            k("hold_requested", "LAMP-BRASS"),
            k("hold_confirmed", "LAMP-BRASS")
        ]
    );
    // orders/paid requests the same hold with the same event id (a duplicate), so
    // it works whichever of orders/create and orders/paid arrives first.
    assert_eq!(confirmed.events[0].event_id, created.events[0].event_id);
    assert_eq!(
        books.apply(&confirmed.events),
        vec![Verdict::Duplicate, Verdict::Applied]
    );
    let lamp = books.q("LAMP-BRASS", "wh-paris");
    assert_eq!((lamp.reserved, lamp.committed), (0, 2));
}

#[test]
fn shipped_orders_hold_at_the_fulfilment_location_or_group() {
    let mut settings = settings();
    let body = fixture("shopify/orders_create_shipped.json");
    let books = Books::new();
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(t.events[0].location, Some(location("wh-paris")));

    settings.ship_from_location = None;
    settings.ship_from_group = Some(GroupId::new("warehouses").expect("group"));
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    let Payload::HoldRequested { group, .. } = &t.events[0].payload else {
        panic!("hold request");
    };
    assert_eq!(t.events[0].location, None);
    assert_eq!(
        group.as_ref().map(ToString::to_string),
        Some("warehouses".into())
    );
    let mut books = Books::new();
    books.apply_ok(&t.events);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").committed, 2);

    settings.ship_from_group = None;
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert!(t.events.is_empty());
    assert_eq!(
        skipped(&t),
        vec![(
            "line_item 14210985558174".into(),
            SkipCode::NoFulfilmentLocation
        )]
    );
}

#[test]
fn pickup_detection_needs_the_store_in_the_mapping() {
    let mut settings = settings();
    let books = Books::new();
    let body = fixture("shopify/orders_create_pickup.json");
    // Matched by title when the code differs.
    let by_title = with(
        &body,
        &["shipping_lines"],
        json!([{"code": "pickup-7", "title": "Lyon Part-Dieu", "source": "shopify"}]),
    );
    let t = translate(&settings, Topic::OrdersCreate, &by_title, &books);
    assert_eq!(t.events[0].location, Some(location("store-lyon")));

    // A pickup whose store is not mapped is not shipped from the warehouse.
    settings.pickup_lines.clear();
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert!(t.events.is_empty());
    assert!(
        t.skipped
            .iter()
            .filter(|s| s.item != "line_item 9007199254741005")
            .all(|s| s.code == SkipCode::UnmappedPickup),
        "{:?}",
        t.skipped
    );

    // Without delivery_category and without a mapped code: a shipped order.
    let plain = with(
        &body,
        &["shipping_lines"],
        json!([{"code": "Lyon Part-Dieu", "title": "Lyon Part-Dieu", "source": "shopify", "delivery_category": null}]),
    );
    let t = translate(&settings, Topic::OrdersCreate, &plain, &books);
    assert_eq!(t.events[0].location, Some(location("wh-paris")));
    let Payload::HoldRequested { kind, .. } = &t.events[0].payload else {
        panic!("hold request");
    };
    assert_eq!(*kind, HoldKind::Checkout);
}

#[test]
fn pos_orders_are_till_sales_at_the_order_location() {
    let mut settings = settings();
    let mut books = Books::new();
    let body = fixture("shopify/orders_create_pos.json");
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(kinds(&t.events), vec![k("till_sale", "MUG-BLUE")]);
    let sale = &t.events[0];
    assert_eq!(sale.channel, channel("pos"));
    assert_eq!(sale.location, Some(location("store-lyon")));
    assert_eq!(
        sale.document.as_ref().map(|d| d.kind),
        Some(DocumentKind::TillReceipt)
    );
    assert_eq!(
        sale.payload,
        Payload::TillSale {
            quantity: 3,
            price: Some(Price {
                unit_minor: 1_450,
                currency: "EUR".into()
            })
        }
    );
    books.apply_ok(&t.events);
    assert_eq!(books.q("MUG-BLUE", "store-lyon").on_hand, 7);
    // orders/paid of a POS order is the same sale: a duplicate.
    let paid = translate(&settings, Topic::OrdersPaid, &body, &books);
    assert_eq!(books.apply(&paid.events), vec![Verdict::Duplicate]);

    settings.locations.remove(&PlatformId(72_738_455_774));
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert!(t.events.is_empty());
    assert_eq!(
        skipped(&t),
        vec![(
            "line_item 14210985558200".into(),
            SkipCode::UnmappedLocation
        )]
    );
}

#[test]
fn sku_and_channel_mapping_branches() {
    let mut settings = settings();
    settings
        .skus
        .insert("SHOP-LAMP".into(), sku("LAMP-BRASS-OLD"));
    settings.channels.insert("iphone".into(), channel("app"));
    settings.default_channel = channel("web");
    settings.customer_ref = CustomerRefSource::CustomerId;
    let books = Books::new();
    let body = fixture("shopify/orders_create_shipped.json");

    // The variant mapping wins over the sku field.
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(t.events[0].sku, Some(sku("LAMP-BRASS")));
    let Payload::HoldRequested { customer_ref, .. } = &t.events[0].payload else {
        panic!("hold request");
    };
    assert_eq!(customer_ref.as_str(), "shopify-customer-7055380971690");

    // Unmapped variant: the sku field, renamed through `skus`.
    settings.variants.clear();
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    assert_eq!(t.events[0].sku, Some(sku("LAMP-BRASS-OLD")));

    // No variant mapping and a sku Stockline cannot take (a space): skipped.
    let spaced = with(
        &body,
        &["line_items"],
        json!([{"id": 1, "variant_id": 5, "sku": "LAMP BRASS", "quantity": 1, "price": "1.00"}]),
    );
    let t = translate(&settings, Topic::OrdersCreate, &spaced, &books);
    assert_eq!(
        skipped(&t),
        vec![("line_item 1".into(), SkipCode::UnmappedSku)]
    );
    let nothing = with(
        &body,
        &["line_items"],
        json!([{"id": 2, "variant_id": null, "sku": "", "quantity": 1}]),
    );
    let t = translate(&settings, Topic::OrdersCreate, &nothing, &books);
    assert_eq!(
        skipped(&t),
        vec![("line_item 2".into(), SkipCode::UnmappedSku)]
    );
    let zero = with(
        &body,
        &["line_items"],
        json!([{"id": 3, "sku": "MUG-BLUE", "quantity": 0}]),
    );
    let t = translate(&settings, Topic::OrdersCreate, &zero, &books);
    assert_eq!(
        skipped(&t),
        vec![("line_item 3".into(), SkipCode::BadValue)]
    );

    // Channels by source_name; unknown source names get the default channel.
    let app = with(&body, &["source_name"], json!("iphone"));
    assert_eq!(
        translate(&settings, Topic::OrdersCreate, &app, &books).events[0].channel,
        channel("app")
    );
    let unknown = with(&body, &["source_name"], json!("1234567"));
    assert_eq!(
        translate(&settings, Topic::OrdersCreate, &unknown, &books).events[0].channel,
        channel("web")
    );

    // Email as the customer reference; the order name when the source is absent.
    settings.customer_ref = CustomerRefSource::Email;
    let t = translate(&settings, Topic::OrdersCreate, &body, &books);
    let Payload::HoldRequested { customer_ref, .. } = &t.events[0].payload else {
        panic!("hold request");
    };
    assert_eq!(customer_ref.as_str(), "paul@example.com");
}

#[test]
fn cancelled_orders_release_open_holds_once() {
    let settings = settings();
    let mut books = Books::new();
    let created = translate(
        &settings,
        Topic::OrdersCreate,
        &fixture("shopify/orders_create_pickup.json"),
        &books,
    );
    books.apply_ok(&created.events);
    let body = fixture("shopify/orders_cancelled.json");
    let t = translate(&settings, Topic::OrdersCancelled, &body, &books);
    // One release per held line: the refund's `cancel` lines say the same thing
    // (same event ids) and are not repeated.
    assert_eq!(
        kinds(&t.events),
        vec![
            k("hold_released", "SOFA-GREY"),
            k("hold_released", "MUG-BLUE")
        ]
    );
    assert_eq!(t.events[0].channel, channel("web"));
    books.apply_ok(&t.events);
    let sofa = books.q("SOFA-GREY", "store-lyon");
    assert_eq!((sofa.on_hand, sofa.committed, sofa.reserved), (10, 0, 0));
    // Redelivered after the release: the holds are closed, nothing to do.
    let again = translate(&settings, Topic::OrdersCancelled, &body, &books);
    assert!(again.events.is_empty());
    assert!(again.skipped.iter().all(|s| s.code == SkipCode::HoldClosed));

    // A cancelled order Stockline never held (a till sale): nothing, said why.
    let t = translate(&settings, Topic::OrdersCancelled, &body, &Books::new());
    assert!(t.events.is_empty());
    assert!(t.skipped.iter().any(|s| s.code == SkipCode::NoHold));
}

/// Books with the shipped order placed (paid) and fulfilled.
fn shipped_books(settings: &ShopifySettings) -> Books {
    let mut books = Books::new();
    let created = translate(
        settings,
        Topic::OrdersCreate,
        &fixture("shopify/orders_create_shipped.json"),
        &books,
    );
    books.apply_ok(&created.events);
    let fulfilled = translate(
        settings,
        Topic::FulfillmentsCreate,
        &fixture("shopify/fulfillments_create.json"),
        &books,
    );
    books.apply_ok(&fulfilled.events);
    books
}

#[test]
fn fulfillments_ship_or_collect_the_line_holds() {
    let settings = settings();
    let mut books = Books::new();
    let body = fixture("shopify/fulfillments_create.json");
    // Before the order: nothing is held, nothing happens (and no event id is spent).
    let early = translate(&settings, Topic::FulfillmentsCreate, &body, &books);
    assert!(early.events.is_empty());
    assert_eq!(
        skipped(&early),
        vec![("line_item 14210985558174".into(), SkipCode::NoHold)]
    );

    let pending = with(
        &fixture("shopify/orders_create_shipped.json"),
        &["financial_status"],
        json!("pending"),
    );
    let created = translate(&settings, Topic::OrdersCreate, &pending, &books);
    books.apply_ok(&created.events);
    let t = translate(&settings, Topic::FulfillmentsCreate, &body, &books);
    // An unpaid hold is confirmed before it ships.
    assert_eq!(
        kinds(&t.events),
        vec![
            k("hold_confirmed", "LAMP-BRASS"),
            k("hold_shipped", "LAMP-BRASS")
        ]
    );
    assert_eq!(t.events[1].location, Some(location("wh-paris")));
    books.apply_ok(&t.events);
    let lamp = books.q("LAMP-BRASS", "wh-paris");
    assert_eq!((lamp.on_hand, lamp.committed, lamp.reserved), (8, 0, 0));
    let hold = books
        .ledger
        .hold(&stockline_domain::HoldId::new("shopify-5784467603614-14210985558174").expect("id"))
        .expect("hold");
    assert_eq!(hold.status, HoldStatus::Shipped);

    // Not a success: nothing.
    let open = with(&body, &["status"], json!("open"));
    let t = translate(&settings, Topic::FulfillmentsCreate, &open, &books);
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::NotFulfilled);

    // A pickup hold is collected.
    let created = translate(
        &settings,
        Topic::OrdersCreate,
        &fixture("shopify/orders_create_pickup.json"),
        &books,
    );
    books.apply_ok(&created.events);
    let pickup = with(&body, &["order_id"], json!(9_007_199_254_740_993_u64));
    let pickup = with(&pickup, &["location_id"], json!(72_738_455_774_u64));
    let pickup = with(
        &pickup,
        &["line_items"],
        json!([{"id": 9_007_199_254_741_001_u64, "variant_id": 39_072_856, "sku": "SHOP-SOFA-G", "quantity": 1}]),
    );
    let t = translate(&settings, Topic::FulfillmentsCreate, &pickup, &books);
    assert_eq!(kinds(&t.events), vec![k("hold_collected", "SOFA-GREY")]);
    books.apply_ok(&t.events);
    assert_eq!(books.q("SOFA-GREY", "store-lyon").on_hand, 9);
}

#[test]
fn refunds_restock_returns_where_the_units_are_and_record_nothing_for_no_restock() {
    let settings = settings();
    let mut books = shipped_books(&settings);
    let body = fixture("shopify/refunds_create.json");
    let t = translate(&settings, Topic::RefundsCreate, &body, &books);
    assert_eq!(kinds(&t.events), vec![k("returned", "LAMP-BRASS")]);
    assert_eq!(
        skipped(&t),
        vec![("refund_line_item 104689601".into(), SkipCode::NoRestock)]
    );
    let ret = &t.events[0];
    // Refunded at a store's till: the return is the pos channel's; sold on the web.
    assert_eq!(ret.channel, channel("pos"));
    assert_eq!(ret.location, Some(location("store-paris")));
    assert_eq!(
        ret.payload,
        Payload::Returned {
            quantity: 1,
            disposition: ReturnDisposition::Restock,
            sold_by_channel: Some(channel("web")),
            original_order: Some(
                stockline_domain::OrderId::new("shopify-5784467603614").expect("id")
            ),
            price: None,
        }
    );
    books.apply_ok(&t.events);
    assert_eq!(books.q("LAMP-BRASS", "store-paris").on_hand, 11);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").on_hand, 8);
    // Redelivered: a duplicate.
    let again = translate(&settings, Topic::RefundsCreate, &body, &books);
    assert_eq!(books.apply(&again.events), vec![Verdict::Duplicate]);

    // Without a transaction source: the order's channel; unmapped location: skipped.
    let no_source = with(&body, &["transactions"], json!([]));
    let t = translate(&settings, Topic::RefundsCreate, &no_source, &books);
    assert_eq!(t.events[0].channel, channel("web"));
    let mut unmapped = settings.clone();
    unmapped
        .locations
        .remove(&PlatformId(9_007_199_254_740_995));
    let t = translate(&unmapped, Topic::RefundsCreate, &body, &books);
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::UnmappedLocation);
}

#[test]
fn refunds_of_lines_still_held_release_the_hold_instead() {
    let settings = settings();
    let mut books = Books::new();
    let created = translate(
        &settings,
        Topic::OrdersCreate,
        &fixture("shopify/orders_create_shipped.json"),
        &books,
    );
    books.apply_ok(&created.events);
    let body = fixture("shopify/refunds_create.json");
    // The whole line (2 units) refunded before it shipped: released, not returned.
    let whole = with(
        &body,
        &["refund_line_items"],
        json!([{
            "id": 1, "line_item_id": 14_210_985_558_174_u64, "location_id": 72_738_423_006_u64,
            "quantity": 2, "restock_type": "cancel",
            "line_item": {"id": 14_210_985_558_174_u64, "variant_id": 9_007_199_254_741_000_u64, "quantity": 2}
        }]),
    );
    let t = translate(&settings, Topic::RefundsCreate, &whole, &books);
    assert_eq!(kinds(&t.events), vec![k("hold_released", "LAMP-BRASS")]);
    // Part of it: holds are released whole, so nothing, and said why.
    let part = with(
        &whole,
        &["refund_line_items"],
        json!([{
            "id": 1, "line_item_id": 14_210_985_558_174_u64, "location_id": 72_738_423_006_u64,
            "quantity": 1, "restock_type": "return",
            "line_item": {"id": 14_210_985_558_174_u64, "variant_id": 9_007_199_254_741_000_u64, "quantity": 2}
        }]),
    );
    let p = translate(&settings, Topic::RefundsCreate, &part, &books);
    assert!(p.events.is_empty());
    assert_eq!(p.skipped[0].code, SkipCode::PartialCancel);
    books.apply_ok(&t.events);
    let lamp = books.q("LAMP-BRASS", "wh-paris");
    assert_eq!((lamp.on_hand, lamp.committed), (10, 0));
    // A `cancel` line Stockline holds nothing for: nothing to give back.
    let t = translate(&settings, Topic::RefundsCreate, &whole, &Books::new());
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::NoHold);
}

#[test]
fn inventory_levels_become_counts_of_units_on_hand() {
    let mut settings = settings();
    let mut books = Books::new();
    // 2 units of SOFA-GREY committed at wh-paris by a paid shipped order.
    let order = with(
        &fixture("shopify/orders_create_shipped.json"),
        &["line_items"],
        json!([{"id": 77, "variant_id": 39_072_856, "quantity": 2, "price": "1299.00"}]),
    );
    let created = translate(&settings, Topic::OrdersCreate, &order, &books);
    books.apply_ok(&created.events);
    let body = fixture("shopify/inventory_levels_update.json");
    let t = translate(&settings, Topic::InventoryLevelsUpdate, &body, &books);
    assert_eq!(kinds(&t.events), vec![k("stock_counted", "SOFA-GREY")]);
    // Shopify's available (6) excludes the 2 committed units: 8 are on hand.
    assert_eq!(t.events[0].payload, Payload::StockCounted { quantity: 8 });
    assert_eq!(t.events[0].location, Some(location("wh-paris")));
    assert_eq!(t.events[0].channel, channel("admin"));
    books.apply_ok(&t.events);
    let sofa = books.q("SOFA-GREY", "wh-paris");
    assert_eq!((sofa.on_hand, sofa.committed, sofa.available()), (8, 2, 6));
    // The same update again: the same event, a duplicate.
    let again = translate(&settings, Topic::InventoryLevelsUpdate, &body, &books);
    assert_eq!(again.events[0].event_id, t.events[0].event_id);

    // Oversold in Shopify (negative available): never below zero.
    let negative = with(&body, &["available"], json!(-5));
    let t = translate(
        &settings,
        Topic::InventoryLevelsUpdate,
        &negative,
        &Books::new(),
    );
    assert_eq!(t.events[0].payload, Payload::StockCounted { quantity: 0 });

    let untracked = with(&body, &["available"], json!(null));
    let t = translate(&settings, Topic::InventoryLevelsUpdate, &untracked, &books);
    assert_eq!(t.skipped[0].code, SkipCode::BadValue);
    let other_item = with(&body, &["inventory_item_id"], json!(1));
    let t = translate(&settings, Topic::InventoryLevelsUpdate, &other_item, &books);
    assert_eq!(t.skipped[0].code, SkipCode::UnmappedSku);
    let other_place = with(&body, &["location_id"], json!(2));
    let t = translate(
        &settings,
        Topic::InventoryLevelsUpdate,
        &other_place,
        &books,
    );
    assert_eq!(t.skipped[0].code, SkipCode::UnmappedLocation);
    settings.inventory_levels = false;
    let t = translate(&settings, Topic::InventoryLevelsUpdate, &body, &books);
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::Disabled);
}

#[test]
fn malformed_payloads_name_the_field() {
    let settings = settings();
    let shopify = Shopify::new(&settings);
    let body = fixture("shopify/orders_create_shipped.json");
    let float_id = with(&body, &["id"], json!(5.784_467_603_614e12));
    match shopify.translate(Topic::OrdersCreate, &float_id, &NoLookup) {
        Err(AdapterError::Malformed { path, .. }) => assert_eq!(path, "id"),
        other => panic!("{other:?}"),
    }
    let no_quantity = with(&body, &["line_items"], json!([{"id": 1}]));
    match shopify.translate(Topic::OrdersCreate, &no_quantity, &NoLookup) {
        Err(AdapterError::Malformed { path, .. }) => assert_eq!(path, "line_items[0]"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        shopify.translate(Topic::RefundsCreate, b"{not json", &NoLookup),
        Err(AdapterError::Malformed { .. })
    ));
    // Ids as strings (GraphQL-style) are accepted too.
    let string_id = with(&body, &["id"], json!("5784467603614"));
    let t = shopify
        .translate(Topic::OrdersCreate, &string_id, &NoLookup)
        .expect("string id");
    assert_eq!(
        t.events[0].payload.hold_id().map(ToString::to_string),
        Some("shopify-5784467603614-14210985558174".into())
    );
}

#[test]
fn settings_read_from_configuration_text_and_validate() {
    let text = r#"{
        "client_secret": "shpss_x",
        "locations": {"72738423006": "wh-paris", "9007199254740995": "store-paris"},
        "variants": {"39072856": "SOFA-GREY"},
        "pickup_lines": {"Lyon Part-Dieu": "store-lyon"},
        "ship_from_group": "warehouses"
    }"#;
    let settings: ShopifySettings = serde_json::from_str(text).expect("settings");
    assert_eq!(
        settings.locations.get(&PlatformId(9_007_199_254_740_995)),
        Some(&location("store-paris"))
    );
    assert_eq!(settings.default_channel, channel("web"));
    assert_eq!(settings.validate(), Ok(()));
    assert!(serde_json::from_str::<ShopifySettings>(r#"{"locations": {"abc": "x"}}"#).is_err());
    assert!(serde_json::from_str::<ShopifySettings>(r#"{"variants": {"1": "bad sku"}}"#).is_err());
    assert!(serde_json::from_str::<ShopifySettings>(r#"{"typo": 1}"#).is_err());
    assert!(ShopifySettings::default().validate().is_err(), "no secret");
    let both = ShopifySettings {
        ship_from_location: Some(location("wh-paris")),
        ..settings.clone()
    };
    assert!(both.validate().is_err());
    let zero_ttl = ShopifySettings {
        unpaid_hold_ttl_seconds: 0,
        ..settings
    };
    assert!(zero_ttl.validate().is_err());
}
