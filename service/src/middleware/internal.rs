//! Endpoints for operators and their tools (`/metrics`, the database ping), not for the internet.
//! They answer 404 to any request a proxy forwarded: an ALB (like every common proxy) adds
//! `X-Forwarded-For`, which a client cannot take off, so through the load balancer they do not
//! exist. Scrapers reach them on the task's own address (ECS service discovery, a sidecar in the
//! task), where no proxy is involved.
//!
//! Hand-written: one header check. A second listener would also do, at the cost of a second port
//! in the task definition, the target group's security group and the health checks.

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn reject_forwarded(request: Request, next: Next) -> Response {
    if is_forwarded(request.headers()) {
        return ApiError::NotFound.into_response();
    }
    next.run(request).await
}

fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_request_with_a_forwarding_header_is_forwarded() {
        let mut headers = HeaderMap::new();
        assert!(!is_forwarded(&headers));
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        assert!(is_forwarded(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=203.0.113.7"),
        );
        assert!(is_forwarded(&headers));
    }
}
