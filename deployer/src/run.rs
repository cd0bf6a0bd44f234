//! `deployer run [--timeout D] [--] CMD...`: a one-off task of the service's current revision
//! (the PRIMARY deployment's, so the same image digest), placed and networked like the
//! service, with the app container's command overridden; its lines stream while it runs and its
//! container's exit code becomes deployer's.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::aws::Aws;
use crate::config::Config;
use crate::ecs::service;
use crate::ecs::taskdef::short_name;
use crate::error::DeployError;
use crate::logs::{LogLine, LogSource};
use crate::progress::Progress;
use crate::task::{self, Follow, TaskRequest};

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub task: String,
    /// `family:revision`
    pub task_definition: String,
    pub command: Vec<String>,
    pub exit_code: i32,
    pub stopped_reason: String,
    pub seconds: f64,
}

impl RunSummary {
    pub fn render(&self) -> String {
        format!(
            "task {} ({}) exited with code {} after {:.1}s",
            self.task, self.task_definition, self.exit_code, self.seconds
        )
    }
}

/// Runs `command` to its end. `on_line` gets each log line as it arrives; `cancel` resolving
/// (Ctrl-C) stops the task. A non-zero exit code is [`DeployError::TaskExited`].
#[tracing::instrument(skip_all, fields(service = %config.service.name))]
pub async fn run(
    aws: &Aws,
    config: &Config,
    command: Vec<String>,
    timeout: Duration,
    progress: &Progress,
    on_line: impl FnMut(&LogLine),
    cancel: impl Future<Output = ()>,
) -> Result<RunSummary, DeployError> {
    if command.is_empty() {
        return Err(DeployError::Usage(
            "deployer run needs a command, e.g. `deployer run -- migrate`".into(),
        ));
    }
    progress.step(format!("reading service {}", config.service.name));
    let (svc, td) = service::current_revision(&aws.ecs, &config.cluster, &config.service.name)
        .await?
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "service {} does not exist in cluster {}: `deployer release` creates it",
                config.service.name, config.cluster
            ))
        })?;
    let container = &config.task.container.name;
    let td_arn = td.task_definition_arn().unwrap_or_default().to_string();
    let source = LogSource::of(&td, container);
    if source.is_none() {
        progress.done(format!(
            "{} has no awslogs configuration for {container}: its lines are not shown",
            short_name(&td_arn)
        ));
    }
    let req = TaskRequest::like_service(
        &svc,
        &config.cluster,
        &td_arn,
        container,
        command.clone(),
        task::STARTED_BY_RUN,
    );
    progress.step(format!(
        "starting `{}` on {}",
        command.join(" "),
        short_name(&td_arn)
    ));
    let follow = Follow {
        timeout,
        poll_interval: config.deployment.poll_interval,
        logs: source.as_ref().map(|s| (&aws.logs, s)),
    };
    let stopped = task::run_to_end(&aws.ecs, &req, &follow, progress, on_line, cancel).await?;
    if stopped.exit_code != 0 {
        return Err(DeployError::TaskExited {
            task: stopped.task,
            code: stopped.exit_code,
        });
    }
    Ok(RunSummary {
        task: stopped.task,
        task_definition: stopped.task_definition,
        command,
        exit_code: stopped.exit_code,
        stopped_reason: stopped.stopped_reason,
        seconds: stopped.seconds,
    })
}

/// Resolves on Ctrl-C (SIGINT). The handler is installed when this is called, not when first
/// polled, so a Ctrl-C right after RunTask is not lost. From then on the signal no longer ends
/// the process by itself: callers that keep running afterwards restore that with
/// [`exit_on_ctrl_c`].
pub fn ctrl_c() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        #[cfg(unix)]
        match signal {
            Ok(mut s) => {
                s.recv().await;
            }
            // No handler could be installed: never cancel.
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// After [`ctrl_c`] was listened to, SIGINT ends the process again (exit 130), as it did before.
pub fn exit_on_ctrl_c() {
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(crate::error::exit::INTERRUPTED);
        }
    });
}
