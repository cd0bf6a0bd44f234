//! Cross-cutting request handling, each a small `axum::middleware::from_fn` function.

pub mod client_ip;
pub mod csrf;
pub mod drain;
pub mod internal;
pub mod metrics;
pub mod problem;
pub mod request_id;
