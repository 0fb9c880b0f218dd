//! Channel adapters end to end: signed Shopify and WooCommerce webhooks posted to a
//! running stack (embedded broker, projector, HTTP service), and store till CSV
//! files imported with `stockline import-tills --url`; stock and holds checked
//! through the API. Wrong, missing and replayed signatures and deliveries, and
//! repeated imports, change nothing.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stockline_adapters::platform_id::PlatformId;
use stockline_adapters::shopify::ShopifySettings;
use stockline_adapters::signature::sign;
use stockline_adapters::woocommerce::WooSettings;
use stockline_domain::{LocationId, Sku};
use stockline_service::HttpSettings;
use support::adapters::{AdapterStack, Reply, fixture, fixture_bytes};

const SHOPIFY_SECRET: &str = "shpss_4f9c2b7e01d8a3";
const WOO_SECRET: &str = "wc-webhook-secret-93b1";

fn location(id: &str) -> LocationId {
    LocationId::new(id).expect("id")
}

fn sku(id: &str) -> Sku {
    Sku::new(id).expect("id")
}

fn http_settings() -> HttpSettings {
    HttpSettings {
        shopify: Some(ShopifySettings {
            client_secret: SHOPIFY_SECRET.into(),
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
        }),
        woocommerce: Some(WooSettings {
            secret: WOO_SECRET.into(),
            products: BTreeMap::from([
                (PlatformId(95), sku("LAMP-BRASS")),
                (PlatformId(90), sku("SOFA-GREY")),
            ]),
            ship_from_location: Some(location("wh-paris")),
            pickup_locations: BTreeMap::from([(
                "Boutique Lyon".to_owned(),
                location("store-lyon"),
            )]),
            ..WooSettings::default()
        }),
        ..HttpSettings::default()
    }
}

/// A Shopify delivery signed with `secret` (none when `None`).
async fn shopify(
    stack: &AdapterStack,
    topic: &str,
    webhook_id: &str,
    body: &[u8],
    secret: Option<&str>,
) -> Reply {
    let mut headers = vec![
        ("X-Shopify-Topic", topic.to_owned()),
        ("X-Shopify-Webhook-Id", webhook_id.to_owned()),
        (
            "X-Shopify-Shop-Domain",
            "stockline-test.myshopify.com".to_owned(),
        ),
        ("X-Shopify-API-Version", "2025-01".to_owned()),
    ];
    if let Some(secret) = secret {
        headers.push(("X-Shopify-Hmac-Sha256", sign(secret.as_bytes(), body)));
    }
    stack.webhook("/v1/webhooks/shopify", &headers, body).await
}

async fn woo(stack: &AdapterStack, topic: &str, body: &[u8], secret: Option<&str>) -> Reply {
    let mut headers = vec![
        ("X-WC-Webhook-Topic", topic.to_owned()),
        ("X-WC-Webhook-Resource", "order".to_owned()),
        (
            "X-WC-Webhook-Source",
            "https://shop.example.com/".to_owned(),
        ),
        ("X-WC-Webhook-Delivery-ID", "8d1f".to_owned()),
    ];
    if let Some(secret) = secret {
        headers.push(("X-WC-Webhook-Signature", sign(secret.as_bytes(), body)));
    }
    stack
        .webhook("/v1/webhooks/woocommerce", &headers, body)
        .await
}

fn with(body: &[u8], key: &str, value: Value) -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(body).expect("json");
    json[key] = value;
    serde_json::to_vec(&json).expect("json")
}

/// Every event of the answer has this outcome.
fn outcomes(reply: &Reply) -> Vec<String> {
    reply.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn assert_unauthorized(reply: &Reply, code: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["code"], code, "{reply:?}");
    assert_eq!(
        reply.body["type"],
        "https://stockline.dev/problems/webhook-signature"
    );
}

const PICKUP_HOLD: &str = "shopify-9007199254740993-9007199254741001";
const SHIPPED_HOLD: &str = "shopify-5784467603614-14210985558174";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopify_webhooks_move_stock_and_holds() {
    let stack = AdapterStack::start(http_settings()).await;
    let secret = Some(SHOPIFY_SECRET);

    // A click & collect order, paid: held and confirmed at the pickup store.
    let pickup = fixture_bytes("shopify/orders_create_pickup.json");
    let reply = shopify(&stack, "orders/create", "wh-1", &pickup, secret).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "applied");
    assert_eq!(reply.body["duplicate"], false);
    assert_eq!(reply.body["webhook_id"], "wh-1");
    assert_eq!(outcomes(&reply), vec!["applied"; 4]);
    assert_eq!(
        reply.body["skipped"][0]["code"], "not_stock",
        "the gift card"
    );
    let hold = stack.hold(PICKUP_HOLD).await.expect("pickup hold");
    assert_eq!(hold["status"], "held");
    assert_eq!(hold["confirmed"], true);
    assert_eq!(hold["kind"], "click_and_collect");
    assert_eq!(hold["location"], "store-lyon");
    assert_eq!(hold["customer_ref"], "#1001");
    let sofa = stack.quantities("SOFA-GREY", "store-lyon").await;
    assert_eq!(
        (sofa["committed"].as_i64(), sofa["available"].as_i64()),
        (Some(1), Some(9))
    );

    // Replayed (Shopify retries with the same webhook id): nothing changes.
    let replay = shopify(&stack, "orders/create", "wh-1", &pickup, secret).await;
    assert_eq!(replay.status, 200, "{replay:?}");
    assert_eq!(replay.body["duplicate"], true);
    assert_eq!(replay.body["status"], "duplicate");
    assert_eq!(outcomes(&replay), vec!["duplicate"; 4]);
    assert_eq!(stack.quantities("SOFA-GREY", "store-lyon").await, sofa);

    // Wrong signature (another secret, or the body changed after signing) and
    // missing signature: 401 problem, nothing applied.
    let shipped = fixture_bytes("shopify/orders_create_shipped.json");
    let wrong = shopify(
        &stack,
        "orders/create",
        "wh-2",
        &shipped,
        Some("not-the-secret"),
    )
    .await;
    assert_unauthorized(&wrong, "signature_mismatch");
    let tampered = {
        let signature = sign(SHOPIFY_SECRET.as_bytes(), &shipped);
        let altered = with(&shipped, "financial_status", json!("pending"));
        stack
            .webhook(
                "/v1/webhooks/shopify",
                &[
                    ("X-Shopify-Topic", "orders/create".into()),
                    ("X-Shopify-Hmac-Sha256", signature),
                ],
                &altered,
            )
            .await
    };
    assert_unauthorized(&tampered, "signature_mismatch");
    let missing = shopify(&stack, "orders/create", "wh-2", &shipped, None).await;
    assert_unauthorized(&missing, "signature_missing");
    assert!(stack.hold(SHIPPED_HOLD).await.is_none(), "nothing applied");
    assert_eq!(
        stack.quantities("LAMP-BRASS", "wh-paris").await["committed"],
        0
    );

    // Signed: the shipped order is held and confirmed at the fulfilment location...
    let reply = shopify(&stack, "orders/create", "wh-2", &shipped, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"; 2], "{reply:?}");
    assert_eq!(
        stack.quantities("LAMP-BRASS", "wh-paris").await["committed"],
        2
    );
    // ...and shipped by the fulfillment.
    let fulfillment = fixture_bytes("shopify/fulfillments_create.json");
    let reply = shopify(&stack, "fulfillments/create", "wh-3", &fulfillment, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    assert_eq!(
        stack.hold(SHIPPED_HOLD).await.expect("hold")["status"],
        "shipped"
    );
    let lamp = stack.quantities("LAMP-BRASS", "wh-paris").await;
    assert_eq!(
        (lamp["on_hand"].as_i64(), lamp["committed"].as_i64()),
        (Some(8), Some(0))
    );

    // Returned in a Paris store: restocked there; the no_restock line is skipped.
    let refund = fixture_bytes("shopify/refunds_create.json");
    let reply = shopify(&stack, "refunds/create", "wh-4", &refund, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    assert_eq!(reply.body["skipped"][0]["code"], "no_restock");
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-paris").await, 11);
    let history = stack
        .get("/v1/skus/LAMP-BRASS/history?location=store-paris")
        .await;
    assert_eq!(history.status, 200, "{history:?}");

    // A POS sale: a till sale at the store.
    let pos = fixture_bytes("shopify/orders_create_pos.json");
    let reply = shopify(&stack, "orders/create", "wh-5", &pos, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);

    // The pickup order cancelled: its holds are released.
    let cancelled = fixture_bytes("shopify/orders_cancelled.json");
    let reply = shopify(&stack, "orders/cancelled", "wh-6", &cancelled, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"; 2], "{reply:?}");
    assert_eq!(
        stack.hold(PICKUP_HOLD).await.expect("hold")["status"],
        "released"
    );
    let sofa = stack.quantities("SOFA-GREY", "store-lyon").await;
    assert_eq!(
        (sofa["committed"].as_i64(), sofa["available"].as_i64()),
        (Some(0), Some(10))
    );

    // An inventory level: a count of what is on hand (available + held units).
    let level = fixture_bytes("shopify/inventory_levels_update.json");
    let reply = shopify(&stack, "inventory_levels/update", "wh-7", &level, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    assert_eq!(stack.on_hand("SOFA-GREY", "wh-paris").await, 6);

    // A topic Stockline does not apply: acknowledged, nothing applied; unsigned: 401.
    let product = br#"{"id": 632910392, "title": "Sofa"}"#;
    let reply = shopify(&stack, "products/update", "wh-8", product, secret).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "ignored");
    let reply = shopify(&stack, "products/update", "wh-8", product, None).await;
    assert_unauthorized(&reply, "signature_missing");
    // Signed, but not the topic's resource: 400, Shopify will retry.
    let reply = shopify(&stack, "orders/create", "wh-9", product, secret).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json");

    // Counted for operators.
    let metrics = stack
        .client
        .get(format!("{}/metrics", stack.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("stockline_webhook_deliveries_total"),
        "{metrics}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woocommerce_webhooks_follow_order_statuses() {
    let stack = AdapterStack::start(http_settings()).await;
    let secret = Some(WOO_SECRET);

    // The ping WooCommerce sends, unsigned, when the webhook is created.
    let ping = stack
        .webhook(
            "/v1/webhooks/woocommerce",
            &[("X-WC-Webhook-ID", "12".into())],
            b"webhook_id=12",
        )
        .await;
    assert_eq!(ping.status, 200, "{ping:?}");
    assert_eq!(ping.body["status"], "ignored");

    let order = fixture_bytes("woocommerce/order_shipped.json");
    assert_unauthorized(
        &woo(&stack, "order.created", &order, None).await,
        "signature_missing",
    );
    assert_unauthorized(
        &woo(&stack, "order.created", &order, Some("other")).await,
        "signature_mismatch",
    );
    assert!(stack.hold("woo-727-315").await.is_none());

    // Processing (paid): held and confirmed.
    let reply = woo(&stack, "order.created", &order, secret).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(outcomes(&reply), vec!["applied"; 4]);
    let hold = stack.hold("woo-727-315").await.expect("hold");
    assert_eq!(
        (hold["status"].as_str(), hold["confirmed"].as_bool()),
        (Some("held"), Some(true))
    );
    assert_eq!(
        stack.quantities("LAMP-BRASS", "wh-paris").await["committed"],
        2
    );
    // Delivered again: a duplicate.
    let replay = woo(&stack, "order.created", &order, secret).await;
    assert_eq!(replay.body["duplicate"], true, "{replay:?}");

    // Completed: shipped; the units leave the warehouse.
    let completed = with(&order, "status", json!("completed"));
    let reply = woo(&stack, "order.updated", &completed, secret).await;
    assert_eq!(
        outcomes(&reply),
        vec![
            "duplicate",
            "duplicate",
            "applied",
            "duplicate",
            "duplicate",
            "applied"
        ],
        "{reply:?}"
    );
    assert_eq!(
        stack.hold("woo-727-315").await.expect("hold")["status"],
        "shipped"
    );
    assert_eq!(stack.on_hand("LAMP-BRASS", "wh-paris").await, 8);

    // Refunded: the units come back where they were held.
    let refunded = with(&order, "status", json!("refunded"));
    let reply = woo(&stack, "order.updated", &refunded, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"; 2], "{reply:?}");
    assert_eq!(stack.on_hand("LAMP-BRASS", "wh-paris").await, 10);

    // A pickup awaiting payment, then cancelled: held at the store, then released.
    let pickup = fixture_bytes("woocommerce/order_pickup.json");
    let reply = woo(&stack, "order.created", &pickup, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    let hold = stack.hold("woo-728-320").await.expect("hold");
    assert_eq!(
        (hold["location"].as_str(), hold["kind"].as_str()),
        (Some("store-lyon"), Some("click_and_collect"))
    );
    assert_eq!(
        stack.quantities("SOFA-GREY", "store-lyon").await["reserved"],
        1
    );
    let cancelled = with(&pickup, "status", json!("cancelled"));
    let reply = woo(&stack, "order.updated", &cancelled, secret).await;
    assert_eq!(outcomes(&reply), vec!["applied"], "{reply:?}");
    assert_eq!(
        stack.quantities("SOFA-GREY", "store-lyon").await["reserved"],
        0
    );

    // Another topic: acknowledged, not applied.
    let reply = woo(&stack, "product.updated", br#"{"id": 93}"#, secret).await;
    assert_eq!(reply.body["status"], "ignored", "{reply:?}");
    stack.shutdown().await;
}

/// Runs `stockline import-tills FILE --url BASE --token ADMIN`.
async fn import(stack: &AdapterStack, file: std::path::PathBuf) -> (bool, String, String) {
    let args = vec![
        "--url".to_owned(),
        stack.base.clone(),
        "--token".to_owned(),
        stack.admin.clone(),
    ];
    run_import(file, args, Vec::new()).await
}

async fn run_import(
    file: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stockline"))
            .arg("import-tills")
            .arg(&file)
            .args(&args)
            .envs(env)
            .env_remove("STOCKLINE_CONFIG")
            .output()
            .expect("stockline runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("joins")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn till_imports_apply_good_rows_report_bad_ones_and_repeat_safely() {
    let stack = AdapterStack::start(HttpSettings::default()).await;

    let (ok, stdout, stderr) = import(&stack, fixture("tills/good.csv")).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("3 rows imported, 0 bad rows"), "{stdout}");
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 9);

    // The same file again: nothing changes.
    let (ok, stdout, stderr) = import(&stack, fixture("tills/good.csv")).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 9);

    // Returns: restocked, damaged, discarded.
    let (ok, stdout, stderr) = import(&stack, fixture("tills/returns.csv")).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 10);
    let mug = stack.quantities("MUG-BLUE", "store-lyon").await;
    assert_eq!(
        (mug["on_hand"].as_i64(), mug["damaged"].as_i64()),
        (Some(8), Some(1))
    );

    // Bad rows: each reported with its line number, the good ones imported, and the
    // command fails so scripts notice.
    let (ok, stdout, _) = import(&stack, fixture("tills/bad.csv")).await;
    assert!(!ok, "{stdout}");
    for line in 3..=7 {
        assert!(
            stdout.contains(&format!("line {line}: ")),
            "line {line}: {stdout}"
        );
    }
    assert!(
        !stdout.contains("line 2: ") && !stdout.contains("line 8: "),
        "{stdout}"
    );
    assert!(stdout.contains("2 rows imported, 5 bad rows"), "{stdout}");
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 9);
    // Again: the same report, and the good rows are not applied twice.
    let (ok, _, _) = import(&stack, fixture("tills/bad.csv")).await;
    assert!(!ok);
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 9);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn till_imports_through_the_configured_brokers() {
    let stack = AdapterStack::start(HttpSettings::default()).await;
    // The embedded broker of this test listens on 127.0.0.1: the command reaches it
    // as it would reach a Kafka cluster, through STOCKLINE_KAFKA__* settings.
    let settings = &stack.broker.settings;
    let env = vec![
        (
            "STOCKLINE_KAFKA__BROKERS".to_owned(),
            stack.broker.bootstrap_servers(),
        ),
        (
            "STOCKLINE_KAFKA__TOPICS__EVENTS".to_owned(),
            settings.topics.events.clone(),
        ),
        (
            "STOCKLINE_KAFKA__PARTITIONS".to_owned(),
            settings.partitions.to_string(),
        ),
    ];
    for _ in 0..2 {
        let (ok, stdout, stderr) =
            run_import(fixture("tills/good.csv"), Vec::new(), env.clone()).await;
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("3 rows imported"), "{stdout}");
        // Published to Kafka, applied by the projector in its own time.
        let started = std::time::Instant::now();
        while stack.on_hand("MUG-BLUE", "store-lyon").await != 7 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "not applied"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    // Twice imported, applied once: wait until the projector has read the whole
    // log (both imports), then look.
    let ends = stack.broker.event_ends();
    let started = std::time::Instant::now();
    loop {
        let body = stack.get("/v1/skus/MUG-BLUE/availability").await.body;
        let caught_up = ends.iter().all(|(partition, end)| {
            body["position"][partition.to_string()]
                .as_u64()
                .is_some_and(|next| next >= *end)
        });
        if caught_up {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "projector behind: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stack.on_hand("MUG-BLUE", "store-lyon").await, 7);
    assert_eq!(stack.on_hand("LAMP-BRASS", "store-lyon").await, 9);
    stack.shutdown().await;
}
