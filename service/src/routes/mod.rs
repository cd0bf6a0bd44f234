//! The HTTP API: one module per resource, merged here. Cross-cutting layers live in `startup`.

mod files;
mod health;
mod jobs;
mod pagination;
mod session;
mod users;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of the service. A new resource is one module and one `.merge(...)` line.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(users::router())
        .merge(session::router())
        .merge(files::router())
        .merge(jobs::router())
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
