//! `deployer rollback [--to REVISION]`: put the service back on a revision the ledger records
//! as completed, and follow that deployment like a release.

use std::time::Duration;

use serde::Serialize;

use crate::aws::Aws;
use crate::config::Config;
use crate::ecs::rollout::{self, Record, ReleaseError};
use crate::ecs::{service, taskdef};
use crate::error::DeployError;
use crate::ledger::{self, Entry};
use crate::lock;
use crate::progress::Progress;

#[derive(Debug, Clone, Serialize)]
pub struct RollbackSummary {
    pub from: String,
    pub to: String,
    pub digest: String,
    pub deployment_id: String,
    pub ledger_entry: u32,
    pub seconds: f64,
}

impl RollbackSummary {
    pub fn render(&self) -> String {
        format!(
            "rolled back {} -> {} ({})\ndeployment:      {} completed\ntime taken:      {:.1}s",
            self.from, self.to, self.digest, self.deployment_id, self.seconds
        )
    }
}

/// The entry to go back to: `--to` (a revision number or `family:N`) if given, else the newest
/// known-good entry for a revision other than the one running.
pub fn choose<'a>(
    entries: &'a [Entry],
    running: &str,
    to: Option<&str>,
) -> Result<&'a Entry, DeployError> {
    let good: Vec<&Entry> = entries.iter().filter(|e| e.is_known_good()).collect();
    let known = || {
        let mut revs: Vec<&str> = good.iter().map(|e| e.revision.as_str()).collect();
        revs.dedup();
        if revs.is_empty() {
            "none".to_string()
        } else {
            revs.join(", ")
        }
    };
    match to {
        Some(to) => good
            .iter()
            .rev()
            .find(|e| e.revision == to || e.revision.rsplit(':').next() == Some(to))
            .copied()
            .ok_or_else(|| {
                DeployError::Usage(format!(
                    "--to {to}: the ledger has no completed release of that revision; known-good: {}",
                    known()
                ))
            }),
        None => good.iter().rev().find(|e| e.revision != running).copied().ok_or_else(|| {
            DeployError::Usage(format!(
                "no known-good revision other than the running {running} in the ledger (known-good: {}); pass --to REVISION",
                known()
            ))
        }),
    }
}

#[tracing::instrument(skip_all)]
pub async fn rollback(
    aws: &Aws,
    config: &Config,
    to: Option<&str>,
    wait_for_lock: Option<Duration>,
    progress: &Progress,
) -> Result<RollbackSummary, ReleaseError> {
    let svc = service::describe(&aws.ecs, &config.cluster, &config.service.name)
        .await?
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "service {} does not exist in cluster {}; nothing to roll back",
                config.service.name, config.cluster
            ))
        })?;
    let service_arn = svc.service_arn().unwrap_or_default().to_string();
    // A rollback changes the service like a release does, and appends to the same ledger.
    let request = lock::request(config, &service_arn, "rollback", wait_for_lock);
    let held = lock::acquire(&aws.ecs, &request, progress).await?;
    let result = roll_back(aws, config, to, &service_arn, progress).await;
    held.release().await;
    result
}

/// Everything `rollback` does under the lock. The service is read again: what ran before the
/// lock was taken may have changed while waiting for it.
async fn roll_back(
    aws: &Aws,
    config: &Config,
    to: Option<&str>,
    service_arn: &str,
    progress: &Progress,
) -> Result<RollbackSummary, ReleaseError> {
    let svc = service::describe(&aws.ecs, &config.cluster, &config.service.name)
        .await?
        .ok_or_else(|| {
            DeployError::Usage(format!(
                "service {} disappeared from cluster {}; nothing to roll back",
                config.service.name, config.cluster
            ))
        })?;
    let running = taskdef::short_name(svc.task_definition().unwrap_or_default()).to_string();
    let entries = ledger::read(&aws.ecs, service_arn).await?;
    let target = choose(&entries, &running, to)?.clone();
    progress.step(format!("rolling back {running} -> {}", target.revision));
    // Only the task definition changes; every other setting stays as it is, and the desired
    // count is autoscaling's.
    let updated = aws
        .ecs
        .update_service()
        .cluster(&config.cluster)
        .service(&config.service.name)
        .task_definition(&target.revision)
        .send()
        .await
        .map_err(crate::aws::aws_err("ecs:UpdateService"))?;
    let deployment_id = updated
        .service()
        .and_then(service::primary_deployment)
        .ok_or_else(|| DeployError::Other("the service reports no PRIMARY deployment".into()))?;
    let entry = rollout::follow_and_record(
        aws,
        config,
        &deployment_id,
        Record {
            service_arn,
            revision: target.revision.clone(),
            digest: target.digest.clone(),
            kind: "rollback",
        },
        progress,
    )
    .await?;
    Ok(RollbackSummary {
        from: running,
        to: target.revision,
        digest: target.digest,
        deployment_id,
        ledger_entry: entry.seq,
        seconds: progress.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u32, rev: &str, outcome: &str) -> Entry {
        Entry {
            seq,
            revision: rev.into(),
            digest: "sha256:x".into(),
            deployment: "d".into(),
            outcome: outcome.into(),
            kind: "release".into(),
            at: String::new(),
        }
    }

    #[test]
    fn picks_newest_known_good_other_than_running() {
        let ledger = [
            entry(1, "f:1", "completed"),
            entry(2, "f:2", "completed"),
            entry(3, "f:3", "rolled-back"),
        ];
        assert_eq!(choose(&ledger, "f:2", None).unwrap().revision, "f:1");
        assert_eq!(choose(&ledger, "f:3", None).unwrap().revision, "f:2");
        assert_eq!(choose(&ledger, "f:3", Some("1")).unwrap().revision, "f:1");
        assert!(
            choose(&ledger, "f:1", Some("3")).is_err(),
            "f:3 never completed"
        );
    }
}
