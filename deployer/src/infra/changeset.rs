//! A change set per stack: what `plan` shows and what `up` executes are the same object, so the
//! plan cannot drift from what is applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};

use crate::aws::{AwsError, aws_err};
use crate::infra::InfraError;
use crate::infra::stack::LiveStack;

/// CloudFormation's limit for a template passed inline (larger ones must come from S3).
const MAX_TEMPLATE_BODY: usize = 51_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Create,
    Update,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceChange {
    /// Add, Modify, Remove, Import, Dynamic.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// For Modify: True, False or Conditional.
    pub replacement: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ParameterChange {
    pub name: String,
    pub from: Option<String>,
    pub to: String,
}

/// What applying the config to one stack would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proposal {
    pub stack: String,
    pub region: Option<String>,
    pub kind: Kind,
    /// The change set's id; `None` when there is nothing to change (no change set is kept).
    #[serde(skip)]
    pub change_set: Option<String>,
    pub changes: Vec<ResourceChange>,
    pub parameters: Vec<ParameterChange>,
}

impl Proposal {
    pub fn has_changes(&self) -> bool {
        self.change_set.is_some()
    }

    pub fn render(&self) -> String {
        let region = self
            .region
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        if !self.has_changes() {
            return format!("stack {}{region}: no changes", self.stack);
        }
        let verb = match self.kind {
            Kind::Create => "create",
            Kind::Update => "update",
        };
        let mut lines = vec![format!(
            "stack {}{region}: {verb}, {} resource change(s)",
            self.stack,
            self.changes.len()
        )];
        for p in &self.parameters {
            lines.push(format!(
                "  parameter {}: {} -> {}",
                p.name,
                p.from.as_deref().unwrap_or("(unset)"),
                p.to
            ));
        }
        let width = self
            .changes
            .iter()
            .map(|c| c.logical_id.len())
            .max()
            .unwrap_or(0);
        for c in &self.changes {
            let mark = match c.action.as_str() {
                "Add" => "+",
                "Remove" => "-",
                "Modify" => "~",
                _ => "?",
            };
            let replacement = match c.replacement.as_deref() {
                Some("True") => "  (replaced)",
                Some("Conditional") => "  (may be replaced)",
                _ => "",
            };
            lines.push(format!(
                "  {mark} {:<width$}  {}{replacement}",
                c.logical_id, c.resource_type
            ));
        }
        lines.join("\n")
    }
}

/// The stack's parameters as the config sets them, against what the stack runs with.
pub fn parameter_changes(
    desired: &BTreeMap<String, String>,
    live: Option<&LiveStack>,
) -> Vec<ParameterChange> {
    desired
        .iter()
        .filter_map(|(name, to)| {
            let from = live.and_then(|l| l.parameters.get(name)).cloned();
            (from.as_deref() != Some(to.as_str())).then(|| ParameterChange {
                name: name.clone(),
                from,
                to: to.clone(),
            })
        })
        .collect()
}

pub struct Request<'a> {
    pub stack: &'a str,
    pub region: Option<&'a str>,
    pub template_body: &'a str,
    pub parameters: &'a BTreeMap<String, String>,
    pub tags: &'a BTreeMap<String, String>,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

/// Creates a change set and waits until CloudFormation has computed it. A stack that does not
/// exist (or exists only as an unexecuted change set's placeholder) gets a CREATE change set,
/// any other an UPDATE one: CloudFormation's default (CREATE) cannot update a stack.
#[tracing::instrument(skip(cfn, request, live), fields(stack = request.stack))]
pub async fn propose(
    cfn: &Client,
    request: &Request<'_>,
    live: Option<&LiveStack>,
) -> Result<Proposal, InfraError> {
    if request.template_body.len() > MAX_TEMPLATE_BODY {
        return Err(InfraError::Template(format!(
            "the template of stack {} is {} bytes; CloudFormation takes at most {MAX_TEMPLATE_BODY} inline",
            request.stack,
            request.template_body.len()
        )));
    }
    let kind = match live {
        Some(l) if !l.is_review() => Kind::Update,
        _ => Kind::Create,
    };
    if let Some(l) = live
        && l.status == "ROLLBACK_COMPLETE"
    {
        return Err(InfraError::NeedsDelete {
            stack: request.stack.to_string(),
        });
    }
    let name = format!(
        "deployer-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let parameters: Vec<Parameter> = request
        .parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let tags: Vec<Tag> = request
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let created = match cfn
        .create_change_set()
        .stack_name(request.stack)
        .change_set_name(&name)
        .change_set_type(match kind {
            Kind::Create => ChangeSetType::Create,
            Kind::Update => ChangeSetType::Update,
        })
        .template_body(request.template_body)
        .set_parameters(Some(parameters))
        .set_tags((!tags.is_empty()).then_some(tags))
        // The templates create IAM roles with names; without these CloudFormation refuses.
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
    {
        Ok(created) => created,
        Err(e) => {
            let e = AwsError::new("cloudformation:CreateChangeSet", e);
            if kind == Kind::Create {
                remove_placeholder(cfn, request.stack).await?;
            }
            return Err(e.into());
        }
    };
    let id = created.id().unwrap_or(&name).to_string();

    let deadline = Instant::now() + request.timeout;
    let mut changes = Vec::new();
    loop {
        let first = cfn
            .describe_change_set()
            .change_set_name(&id)
            .stack_name(request.stack)
            .send()
            .await
            .map_err(aws_err("cloudformation:DescribeChangeSet"))?;
        let status = first.status().map(|s| s.as_str()).unwrap_or_default();
        match status {
            "CREATE_COMPLETE" => {
                collect(&first, &mut changes);
                let mut token = first.next_token().map(str::to_string);
                while let Some(t) = token {
                    let page = cfn
                        .describe_change_set()
                        .change_set_name(&id)
                        .stack_name(request.stack)
                        .next_token(t)
                        .send()
                        .await
                        .map_err(aws_err("cloudformation:DescribeChangeSet"))?;
                    collect(&page, &mut changes);
                    token = page.next_token().map(str::to_string);
                }
                break;
            }
            "FAILED" => {
                let reason = first.status_reason().unwrap_or_default().to_string();
                // A failed change set stays listed on the stack (and a failed CREATE one
                // leaves its placeholder stack): remove them either way.
                delete_change_set(cfn, request.stack, &id).await?;
                if kind == Kind::Create {
                    remove_placeholder(cfn, request.stack).await?;
                }
                if no_changes(&reason) {
                    return Ok(Proposal {
                        stack: request.stack.to_string(),
                        region: request.region.map(str::to_string),
                        kind,
                        change_set: None,
                        changes: Vec::new(),
                        parameters: Vec::new(),
                    });
                }
                return Err(InfraError::ChangeSetFailed {
                    stack: request.stack.to_string(),
                    reason,
                });
            }
            _ if Instant::now() >= deadline => {
                return Err(InfraError::TimedOut {
                    stack: request.stack.to_string(),
                    what: format!("change set {name} (status {status})"),
                    waited: humantime::format_duration(request.timeout).to_string(),
                });
            }
            _ => tokio::time::sleep(request.poll_interval).await,
        }
    }
    Ok(Proposal {
        stack: request.stack.to_string(),
        region: request.region.map(str::to_string),
        kind,
        change_set: Some(id),
        changes,
        parameters: parameter_changes(request.parameters, live),
    })
}

fn collect(
    page: &aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
    into: &mut Vec<ResourceChange>,
) {
    for change in page.changes() {
        let Some(rc) = change.resource_change() else {
            continue;
        };
        into.push(ResourceChange {
            action: rc
                .action()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: rc.resource_type().unwrap_or_default().to_string(),
            replacement: rc.replacement().map(|r| r.as_str().to_string()),
        });
    }
}

/// CloudFormation's wording for "the stack already matches": it fails the change set.
fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Throws a computed change set away (`plan`), and the empty placeholder stack a CREATE change
/// set leaves behind, so that a plan changes nothing.
pub async fn discard(cfn: &Client, proposal: &Proposal) -> Result<(), AwsError> {
    let Some(id) = &proposal.change_set else {
        return Ok(());
    };
    delete_change_set(cfn, &proposal.stack, id).await?;
    if proposal.kind == Kind::Create {
        remove_placeholder(cfn, &proposal.stack).await?;
    }
    Ok(())
}

/// Deletes the REVIEW_IN_PROGRESS stack a CREATE change set makes, if one is there: it holds no
/// resources, but it stays listed in the account as if the stack existed. A CreateChangeSet the
/// SDK retried after a 5xx can leave one per attempt on an emulator, hence the loop (bounded by
/// the attempts a call makes).
async fn remove_placeholder(cfn: &Client, stack: &str) -> Result<(), AwsError> {
    let attempts = cfn
        .config()
        .retry_config()
        .map(|r| r.max_attempts())
        .unwrap_or(1);
    for _ in 0..attempts {
        match crate::infra::stack::describe(cfn, stack).await? {
            Some(live) if live.is_review() => crate::infra::stack::delete(cfn, &live.id).await?,
            _ => break,
        }
    }
    Ok(())
}

async fn delete_change_set(cfn: &Client, stack: &str, id: &str) -> Result<(), AwsError> {
    cfn.delete_change_set()
        .change_set_name(id)
        .stack_name(stack)
        .send()
        .await
        .map_err(aws_err("cloudformation:DeleteChangeSet"))?;
    Ok(())
}

/// Starts applying the change set; `events::follow` watches it.
pub async fn execute(cfn: &Client, proposal: &Proposal) -> Result<(), AwsError> {
    let Some(id) = &proposal.change_set else {
        return Ok(());
    };
    cfn.execute_change_set()
        .change_set_name(id)
        .stack_name(&proposal.stack)
        .send()
        .await
        .map_err(aws_err("cloudformation:ExecuteChangeSet"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_parameters_the_config_changes_are_listed() {
        let live = LiveStack {
            id: "id".into(),
            status: "CREATE_COMPLETE".into(),
            reason: None,
            parameters: BTreeMap::from([
                ("A".to_string(), "1".to_string()),
                ("Default".to_string(), "x".to_string()),
            ]),
            outputs: BTreeMap::new(),
        };
        let desired = BTreeMap::from([
            ("A".to_string(), "2".to_string()),
            ("New".to_string(), "n".to_string()),
        ]);
        let changes = parameter_changes(&desired, Some(&live));
        let names: Vec<(&str, Option<&str>, &str)> = changes
            .iter()
            .map(|c| (c.name.as_str(), c.from.as_deref(), c.to.as_str()))
            .collect();
        assert_eq!(names, vec![("A", Some("1"), "2"), ("New", None, "n")]);
    }

    #[test]
    fn both_wordings_of_no_change_are_recognised() {
        assert!(no_changes(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(no_changes("No updates are to be performed."));
        assert!(!no_changes("Template format error"));
    }
}
