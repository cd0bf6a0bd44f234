//! Following a stack operation: its events as they come, until the stack reaches a terminal
//! state; on failure, the resources that failed and why.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;

use crate::aws::aws_err;
use crate::infra::InfraError;
use crate::infra::stack::{self, is_success, is_terminal};
use crate::progress::Progress;

#[derive(Debug, Clone, serde::Serialize)]
pub struct StackEvent {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl StackEvent {
    pub fn render(&self) -> String {
        let reason = self
            .reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!(
            "{} {} ({}){reason}",
            self.status, self.logical_id, self.resource_type
        )
    }

    fn is_failure(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// How one stack operation ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub stack: String,
    pub status: String,
    pub events: usize,
    /// Failed resources, the cause first: CloudFormation marks the others "cancelled".
    pub failures: Vec<StackEvent>,
}

impl Outcome {
    /// A failed operation on one screen: the status, then each failed resource and its reason.
    pub fn report(&self) -> String {
        let mut lines = vec![format!(
            "stack {} ended {} after {} event(s)",
            self.stack, self.status, self.events
        )];
        if self.failures.is_empty() {
            lines.push(
                "  (CloudFormation reported no failed resource; see the stack's events)".into(),
            );
        }
        for f in self.failures.iter().take(15) {
            lines.push(format!("  {}", f.render()));
        }
        lines.join("\n")
    }
}

pub struct Follow<'a> {
    pub stack: &'a str,
    /// The stack's id (ARN): a deleted stack is still found by id, not by name.
    pub id: &'a str,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

/// The newest event of the stack: events up to it belong to earlier operations. Comparing ids,
/// not times, keeps a skewed local clock from hiding or repeating events.
pub async fn latest_event_id(cfn: &Client, id: &str) -> Result<Option<String>, InfraError> {
    let page = cfn
        .describe_stack_events()
        .stack_name(id)
        .send()
        .await
        .map_err(aws_err("cloudformation:DescribeStackEvents"))?;
    Ok(page
        .stack_events()
        .first()
        .and_then(|e| e.event_id())
        .map(str::to_string))
}

/// Prints each event after `after` and returns when the stack is in a terminal state.
#[tracing::instrument(skip(cfn, follow, progress), fields(stack = follow.stack))]
pub async fn follow(
    cfn: &Client,
    follow: &Follow<'_>,
    after: Option<String>,
    progress: &Progress,
) -> Result<Outcome, InfraError> {
    let deadline = Instant::now() + follow.timeout;
    let mut seen: HashSet<String> = after.into_iter().collect();
    let mut all: Vec<StackEvent> = Vec::new();
    loop {
        for event in new_events(cfn, follow, &mut seen).await? {
            progress.done(format!("{}: {}", follow.stack, event.render()));
            all.push(event);
        }
        let status = match stack::describe(cfn, follow.id).await? {
            Some(live) => live.status,
            None => "DELETE_COMPLETE".to_string(),
        };
        if is_terminal(&status) {
            // Events written between the last look and the terminal state.
            for event in new_events(cfn, follow, &mut seen).await? {
                progress.done(format!("{}: {}", follow.stack, event.render()));
                all.push(event);
            }
            let mut failures: Vec<StackEvent> =
                all.iter().filter(|e| e.is_failure()).cloned().collect();
            failures.sort_by_key(|e| e.reason.as_deref().is_some_and(|r| r.contains("cancelled")));
            let outcome = Outcome {
                stack: follow.stack.to_string(),
                status: status.clone(),
                events: all.len(),
                failures,
            };
            if is_success(&status) {
                return Ok(outcome);
            }
            return Err(InfraError::StackFailed(outcome));
        }
        progress.step(format!("{}: {status}", follow.stack));
        if Instant::now() >= deadline {
            return Err(InfraError::TimedOut {
                stack: follow.stack.to_string(),
                what: format!("the stack (status {status})"),
                waited: humantime::format_duration(follow.timeout).to_string(),
            });
        }
        tokio::time::sleep(follow.poll_interval).await;
    }
}

/// Events not printed yet, oldest first. CloudFormation lists newest first, so paging stops at
/// the first event already seen.
async fn new_events(
    cfn: &Client,
    follow: &Follow<'_>,
    seen: &mut HashSet<String>,
) -> Result<Vec<StackEvent>, InfraError> {
    let mut fresh = Vec::new();
    let mut token: Option<String> = None;
    'pages: loop {
        let page = match cfn
            .describe_stack_events()
            .stack_name(follow.id)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => {
                let e = crate::aws::AwsError::new("cloudformation:DescribeStackEvents", e);
                // A deleted stack's events may be gone with it.
                if e.is_code("ValidationError") && e.message.contains("does not exist") {
                    break 'pages;
                }
                return Err(e.into());
            }
        };
        for event in page.stack_events() {
            let id = event.event_id().unwrap_or_default().to_string();
            if !seen.insert(id) {
                break 'pages;
            }
            fresh.push(StackEvent {
                logical_id: event.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: event.resource_type().unwrap_or_default().to_string(),
                status: event
                    .resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: event.resource_status_reason().map(str::to_string),
            });
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    fresh.reverse();
    Ok(fresh)
}

/// Deletes the stack and follows it until it is gone.
pub async fn delete_and_follow(
    cfn: &Client,
    follow: &Follow<'_>,
    after: Option<String>,
    progress: &Progress,
) -> Result<Outcome, InfraError> {
    stack::delete(cfn, follow.id).await?;
    self::follow(cfn, follow, after, progress).await
}
