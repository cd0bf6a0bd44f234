//! The script and the stylesheet, compiled into the binary. Pages link them with a content hash
//! in the query (`asset_url`), so they can be cached for a year: a new build changes the URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The first 16 hex digits of the SHA-256 of both assets.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    hash.update(APP_JS);
    hash.update(APP_CSS);
    hex::encode(&hash.finalize()[..8])
});

/// The URL of asset `name` (`app.js`, `app.css`) as pages link it.
pub fn asset_url(name: &str) -> String {
    format!("/assets/{name}?v={}", *VERSION)
}

#[tracing::instrument(skip_all, fields(asset = %name))]
pub async fn serve(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (body, content_type) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response())
}
