//! Webhooks from selling platforms: Shopify and WooCommerce send what happened to
//! their orders, as they send it; the adapters (`stockline-adapters`) translate it
//! into events, which are published like any other.
//!
//! These endpoints authenticate by signature, not bearer token: the body's
//! HMAC-SHA256 under the configured secret, checked in constant time before the
//! body is read as JSON. A missing or wrong signature is a 401 problem and changes
//! nothing.
//!
//! A delivery is answered 200 once its events are published (the platforms retry
//! anything else), after waiting (at most `decision_timeout_ms`, and at most
//! [`WEBHOOK_WAIT_MAX`]) for the projector to apply them, so the answer says what
//! became of each. Event ids are derived
//! from the platform's ids, so a redelivery republishes the same ids, which the
//! fold ignores: the answer then says `duplicate: true`. Parts of a payload that
//! become no event (an unmapped product, a `no_restock` refund line...) are listed
//! under `skipped` with a reason, logged and counted
//! (`stockline_webhook_skipped_total`); fixing the mapping and sending the delivery
//! again applies them, and only them.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stockline_adapters::signature::{self, SignatureError};
use stockline_adapters::{AdapterError, HoldFacts, Lookup, Translation, shopify, woocommerce};
use stockline_domain::{ChannelId, HoldId, LocationId, OrderId, Quantities, Sku};
use stockline_engine::Token;
use stockline_store::Store;
use stockline_store::rows::VerdictRow;
use utoipa::ToSchema;

use crate::error::{ApiError, PROBLEM_BASE, Problem};
use crate::state::AppState;
use crate::views::PositionMap;

/// Longest wait for the projector's verdicts before answering: Shopify gives up on
/// a delivery after 5 s (and retries it), so the answer comes well before, with
/// `published` and the tokens when the verdicts are not known yet.
pub const WEBHOOK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// What the adapters may ask the ledger, answered from the store.
struct StoreLookup<'a>(&'a Store);

impl Lookup for StoreLookup<'_> {
    fn hold(&self, hold_id: &HoldId, sku: &Sku) -> Result<Option<HoldFacts>, String> {
        self.0
            .hold(hold_id, sku)
            .map(|hold| hold.as_ref().map(HoldFacts::from))
            .map_err(|e| e.to_string())
    }

    fn order_channel(&self, order_id: &OrderId) -> Result<Option<ChannelId>, String> {
        self.0
            .holds_by_order(order_id, None, 1, |_| true)
            .map(|page| page.items.first().map(|h| h.channel.clone()))
            .map_err(|e| e.to_string())
    }

    fn quantities(&self, sku: &Sku, location: &LocationId) -> Result<Option<Quantities>, String> {
        self.0
            .quantities_at(sku, location)
            .map_err(|e| e.to_string())
    }
}

/// One event a delivery became, and what the projector made of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEvent {
    pub event_id: String,
    /// The payload kind (`hold_requested`, `till_sale`, `returned`...).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    /// `applied`, `duplicate` (applied before: a redelivery), `rejected` (a refused
    /// decision, `code` says why), `dead_lettered`, or `pending` (not applied
    /// within the wait; look it up with the token).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Consistency token `PARTITION:OFFSET` (see `/v1/outcomes`).
    pub token: String,
}

/// A part of the payload that became no event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSkipped {
    /// `line_item 466157049`, `refund_line_item 104689539`...
    pub item: String,
    /// `unmapped_sku`, `unmapped_location`, `unmapped_pickup`,
    /// `no_fulfilment_location`, `not_stock`, `no_restock`, `no_hold`,
    /// `partial_cancel`, `hold_closed`, `not_fulfilled`, `status_ignored`,
    /// `disabled`, `bad_value`.
    pub code: String,
    pub reason: String,
}

/// The answer to a webhook delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `shopify` or `woocommerce`.
    pub platform: String,
    pub topic: String,
    /// The platform's delivery id (`X-Shopify-Webhook-Id`,
    /// `X-WC-Webhook-Delivery-ID`), as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// `applied` (some events changed the ledger or recorded a decision),
    /// `duplicate` (every event was applied before: a redelivery), `published`
    /// (not all applied within the wait), `ignored` (no event: a topic Stockline
    /// does not apply, a ping, or only skipped parts).
    pub status: String,
    /// Every event was applied before.
    pub duplicate: bool,
    pub events: Vec<WebhookEvent>,
    pub skipped: Vec<WebhookSkipped>,
    /// Applied positions after the delivery (`PARTITION -> next offset`).
    #[schema(value_type = Object)]
    pub position: PositionMap,
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// 401 for a missing or wrong signature (problem+json; no bearer challenge: these
/// endpoints take no token).
fn signature_problem(platform: &str, header_name: &str, error: SignatureError) -> Response {
    let code = match error {
        SignatureError::Missing => "signature_missing",
        SignatureError::Malformed => "signature_malformed",
        SignatureError::Mismatch => "signature_mismatch",
        SignatureError::NoSecret => "not_configured",
    };
    metrics::counter!(
        "stockline_webhook_deliveries_total",
        "platform" => platform.to_owned(),
        "topic" => "unverified",
        "status" => "unauthorized"
    )
    .increment(1);
    tracing::warn!(platform, code, "webhook refused: {error}");
    let problem = Problem {
        problem_type: format!("{PROBLEM_BASE}webhook-signature"),
        title: "Unauthorized".into(),
        status: 401,
        detail: format!("{header_name}: {error}; nothing was applied"),
        field: Some(header_name.to_owned()),
        code: Some(code.to_owned()),
        context: None,
    };
    let mut response = (StatusCode::UNAUTHORIZED, Json(problem)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

async fn read_body(state: &AppState, request: Request) -> Result<(HeaderMap, Vec<u8>), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.settings().body_bytes_max;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { limit_bytes: limit })?;
    Ok((parts.headers, bytes.to_vec()))
}

fn adapter_error(error: AdapterError) -> ApiError {
    match error {
        AdapterError::Malformed { path, message } => ApiError::BadJson { path, message },
        AdapterError::Lookup(message) => ApiError::Unavailable(message),
    }
}

fn token_text(token: &Token) -> String {
    format!("{}:{}", token.partition, token.offset)
}

/// An answer with no events: a topic not applied, a ping.
fn ignored(
    state: &AppState,
    platform: &str,
    topic: &str,
    webhook_id: Option<String>,
) -> Json<WebhookAnswer> {
    metrics::counter!(
        "stockline_webhook_deliveries_total",
        "platform" => platform.to_owned(),
        "topic" => "other",
        "status" => "ignored"
    )
    .increment(1);
    tracing::info!(
        platform,
        topic,
        webhook_id,
        "webhook acknowledged, not applied"
    );
    Json(WebhookAnswer {
        platform: platform.to_owned(),
        topic: topic.to_owned(),
        webhook_id,
        status: "ignored".into(),
        duplicate: false,
        events: Vec::new(),
        skipped: Vec::new(),
        position: state.positions(),
    })
}

/// Publishes a translation, waits for its outcomes, answers.
async fn deliver(
    state: &AppState,
    platform: &'static str,
    topic: &'static str,
    webhook_id: Option<String>,
    mut translation: Translation,
) -> Result<Json<WebhookAnswer>, ApiError> {
    // The adapters make valid events; one that is not (an id the platform sent that
    // Stockline cannot take) is skipped rather than refused whole, so the platform
    // does not retry a delivery that can never apply.
    let mut events = Vec::with_capacity(translation.events.len());
    for event in std::mem::take(&mut translation.events) {
        match event.validate() {
            Ok(()) => events.push(event),
            Err(invalid) => translation.skipped.push(stockline_adapters::Skipped {
                item: format!("event {}", event.event_id),
                code: stockline_adapters::SkipCode::BadValue,
                reason: invalid.to_string(),
            }),
        }
    }
    let results = state.publisher().publish_all(&events).await;
    let mut published: Vec<(stockline_domain::Event, Token)> = Vec::with_capacity(events.len());
    for (event, result) in events.into_iter().zip(results) {
        // Any failure: the platform retries the whole delivery, and the events
        // already published are then duplicates.
        let tokens = result?;
        let [token] = tokens.as_slice() else {
            return Err(ApiError::Internal(format!(
                "event {} went to {} partitions",
                event.event_id,
                tokens.len()
            )));
        };
        published.push((event, *token));
    }
    let tokens: Vec<Token> = published.iter().map(|(_, t)| *t).collect();
    let applied = tokens.is_empty()
        || state
            .wait_for_tokens(&tokens, state.decision_timeout().min(WEBHOOK_WAIT_MAX))
            .await;
    let positions = state.positions();
    let mut answers = Vec::with_capacity(published.len());
    for (event, token) in &published {
        let done = positions
            .get(&token.partition)
            .is_some_and(|next| *next > token.offset);
        let (outcome, code, detail) = if !done {
            ("pending", None, None)
        } else {
            match state.store().verdict_at(token.partition, token.offset)? {
                Some(VerdictRow::Rejected { rejection, .. }) => (
                    "rejected",
                    Some(rejection.code().to_owned()),
                    Some(rejection.to_string()),
                ),
                Some(VerdictRow::Duplicate { .. }) => ("duplicate", None, None),
                None => match state
                    .store()
                    .dead_letter_at(token.partition, token.offset)?
                {
                    Some(dead) => ("dead_lettered", Some(dead.reason_code), Some(dead.reason)),
                    None => ("applied", None, None),
                },
            }
        };
        answers.push(WebhookEvent {
            event_id: event.event_id.to_string(),
            kind: event.payload.kind().name().to_owned(),
            sku: event.sku.as_ref().map(ToString::to_string),
            hold_id: event.payload.hold_id().map(ToString::to_string),
            outcome: outcome.to_owned(),
            code,
            detail,
            token: token_text(token),
        });
    }
    let duplicate = !answers.is_empty() && answers.iter().all(|a| a.outcome == "duplicate");
    let status = if answers.is_empty() {
        "ignored"
    } else if duplicate {
        "duplicate"
    } else if !applied {
        "published"
    } else {
        "applied"
    };
    for skipped in &translation.skipped {
        metrics::counter!(
            "stockline_webhook_skipped_total",
            "platform" => platform,
            "code" => skipped.code.name()
        )
        .increment(1);
    }
    metrics::counter!(
        "stockline_webhook_deliveries_total",
        "platform" => platform,
        "topic" => topic,
        "status" => status
    )
    .increment(1);
    let rejected = answers.iter().filter(|a| a.outcome == "rejected").count();
    if translation.skipped.is_empty() && rejected == 0 {
        tracing::info!(
            platform,
            topic,
            webhook_id,
            status,
            events = answers.len(),
            "webhook"
        );
    } else {
        tracing::warn!(
            platform,
            topic,
            webhook_id,
            status,
            events = answers.len(),
            rejected,
            skipped = ?translation.skipped,
            "webhook applied in part"
        );
    }
    Ok(Json(WebhookAnswer {
        platform: platform.to_owned(),
        topic: topic.to_owned(),
        webhook_id,
        status: status.to_owned(),
        duplicate,
        events: answers,
        skipped: translation
            .skipped
            .into_iter()
            .map(|s| WebhookSkipped {
                item: s.item,
                code: s.code.name().to_owned(),
                reason: s.reason,
            })
            .collect(),
        position: positions,
    }))
}

/// A Shopify webhook (Admin REST API payloads). Signed with the app's client
/// secret (`X-Shopify-Hmac-Sha256`). Applied topics: `orders/create`,
/// `orders/paid`, `orders/cancelled`, `refunds/create`, `fulfillments/create`,
/// `inventory_levels/update`; other topics are acknowledged, counted, and not
/// applied. See docs/adapters.md for what each becomes.
#[utoipa::path(
    post,
    path = "/v1/webhooks/shopify",
    tag = "webhooks",
    params(
        ("X-Shopify-Topic" = String, Header, description = "the webhook topic, e.g. orders/create"),
        ("X-Shopify-Hmac-Sha256" = String, Header, description = "base64 HMAC-SHA256 of the raw body under the app's client secret"),
        ("X-Shopify-Webhook-Id" = Option<String>, Header, description = "the delivery id (the same on every retry)"),
    ),
    request_body(content = Object, description = "the topic's resource (Order, Refund, Fulfillment, InventoryLevel) as Shopify sends it"),
    responses(
        (status = 200, body = WebhookAnswer, description = "published (or nothing to apply); `duplicate` for a redelivery"),
        (status = 400, body = Problem, description = "no topic header, or a body that is not the topic's resource"),
        (status = 401, body = Problem, description = "missing or wrong signature, or [http.shopify] not configured: nothing applied"),
        (status = 503, body = Problem, description = "not published (the broker or the store is unavailable): Shopify retries"),
    )
)]
pub async fn shopify(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    const SIGNATURE: &str = "X-Shopify-Hmac-Sha256";
    let (headers, body) = read_body(&state, request).await?;
    // Not configured: no secret to check any signature with, so every delivery is
    // unauthenticated (401, code `not_configured`).
    let Some(settings) = state.settings().shopify.as_ref() else {
        return Ok(signature_problem(
            "shopify",
            SIGNATURE,
            SignatureError::NoSecret,
        ));
    };
    if let Err(error) = signature::verify(
        settings.client_secret.as_bytes(),
        &body,
        header_text(&headers, SIGNATURE),
    ) {
        return Ok(signature_problem("shopify", SIGNATURE, error));
    }
    let webhook_id = header_text(&headers, "X-Shopify-Webhook-Id").map(str::to_owned);
    let topic_text = header_text(&headers, "X-Shopify-Topic")
        .ok_or_else(|| ApiError::parameter("X-Shopify-Topic", "the topic header is missing"))?;
    let Some(topic) = shopify::Topic::parse(topic_text) else {
        return Ok(ignored(&state, "shopify", topic_text, webhook_id).into_response());
    };
    let translation = shopify::Shopify::new(settings)
        .translate(topic, &body, &StoreLookup(state.store()))
        .map_err(adapter_error)?;
    Ok(
        deliver(&state, "shopify", topic.name(), webhook_id, translation)
            .await?
            .into_response(),
    )
}

/// A WooCommerce webhook: `order.created` and `order.updated` (REST API v3 order
/// payloads), signed with the webhook's secret (`X-WC-Webhook-Signature`). The
/// unsigned ping WooCommerce sends when the webhook is created (`webhook_id=N`) is
/// answered 200 and changes nothing; other topics are acknowledged and not
/// applied.
#[utoipa::path(
    post,
    path = "/v1/webhooks/woocommerce",
    tag = "webhooks",
    params(
        ("X-WC-Webhook-Topic" = String, Header, description = "order.created or order.updated"),
        ("X-WC-Webhook-Signature" = String, Header, description = "base64 HMAC-SHA256 of the raw body under the webhook's secret"),
        ("X-WC-Webhook-Delivery-ID" = Option<String>, Header, description = "the delivery id"),
    ),
    request_body(content = Object, description = "the order as WooCommerce sends it"),
    responses(
        (status = 200, body = WebhookAnswer, description = "published (or nothing to apply); `duplicate` for a redelivery"),
        (status = 400, body = Problem, description = "no topic header, or a body that is not an order"),
        (status = 401, body = Problem, description = "missing or wrong signature, or [http.woocommerce] not configured: nothing applied"),
        (status = 503, body = Problem, description = "not published: WooCommerce retries"),
    )
)]
pub async fn woocommerce(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    const SIGNATURE: &str = "X-WC-Webhook-Signature";
    let (headers, body) = read_body(&state, request).await?;
    let webhook_id = header_text(&headers, "X-WC-Webhook-Delivery-ID").map(str::to_owned);
    let Some(settings) = state.settings().woocommerce.as_ref() else {
        return Ok(signature_problem(
            "woocommerce",
            SIGNATURE,
            SignatureError::NoSecret,
        ));
    };
    if woocommerce::is_ping(&body) {
        return Ok(ignored(&state, "woocommerce", "ping", webhook_id).into_response());
    }
    if let Err(error) = signature::verify(
        settings.secret.as_bytes(),
        &body,
        header_text(&headers, SIGNATURE),
    ) {
        return Ok(signature_problem("woocommerce", SIGNATURE, error));
    }
    let topic_text = header_text(&headers, "X-WC-Webhook-Topic")
        .ok_or_else(|| ApiError::parameter("X-WC-Webhook-Topic", "the topic header is missing"))?;
    let Some(topic) = woocommerce::Topic::parse(topic_text) else {
        return Ok(ignored(&state, "woocommerce", topic_text, webhook_id).into_response());
    };
    let translation = woocommerce::WooCommerce::new(settings)
        .translate(topic, &body, &StoreLookup(state.store()))
        .map_err(adapter_error)?;
    Ok(
        deliver(&state, "woocommerce", topic.name(), webhook_id, translation)
            .await?
            .into_response(),
    )
}
