//! Ingest: a batch of events, validated item by item.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use stockline_domain::Event;
use stockline_engine::Token;
use stockline_store::rows::VerdictRow;
use utoipa::ToSchema;

use crate::auth::{Caller, HoldAction, Role};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, parse_json, render_positions};
use crate::state::AppState;
use crate::views::{IngestItem, IngestResponse};

fn token_text(token: &Token) -> String {
    format!("{}:{}", token.partition, token.offset)
}

/// Publishes a batch of events (a JSON array of the event schema in `schemas/`).
/// Each item is validated on its own: a bad item is answered with its problem and
/// not written; the good ones are published and answered with their consistency
/// tokens. An item is never half-written: configuration events go to every
/// partition or the item reports the failure.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    request_body(content = Vec<Object>, description = "events as in schemas/event.schema.json"),
    responses(
        (status = 200, body = IngestResponse, description = "per-item answers"),
        (status = 400, body = Problem, description = "not a JSON array"),
        (status = 413, body = Problem, description = "more than `batch_events_max` items or `body_bytes_max` bytes"),
    ),
    security(("bearer" = []))
)]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == "application/json");
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Read under `body_bytes_max` (axum's `Bytes` extractor has its own 2 MB limit
    // and answers past it in plain text).
    let limit = state.settings().body_bytes_max;
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { limit_bytes: limit })?;
    let items: Vec<serde_json::Value> = parse_json(&body)?;
    let max = state.settings().batch_events_max;
    if items.len() > max {
        return Err(ApiError::TooMany {
            what: "the batch",
            field: ".",
            count: items.len(),
            max,
        });
    }
    let mut answers: Vec<Option<IngestItem>> = vec![None; items.len()];
    let mut to_publish: Vec<(usize, Event)> = Vec::new();
    for (index, value) in items.iter().enumerate() {
        let text = value.to_string();
        let parsed = stockline_wire::json::event_from_json(text.as_bytes())
            .map_err(|e| ApiError::BadJson {
                path: if e.path.is_empty() {
                    ".".into()
                } else {
                    e.path
                },
                message: e.message,
            })
            .and_then(|event| {
                event.validate().map_err(ApiError::InvalidEvent)?;
                caller.may_publish(&event)?;
                may_act_through_ingest(&state, &caller, &event)?;
                Ok(event)
            });
        match parsed {
            Ok(event) => to_publish.push((index, event)),
            Err(error) => {
                answers[index] = Some(IngestItem {
                    index,
                    status: "rejected".into(),
                    event_id: value
                        .get("event_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    tokens: Vec::new(),
                    error: Some(error.problem()),
                });
            }
        }
    }
    let events: Vec<Event> = to_publish.iter().map(|(_, e)| e.clone()).collect();
    let results = state.publisher().publish_all(&events).await;
    let mut all_tokens: Vec<Token> = Vec::new();
    for ((index, event), result) in to_publish.into_iter().zip(results) {
        answers[index] = Some(match result {
            Ok(tokens) => {
                all_tokens.extend(tokens.iter().copied());
                IngestItem {
                    index,
                    status: "accepted".into(),
                    event_id: Some(event.event_id.to_string()),
                    tokens: tokens.iter().map(token_text).collect(),
                    error: None,
                }
            }
            Err(error) => IngestItem {
                index,
                status: "rejected".into(),
                event_id: Some(event.event_id.to_string()),
                tokens: Vec::new(),
                error: Some(ApiError::from(error).problem()),
            },
        });
    }
    if state.ack_after_applied()
        && !all_tokens.is_empty()
        && !state
            .wait_for_tokens(&all_tokens, state.decision_timeout())
            .await
    {
        return Err(ApiError::DecisionPending {
            what: "the batch".into(),
            context: serde_json::json!({
                "wait_for": all_tokens.iter().map(token_text).collect::<Vec<_>>().join(","),
            }),
        });
    }
    let items: Vec<IngestItem> = answers.into_iter().flatten().collect();
    let accepted = items.iter().filter(|i| i.status == "accepted").count();
    let mut wait_for = std::collections::BTreeMap::new();
    for token in &all_tokens {
        let entry = wait_for.entry(token.partition).or_insert(token.offset);
        *entry = (*entry).max(token.offset);
    }
    Ok(Json(IngestResponse {
        accepted,
        rejected: items.len() - accepted,
        items,
        wait_for: wait_for
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(","),
    }))
}

/// A hold action written through ingest is checked as the hold endpoints check it:
/// the hold must be visible to the caller (404 otherwise, as there), and the
/// caller's role must allow the action on it (a channel acts on its own holds
/// only, and not at the pickup desk; a store at its own locations). The hold is
/// looked up as projected now, so a non-admin caller cannot act in the same batch
/// on a hold it requests in that batch.
fn may_act_through_ingest(
    state: &AppState,
    caller: &Caller,
    event: &Event,
) -> Result<(), ApiError> {
    let Some(action) = HoldAction::of_payload(&event.payload) else {
        return Ok(());
    };
    if caller.role == Role::Admin {
        return Ok(());
    }
    let (Some(hold_id), Some(sku)) = (event.payload.hold_id(), event.sku.as_ref()) else {
        // validate() requires both; nothing to look up otherwise.
        return Ok(());
    };
    let hold = state
        .store()
        .hold(hold_id, sku)?
        .filter(|hold| caller.may_see_hold(hold))
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown-hold",
                Some("payload.hold_id"),
                format!("no hold {hold_id} of SKU {sku} visible to this caller"),
            )
        })?;
    caller.may_act_on_hold(&hold, action)
}

/// The path of an outcome: a consistency token.
#[derive(Debug, Deserialize)]
pub struct OutcomePath {
    pub partition: u32,
    pub offset: u64,
}

/// What became of the record at a consistency token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Outcome {
    pub token: String,
    /// `pending` (not applied yet), `applied`, `rejected`, `duplicate` or
    /// `dead_lettered`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Applied positions (`PARTITION:NEXT,...`).
    pub position: String,
}

/// The outcome of a published event, by its consistency token.
#[utoipa::path(
    get,
    path = "/v1/outcomes/{partition}/{offset}",
    tag = "ingest",
    params(("partition" = u32, Path), ("offset" = u64, Path)),
    responses((status = 200, body = Outcome)),
    security(("bearer" = []))
)]
pub async fn outcome(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(OutcomePath { partition, offset }): ApiPath<OutcomePath>,
) -> Result<Json<Outcome>, ApiError> {
    let positions = state.positions();
    let applied = positions.get(&partition).is_some_and(|next| *next > offset);
    let token = format!("{partition}:{offset}");
    // `pending` tells nothing about anyone's event; an applied record's outcome
    // is for those who may see the event (a record that does not decode has no
    // owner to tell: analysts and admins only).
    if applied && !caller.reads_everything() {
        // A replay's store keeps no copy of the records (see `StoreContents`):
        // whose event it was cannot be checked there.
        if state.store().contents() != stockline_store::StoreContents::Full {
            return Err(ApiError::Forbidden {
                caller: caller.name.clone(),
                what: format!(
                    "the outcome of {token} in a replay's store, which keeps no copy of the \
                     records to tell whose event it was (analysts and admins may ask it)"
                ),
            });
        }
        let event = state
            .store()
            .archived_at(partition, offset)?
            .and_then(|record| record.payload)
            .and_then(|payload| stockline_wire::decode_event(&payload).ok());
        match event {
            Some(event) => caller.may_see_event(&event)?,
            None => {
                return Err(ApiError::Forbidden {
                    caller: caller.name.clone(),
                    what: format!("the outcome of {token}, which is not an event"),
                });
            }
        }
    }
    let (outcome, code, detail) = if !applied {
        ("pending", None, None)
    } else if let Some(verdict) = state.store().verdict_at(partition, offset)? {
        match verdict {
            VerdictRow::Rejected { rejection, .. } => (
                "rejected",
                Some(rejection.code().to_owned()),
                Some(rejection.to_string()),
            ),
            VerdictRow::Duplicate { event_id } => (
                "duplicate",
                None,
                Some(format!("event {event_id} was applied before")),
            ),
        }
    } else if let Some(dead) = state.store().dead_letter_at(partition, offset)? {
        ("dead_lettered", Some(dead.reason_code), Some(dead.reason))
    } else {
        ("applied", None, None)
    };
    Ok(Json(Outcome {
        token,
        outcome: outcome.to_owned(),
        code,
        detail,
        position: render_positions(&positions),
    }))
}
