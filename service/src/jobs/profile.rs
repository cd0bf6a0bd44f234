//! The "profile" job: per-column statistics of a CSV file, read from storage as a stream on a
//! thread of its own (CPU work never runs on the async runtime), the result stored as JSON next
//! to the file.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use csv_profile::{ProfileError, ProfileOptions};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::kind::{Control, JobKind, failed, retry};
use crate::db::files;
use crate::db::jobs::{Finish, JobRow};
use crate::state::AppState;
use crate::storage::StorageError;

/// Per-column statistics of a CSV file.
pub struct Profile;

#[async_trait]
impl JobKind for Profile {
    fn name(&self) -> &'static str {
        "profile"
    }

    async fn execute(&self, state: &AppState, job: &JobRow, control: Arc<Control>) -> Finish {
        execute(state, job, control).await
    }
}

/// Where the result of `job` on the file stored at `file_key` goes: next to the file, named by
/// the job, so a repeated attempt overwrites its own result and nothing else.
pub fn result_key(file_key: &str, job: uuid::Uuid) -> String {
    format!("{file_key}.jobs/{job}.json")
}

async fn execute(state: &AppState, job: &JobRow, control: Arc<Control>) -> Finish {
    let file = match files::find(&state.db, job.user_id, job.file_id).await {
        Ok(Some(file)) => file,
        Ok(None) => {
            return failed("the file was deleted");
        }
        Err(error) => {
            return retry(state, job, format!("database: {error}"));
        }
    };
    let object = match state.store.get(&file.object_key, None).await {
        Ok(object) => object,
        Err(StorageError::NotFound { .. }) => {
            return failed("the file's content is missing from storage");
        }
        Err(error) => {
            return retry(state, job, error.to_string());
        }
    };
    let reader = SyncIoBridge::new(StreamReader::new(object.body));
    let threads = CoreShare::take(state.config.profile_max_threads());
    let profiled = match run_on_own_thread(job.id, reader, control, threads).await {
        Some(result) => result,
        None => {
            return retry(state, job, "the profiling thread stopped unexpectedly");
        }
    };
    let profile = match profiled {
        Ok(profile) => profile,
        // Storage failing mid-read is transient; cancellation is decided by the caller.
        Err(error @ ProfileError::Io { .. }) => {
            return retry(state, job, error.to_string());
        }
        Err(error) => return failed(error.to_string()),
    };
    let summary = serde_json::json!({
        "rows": profile.rows,
        "columns": profile.columns,
        "bytes": profile.bytes,
        "delimiter": profile.delimiter,
        "has_header": profile.has_header,
    });
    let json = match serde_json::to_vec(&profile) {
        Ok(json) => json,
        Err(error) => return failed(format!("the result does not serialise: {error}")),
    };
    let key = result_key(&file.object_key, job.id);
    if let Err(error) = state
        .store
        .put_bytes(&key, "application/json", Bytes::from(json))
        .await
    {
        return retry(state, job, format!("storing the result: {error}"));
    }
    Finish::Succeeded {
        result_key: key,
        summary: summary.to_string(),
    }
}

/// Threads of this replica's profile jobs running now.
static PROFILE_THREADS_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// The threads one profile job runs on: the cores no other profile job is using when it starts
/// (a lone job uses them all), at least 1, at most `max`; given back when dropped. Jobs that
/// start together may briefly ask for more threads than there are cores: they run at a lower
/// priority, so that costs them time, not the API.
struct CoreShare {
    threads: usize,
}

impl CoreShare {
    fn take(max: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let in_use = PROFILE_THREADS_IN_USE.load(Ordering::Relaxed);
        let threads = threads_for(cores, in_use, max);
        PROFILE_THREADS_IN_USE.fetch_add(threads, Ordering::Relaxed);
        Self { threads }
    }
}

impl Drop for CoreShare {
    fn drop(&mut self) {
        PROFILE_THREADS_IN_USE.fetch_sub(self.threads, Ordering::Relaxed);
    }
}

fn threads_for(cores: usize, in_use: usize, max: usize) -> usize {
    cores.saturating_sub(in_use).clamp(1, max.max(1))
}

/// Profiles on a dedicated OS thread (and, with `share.threads > 1`, its helpers) at a lower
/// scheduling priority, so that a replica whose workers are all busy still answers health
/// checks and API requests promptly.
async fn run_on_own_thread(
    job: uuid::Uuid,
    reader: impl std::io::Read + Send + 'static,
    control: Arc<Control>,
    share: CoreShare,
) -> Option<Result<csv_profile::Profile, ProfileError>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("job-{}", job.simple()))
        .spawn(move || {
            // Threads inherit the priority of the thread that starts them.
            lower_this_threads_priority();
            let mut progress = |bytes: u64| {
                control.bytes.store(bytes, Ordering::Relaxed);
                if control.cancel.load(Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            let options = ProfileOptions {
                progress_interval_bytes: 256 * 1024,
                threads: share.threads,
                ..ProfileOptions::default()
            };
            let profiled = csv_profile::profile(reader, &options, &mut progress);
            drop(share);
            let _ = sender.send(profiled);
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start a profiling thread");
        return None;
    }
    receiver.await.ok()
}

fn lower_this_threads_priority() {
    // On Linux setpriority(PRIO_PROCESS, 0) applies to the calling thread only. Best effort: a
    // failure leaves the thread at normal priority.
    // SAFETY: plain syscall on the current thread, no memory passed.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

#[cfg(test)]
mod tests {
    use super::threads_for;

    #[test]
    fn a_job_gets_the_cores_other_profile_jobs_leave_free() {
        assert_eq!(threads_for(4, 0, 4), 4, "a lone job uses every core");
        assert_eq!(threads_for(4, 3, 4), 1);
        assert_eq!(threads_for(4, 6, 4), 1, "never fewer than one");
        assert_eq!(threads_for(8, 0, 2), 2, "never more than the maximum");
        assert_eq!(threads_for(2, 0, 0), 1);
    }
}
