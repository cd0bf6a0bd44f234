//! Failures of UI pages: an HTML page with the same status, title and detail the API would
//! answer (problem+json is for programs), or a redirect to the login page without a session.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::db::DbError;
use crate::error::ApiError;

use super::layout;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The stored profile of a job does not decode (written by an incompatible release).
    #[error("the stored profile does not decode")]
    ProfileUnreadable(#[source] serde_json::Error),
    /// A stored profile larger than a page should hold.
    #[error("the stored profile is {0} bytes, more than a page shows")]
    ProfileTooLarge(u64),
}

/// A database failure answers as the API's would (503 while it is unavailable).
impl From<DbError> for UiError {
    fn from(error: DbError) -> Self {
        UiError::Api(error.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let api = match self {
            UiError::Api(ApiError::Unauthorized) => {
                return Redirect::to("/login").into_response();
            }
            UiError::Api(api) => api,
            other => ApiError::internal(other),
        };
        let status = api.status();
        let detail = api.detail();
        // The API's response keeps what the middleware and clients need from it: the error
        // report (logged inside the request span), Retry-After.
        let (mut parts, _) = api.into_response().into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let page = layout::error_page(status, &detail);
        Response::from_parts(parts, Body::from(page.into_string()))
    }
}

/// A page body as a response with `status`.
pub fn html(status: StatusCode, page: maud::Markup) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page.into_string(),
    )
        .into_response()
}
