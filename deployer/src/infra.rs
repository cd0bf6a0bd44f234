//! `deployer infra plan|up|down|outputs`: the CloudFormation stacks listed in `[infra]`, driven
//! through change sets so that `plan` shows exactly what `up` applies, and their outputs, which
//! the rest of the config refers to as `${STACK.OUTPUT}`.

pub mod changeset;
pub mod events;
pub mod stack;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::aws::AwsError;
use crate::config::{InfraSection, SERVICE_STACK_ALIAS, StackOutputs, StackSection, refs};
use crate::progress::Progress;
use changeset::{Proposal, Request};
use events::{Follow, Outcome};
use stack::{LiveStack, StackClients};

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The template cannot be sent as it is (unreadable, too large): nothing was changed.
    #[error("{0}")]
    Template(String),
    /// `--stack` names no stack of `[infra]`.
    #[error("no stack {name} in [[infra.stacks]]; listed: {listed}")]
    UnknownStack { name: String, listed: String },
    #[error(
        "stack {stack} is ROLLBACK_COMPLETE (its creation failed and was undone): delete it with `deployer infra down --stack {stack}`, then run `deployer infra up` again"
    )]
    NeedsDelete { stack: String },
    /// CloudFormation refused the change set (template or parameter error); nothing changed.
    #[error("stack {stack}: CloudFormation rejected the change set: {reason}")]
    ChangeSetFailed { stack: String, reason: String },
    #[error("stack {stack}: {what} cannot be resolved: {message}")]
    Parameter {
        stack: String,
        what: String,
        message: String,
    },
    /// The operation ended in a failed or rolled-back state; the report has been printed.
    #[error("stack {}: ended {}{}", .0.stack, .0.status, first_failure(.0))]
    StackFailed(Outcome),
    #[error("stack {stack}: {what} did not finish within {waited}; it goes on in CloudFormation")]
    TimedOut {
        stack: String,
        what: String,
        waited: String,
    },
    /// The config refers to outputs of a stack that does not exist.
    #[error("stack {stack} does not exist in {region}; create it with `deployer infra up`")]
    MissingStack {
        stack: String,
        region: String,
        /// The name the config uses for it (`infra` for the service stack).
        referenced_as: String,
    },
    #[error(
        "${{infra.OUTPUT}} names the outputs of the service stack, but there is no [infra] section listing it"
    )]
    NoServiceStack,
}

fn first_failure(outcome: &Outcome) -> String {
    outcome
        .failures
        .first()
        .map(|f| format!(" ({})", f.render()))
        .unwrap_or_default()
}

/// What the infra commands work with.
pub struct Context<'a> {
    pub clients: &'a StackClients,
    pub infra: &'a InfraSection,
    /// Region of stacks without their own (`aws.region`, else the standard chain's).
    pub default_region: Option<&'a str>,
    pub progress: &'a Progress,
}

impl Context<'_> {
    /// The stacks `--stack` selects (all when `None`), in `[infra]` order.
    fn selected(&self, only: Option<&str>) -> Result<Vec<&StackSection>, InfraError> {
        match only {
            None => Ok(self.infra.stacks.iter().collect()),
            Some(name) => match self.infra.stack(name) {
                Some(s) => Ok(vec![s]),
                None => Err(InfraError::UnknownStack {
                    name: name.to_string(),
                    listed: self
                        .infra
                        .stacks
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            },
        }
    }

    fn region_of<'s>(&'s self, stack: &'s StackSection) -> Option<&'s str> {
        stack.region.as_deref().or(self.default_region)
    }

    fn client(&self, stack: &StackSection) -> aws_sdk_cloudformation::Client {
        self.clients.for_region(self.region_of(stack))
    }

    fn request<'s>(
        &'s self,
        stack: &'s StackSection,
        body: &'s str,
        parameters: &'s std::collections::BTreeMap<String, String>,
    ) -> Request<'s> {
        Request {
            stack: &stack.name,
            region: self.region_of(stack),
            template_body: body,
            parameters,
            tags: &stack.tags,
            poll_interval: self.infra.poll_interval,
            timeout: self.infra.timeout,
        }
    }

    fn follow<'s>(&'s self, stack: &'s StackSection, id: &'s str) -> Follow<'s> {
        Follow {
            stack: &stack.name,
            id,
            poll_interval: self.infra.poll_interval,
            timeout: self.infra.timeout,
        }
    }
}

fn template(stack: &StackSection) -> Result<String, InfraError> {
    std::fs::read_to_string(&stack.template).map_err(|e| {
        InfraError::Template(format!(
            "stack {}: cannot read template {} ({e}); run deployer from the repository root or fix infra.stacks.template",
            stack.name,
            stack.template.display()
        ))
    })
}

/// Why a stack's parameters cannot be sent yet.
enum Unresolved {
    /// They use outputs of this stack, which does not exist yet.
    Waiting(String),
    Invalid(InfraError),
}

/// The stack's parameters with `${STACK.OUTPUT}` replaced from `known`.
fn parameters(
    stack: &StackSection,
    known: &StackOutputs,
) -> Result<std::collections::BTreeMap<String, String>, Unresolved> {
    let invalid = |key: &str, message: String| {
        Unresolved::Invalid(InfraError::Parameter {
            stack: stack.name.clone(),
            what: format!("parameter {key}"),
            message,
        })
    };
    let mut resolved = std::collections::BTreeMap::new();
    for (key, value) in &stack.parameters {
        let needs = refs::parse(value).map_err(|m| invalid(key, m))?;
        if let Some(missing) = needs.iter().find(|r| !known.contains_key(&r.stack)) {
            return Err(Unresolved::Waiting(missing.stack.clone()));
        }
        let value = refs::substitute(value, known).map_err(|m| invalid(key, m))?;
        resolved.insert(key.clone(), value);
    }
    Ok(resolved)
}

/// One line of `infra plan`.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Planned {
    Proposal(Proposal),
    /// Its parameters use outputs of a stack that `up` creates first.
    Waiting {
        stack: String,
        needs: String,
    },
}

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stacks: Vec<Planned>,
}

impl PlanReport {
    pub fn has_changes(&self) -> bool {
        self.stacks.iter().any(|p| match p {
            Planned::Proposal(p) => p.has_changes(),
            Planned::Waiting { .. } => true,
        })
    }

    pub fn render(&self) -> String {
        let mut lines: Vec<String> = self
            .stacks
            .iter()
            .map(|p| match p {
                Planned::Proposal(p) => p.render(),
                Planned::Waiting { stack, needs } => format!(
                    "stack {stack}: create after {needs} (its parameters use {needs}'s outputs)"
                ),
            })
            .collect();
        if !self.has_changes() {
            lines.push("no changes".into());
        }
        lines.join("\n")
    }
}

/// Change sets for the selected stacks, shown and thrown away: nothing changes.
pub async fn plan(ctx: &Context<'_>, only: Option<&str>) -> Result<PlanReport, InfraError> {
    let mut known = StackOutputs::new();
    let mut planned = Vec::new();
    for stack in earlier_and(ctx, only)? {
        let cfn = ctx.client(stack);
        let live = stack::describe(&cfn, &stack.name).await?;
        let selected = only.is_none_or(|o| o == stack.name);
        if selected {
            ctx.progress.step(format!("planning stack {}", stack.name));
            let body = template(stack)?;
            match parameters(stack, &known) {
                Ok(params) => {
                    let proposal = changeset::propose(
                        &cfn,
                        &ctx.request(stack, &body, &params),
                        live.as_ref(),
                    )
                    .await?;
                    changeset::discard(&cfn, &proposal).await?;
                    planned.push(Planned::Proposal(proposal));
                }
                Err(Unresolved::Waiting(needs)) => planned.push(Planned::Waiting {
                    stack: stack.name.clone(),
                    needs,
                }),
                Err(Unresolved::Invalid(e)) => return Err(e),
            }
        }
        if let Some(l) = live.filter(|l| !l.is_review()) {
            known.insert(stack.name.clone(), l.outputs);
        }
    }
    Ok(PlanReport { stacks: planned })
}

/// The selected stack(s) and, before them, the stacks listed earlier (whose outputs the
/// selected ones' parameters may use).
fn earlier_and<'c>(
    ctx: &'c Context<'_>,
    only: Option<&str>,
) -> Result<Vec<&'c StackSection>, InfraError> {
    let selected = ctx.selected(only)?;
    let last = selected.last().map(|s| s.name.as_str());
    let mut stacks = Vec::new();
    for s in &ctx.infra.stacks {
        stacks.push(s);
        if Some(s.name.as_str()) == last {
            break;
        }
    }
    Ok(stacks)
}

#[derive(Debug, Serialize)]
pub struct Applied {
    pub stack: String,
    /// `unchanged`, or the stack's terminal status.
    pub result: String,
    pub changes: usize,
    pub events: usize,
}

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub stacks: Vec<Applied>,
}

impl UpReport {
    pub fn render(&self) -> String {
        self.stacks
            .iter()
            .map(|a| match a.result.as_str() {
                "unchanged" => format!("stack {}: no changes", a.stack),
                status => format!(
                    "stack {}: {status} ({} resource change(s), {} event(s))",
                    a.stack, a.changes, a.events
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Creates or updates the selected stacks in order, each one after the ones it needs.
pub async fn up(ctx: &Context<'_>, only: Option<&str>) -> Result<UpReport, InfraError> {
    let mut known = StackOutputs::new();
    let mut applied = Vec::new();
    for stack in earlier_and(ctx, only)? {
        let cfn = ctx.client(stack);
        let live = stack::describe(&cfn, &stack.name).await?;
        if only.is_some_and(|o| o != stack.name) {
            if let Some(l) = live.filter(|l| !l.is_review()) {
                known.insert(stack.name.clone(), l.outputs);
            }
            continue;
        }
        ctx.progress.step(format!("planning stack {}", stack.name));
        let body = template(stack)?;
        let params = parameters(stack, &known).map_err(|e| match e {
            Unresolved::Invalid(e) => e,
            Unresolved::Waiting(needs) => InfraError::Parameter {
                stack: stack.name.clone(),
                what: "its parameters".into(),
                message: format!(
                    "they use outputs of stack {needs}, which does not exist; run `deployer infra up` without --stack"
                ),
            },
        })?;
        let proposal =
            changeset::propose(&cfn, &ctx.request(stack, &body, &params), live.as_ref()).await?;
        if !proposal.has_changes() {
            ctx.progress
                .done(format!("stack {}: no changes", stack.name));
            applied.push(Applied {
                stack: stack.name.clone(),
                result: "unchanged".into(),
                changes: 0,
                events: 0,
            });
            if let Some(l) = live {
                known.insert(stack.name.clone(), l.outputs);
            }
            continue;
        }
        ctx.progress.done(proposal.render());
        let after = match &live {
            Some(l) => events::latest_event_id(&cfn, &l.id).await?,
            None => None,
        };
        changeset::execute(&cfn, &proposal).await?;
        let id = match stack::describe(&cfn, &stack.name).await? {
            Some(l) => l.id,
            None => stack.name.clone(),
        };
        let outcome = events::follow(&cfn, &ctx.follow(stack, &id), after, ctx.progress).await?;
        ctx.progress
            .done(format!("stack {}: {}", stack.name, outcome.status));
        let outputs = stack::describe(&cfn, &id)
            .await?
            .map(|l| l.outputs)
            .unwrap_or_default();
        known.insert(stack.name.clone(), outputs);
        applied.push(Applied {
            stack: stack.name.clone(),
            result: outcome.status,
            changes: proposal.changes.len(),
            events: outcome.events,
        });
    }
    Ok(UpReport { stacks: applied })
}

#[derive(Debug, Serialize)]
pub struct DownReport {
    /// Stack name and `DELETE_COMPLETE`, or `absent` when there was nothing to delete.
    pub stacks: Vec<(String, String)>,
}

impl DownReport {
    pub fn render(&self) -> String {
        self.stacks
            .iter()
            .map(|(s, r)| match r.as_str() {
                "absent" => format!("stack {s}: does not exist (nothing to delete)"),
                r => format!("stack {s}: {r}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The stacks `down` would delete, in deletion order (last listed first).
pub fn deletion_order<'c>(
    ctx: &'c Context<'_>,
    only: Option<&str>,
) -> Result<Vec<&'c StackSection>, InfraError> {
    let mut stacks = ctx.selected(only)?;
    stacks.reverse();
    Ok(stacks)
}

/// Deletes the selected stacks, the last listed first (it may use the earlier ones' outputs).
/// The caller has asked for confirmation.
pub async fn down(ctx: &Context<'_>, only: Option<&str>) -> Result<DownReport, InfraError> {
    let mut done = Vec::new();
    for stack in deletion_order(ctx, only)? {
        let cfn = ctx.client(stack);
        let Some(live) = stack::describe(&cfn, &stack.name).await? else {
            done.push((stack.name.clone(), "absent".to_string()));
            continue;
        };
        ctx.progress.step(format!("deleting stack {}", stack.name));
        let after = events::latest_event_id(&cfn, &live.id).await?;
        let outcome =
            events::delete_and_follow(&cfn, &ctx.follow(stack, &live.id), after, ctx.progress)
                .await?;
        ctx.progress
            .done(format!("stack {}: {}", stack.name, outcome.status));
        done.push((stack.name.clone(), outcome.status));
    }
    Ok(DownReport { stacks: done })
}

/// The outputs of the selected stacks that exist.
pub async fn outputs(ctx: &Context<'_>, only: Option<&str>) -> Result<StackOutputs, InfraError> {
    let mut all = StackOutputs::new();
    for stack in ctx.selected(only)? {
        if let Some(l) = live(ctx, stack).await? {
            all.insert(stack.name.clone(), l.outputs);
        }
    }
    Ok(all)
}

async fn live(ctx: &Context<'_>, stack: &StackSection) -> Result<Option<LiveStack>, InfraError> {
    let cfn = ctx.client(stack);
    Ok(stack::describe(&cfn, &stack.name)
        .await?
        .filter(|l| !l.is_review()))
}

pub fn render_outputs(outputs: &StackOutputs) -> String {
    outputs
        .iter()
        .flat_map(|(stack, values)| {
            values
                .iter()
                .map(move |(k, v)| format!("${{{stack}.{k}}} = {v}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the outputs of `names` (the stacks the config refers to, `infra` standing for the
/// service stack) for `Draft::resolve`, keyed by those names. A stack listed in `[infra]` is read
/// in its own region, any other in the default one.
pub async fn read_outputs(
    clients: &StackClients,
    infra: Option<&InfraSection>,
    default_region: Option<&str>,
    names: &BTreeSet<String>,
) -> Result<StackOutputs, InfraError> {
    let mut all = StackOutputs::new();
    for name in names {
        let stack = if name == SERVICE_STACK_ALIAS {
            infra
                .and_then(InfraSection::service_stack_name)
                .ok_or(InfraError::NoServiceStack)?
        } else {
            name.as_str()
        };
        let region = infra
            .and_then(|i| i.stack(stack))
            .and_then(|s| s.region.as_deref())
            .or(default_region);
        let cfn = clients.for_region(region);
        match stack::describe(&cfn, stack).await? {
            Some(l) if !l.is_review() => {
                all.insert(name.clone(), l.outputs);
            }
            _ => {
                return Err(InfraError::MissingStack {
                    stack: stack.to_string(),
                    region: region.unwrap_or("the default region").to_string(),
                    referenced_as: name.clone(),
                });
            }
        }
    }
    Ok(all)
}
