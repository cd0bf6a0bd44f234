//! The HTTP API: one module per resource, merged here. Cross-cutting layers live in `startup`.
//!
//! Each module returns a `utoipa_axum` router whose routes come from `routes!(handler, ...)`:
//! a handler is routed at the path and methods of its `#[utoipa::path]`, so what is served and
//! what `/openapi.json` describes cannot drift apart.

mod files;
mod health;
mod jobs;
pub(crate) mod pagination;
pub(crate) mod session;
mod spec;
pub(crate) mod users;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every route of the service. A new resource is one module and one `.merge(...)` line. Every
/// route but the streaming ones answers within `request_timeout` or with 503.
pub fn router(request_timeout: Duration) -> Router<AppState> {
    let (timed, streaming) = resources();
    let (router, _) = timed
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .merge(streaming)
        .split_for_parts();
    router.fallback(not_found)
}

/// The OpenAPI description of every route `router` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (timed, streaming) = resources();
    timed.merge(streaming).into_openapi()
}

/// The routes that answer within the request timeout, and the streaming ones.
fn resources() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let timed = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(users::router())
        .merge(session::router())
        .merge(files::router())
        .merge(jobs::router())
        .merge(spec::router());
    (timed, files::streaming_router())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
