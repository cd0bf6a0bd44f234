//! A client's `x-request-id` is kept only when it is a plain token: it is copied into every log
//! line and into the response, so a long or odd value (spaces, quotes, control-like bytes) is
//! dropped here and the next layer gives the request a fresh UUID instead.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

/// The request id header: kept from the client when usable, else set, and echoed back.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client request id kept (a UUID is 36, a W3C trace id 32, an AWS X-Ray id 35).
const MAX_LEN: usize = 128;

pub async fn drop_unusable(mut request: Request, next: Next) -> Response {
    let usable = request
        .headers()
        .get(&REQUEST_ID)
        .is_none_or(|id| is_usable(id.as_bytes()));
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

fn is_usable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b'/' | b'+')
        })
}

#[cfg(test)]
mod tests {
    use super::is_usable;

    #[test]
    fn plain_tokens_are_kept_and_anything_else_is_not() {
        for id in [
            "trace-me-123",
            "6f1c1f2e-8a8e-4c1b-9d4e-1a2b3c4d5e6f",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ] {
            assert!(is_usable(id.as_bytes()), "{id}");
        }
        let long = "a".repeat(129);
        for id in [
            "",
            "two words",
            "quote\"d",
            "semi;colon",
            "<script>",
            long.as_str(),
        ] {
            assert!(!is_usable(id.as_bytes()), "{id}");
        }
    }
}
