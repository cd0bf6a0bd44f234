//! The client's address, for rate limits and the login lockout. The TCP peer, unless the service
//! is configured to sit behind `TRUSTED_PROXY_HOPS` proxies that each append the address they saw
//! to `X-Forwarded-For`: then the entry that many places from the right, the first one a trusted
//! proxy wrote. Entries further left are the client's own claims, which anyone can forge.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::internal("the connection's peer address is not recorded"))?;
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            state.config.trusted_proxy_hops,
        )))
    }
}

/// The client address given the TCP `peer` and `trusted_hops` proxies in front.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_hops: usize) -> IpAddr {
    if trusted_hops == 0 {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110 section 5.3).
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    // Fewer entries than proxies: the request did not come through them all (it reached the
    // service directly), so the header proves nothing.
    let Some(index) = entries.len().checked_sub(trusted_hops) else {
        return peer;
    };
    entries[index].parse().unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    const PEER: &str = "10.0.0.5";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(client_ip(ip(PEER), &forged, 0), ip(PEER));
    }

    #[test]
    fn behind_one_proxy_the_rightmost_entry_is_the_client() {
        // The client forged the first entry; the ALB appended the address it saw.
        let forwarded = headers(&["1.1.1.1, 198.51.100.7"]);
        assert_eq!(client_ip(ip(PEER), &forwarded, 1), ip("198.51.100.7"));
        let split = headers(&["1.1.1.1", "198.51.100.7"]);
        assert_eq!(client_ip(ip(PEER), &split, 1), ip("198.51.100.7"));
    }

    #[test]
    fn behind_two_proxies_the_second_from_the_right_is_the_client() {
        let forwarded = headers(&["1.1.1.1, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(client_ip(ip(PEER), &forwarded, 2), ip("198.51.100.7"));
    }

    #[test]
    fn a_missing_short_or_garbled_header_falls_back_to_the_peer() {
        assert_eq!(client_ip(ip(PEER), &HeaderMap::new(), 1), ip(PEER));
        assert_eq!(
            client_ip(ip(PEER), &headers(&["198.51.100.7"]), 2),
            ip(PEER)
        );
        assert_eq!(client_ip(ip(PEER), &headers(&["not-an-ip"]), 1), ip(PEER));
    }
}
