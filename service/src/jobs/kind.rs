//! What a kind of job is to the worker: a name and an `execute` that turns a claimed job into its
//! outcome. The worker knows only this trait; `jobs::KINDS` lists the implementations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use async_trait::async_trait;

use crate::db::jobs::{self, Finish, JobRow};
use crate::state::AppState;

/// What a running job shares with its heartbeat and its CPU thread.
#[derive(Default)]
pub struct Control {
    /// Bytes of input processed so far (reported by the heartbeat).
    pub bytes: AtomicU64,
    /// Set to make the job stop at its next progress report.
    pub cancel: AtomicBool,
    /// Set when the job stopped because this replica is shutting down.
    pub releasing: AtomicBool,
}

#[async_trait]
pub trait JobKind: Send + Sync {
    /// The `kind` clients ask for and the queue stores.
    fn name(&self) -> &'static str;

    /// Runs `job` to its outcome. A `Succeeded` result object is deleted again by the worker when
    /// the outcome cannot be recorded because the job was cancelled (or its file deleted)
    /// meanwhile, so no result outlives its job.
    async fn execute(&self, state: &AppState, job: &JobRow, control: Arc<Control>) -> Finish;
}

/// A transient failure: the job is queued again after the backoff for this attempt
/// (`JOB_RETRY_BACKOFF`, doubled after each failed attempt, at most 5 minutes).
pub fn retry(state: &AppState, job: &JobRow, error: impl Into<String>) -> Finish {
    const MAX_BACKOFF: Duration = Duration::from_secs(300);
    let doublings = u32::try_from(job.attempts.max(1) - 1).unwrap_or(0).min(16);
    let backoff = state
        .config
        .job_retry_backoff
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF);
    Finish::Retry {
        error: error.into(),
        run_after_ms: jobs::now_ms() + backoff.as_millis() as i64,
    }
}

/// A permanent failure with `error` as its reason.
pub fn failed(error: impl Into<String>) -> Finish {
    Finish::Failed {
        error: error.into(),
    }
}
