//! Holds: request (waiting for the projector's decision), actions, lookups, and a
//! store's pickup queue.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockline_domain::{
    ChannelId, CustomerRef, DocumentKind, DocumentRef, Event, GroupId, Hold, HoldId, HoldKind,
    HoldStatus, LocationId, OrderId, Payload, Price, SCHEMA_VERSION, Sku,
};
use stockline_engine::Token;
use stockline_store::rows::VerdictRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, HoldAction, Role};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, WaitFor};
use crate::routes::availability::{ConsistencyParams, parse_location, parse_sku};
use crate::state::AppState;
use crate::views::{HoldList, HoldResponse, HoldView};

/// Namespace of the deterministic event ids the service gives hold requests and
/// actions: a retried call republishes the same event id, which the fold ignores.
pub const SERVICE_EVENT_NAMESPACE: Uuid =
    Uuid::from_u128(0x3c5e_8a1f_4b7d_4e2a_9f10_7b2d_c4e6_a801);

fn event_id(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&SERVICE_EVENT_NAMESPACE, parts.join("\0").as_bytes())
}

fn system_channel(name: &str) -> ChannelId {
    ChannelId::new(name).unwrap_or_else(|e| unreachable!("a valid channel id: {e}"))
}

/// A hold request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Chosen by the channel; the idempotency key of the request.
    #[schema(value_type = String)]
    pub hold_id: HoldId,
    #[schema(value_type = String)]
    pub sku: Sku,
    /// One location; or leave it out and name `group`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub location: Option<LocationId>,
    /// Any location of this group (the one where the channel may promise the most).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub group: Option<GroupId>,
    pub quantity: i64,
    pub ttl_seconds: u32,
    /// `checkout`, `click_and_collect`, `reserve_in_store`, `ship_from_store`.
    #[schema(value_type = String)]
    pub kind: HoldKind,
    #[schema(value_type = String)]
    pub order_id: OrderId,
    #[serde(default = "first_line")]
    pub order_line: u32,
    #[schema(value_type = String)]
    pub customer_ref: CustomerRef,
    /// The selling channel. Channel tokens may omit it (their own channel) and may
    /// not name another.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub channel: Option<ChannelId>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub price: Option<Price>,
}

fn first_line() -> u32 {
    1
}

fn resolve_channel(caller: &Caller, given: Option<ChannelId>) -> Result<ChannelId, ApiError> {
    match (&caller.role, given) {
        (Role::Channel { channel }, None) => Ok(channel.clone()),
        (_, Some(channel)) => Ok(channel),
        (_, None) => Err(ApiError::parameter(
            "channel",
            "name the selling channel (only channel tokens imply it)",
        )),
    }
}

/// The projector's answer for a record, once applied.
enum Fate {
    Applied,
    Duplicate,
    Rejected(stockline_domain::Rejection),
    Invalid(String),
}

async fn publish_and_wait(state: &AppState, event: &Event) -> Result<(Token, Fate), ApiError> {
    let tokens = state.publisher().publish(event).await?;
    let [token] = tokens.as_slice() else {
        return Err(ApiError::Internal(
            "a SKU event wrote to several partitions".into(),
        ));
    };
    if !state
        .wait_for_tokens(&[*token], state.decision_timeout())
        .await
    {
        return Err(ApiError::DecisionPending {
            what: format!("event {}", event.event_id),
            context: serde_json::json!({
                "token": format!("{}:{}", token.partition, token.offset),
                "hold_id": event.payload.hold_id().map(ToString::to_string),
            }),
        });
    }
    let fate = match state.store().verdict_at(token.partition, token.offset)? {
        Some(VerdictRow::Rejected { rejection, .. }) => Fate::Rejected(rejection),
        Some(VerdictRow::Duplicate { .. }) => Fate::Duplicate,
        None => match state
            .store()
            .dead_letter_at(token.partition, token.offset)?
        {
            Some(dead) => Fate::Invalid(dead.reason),
            None => Fate::Applied,
        },
    };
    Ok((*token, fate))
}

fn same_request(hold: &Hold, request: &HoldRequest, channel: &ChannelId) -> bool {
    hold.quantity == request.quantity
        && hold.kind == request.kind
        && hold.requested_location == request.location
        && hold.requested_group == request.group
        && hold.order_id == request.order_id
        && hold.order_line == request.order_line
        && hold.customer_ref == request.customer_ref
        && &hold.channel == channel
}

/// Requests a hold and answers with the projector's decision: 201 held (where,
/// until when) or 409 rejected (why). Idempotent on `hold_id`: a retry gets the
/// same decision, never a second hold.
#[utoipa::path(
    post,
    path = "/v1/holds",
    tag = "holds",
    request_body = HoldRequest,
    responses(
        (status = 201, body = HoldResponse, description = "held"),
        (status = 409, body = Problem, description = "rejected (code says why), or the hold id is used by another request"),
        (status = 503, body = Problem, description = "decision not known within the timeout; look the hold up later"),
    ),
    security(("bearer" = []))
)]
pub async fn request_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<HoldRequest>,
) -> Result<(StatusCode, Json<HoldResponse>), ApiError> {
    let channel = resolve_channel(&caller, request.channel.clone())?;
    caller.may_request_hold(&channel, request.location.as_ref())?;
    let id = event_id(&[
        "hold_requested",
        channel.as_str(),
        request.hold_id.as_str(),
        request.sku.as_str(),
    ]);
    let event = Event {
        event_id: id,
        schema_version: SCHEMA_VERSION,
        occurred_at: chrono::Utc::now(),
        channel: channel.clone(),
        location: request.location.clone(),
        sku: Some(request.sku.clone()),
        document: Some(DocumentRef {
            kind: DocumentKind::Order,
            id: stockline_domain::DocumentId::new(request.order_id.as_str())
                .map_err(|e| ApiError::parameter("order_id", e.to_string()))?,
        }),
        reason: None,
        payload: Payload::HoldRequested {
            hold_id: request.hold_id.clone(),
            order_id: request.order_id.clone(),
            order_line: request.order_line,
            customer_ref: request.customer_ref.clone(),
            quantity: request.quantity,
            ttl_seconds: request.ttl_seconds,
            kind: request.kind,
            group: request.group.clone(),
            price: request.price.clone(),
        },
    };
    let (_, fate) = publish_and_wait(&state, &event).await?;
    if let Fate::Invalid(reason) = fate {
        return Err(ApiError::parameter("body", reason));
    }
    let hold = state
        .store()
        .hold(&request.hold_id, &request.sku)?
        .ok_or_else(|| {
            ApiError::Internal(format!(
                "hold {} has no row after its request applied",
                request.hold_id
            ))
        })?;
    let view = HoldView::from(&hold);
    if hold.request_event_id != id || !same_request(&hold, &request, &channel) {
        return Err(ApiError::Conflict {
            message: format!(
                "hold id {} is already used by another request; its decision stands",
                request.hold_id
            ),
            context: caller
                .may_see_hold(&hold)
                .then(|| serde_json::json!({ "hold": view })),
        });
    }
    if let Some(rejection) = &hold.rejection {
        return Err(ApiError::Rejected {
            rejection: rejection.clone(),
            context: Some(serde_json::json!({ "hold": view })),
        });
    }
    Ok((
        StatusCode::CREATED,
        Json(HoldResponse {
            hold: view,
            position: state.positions(),
        }),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct HoldSelector {
    /// The hold's SKU, needed only when the same hold id was used for two SKUs.
    pub sku: Option<String>,
}

/// The hold a path names, visible to the caller.
fn find_hold(
    state: &AppState,
    caller: &Caller,
    hold_id: &str,
    sku: Option<&str>,
) -> Result<Hold, ApiError> {
    let hold_id =
        HoldId::new(hold_id).map_err(|e| ApiError::parameter("hold_id", e.to_string()))?;
    let mut holds: Vec<Hold> = state
        .store()
        .holds_by_id(&hold_id)?
        .into_iter()
        .filter(|h| caller.may_see_hold(h))
        .collect();
    if let Some(sku) = sku {
        let sku = parse_sku(sku)?;
        holds.retain(|h| h.sku == sku);
    }
    match holds.len() {
        0 => Err(ApiError::not_found(
            "unknown-hold",
            Some("hold_id"),
            format!("no hold {hold_id} visible to this caller"),
        )),
        1 => Ok(holds.remove(0)),
        _ => Err(ApiError::Conflict {
            message: format!("hold id {hold_id} names holds of several SKUs; add ?sku="),
            context: None,
        }),
    }
}

async fn act(
    state: AppState,
    caller: Caller,
    hold_id: String,
    selector: HoldSelector,
    action: HoldAction,
) -> Result<Json<HoldResponse>, ApiError> {
    let hold = find_hold(&state, &caller, &hold_id, selector.sku.as_deref())?;
    caller.may_act_on_hold(&hold, action)?;
    let (name, payload) = match action {
        HoldAction::Confirm => (
            "hold_confirmed",
            Payload::HoldConfirmed {
                hold_id: hold.hold_id.clone(),
            },
        ),
        HoldAction::Release => (
            "hold_released",
            Payload::HoldReleased {
                hold_id: hold.hold_id.clone(),
            },
        ),
        HoldAction::Ready => (
            "hold_ready_for_pickup",
            Payload::HoldReadyForPickup {
                hold_id: hold.hold_id.clone(),
            },
        ),
        HoldAction::Collected => (
            "hold_collected",
            Payload::HoldCollected {
                hold_id: hold.hold_id.clone(),
            },
        ),
        HoldAction::NoShow => (
            "hold_no_show",
            Payload::HoldNoShow {
                hold_id: hold.hold_id.clone(),
            },
        ),
        HoldAction::Shipped => (
            "hold_shipped",
            Payload::HoldShipped {
                hold_id: hold.hold_id.clone(),
            },
        ),
    };
    let channel = match &caller.role {
        Role::Channel { channel } => channel.clone(),
        Role::Store { .. } => system_channel("store"),
        Role::Admin | Role::Analyst => system_channel("admin"),
    };
    let event = Event {
        event_id: event_id(&[name, hold.hold_id.as_str(), hold.sku.as_str()]),
        schema_version: SCHEMA_VERSION,
        occurred_at: chrono::Utc::now(),
        channel,
        location: None,
        sku: Some(hold.sku.clone()),
        document: None,
        reason: None,
        payload,
    };
    let (_, fate) = publish_and_wait(&state, &event).await?;
    let current = state
        .store()
        .hold(&hold.hold_id, &hold.sku)?
        .ok_or_else(|| ApiError::Internal(format!("hold {} vanished", hold.hold_id)))?;
    let view = HoldView::from(&current);
    match fate {
        Fate::Rejected(rejection) => Err(ApiError::Rejected {
            rejection,
            context: Some(serde_json::json!({ "hold": view })),
        }),
        Fate::Invalid(reason) => Err(ApiError::parameter("hold_id", reason)),
        Fate::Applied | Fate::Duplicate => Ok(Json(HoldResponse {
            hold: view,
            position: state.positions(),
        })),
    }
}

macro_rules! hold_action {
    ($fn_name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = "holds",
            params(("hold_id" = String, Path, description = "hold id"), HoldSelector),
            responses(
                (status = 200, body = HoldResponse),
                (status = 404, body = Problem, description = "unknown hold"),
                (status = 409, body = Problem, description = "refused (code: hold_expired, hold_closed, not_confirmed, not_a_pickup...)"),
            ),
            security(("bearer" = []))
        )]
        pub async fn $fn_name(
            State(state): State<AppState>,
            caller: Caller,
            ApiPath(hold_id): ApiPath<String>,
            ApiQuery(selector): ApiQuery<HoldSelector>,
        ) -> Result<Json<HoldResponse>, ApiError> {
            act(state, caller, hold_id, selector, $action).await
        }
    };
}

hold_action!(
    confirm_hold,
    "/v1/holds/{hold_id}/confirm",
    HoldAction::Confirm,
    "Paid: reserved units become committed and the hold no longer expires."
);
hold_action!(
    release_hold,
    "/v1/holds/{hold_id}/release",
    HoldAction::Release,
    "Cancelled: the units are available again."
);
hold_action!(
    ready_hold,
    "/v1/holds/{hold_id}/ready",
    HoldAction::Ready,
    "Prepared and waiting at the pickup desk."
);
hold_action!(
    collect_hold,
    "/v1/holds/{hold_id}/collected",
    HoldAction::Collected,
    "Handed over to the customer: the units leave the store."
);
hold_action!(
    no_show_hold,
    "/v1/holds/{hold_id}/no-show",
    HoldAction::NoShow,
    "The customer never came: the units are available again."
);
hold_action!(
    ship_hold,
    "/v1/holds/{hold_id}/shipped",
    HoldAction::Shipped,
    "Shipped to the customer (confirmed holds): the units leave the location."
);

/// A hold by id.
#[utoipa::path(
    get,
    path = "/v1/holds/{hold_id}",
    tag = "holds",
    params(("hold_id" = String, Path, description = "hold id"), HoldSelector, ConsistencyParams),
    responses((status = 200, body = HoldResponse), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(hold_id): ApiPath<String>,
    ApiQuery(selector): ApiQuery<HoldSelector>,
) -> Result<Json<HoldResponse>, ApiError> {
    wait.wait(&state).await?;
    let hold = find_hold(&state, &caller, &hold_id, selector.sku.as_deref())?;
    Ok(Json(HoldResponse {
        hold: HoldView::from(&hold),
        position: state.positions(),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (default 50, at most `page_size_max`, 500 by default).
    pub page_size: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub const PAGE_SIZE_DEFAULT: usize = 50;

impl PageParams {
    pub fn size(&self, state: &AppState) -> Result<usize, ApiError> {
        let size = self.page_size.unwrap_or(PAGE_SIZE_DEFAULT);
        let max = state.settings().page_size_max;
        if size == 0 || size > max {
            return Err(ApiError::parameter(
                "page_size",
                format!("must be within 1..={max}"),
            ));
        }
        Ok(size)
    }
}

fn bad_cursor(error: stockline_store::StoreError) -> ApiError {
    match error {
        stockline_store::StoreError::Corrupt { cf: "cursor", .. } => {
            ApiError::parameter("cursor", "not a cursor this service returned")
        }
        other => other.into(),
    }
}

/// Every hold of an order.
#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}/holds",
    tag = "holds",
    params(("order_id" = String, Path, description = "order id"), PageParams, ConsistencyParams),
    responses((status = 200, body = HoldList)),
    security(("bearer" = []))
)]
pub async fn order_holds(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(order_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<HoldList>, ApiError> {
    wait.wait(&state).await?;
    let order_id =
        OrderId::new(&order_id).map_err(|e| ApiError::parameter("order_id", e.to_string()))?;
    let size = page.size(&state)?;
    let result = state
        .store()
        .holds_by_order(&order_id, page.cursor.as_deref(), size, |h| {
            caller.may_see_hold(h)
        })
        .map_err(bad_cursor)?;
    Ok(Json(HoldList {
        holds: result.items.iter().map(HoldView::from).collect(),
        next_cursor: result.next_cursor,
        position: state.positions(),
    }))
}

/// The reservations of a customer reference (what the desk looks up).
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_ref}/holds",
    tag = "holds",
    params(("customer_ref" = String, Path, description = "customer reference"), PageParams, ConsistencyParams),
    responses((status = 200, body = HoldList)),
    security(("bearer" = []))
)]
pub async fn customer_holds(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(customer_ref): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<HoldList>, ApiError> {
    wait.wait(&state).await?;
    let customer = CustomerRef::new(&customer_ref)
        .map_err(|e| ApiError::parameter("customer_ref", e.to_string()))?;
    let size = page.size(&state)?;
    let result = state
        .store()
        .holds_by_customer(&customer, page.cursor.as_deref(), size, |h| {
            caller.may_see_hold(h)
        })
        .map_err(bad_cursor)?;
    Ok(Json(HoldList {
        holds: result.items.iter().map(HoldView::from).collect(),
        next_cursor: result.next_cursor,
        position: state.positions(),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PickupQueue {
    /// Held, not yet prepared.
    AwaitingPreparation,
    /// Prepared, waiting for the customer.
    Ready,
    /// Unpaid holds (held or ready) expiring within `within_minutes`.
    ExpiringSoon,
    NoShow,
    Collected,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PickupQueueParams {
    #[param(value_type = String)]
    pub status: PickupQueue,
    /// For `expiring_soon`: the horizon in minutes (default 60).
    pub within_minutes: Option<i64>,
    pub page_size: Option<usize>,
    pub cursor: Option<String>,
}

/// A store's pickup queue by status, paged.
#[utoipa::path(
    get,
    path = "/v1/locations/{location}/pickups",
    tag = "holds",
    params(("location" = String, Path, description = "store id"), PickupQueueParams, ConsistencyParams),
    responses((status = 200, body = HoldList), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
pub async fn pickups(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(location): ApiPath<String>,
    ApiQuery(params): ApiQuery<PickupQueueParams>,
) -> Result<Json<HoldList>, ApiError> {
    let location = parse_location("location", &location)?;
    caller.may_read_location(&location)?;
    wait.wait(&state).await?;
    let page = PageParams {
        page_size: params.page_size,
        cursor: params.cursor.clone(),
    };
    let size = page.size(&state)?;
    let store = state.store();
    let (holds, next_cursor) = match params.status {
        PickupQueue::ExpiringSoon => {
            let within_ms = params.within_minutes.unwrap_or(60).clamp(0, 30 * 24 * 60) * 60_000;
            let horizon = stockline_domain::LogTime::from_millis(
                stockline_engine::now_ms().saturating_add(within_ms),
            );
            let max = state.settings().page_size_max;
            let mut holds: Vec<Hold> = Vec::new();
            for status in [HoldStatus::Held, HoldStatus::ReadyForPickup] {
                let found = store.pickups(&location, status, None, max, |h| {
                    h.can_expire() && h.expires_at <= horizon
                })?;
                holds.extend(found.items);
            }
            holds.sort_by(|a, b| {
                a.expires_at
                    .cmp(&b.expires_at)
                    .then(a.hold_id.cmp(&b.hold_id))
            });
            holds.truncate(size);
            (holds, None)
        }
        queue => {
            let status = match queue {
                PickupQueue::AwaitingPreparation => HoldStatus::Held,
                PickupQueue::Ready => HoldStatus::ReadyForPickup,
                PickupQueue::NoShow => HoldStatus::NoShow,
                _ => HoldStatus::Collected,
            };
            let found = store
                .pickups(&location, status, page.cursor.as_deref(), size, |_| true)
                .map_err(bad_cursor)?;
            (found.items, found.next_cursor)
        }
    };
    Ok(Json(HoldList {
        holds: holds.iter().map(HoldView::from).collect(),
        next_cursor,
        position: state.positions(),
    }))
}
