//! One screen that explains a failed rollout: why tasks stopped (reasons and exit codes), what
//! the load balancer thinks of the targets, and what ECS said (e.g. "unable to place").

use aws_sdk_ecs::types::DesiredStatus;
use serde::Serialize;

use crate::aws::{AwsError, aws_err};
use crate::logs::{self, LogSource};

/// Log lines shown per stopped task.
const LOG_LINES: usize = 10;

#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureReport {
    pub stopped_tasks: Vec<StoppedTask>,
    pub unhealthy_targets: Vec<String>,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoppedTask {
    pub task: String,
    pub task_definition: String,
    pub stopped_reason: String,
    /// `container: exit code N (reason)`
    pub containers: Vec<String>,
    /// The app container's last log lines (CloudWatch Logs), oldest first.
    pub last_log_lines: Vec<String>,
}

/// Where the report reads the stopped tasks' log lines.
pub struct Logs<'a> {
    pub client: &'a aws_sdk_cloudwatchlogs::Client,
    pub source: &'a LogSource,
}

/// Each part is collected independently: a report missing one part beats no report.
#[tracing::instrument(skip(ecs, elb, logs))]
pub async fn collect(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    logs: Option<Logs<'_>>,
    cluster: &str,
    service: &str,
    deployment_id: &str,
    target_group_arn: Option<&str>,
) -> FailureReport {
    let mut report = FailureReport::default();
    match stopped_tasks(ecs, cluster, service, deployment_id).await {
        Ok(t) => report.stopped_tasks = t,
        Err(e) => report
            .events
            .push(format!("(stopped tasks unavailable: {e})")),
    }
    if let Some(l) = logs {
        let client = l.source.client(l.client);
        for t in &mut report.stopped_tasks {
            match logs::last_lines(&client, l.source, &t.task, LOG_LINES).await {
                Ok(lines) => t.last_log_lines = lines,
                // Said once: the next task's call would wait out the same timeouts.
                Err(e) => {
                    t.last_log_lines = vec![format!("(log lines unavailable: {e})")];
                    break;
                }
            }
        }
    }
    if let Some(tg) = target_group_arn {
        match unhealthy_targets(elb, tg).await {
            Ok(t) => report.unhealthy_targets = t,
            Err(e) => report
                .unhealthy_targets
                .push(format!("(target health unavailable: {e})")),
        }
    }
    match super::service::describe(ecs, cluster, service).await {
        Ok(Some(s)) => {
            report.events.extend(
                s.events()
                    .iter()
                    .take(10)
                    .map(|e| e.message().unwrap_or_default().to_string()),
            );
        }
        Ok(None) => {}
        Err(e) => report
            .events
            .push(format!("(service events unavailable: {e})")),
    }
    report
}

async fn stopped_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    deployment_id: &str,
) -> Result<Vec<StoppedTask>, AwsError> {
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(DesiredStatus::Stopped)
        .max_results(20)
        .send()
        .await
        .map_err(aws_err("ecs:ListTasks"))?;
    if arns.task_arns().is_empty() {
        return Ok(vec![]);
    }
    let tasks = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns.task_arns().to_vec()))
        .send()
        .await
        .map_err(aws_err("ecs:DescribeTasks"))?;
    let all = tasks.tasks();
    // Tasks of this deployment carry its id in startedBy; older ones explain less.
    let ours: Vec<_> = all
        .iter()
        .filter(|t| t.started_by() == Some(deployment_id))
        .collect();
    let chosen = if ours.is_empty() {
        all.iter().collect()
    } else {
        ours
    };
    Ok(chosen
        .into_iter()
        .take(5)
        .map(|t| StoppedTask {
            task: t
                .task_arn()
                .and_then(|a| a.rsplit('/').next())
                .unwrap_or_default()
                .to_string(),
            task_definition: super::taskdef::short_name(
                t.task_definition_arn().unwrap_or_default(),
            )
            .to_string(),
            stopped_reason: t
                .stopped_reason()
                .unwrap_or("(no reason given)")
                .to_string(),
            containers: t
                .containers()
                .iter()
                .map(|c| {
                    let code = c
                        .exit_code()
                        .map_or("no exit code".to_string(), |x| format!("exit code {x}"));
                    match c.reason() {
                        Some(r) => format!("{}: {code} ({r})", c.name().unwrap_or("?")),
                        None => format!("{}: {code}", c.name().unwrap_or("?")),
                    }
                })
                .collect(),
            last_log_lines: vec![],
        })
        .collect())
}

async fn unhealthy_targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<Vec<String>, AwsError> {
    let out = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(aws_err("elasticloadbalancing:DescribeTargetHealth"))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let h = d.target_health()?;
            let state = h.state().map(|s| s.as_str()).unwrap_or("unknown");
            if state == "healthy" {
                return None;
            }
            let target = d.target().map_or("?".to_string(), |t| {
                format!("{}:{}", t.id().unwrap_or("?"), t.port().unwrap_or(0))
            });
            Some(
                format!(
                    "{target} {state}: {} {}",
                    h.reason().map(|r| r.as_str()).unwrap_or(""),
                    h.description().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            )
        })
        .collect())
}

impl FailureReport {
    pub fn render(&self, headline: &str) -> String {
        let mut out = vec![headline.to_string()];
        out.push(String::new());
        out.push("Stopped tasks:".into());
        if self.stopped_tasks.is_empty() {
            out.push("  (none)".into());
        }
        for t in &self.stopped_tasks {
            out.push(format!(
                "  {} ({}): {}",
                t.task, t.task_definition, t.stopped_reason
            ));
            for c in &t.containers {
                out.push(format!("    {c}"));
            }
            if !t.last_log_lines.is_empty() {
                out.push("    last log lines:".into());
                out.extend(t.last_log_lines.iter().map(|l| format!("      | {l}")));
            }
        }
        out.push("Target health (not healthy):".into());
        if self.unhealthy_targets.is_empty() {
            out.push("  (none, or no load balancer)".into());
        }
        out.extend(self.unhealthy_targets.iter().map(|t| format!("  {t}")));
        out.push("Recent service events:".into());
        if self.events.is_empty() {
            out.push("  (none)".into());
        }
        out.extend(self.events.iter().map(|e| format!("  {e}")));
        out.join("\n")
    }
}
