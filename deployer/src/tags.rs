//! The service's tags, where the release ledger and the release lock live: one read serves both.

use crate::aws::{AwsError, aws_err};

/// Every tag of `service_arn`, as (key, value).
#[tracing::instrument(skip(ecs))]
pub async fn read(
    ecs: &aws_sdk_ecs::Client,
    service_arn: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    let out = ecs
        .list_tags_for_resource()
        .resource_arn(service_arn)
        .send()
        .await
        .map_err(aws_err("ecs:ListTagsForResource"))?;
    Ok(out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect())
}
