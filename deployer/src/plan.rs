//! What a release would change: the live state read from AWS, the desired state computed from
//! the config and image, both normalised (see `ecs::taskdef`, `ecs::service`, `scaling`), and a
//! readable diff of each part. `release` acts on the same plan, so the two never disagree.

use aws_sdk_ecs::types::{Service, TaskDefinition};
use serde::Serialize;
use similar::TextDiff;

use crate::aws::{Aws, AwsError};
use crate::config::Config;
use crate::ecs::service::{self, ServiceSpec};
use crate::ecs::taskdef::{self, Revision, TaskDefSpec};
use crate::{ecr, scaling};

pub struct LiveState {
    pub service: Option<Service>,
    /// The task definition the service runs now.
    pub current: Option<TaskDefinition>,
    /// The newest ACTIVE revision of the family.
    pub latest: Option<TaskDefinition>,
    pub scaling: scaling::Live,
    /// `None` = repository missing; otherwise the settings that differ. Empty when not managed.
    pub repository: Option<Vec<String>>,
}

#[tracing::instrument(skip_all)]
pub async fn read_live(aws: &Aws, config: &Config) -> Result<LiveState, AwsError> {
    let service = service::describe(&aws.ecs, &config.cluster, &config.service.name).await?;
    let current = match service.as_ref().and_then(|s| s.task_definition()) {
        Some(arn) => taskdef::describe(&aws.ecs, arn).await?,
        None => None,
    };
    let latest = taskdef::describe(&aws.ecs, &config.task.family).await?;
    let scaling = if config.autoscaling.is_some() {
        scaling::live(&aws.scaling, &aws.cloudwatch, config).await?
    } else {
        scaling::Live {
            spec: scaling::ScalingSpec::default(),
            policy_arns: Default::default(),
            alarm_states: Default::default(),
        }
    };
    let repository = if config.registry.manage_ecr {
        ecr::inspect(&aws.ecr, &config.registry).await?
    } else {
        Some(vec![])
    };
    Ok(LiveState {
        service,
        current,
        latest,
        scaling,
        repository,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TaskDefAction {
    /// An existing revision already says exactly this.
    Reuse {
        revision: Revision,
    },
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAction {
    Create,
    Update,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub image: String,
    pub repository: Vec<String>,
    pub task_definition: TaskDefAction,
    pub task_definition_diff: String,
    #[serde(skip)]
    pub desired_task_definition: TaskDefSpec,
    pub service: ServiceAction,
    pub service_diff: String,
    #[serde(skip)]
    pub desired_service: ServiceSpec,
    /// `[release] migrate` and a deployment of another revision to start: the migration task
    /// `release` runs first.
    pub migration: Option<String>,
    pub scaling_diff: String,
    #[serde(skip)]
    pub desired_scaling: scaling::ScalingSpec,
}

/// Shown for a revision that does not exist yet.
const NEW_REVISION: &str = "(new revision)";

pub fn compute(config: &Config, image: &str, live: &LiveState) -> Plan {
    let container = &config.task.container.name;
    let desired_td = TaskDefSpec::desired(config, image);
    let reuse = [live.current.as_ref(), live.latest.as_ref()]
        .into_iter()
        .flatten()
        .find(|td| TaskDefSpec::live(td, container).as_ref() == Some(&desired_td))
        .map(Revision::of);
    // Diff against what runs now: that is what the release changes.
    let before_td = live
        .current
        .as_ref()
        .or(live.latest.as_ref())
        .and_then(|td| TaskDefSpec::live(td, container));
    let task_definition = match reuse {
        Some(revision) => TaskDefAction::Reuse { revision },
        None => TaskDefAction::Register,
    };
    let td_name = match &task_definition {
        TaskDefAction::Reuse { revision } => revision.short(),
        TaskDefAction::Register => format!("{}:{NEW_REVISION}", config.task.family),
    };

    let autoscaled = config.autoscaling.is_some();
    let desired_service = ServiceSpec::desired(config, &td_name);
    let before_service = live.service.as_ref().map(ServiceSpec::live);
    let service = match &before_service {
        None => ServiceAction::Create,
        Some(b) if *b == desired_service => ServiceAction::Unchanged,
        Some(_) => ServiceAction::Update,
    };
    // Only compare the count when deployer, not autoscaling, owns it.
    let wanted = i32::try_from(config.service.desired_count).unwrap_or(i32::MAX);
    let count_diff = match (&live.service, autoscaled) {
        (Some(s), false) if s.desired_count() != wanted => {
            format!(
                "- desired_count: {}\n+ desired_count: {}\n",
                s.desired_count(),
                config.service.desired_count
            )
        }
        _ => String::new(),
    };
    let service = if service == ServiceAction::Unchanged && !count_diff.is_empty() {
        ServiceAction::Update
    } else {
        service
    };

    // Only a deployment of another revision can need a migration; `release` runs it exactly
    // when the plan says so.
    let running = live
        .service
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(taskdef::short_name);
    let migration = (config.release.migrate
        && service != ServiceAction::Unchanged
        && running != Some(td_name.as_str()))
    .then(|| {
        format!(
            "run `data-processor {}` as a one-off task of {td_name} before the service is {}; a failure stops the release",
            crate::config::MIGRATE_COMMAND.join(" "),
            if service == ServiceAction::Create {
                "created"
            } else {
                "updated"
            }
        )
    });

    let desired_scaling = scaling::ScalingSpec::desired(config);
    let scaling_diff = if autoscaled {
        diff(Some(&live.scaling.spec), &desired_scaling)
    } else {
        String::new()
    };

    let repository = match &live.repository {
        None => vec![format!(
            "create ECR repository {}",
            config.registry.repository
        )],
        Some(d) => d.clone(),
    };

    Plan {
        image: image.to_string(),
        repository,
        task_definition_diff: if matches!(task_definition, TaskDefAction::Register) {
            diff(before_td.as_ref(), &desired_td)
        } else {
            String::new()
        },
        task_definition,
        desired_task_definition: desired_td,
        service_diff: format!(
            "{}{count_diff}",
            diff(before_service.as_ref(), &desired_service)
        ),
        service,
        desired_service,
        migration,
        scaling_diff,
        desired_scaling,
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.repository.is_empty()
            || self.task_definition == TaskDefAction::Register
            || self.service != ServiceAction::Unchanged
            || !self.scaling_diff.is_empty()
    }

    pub fn render(&self, config: &Config) -> String {
        let mut out = Vec::new();
        out.push(format!("image: {}", self.image));
        if !self.repository.is_empty() {
            out.push("ECR repository:".into());
            out.extend(self.repository.iter().map(|r| format!("  ~ {r}")));
        }
        match &self.task_definition {
            TaskDefAction::Reuse { revision } => {
                out.push(format!("task definition: unchanged ({})", revision.short()))
            }
            TaskDefAction::Register => {
                out.push(format!(
                    "task definition: register a new revision of {}",
                    config.task.family
                ));
                out.push(indent(&self.task_definition_diff));
            }
        }
        match self.service {
            ServiceAction::Unchanged => {
                out.push(format!("service {}: unchanged", config.service.name))
            }
            ServiceAction::Create => {
                out.push(format!(
                    "service {}: create with {} tasks",
                    config.service.name, config.service.desired_count
                ));
                out.push(indent(&self.service_diff));
            }
            ServiceAction::Update => {
                out.push(format!(
                    "service {}: update (starts a deployment{})",
                    config.service.name,
                    if config.autoscaling.is_some() {
                        "; desired count left to autoscaling"
                    } else {
                        ""
                    }
                ));
                out.push(indent(&self.service_diff));
            }
        }
        if let Some(m) = &self.migration {
            out.push(format!("migration: {m}"));
        }
        if config.autoscaling.is_some() {
            if self.scaling_diff.is_empty() {
                out.push("autoscaling: unchanged".into());
            } else {
                out.push("autoscaling (scalable target, step policies, alarms):".into());
                out.push(indent(&self.scaling_diff));
            }
        }
        if !self.has_changes() {
            out.push("No changes: release would register nothing and start no deployment.".into());
        }
        out.join("\n")
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unified diff of the pretty JSON of both sides; empty when they are equal.
pub fn diff<T: Serialize + PartialEq>(before: Option<&T>, after: &T) -> String {
    if before == Some(after) {
        return String::new();
    }
    let render = |v: &T| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    let old = before.map(render).unwrap_or_default();
    let new = render(after);
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "- ",
                    similar::ChangeTag::Insert => "+ ",
                    similar::ChangeTag::Equal => "  ",
                };
                out.push_str(sign);
                out.push_str(change.value());
                if !change.value().ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out.push_str("  ...\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, PartialEq)]
    struct S {
        a: u32,
        b: String,
    }

    #[test]
    fn diff_is_empty_when_equal_and_names_changed_lines() {
        let x = S {
            a: 1,
            b: "x".into(),
        };
        assert_eq!(
            diff(
                Some(&x),
                &S {
                    a: 1,
                    b: "x".into()
                }
            ),
            ""
        );
        let d = diff(
            Some(&x),
            &S {
                a: 2,
                b: "x".into(),
            },
        );
        assert!(d.contains("-   \"a\": 1"), "{d}");
        assert!(d.contains("+   \"a\": 2"), "{d}");
    }
}
