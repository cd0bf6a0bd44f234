//! `deployer status`: deployments and counts, target health, autoscaling, alarm states, recent
//! service events and the last ledger entries.

use serde::Serialize;

use crate::aws::{Aws, AwsError, aws_err};
use crate::config::Config;
use crate::ecs::rollout::DeploymentView;
use crate::ecs::service;
use crate::ledger::{self, Entry};
use crate::lock::{self, ClaimView};
use crate::{scaling, tags};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub service: String,
    pub exists: bool,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<DeploymentView>,
    pub targets: Vec<String>,
    pub scaling: Option<scaling::ScalingSpec>,
    pub alarms: Vec<String>,
    pub events: Vec<String>,
    pub ledger: Vec<Entry>,
    /// Claims of the release lock (a release or rollback in progress, or left by a dead one).
    pub lock: Vec<ClaimView>,
}

#[tracing::instrument(skip_all)]
pub async fn status(aws: &Aws, config: &Config) -> Result<Status, AwsError> {
    let svc = service::describe(&aws.ecs, &config.cluster, &config.service.name).await?;
    let Some(svc) = svc else {
        return Ok(Status {
            service: config.service.name.clone(),
            exists: false,
            task_definition: String::new(),
            desired: 0,
            running: 0,
            pending: 0,
            deployments: vec![],
            targets: vec![],
            scaling: None,
            alarms: vec![],
            events: vec![],
            ledger: vec![],
            lock: vec![],
        });
    };
    let targets = match &config.service.target_group_arn {
        Some(tg) => aws
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .map_err(aws_err("elasticloadbalancing:DescribeTargetHealth"))?
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let target = d.target().map_or("?".into(), |t| {
                    format!("{}:{}", t.id().unwrap_or("?"), t.port().unwrap_or(0))
                });
                let h = d.target_health();
                format!(
                    "{target} {} {}",
                    h.and_then(|h| h.state())
                        .map(|s| s.as_str())
                        .unwrap_or("unknown"),
                    h.and_then(|h| h.description()).unwrap_or("")
                )
                .trim_end()
                .to_string()
            })
            .collect(),
        None => vec![],
    };
    let (scaling_spec, alarms) = if config.autoscaling.is_some() {
        let live = scaling::live(&aws.scaling, &aws.cloudwatch, config).await?;
        let alarms = live
            .alarm_states
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect();
        (Some(live.spec), alarms)
    } else {
        (None, vec![])
    };
    let tags = tags::read(&aws.ecs, svc.service_arn().unwrap_or_default()).await?;
    let ledger = ledger::from_tags(&tags);
    let now = time::OffsetDateTime::now_utc();
    let lock = lock::from_tags(&tags).iter().map(|c| c.view(now)).collect();
    Ok(Status {
        service: config.service.name.clone(),
        exists: true,
        task_definition: crate::ecs::taskdef::short_name(svc.task_definition().unwrap_or_default())
            .to_string(),
        desired: svc.desired_count(),
        running: svc.running_count(),
        pending: svc.pending_count(),
        deployments: svc.deployments().iter().map(DeploymentView::of).collect(),
        targets,
        scaling: scaling_spec,
        alarms,
        events: svc
            .events()
            .iter()
            .take(10)
            .map(|e| e.message().unwrap_or_default().to_string())
            .collect(),
        ledger: ledger.into_iter().rev().take(5).collect(),
        lock,
    })
}

impl Status {
    pub fn render(&self) -> String {
        if !self.exists {
            return format!(
                "service {}: does not exist (run `deployer release`)",
                self.service
            );
        }
        let mut out = vec![
            format!("service {}: {}", self.service, self.task_definition),
            format!(
                "  desired {}  running {}  pending {}",
                self.desired, self.running, self.pending
            ),
        ];
        if self.lock.is_empty() {
            out.push("lock: free".into());
        }
        out.extend(self.lock.iter().map(|c| format!("lock: {}", c.render())));
        out.push("deployments:".into());
        for d in &self.deployments {
            let reason = if d.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.reason)
            };
            out.push(format!("  {} {}{reason}", d.id, d.counts()));
        }
        out.push("targets:".into());
        if self.targets.is_empty() {
            out.push("  (none registered)".into());
        }
        out.extend(self.targets.iter().map(|t| format!("  {t}")));
        if let Some(s) = &self.scaling {
            match &s.target {
                Some(t) => out.push(format!("autoscaling: min {} max {}", t.min, t.max)),
                None => out.push("autoscaling: no scalable target".into()),
            }
            for (name, p) in &s.policies {
                let steps: Vec<String> = p
                    .steps
                    .iter()
                    .map(|s| format!("{:+}", s.adjustment))
                    .collect();
                out.push(format!(
                    "  policy {name}: {} tasks, cooldown {}s",
                    steps.join(","),
                    p.cooldown
                ));
            }
            out.extend(self.alarms.iter().map(|a| format!("  alarm {a}")));
        }
        out.push("recent events:".into());
        if self.events.is_empty() {
            out.push("  (none)".into());
        }
        out.extend(self.events.iter().map(|e| format!("  {e}")));
        out.push("ledger (newest first):".into());
        if self.ledger.is_empty() {
            out.push("  (empty)".into());
        }
        for e in &self.ledger {
            out.push(format!(
                "  #{} {} {} {} {} {}",
                e.seq, e.at, e.kind, e.revision, e.outcome, e.digest
            ));
        }
        out.join("\n")
    }
}
