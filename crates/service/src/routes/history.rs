//! The audit trail of a SKU.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, ApiQuery, WaitFor};
use crate::routes::availability::{ConsistencyParams, parse_location, parse_sku};
use crate::routes::holds::PageParams;
use crate::state::AppState;
use crate::views::{HistoryPage, HistoryView};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only changes at this location.
    pub location: Option<String>,
    /// Only changes at or after this log time (RFC 3339).
    pub from: Option<String>,
    /// Only changes before this log time (RFC 3339).
    pub to: Option<String>,
    pub page_size: Option<usize>,
    pub cursor: Option<String>,
}

fn instant(field: &'static str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc).timestamp_millis())
            .map_err(|e| ApiError::parameter(field, format!("not an RFC 3339 instant: {e}")))
    })
    .transpose()
}

/// Every quantity change of a SKU, in log order: event, channel, reason, document,
/// before and after.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/history",
    tag = "history",
    params(("sku" = String, Path, description = "SKU"), HistoryParams, ConsistencyParams),
    responses((status = 200, body = HistoryPage), (status = 400, body = Problem)),
    security(("bearer" = []))
)]
pub async fn sku_history(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(sku): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let sku = parse_sku(&sku)?;
    let location = params
        .location
        .as_deref()
        .map(|l| parse_location("location", l))
        .transpose()?;
    caller.may_read_history(location.as_ref())?;
    wait.wait(&state).await?;
    let from = instant("from", params.from.as_deref())?;
    let to = instant("to", params.to.as_deref())?;
    let size = PageParams {
        page_size: params.page_size,
        cursor: None,
    }
    .size(&state)?;
    let page = state
        .store()
        .history(&sku, params.cursor.as_deref(), size, |entry| {
            location.as_ref().is_none_or(|l| &entry.location == l)
                && from.is_none_or(|f| entry.log_time.millis() >= f)
                && to.is_none_or(|t| entry.log_time.millis() < t)
        })
        .map_err(|e| match e {
            stockline_store::StoreError::Corrupt { cf: "cursor", .. } => {
                ApiError::parameter("cursor", "not a cursor this service returned")
            }
            other => other.into(),
        })?;
    Ok(Json(HistoryPage {
        sku: sku.to_string(),
        entries: page.items.iter().map(HistoryView::from).collect(),
        next_cursor: page.next_cursor,
        position: state.positions(),
    }))
}
