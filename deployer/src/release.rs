//! `deployer release`: repository -> image -> lock -> task definition (registered only when it
//! differs) -> migration (`[release] migrate`: a one-off task of that revision) -> service
//! (created, or updated without a desired count) -> autoscaling -> follow this deployment ->
//! ledger entry -> unlock -> summary.

use std::time::Duration;

use serde::Serialize;

use crate::aws::Aws;
use crate::config::{Config, MIGRATE_COMMAND};
use crate::ecr::{self, RepoChange};
use crate::ecs::rollout::{self, Outcome, Record, ReleaseError};
use crate::ecs::service::{self, ServiceSpec};
use crate::ecs::taskdef::{self, Revision};
use crate::error::DeployError;
use crate::image::{ImagePublisher, PublishedImage, resolve_target};
use crate::lock;
use crate::logs::LogSource;
use crate::plan::{self, LiveState, ServiceAction, TaskDefAction};
use crate::progress::Progress;
use crate::scaling;
use crate::task::{self, Follow, TaskError, TaskRequest};

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
    /// The migration task that ran before the service was updated (`[release] migrate`).
    pub migration: Option<task::Stopped>,
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
        ];
        if let Some(m) = &self.migration {
            lines.push(format!(
                "migration:       task {} exited with code 0 ({:.1}s)",
                m.task, m.seconds
            ));
        }
        lines.extend([format!(
            "autoscaling:     {}",
            if self.scaling_changes.is_empty() {
                "unchanged".to_string()
            } else {
                self.scaling_changes.join(", ")
            }
        )]);
        match &self.deployment_id {
            Some(id) => lines.push(format!("deployment:      {id} completed")),
            None => lines.push("deployment:      none started (nothing changed)".into()),
        }
        lines.push(format!("time taken:      {:.1}s", self.seconds));
        lines.join("\n")
    }
}

#[tracing::instrument(skip_all, fields(service = %config.service.name))]
pub async fn release<P: ImagePublisher>(
    aws: &Aws,
    config: &Config,
    image: ImageSource<'_, P>,
    wait_for_lock: Option<Duration>,
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
            publisher.publish(&target, progress).await?
        }
    };

    // The lock covers reading what runs through the ledger entry: two releases interleaving
    // there would deploy over each other and number their ledger entries alike. The build
    // stays outside it. A service that does not exist yet has no tags to hold it; the release
    // that creates it goes unlocked.
    let existing = service::describe(&aws.ecs, &config.cluster, &config.service.name).await?;
    let held = match existing.as_ref().and_then(|s| s.service_arn()) {
        Some(arn) => {
            let request = lock::request(config, arn, "release", wait_for_lock);
            Some(lock::acquire(&aws.ecs, &request, progress).await?)
        }
        None => None,
    };
    let result = deploy(aws, config, image, repository, progress).await;
    if let Some(held) = held {
        held.release().await;
    }
    result
}

/// Everything `release` does under the lock.
async fn deploy(
    aws: &Aws,
    config: &Config,
    image: PublishedImage,
    repository: RepoChange,
    progress: &Progress,
) -> Result<ReleaseSummary, ReleaseError> {
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
    // Migrations run before anything the running tasks could notice changes, and only when the
    // release deploys another revision (the plan says so); a failed one leaves no trace but its
    // task.
    let migration = if plan.migration.is_some() {
        match migrate(aws, config, &live, &spec, &revision, progress).await {
            Ok(stopped) => Some(stopped),
            Err(e) => return Err(abandon(aws, config, &revision, registered, e).await.into()),
        }
    } else {
        None
    };
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
        migration,
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
        let entry = rollout::follow_and_record(
            aws,
            config,
            &deployment_id,
            Record {
                service_arn: &service_arn,
                revision: revision.short(),
                digest: image.digest.clone(),
                kind: "release",
            },
            progress,
        )
        .await?;
        summary.ledger_entry = Some(entry.seq);
        summary.deployment_id = Some(deployment_id);
        summary.outcome = Some(Outcome::Completed);
    }
    summary.seconds = progress.elapsed().as_secs_f64();
    Ok(summary)
}

/// How the migration went wrong, before the service was touched.
enum MigrationError {
    /// It ran and failed, never ran, or outlived `release.migrate_timeout`.
    Failed { what: String, lines: Vec<String> },
    /// Interrupted, or an AWS call failed: reported as such.
    Other(DeployError),
}

/// Runs `data-processor migrate` as a one-off task of `revision`, placed like the service (like
/// the config says when this release creates the service), its lines shown as progress.
async fn migrate(
    aws: &Aws,
    config: &Config,
    live: &LiveState,
    spec: &ServiceSpec,
    revision: &Revision,
    progress: &Progress,
) -> Result<task::Stopped, MigrationError> {
    let container = &config.task.container.name;
    let command: Vec<String> = MIGRATE_COMMAND.iter().map(|s| s.to_string()).collect();
    let req = match &live.service {
        Some(svc) => TaskRequest::like_service(
            svc,
            &config.cluster,
            &revision.arn,
            container,
            command,
            task::STARTED_BY_MIGRATE,
        ),
        None => TaskRequest {
            cluster: config.cluster.clone(),
            task_definition: revision.arn.clone(),
            container: container.clone(),
            command,
            started_by: task::STARTED_BY_MIGRATE.into(),
            launch_type: Some(aws_sdk_ecs::types::LaunchType::from(
                config.task.launch_type.as_str(),
            )),
            capacity_provider_strategy: vec![],
            platform_version: None,
            network: spec
                .network_configuration()
                .map_err(|e| MigrationError::Other(e.into()))?,
        },
    };
    // The revision was just written from the config: its log options are `[task.logs]`.
    let source = config
        .task
        .logs
        .as_ref()
        .map(|l| LogSource::from_config(l, container));
    let follow = Follow {
        timeout: config.release.migrate_timeout,
        poll_interval: config.deployment.poll_interval,
        logs: source.as_ref().map(|s| (&aws.logs, s)),
    };
    progress.step(format!(
        "migration: `data-processor {}` on {}",
        MIGRATE_COMMAND.join(" "),
        revision.short()
    ));
    let result = task::run_to_end(
        &aws.ecs,
        &req,
        &follow,
        progress,
        |l| progress.done(format!("migrate | {}", l.message.trim_end())),
        crate::run::ctrl_c(),
    )
    .await;
    // Listening for Ctrl-C took the signal's default action away; the rest of the release
    // must stay interruptible.
    crate::run::exit_on_ctrl_c();
    match result {
        Ok(stopped) if stopped.exit_code == 0 => {
            progress.done(format!(
                "migration completed (task {}, {:.1}s)",
                stopped.task, stopped.seconds
            ));
            Ok(stopped)
        }
        Ok(stopped) => Err(MigrationError::Failed {
            what: format!(
                "task {} ({}) exited with code {}",
                stopped.task, stopped.task_definition, stopped.exit_code
            ),
            lines: stopped.last_lines,
        }),
        Err(e @ (TaskError::NeverRan { .. } | TaskError::TimedOut { .. })) => {
            Err(MigrationError::Failed {
                what: e.to_string(),
                lines: e.last_lines().to_vec(),
            })
        }
        Err(e) => Err(MigrationError::Other(e.into())),
    }
}

/// After a failed migration: the revision registered for this release is deregistered (so no
/// later release or rollback picks it), and the error says what is left as it was.
async fn abandon(
    aws: &Aws,
    config: &Config,
    revision: &Revision,
    registered: bool,
    e: MigrationError,
) -> DeployError {
    let deregistered = if registered {
        match taskdef::deregister(&aws.ecs, &revision.arn).await {
            Ok(()) => format!("; revision {} deregistered", revision.short()),
            Err(err) => format!(
                "; revision {} could not be deregistered ({err})",
                revision.short()
            ),
        }
    } else {
        String::new()
    };
    match e {
        MigrationError::Failed { what, lines } => DeployError::MigrationFailed {
            what,
            service: config.service.name.clone(),
            deregistered,
            lines: if lines.is_empty() {
                String::new()
            } else {
                format!(
                    "\nlast log lines of the migration:\n{}",
                    lines
                        .iter()
                        .map(|l| format!("  | {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            },
        },
        MigrationError::Other(e) => {
            if !deregistered.is_empty() {
                tracing::warn!("migration did not finish{deregistered}");
            }
            e
        }
    }
}
