//! The HTTP API: one module per resource, merged here. Cross-cutting layers live in `startup`.

mod files;
mod health;
mod jobs;
mod pagination;
mod session;
mod users;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of the service. A new resource is one module and one `.merge(...)` line. Every
/// route but the streaming ones answers within `request_timeout` or with 503.
pub fn router(request_timeout: Duration) -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(users::router())
        .merge(session::router())
        .merge(files::router())
        .merge(jobs::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .merge(files::streaming_router())
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
