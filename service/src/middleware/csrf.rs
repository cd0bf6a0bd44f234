//! Cross-site request forgery protection for state-changing requests, from the headers browsers
//! send (OWASP "Verifying Origin With Standard Headers" and Fetch Metadata; the same rule as Go
//! 1.25's `http.CrossOriginProtection`). No token is needed: the session cookie is also
//! `SameSite=Lax`, and non-browser clients (which send neither header) cannot be forged.
//! It wraps the whole router, so the UI's form posts (`/login`, `/register`, `/logout`) are
//! checked the same way as the API's JSON requests.
//!
//! Hand-written because no maintained tower/axum crate implements the header-based check; the
//! token-based crates need per-form tokens this JSON API has no place for.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn reject_cross_site(request: Request, next: Next) -> Response {
    if is_safe(request.method()) || !is_cross_site(request.headers()) {
        return next.run(request).await;
    }
    ApiError::Forbidden("cross-site requests may not change state".into()).into_response()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `same-origin` is the page itself, `none` a user action (address bar, bookmark).
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Neither header: not a browser request (or a very old browser; SameSite covers it).
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    origin_host != Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn decides_from_fetch_metadata_then_origin() {
        assert!(!is_cross_site(&headers(&[])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "https://app.example"),
            ("host", "app.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "app.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "a")
        ])));
    }
}
