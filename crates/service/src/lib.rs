//! Stockline's HTTP API (axum): availability, holds and pickups, history, ingest.
//!
//! Answers come from the RocksDB projections of the same process; writes go to
//! Kafka through the publisher. Every read answers with the projection's position
//! and may wait for given positions (`wait_for`), so a caller always reads its own
//! writes. Errors are `application/problem+json`. The OpenAPI document is generated
//! from the handlers (`utoipa`), so routes and document cannot drift apart.

pub mod auth;
pub mod cache;
pub mod error;
pub mod extract;
pub mod routes;
pub mod settings;
pub mod state;
pub mod views;

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Caller, Role, TokenEntry, new_token, token_digest};
pub use error::{ApiError, Problem};
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use settings::HttpSettings;
pub use state::{AppState, ServiceParts};

use crate::routes::{availability, events, history, holds, ops, webhooks};

/// The Prometheus recorder of this process (installed once; later calls reuse it).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// The application's routes and their OpenAPI document.
pub fn api() -> (Router<AppState>, OpenApi) {
    let (router, mut api) = OpenApiRouter::<AppState>::new()
        .routes(routes!(availability::sku_availability))
        .routes(routes!(availability::location_availability))
        .routes(routes!(availability::channel_availability))
        .routes(routes!(availability::batch_availability))
        .routes(routes!(availability::pickup_options))
        .routes(routes!(holds::request_hold))
        .routes(routes!(holds::get_hold))
        .routes(routes!(holds::confirm_hold))
        .routes(routes!(holds::release_hold))
        .routes(routes!(holds::ready_hold))
        .routes(routes!(holds::collect_hold))
        .routes(routes!(holds::no_show_hold))
        .routes(routes!(holds::ship_hold))
        .routes(routes!(holds::order_holds))
        .routes(routes!(holds::customer_holds))
        .routes(routes!(holds::pickups))
        .routes(routes!(history::sku_history))
        .routes(routes!(events::ingest))
        .routes(routes!(events::outcome))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(webhooks::shopify))
        .routes(routes!(webhooks::woocommerce))
        .split_for_parts();
    api.info = InfoBuilder::new()
        .title("Stockline")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Omnichannel inventory ledger: availability, holds, pickups, history, ingest. \
             Errors are application/problem+json. Reads accept `wait_for` (consistency tokens \
             returned by writes) and answer with the applied `position`.",
        ))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    components.schemas.insert(
        "Problem".to_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    );
    (router, api)
}

/// The complete application: routes, `/openapi.json`, fallbacks, metrics.
pub fn router(state: AppState) -> Router {
    let (routes, api) = api();
    let document = std::sync::Arc::new(api);
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = std::sync::Arc::clone(&document);
                async move { Json((*document).clone()) }
            }),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            read_only_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::not_found("no-such-route", None, "no such route; see /openapi.json")
}

async fn method_not_allowed() -> Response {
    let mut problem = ApiError::parameter("method", "method not allowed on this route").problem();
    problem.status = 405;
    problem.title = "Method Not Allowed".into();
    problem.problem_type = format!("{}method-not-allowed", error::PROBLEM_BASE);
    let mut response = (axum::http::StatusCode::METHOD_NOT_ALLOWED, Json(problem)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Refuses every write to a read-only store before any handler runs.
async fn read_only_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if state.is_read_only() && !reads {
        return ApiError::ReadOnly.into_response();
    }
    next.run(request).await
}

/// Records the latency of every request by route, and stamps the applied position
/// on every response that does not carry its own (`Stockline-Position: P:NEXT,...`;
/// reads stamp the positions their body reports).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    state
        .0
        .route_histograms
        .get(
            route.as_ref().map_or("unmatched", MatchedPath::as_str),
            &method,
            response.status().as_u16(),
        )
        .record(elapsed);
    if !response.headers().contains_key(&POSITION_HEADER)
        && let Some(value) = &state.snapshot().header
    {
        response
            .headers_mut()
            .insert(POSITION_HEADER, value.clone());
    }
    response
}

/// The applied positions of an answer: `P:NEXT,P:NEXT`.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("stockline-position");

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
