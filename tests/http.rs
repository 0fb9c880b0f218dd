//! The HTTP service end to end: every route of the OpenAPI document driven through
//! the whole stack (embedded broker, projector, RocksDB, service) with real bearer
//! tokens. Each test starts its own stack (`support::http::HttpStack`) with fresh
//! topics, a fresh consumer group and a fresh store, and writes its configuration
//! and stock through the ingest endpoint, as an operator would.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use stockline_engine::ProjectorStatus;
use stockline_service::HttpSettings;
use support::http::{Answer, HttpStack, Seed, StackOptions, event, fresh, hold_request, received};
use tokio::sync::Barrier;

/// Every route of the service, as the OpenAPI document must list it. A route added
/// to the router without a test here fails `openapi_document_and_router_agree`.
const DOCUMENTED: [(&str, &str); 22] = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/skus/{sku}/availability"),
    ("GET", "/v1/skus/{sku}/locations/{location}/availability"),
    ("GET", "/v1/channels/{channel}/skus/{sku}/availability"),
    ("POST", "/v1/availability"),
    ("GET", "/v1/skus/{sku}/pickup-options"),
    ("POST", "/v1/holds"),
    ("GET", "/v1/holds/{hold_id}"),
    ("POST", "/v1/holds/{hold_id}/confirm"),
    ("POST", "/v1/holds/{hold_id}/release"),
    ("POST", "/v1/holds/{hold_id}/ready"),
    ("POST", "/v1/holds/{hold_id}/collected"),
    ("POST", "/v1/holds/{hold_id}/no-show"),
    ("POST", "/v1/holds/{hold_id}/shipped"),
    ("GET", "/v1/orders/{order_id}/holds"),
    ("GET", "/v1/customers/{customer_ref}/holds"),
    ("GET", "/v1/locations/{location}/pickups"),
    ("GET", "/v1/skus/{sku}/history"),
    ("POST", "/v1/events"),
    ("GET", "/v1/outcomes/{partition}/{offset}"),
];

fn hold_id_of(answer: &Answer) -> &str {
    answer.body["hold"]["hold_id"].as_str().unwrap_or("")
}

fn hold_ids(answer: &Answer) -> Vec<String> {
    answer.body["holds"]
        .as_array()
        .unwrap_or_else(|| panic!("a hold list: {}", answer.text))
        .iter()
        .map(|h| h["hold_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// Follows `next_cursor` from `first` (a path with `page_size`), collecting the
/// hold ids of every page and the size of each page.
async fn all_pages(stack: &HttpStack, token: &str, first: &str) -> (Vec<String>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..20 {
        let page = stack.get(token, &path).await.expect(200);
        let page_ids = hold_ids(&page);
        sizes.push(page_ids.len());
        ids.extend(page_ids);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("{first}&cursor={cursor}"),
            None => return (ids, sizes),
        }
    }
    panic!("more than 20 pages from {first}");
}

// ---------------------------------------------------------------------------------
// OpenAPI: the document and the router agree.
// ---------------------------------------------------------------------------------

/// Placeholder values for the path parameters of the document.
fn fill(template: &str) -> String {
    template
        .replace("{sku}", "NO-SUCH-SKU")
        .replace("{location}", "store-1")
        .replace("{channel}", "web")
        .replace("{hold_id}", "no-such-hold")
        .replace("{order_id}", "no-such-order")
        .replace("{customer_ref}", "no-such-customer")
        .replace("{partition}", "0")
        .replace("{offset}", "0")
}

fn is_fallback(answer: &Answer) -> bool {
    (answer.status == 404 && answer.problem_type() == "no-such-route") || answer.status == 405
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_router_agree() {
    let stack = HttpStack::start().await;
    stack.seed(&Seed::standard()).await;
    let admin = stack.tokens.admin.clone();

    // Served without a token, as JSON, OpenAPI 3.
    let document = stack.get("", "/openapi.json").await.expect(200);
    assert!(document.content_type().starts_with("application/json"));
    let doc = &document.body;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Stockline");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    // Three kinds of routes: public operations endpoints, platform webhooks
    // (authenticated by a signature of the body, not a token; their behaviour is
    // tested with the adapters), and everything else under /v1 behind a bearer
    // token.
    let public = |path: &str| ["/health", "/ready", "/metrics"].contains(&path);
    let signed = |path: &str| path.starts_with("/v1/webhooks/");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            if let Some(operation) = item.get(method) {
                operations.insert((method.to_uppercase(), path.clone()));
                let secured = operation.get("security").is_some();
                assert_eq!(
                    secured,
                    !public(path) && !signed(path),
                    "{method} {path}: bearer security declared on the token-guarded routes only"
                );
            }
        }
    }
    let expected: BTreeSet<(String, String)> = DOCUMENTED
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let unsigned: BTreeSet<(String, String)> = operations
        .iter()
        .filter(|(_, path)| !signed(path))
        .cloned()
        .collect();
    assert_eq!(
        unsigned, expected,
        "the document lists exactly the routes this suite covers"
    );
    // The document itself is served but not documented.
    assert!(!paths.contains_key("/openapi.json"));

    // Every documented operation is routed: called with placeholders and a valid
    // token it answers something other than the router's fallbacks, never a 5xx.
    // Without a token, every token-guarded route answers 401 with a Bearer
    // challenge, every webhook 401 for its missing signature.
    for (method, template) in &operations {
        let path = fill(template);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = stack.request(method.clone(), &admin, &path);
        if method == Method::POST {
            request = request.json(&json!({}));
        }
        let answer = Answer::of(request).await;
        assert!(
            !is_fallback(&answer) && answer.status < 500,
            "{method} {path} is documented but answered {}: {}",
            answer.status,
            answer.text
        );
        let anonymous = Answer::of(stack.request(method.clone(), "", &path).json(&json!({}))).await;
        if public(template) {
            assert!(
                [200, 503].contains(&anonymous.status),
                "{method} {path} without a token: {}",
                anonymous.status
            );
        } else if signed(template) {
            assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.text);
            assert_eq!(anonymous.content_type(), "application/problem+json");
        } else {
            let answer = anonymous.expect_problem(401, "unauthorized");
            assert_eq!(
                answer.headers.get(WWW_AUTHENTICATE),
                Some(&HeaderValue::from_static("Bearer"))
            );
        }
    }

    // Undocumented paths and methods hit the fallbacks, as problem+json.
    for path in [
        "/",
        "/v1",
        "/v1/skus",
        "/v1/holds",
        "/v2/skus/A/availability",
        "/v1/holds/h/explode",
        "/v1/skus/A/availability/extra",
        "/openapi.yaml",
    ] {
        let answer = stack.get(&admin, path).await;
        if path == "/v1/holds" {
            // Routed for POST only.
            answer.expect_problem(405, "method-not-allowed");
        } else {
            answer.expect_problem(404, "no-such-route");
        }
    }
    for (method, path) in [
        (Method::DELETE, "/v1/holds/h"),
        (Method::PUT, "/v1/events"),
        (Method::GET, "/v1/holds/h/confirm"),
        (Method::POST, "/v1/skus/A/availability"),
        (Method::POST, "/openapi.json"),
        (Method::POST, "/health"),
    ] {
        Answer::of(stack.request(method, &admin, path))
            .await
            .expect_problem(405, "method-not-allowed");
    }
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Health, readiness, metrics.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let mut stack = HttpStack::start().await;
    let wait_for = stack
        .seed(&Seed::standard().with_stock("M-1", "store-1", 2))
        .await;
    assert!(!wait_for.is_empty());

    let health = stack.get("", "/health").await.expect(200);
    assert_eq!(health.text, "ok");

    // Caught up: 200 with the positions of all four partitions.
    let ready = stack.get("", "/ready").await.expect(200);
    assert_eq!(ready.body["ready"], true, "{}", ready.text);
    let positions = ready.body["position"].as_object().expect("positions");
    let marks = ready.body["assigned_high_watermarks"]
        .as_object()
        .expect("watermarks");
    assert_eq!(positions.len(), 4, "{}", ready.text);
    assert_eq!(marks.len(), 4, "{}", ready.text);
    for (partition, mark) in marks {
        assert!(
            positions[partition].as_u64() >= mark.as_u64(),
            "{}",
            ready.text
        );
    }
    assert!(ready.body["records"].as_u64().is_some_and(|r| r > 0));
    assert_eq!(ready.body["dead_letters"], 0);

    // Before the projector has caught up: a second instance of the service on the
    // same store, fed a projector status by hand.
    let (status, receiver) = tokio::sync::watch::channel(ProjectorStatus::default());
    let base = stack.serve_with_status(receiver).await;
    let readiness =
        |base: String| async move { Answer::of(stack_client().get(format!("{base}/ready"))).await };
    let answer = readiness(base.clone()).await.expect(503);
    assert_eq!(
        answer.body["ready"], false,
        "not assigned yet: {}",
        answer.text
    );
    status.send_replace(ProjectorStatus {
        positions: BTreeMap::from([(0, 5), (1, 0)]),
        assignment_high_watermarks: BTreeMap::from([(0, 10), (1, 0)]),
        ..ProjectorStatus::default()
    });
    let answer = readiness(base.clone()).await.expect(503);
    assert_eq!(answer.body["ready"], false, "behind on 0: {}", answer.text);
    assert_eq!(answer.body["position"]["0"], 5);
    status.send_replace(ProjectorStatus {
        positions: BTreeMap::from([(0, 10), (1, 0)]),
        assignment_high_watermarks: BTreeMap::from([(0, 10), (1, 0)]),
        ..ProjectorStatus::default()
    });
    let answer = readiness(base.clone()).await.expect(200);
    assert_eq!(answer.body["ready"], true, "caught up: {}", answer.text);

    // Metrics: request latencies by route, and the projector's counters.
    stack
        .get(&stack.tokens.analyst, "/v1/skus/M-1/availability")
        .await
        .expect(200);
    let metrics = stack.get("", "/metrics").await.expect(200);
    assert!(metrics.content_type().starts_with("text/plain"));
    for needle in [
        "stockline_http_request_duration_seconds",
        "route=\"/v1/skus/{sku}/availability\"",
        "stockline_projector_records_total",
        "stockline_projector_batch_seconds",
    ] {
        assert!(metrics.text.contains(needle), "/metrics has {needle}");
    }
    stack.shutdown().await;
}

fn stack_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(support::http::REQUEST_TIMEOUT)
        .build()
        .expect("client")
}

// ---------------------------------------------------------------------------------
// Availability.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_by_sku_location_channel_batch_and_pickup_options() {
    let stack = HttpStack::start().await;
    let sku = "AV-1";
    stack
        .seed(
            &Seed::standard()
                .with_stock(sku, "store-1", 5)
                .with_stock(sku, "store-2", 3)
                .with_stock(sku, "wh-1", 10),
        )
        .await;
    // Two units of store-1 are web's alone; ten units are expected at store-2.
    stack
        .ingest_ok(&[
            event(
                "admin",
                Some("store-1"),
                Some(sku),
                None,
                json!({"allocation_set": {"channel": "web", "quantity": 2}}),
            ),
            event(
                "erp",
                Some("store-2"),
                Some(sku),
                Some(("purchase_order", "po-77")),
                json!({"incoming_expected": {"quantity": 10, "expected_at": "2030-01-01T00:00:00Z"}}),
            ),
        ])
        .await;
    let analyst = &stack.tokens.analyst;

    // Per SKU: every location, in id order.
    let all = stack
        .get(analyst, &format!("/v1/skus/{sku}/availability"))
        .await
        .expect(200);
    assert!(all.headers.contains_key("stockline-position"));
    assert_eq!(all.body["sku"], sku);
    assert_eq!(all.body["total_available"], 18);
    let locations = all.body["locations"].as_array().expect("locations");
    let names: Vec<&str> = locations
        .iter()
        .map(|l| l["location"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["store-1", "store-2", "wh-1"]);
    assert_eq!(locations[0]["kind"], "store");
    assert_eq!(locations[2]["kind"], "warehouse");
    assert_eq!(locations[0]["exclusive_unused"], json!({"web": 2}));
    assert_eq!(locations[0]["quantities"]["on_hand"], 5);
    assert_eq!(locations[0]["quantities"]["available"], 5);
    assert_eq!(locations[1]["quantities"]["incoming"], 10);

    // Per location, readable by a channel.
    let one = stack
        .get(
            &stack.tokens.web,
            &format!("/v1/skus/{sku}/locations/store-2/availability"),
        )
        .await
        .expect(200);
    assert_eq!(one.body["total_available"], 3);
    assert_eq!(one.body["locations"].as_array().map(Vec::len), Some(1));
    assert_eq!(one.body["locations"][0]["quantities"]["incoming"], 10);
    // A configured location without stock of the SKU: zeros.
    let empty = stack
        .get(analyst, "/v1/skus/AV-1/locations/store-2/availability")
        .await;
    assert_eq!(empty.status, 200);

    // Channel views: web's allocation is its own, hidden from the others; app keeps
    // a buffer of 2 per location and sells from stores only.
    let view = |channel: &'static str| {
        let stack = &stack;
        async move {
            stack
                .get(
                    &stack.tokens.marketplace,
                    &format!("/v1/channels/{channel}/skus/{sku}/availability"),
                )
                .await
                .expect(200)
        }
    };
    let promisable = |answer: &Answer| -> BTreeMap<String, i64> {
        answer.body["locations"]
            .as_array()
            .expect("locations")
            .iter()
            .map(|l| {
                (
                    l["location"].as_str().unwrap_or("").to_owned(),
                    l["promisable"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    let web = view("web").await;
    assert_eq!(web.body["buffer"], 0);
    assert_eq!(web.body["total_promisable"], 18);
    let marketplace = view("marketplace").await;
    assert_eq!(
        promisable(&marketplace),
        BTreeMap::from([
            ("store-1".to_owned(), 3),
            ("store-2".to_owned(), 3),
            ("wh-1".to_owned(), 10)
        ])
    );
    assert_eq!(marketplace.body["total_promisable"], 16);
    let app = view("app").await;
    assert_eq!(app.body["buffer"], 2);
    assert_eq!(
        promisable(&app),
        BTreeMap::from([("store-1".to_owned(), 1), ("store-2".to_owned(), 1)])
    );
    assert_eq!(app.body["total_promisable"], 2);

    // The buffer decides holds too: app may not hold 2 at store-2, web may.
    let mut request = hold_request(&fresh("av-app"), sku, "store-2", 2, "checkout", "c-av");
    request["channel"] = json!("app");
    stack
        .hold(&stack.tokens.admin, &request)
        .await
        .expect_problem(409, "rejected")
        .expect_code("insufficient_availability");
    let web_hold = fresh("av-web");
    stack
        .hold(
            &stack.tokens.web,
            &hold_request(&web_hold, sku, "store-2", 2, "checkout", "c-av"),
        )
        .await
        .expect(201);
    stack
        .post_empty(&stack.tokens.web, &format!("/v1/holds/{web_hold}/release"))
        .await
        .expect(200);

    // Batch: SKUs x locations, with a channel's view; unknown SKUs have no items.
    let batch = stack
        .post(
            analyst,
            "/v1/availability",
            &json!({"skus": [sku, "AV-UNKNOWN"], "locations": ["store-1", "wh-1"], "channel": "marketplace"}),
        )
        .await
        .expect(200);
    let items: Vec<(String, String, i64, i64)> = batch.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap_or("").to_owned(),
                i["location"].as_str().unwrap_or("").to_owned(),
                i["quantities"]["available"].as_i64().unwrap_or(-1),
                i["promisable"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (sku.to_owned(), "store-1".to_owned(), 5, 3),
            (sku.to_owned(), "wh-1".to_owned(), 10, 10)
        ]
    );
    // Without a channel: no `promisable`.
    let plain = stack
        .post(analyst, "/v1/availability", &json!({"skus": [sku]}))
        .await
        .expect(200);
    assert_eq!(plain.body["items"].as_array().map(Vec::len), Some(3));
    assert!(plain.body["items"][0].get("promisable").is_none());
    // The size limit: SKUs, and SKUs x locations.
    let max = HttpSettings::default().availability_cells_max;
    let too_many: Vec<String> = (0..=max).map(|i| format!("S{i}")).collect();
    stack
        .post(analyst, "/v1/availability", &json!({"skus": too_many}))
        .await
        .expect_problem(413, "too-many-items")
        .expect_field("skus");
    let half: Vec<String> = (0..max / 2 + 1).map(|i| format!("S{i}")).collect();
    stack
        .post(
            analyst,
            "/v1/availability",
            &json!({"skus": half, "locations": ["store-1", "store-2"]}),
        )
        .await
        .expect_problem(413, "too-many-items");

    // Pickup options in group paris: store-1 has 4 now; store-2 only once the
    // purchase order arrives.
    let options = stack
        .get(
            &stack.tokens.web,
            &format!("/v1/skus/{sku}/pickup-options?quantity=4&group=paris"),
        )
        .await
        .expect(200);
    assert_eq!(options.body["quantity"], 4);
    let ready: Vec<(String, String, i64)> = options.body["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|o| {
            (
                o["location"].as_str().unwrap_or("").to_owned(),
                o["ready"].as_str().unwrap_or("").to_owned(),
                o["available_now"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        ready,
        [
            ("store-1".to_owned(), "now".to_owned(), 5),
            ("store-2".to_owned(), "2030-01-01T00:00:00Z".to_owned(), 3)
        ]
    );
    assert_eq!(options.body["options"][0]["name"], "Location store-1");
    // As app sees it (buffer 2): neither store has 4 now; store-2 will.
    let app_options = stack
        .get(
            &stack.tokens.web,
            &format!("/v1/skus/{sku}/pickup-options?quantity=4&group=paris&channel=app"),
        )
        .await
        .expect(200);
    assert_eq!(
        app_options.body["options"],
        json!([{"location": "store-2", "name": "Location store-2", "available_now": 1, "ready": "2030-01-01T00:00:00Z"}])
    );
    // Nobody can promise 20.
    let none = stack
        .get(
            &stack.tokens.web,
            &format!("/v1/skus/{sku}/pickup-options?quantity=20&group=paris"),
        )
        .await
        .expect(200);
    assert_eq!(none.body["options"], json!([]));
    // A group without stores.
    stack
        .get(
            &stack.tokens.web,
            &format!("/v1/skus/{sku}/pickup-options?quantity=1&group=warehouses"),
        )
        .await
        .expect_problem(404, "unknown-group")
        .expect_field("group");
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Holds: decisions, actions, idempotency, lookups.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_holds_from_request_to_shipped_idempotent_and_paged_by_order() {
    let stack = HttpStack::start().await;
    let sku = "HL-1";
    stack
        .seed(
            &Seed::standard()
                .with_stock(sku, "wh-1", 10)
                .with_stock(sku, "store-2", 2),
        )
        .await;
    let web = &stack.tokens.web;

    // Held: 201 with where and until when; the units are reserved.
    let request = hold_request("hl-a", sku, "wh-1", 3, "checkout", "cust-hl");
    let held = stack.hold(web, &request).await.expect(201);
    let hold = held.body["hold"].clone();
    assert_eq!(hold["hold_id"], "hl-a");
    assert_eq!(hold["status"], "held");
    assert_eq!(hold["location"], "wh-1");
    assert_eq!(hold["channel"], "web");
    assert_eq!(hold["kind"], "checkout");
    assert_eq!(hold["quantity"], 3);
    assert_eq!(hold["confirmed"], false);
    assert_eq!(hold["order_line"], 1);
    assert!(
        hold["expires_at"]
            .as_str()
            .is_some_and(|t| t > hold["requested_at"].as_str().unwrap_or(""))
    );
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(
        (q["reserved"].as_i64(), q["available"].as_i64()),
        (Some(3), Some(7))
    );

    // The same request again: the same decision, no second hold.
    let again = stack.hold(web, &request).await.expect(201);
    assert_eq!(again.body["hold"], hold, "a retry answers the same hold");
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(q["reserved"], 3, "a retry reserves nothing more");
    // The same id with other parameters: 409 conflict, the first decision stands.
    let mut other = request.clone();
    other["quantity"] = json!(4);
    let conflict = stack
        .hold(web, &other)
        .await
        .expect_problem(409, "conflict");
    assert_eq!(conflict.body["context"]["hold"]["quantity"], 3);
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(q["reserved"], 3);

    // Read it back; confirm (paid): reserved -> committed.
    let got = stack.get(web, "/v1/holds/hl-a").await.expect(200);
    assert_eq!(got.body["hold"], hold);
    let confirmed = stack
        .post_empty(web, "/v1/holds/hl-a/confirm")
        .await
        .expect(200);
    assert_eq!(confirmed.body["hold"]["confirmed"], true);
    assert_eq!(confirmed.body["hold"]["status"], "held");
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(
        (
            q["reserved"].as_i64(),
            q["committed"].as_i64(),
            q["available"].as_i64()
        ),
        (Some(0), Some(3), Some(7))
    );
    // A retried action is answered with the hold as it is.
    stack
        .post_empty(web, "/v1/holds/hl-a/confirm")
        .await
        .expect(200);
    // Shipped: the units leave the warehouse.
    let shipped = stack
        .post_empty(web, "/v1/holds/hl-a/shipped?sku=HL-1")
        .await
        .expect(200);
    assert_eq!(shipped.body["hold"]["status"], "shipped");
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(
        (
            q["on_hand"].as_i64(),
            q["committed"].as_i64(),
            q["available"].as_i64()
        ),
        (Some(7), Some(0), Some(7))
    );
    // Closed: further actions are refused with the reason.
    stack
        .post_empty(web, "/v1/holds/hl-a/release")
        .await
        .expect_problem(409, "rejected")
        .expect_code("hold_closed");

    // Release: the units are available again.
    stack
        .hold(
            web,
            &hold_request("hl-b", sku, "wh-1", 2, "checkout", "cust-hl"),
        )
        .await
        .expect(201);
    let released = stack
        .post_empty(web, "/v1/holds/hl-b/release")
        .await
        .expect(200);
    assert_eq!(released.body["hold"]["status"], "released");
    let q = stack.quantities(sku, "wh-1").await;
    assert_eq!(
        (q["reserved"].as_i64(), q["available"].as_i64()),
        (Some(0), Some(7))
    );

    // Unconfirmed holds cannot ship; checkout holds are not pickups.
    stack
        .hold(
            web,
            &hold_request("hl-c", sku, "wh-1", 1, "checkout", "cust-hl"),
        )
        .await
        .expect(201);
    stack
        .post_empty(web, "/v1/holds/hl-c/shipped")
        .await
        .expect_problem(409, "rejected")
        .expect_code("not_confirmed");
    stack
        .post_empty(&stack.tokens.admin, "/v1/holds/hl-c/ready")
        .await
        .expect_problem(409, "rejected")
        .expect_code("not_a_pickup");

    // Refusals are decisions too: recorded, answered 409 with the reason, and
    // retried with the same answer.
    let too_many = hold_request("hl-d", sku, "wh-1", 100, "checkout", "cust-hl");
    for _ in 0..2 {
        let refused = stack
            .hold(web, &too_many)
            .await
            .expect_problem(409, "rejected")
            .expect_code("insufficient_availability");
        assert_eq!(refused.body["context"]["hold"]["status"], "rejected");
    }
    let mut zero_ttl = hold_request("hl-e", sku, "wh-1", 1, "checkout", "cust-hl");
    zero_ttl["ttl_seconds"] = json!(0);
    stack
        .hold(web, &zero_ttl)
        .await
        .expect_problem(409, "rejected")
        .expect_code("ttl_out_of_range");
    stack
        .hold(
            web,
            &hold_request("hl-f", sku, "nowhere", 1, "checkout", "cust-hl"),
        )
        .await
        .expect_problem(409, "rejected")
        .expect_code("unknown_location");
    stack
        .hold(
            web,
            &hold_request("hl-g", sku, "wh-1", 1, "click_and_collect", "cust-hl"),
        )
        .await
        .expect_problem(409, "rejected")
        .expect_code("not_a_pickup_location");

    // Any store of a group: the one with stock.
    let mut by_group = hold_request("hl-h", sku, "unused", 1, "click_and_collect", "cust-hl");
    by_group["location"] = Value::Null;
    by_group["group"] = json!("paris");
    let grouped = stack.hold(web, &by_group).await.expect(201);
    assert_eq!(grouped.body["hold"]["location"], "store-2");
    assert_eq!(grouped.body["hold"]["requested_group"], "paris");

    // An order's holds, paged; only the caller's own are visible to a channel.
    let order = "order-paged";
    for (line, hold_id) in ["hl-p1", "hl-p2", "hl-p3"].iter().enumerate() {
        let mut request = hold_request(hold_id, sku, "wh-1", 1, "checkout", "cust-paged");
        request["order_id"] = json!(order);
        request["order_line"] = json!(line + 1);
        stack.hold(web, &request).await.expect(201);
    }
    let (ids, sizes) = all_pages(
        &stack,
        web,
        &format!("/v1/orders/{order}/holds?page_size=2"),
    )
    .await;
    assert_eq!(
        set(&ids.iter().map(String::as_str).collect::<Vec<_>>()),
        set(&["hl-p1", "hl-p2", "hl-p3"])
    );
    assert_eq!(ids.len(), 3, "no hold twice: {ids:?}");
    assert_eq!(sizes[0], 2, "{sizes:?}");
    let foreign = stack
        .get(
            &stack.tokens.marketplace,
            &format!("/v1/orders/{order}/holds"),
        )
        .await
        .expect(200);
    assert_eq!(hold_ids(&foreign), Vec::<String>::new());
    let analyst = stack
        .get(
            &stack.tokens.analyst,
            &format!("/v1/orders/{order}/holds?page_size=500"),
        )
        .await
        .expect(200);
    assert_eq!(hold_ids(&analyst).len(), 3);
    assert!(analyst.body.get("next_cursor").is_none());
    stack.shutdown().await;
}

/// Two channels ask for the last unit at the same instant, twenty times: one is
/// held, the other refused, never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_channels_racing_for_the_last_unit_never_both_hold_it() {
    const ROUNDS: usize = 20;
    let stack = HttpStack::start().await;
    let mut seed = Seed::standard();
    for round in 0..ROUNDS {
        seed = seed.with_stock(&format!("RACE-{round}"), "store-1", 1);
    }
    stack.seed(&seed).await;
    let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let sku = format!("RACE-{round}");
        let web_request = hold_request(
            &format!("race-web-{round}"),
            &sku,
            "store-1",
            1,
            "checkout",
            "c-web",
        );
        let marketplace_request = hold_request(
            &format!("race-mkt-{round}"),
            &sku,
            "store-1",
            1,
            "checkout",
            "c-mkt",
        );
        // Two tasks on the runtime's two worker threads, released together.
        let barrier = Arc::new(Barrier::new(2));
        let send = |token: &str, request: &Value| {
            let request = stack
                .request(Method::POST, token, "/v1/holds")
                .json(request);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                Answer::of(request).await
            })
        };
        let web = send(&stack.tokens.web, &web_request);
        let marketplace = send(&stack.tokens.marketplace, &marketplace_request);
        let (web, marketplace) = (
            web.await.expect("web's request"),
            marketplace.await.expect("marketplace's request"),
        );
        let (winner, loser, name) = match (web.status, marketplace.status) {
            (201, 409) => (web, marketplace, "web"),
            (409, 201) => (marketplace, web, "marketplace"),
            other => panic!(
                "round {round}: exactly one 201 and one 409, got {other:?}:\n{}\n{}",
                web.text, marketplace.text
            ),
        };
        *wins.entry(name).or_default() += 1;
        assert_eq!(winner.body["hold"]["status"], "held");
        assert_eq!(winner.body["hold"]["channel"], name);
        let loser = loser
            .expect_problem(409, "rejected")
            .expect_code("insufficient_availability");
        assert_eq!(loser.body["context"]["hold"]["status"], "rejected");
        let q = stack.quantities(&sku, "store-1").await;
        assert_eq!(
            (
                q["on_hand"].as_i64(),
                q["reserved"].as_i64(),
                q["available"].as_i64()
            ),
            (Some(1), Some(1), Some(0)),
            "round {round}: one unit, held once"
        );
        // Both holds, as the ledger recorded them.
        for (hold_id, expected) in [
            (hold_id_of(&winner).to_owned(), "held"),
            (
                loser.body["context"]["hold"]["hold_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                "rejected",
            ),
        ] {
            let hold = stack
                .get(&stack.tokens.analyst, &format!("/v1/holds/{hold_id}"))
                .await
                .expect(200);
            assert_eq!(hold.body["hold"]["status"], expected, "round {round}");
        }
    }
    eprintln!("race winners over {ROUNDS} rounds: {wins:?}");
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Click & collect, as the store sees it.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_and_collect_from_hold_to_collected_as_the_store_sees_it() {
    let stack = HttpStack::start().await;
    let sku = "CC-1";
    stack
        .seed(&Seed::standard().with_stock(sku, "store-1", 4))
        .await;
    let web = &stack.tokens.web;
    let desk = &stack.tokens.store1;
    let queue = |status: &str| format!("/v1/locations/store-1/pickups?status={status}");

    // The web shop holds one unit at store-1 for the customer.
    let held = stack
        .hold(
            web,
            &hold_request("cc-1", sku, "store-1", 1, "click_and_collect", "cust-cc"),
        )
        .await
        .expect(201);
    assert_eq!(held.body["hold"]["kind"], "click_and_collect");

    // The desk sees it to prepare, marks it ready.
    let waiting = stack
        .get(desk, &queue("awaiting_preparation"))
        .await
        .expect(200);
    assert_eq!(hold_ids(&waiting), ["cc-1"]);
    let ready = stack
        .post_empty(desk, "/v1/holds/cc-1/ready")
        .await
        .expect(200);
    assert_eq!(ready.body["hold"]["status"], "ready_for_pickup");
    assert!(ready.body["hold"]["ready_at"].is_string());
    stack
        .post_empty(desk, "/v1/holds/cc-1/ready")
        .await
        .expect(200); // a retry of the same action
    assert_eq!(
        hold_ids(
            &stack
                .get(desk, &queue("awaiting_preparation"))
                .await
                .expect(200)
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        hold_ids(&stack.get(desk, &queue("ready")).await.expect(200)),
        ["cc-1"]
    );

    // The customer gives their reference at the desk.
    let found = stack
        .get(desk, "/v1/customers/cust-cc/holds")
        .await
        .expect(200);
    assert_eq!(hold_ids(&found), ["cc-1"]);
    assert_eq!(found.body["holds"][0]["status"], "ready_for_pickup");

    // Handed over: the unit leaves the store; nothing stays reserved.
    let collected = stack
        .post_empty(desk, "/v1/holds/cc-1/collected")
        .await
        .expect(200);
    assert_eq!(collected.body["hold"]["status"], "collected");
    let q = stack.quantities(sku, "store-1").await;
    assert_eq!(
        (
            q["on_hand"].as_i64(),
            q["reserved"].as_i64(),
            q["committed"].as_i64(),
            q["available"].as_i64()
        ),
        (Some(3), Some(0), Some(0), Some(3))
    );
    assert_eq!(
        hold_ids(&stack.get(desk, &queue("ready")).await.expect(200)),
        Vec::<String>::new()
    );
    assert_eq!(
        hold_ids(&stack.get(desk, &queue("collected")).await.expect(200)),
        ["cc-1"]
    );

    // No-show: prepared, never collected; the units are sellable again.
    stack
        .hold(
            web,
            &hold_request("cc-2", sku, "store-1", 2, "click_and_collect", "cust-cc"),
        )
        .await
        .expect(201);
    stack
        .post_empty(desk, "/v1/holds/cc-2/ready")
        .await
        .expect(200);
    let no_show = stack
        .post_empty(desk, "/v1/holds/cc-2/no-show")
        .await
        .expect(200);
    assert_eq!(no_show.body["hold"]["status"], "no_show");
    let q = stack.quantities(sku, "store-1").await;
    assert_eq!(
        (
            q["on_hand"].as_i64(),
            q["reserved"].as_i64(),
            q["available"].as_i64()
        ),
        (Some(3), Some(0), Some(3))
    );
    assert_eq!(
        hold_ids(&stack.get(desk, &queue("no_show")).await.expect(200)),
        ["cc-2"]
    );
    stack
        .post_empty(desk, "/v1/holds/cc-2/collected")
        .await
        .expect_problem(409, "rejected")
        .expect_code("hold_closed");

    // Expiring soon: unpaid holds within the horizon (default 60 minutes).
    stack
        .hold(
            web,
            &hold_request("cc-3", sku, "store-1", 1, "click_and_collect", "cust-cc"),
        )
        .await
        .expect(201); // ttl 900 s
    assert_eq!(
        hold_ids(&stack.get(desk, &queue("expiring_soon")).await.expect(200)),
        ["cc-3"]
    );
    assert_eq!(
        hold_ids(
            &stack
                .get(
                    desk,
                    &format!("{}&within_minutes=5", queue("expiring_soon"))
                )
                .await
                .expect(200)
        ),
        Vec::<String>::new()
    );

    // The customer's holds, paged.
    let (ids, sizes) = all_pages(&stack, desk, "/v1/customers/cust-cc/holds?page_size=2").await;
    assert_eq!(
        set(&ids.iter().map(String::as_str).collect::<Vec<_>>()),
        set(&["cc-1", "cc-2", "cc-3"])
    );
    assert_eq!((ids.len(), sizes[0]), (3, 2), "{sizes:?}");

    // Reserve in store with a 2 s time-to-live: expired by ticks (no other traffic
    // on its SKU), then a confirm is refused.
    let mut short = hold_request("rs-1", sku, "store-1", 1, "reserve_in_store", "cust-rs");
    short["ttl_seconds"] = json!(2);
    stack.hold(web, &short).await.expect(201);
    assert_eq!(stack.quantities(sku, "store-1").await["reserved"], 2);
    let expired = stack
        .poll(desk, "/v1/holds/rs-1", Duration::from_secs(15), |a| {
            a.body["hold"]["status"] == "expired"
        })
        .await
        .expect(200);
    assert_eq!(
        expired.body["hold"]["status"], "expired",
        "expired by ticks within 15 s"
    );
    assert_eq!(stack.quantities(sku, "store-1").await["reserved"], 1);
    stack
        .post_empty(web, "/v1/holds/rs-1/confirm")
        .await
        .expect_problem(409, "rejected")
        .expect_code("hold_expired");
    // The audit trail names the expiry.
    let history = stack
        .get(
            desk,
            &format!("/v1/skus/{sku}/history?location=store-1&page_size=100"),
        )
        .await
        .expect(200);
    let expiry: Vec<&Value> = history.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["cause"] == "hold_expired")
        .collect();
    assert_eq!(expiry.len(), 1, "{}", history.text);
    assert_eq!(expiry[0]["hold_id"], "rs-1");
    assert_eq!(expiry[0]["before"]["reserved"], 2);
    assert_eq!(expiry[0]["after"]["reserved"], 1);
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Ingest, outcomes, read-your-writes.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_item_by_item_and_reads_see_their_writes() {
    // Ingest answers on the broker's acknowledgement, before the projector has
    // applied the events: reads need `wait_for` to see them.
    let stack = HttpStack::start_with(StackOptions {
        http: HttpSettings {
            ack_after_applied: Some(false),
            ..HttpSettings::default()
        },
        ..StackOptions::default()
    })
    .await;
    stack.seed(&Seed::standard()).await;
    let admin = &stack.tokens.admin;

    // A mixed batch: bad items are answered with their problem and not written;
    // they do not block the good ones.
    let mut unknown_field = received("IN-BAD", "store-1", 1);
    unknown_field["colour"] = json!("red");
    let mut string_quantity = received("IN-BAD", "store-1", 1);
    string_quantity["payload"]["stock_received"]["quantity"] = json!("two");
    let mut spaced = received("IN-BAD", "store-1", 1);
    spaced["location"] = json!("store 1");
    let batch = [
        received("IN-1", "store-1", 5),
        received("IN-1", "store-2", -1),
        unknown_field,
        string_quantity,
        received("IN-1", "wh-1", 2),
        event("system", None, None, None, json!({"tick": {}})),
        spaced,
        json!("not an event"),
    ];
    let answer = stack.ingest(admin, &batch).await.expect(200);
    assert_eq!(answer.body["accepted"], 2, "{}", answer.text);
    assert_eq!(answer.body["rejected"], 6, "{}", answer.text);
    let items = answer.body["items"].as_array().expect("items");
    assert_eq!(items.len(), batch.len());
    // Per item: accepted, or rejected with (status, problem type, field).
    type Refusal = (u16, &'static str, Option<&'static str>);
    let expected: [(&str, Option<Refusal>); 8] = [
        ("accepted", None),
        (
            "rejected",
            Some((422, "invalid-event", Some("payload.quantity"))),
        ),
        ("rejected", Some((400, "malformed-json", Some("colour")))),
        (
            "rejected",
            Some((
                400,
                "malformed-json",
                Some("payload.stock_received.quantity"),
            )),
        ),
        ("accepted", None),
        ("rejected", Some((403, "forbidden", None))),
        ("rejected", Some((400, "malformed-json", Some("location")))),
        ("rejected", Some((400, "malformed-json", Some(".")))),
    ];
    for (index, (item, (status, problem))) in items.iter().zip(expected).enumerate() {
        assert_eq!(item["index"], index);
        assert_eq!(item["status"], status, "item {index}: {item}");
        match problem {
            None => {
                assert!(item.get("error").is_none());
                assert_eq!(item["tokens"].as_array().map(Vec::len), Some(1), "{item}");
                assert_eq!(item["event_id"], batch[index]["event_id"]);
            }
            Some((code, problem_type, field)) => {
                let error = &item["error"];
                assert_eq!(error["status"], code, "item {index}: {item}");
                assert_eq!(
                    error["type"],
                    format!("{}{problem_type}", support::http::PROBLEM_BASE),
                    "item {index}: {item}"
                );
                assert_eq!(error["field"].as_str(), field, "item {index}: {item}");
                assert!(item.get("tokens").is_none(), "nothing written: {item}");
            }
        }
    }
    assert_eq!(items[1]["error"]["code"], "out_of_range");
    assert_eq!(items[1]["event_id"], batch[1]["event_id"]);

    // Read-your-writes: a read carrying `wait_for` reflects the batch. The bad
    // items wrote nothing (store-2 has no stock of IN-1; IN-BAD does not exist).
    let wait_for = answer.body["wait_for"]
        .as_str()
        .expect("wait_for")
        .to_owned();
    assert!(!wait_for.is_empty());
    let read = stack
        .get(
            &stack.tokens.analyst,
            &format!("/v1/skus/IN-1/availability?wait_for={wait_for}&wait_ms=5000"),
        )
        .await
        .expect(200);
    assert_eq!(read.body["total_available"], 7);
    let at: Vec<&str> = read.body["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| l["location"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(at, ["store-1", "wh-1"]);
    // The position answered covers the write, in the body and the header.
    for token in wait_for.split(',') {
        let (partition, offset) = token.split_once(':').expect("P:O");
        let offset: u64 = offset.parse().expect("offset");
        assert!(
            read.body["position"][partition].as_u64() > Some(offset),
            "{}",
            read.text
        );
        let header = read.headers["stockline-position"].to_str().expect("ascii");
        let next: u64 = header
            .split(',')
            .find_map(|p| p.strip_prefix(&format!("{partition}:")))
            .and_then(|n| n.parse().ok())
            .expect("partition in Stockline-Position");
        assert!(next > offset, "{header} covers {token}");
    }
    stack
        .get(&stack.tokens.analyst, "/v1/skus/IN-BAD/availability")
        .await
        .expect_problem(404, "unknown-sku");
    // A position the log has not reached: 503 wait-timeout, with the positions.
    let timeout = stack
        .get(
            &stack.tokens.analyst,
            "/v1/skus/IN-1/availability?wait_for=0:999999999&wait_ms=200",
        )
        .await
        .expect_problem(503, "wait-timeout");
    assert_eq!(
        timeout.headers.get(RETRY_AFTER),
        Some(&HeaderValue::from_static("1"))
    );
    assert!(
        timeout.body["context"]["position"].is_object(),
        "{}",
        timeout.text
    );

    // Outcomes by token: applied, rejected by the fold, repeated, dead-lettered,
    // not yet applied.
    let token_of = |answer: &Answer, index: usize| -> String {
        answer.body["items"][index]["tokens"][0]
            .as_str()
            .unwrap_or_else(|| panic!("item {index} has a token: {}", answer.text))
            .to_owned()
    };
    let outcome_as = |caller: &str, token: String| {
        let stack = &stack;
        let caller = caller.to_owned();
        async move {
            let (partition, offset) = token.split_once(':').expect("P:O");
            stack
                .get(&caller, &format!("/v1/outcomes/{partition}/{offset}"))
                .await
        }
    };
    let analyst = stack.tokens.analyst.clone();
    let outcome = |token: String| {
        let outcome_as = &outcome_as;
        let analyst = &analyst;
        async move { outcome_as(analyst, token).await.expect(200) }
    };
    let applied = outcome(token_of(&answer, 0)).await;
    assert_eq!(applied.body["outcome"], "applied", "{}", applied.text);
    assert_eq!(applied.body["token"], token_of(&answer, 0));
    // An outcome is for the event's own channel, the desk of its location,
    // analysts and admins: item 0 is the warehouse system's receipt at store-1,
    // item 4 its receipt at wh-1.
    let tokens = &stack.tokens;
    for (caller, token, status) in [
        (&tokens.admin, token_of(&answer, 0), 200),
        (&tokens.store1, token_of(&answer, 0), 200),
        (&tokens.store1, token_of(&answer, 4), 403),
        (&tokens.web, token_of(&answer, 0), 403),
        (&tokens.marketplace, token_of(&answer, 4), 403),
        // Nothing applied there yet: `pending` tells nothing about anyone.
        (&tokens.web, "0:999999999".to_owned(), 200),
    ] {
        let answer = outcome_as(caller, token).await;
        if status == 403 {
            answer.expect_problem(403, "forbidden");
        } else {
            answer.expect(status);
        }
    }
    let repeated_event = received("IN-2", "store-1", 1);
    let confirm_unknown = event(
        "admin",
        None,
        Some("IN-2"),
        None,
        json!({"hold_confirmed": {"hold_id": "no-such-hold"}}),
    );
    let not_damaged = event(
        "wms",
        Some("store-1"),
        Some("IN-2"),
        None,
        json!({"stock_state_changed": {"quantity": 5, "from": "damaged", "to": "sellable"}}),
    );
    let second = stack
        .ingest(
            admin,
            &[
                repeated_event.clone(),
                repeated_event.clone(),
                confirm_unknown,
                not_damaged,
            ],
        )
        .await
        .expect(200);
    assert_eq!(second.body["accepted"], 4, "{}", second.text);
    stack
        .wait_for(second.body["wait_for"].as_str().expect("wait_for"))
        .await;
    let first = outcome(token_of(&second, 0)).await;
    assert_eq!(first.body["outcome"], "applied", "{}", first.text);
    let duplicate = outcome(token_of(&second, 1)).await;
    assert_eq!(duplicate.body["outcome"], "duplicate", "{}", duplicate.text);
    let rejected = outcome(token_of(&second, 2)).await;
    assert_eq!(
        (
            rejected.body["outcome"].as_str(),
            rejected.body["code"].as_str()
        ),
        (Some("rejected"), Some("unknown_hold")),
        "{}",
        rejected.text
    );
    let dead = outcome(token_of(&second, 3)).await;
    assert_eq!(
        (dead.body["outcome"].as_str(), dead.body["code"].as_str()),
        (Some("dead_lettered"), Some("not_enough_in_state")),
        "{}",
        dead.text
    );
    let pending = outcome("0:999999999".to_owned()).await;
    assert_eq!(pending.body["outcome"], "pending");
    assert_eq!(
        stack.quantities("IN-2", "store-1").await["on_hand"],
        1,
        "the repeated event applied once"
    );
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// History.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_filters_by_location_and_time_and_pages() {
    let stack = HttpStack::start().await;
    let sku = "HI-1";
    stack.seed(&Seed::standard()).await;
    // Two batches far enough apart in log time for a time filter between them.
    let first: Vec<Value> = (0..4)
        .map(|_| received(sku, "store-1", 1))
        .chain([received(sku, "store-2", 3)])
        .collect();
    stack.ingest_ok(&first).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second: Vec<Value> = (0..2)
        .map(|_| received(sku, "store-1", 2))
        .chain([received(sku, "store-2", 1)])
        .collect();
    let wait_for = stack.ingest_ok(&second).await;

    let analyst = &stack.tokens.analyst;
    let all = stack
        .get(
            analyst,
            &format!("/v1/skus/{sku}/history?wait_for={wait_for}"),
        )
        .await
        .expect(200);
    let entries = all.body["entries"].as_array().expect("entries").clone();
    assert_eq!(entries.len(), 8, "{}", all.text);
    assert!(all.body.get("next_cursor").is_none());
    let offsets: Vec<u64> = entries
        .iter()
        .map(|e| e["offset"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "log order: {offsets:?}"
    );
    for entry in &entries {
        assert_eq!(entry["cause"], "stock_received");
        assert_eq!(entry["channel"], "wms");
        assert!(entry["event_id"].is_string());
    }
    let deltas: Vec<(String, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["location"].as_str().unwrap_or("").to_owned(),
                e["after"]["on_hand"].as_i64().unwrap_or(0)
                    - e["before"]["on_hand"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, i64)> = [
        ("store-1", 1),
        ("store-1", 1),
        ("store-1", 1),
        ("store-1", 1),
        ("store-2", 3),
        ("store-1", 2),
        ("store-1", 2),
        ("store-2", 1),
    ]
    .iter()
    .map(|(l, d)| ((*l).to_owned(), *d))
    .collect();
    assert_eq!(deltas, expected, "each receipt, before and after");
    let last = &entries[7];
    assert_eq!(
        (last["location"].as_str(), last["after"]["on_hand"].as_i64()),
        (Some("store-2"), Some(4))
    );

    // By location.
    let store2 = stack
        .get(analyst, &format!("/v1/skus/{sku}/history?location=store-2"))
        .await
        .expect(200);
    let store2_entries = store2.body["entries"].as_array().expect("entries");
    assert_eq!(store2_entries.len(), 2);
    assert!(store2_entries.iter().all(|e| e["location"] == "store-2"));

    // By time: from the second batch's first log time (inclusive), and before it.
    let boundary = entries[5]["log_time"]
        .as_str()
        .expect("log time")
        .to_owned();
    assert!(
        entries[4]["log_time"].as_str() < Some(boundary.as_str()),
        "batches apart in log time"
    );
    let later = stack
        .get(analyst, &format!("/v1/skus/{sku}/history?from={boundary}"))
        .await
        .expect(200);
    assert_eq!(
        later.body["entries"].as_array().map(Vec::len),
        Some(3),
        "{}",
        later.text
    );
    let earlier = stack
        .get(analyst, &format!("/v1/skus/{sku}/history?to={boundary}"))
        .await
        .expect(200);
    assert_eq!(earlier.body["entries"].as_array().map(Vec::len), Some(5));
    let window = stack
        .get(
            analyst,
            &format!(
                "/v1/skus/{sku}/history?from={boundary}&to=2999-01-01T00:00:00Z&location=store-1"
            ),
        )
        .await
        .expect(200);
    assert_eq!(window.body["entries"].as_array().map(Vec::len), Some(2));

    // Paged: 3 + 3 + 2, the same entries in the same order.
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut path = format!("/v1/skus/{sku}/history?page_size=3");
    for _ in 0..10 {
        let page = stack.get(analyst, &path).await.expect(200);
        let page_entries = page.body["entries"].as_array().expect("entries").clone();
        sizes.push(page_entries.len());
        paged.extend(page_entries);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/skus/{sku}/history?page_size=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 2]);
    assert_eq!(paged, entries);

    // The store desk reads its own location's history.
    let desk = stack
        .get(
            &stack.tokens.store1,
            &format!("/v1/skus/{sku}/history?location=store-1"),
        )
        .await
        .expect(200);
    assert_eq!(desk.body["entries"].as_array().map(Vec::len), Some(6));
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Roles.
// ---------------------------------------------------------------------------------

const ROLES_SKU: &str = "RO-1";

/// A stack with 5 units of `RO-1` at every location and three holds: web's click &
/// collect at store-1 (`ro-web`) and at store-2 (`ro-s2`), and marketplace's
/// checkout at wh-1 (`ro-mkt`).
async fn roles_stack() -> HttpStack {
    let stack = HttpStack::start().await;
    stack
        .seed(
            &Seed::standard()
                .with_stock(ROLES_SKU, "store-1", 5)
                .with_stock(ROLES_SKU, "store-2", 5)
                .with_stock(ROLES_SKU, "wh-1", 5),
        )
        .await;
    for (token, hold_id, location, kind) in [
        (&stack.tokens.web, "ro-web", "store-1", "click_and_collect"),
        (&stack.tokens.web, "ro-s2", "store-2", "click_and_collect"),
        (&stack.tokens.marketplace, "ro-mkt", "wh-1", "checkout"),
    ] {
        stack
            .hold(
                token,
                &hold_request(hold_id, ROLES_SKU, location, 1, kind, "cust-ro"),
            )
            .await
            .expect(201);
    }
    stack
}

/// Asserts that ingest answered every item with this refusal, writing nothing.
#[track_caller]
fn refused_as(answer: Answer, status: u16, problem: &str) {
    let answer = answer.expect(200);
    assert_eq!(answer.body["accepted"], 0, "{}", answer.text);
    assert_eq!(answer.body["wait_for"], "", "{}", answer.text);
    for item in answer.body["items"].as_array().expect("items") {
        assert_eq!(item["status"], "rejected", "{item}");
        assert_eq!(item["error"]["status"], status, "{item}");
        assert_eq!(
            item["error"]["type"],
            format!("{}{problem}", support::http::PROBLEM_BASE),
            "{item}"
        );
    }
}

#[track_caller]
fn refused(answer: Answer) {
    refused_as(answer, 403, "forbidden");
}

/// A hold action event (`hold_confirmed`, `hold_collected`...) on `RO-1`.
fn hold_event(channel: &str, location: Option<&str>, payload: &str, hold_id: &str) -> Value {
    event(
        channel,
        location,
        Some(ROLES_SKU),
        None,
        json!({payload: {"hold_id": hold_id}}),
    )
}

/// The status and confirmation of a hold, as the analyst sees it.
async fn hold_state(stack: &HttpStack, hold_id: &str) -> (String, bool) {
    let hold = stack
        .get(&stack.tokens.analyst, &format!("/v1/holds/{hold_id}"))
        .await
        .expect(200);
    (
        hold.body["hold"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        hold.body["hold"]["confirmed"].as_bool().unwrap_or(true),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_get_401_analysts_only_read_and_only_admins_configure() {
    let stack = roles_stack().await;
    let t = stack.tokens.clone();

    // Missing, unknown or malformed credentials: 401 with a Bearer challenge.
    for (authorization, method, path) in [
        (None, Method::GET, "/v1/skus/RO-1/availability"),
        (
            Some("Bearer sl_not-a-token".to_owned()),
            Method::GET,
            "/v1/skus/RO-1/availability",
        ),
        (
            Some(format!("Basic {}", t.admin)),
            Method::GET,
            "/v1/holds/ro-web",
        ),
        (Some("Bearer".to_owned()), Method::GET, "/v1/outcomes/0/0"),
        (
            Some(format!("Bearer {}x", t.admin)),
            Method::POST,
            "/v1/holds/ro-web/release",
        ),
        (None, Method::POST, "/v1/events"),
        (None, Method::POST, "/v1/holds"),
    ] {
        let mut request = stack.request(method, "", path);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let answer = Answer::of(request)
            .await
            .expect_problem(401, "unauthorized");
        assert_eq!(
            answer.headers.get(WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
    }

    // The analyst reads everything and writes nothing.
    for path in [
        "/v1/holds/ro-mkt",
        "/v1/locations/store-2/pickups?status=awaiting_preparation",
        "/v1/skus/RO-1/history",
        "/v1/customers/cust-ro/holds",
    ] {
        stack.get(&t.analyst, path).await.expect(200);
    }
    refused(
        stack
            .ingest(&t.analyst, &[received(ROLES_SKU, "store-1", 1)])
            .await,
    );
    let mut hold = hold_request("ro-an", ROLES_SKU, "store-1", 1, "checkout", "c");
    hold["channel"] = json!("web");
    stack
        .hold(&t.analyst, &hold)
        .await
        .expect_problem(403, "forbidden");
    for action in [
        "confirm",
        "release",
        "ready",
        "collected",
        "no-show",
        "shipped",
    ] {
        stack
            .post_empty(&t.analyst, &format!("/v1/holds/ro-web/{action}"))
            .await
            .expect_problem(403, "forbidden");
    }

    // Nobody publishes ticks, not even an admin; only an admin configures.
    let tick = event("system", None, None, None, json!({"tick": {}}));
    let configuration = [
        support::http::location_defined(&support::http::LocationSeed {
            id: "store-9".to_owned(),
            kind: "store".to_owned(),
            groups: vec![],
        }),
        support::http::channel_defined(&support::http::ChannelSeed {
            id: "web".to_owned(),
            groups: vec!["stores".to_owned()],
            buffer: 0,
        }),
        event(
            "web",
            Some("store-1"),
            Some(ROLES_SKU),
            None,
            json!({"allocation_set": {"channel": "web", "quantity": 5}}),
        ),
        event(
            "store",
            Some("store-1"),
            Some(ROLES_SKU),
            None,
            json!({"safety_stock_set": {"quantity": 5}}),
        ),
    ];
    refused(stack.ingest(&t.admin, std::slice::from_ref(&tick)).await);
    for token in [&t.web, &t.marketplace, &t.store1] {
        refused(stack.ingest(token, std::slice::from_ref(&tick)).await);
        refused(stack.ingest(token, &configuration).await);
    }

    // Nothing refused was written.
    assert_eq!(
        hold_state(&stack, "ro-web").await,
        ("held".to_owned(), false)
    );
    let q = stack.quantities(ROLES_SKU, "store-1").await;
    assert_eq!(
        (
            q["on_hand"].as_i64(),
            q["safety_stock"].as_i64(),
            q["reserved"].as_i64()
        ),
        (Some(5), Some(0), Some(1))
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_writes_as_itself_and_acts_on_its_own_holds_only() {
    let stack = roles_stack().await;
    let t = stack.tokens.clone();
    let till_sale = |channel: &str| {
        event(
            channel,
            Some("store-1"),
            Some(ROLES_SKU),
            None,
            json!({"till_sale": {"quantity": 1, "price": null}}),
        )
    };

    // Events and holds as its own channel only.
    refused(stack.ingest(&t.web, &[till_sale("marketplace")]).await);
    let mut as_marketplace = hold_request("ro-as-mkt", ROLES_SKU, "store-1", 1, "checkout", "c");
    as_marketplace["channel"] = json!("marketplace");
    stack
        .hold(&t.web, &as_marketplace)
        .await
        .expect_problem(403, "forbidden");

    // Another channel's holds are unknown to it: not readable, not actionable, not
    // even through ingest, and not in lookups.
    stack
        .get(&t.web, "/v1/holds/ro-mkt")
        .await
        .expect_problem(404, "unknown-hold");
    for action in ["confirm", "release", "shipped"] {
        stack
            .post_empty(&t.web, &format!("/v1/holds/ro-mkt/{action}"))
            .await
            .expect_problem(404, "unknown-hold");
    }
    for payload in ["hold_confirmed", "hold_released", "hold_shipped"] {
        refused_as(
            stack
                .ingest(&t.web, &[hold_event("web", None, payload, "ro-mkt")])
                .await,
            404,
            "unknown-hold",
        );
    }
    let lookup = stack
        .get(&t.web, "/v1/customers/cust-ro/holds")
        .await
        .expect(200);
    assert_eq!(
        hold_ids(&lookup).into_iter().collect::<BTreeSet<_>>(),
        set(&["ro-web", "ro-s2"])
    );
    // Reusing another channel's hold id is a conflict that reveals nothing of it.
    let reuse = stack
        .hold(
            &t.web,
            &hold_request("ro-mkt", ROLES_SKU, "wh-1", 1, "checkout", "c"),
        )
        .await
        .expect_problem(409, "conflict");
    assert!(reuse.body.get("context").is_none(), "{}", reuse.text);

    // Desk actions are the stores', whichever way they are sent.
    for (action, payload) in [
        ("ready", "hold_ready_for_pickup"),
        ("collected", "hold_collected"),
        ("no-show", "hold_no_show"),
    ] {
        stack
            .post_empty(&t.web, &format!("/v1/holds/ro-web/{action}"))
            .await
            .expect_problem(403, "forbidden");
        refused(
            stack
                .ingest(&t.web, &[hold_event("web", None, payload, "ro-web")])
                .await,
        );
    }

    // Store queues and histories are not a channel's business.
    for path in [
        "/v1/locations/store-1/pickups?status=ready",
        "/v1/skus/RO-1/history",
        "/v1/skus/RO-1/history?location=store-1",
    ] {
        for token in [&t.web, &t.marketplace] {
            stack
                .get(token, path)
                .await
                .expect_problem(403, "forbidden");
        }
    }

    // What it may do: sell as itself, confirm its own hold, through either door.
    let own = stack.ingest(&t.web, &[till_sale("web")]).await.expect(200);
    assert_eq!(own.body["accepted"], 1, "{}", own.text);
    let confirmed = stack
        .ingest(
            &t.web,
            &[hold_event("web", None, "hold_confirmed", "ro-s2")],
        )
        .await
        .expect(200);
    assert_eq!(confirmed.body["accepted"], 1, "{}", confirmed.text);
    stack
        .wait_for(confirmed.body["wait_for"].as_str().expect("wait_for"))
        .await;
    assert_eq!(hold_state(&stack, "ro-s2").await, ("held".to_owned(), true));
    stack
        .post_empty(&t.marketplace, "/v1/holds/ro-mkt/confirm")
        .await
        .expect(200);

    // Nothing refused was written: web's pickup is not ready, marketplace's hold
    // was confirmed by marketplace only.
    assert_eq!(
        hold_state(&stack, "ro-web").await,
        ("held".to_owned(), false)
    );
    assert_eq!(stack.quantities(ROLES_SKU, "store-1").await["on_hand"], 4);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_desk_reads_and_acts_at_its_own_locations_only() {
    let stack = roles_stack().await;
    let t = stack.tokens.clone();

    // Another store's queues, history and holds.
    stack
        .get(
            &t.store1,
            "/v1/locations/store-2/pickups?status=awaiting_preparation",
        )
        .await
        .expect_problem(403, "forbidden");
    stack
        .get(&t.store1, "/v1/skus/RO-1/history?location=store-2")
        .await
        .expect_problem(403, "forbidden");
    stack
        .get(&t.store1, "/v1/skus/RO-1/history")
        .await
        .expect_problem(403, "forbidden");
    stack
        .get(&t.store1, "/v1/holds/ro-s2")
        .await
        .expect_problem(404, "unknown-hold");
    for action in ["ready", "collected", "no-show", "release", "confirm"] {
        stack
            .post_empty(&t.store1, &format!("/v1/holds/ro-s2/{action}"))
            .await
            .expect_problem(404, "unknown-hold");
    }
    refused_as(
        stack
            .ingest(
                &t.store1,
                &[hold_event(
                    "store",
                    Some("store-1"),
                    "hold_released",
                    "ro-s2",
                )],
            )
            .await,
        404,
        "unknown-hold",
    );
    refused(
        stack
            .ingest(
                &t.store1,
                &[hold_event(
                    "store",
                    Some("store-2"),
                    "hold_released",
                    "ro-s2",
                )],
            )
            .await,
    );
    refused(
        stack
            .ingest(&t.store1, &[received(ROLES_SKU, "store-2", 1)])
            .await,
    );
    let mut at_store2 = hold_request("ro-st2", ROLES_SKU, "store-2", 1, "reserve_in_store", "c");
    at_store2["channel"] = json!("web");
    stack
        .hold(&t.store1, &at_store2)
        .await
        .expect_problem(403, "forbidden");
    let customer = stack
        .get(&t.store1, "/v1/customers/cust-ro/holds")
        .await
        .expect(200);
    assert_eq!(
        hold_ids(&customer),
        ["ro-web"],
        "only its own location's holds"
    );

    // The same at store-1 is its job.
    stack
        .get(
            &t.store1,
            "/v1/locations/store-1/pickups?status=awaiting_preparation",
        )
        .await
        .expect(200);
    stack
        .get(&t.store1, "/v1/skus/RO-1/history?location=store-1")
        .await
        .expect(200);
    stack.get(&t.store1, "/v1/holds/ro-web").await.expect(200);
    stack
        .post_empty(&t.store1, "/v1/holds/ro-web/ready")
        .await
        .expect(200);
    let mut at_store1 = hold_request("ro-st1", ROLES_SKU, "store-1", 1, "reserve_in_store", "c");
    at_store1["channel"] = json!("web");
    stack.hold(&t.store1, &at_store1).await.expect(201);
    let own = stack
        .ingest(&t.store1, &[received(ROLES_SKU, "store-1", 1)])
        .await
        .expect(200);
    assert_eq!(own.body["accepted"], 1, "{}", own.text);
    stack
        .wait_for(own.body["wait_for"].as_str().expect("wait_for"))
        .await;

    // Nothing refused was written.
    assert_eq!(
        hold_state(&stack, "ro-s2").await,
        ("held".to_owned(), false)
    );
    assert_eq!(stack.quantities(ROLES_SKU, "store-2").await["on_hand"], 5);
    assert_eq!(
        hold_state(&stack, "ro-web").await,
        ("ready_for_pickup".to_owned(), false)
    );
    assert_eq!(stack.quantities(ROLES_SKU, "store-1").await["on_hand"], 6);
    stack.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Bad inputs.
// ---------------------------------------------------------------------------------

/// One bad request and the answer it must get.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    status: u16,
    problem: &'static str,
    field: Option<&'static str>,
    code: Option<&'static str>,
}

impl Case {
    fn get(name: &'static str, path: impl Into<String>) -> Case {
        Case {
            name,
            method: Method::GET,
            path: path.into(),
            content_type: None,
            body: None,
            status: 0,
            problem: "",
            field: None,
            code: None,
        }
    }

    fn post(name: &'static str, path: impl Into<String>, body: &Value) -> Case {
        Case::raw(
            name,
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    fn raw(
        name: &'static str,
        method: Method,
        path: impl Into<String>,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    ) -> Case {
        Case {
            method,
            content_type,
            body: Some(body),
            ..Case::get(name, path)
        }
    }

    fn answers(mut self, status: u16, problem: &'static str) -> Case {
        self.status = status;
        self.problem = problem;
        self
    }

    fn field(mut self, field: &'static str) -> Case {
        self.field = Some(field);
        self
    }

    fn code(mut self, code: &'static str) -> Case {
        self.code = Some(code);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_answered_with_the_right_4xx() {
    let stack = HttpStack::start().await;
    let sku = "BI-1";
    stack
        .seed(&Seed::standard().with_stock(sku, "store-1", 3))
        .await;
    let settings = HttpSettings::default();
    // Admin requests holds naming the channel.
    let mut good_hold = hold_request("bi-1", sku, "store-1", 1, "checkout", "cust-bi");
    good_hold["channel"] = json!("web");
    let without_channel = {
        let mut body = good_hold.clone();
        body.as_object_mut().map(|o| o.remove("channel"));
        body
    };
    let with = |field: &str, value: Value| {
        let mut body = good_hold.clone();
        body[field] = value;
        body
    };
    let oversize = {
        let mut body = b"{\"hold_id\":\"".to_vec();
        body.resize(settings.body_bytes_max + 10, b'a');
        body.extend_from_slice(b"\"}");
        body
    };
    let oversize_batch = {
        let mut body = b"[\"".to_vec();
        body.resize(settings.body_bytes_max + 10, b'a');
        body.extend_from_slice(b"\"]");
        body
    };
    let batch_over_limit = Value::Array(vec![json!({}); settings.batch_events_max + 1]);
    let json_ct = Some("application/json");
    let cases = vec![
        // Bodies.
        Case::raw(
            "malformed JSON",
            Method::POST,
            "/v1/holds",
            json_ct,
            b"{\"hold_id\":".to_vec(),
        )
        .answers(400, "malformed-json"),
        Case::raw("empty body", Method::POST, "/v1/holds", json_ct, Vec::new())
            .answers(400, "malformed-json"),
        Case::raw(
            "malformed JSON batch",
            Method::POST,
            "/v1/events",
            json_ct,
            b"[{".to_vec(),
        )
        .answers(400, "malformed-json"),
        Case::post(
            "a batch that is not an array",
            "/v1/events",
            &json!({"events": []}),
        )
        .answers(400, "malformed-json"),
        Case::raw(
            "wrong content type",
            Method::POST,
            "/v1/holds",
            Some("text/plain"),
            good_hold.to_string().into_bytes(),
        )
        .answers(415, "unsupported-media-type"),
        Case::raw(
            "no content type",
            Method::POST,
            "/v1/events",
            None,
            b"[]".to_vec(),
        )
        .answers(415, "unsupported-media-type"),
        Case::raw(
            "form content type",
            Method::POST,
            "/v1/availability",
            Some("application/x-www-form-urlencoded"),
            b"skus=A".to_vec(),
        )
        .answers(415, "unsupported-media-type"),
        Case::post("unknown field", "/v1/holds", &with("colour", json!("red")))
            .answers(400, "malformed-json")
            .field("colour"),
        Case::post(
            "string quantity",
            "/v1/holds",
            &with("quantity", json!("two")),
        )
        .answers(400, "malformed-json")
        .field("quantity"),
        Case::post("missing field", "/v1/holds", &json!({"hold_id": "bi-x"}))
            .answers(400, "malformed-json"),
        Case::post(
            "unknown hold kind",
            "/v1/holds",
            &with("kind", json!("layaway")),
        )
        .answers(400, "malformed-json")
        .field("kind"),
        Case::post(
            "hold id with a space",
            "/v1/holds",
            &with("hold_id", json!("bi 1")),
        )
        .answers(400, "malformed-json")
        .field("hold_id"),
        Case::post("negative quantity (hold)", "/v1/holds", &{
            let mut body = with("quantity", json!(-1));
            body["hold_id"] = json!("bi-negative");
            body
        })
        .answers(409, "rejected")
        .code("quantity_not_positive"),
        Case::post(
            "location and group",
            "/v1/holds",
            &with("group", json!("paris")),
        )
        .answers(422, "invalid-event")
        .field("payload.group")
        .code("unexpected_field"),
        Case::post(
            "neither location nor group",
            "/v1/holds",
            &with("location", Value::Null),
        )
        .answers(422, "invalid-event")
        .field("location")
        .code("missing_field"),
        Case::post(
            "hold without a channel (admin)",
            "/v1/holds",
            &without_channel,
        )
        .answers(400, "invalid-parameter")
        .field("channel"),
        Case::post(
            "string sku list",
            "/v1/availability",
            &json!({"skus": "BI-1"}),
        )
        .answers(400, "malformed-json")
        .field("skus"),
        Case::post(
            "sku with a space (batch)",
            "/v1/availability",
            &json!({"skus": ["BI 1"]}),
        )
        .answers(400, "invalid-parameter")
        .field("sku"),
        Case::raw(
            "oversize body",
            Method::POST,
            "/v1/holds",
            json_ct,
            oversize,
        )
        .answers(413, "body-too-large"),
        Case::raw(
            "oversize batch",
            Method::POST,
            "/v1/events",
            json_ct,
            oversize_batch,
        )
        .answers(413, "body-too-large"),
        Case::post("batch over the limit", "/v1/events", &batch_over_limit)
            .answers(413, "too-many-items")
            .field("."),
        // Paths and query strings.
        Case::get("invalid UTF-8 in the path", "/v1/skus/%FF/availability")
            .answers(400, "invalid-parameter")
            .field("sku"),
        Case::get(
            "invalid UTF-8 in a path pair",
            "/v1/channels/web/skus/%C3%28/availability",
        )
        .answers(400, "invalid-parameter")
        .field("sku"),
        Case::get("id with a space", "/v1/skus/BI%201/availability")
            .answers(400, "invalid-parameter")
            .field("sku"),
        Case::get("page_size 0", "/v1/orders/o/holds?page_size=0")
            .answers(400, "invalid-parameter")
            .field("page_size"),
        Case::get(
            "page_size too big",
            format!(
                "/v1/customers/c/holds?page_size={}",
                settings.page_size_max + 1
            ),
        )
        .answers(400, "invalid-parameter")
        .field("page_size"),
        Case::get(
            "page_size not a number",
            "/v1/skus/BI-1/history?page_size=ten",
        )
        .answers(400, "invalid-parameter")
        .field("page_size"),
        Case::get("bad cursor (orders)", "/v1/orders/o/holds?cursor=zz")
            .answers(400, "invalid-parameter")
            .field("cursor"),
        Case::get("bad cursor (customers)", "/v1/customers/c/holds?cursor=abc")
            .answers(400, "invalid-parameter")
            .field("cursor"),
        Case::get(
            "bad cursor (pickups)",
            "/v1/locations/store-1/pickups?status=ready&cursor=xyz1",
        )
        .answers(400, "invalid-parameter")
        .field("cursor"),
        Case::get("bad cursor (history)", "/v1/skus/BI-1/history?cursor=q")
            .answers(400, "invalid-parameter")
            .field("cursor"),
        Case::get("bad wait_for", "/v1/skus/BI-1/availability?wait_for=soon")
            .answers(400, "invalid-parameter")
            .field("wait_for"),
        Case::get("bad wait_for offset", "/v1/holds/bi-x?wait_for=0:x")
            .answers(400, "invalid-parameter")
            .field("wait_for"),
        Case::get(
            "wait_ms too long",
            format!(
                "/v1/skus/BI-1/availability?wait_for=0:0&wait_ms={}",
                settings.wait_ms_max + 1
            ),
        )
        .answers(400, "invalid-parameter")
        .field("wait_ms"),
        Case::get(
            "unknown pickup status",
            "/v1/locations/store-1/pickups?status=lost",
        )
        .answers(400, "invalid-parameter")
        .field("status"),
        Case::get("missing pickup status", "/v1/locations/store-1/pickups")
            .answers(400, "invalid-parameter"),
        Case::get(
            "pickup quantity 0",
            "/v1/skus/BI-1/pickup-options?quantity=0&group=paris",
        )
        .answers(400, "invalid-parameter")
        .field("quantity"),
        Case::get(
            "pickup without group",
            "/v1/skus/BI-1/pickup-options?quantity=1",
        )
        .answers(400, "invalid-parameter"),
        Case::get(
            "history from not an instant",
            "/v1/skus/BI-1/history?from=yesterday",
        )
        .answers(400, "invalid-parameter")
        .field("from"),
        Case::get("outcome partition not a number", "/v1/outcomes/first/0")
            .answers(400, "invalid-parameter")
            .field("partition"),
        Case::get("outcome offset negative", "/v1/outcomes/0/-1")
            .answers(400, "invalid-parameter")
            .field("offset"),
        // Unknown things.
        Case::get("unknown SKU", "/v1/skus/BI-NOPE/availability")
            .answers(404, "unknown-sku")
            .field("sku"),
        Case::get(
            "unknown SKU (channel view)",
            "/v1/channels/web/skus/BI-NOPE/availability",
        )
        .answers(404, "unknown-sku"),
        Case::get(
            "unknown location",
            "/v1/skus/BI-1/locations/store-99/availability",
        )
        .answers(404, "unknown-location")
        .field("location"),
        Case::get(
            "unknown channel view",
            "/v1/channels/kiosk/skus/BI-1/availability",
        )
        .answers(404, "unknown-channel")
        .field("channel"),
        Case::get(
            "unknown group",
            "/v1/skus/BI-1/pickup-options?quantity=1&group=lyon",
        )
        .answers(404, "unknown-group")
        .field("group"),
        Case::get("unknown hold", "/v1/holds/bi-nope")
            .answers(404, "unknown-hold")
            .field("hold_id"),
        Case::raw(
            "unknown hold (action)",
            Method::POST,
            "/v1/holds/bi-nope/confirm",
            None,
            Vec::new(),
        )
        .answers(404, "unknown-hold"),
        Case::get("unknown route", "/v1/stock").answers(404, "no-such-route"),
        Case::raw(
            "wrong method",
            Method::DELETE,
            "/v1/holds/bi-1",
            None,
            Vec::new(),
        )
        .answers(405, "method-not-allowed"),
        Case::raw(
            "wrong method (action)",
            Method::PUT,
            "/v1/holds/bi-1/confirm",
            None,
            Vec::new(),
        )
        .answers(405, "method-not-allowed"),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let mut request = stack.request(case.method.clone(), &stack.tokens.admin, &case.path);
        if let Some(content_type) = case.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        let answer = Answer::of(request).await;
        assert!(answer.status < 500, "{}: a 5xx: {}", case.name, answer.text);
        let mut wrong = Vec::new();
        if (answer.status, answer.problem_type()) != (case.status, case.problem) {
            wrong.push(format!(
                "status and type {} {}",
                answer.status,
                answer.problem_type()
            ));
        }
        if answer.content_type() != "application/problem+json" {
            wrong.push(format!("content type {:?}", answer.content_type()));
        }
        if answer.body["status"] != case.status {
            wrong.push("status in the body".to_owned());
        }
        if case.field.is_some() && answer.body["field"].as_str() != case.field {
            wrong.push(format!("field {}", answer.body["field"]));
        }
        if case.code.is_some() && answer.body["code"].as_str() != case.code {
            wrong.push(format!("code {}", answer.body["code"]));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({} {}): want {} {} field {:?} code {:?}; wrong {}: {}",
                case.name,
                case.method,
                case.path,
                case.status,
                case.problem,
                case.field,
                case.code,
                wrong.join(", "),
                answer.text.chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // None of them wrote anything but the refused hold request (a decision, kept
    // with its reason): the SKU is as seeded, the other hold ids unknown.
    let q = stack.quantities(sku, "store-1").await;
    assert_eq!(
        (q["on_hand"].as_i64(), q["reserved"].as_i64()),
        (Some(3), Some(0))
    );
    stack
        .get(&stack.tokens.admin, "/v1/holds/bi-1")
        .await
        .expect_problem(404, "unknown-hold");
    let negative = stack
        .get(&stack.tokens.admin, "/v1/holds/bi-negative")
        .await
        .expect(200);
    assert_eq!(negative.body["hold"]["status"], "rejected");
    assert_eq!(
        negative.body["hold"]["rejection"]["code"],
        "quantity_not_positive"
    );
    stack.shutdown().await;
}
