//! The ECR repository: created when missing, with scan on push and a lifecycle policy that keeps
//! the last N images. Each setting is written only when it differs, so a no-op release stays one
//! read call here.

use aws_sdk_ecr::types::ImageScanningConfiguration;
use serde_json::json;

use crate::aws::{AwsError, aws_err};
use crate::config::RegistrySection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoChange {
    Created,
    Updated,
    Unchanged,
}

/// The lifecycle policy text deployer maintains.
pub fn lifecycle_policy(keep: u32) -> serde_json::Value {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {keep} images (deployer)"),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }]
    })
}

/// What differs between the live repository and the config, for `plan`. `None` = no repository.
pub async fn inspect(
    ecr: &aws_sdk_ecr::Client,
    section: &RegistrySection,
) -> Result<Option<Vec<String>>, AwsError> {
    let repos = match ecr
        .describe_repositories()
        .repository_names(&section.repository)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let e = AwsError::new("ecr:DescribeRepositories", e);
            if e.is_code("RepositoryNotFoundException") {
                return Ok(None);
            }
            return Err(e);
        }
    };
    let mut diffs = Vec::new();
    let scan = repos
        .repositories()
        .first()
        .and_then(|r| r.image_scanning_configuration())
        .is_some_and(|s| s.scan_on_push());
    if scan != section.scan_on_push {
        diffs.push(format!("scan on push: {scan} -> {}", section.scan_on_push));
    }
    if live_policy(ecr, section).await? != Some(lifecycle_policy(section.keep_images)) {
        diffs.push(format!(
            "lifecycle policy: keep the last {} images",
            section.keep_images
        ));
    }
    Ok(Some(diffs))
}

async fn live_policy(
    ecr: &aws_sdk_ecr::Client,
    section: &RegistrySection,
) -> Result<Option<serde_json::Value>, AwsError> {
    match ecr
        .get_lifecycle_policy()
        .repository_name(&section.repository)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .lifecycle_policy_text()
            .and_then(|t| serde_json::from_str(t).ok())),
        Err(e) => {
            let e = AwsError::new("ecr:GetLifecyclePolicy", e);
            if e.is_code("LifecyclePolicyNotFoundException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(repository = %section.repository))]
pub async fn ensure_repository(
    ecr: &aws_sdk_ecr::Client,
    section: &RegistrySection,
) -> Result<RepoChange, AwsError> {
    let scanning = ImageScanningConfiguration::builder()
        .scan_on_push(section.scan_on_push)
        .build();
    let (mut change, diffs) = match inspect(ecr, section).await? {
        None => {
            ecr.create_repository()
                .repository_name(&section.repository)
                .image_scanning_configuration(scanning.clone())
                .send()
                .await
                .map_err(aws_err("ecr:CreateRepository"))?;
            (RepoChange::Created, vec!["lifecycle policy".to_string()])
        }
        Some(diffs) => (RepoChange::Unchanged, diffs),
    };
    for diff in diffs {
        if diff.starts_with("scan on push") {
            ecr.put_image_scanning_configuration()
                .repository_name(&section.repository)
                .image_scanning_configuration(scanning.clone())
                .send()
                .await
                .map_err(aws_err("ecr:PutImageScanningConfiguration"))?;
        } else {
            ecr.put_lifecycle_policy()
                .repository_name(&section.repository)
                .lifecycle_policy_text(lifecycle_policy(section.keep_images).to_string())
                .send()
                .await
                .map_err(aws_err("ecr:PutLifecyclePolicy"))?;
        }
        if change == RepoChange::Unchanged {
            change = RepoChange::Updated;
        }
    }
    Ok(change)
}
