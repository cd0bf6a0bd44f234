//! One-off ECS tasks (`deployer run`, the release's migration): RunTask from a given revision
//! with the service's placement and network settings and the app container's command
//! overridden, its log lines streamed while it runs, followed until STOPPED within a deadline,
//! and stopped (StopTask) when the deadline passes or the user interrupts.
//!
//! This module sits below `error` (which maps [`TaskError`] to exit codes): it imports neither
//! `error` nor `ecs`.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerOverride, LaunchType, NetworkConfiguration, Service,
    Task, TaskOverride, TaskStopCode,
};
use serde::Serialize;

use crate::aws::{AwsError, aws_err};
use crate::logs::{self, Cursor, LogLine, LogSource, Streams};
use crate::progress::Progress;

/// `startedBy` of the tasks `deployer run` starts (ECS allows letters, digits, `-`, `_`, `/`).
pub const STARTED_BY_RUN: &str = "deployer/run";
/// `startedBy` of a release's migration task.
pub const STARTED_BY_MIGRATE: &str = "deployer/migrate";

/// Log lines kept for the summary (a failed migration shows them).
const KEPT_LINES: usize = 20;

/// What to start.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub cluster: String,
    /// ARN (or `family:revision`) of the revision to run.
    pub task_definition: String,
    /// The container whose command is overridden (the app container).
    pub container: String,
    pub command: Vec<String>,
    pub started_by: String,
    pub launch_type: Option<LaunchType>,
    /// Set instead of a launch type when the service uses capacity providers.
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub platform_version: Option<String>,
    pub network: Option<NetworkConfiguration>,
}

impl TaskRequest {
    /// Placed and networked like `service`'s PRIMARY deployment (the service's own settings
    /// when it has none), running `task_definition`.
    pub fn like_service(
        service: &Service,
        cluster: &str,
        task_definition: &str,
        container: &str,
        command: Vec<String>,
        started_by: &str,
    ) -> Self {
        let primary = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        let capacity_provider_strategy = match primary {
            Some(d) if !d.capacity_provider_strategy().is_empty() => {
                d.capacity_provider_strategy().to_vec()
            }
            _ => service.capacity_provider_strategy().to_vec(),
        };
        let launch_type = if capacity_provider_strategy.is_empty() {
            primary
                .and_then(|d| d.launch_type())
                .or(service.launch_type())
                .cloned()
        } else {
            // RunTask refuses both at once.
            None
        };
        Self {
            cluster: cluster.to_string(),
            task_definition: task_definition.to_string(),
            container: container.to_string(),
            command,
            started_by: started_by.to_string(),
            launch_type,
            capacity_provider_strategy,
            platform_version: primary
                .and_then(|d| d.platform_version())
                .or(service.platform_version())
                .map(str::to_string),
            network: primary
                .and_then(|d| d.network_configuration())
                .or(service.network_configuration())
                .cloned(),
        }
    }
}

/// How a task that ran ended.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub task: String,
    pub task_definition: String,
    pub exit_code: i32,
    pub stopped_reason: String,
    /// The last log lines, oldest first.
    pub last_lines: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// RunTask refused it (`failures`), or it stopped without its container ever exiting
    /// (image pull, secrets, resources).
    #[error("task {task} never ran: {reason}")]
    NeverRan {
        task: String,
        reason: String,
        last_lines: Vec<String>,
    },
    #[error("task {task} did not stop within {waited}; deployer stopped it (StopTask)")]
    TimedOut {
        task: String,
        waited: String,
        last_lines: Vec<String>,
    },
    #[error("interrupted; deployer stopped task {task} (StopTask)")]
    Interrupted { task: String },
    /// DescribeTasks failed (after the retries) while the task ran: deployer cannot tell how
    /// it ends, so it tries to stop it rather than leave it running unwatched.
    #[error("lost track of task {task}: {error}; {what}")]
    Lost {
        task: String,
        error: AwsError,
        /// `deployer stopped it (StopTask)`, or how to stop it by hand.
        what: String,
    },
}

impl TaskError {
    /// Log lines the task wrote before it ended this way.
    pub fn last_lines(&self) -> &[String] {
        match self {
            TaskError::NeverRan { last_lines, .. } | TaskError::TimedOut { last_lines, .. } => {
                last_lines
            }
            _ => &[],
        }
    }
}

/// How long to follow and where the lines go.
pub struct Follow<'a> {
    pub timeout: Duration,
    pub poll_interval: Duration,
    /// The logs client and where the container's lines are; `None` = no lines streamed.
    pub logs: Option<(&'a aws_sdk_cloudwatchlogs::Client, &'a LogSource)>,
}

/// Starts the task, streams its lines to `on_line` until it stops, and returns its container's
/// exit code. `cancel` resolving (Ctrl-C) or the deadline passing stops the task.
#[tracing::instrument(skip_all, fields(task_definition = %req.task_definition))]
pub async fn run_to_end(
    ecs: &aws_sdk_ecs::Client,
    req: &TaskRequest,
    follow: &Follow<'_>,
    progress: &Progress,
    mut on_line: impl FnMut(&LogLine),
    cancel: impl Future<Output = ()>,
) -> Result<Stopped, TaskError> {
    let started = Instant::now();
    let arn = start(ecs, req).await?;
    let id = logs::task_id(&arn).to_string();
    progress.step(format!("task {id} started"));
    let client = follow.logs.map(|(c, s)| (s.client(c), s));
    let streams = follow
        .logs
        .map(|(_, s)| Streams::Named([s.stream(&id)].into_iter().collect()));
    // The task cannot have written anything before it was started.
    let mut cursor = Cursor::new(logs::millis_ago(Duration::from_secs(5)));
    let mut kept: Vec<String> = Vec::new();
    let mut drain = async |cursor: &mut Cursor, kept: &mut Vec<String>| {
        let (Some((client, source)), Some(streams)) = (&client, &streams) else {
            return;
        };
        match cursor.read(client, &source.group, streams).await {
            Ok(lines) => {
                for l in &lines {
                    on_line(l);
                    kept.push(l.message.trim_end().to_string());
                }
                let excess = kept.len().saturating_sub(KEPT_LINES);
                kept.drain(..excess);
            }
            // The stream appears only once the container writes; a group that does not exist
            // yet or a passing error must not end the task's follow.
            Err(e) => tracing::debug!(error = %e, "log lines unavailable"),
        }
    };
    tokio::pin!(cancel);
    let mut last_status = String::new();
    loop {
        let task = match describe(ecs, &req.cluster, &arn).await {
            Ok(t) => t,
            Err(error) => {
                let what = match stop(ecs, &req.cluster, &arn, "deployer: lost track of it").await {
                    Ok(()) => "deployer stopped it (StopTask)".to_string(),
                    Err(e) => format!(
                        "it may still be running ({e}): aws ecs stop-task --cluster {} --task {id}",
                        req.cluster
                    ),
                };
                return Err(TaskError::Lost {
                    task: id,
                    error,
                    what,
                });
            }
        };
        let status = task.last_status().unwrap_or_default().to_string();
        if status != last_status {
            progress.step(format!("task {id}: {status}"));
            last_status = status.clone();
        }
        drain(&mut cursor, &mut kept).await;
        if status == "STOPPED" {
            // The driver may flush the last lines after ECS records the stop.
            tokio::time::sleep(follow.poll_interval).await;
            drain(&mut cursor, &mut kept).await;
            return judge(&task, &req.container, &id, kept, started.elapsed());
        }
        if started.elapsed() + follow.poll_interval > follow.timeout {
            stop(ecs, &req.cluster, &arn, "deployer: deadline passed").await?;
            drain(&mut cursor, &mut kept).await;
            return Err(TaskError::TimedOut {
                task: id,
                waited: humantime::format_duration(follow.timeout).to_string(),
                last_lines: kept,
            });
        }
        tokio::select! {
            () = &mut cancel => {
                stop(ecs, &req.cluster, &arn, "deployer: interrupted").await?;
                return Err(TaskError::Interrupted { task: id });
            }
            () = tokio::time::sleep(follow.poll_interval) => {}
        }
    }
}

/// The verdict on a STOPPED task: the app container's exit code, or why it never ran.
fn judge(
    task: &Task,
    container: &str,
    id: &str,
    last_lines: Vec<String>,
    took: Duration,
) -> Result<Stopped, TaskError> {
    let c = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(container))
        .or(task.containers().first());
    let stopped_reason = task.stopped_reason().unwrap_or_default().to_string();
    match c.and_then(|c| c.exit_code()) {
        Some(exit_code) => Ok(Stopped {
            task: id.to_string(),
            task_definition: short(task.task_definition_arn().unwrap_or_default()),
            exit_code,
            stopped_reason,
            last_lines,
            seconds: took.as_secs_f64(),
        }),
        None => {
            // The container's reason names the cause (`CannotPullContainerError: ...`); the
            // task's says which container (`Essential container in task exited`) or who stopped it.
            let mut parts: Vec<String> = Vec::new();
            if let Some(r) = c.and_then(|c| c.reason()) {
                parts.push(r.to_string());
            }
            if !stopped_reason.is_empty()
                && !parts.iter().any(|p| p.starts_with(stopped_reason.as_str()))
            {
                parts.push(stopped_reason.clone());
            }
            if let Some(code) = task.stop_code()
                && *code != TaskStopCode::EssentialContainerExited
            {
                parts.push(format!("stop code {}", code.as_str()));
            }
            if parts.is_empty() {
                parts.push("stopped without an exit code".into());
            }
            Err(TaskError::NeverRan {
                task: id.to_string(),
                reason: parts.join("; "),
                last_lines,
            })
        }
    }
}

fn short(arn: &str) -> String {
    arn.rsplit_once("task-definition/")
        .map_or(arn, |(_, s)| s)
        .to_string()
}

/// RunTask; `failures` (no capacity, a missing revision) mean it never ran.
#[tracing::instrument(skip_all)]
pub async fn start(ecs: &aws_sdk_ecs::Client, req: &TaskRequest) -> Result<String, TaskError> {
    let out = ecs
        .run_task()
        .cluster(&req.cluster)
        .task_definition(&req.task_definition)
        .count(1)
        .started_by(&req.started_by)
        .set_launch_type(req.launch_type.clone())
        .set_capacity_provider_strategy(
            Some(req.capacity_provider_strategy.clone()).filter(|s| !s.is_empty()),
        )
        .set_platform_version(req.platform_version.clone())
        .set_network_configuration(req.network.clone())
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name(&req.container)
                        .set_command(Some(req.command.clone()))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("ecs:RunTask"))?;
    if let Some(arn) = out.tasks().first().and_then(|t| t.task_arn()) {
        return Ok(arn.to_string());
    }
    let reason = out
        .failures()
        .iter()
        .map(|f| {
            let mut s = f.reason().unwrap_or("unknown reason").to_string();
            if let Some(d) = f.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(TaskError::NeverRan {
        task: "(none started)".into(),
        reason: if reason.is_empty() {
            "RunTask started no task and gave no reason".into()
        } else {
            format!("RunTask: {reason}")
        },
        last_lines: vec![],
    })
}

#[tracing::instrument(skip(ecs))]
pub async fn describe(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arn: &str,
) -> Result<Task, AwsError> {
    let out = ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(arn)
        .send()
        .await
        .map_err(aws_err("ecs:DescribeTasks"))?;
    out.tasks().first().cloned().ok_or_else(|| AwsError {
        operation: "ecs:DescribeTasks",
        code: out
            .failures()
            .first()
            .and_then(|f| f.reason())
            .map(str::to_string),
        message: format!("task {arn} is not known to ECS (any more)"),
    })
}

#[tracing::instrument(skip(ecs))]
pub async fn stop(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arn: &str,
    reason: &str,
) -> Result<(), AwsError> {
    ecs.stop_task()
        .cluster(cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map_err(aws_err("ecs:StopTask"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, Deployment};

    use super::*;

    fn network(subnet: &str) -> NetworkConfiguration {
        NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .subnets(subnet)
                    .security_groups("sg-1")
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn a_one_off_task_is_placed_like_the_primary_deployment() {
        let service = Service::builder()
            .launch_type(LaunchType::Fargate)
            .platform_version("1.3.0")
            .network_configuration(network("subnet-old"))
            .deployments(
                Deployment::builder()
                    .status("ACTIVE")
                    .network_configuration(network("subnet-older"))
                    .build(),
            )
            .deployments(
                Deployment::builder()
                    .status("PRIMARY")
                    .capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider("FARGATE_SPOT")
                            .weight(1)
                            .build()
                            .unwrap(),
                    )
                    .platform_version("1.4.0")
                    .network_configuration(network("subnet-new"))
                    .build(),
            )
            .build();
        let req = TaskRequest::like_service(&service, "c", "td:2", "app", vec!["x".into()], "s");
        assert_eq!(req.launch_type, None, "RunTask takes one or the other");
        assert_eq!(
            req.capacity_provider_strategy[0].capacity_provider(),
            "FARGATE_SPOT"
        );
        assert_eq!(req.platform_version.as_deref(), Some("1.4.0"));
        assert_eq!(req.network, Some(network("subnet-new")));

        // Without deployments listed: the service's own settings.
        let plain = Service::builder()
            .launch_type(LaunchType::Fargate)
            .platform_version("1.3.0")
            .network_configuration(network("subnet-old"))
            .build();
        let req = TaskRequest::like_service(&plain, "c", "td:2", "app", vec![], "s");
        assert_eq!(req.launch_type, Some(LaunchType::Fargate));
        assert!(req.capacity_provider_strategy.is_empty());
        assert_eq!(req.platform_version.as_deref(), Some("1.3.0"));
        assert_eq!(req.network, Some(network("subnet-old")));
    }
}
