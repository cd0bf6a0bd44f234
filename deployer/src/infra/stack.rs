//! One stack as CloudFormation sees it, and the regional clients that read it.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_cloudformation::Client;

use crate::aws::{AwsError, aws_err};

/// A CloudFormation client per region: stacks of one `[infra]` may live in two regions (the
/// replica bucket's).
#[derive(Clone, Debug)]
pub enum StackClients {
    /// From the shared AWS config; a stack's own `region` overrides the default one.
    Shared(Box<SdkConfig>),
    /// One client for every stack (tests with scripted responses).
    Fixed(Client),
}

impl StackClients {
    pub fn for_region(&self, region: Option<&str>) -> Client {
        match (self, region) {
            (StackClients::Fixed(c), _) => c.clone(),
            (StackClients::Shared(shared), None) => Client::new(shared),
            (StackClients::Shared(shared), Some(r)) => Client::from_conf(
                aws_sdk_cloudformation::config::Builder::from(shared.as_ref())
                    .region(aws_config::Region::new(r.to_string()))
                    .build(),
            ),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveStack {
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

impl LiveStack {
    /// Created by a change set that was never executed: nothing exists yet but the name.
    pub fn is_review(&self) -> bool {
        self.status == "REVIEW_IN_PROGRESS"
    }
}

/// The stack, or `None` when there is none of that name (never created, or deleted).
#[tracing::instrument(skip(cfn))]
pub async fn describe(cfn: &Client, name: &str) -> Result<Option<LiveStack>, AwsError> {
    let out = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = AwsError::new("cloudformation:DescribeStacks", e);
            // CloudFormation answers a missing stack with a generic ValidationError.
            if e.is_code("ValidationError") && e.message.contains("does not exist") {
                return Ok(None);
            }
            return Err(e);
        }
    };
    let Some(stack) = out.stacks().first() else {
        return Ok(None);
    };
    let status = stack
        .stack_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if status == "DELETE_COMPLETE" {
        return Ok(None);
    }
    Ok(Some(LiveStack {
        id: stack.stack_id().unwrap_or(name).to_string(),
        status,
        reason: stack.stack_status_reason().map(str::to_string),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }))
}

/// Terminal states: the stack is done changing, well or badly.
pub fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Terminal states that mean the last operation did what was asked.
pub fn is_success(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

/// `cloudformation:DeleteStack`.
pub async fn delete(cfn: &Client, id: &str) -> Result<(), AwsError> {
    cfn.delete_stack()
        .stack_name(id)
        .send()
        .await
        .map_err(aws_err("cloudformation:DeleteStack"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_stacks_are_terminal_failures() {
        for s in [
            "ROLLBACK_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
            "CREATE_FAILED",
            "DELETE_FAILED",
        ] {
            assert!(is_terminal(s) && !is_success(s), "{s}");
        }
        for s in ["CREATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"] {
            assert!(!is_terminal(s), "{s}");
        }
        assert!(is_success("UPDATE_COMPLETE"));
    }
}
