//! Makes every error response problem+json, including those produced outside our handlers
//! (axum's 405, body-limit 413s, the session layer's 500 when saving fails). Responses that
//! already are problem+json pass through untouched, and so do the UI's HTML error pages (a
//! person reads those; `ui` renders them with the same status).

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{ErrorReport, PROBLEM_JSON, problem_response};

pub async fn errors_as_problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    // Logged here, inside the request's span, so the line carries the request id.
    if let Some(report) = response.extensions().get::<ErrorReport>() {
        if report.internal {
            tracing::error!(error = %report.chain, "request failed");
        } else {
            tracing::warn!(dependency = report.dependency, error = %report.chain, "dependency unavailable");
        }
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/html"));
    if is_problem || is_html {
        return response;
    }
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "request failed outside a handler");
    }
    let detail = match status.as_u16() {
        405 => "the method is not allowed on this resource".to_string(),
        413 => "the request body is too large".to_string(),
        s if s >= 500 => "the server failed to handle the request".to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let (mut parts, _) = response.into_parts();
    let mut problem = problem_response(status, detail);
    // Keep headers that matter to clients (Allow on 405, Retry-After, Set-Cookie).
    for name in [header::ALLOW, header::RETRY_AFTER, header::SET_COOKIE] {
        for value in parts.headers.remove(&name).into_iter() {
            problem.headers_mut().append(name.clone(), value);
        }
    }
    problem
}
