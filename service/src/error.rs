//! One error type for the HTTP boundary. Every 4xx/5xx leaves as `application/problem+json`
//! (RFC 9457: type, title, status, detail). A 5xx says nothing about its cause to the client; the
//! cause is logged inside the request's span, which carries the request id.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;
use crate::domain::{PasswordError, UsernameError};
use crate::report::{caused_by, report};
use crate::storage::StorageError;
use tower_http::timeout::TimeoutError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` of a read that the storage replica cannot serve yet: the primary's outage or
/// the replication lag, whichever ends first, is not known; a client retrying every half minute
/// costs little.
pub const NOT_REPLICATED_RETRY_AFTER_SECS: u64 = 30;

/// What any error source can be boxed into, keeping its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Validation(String),
    /// The login lockout of one username from one client.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The per-client-IP rate limit of an unauthenticated route.
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (database, storage) is down or slow: retryable.
    #[error("the {dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        #[source]
        cause: BoxError,
    },
    /// The primary object storage is unavailable and its replica does not have the object yet
    /// (replication is asynchronous): retryable, once the primary is back or the replica caught up.
    #[error("the object storage is unavailable and its replica does not have this object yet")]
    NotReplicated {
        #[source]
        cause: BoxError,
    },
    /// This replica is at one of its concurrency limits (password hashing, uploads): retryable,
    /// here or on another replica.
    #[error("the server is busy ({what}); retry in {retry_after_secs} s")]
    Overloaded {
        what: &'static str,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// Set on an error response for the problem middleware, which logs it inside the request's span
/// (so the line carries the request id); the client sees none of it.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// A 5xx that is our fault (logged as an error) rather than a dependency's (a warning).
    pub internal: bool,
    pub dependency: Option<&'static str>,
    /// `report()` of the error.
    pub chain: String,
}

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what went wrong.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "about:blank")]
    pub kind: &'static str,
    /// The status's reason phrase.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. }
            | ApiError::NotReplicated { .. }
            | ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What went wrong, for people (the problem's `detail`; the UI shows it too).
    pub fn detail(&self) -> String {
        match self {
            // Nothing internal leaves the process.
            ApiError::Internal(_) => "the server failed to handle the request".to_string(),
            ApiError::Unavailable { dependency, .. } => {
                format!("the {dependency} is unavailable; retry later")
            }
            ApiError::NotReplicated { .. } => "the object storage is unavailable, and its replica \
                 does not have this content yet (replication is asynchronous); retry later"
                .to_string(),
            other => other.to_string(),
        }
    }

    pub fn unavailable(dependency: &'static str, cause: impl Into<BoxError>) -> Self {
        ApiError::Unavailable {
            dependency,
            cause: cause.into(),
        }
    }

    /// A request body sent nothing within the idle timeout.
    pub fn stalled_body() -> Self {
        ApiError::RequestTimeout(
            "the request body stalled: no data arrived within the upload idle timeout".into(),
        )
    }

    pub fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Internal(cause.into())
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after_secs }
            | ApiError::RateLimited { retry_after_secs }
            | ApiError::Overloaded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::NotReplicated { .. } => Some(NOT_REPLICATED_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// A problem+json response for `status` with `detail`.
pub fn problem_response(status: StatusCode, detail: String) -> Response {
    let problem = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = problem_response(status, self.detail());
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match &self {
            ApiError::Internal(_)
            | ApiError::Unavailable { .. }
            | ApiError::NotReplicated { .. } => {
                let dependency = match &self {
                    ApiError::Unavailable { dependency, .. } => Some(*dependency),
                    ApiError::NotReplicated { .. } => Some("object storage"),
                    _ => None,
                };
                response.extensions_mut().insert(ErrorReport {
                    internal: dependency.is_none(),
                    dependency,
                    chain: report(&self),
                });
            }
            _ => {}
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(cause) => ApiError::Unavailable {
                dependency: "database",
                cause,
            },
            DbError::Conflict => ApiError::Conflict("the resource exists already".into()),
            other => ApiError::internal(other),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::TooLarge { limit } => ApiError::PayloadTooLarge(format!(
                "the body is larger than the limit of {limit} bytes"
            )),
            StorageError::Body(e) if caused_by::<TimeoutError>(&e) => ApiError::stalled_body(),
            StorageError::Body(e) => ApiError::BadRequest(format!("reading the body failed: {e}")),
            StorageError::NotFound { .. } => ApiError::NotFound,
            error @ StorageError::Unavailable(_) => ApiError::unavailable("object storage", error),
            error @ StorageError::NotReplicated { .. } => ApiError::NotReplicated {
                cause: error.into(),
            },
            error @ StorageError::Config(_) => ApiError::internal(error),
        }
    }
}

impl From<UsernameError> for ApiError {
    fn from(error: UsernameError) -> Self {
        ApiError::Validation(error.to_string())
    }
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::TooShort | PasswordError::TooLong => {
                ApiError::Validation(error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(error: tower_sessions::session::Error) -> Self {
        use tower_sessions::session::Error;
        use tower_sessions::session_store::Error as StoreError;
        match error {
            // Backend errors are the database's (timeouts, refused connections): retryable. A
            // corrupt row never gets here: the store drops it and reports no session.
            Error::Store(StoreError::Backend(_)) => ApiError::unavailable("database", error),
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection.body_text();
        match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation(detail),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(detail),
            _ => ApiError::BadRequest(detail),
        }
    }
}

/// `axum::Json` whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
