//! The one error type the commands return, and the exit code each kind maps to.
//!
//! This module sits at the bottom of the crate's module graph: it imports only the leaf error
//! types of the modules below, and none of those modules may import it (the module-graph test
//! in testkit enforces that no cycle forms).

use crate::aws::AwsError;
use crate::config::ConfigError;
use crate::image::{ImageError, TargetError};
use crate::infra::InfraError;
use crate::lock::LockError;
use crate::task::TaskError;

/// Exit codes, documented in the README. A script can tell "fix the file" from "AWS said no"
/// from "the new version does not come up".
pub mod exit {
    pub const OK: i32 = 0;
    /// Anything not covered below (e.g. a bug, an I/O error writing output).
    pub const OTHER: i32 = 1;
    /// Bad command line or configuration; nothing was changed.
    pub const CONFIG: i32 = 2;
    /// An AWS call failed (credentials, permissions, a missing cluster, throttling after retries).
    pub const AWS: i32 = 3;
    /// The deployment failed (rolloutState FAILED) and ECS did not roll back.
    pub const ROLLOUT_FAILED: i32 = 4;
    /// The deployment failed and the circuit breaker rolled the service back.
    pub const ROLLED_BACK: i32 = 5;
    /// The deployment did not finish within `deployment.timeout`.
    pub const TIMED_OUT: i32 = 6;
    /// Building or pushing the image failed.
    pub const IMAGE: i32 = 7;
    /// A stack operation failed or was rolled back, or CloudFormation rejected its change set.
    pub const INFRA_FAILED: i32 = 8;
    /// Another release or rollback of the service holds its lock; nothing was changed.
    pub const LOCKED: i32 = 9;
    /// Another deployment (someone else's release or UpdateService) replaced ours before it
    /// finished; ours is not known-good, nor known to be broken.
    pub const SUPERSEDED: i32 = 10;
    /// `deployer run`: the one-off task never ran (RunTask `failures`, or it stopped before its
    /// container exited: CannotPullContainerError, missing secrets, no capacity).
    pub const TASK_NEVER_RAN: i32 = 11;
    /// `release` with `[release] migrate`: the migration task failed or never ran; the service
    /// was not updated and the revision registered for it was deregistered.
    pub const MIGRATION_FAILED: i32 = 12;
    /// Interrupted (Ctrl-C); a one-off task that was running has been stopped.
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A usage problem found after parsing (e.g. `--to` names an unknown revision).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// The rollout ended badly; the report has already been printed.
    #[error("deployment {deployment_id} failed: {reason}")]
    RolloutFailed {
        deployment_id: String,
        reason: String,
    },
    #[error("deployment {deployment_id} failed and was rolled back: {reason}")]
    RolledBack {
        deployment_id: String,
        reason: String,
    },
    #[error(
        "deployment {deployment_id} was superseded by deployment {by} ({task_definition}), started by another release or an UpdateService of {cluster}/{service}; see `deployer status`, then release again if {by} is not what should run"
    )]
    Superseded {
        deployment_id: String,
        by: String,
        task_definition: String,
        cluster: String,
        service: String,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "deployment {deployment_id} did not finish within {waited}; it is still running in ECS"
    )]
    TimedOut {
        deployment_id: String,
        waited: String,
    },
    #[error(transparent)]
    Task(#[from] TaskError),
    /// `deployer run`: the task ran and its container exited with `code` (not 0), which becomes
    /// deployer's exit code.
    #[error("task {task} exited with code {code}")]
    TaskExited { task: String, code: i32 },
    #[error(
        "migration failed: {what}; service {service} not updated, nothing recorded in the ledger{deregistered}{lines}"
    )]
    MigrationFailed {
        /// `task ID (family:rev) exited with code N`, or why it never ran.
        what: String,
        service: String,
        /// `; revision family:N deregistered`, or empty when the revision was reused.
        deregistered: String,
        /// The last log lines, already formatted (`\nlast log lines:\n  ...`), or empty.
        lines: String,
    },
    #[error("{0}")]
    Other(String),
}

impl From<TargetError> for DeployError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::Aws(e) => DeployError::Aws(e),
            TargetError::Image(e) => DeployError::Image(e),
        }
    }
}

impl DeployError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DeployError::Config(_) | DeployError::Usage(_) => exit::CONFIG,
            DeployError::Aws(_) => exit::AWS,
            DeployError::Image(_) => exit::IMAGE,
            DeployError::Infra(e) => match e {
                InfraError::Aws(_) => exit::AWS,
                InfraError::Template(_)
                | InfraError::UnknownStack { .. }
                | InfraError::NeedsDelete { .. }
                | InfraError::Parameter { .. }
                | InfraError::MissingStack { .. }
                | InfraError::NoServiceStack => exit::CONFIG,
                InfraError::ChangeSetFailed { .. } | InfraError::StackFailed(_) => {
                    exit::INFRA_FAILED
                }
                InfraError::TimedOut { .. } => exit::TIMED_OUT,
            },
            DeployError::RolloutFailed { .. } => exit::ROLLOUT_FAILED,
            DeployError::RolledBack { .. } => exit::ROLLED_BACK,
            DeployError::TimedOut { .. } => exit::TIMED_OUT,
            DeployError::Superseded { .. } => exit::SUPERSEDED,
            DeployError::Lock(LockError::Aws(_)) => exit::AWS,
            DeployError::Lock(LockError::Held(_)) => exit::LOCKED,
            DeployError::Task(e) => match e {
                TaskError::Aws(_) | TaskError::Lost { .. } => exit::AWS,
                TaskError::NeverRan { .. } => exit::TASK_NEVER_RAN,
                TaskError::TimedOut { .. } => exit::TIMED_OUT,
                TaskError::Interrupted { .. } => exit::INTERRUPTED,
            },
            // A shell sees only the low 8 bits; a code that would read as success is 1.
            DeployError::TaskExited { code, .. } => match code & 0xff {
                0 => exit::OTHER,
                c => c,
            },
            DeployError::MigrationFailed { .. } => exit::MIGRATION_FAILED,
            DeployError::Other(_) => exit::OTHER,
        }
    }
}
