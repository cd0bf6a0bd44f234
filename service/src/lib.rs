//! data-processor: the application. `main.rs` only starts what this crate builds.
pub mod storage;
