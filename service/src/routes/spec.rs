//! `GET /openapi.json`: the description `routes::openapi` generates, made once.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::Unavailable;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The description, made once (it only changes with the code); each answer shares its bytes.
static SPEC: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    super::openapi()
        .to_json()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
});

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    operation_id = "openapi",
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object),
        (status = 503, response = Unavailable),
    )
)]
async fn openapi_json() -> Result<Response, ApiError> {
    let body = SPEC.as_ref().map_err(|e| ApiError::internal(e.clone()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response())
}
