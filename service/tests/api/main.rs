//! API tests: the real service (in-process, or the real binary where signals and exit codes
//! matter) against a real PostgreSQL database of its own.

mod helpers;
mod memory_store;

mod fallback;
mod files;
mod health;
mod jobs;
mod lifecycle;
mod limits;
mod openapi;
mod outage;
mod problems;
mod session;
mod ui;
mod users;
