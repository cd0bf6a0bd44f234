//! One module per page group; `layout` is the frame every page shares.

pub mod auth;
pub mod error;
pub mod file;
pub mod files;
pub mod layout;
pub mod profile;
