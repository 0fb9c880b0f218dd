//! Request extractors that answer with problem+json: the caller, JSON bodies (with
//! the offending field's path), query strings, consistency waits.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stockline_engine::{Positions, Token};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?
            .trim();
        let caller = state
            .tokens()
            .authenticate(token)
            .ok_or(ApiError::Unauthorized)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A JSON body, parsed with the path of the offending field on error.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct == "application/json" || ct.ends_with("+json")
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = state.settings().body_bytes_max;
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::BodyTooLarge { limit_bytes: limit })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    stockline_wire::json::from_json(bytes).map_err(|e| ApiError::BadJson {
        path: if e.path.is_empty() {
            ".".to_owned()
        } else {
            e.path
        },
        message: e.message,
    })
}

/// A query string, with errors naming the parameter. Parameters a handler does not
/// know are ignored (the consistency parameters share the query string).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::InvalidParameter {
                    field: if path.is_empty() || path == "." {
                        "query".to_owned()
                    } else {
                        path
                    },
                    message: e.into_inner().to_string(),
                }
            })
    }
}

/// Path parameters, with errors as problem+json naming the parameter (axum's own
/// `Path` answers a bad value, such as a non-numeric offset or invalid UTF-8 after
/// percent-decoding, in plain text).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let field = match error.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_owned(),
                };
                Err(ApiError::parameter(field, error.body_text()))
            }
            // Only a route declared without the parameters its handler takes.
            Err(other) => Err(ApiError::Internal(other.body_text())),
        }
    }
}

/// `?wait_for=P:O,P:O&wait_ms=N`: answer only once the projector has applied the
/// records at those positions (the tokens writes return), waiting at most `wait_ms`.
#[derive(Debug, Clone, Default, Deserialize)]
struct Consistency {
    wait_for: Option<String>,
    wait_ms: Option<u64>,
}

/// The `wait_for`/`wait_ms` parameters, extracted alongside a handler's own query.
#[derive(Debug, Clone, Default)]
pub struct WaitFor {
    pub tokens: Vec<Token>,
    pub wait_ms: u64,
}

/// Default wait when `wait_for` is given without `wait_ms`.
pub const WAIT_MS_DEFAULT: u64 = 2_000;

impl FromRequestParts<AppState> for WaitFor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Most reads carry no query string at all.
        let consistency = if parts.uri.query().is_none() {
            Consistency::default()
        } else {
            ApiQuery::<Consistency>::from_request_parts(parts, state)
                .await?
                .0
        };
        let tokens = match consistency.wait_for.as_deref() {
            None | Some("") => Vec::new(),
            Some(text) => parse_tokens(text)?,
        };
        let wait_ms = consistency.wait_ms.unwrap_or(WAIT_MS_DEFAULT);
        if wait_ms > state.settings().wait_ms_max {
            return Err(ApiError::parameter(
                "wait_ms",
                format!("at most {}", state.settings().wait_ms_max),
            ));
        }
        Ok(WaitFor { tokens, wait_ms })
    }
}

/// `P:O,P:O` -> tokens.
pub fn parse_tokens(text: &str) -> Result<Vec<Token>, ApiError> {
    let mut tokens = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (partition, offset) = part.split_once(':').ok_or_else(|| {
            ApiError::parameter("wait_for", format!("`{part}` is not PARTITION:OFFSET"))
        })?;
        let partition: u32 = partition
            .trim()
            .parse()
            .map_err(|_| ApiError::parameter("wait_for", format!("bad partition in `{part}`")))?;
        let offset: u64 = offset
            .trim()
            .parse()
            .map_err(|_| ApiError::parameter("wait_for", format!("bad offset in `{part}`")))?;
        tokens.push(Token { partition, offset });
        if tokens.len() > 1_024 {
            return Err(ApiError::parameter("wait_for", "at most 1024 positions"));
        }
    }
    Ok(tokens)
}

/// Renders positions as `P:NEXT,P:NEXT` for the `Stockline-Position` header.
pub fn render_positions(positions: &Positions) -> String {
    positions
        .iter()
        .map(|(p, next)| format!("{p}:{next}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl WaitFor {
    /// Waits for the requested positions, or fails with the current ones.
    pub async fn wait(&self, state: &AppState) -> Result<(), ApiError> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        if state
            .wait_for_tokens(&self.tokens, Duration::from_millis(self.wait_ms))
            .await
        {
            Ok(())
        } else {
            Err(ApiError::WaitTimeout {
                waited_ms: self.wait_ms,
                context: serde_json::json!({ "position": state.positions() }),
            })
        }
    }
}
