//! The worker loop: claim, run under a heartbeat, finish; and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::kind::{Control, failed};
use crate::db::jobs::{self, Finish, JobRow};
use crate::report::report;
use crate::state::AppState;

/// The workers of this replica.
pub struct Workers {
    /// Cancelled at shutdown: stop claiming new jobs.
    stop_claiming: CancellationToken,
    /// Cancelled when the grace period is over: hand running jobs back to the queue.
    release: CancellationToken,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Starts `config.job_workers()` workers.
    pub fn start(state: AppState) -> Self {
        let stop_claiming = CancellationToken::new();
        let release = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let count = state.config.job_workers();
        for index in 0..count {
            let span = tracing::info_span!("worker", index);
            tasks.spawn(
                worker_loop(state.clone(), stop_claiming.clone(), release.clone()).instrument(span),
            );
        }
        tracing::info!(workers = count, lease = ?state.config.job_lease, "job workers started");
        Self {
            stop_claiming,
            release,
            tasks,
        }
    }

    /// Stops claiming at once; running jobs may finish within `grace`, then the rest are handed
    /// back to the queue (another replica continues them). Returns when every worker has ended.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop_claiming.cancel();
        let mut deadline = tokio::time::Instant::now() + grace;
        let mut releasing = false;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(_) if !releasing => {
                    tracing::info!("grace period over: releasing running jobs");
                    self.release.cancel();
                    releasing = true;
                    // Releasing is one UPDATE per job; bounded so shutdown cannot hang on a
                    // dead database.
                    deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                }
                Err(_) => {
                    tracing::warn!("jobs not released in time; their leases will expire");
                    self.tasks.abort_all();
                    return;
                }
            }
        }
    }
}

async fn worker_loop(
    state: AppState,
    stop_claiming: CancellationToken,
    release: CancellationToken,
) {
    let lease_ms = state.config.job_lease.as_millis() as i64;
    let mut idle_polls: u32 = 0;
    while !stop_claiming.is_cancelled() {
        let owner = format!("{}/{}", state.replica_id, uuid::Uuid::new_v4().simple());
        match jobs::claim(&state.db, &owner, lease_ms).await {
            Ok(Some(job)) => {
                idle_polls = 0;
                let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
                run(&state, job, &owner, &release).instrument(span).await;
                continue;
            }
            Ok(None) => {
                idle_polls = idle_polls.saturating_add(1);
                // Jobs whose every attempt died are failed by whichever worker is idle.
                if idle_polls % 10 == 1
                    && let Err(error) = jobs::fail_exhausted(&state.db).await
                {
                    tracing::debug!(error = %report(&error), "checking for exhausted jobs failed");
                }
            }
            Err(error) => tracing::warn!(error = %report(&error), "claiming a job failed"),
        }
        // A queued job wakes one idle worker at once (the change feed); the poll is the fallback
        // for what sends no notification (a lease expiring, a retry's backoff ending). Jitter
        // spreads the replicas' polls instead of having them all query at once.
        let jitter = Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 2);
        tokio::select! {
            () = stop_claiming.cancelled() => break,
            () = state.job_queued.notified() => {}
            () = tokio::time::sleep(state.config.job_poll_interval + jitter) => {}
        }
    }
}

/// Runs one claimed job to its end and records the outcome.
async fn run(state: &AppState, job: JobRow, owner: &str, release: &CancellationToken) {
    let started = Instant::now();
    let control = Arc::new(Control::default());
    let heartbeat = tokio::spawn(
        heartbeat(
            state.clone(),
            job.id,
            owner.to_string(),
            control.clone(),
            release.clone(),
        )
        .in_current_span(),
    );
    let finish = match super::kind_named(&job.kind) {
        Some(kind) => kind.execute(state, &job, control.clone()).await,
        // Queued by a newer release that knows a kind this one does not.
        None => failed(format!("unknown job kind {:?}", job.kind)),
    };
    heartbeat.abort();
    let finish = if control.releasing.load(Ordering::SeqCst) {
        Finish::Released
    } else {
        finish
    };
    match &finish {
        Finish::Succeeded { .. } => tracing::info!(elapsed = ?started.elapsed(), "job succeeded"),
        Finish::Failed { error } => tracing::info!(%error, "job failed"),
        Finish::Retry { error, .. } => {
            tracing::warn!(%error, "job attempt failed; it will be retried")
        }
        Finish::Released => tracing::info!("job released to the queue"),
    }
    record(state, &job, owner, &finish).await;
}

/// Writes the outcome, retrying while the database is unavailable for up to a lease: past that,
/// the lease has expired and another replica runs the job again anyway.
async fn record(state: &AppState, job: &JobRow, owner: &str, finish: &Finish) {
    let deadline = Instant::now() + state.config.job_lease;
    let mut pause = Duration::from_millis(100);
    loop {
        match jobs::finish(&state.db, job.id, owner, job.attempts, finish).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::info!("the job was cancelled or taken over meanwhile; outcome discarded");
                discard_result(state, finish).await;
                return;
            }
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(error = %report(&error), "recording the job's outcome failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(error = %report(&error), "could not record the job's outcome; its lease will expire");
                return;
            }
        }
    }
}

/// Deletes the result object of an outcome that was not recorded. The job was cancelled (its
/// file deleted) or taken over: in the first case nothing else would ever delete the object (the
/// file's delete lists results from rows, and this one has none); in the second the new owner
/// writes the same key again.
async fn discard_result(state: &AppState, finish: &Finish) {
    let Finish::Succeeded { result_key, .. } = finish else {
        return;
    };
    if let Err(error) = state.store.delete(result_key).await {
        tracing::warn!(error = %report(&error), key = result_key, "deleting the result of a discarded outcome failed");
    }
}

/// Renews the lease every third of it and reports progress. Stops the job when the lease is no
/// longer ours (cancelled, or taken over after we failed to renew it in time) or when the
/// replica releases its jobs.
async fn heartbeat(
    state: AppState,
    id: uuid::Uuid,
    owner: String,
    control: Arc<Control>,
    release: CancellationToken,
) {
    let lease = state.config.job_lease;
    let mut last_renewed = Instant::now();
    loop {
        tokio::select! {
            () = release.cancelled() => {
                control.releasing.store(true, Ordering::SeqCst);
                control.cancel.store(true, Ordering::SeqCst);
                return;
            }
            () = tokio::time::sleep(lease / 3) => {}
        }
        let bytes = control.bytes.load(Ordering::Relaxed) as i64;
        match jobs::heartbeat(&state.db, id, &owner, lease.as_millis() as i64, bytes).await {
            Ok(true) => last_renewed = Instant::now(),
            Ok(false) => {
                tracing::info!("lease lost (job cancelled or taken over): stopping");
                control.cancel.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) if last_renewed.elapsed() < lease => {
                tracing::warn!(error = %report(&error), "renewing the job's lease failed; retrying");
            }
            Err(error) => {
                tracing::warn!(error = %report(&error), "lease expired without renewal: stopping, another replica may run it");
                control.cancel.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}
