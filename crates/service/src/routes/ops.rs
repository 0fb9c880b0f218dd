//! Health, readiness, metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::state::AppState;
use crate::views::Readiness;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn health() -> &'static str {
    "ok"
}

/// Readiness: the projector has caught up with the log as it was when its
/// partitions were assigned. 503 until then.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let status = state.status();
    let assigned = !status.assignment_high_watermarks.is_empty();
    let caught_up = status
        .assignment_high_watermarks
        .iter()
        .all(|(p, high)| status.positions.get(p).is_some_and(|next| next >= high));
    let ready = assigned && caught_up;
    let body = Readiness {
        ready,
        position: status.positions,
        assigned_high_watermarks: status.assignment_high_watermarks,
        records: status.records,
        dead_letters: status.dead_letters,
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
