//! The browser UI: server-rendered pages (maud) and one small script, served by the same binary
//! as the API under `/`, `/login`, `/register`, `/files`, `/files/{id}` and `/assets/...`.
//!
//! The pages read the database directly; what changes state in the browser (upload, delete,
//! starting a profile) goes through the JSON API with `fetch`/XHR, so the API stays the one
//! implementation of those. Login, registration and logout are plain form posts (they work
//! without JavaScript) and share their logic with the API's handlers. Every UI response carries
//! a strict Content-Security-Policy: no inline script or style, nothing from other origins.
//! These routes are not in the OpenAPI document: they are HTML for people, not the API.

mod assets;
mod pages;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;

pub use pages::error::UiError;

/// The policy of every UI response: scripts, styles and requests only from this origin, no
/// inline code (maud escapes what it interpolates; this is the second line), no framing, forms
/// only to this origin. `img-src data:` is for nothing yet but costs nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes, answering within `request_timeout` (503 otherwise) like the API's.
pub fn router(request_timeout: Duration) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::auth::root))
        .route(
            "/login",
            get(pages::auth::login_page).post(pages::auth::log_in),
        )
        .route(
            "/register",
            get(pages::auth::register_page).post(pages::auth::register),
        )
        .route("/logout", post(pages::auth::log_out))
        .route("/files", get(pages::files::list))
        .route("/files/{id}", get(pages::file::show))
        .route("/assets/{name}", get(assets::serve))
        .layer(
            ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ))
                // Pages show one user's data: never kept by shared caches or the back button's
                // disk cache. Assets set their own (long, versioned) policy first.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    HeaderName::from_static("cross-origin-opener-policy"),
                    HeaderValue::from_static("same-origin"),
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    request_timeout,
                )),
        )
}
