//! WooCommerce order webhooks: each status, each mapping branch, folded into a
//! ledger.

mod common;

use std::collections::BTreeMap;

use common::{Books, bytes, channel, fixture, kinds, location, sku, with};
use serde_json::json;
use stockline_adapters::platform_id::PlatformId;
use stockline_adapters::woocommerce::{Topic, WooCommerce, WooCustomerRef, WooSettings, is_ping};
use stockline_adapters::{LedgerLookup, SkipCode, Translation};
use stockline_domain::{HoldKind, Payload, Price, ReturnDisposition, Verdict};

fn settings() -> WooSettings {
    WooSettings {
        secret: "wc_secret".into(),
        products: BTreeMap::from([
            (PlatformId(95), sku("LAMP-BRASS")),
            (PlatformId(90), sku("SOFA-GREY")),
        ]),
        ship_from_location: Some(location("wh-paris")),
        pickup_locations: BTreeMap::from([("Boutique Lyon".to_owned(), location("store-lyon"))]),
        ..WooSettings::default()
    }
}

fn translate(settings: &WooSettings, body: &[u8], books: &Books) -> Translation {
    WooCommerce::new(settings)
        .translate(Topic::OrderUpdated, body, &LedgerLookup(&books.ledger))
        .expect("translates")
}

fn k(kind: &str, sku: &str) -> (String, String) {
    (kind.to_owned(), sku.to_owned())
}

fn status(body: &[u8], status: &str) -> Vec<u8> {
    with(body, &["status"], json!(status))
}

#[test]
fn topics_and_the_creation_ping() {
    assert_eq!(Topic::parse("order.created"), Some(Topic::OrderCreated));
    assert_eq!(Topic::parse("order.updated"), Some(Topic::OrderUpdated));
    assert_eq!(Topic::parse("product.updated"), None);
    assert!(is_ping(b"webhook_id=12"));
    assert!(!is_ping(b"webhook_id="));
    assert!(!is_ping(b"{\"webhook_id\":12}"));
}

#[test]
fn processing_orders_are_held_and_confirmed_at_the_fulfilment_location() {
    let settings = settings();
    let mut books = Books::new();
    let body = fixture("woocommerce/order_shipped.json");
    let t = translate(&settings, &body, &books);
    assert_eq!(
        kinds(&t.events),
        vec![
            k("hold_requested", "LAMP-BRASS"),
            k("hold_confirmed", "LAMP-BRASS"),
            k("hold_requested", "MUG-BLUE"),
            k("hold_confirmed", "MUG-BLUE"),
        ]
    );
    let Payload::HoldRequested {
        hold_id,
        order_id,
        customer_ref,
        kind,
        price,
        ..
    } = &t.events[0].payload
    else {
        panic!("hold request");
    };
    assert_eq!(hold_id.as_str(), "woo-727-315");
    assert_eq!(order_id.as_str(), "woo-727");
    assert_eq!(customer_ref.as_str(), "727");
    assert_eq!(*kind, HoldKind::Checkout);
    assert_eq!(
        price,
        &Some(Price {
            unit_minor: 8_990,
            currency: "EUR".into()
        })
    );
    assert_eq!(t.events[0].location, Some(location("wh-paris")));
    assert_eq!(t.events[0].channel, channel("web"));
    // Created and updated deliveries of the same order say the same thing.
    let created = WooCommerce::new(&settings)
        .translate(Topic::OrderCreated, &body, &LedgerLookup(&books.ledger))
        .expect("translates");
    assert_eq!(bytes(&created.events), bytes(&t.events));
    books.apply_ok(&t.events);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").committed, 2);
    assert_eq!(books.q("MUG-BLUE", "wh-paris").committed, 1);
}

#[test]
fn status_transitions_apply_each_step_once() {
    let settings = settings();
    let mut books = Books::new();
    let body = fixture("woocommerce/order_shipped.json");

    let pending = translate(&settings, &status(&body, "pending"), &books);
    assert_eq!(
        kinds(&pending.events),
        vec![
            k("hold_requested", "LAMP-BRASS"),
            k("hold_requested", "MUG-BLUE")
        ]
    );
    books.apply_ok(&pending.events);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").reserved, 2);

    let processing = translate(&settings, &body, &books);
    let verdicts = books.apply(&processing.events);
    assert_eq!(
        verdicts,
        vec![
            Verdict::Duplicate,
            Verdict::Applied,
            Verdict::Duplicate,
            Verdict::Applied
        ]
    );

    let completed = status(&body, "completed");
    let completed = with(
        &completed,
        &["date_completed_gmt"],
        json!("2025-03-15T08:00:00"),
    );
    let t = translate(&settings, &completed, &books);
    assert_eq!(
        kinds(&t.events),
        vec![
            k("hold_requested", "LAMP-BRASS"),
            k("hold_confirmed", "LAMP-BRASS"),
            k("hold_shipped", "LAMP-BRASS"),
            k("hold_requested", "MUG-BLUE"),
            k("hold_confirmed", "MUG-BLUE"),
            k("hold_shipped", "MUG-BLUE"),
        ]
    );
    books.apply(&t.events);
    let lamp = books.q("LAMP-BRASS", "wh-paris");
    assert_eq!((lamp.on_hand, lamp.committed), (8, 0));

    // Refunded after shipping: the units come back where they were held.
    let refunded = translate(&settings, &status(&body, "refunded"), &books);
    assert_eq!(
        kinds(&refunded.events),
        vec![k("returned", "LAMP-BRASS"), k("returned", "MUG-BLUE")]
    );
    let Payload::Returned {
        quantity,
        disposition,
        sold_by_channel,
        ..
    } = &refunded.events[0].payload
    else {
        panic!("a return");
    };
    assert_eq!(
        (*quantity, *disposition, sold_by_channel.clone()),
        (2, ReturnDisposition::Restock, Some(channel("web")))
    );
    assert_eq!(refunded.events[0].location, Some(location("wh-paris")));
    books.apply_ok(&refunded.events);
    assert_eq!(books.q("LAMP-BRASS", "wh-paris").on_hand, 10);
    // ...or at the returns location when one is configured.
    let with_returns = WooSettings {
        returns_location: Some(location("store-paris")),
        ..settings.clone()
    };
    let t = translate(&with_returns, &status(&body, "refunded"), &books);
    assert_eq!(t.events[0].location, Some(location("store-paris")));
}

#[test]
fn cancelled_failed_and_refunded_unshipped_orders_release_their_holds() {
    let settings = settings();
    let body = fixture("woocommerce/order_shipped.json");
    for end in ["cancelled", "failed", "refunded"] {
        let mut books = Books::new();
        let held = translate(&settings, &body, &books);
        books.apply_ok(&held.events);
        let t = translate(&settings, &status(&body, end), &books);
        assert_eq!(
            kinds(&t.events),
            vec![
                k("hold_released", "LAMP-BRASS"),
                k("hold_released", "MUG-BLUE")
            ],
            "{end}"
        );
        books.apply_ok(&t.events);
        let lamp = books.q("LAMP-BRASS", "wh-paris");
        assert_eq!((lamp.on_hand, lamp.committed, lamp.reserved), (10, 0, 0));
        // Again: the holds are closed.
        let again = translate(&settings, &status(&body, end), &books);
        assert!(again.events.is_empty(), "{end}");
    }
    // Cancelled before Stockline knew the order: nothing held, nothing released.
    let t = translate(&settings, &status(&body, "cancelled"), &Books::new());
    assert!(t.events.is_empty());
    assert!(t.skipped.iter().all(|s| s.code == SkipCode::NoHold));
}

#[test]
fn pickup_orders_are_held_at_the_store_and_collected_when_completed() {
    let mut settings = settings();
    settings.customer_ref = WooCustomerRef::Email;
    let mut books = Books::new();
    let body = fixture("woocommerce/order_pickup.json");
    let t = translate(&settings, &body, &books);
    assert_eq!(kinds(&t.events), vec![k("hold_requested", "SOFA-GREY")]);
    let Payload::HoldRequested {
        kind,
        ttl_seconds,
        customer_ref,
        ..
    } = &t.events[0].payload
    else {
        panic!("hold request");
    };
    assert_eq!(*kind, HoldKind::ClickAndCollect);
    assert_eq!(*ttl_seconds, settings.pickup_hold_ttl_seconds);
    assert_eq!(customer_ref.as_str(), "guest@example.com");
    assert_eq!(t.events[0].location, Some(location("store-lyon")));
    books.apply_ok(&t.events);
    assert_eq!(books.q("SOFA-GREY", "store-lyon").reserved, 1);

    let completed = translate(&settings, &status(&body, "completed"), &books);
    assert_eq!(
        kinds(&completed.events),
        vec![
            k("hold_requested", "SOFA-GREY"),
            k("hold_confirmed", "SOFA-GREY"),
            k("hold_collected", "SOFA-GREY"),
        ]
    );
    books.apply(&completed.events);
    assert_eq!(books.q("SOFA-GREY", "store-lyon").on_hand, 9);

    // The pickup store by method title, by method:instance, by default; or skipped.
    let lines = |title: &str| {
        with(
            &body,
            &["shipping_lines"],
            json!([{"method_id": "local_pickup", "method_title": title, "instance_id": 4, "meta_data": []}]),
        )
    };
    settings
        .pickup_locations
        .insert("Paris Opéra".into(), location("store-paris"));
    let t = translate(&settings, &lines("Paris Opéra"), &books);
    assert_eq!(t.events[0].location, Some(location("store-paris")));
    settings
        .pickup_locations
        .insert("local_pickup:4".into(), location("store-lyon"));
    let t = translate(&settings, &lines("Somewhere"), &books);
    assert_eq!(t.events[0].location, Some(location("store-lyon")));
    settings.pickup_locations.clear();
    let t = translate(&settings, &lines("Somewhere"), &books);
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::UnmappedPickup);
    settings.default_pickup_location = Some(location("store-paris"));
    let t = translate(&settings, &lines("Somewhere"), &books);
    assert_eq!(t.events[0].location, Some(location("store-paris")));
}

#[test]
fn mapping_branches_and_ignored_statuses() {
    let mut settings = settings();
    let books = Books::new();
    let body = fixture("woocommerce/order_shipped.json");
    // Variation first, then product, then the sku field (renamed through `skus`).
    settings.products.clear();
    settings.products.insert(PlatformId(93), sku("LAMP-PARENT"));
    settings.skus.insert("MUG-BLUE".into(), sku("MUG-BLUE-2"));
    let t = translate(&settings, &body, &books);
    assert_eq!(t.events[0].sku, Some(sku("LAMP-PARENT")));
    assert_eq!(t.events[2].sku, Some(sku("MUG-BLUE-2")));
    settings.products.clear();
    let t = translate(&settings, &body, &books);
    assert_eq!(t.events[0].sku, Some(sku("WC-LAMP")));
    let no_sku = with(
        &body,
        &["line_items"],
        json!([{"id": 1, "product_id": 5, "variation_id": 0, "quantity": 1, "sku": ""}]),
    );
    let t = translate(&settings, &no_sku, &books);
    assert_eq!(t.skipped[0].code, SkipCode::UnmappedSku);

    for ignored in ["trash", "checkout-draft", "wc-custom"] {
        let t = translate(&settings, &status(&body, ignored), &books);
        assert!(t.events.is_empty());
        assert!(t.skipped.iter().all(|s| s.code == SkipCode::StatusIgnored));
    }
    let group = WooSettings {
        ship_from_location: None,
        ship_from_group: Some(stockline_domain::GroupId::new("warehouses").expect("group")),
        ..settings.clone()
    };
    let t = translate(&group, &body, &books);
    assert_eq!(t.events[0].location, None);
    let nowhere = WooSettings {
        ship_from_location: None,
        ..settings.clone()
    };
    let t = translate(&nowhere, &body, &books);
    assert!(t.events.is_empty());
    assert_eq!(t.skipped[0].code, SkipCode::NoFulfilmentLocation);

    let customer = WooSettings {
        customer_ref: WooCustomerRef::CustomerId,
        ..settings.clone()
    };
    let t = translate(&customer, &body, &books);
    let Payload::HoldRequested { customer_ref, .. } = &t.events[0].payload else {
        panic!("hold request");
    };
    assert_eq!(customer_ref.as_str(), "woo-customer-26");
}

#[test]
fn settings_validate() {
    assert!(settings().validate().is_ok());
    assert!(WooSettings::default().validate().is_err());
    let parsed: WooSettings = serde_json::from_str(
        r#"{"secret": "s", "products": {"95": "LAMP-BRASS"}, "ship_from_location": "wh-paris"}"#,
    )
    .expect("settings");
    assert_eq!(
        parsed.products.get(&PlatformId(95)),
        Some(&sku("LAMP-BRASS"))
    );
    assert!(serde_json::from_str::<WooSettings>(r#"{"secrt": "s"}"#).is_err());
}
