//! Follows one deployment — the id CreateService/UpdateService returned — until it completes,
//! fails, is rolled back or runs out of time. The "services stable" waiter is not used: it
//! ignores rolloutState, so it calls a circuit-breaker rollback a success.
//!
//! Release and rollback both end here (`follow_and_record`): follow, write the ledger entry,
//! explain a failure. Keeping that below both commands means neither imports the other.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{Deployment, ServiceDeploymentStatus};
use serde::Serialize;

use crate::aws::{Aws, AwsError, aws_err};
use crate::config::Config;
use crate::error::DeployError;
use crate::ledger::{self, Entry};
use crate::logs::LogSource;
use crate::progress::Progress;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed {
        reason: String,
    },
    RolledBack {
        reason: String,
    },
    /// Another deployment became PRIMARY while ours was still rolling out (someone else's
    /// release or UpdateService), and it is not the circuit breaker going back: ours will never
    /// finish, but nothing says our revision is broken.
    Superseded {
        by: String,
        /// `family:revision` the superseding deployment rolls out.
        task_definition: String,
    },
    TimedOut,
}

/// One deployment's counts, for progress output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: String,
    pub reason: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed: i32,
}

impl DeploymentView {
    pub fn of(d: &Deployment) -> Self {
        Self {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            rollout_state: d
                .rollout_state()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            reason: d.rollout_state_reason().unwrap_or_default().to_string(),
            task_definition: super::taskdef::short_name(d.task_definition().unwrap_or_default())
                .to_string(),
            desired: d.desired_count(),
            running: d.running_count(),
            pending: d.pending_count(),
            failed: d.failed_tasks(),
        }
    }

    /// `STATUS family:rev STATE running R/D pending P failed F`: the words progress and status
    /// both print for a deployment.
    pub fn counts(&self) -> String {
        format!(
            "{} {} {} running {}/{} pending {} failed {}",
            self.status,
            self.task_definition,
            self.rollout_state,
            self.running,
            self.desired,
            self.pending,
            self.failed
        )
    }
}

/// One line for all deployments, as progress output shows them while a rollout runs.
pub fn summary(views: &[DeploymentView]) -> String {
    views
        .iter()
        .map(DeploymentView::counts)
        .collect::<Vec<_>>()
        .join(" | ")
}

pub struct Watch<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub deployment_id: &'a str,
    pub timeout: Duration,
    pub poll_interval: Duration,
    /// The service rolls back failed deployments (circuit breaker with rollback).
    pub rollback_enabled: bool,
}

/// A rollout that ended badly, with the report explaining it.
pub struct RolloutFailure {
    pub error: DeployError,
    pub report: super::report::FailureReport,
    pub text: String,
}

/// How `release` and `rollback` fail: a rollout that ended badly (the CLI prints its report), or
/// anything else.
pub enum ReleaseError {
    Failed(Box<RolloutFailure>),
    Other(DeployError),
}

impl<E: Into<DeployError>> From<E> for ReleaseError {
    fn from(e: E) -> Self {
        ReleaseError::Other(e.into())
    }
}

pub fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::Failed { .. } => "failed",
        Outcome::RolledBack { .. } => "rolled-back",
        Outcome::Superseded { .. } => "superseded",
        Outcome::TimedOut => "timed-out",
    }
}

/// Follows `deployment_id` with the configured timeout.
pub async fn follow(
    aws: &Aws,
    config: &Config,
    deployment_id: &str,
    progress: &Progress,
) -> Result<Outcome, DeployError> {
    progress.step(format!("following deployment {deployment_id}"));
    let w = Watch {
        cluster: &config.cluster,
        service: &config.service.name,
        deployment_id,
        timeout: config.deployment.timeout,
        poll_interval: config.deployment.poll_interval,
        rollback_enabled: config.deployment.circuit_breaker && config.deployment.rollback,
    };
    let outcome = watch(&aws.ecs, &w, |views| progress.rollout(&summary(views))).await?;
    if outcome == Outcome::Completed {
        progress.done(format!("deployment {deployment_id} completed"));
    }
    Ok(outcome)
}

/// Collects the report for a failed outcome and pairs it with the matching error. A superseded
/// deployment gets no report: its tasks and targets say nothing about why it ended.
pub async fn failure(
    aws: &Aws,
    config: &Config,
    deployment_id: &str,
    outcome: Outcome,
) -> ReleaseError {
    if let Outcome::Superseded {
        by,
        task_definition,
    } = outcome
    {
        return ReleaseError::Other(DeployError::Superseded {
            deployment_id: deployment_id.to_string(),
            by,
            task_definition,
            cluster: config.cluster.clone(),
            service: config.service.name.clone(),
        });
    }
    let source = config
        .task
        .logs
        .as_ref()
        .map(|l| LogSource::from_config(l, &config.task.container.name));
    let report = super::report::collect(
        &aws.ecs,
        &aws.elb,
        source.as_ref().map(|source| super::report::Logs {
            client: &aws.logs,
            source,
        }),
        &config.cluster,
        &config.service.name,
        deployment_id,
        config.service.target_group_arn.as_deref(),
    )
    .await;
    let id = deployment_id.to_string();
    let error = match outcome {
        Outcome::Failed { reason } => DeployError::RolloutFailed {
            deployment_id: id,
            reason,
        },
        Outcome::RolledBack { reason } => DeployError::RolledBack {
            deployment_id: id,
            reason,
        },
        Outcome::TimedOut | Outcome::Completed | Outcome::Superseded { .. } => {
            DeployError::TimedOut {
                deployment_id: id,
                waited: humantime::format_duration(config.deployment.timeout).to_string(),
            }
        }
    };
    let text = report.render(&error.to_string());
    ReleaseError::Failed(Box::new(RolloutFailure {
        error,
        report,
        text,
    }))
}

/// What the ledger records about a followed deployment besides its id and outcome.
pub struct Record<'a> {
    pub service_arn: &'a str,
    /// `family:revision` the deployment rolls out.
    pub revision: String,
    pub digest: String,
    /// `release` or `rollback`.
    pub kind: &'static str,
}

/// Follows `deployment_id`, appends its outcome to the ledger whatever it is (a failed release
/// must not become a rollback target), and turns anything but completion into the failure with
/// its report. Release and rollback end the same way.
pub async fn follow_and_record(
    aws: &Aws,
    config: &Config,
    deployment_id: &str,
    record: Record<'_>,
    progress: &Progress,
) -> Result<Entry, ReleaseError> {
    let outcome = follow(aws, config, deployment_id, progress).await?;
    let entry = ledger::append(
        &aws.ecs,
        record.service_arn,
        Entry {
            seq: 0,
            revision: record.revision,
            digest: record.digest,
            deployment: deployment_id.to_string(),
            outcome: outcome_word(&outcome).into(),
            kind: record.kind.into(),
            at: ledger::now_rfc3339(),
        },
    )
    .await?;
    if outcome != Outcome::Completed {
        return Err(failure(aws, config, deployment_id, outcome).await);
    }
    Ok(entry)
}

/// Polls until the deployment ends; `on_poll` sees every deployment of the service each time.
#[tracing::instrument(skip_all, fields(deployment = %w.deployment_id))]
pub async fn watch(
    ecs: &aws_sdk_ecs::Client,
    w: &Watch<'_>,
    mut on_poll: impl FnMut(&[DeploymentView]),
) -> Result<Outcome, AwsError> {
    let started = Instant::now();
    // Task definitions of the deployments ours replaces: a circuit-breaker rollback goes back to
    // one of these, a superseding release does not.
    let mut previous = BTreeSet::new();
    loop {
        let service = super::service::describe(ecs, w.cluster, w.service)
            .await?
            .ok_or_else(|| AwsError {
                operation: "ecs:DescribeServices",
                code: Some("ServiceNotFoundException".into()),
                message: format!(
                    "service {} disappeared from cluster {}",
                    w.service, w.cluster
                ),
            })?;
        let views: Vec<DeploymentView> = service
            .deployments()
            .iter()
            .map(DeploymentView::of)
            .collect();
        on_poll(&views);
        if let Some(outcome) = judge(&views, w) {
            return Ok(outcome);
        }
        let ours = views.iter().find(|d| d.id == w.deployment_id);
        let primary = views
            .iter()
            .find(|d| d.status == "PRIMARY" && d.id != w.deployment_id);
        match (ours, primary) {
            (Some(ours), _) if ours.status == "PRIMARY" => {
                previous.extend(
                    views
                        .iter()
                        .filter(|d| d.id != w.deployment_id)
                        .map(|d| d.task_definition.clone()),
                );
            }
            // Ours was pushed aside without failing (a circuit breaker marks it FAILED first,
            // which `judge` has seen): another deployment took over.
            (Some(_), Some(p)) => return Ok(superseded(p)),
            (Some(_), None) => {}
            (None, primary) => {
                if let Some(outcome) = from_service_deployments(ecs, w, primary).await {
                    return Ok(outcome);
                }
                return Ok(vanished(w, primary, &previous));
            }
        }
        if started.elapsed() + w.poll_interval > w.timeout {
            return Ok(Outcome::TimedOut);
        }
        tokio::time::sleep(w.poll_interval).await;
    }
}

fn superseded(primary: &DeploymentView) -> Outcome {
    Outcome::Superseded {
        by: primary.id.clone(),
        task_definition: primary.task_definition.clone(),
    }
}

/// Ours is no longer listed and ListServiceDeployments could not say why: a PRIMARY on a
/// revision ours replaced is the circuit breaker's rollback, one on any other revision was
/// started by someone else. Without having seen what ours replaced, it cannot be told apart.
fn vanished(
    w: &Watch<'_>,
    primary: Option<&DeploymentView>,
    previous: &BTreeSet<String>,
) -> Outcome {
    if let Some(p) = primary
        && !previous.is_empty()
        && !previous.contains(&p.task_definition)
    {
        return superseded(p);
    }
    let reason = match primary {
        Some(p) if previous.contains(&p.task_definition) => format!(
            "deployment {} is gone; the service is back on {} (deployment {})",
            w.deployment_id, p.task_definition, p.id
        ),
        _ => format!(
            "deployment {} is gone; the service now runs deployment {}",
            w.deployment_id,
            primary.map_or("(none)", |p| p.id.as_str())
        ),
    };
    if w.rollback_enabled {
        Outcome::RolledBack { reason }
    } else {
        Outcome::Failed { reason }
    }
}

/// The verdict from DescribeServices, or `None` while the deployment is still going.
fn judge(views: &[DeploymentView], w: &Watch<'_>) -> Option<Outcome> {
    let ours = views.iter().find(|d| d.id == w.deployment_id)?;
    match ours.rollout_state.as_str() {
        "COMPLETED" => Some(Outcome::Completed),
        "FAILED" => {
            let reason = if ours.reason.is_empty() {
                format!("{} failed task(s); rollout state FAILED", ours.failed)
            } else {
                ours.reason.clone()
            };
            let replaced = views
                .iter()
                .any(|d| d.status == "PRIMARY" && d.id != w.deployment_id);
            Some(if w.rollback_enabled && replaced {
                Outcome::RolledBack { reason }
            } else {
                Outcome::Failed { reason }
            })
        }
        // Services without a rollout state (no circuit breaker, old API): done when ours is the
        // only deployment left and every task runs.
        "" if views.len() == 1 && ours.status == "PRIMARY" && ours.running == ours.desired => {
            Some(Outcome::Completed)
        }
        _ => None,
    }
}

/// Asks ListServiceDeployments what became of a deployment DescribeServices no longer lists.
/// `None` when the API is unavailable (older regions, emulators) or does not know it either.
async fn from_service_deployments(
    ecs: &aws_sdk_ecs::Client,
    w: &Watch<'_>,
    primary: Option<&DeploymentView>,
) -> Option<Outcome> {
    let out = ecs
        .list_service_deployments()
        .cluster(w.cluster)
        .service(w.service)
        .send()
        .await
        .map_err(aws_err("ecs:ListServiceDeployments"))
        .inspect_err(|e| tracing::debug!(error = %e, "ListServiceDeployments unavailable"))
        .ok()?;
    let suffix = w
        .deployment_id
        .rsplit('/')
        .next()
        .unwrap_or(w.deployment_id);
    let d = out.service_deployments().iter().find(|d| {
        d.service_deployment_arn()
            .is_some_and(|a| a.ends_with(suffix))
    })?;
    let status = d.status().map(|s| s.as_str()).unwrap_or_default();
    let reason = match d.status_reason() {
        Some(r) => format!("{status}: {r}"),
        None => status.to_string(),
    };
    Some(match d.status()? {
        ServiceDeploymentStatus::Successful => Outcome::Completed,
        ServiceDeploymentStatus::RollbackSuccessful
        | ServiceDeploymentStatus::RollbackInProgress
        | ServiceDeploymentStatus::RollbackRequested
        | ServiceDeploymentStatus::RollbackFailed => Outcome::RolledBack { reason },
        // ECS stops a service deployment when a newer one starts; with another PRIMARY that
        // is what happened.
        ServiceDeploymentStatus::Stopped | ServiceDeploymentStatus::StopRequested => {
            match primary {
                Some(p) => superseded(p),
                None => Outcome::Failed { reason },
            }
        }
        _ => return None,
    })
}
