//! Logs on stdout: one JSON object per line (or text for humans), and one line per request with
//! method, route, status, latency, request id and user id.

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use std::time::Duration;
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;

use crate::configuration::LogFormat;

/// Installs the global subscriber. Calling it again (tests start several apps) is harmless.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The request's span: what the request line carries. `user_id` is filled in by the
/// `AuthenticatedUser` extractor when the request has a session. Query strings are left out
/// (they may carry names or tokens).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "unmatched".to_string());
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            user_id = tracing::field::Empty,
        )
    }
}

/// A response extension naming the user a request authenticated (login), for the request line;
/// requests with a session get it from the `AuthenticatedUser` extractor.
#[derive(Clone, Copy, Debug)]
pub struct LoggedInUser(pub uuid::Uuid);

/// The one line per request, emitted inside the request span (so it carries its fields).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLine;

impl<B> OnResponse<B> for RequestLine {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        if let Some(LoggedInUser(id)) = response.extensions().get::<LoggedInUser>() {
            span.record("user_id", tracing::field::display(id));
        }
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::event!(Level::ERROR, status, latency_ms, "request");
        } else {
            tracing::event!(Level::INFO, status, latency_ms, "request");
        }
    }
}
