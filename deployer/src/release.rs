//! `deployer release`: repository -> image -> task definition (registered only when it differs)
//! -> service (created, or updated without a desired count) -> autoscaling -> follow this
//! deployment -> ledger entry -> summary.

use serde::Serialize;

use crate::aws::Aws;
use crate::config::Config;
use crate::ecr::{self, RepoChange};
use crate::ecs::rollout::{self, Outcome};
use crate::ecs::service::{self, ServiceSpec};
use crate::ecs::{report, taskdef};
use crate::error::DeployError;
use crate::image::{ImageError, ImagePublisher, PublishedImage, resolve_target};
use crate::ledger::{self, Entry};
use crate::plan::{self, ServiceAction, TaskDefAction};
use crate::progress::Progress;
use crate::scaling;

/// Where the image comes from.
pub enum ImageSource<'a, P> {
    /// Build and push with this publisher.
    Build(&'a P),
    /// Deploy an image pushed before (`--image REF@sha256:...`): no build, no push.
    Pinned(PublishedImage),
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    pub image: String,
    pub digest: String,
    pub repository: RepoChange,
    /// `family:revision` the service runs after the release.
    pub task_definition: String,
    pub registered_revision: bool,
    pub service: ServiceAction,
    pub scaling_changes: Vec<String>,
    /// The deployment followed (none when nothing changed).
    pub deployment_id: Option<String>,
    pub outcome: Option<Outcome>,
    pub ledger_entry: Option<u32>,
    pub seconds: f64,
}

impl ReleaseSummary {
    pub fn render(&self) -> String {
        let mut lines = vec![
            format!("image:           {}", self.image),
            format!(
                "task definition: {}{}",
                self.task_definition,
                if self.registered_revision {
                    " (new revision)"
                } else {
                    " (unchanged)"
                }
            ),
            format!("service:         {:?}", self.service).to_lowercase(),
            format!(
                "autoscaling:     {}",
                if self.scaling_changes.is_empty() {
                    "unchanged".to_string()
                } else {
                    self.scaling_changes.join(", ")
                }
            ),
        ];
        match &self.deployment_id {
            Some(id) => lines.push(format!("deployment:      {id} completed")),
            None => lines.push("deployment:      none started (nothing changed)".into()),
        }
        lines.push(format!("time taken:      {:.1}s", self.seconds));
        lines.join("\n")
    }
}

/// A rollout that ended badly, with the report explaining it.
pub struct RolloutFailure {
    pub error: DeployError,
    pub report: report::FailureReport,
    pub text: String,
}

pub enum ReleaseError {
    Failed(Box<RolloutFailure>),
    Other(DeployError),
}

impl<E: Into<DeployError>> From<E> for ReleaseError {
    fn from(e: E) -> Self {
        ReleaseError::Other(e.into())
    }
}

#[tracing::instrument(skip_all, fields(service = %config.service.name))]
pub async fn release<P: ImagePublisher>(
    aws: &Aws,
    config: &Config,
    image: ImageSource<'_, P>,
    progress: &Progress,
) -> Result<ReleaseSummary, ReleaseError> {
    let repository = if config.registry.manage_ecr {
        progress.step(format!("ECR repository {}", config.registry.repository));
        let change = ecr::ensure_repository(&aws.ecr, &config.registry).await?;
        let word = format!("{change:?}").to_lowercase();
        progress.done(format!(
            "ECR repository {}: {word}",
            config.registry.repository
        ));
        change
    } else {
        RepoChange::Unchanged
    };

    let image = match image {
        ImageSource::Pinned(image) => image,
        ImageSource::Build(publisher) => {
            let target = resolve_target(&config.registry, &aws.ecr).await?;
            progress.step(format!("build and push to {}", target.repository_url()));
            let pushed = publisher.publish(&target, progress).await?;
            progress.done(format!("pushed {}", pushed.reference));
            pushed
        }
    };

    progress.step("comparing with what runs");
    let live = plan::read_live(aws, config).await?;
    let plan = plan::compute(config, &image.reference, &live);

    let (revision, registered) = match &plan.task_definition {
        TaskDefAction::Reuse { revision } => (revision.clone(), false),
        TaskDefAction::Register => {
            progress.step("registering task definition");
            let r = taskdef::register(&aws.ecs, &plan.desired_task_definition).await?;
            progress.done(format!("registered task definition {}", r.short()));
            (r, true)
        }
    };
    let spec = ServiceSpec::desired(config, &revision.arn);
    let autoscaled = config.autoscaling.is_some();
    let desired_count = i32::try_from(config.service.desired_count).unwrap_or(i32::MAX);

    let deployed = match (&live.service, plan.service) {
        (None, _) => {
            progress.step(format!("creating service {}", config.service.name));
            let created = service::create(
                &aws.ecs,
                &config.cluster,
                &config.service.name,
                &spec,
                desired_count,
            )
            .await?;
            // A service must carry what was asked; if the API kept only part of it (some
            // emulators drop placement and deployment settings on create), apply it again.
            // No new task definition, so no second deployment.
            if ServiceSpec::live(&created) != spec {
                service::update(
                    &aws.ecs,
                    &config.cluster,
                    &config.service.name,
                    &revision.arn,
                    &spec,
                    None,
                )
                .await?;
            }
            progress.done(format!("created service {}", config.service.name));
            Some(created)
        }
        (Some(_), ServiceAction::Unchanged) => None,
        (Some(_), _) => {
            progress.step(format!(
                "updating service {} to {}",
                config.service.name,
                revision.short()
            ));
            let count = (!autoscaled).then_some(desired_count);
            let updated = service::update(
                &aws.ecs,
                &config.cluster,
                &config.service.name,
                &revision.arn,
                &spec,
                count,
            )
            .await?;
            progress.done(format!("updated service {}", config.service.name));
            Some(updated)
        }
    };

    let scaling_changes = if autoscaled {
        progress.step("autoscaling");
        // The service must exist before its scalable target.
        let changes = scaling::apply(
            &aws.scaling,
            &aws.cloudwatch,
            config,
            &plan.desired_scaling,
            &live.scaling,
        )
        .await?;
        if !changes.is_empty() {
            progress.done(format!("autoscaling: {}", changes.join(", ")));
        }
        changes
    } else {
        vec![]
    };

    let mut summary = ReleaseSummary {
        image: image.reference.clone(),
        digest: image.digest.clone(),
        repository,
        task_definition: revision.short(),
        registered_revision: registered,
        service: plan.service,
        scaling_changes,
        deployment_id: None,
        outcome: None,
        ledger_entry: None,
        seconds: 0.0,
    };
    if let Some(svc) = deployed {
        let deployment_id = service::primary_deployment(&svc).ok_or_else(|| {
            DeployError::Other(format!(
                "service {} reports no PRIMARY deployment",
                config.service.name
            ))
        })?;
        let service_arn = svc.service_arn().unwrap_or_default().to_string();
        let outcome = follow(aws, config, &deployment_id, progress).await?;
        let entry = ledger::append(
            &aws.ecs,
            &service_arn,
            Entry {
                seq: 0,
                revision: revision.short(),
                digest: image.digest.clone(),
                deployment: deployment_id.clone(),
                outcome: outcome_word(&outcome).into(),
                kind: "release".into(),
                at: ledger::now_rfc3339(),
            },
        )
        .await?;
        summary.ledger_entry = Some(entry.seq);
        summary.deployment_id = Some(deployment_id.clone());
        summary.outcome = Some(outcome.clone());
        if outcome != Outcome::Completed {
            return Err(failure(aws, config, &deployment_id, outcome).await);
        }
    }
    summary.seconds = progress.elapsed().as_secs_f64();
    Ok(summary)
}

pub fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::Failed { .. } => "failed",
        Outcome::RolledBack { .. } => "rolled-back",
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
    let watch = rollout::Watch {
        cluster: &config.cluster,
        service: &config.service.name,
        deployment_id,
        timeout: config.deployment.timeout,
        poll_interval: config.deployment.poll_interval,
        rollback_enabled: config.deployment.circuit_breaker && config.deployment.rollback,
    };
    let outcome = rollout::watch(&aws.ecs, &watch, |views| progress.rollout(views)).await?;
    if outcome == Outcome::Completed {
        progress.done(format!("deployment {deployment_id} completed"));
    }
    Ok(outcome)
}

/// Collects the report for a failed outcome and pairs it with the matching error.
pub async fn failure(
    aws: &Aws,
    config: &Config,
    deployment_id: &str,
    outcome: Outcome,
) -> ReleaseError {
    let report = report::collect(
        &aws.ecs,
        &aws.elb,
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
        Outcome::TimedOut | Outcome::Completed => DeployError::TimedOut {
            deployment_id: id,
            waited: humantime::format_duration(config.deployment.timeout).to_string(),
        },
    };
    let text = report.render(&error.to_string());
    ReleaseError::Failed(Box::new(RolloutFailure {
        error,
        report,
        text,
    }))
}

/// For publishers that cannot build (no builder compiled in).
pub struct NoPublisher;

impl ImagePublisher for NoPublisher {
    async fn build(&self, _: &Progress) -> Result<String, ImageError> {
        Err(ImageError::NoBuilder)
    }
    async fn publish(
        &self,
        _: &crate::image::RegistryTarget,
        _: &Progress,
    ) -> Result<PublishedImage, ImageError> {
        Err(ImageError::NoBuilder)
    }
}
