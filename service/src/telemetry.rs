//! Logs on stdout: one JSON object per line (or text for humans), and one line per request with
//! method, route, status, latency, request id and user id.

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use std::time::Duration;
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::configuration::LogFormat;

/// Installs the global subscriber writing to stdout. Calling it again (tests start several apps)
/// is harmless.
pub fn init(format: LogFormat, filter: &str) {
    install(format, filter, std::io::stdout);
}

/// Installs the global subscriber writing to `writer` (tests capture the JSON lines this way).
pub fn install<W>(format: LogFormat, filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
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

/// The request's span, kept in the request's extensions: layers inside the trace layer (the
/// session layer) run handlers in spans of their own, so `Span::current()` is not it there.
#[derive(Clone, Debug)]
pub struct RequestSpanHandle(pub Span);

/// Middleware, just inside the trace layer: remembers the request span.
pub async fn remember_request_span(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(RequestSpanHandle(Span::current()));
    next.run(request).await
}

/// Runs a storage read in a span of its own that carries the request id: JSON log lines show
/// the fields of their current span only (and re-entering the request span does not make it
/// current again), so this is how a line logged inside the read (a storage fallback read)
/// carries the request id. A WARN span, so it is there whenever the warning is.
pub async fn storage_read_span<F: std::future::Future>(
    headers: &axum::http::HeaderMap,
    future: F,
) -> F::Output {
    use tracing::Instrument;
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    future
        .instrument(tracing::warn_span!("storage_read", request_id))
        .await
}

/// Adds the user id to the request line.
pub fn record_user(extensions: &axum::http::Extensions, user_id: uuid::Uuid) {
    if let Some(RequestSpanHandle(span)) = extensions.get::<RequestSpanHandle>() {
        span.record("user_id", tracing::field::display(user_id));
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
