//! Errors as `application/problem+json` (RFC 9457): a stable `type`, a `title`, the
//! HTTP `status`, a human `detail`, and the offending `field` where there is one.
//! Every error a caller can cause is a 4xx; 5xx means the system failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use stockline_domain::{InvalidEvent, Rejection};
use utoipa::ToSchema;

/// Base of problem type URIs; the part after it is the stable code.
pub const PROBLEM_BASE: &str = "https://stockline.dev/problems/";

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// `https://stockline.dev/problems/<code>`: stable, machine-readable.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault (`payload.quantity`, `sku`, `page_size`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The specific reason code (a rejection or invalid-event code), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Extra structured context (a hold's decision, current positions...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub context: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("{caller} may not access {what}")]
    Forbidden { caller: String, what: String },
    #[error("malformed JSON at `{path}`: {message}")]
    BadJson { path: String, message: String },
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("request body exceeds {limit_bytes} bytes")]
    BodyTooLarge { limit_bytes: usize },
    #[error("{what} has {count} items; the limit is {max}")]
    TooMany {
        what: &'static str,
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("invalid event: {0}")]
    InvalidEvent(InvalidEvent),
    #[error("invalid `{field}`: {message}")]
    InvalidParameter { field: String, message: String },
    #[error("{message}")]
    NotFound {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    #[error("{rejection}")]
    Rejected {
        rejection: Rejection,
        context: Option<Value>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        context: Option<Value>,
    },
    #[error("the decision on {what} is not known yet; look it up later")]
    DecisionPending { what: String, context: Value },
    #[error("the projection did not reach the requested position within {waited_ms} ms")]
    WaitTimeout { waited_ms: u64, context: Value },
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("this service serves a read-only store (a replay); it takes no writes")]
    ReadOnly,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadJson { .. } | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTooLarge { .. } | ApiError::TooMany { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::InvalidEvent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Rejected { .. } | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::DecisionPending { .. }
            | ApiError::WaitTimeout { .. }
            | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ReadOnly => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable problem type code.
    pub fn type_code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::BadJson { .. } => "malformed-json",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::BodyTooLarge { .. } => "body-too-large",
            ApiError::TooMany { .. } => "too-many-items",
            ApiError::InvalidEvent(_) => "invalid-event",
            ApiError::InvalidParameter { .. } => "invalid-parameter",
            ApiError::NotFound { code, .. } => code,
            ApiError::Rejected { .. } => "rejected",
            ApiError::Conflict { .. } => "conflict",
            ApiError::DecisionPending { .. } => "decision-pending",
            ApiError::WaitTimeout { .. } => "wait-timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::ReadOnly => "read-only",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (field, code, context) = match self {
            ApiError::BadJson { path, .. } => (Some(path.clone()), None, None),
            ApiError::TooMany { field, .. } => (Some((*field).to_owned()), None, None),
            ApiError::InvalidEvent(invalid) => (
                invalid.field().map(str::to_owned),
                Some(invalid.code().to_owned()),
                None,
            ),
            ApiError::InvalidParameter { field, .. } => (Some(field.clone()), None, None),
            ApiError::NotFound { field, .. } => (field.map(str::to_owned), None, None),
            ApiError::Rejected { rejection, context } => {
                (None, Some(rejection.code().to_owned()), context.clone())
            }
            ApiError::Conflict { context, .. } => (None, None, context.clone()),
            ApiError::DecisionPending { context, .. } | ApiError::WaitTimeout { context, .. } => {
                (None, None, Some(context.clone()))
            }
            _ => (None, None, None),
        };
        Problem {
            problem_type: format!("{PROBLEM_BASE}{}", self.type_code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
            code,
            context,
        }
    }

    pub fn not_found(
        code: &'static str,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::NotFound {
            code,
            field,
            message: message.into(),
        }
    }

    pub fn parameter(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidParameter {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| {
            json!({"type": format!("{PROBLEM_BASE}internal"), "status": 500})
                .to_string()
                .into_bytes()
        });
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<stockline_store::StoreError> for ApiError {
    fn from(error: stockline_store::StoreError) -> Self {
        match error.class() {
            stockline_store::ErrorClass::Transient => ApiError::Unavailable(error.to_string()),
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<stockline_engine::PublishError> for ApiError {
    fn from(error: stockline_engine::PublishError) -> Self {
        match error {
            stockline_engine::PublishError::Invalid(invalid) => ApiError::InvalidEvent(invalid),
            e if e.is_bad_input() => ApiError::parameter("body", e.to_string()),
            stockline_engine::PublishError::Produce(e) if e.is_retriable() => {
                ApiError::Unavailable(e.to_string())
            }
            e => ApiError::Internal(e.to_string()),
        }
    }
}
