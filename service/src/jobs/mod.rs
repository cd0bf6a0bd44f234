//! Processing jobs, run by workers on every replica from the queue in the database
//! (`db::jobs`). A job is claimed under a lease that a heartbeat extends; if the replica dies or
//! hangs, the lease runs out and another replica runs the job again (at-least-once, with an
//! idempotent result write). On shutdown, workers stop claiming, and a job still running when the
//! grace period ends is handed back to the queue.
//!
//! Chose a queue of our own over a queue crate: the crates that fit (apalis, graphile_worker,
//! sqlxmq...) each bring their own schema, pool handling or runtime model, and none runs the same
//! queue on both Postgres and SQLite with our statement timeouts; the whole queue is five
//! statements in `db::jobs`.

pub mod kind;
mod profile;
mod worker;

pub use kind::JobKind;
pub use worker::Workers;

/// The kinds of job the service knows.
pub static KINDS: &[&dyn JobKind] = &[&profile::Profile];

/// The kind named `name`, if the service knows it.
pub fn kind_named(name: &str) -> Option<&'static dyn JobKind> {
    KINDS.iter().copied().find(|kind| kind.name() == name)
}

/// The names of every kind, for error messages.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.name()).collect()
}
