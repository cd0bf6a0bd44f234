//! The "profile" job: per-column statistics of a CSV file, read from storage as a stream on a
//! thread of its own (CPU work never runs on the async runtime), the result stored as JSON next
//! to the file.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    let profiled = match run_on_own_thread(job.id, reader, control).await {
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

/// Profiles on a dedicated OS thread at a lower scheduling priority, so that a replica whose
/// workers are all busy still answers health checks and API requests promptly.
async fn run_on_own_thread(
    job: uuid::Uuid,
    reader: impl std::io::Read + Send + 'static,
    control: Arc<Control>,
) -> Option<Result<csv_profile::Profile, ProfileError>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("job-{}", job.simple()))
        .spawn(move || {
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
                ..ProfileOptions::default()
            };
            let _ = sender.send(csv_profile::profile(reader, &options, &mut progress));
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
