//! Cross-cutting request handling, each a small `axum::middleware::from_fn` function.

pub mod csrf;
pub mod metrics;
pub mod problem;
