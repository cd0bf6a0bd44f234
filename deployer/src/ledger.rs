//! The release ledger: one entry per release or rollback (task definition revision, image digest,
//! deployment id, outcome), so that "the previous known-good revision" is a recorded fact and not
//! a guess from revision numbers.
//!
//! Entries are tags on the ECS service itself (`deployer:release:000042`). That place survives
//! any machine, needs no bucket or parameter store set up first, lives and dies with the service
//! it describes, is readable in one call (ListTagsForResource), and is guarded by the same IAM
//! permissions as the service. ECS allows 50 tags per resource, so the newest `KEEP` entries
//! are kept and older ones removed.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::Tag;
use serde::Serialize;

use crate::aws::{AwsError, aws_err};

const PREFIX: &str = "deployer:release:";
/// Leaves room for the user's own tags within ECS's 50.
pub const KEEP: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: u32,
    /// `family:revision`
    pub revision: String,
    pub digest: String,
    pub deployment: String,
    /// completed | failed | rolled-back | timed-out
    pub outcome: String,
    /// release | rollback
    pub kind: String,
    /// RFC 3339, UTC
    pub at: String,
}

impl Entry {
    pub fn is_known_good(&self) -> bool {
        self.outcome == "completed"
    }

    fn tag_value(&self) -> String {
        format!(
            "rev={} digest={} deployment={} outcome={} kind={} at={}",
            self.revision, self.digest, self.deployment, self.outcome, self.kind, self.at
        )
    }

    fn parse(key: &str, value: &str) -> Option<Self> {
        let seq = key.strip_prefix(PREFIX)?.parse().ok()?;
        let fields: BTreeMap<&str, &str> = value
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| fields.get(k).map(|v| v.to_string()).unwrap_or_default();
        Some(Self {
            seq,
            revision: fields.get("rev")?.to_string(),
            digest: get("digest"),
            deployment: get("deployment"),
            outcome: get("outcome"),
            kind: get("kind"),
            at: get("at"),
        })
    }
}

/// Entries, oldest first.
pub async fn read(ecs: &aws_sdk_ecs::Client, service_arn: &str) -> Result<Vec<Entry>, AwsError> {
    Ok(from_tags(&crate::tags::read(ecs, service_arn).await?))
}

/// The entries among a service's tags, oldest first.
pub fn from_tags(tags: &[(String, String)]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = tags
        .iter()
        .filter_map(|(key, value)| Entry::parse(key, value))
        .collect();
    entries.sort_by_key(|e| e.seq);
    entries
}

/// Appends an entry (numbered after the newest) and drops entries beyond [`KEEP`].
#[tracing::instrument(skip(ecs, entry), fields(revision = %entry.revision, outcome = %entry.outcome))]
pub async fn append(
    ecs: &aws_sdk_ecs::Client,
    service_arn: &str,
    mut entry: Entry,
) -> Result<Entry, AwsError> {
    let existing = read(ecs, service_arn).await?;
    entry.seq = existing.last().map_or(1, |e| e.seq + 1);
    ecs.tag_resource()
        .resource_arn(service_arn)
        .tags(
            Tag::builder()
                .key(format!("{PREFIX}{:06}", entry.seq))
                .value(entry.tag_value())
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("ecs:TagResource"))?;
    let total = existing.len() + 1;
    if total > KEEP {
        let old: Vec<String> = existing
            .iter()
            .take(total - KEEP)
            .map(|e| format!("{PREFIX}{:06}", e.seq))
            .collect();
        ecs.untag_resource()
            .resource_arn(service_arn)
            .set_tag_keys(Some(old))
            .send()
            .await
            .map_err(aws_err("ecs:UntagResource"))?;
    }
    Ok(entry)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_tags() {
        let e = Entry {
            seq: 7,
            revision: "data-processor-task:12".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            deployment: "ecs-svc/123".into(),
            outcome: "completed".into(),
            kind: "release".into(),
            at: "2026-11-27T07:00:00Z".into(),
        };
        let value = e.tag_value();
        assert!(
            value.len() <= 256,
            "ECS tag values hold at most 256 characters"
        );
        assert_eq!(Entry::parse("deployer:release:000007", &value), Some(e));
        assert_eq!(Entry::parse("other", &value), None);
    }
}
