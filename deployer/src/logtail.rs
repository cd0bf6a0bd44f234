//! `deployer logs [--follow] [--since 10m] [--deployment ID]`: the CloudWatch Logs lines of the
//! service's tasks, found through the awslogs options of the task definition; for one
//! deployment only the streams of its tasks (ECS starts them with `startedBy` = the deployment
//! id, `ecs-svc/...`). `--follow` reads again every poll interval and prints each line once.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_ecs::types::DesiredStatus;
use serde::Serialize;

use crate::aws::{Aws, AwsError, aws_err};
use crate::config::Config;
use crate::ecs::{service, taskdef};
use crate::error::DeployError;
use crate::logs::{Cursor, LogLine, LogSource, Streams, millis_ago, task_id};
use crate::progress::Progress;

pub struct LogsArgs {
    pub follow: bool,
    pub since: Duration,
    /// `ecs-svc/1234567890123456789` or just the number.
    pub deployment: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogsSummary {
    pub group: String,
    /// The stream prefix, or the streams of the deployment's tasks.
    pub streams: Vec<String>,
    pub lines: Vec<LogLine>,
}

impl LogsSummary {
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(LogLine::render)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `1234` -> `ecs-svc/1234`; an id with its prefix stays as it is.
pub fn deployment_id(id: &str) -> String {
    if id.contains('/') {
        id.to_string()
    } else {
        format!("ecs-svc/{id}")
    }
}

/// Reads the lines since `args.since`; with `follow`, hands every new line to `on_line` until
/// `cancel` resolves (Ctrl-C) and returns what it printed. Without `follow` the lines are
/// returned, not handed out.
#[tracing::instrument(skip_all, fields(service = %config.service.name))]
pub async fn logs(
    aws: &Aws,
    config: &Config,
    args: &LogsArgs,
    progress: &Progress,
    mut on_line: impl FnMut(&LogLine),
    cancel: impl Future<Output = ()>,
) -> Result<LogsSummary, DeployError> {
    let (svc, current) = service::current_revision(&aws.ecs, &config.cluster, &config.service.name)
        .await?
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "service {} does not exist in cluster {}",
                config.service.name, config.cluster
            ))
        })?;
    let deployment = args.deployment.as_deref().map(deployment_id);
    // A deployment still listed may run another revision, with other log options.
    let td = match deployment.as_deref().and_then(|id| {
        svc.deployments()
            .iter()
            .find(|d| d.id() == Some(id))
            .and_then(|d| d.task_definition())
    }) {
        Some(arn) if Some(arn) != current.task_definition_arn() => {
            taskdef::describe(&aws.ecs, arn).await?.unwrap_or(current)
        }
        _ => current,
    };
    let container = &config.task.container.name;
    let source = LogSource::of(&td, container).ok_or_else(|| {
        DeployError::Usage(format!(
            "{} has no awslogs log configuration (group and stream prefix) for container {container}; set [task.logs] and release",
            taskdef::short_name(td.task_definition_arn().unwrap_or_default())
        ))
    })?;
    let client = source.client(&aws.logs);
    let streams = streams(aws, config, &source, deployment.as_deref()).await?;
    let mut cursor = Cursor::new(millis_ago(args.since));
    progress.step(format!("reading {}", source.group));
    let first = cursor.read(&client, &source.group, &streams).await?;
    let mut summary = LogsSummary {
        group: source.group.clone(),
        streams: match &streams {
            Streams::Prefix(p) => vec![format!("{p}*")],
            Streams::Named(n) => n.iter().cloned().collect(),
        },
        lines: vec![],
    };
    if !args.follow {
        summary.lines = first;
        return Ok(summary);
    }
    progress.finish();
    first.iter().for_each(&mut on_line);
    tokio::pin!(cancel);
    loop {
        tokio::select! {
            () = &mut cancel => return Ok(summary),
            () = tokio::time::sleep(config.deployment.poll_interval) => {}
        }
        // A deployment gains tasks while it rolls out.
        let streams = match deployment.as_deref() {
            Some(_) => self::streams(aws, config, &source, deployment.as_deref()).await?,
            None => streams.clone(),
        };
        match cursor.read(&client, &source.group, &streams).await {
            Ok(lines) => lines.iter().for_each(&mut on_line),
            // Following survives a passing error; the next poll reads from the same cursor.
            Err(e) => tracing::warn!(error = %e, "reading log lines failed; trying again"),
        }
    }
}

/// Every task stream of the container, or those of the deployment's tasks.
async fn streams(
    aws: &Aws,
    config: &Config,
    source: &LogSource,
    deployment: Option<&str>,
) -> Result<Streams, AwsError> {
    let Some(id) = deployment else {
        return Ok(Streams::Prefix(source.tasks_prefix()));
    };
    let mut names = BTreeSet::new();
    // ListTasks lists RUNNING tasks unless asked for STOPPED ones (kept about an hour).
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let mut token: Option<String> = None;
        loop {
            let out = aws
                .ecs
                .list_tasks()
                .cluster(&config.cluster)
                .started_by(id)
                .desired_status(status.clone())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(aws_err("ecs:ListTasks"))?;
            names.extend(out.task_arns().iter().map(|a| source.stream(task_id(a))));
            match out.next_token() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(Streams::Named(names))
}
