//! Command line: parse, load the config (before any AWS call), run the command, print the result
//! as text or JSON, and return the exit code (see `error::exit`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::aws::{self, Aws};
use crate::config::{self, Config};
use crate::ecs::rollout::ReleaseError;
use crate::error::{DeployError, exit};
use crate::image::{ImagePublisher, OciPublisher, PublishedImage, resolve_target};
use crate::infra::{self, InfraError, stack::StackClients};
use crate::logs::LogLine;
use crate::logtail::LogsArgs;
use crate::plan;
use crate::progress::{OutputFormat, Progress};
use crate::release::{ImageSource, release};

#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    args_override_self = true,
    about = "Ship data-processor to ECS: build, push, roll out, autoscale."
)]
pub struct Cli {
    /// The deployment config.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_CONFIG",
        default_value = "deploy/deployer.toml"
    )]
    pub config: PathBuf,
    /// Apply the [env.NAME] section of the config.
    #[arg(long, global = true, env = "DEPLOYER_ENV")]
    pub env: Option<String>,
    /// `json` prints one JSON document on stdout (progress stays on stderr).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, push, register, update the service, configure autoscaling and follow the rollout.
    Release {
        /// Deploy this image (REPOSITORY@sha256:...), pushed before: skips build and push.
        #[arg(long)]
        image: Option<String>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Show what `release` would change, without changing anything.
    Plan {
        /// Plan for this image (REPOSITORY@sha256:...) instead of building one.
        #[arg(long)]
        image: Option<String>,
    },
    /// Deployments, counts, target health, autoscaling, alarms, events and the release ledger.
    Status,
    /// Run CMD as a one-off task of the service's current revision (same image digest, the
    /// service's network settings), stream its log lines, and exit with its container's exit
    /// code. The image's entrypoint is the service binary, so CMD is its arguments, e.g.
    /// `deployer run -- migrate`.
    Run {
        /// Stop the task (StopTask) and exit 6 when it runs longer than this.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// The app container's command.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// The CloudWatch Logs lines of the service's tasks (the task definition's awslogs options).
    Logs {
        /// Keep reading (every deployment.poll_interval) and print new lines until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Lines written this long ago or later.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Only the tasks of this deployment (`ecs-svc/ID` or ID, as `deployer status` lists it).
        #[arg(long)]
        deployment: Option<String>,
    },
    /// Go back to a known-good revision from the release ledger and follow that deployment.
    Rollback {
        /// Revision number or family:revision (default: the newest known-good one not running).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Build the image locally and print its digest.
    Build,
    /// Build and push the image; print the pinned reference.
    Push,
    /// Check the config (with --env and DEPLOYER__* overrides, stack outputs resolved) and print
    /// the result as TOML.
    Config,
    /// The CloudFormation stacks of [infra]: network, cluster, load balancer, database, bucket.
    Infra {
        #[command(subcommand)]
        action: InfraAction,
    },
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LockArgs {
    /// When another release or rollback of the service holds its lock, wait for it to end (at
    /// most DURATION, default 30m) instead of exiting 9.
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        default_missing_value = "30m",
        value_parser = humantime::parse_duration
    )]
    pub wait_for_lock: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum InfraAction {
    /// Show what `infra up` would change: a change set per stack, computed and thrown away.
    Plan {
        /// Only this stack (and none after it).
        #[arg(long)]
        stack: Option<String>,
    },
    /// Create or update the stacks in order, following their events to the end.
    Up {
        #[arg(long)]
        stack: Option<String>,
    },
    /// Delete the stacks, the last listed first (asks for confirmation unless --yes).
    Down {
        #[arg(long)]
        stack: Option<String>,
        /// Do not ask (scripts, CI).
        #[arg(long)]
        yes: bool,
    },
    /// Print the stacks' outputs, as `${STACK.OUTPUT}` references resolve them.
    Outputs {
        #[arg(long)]
        stack: Option<String>,
    },
}

/// Runs the command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let format = cli.output;
    let vars = std::env::vars().filter(|(k, _)| k.starts_with(config::ENV_PREFIX));
    let draft = match config::read(&cli.config, cli.env.as_deref(), vars) {
        Ok(d) => d,
        Err(e) => return fail(format, &DeployError::Config(e), None),
    };
    let progress = Progress::new(format);
    let result = match cli.command {
        Command::Infra { action } => infra_command(action, &draft, &progress)
            .await
            .map_err(ReleaseError::Other),
        command => match resolve(draft).await {
            Ok((config, shared)) => match (command, shared) {
                // No AWS client for `config` without references: building one may probe
                // instance metadata for a region.
                (Command::Config, _) => show_config(&config).map_err(ReleaseError::Other),
                (command, shared) => {
                    let shared = match shared {
                        Some(s) => s,
                        None => aws::shared_config(&config.aws).await,
                    };
                    let aws = Aws::from_shared(&shared);
                    let publisher = OciPublisher::new(&config.image);
                    dispatch(command, &aws, &config, &publisher, &progress, format).await
                }
            },
            Err(e) => Err(ReleaseError::Other(e)),
        },
    };
    progress.finish();
    match result {
        // Nothing left to print: `run` printed the task's output, `logs --follow` its lines.
        Ok((text, value)) => {
            match format {
                OutputFormat::Text if !text.is_empty() => println!("{text}"),
                OutputFormat::Json if !value.is_null() => println!("{value}"),
                _ => {}
            }
            exit::OK
        }
        Err(ReleaseError::Other(e)) => {
            if let (DeployError::Infra(InfraError::StackFailed(outcome)), OutputFormat::Text) =
                (&e, format)
            {
                eprintln!("{}", outcome.report());
            }
            let report = match &e {
                DeployError::Infra(InfraError::StackFailed(outcome)) => {
                    serde_json::to_value(outcome).ok()
                }
                _ => None,
            };
            fail(format, &e, report)
        }
        Err(ReleaseError::Failed(f)) => {
            if format == OutputFormat::Text {
                eprintln!("{}", f.text);
            }
            fail(format, &f.error, serde_json::to_value(&f.report).ok())
        }
    }
}

/// The config with `${STACK.OUTPUT}` resolved, reading the stacks it refers to (and the AWS
/// config used for that, so it is loaded once).
async fn resolve(
    draft: config::Draft,
) -> Result<(Config, Option<aws_config::SdkConfig>), DeployError> {
    let stacks = draft.referenced_stacks()?;
    if stacks.is_empty() {
        return Ok((draft.resolve(&config::StackOutputs::new())?, None));
    }
    let aws_section = draft.aws()?;
    let infra_section = draft.infra()?;
    let shared = aws::shared_config(&aws_section).await;
    let clients = StackClients::Shared(Box::new(shared.clone()));
    let outputs = infra::read_outputs(
        &clients,
        infra_section.as_ref(),
        aws_section.region.as_deref(),
        &stacks,
    )
    .await
    .map_err(|e| match e {
        // Name the line that needs the stack: the fix may be the reference, not the stack.
        InfraError::MissingStack {
            ref referenced_as, ..
        } => DeployError::Config(draft.reference_error(referenced_as, &e.to_string())),
        InfraError::NoServiceStack => {
            DeployError::Config(draft.reference_error(config::SERVICE_STACK_ALIAS, &e.to_string()))
        }
        e => DeployError::Infra(e),
    })?;
    Ok((draft.resolve(&outputs)?, Some(shared)))
}

async fn infra_command(
    action: InfraAction,
    draft: &config::Draft,
    progress: &Progress,
) -> Result<Printed, DeployError> {
    let Some(section) = draft.infra()? else {
        return Err(DeployError::Usage(
            "the config has no [infra] section; add [[infra.stacks]] entries (see deploy/deployer.toml)"
                .into(),
        ));
    };
    let aws_section = draft.aws()?;
    let clients = StackClients::Shared(Box::new(aws::shared_config(&aws_section).await));
    let ctx = infra::Context {
        clients: &clients,
        infra: &section,
        default_region: aws_section.region.as_deref(),
        progress,
    };
    run_infra(action, &ctx).await
}

/// The infra commands on a built context (tests pass scripted clients here).
pub async fn run_infra(
    action: InfraAction,
    ctx: &infra::Context<'_>,
) -> Result<Printed, DeployError> {
    match action {
        InfraAction::Plan { stack } => {
            let p = infra::plan(ctx, stack.as_deref()).await?;
            let mut value = json!(p);
            value["changes"] = json!(p.has_changes());
            Ok((p.render(), value))
        }
        InfraAction::Up { stack } => {
            let r = infra::up(ctx, stack.as_deref()).await?;
            Ok((r.render(), json!(r)))
        }
        InfraAction::Down { stack, yes } => {
            let names: Vec<String> = infra::deletion_order(ctx, stack.as_deref())?
                .iter()
                .map(|s| s.name.clone())
                .collect();
            if !yes {
                confirm_deletion(&names)?;
            }
            let r = infra::down(ctx, stack.as_deref()).await?;
            Ok((r.render(), json!(r)))
        }
        InfraAction::Outputs { stack } => {
            let o = infra::outputs(ctx, stack.as_deref()).await?;
            Ok((infra::render_outputs(&o), json!(o)))
        }
    }
}

/// Deleting stacks deletes the database and the bucket's stack: a person types the names.
fn confirm_deletion(names: &[String]) -> Result<(), DeployError> {
    use std::io::{BufRead, IsTerminal, Write};
    let list = names.join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(DeployError::Usage(format!(
            "infra down deletes stacks {list} and their resources; pass --yes to confirm (stdin is not a terminal)"
        )));
    }
    let expected = names.join(" ");
    eprint!(
        "This deletes stacks {list} and every resource in them. Type `{expected}` to confirm: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| DeployError::Other(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() != expected {
        return Err(DeployError::Usage(
            "not confirmed; nothing was deleted".into(),
        ));
    }
    Ok(())
}

type Printed = (String, serde_json::Value);

async fn dispatch<P: ImagePublisher>(
    command: Command,
    aws: &Aws,
    config: &Config,
    publisher: &P,
    progress: &Progress,
    format: OutputFormat,
) -> Result<Printed, ReleaseError> {
    match command {
        Command::Run { timeout, command } => {
            // The task's own output goes where a command's output goes: stdout, unless stdout
            // is reserved for the JSON document.
            let on_line = |l: &LogLine| {
                let text = l.message.trim_end();
                match format {
                    OutputFormat::Text => progress.suspend(|| println!("{text}")),
                    OutputFormat::Json => eprintln!("{text}"),
                }
            };
            let s = crate::run::run(
                aws,
                config,
                command,
                timeout,
                progress,
                on_line,
                crate::run::ctrl_c(),
            )
            .await?;
            // stdout holds the task's own output; the verdict is progress.
            progress.done(s.render());
            Ok((String::new(), json!(s)))
        }
        Command::Logs {
            follow,
            since,
            deployment,
        } => {
            let args = LogsArgs {
                follow,
                since,
                deployment,
            };
            // Followed lines are printed as they come: as text, or one JSON object per line.
            let on_line = |l: &LogLine| match format {
                OutputFormat::Text => println!("{}", l.render()),
                OutputFormat::Json => println!("{}", json!(l)),
            };
            let s =
                crate::logtail::logs(aws, config, &args, progress, on_line, crate::run::ctrl_c())
                    .await?;
            if follow {
                return Ok((String::new(), serde_json::Value::Null));
            }
            Ok((s.render(), json!(s)))
        }
        Command::Release { image, lock } => {
            let source = match image {
                Some(i) => ImageSource::Pinned(PublishedImage::parse_pinned(&i)?),
                None => ImageSource::Build(publisher),
            };
            let s = release(aws, config, source, lock.wait_for_lock, progress).await?;
            Ok((s.render(), json!(s)))
        }
        Command::Plan { image } => {
            let image = match image {
                Some(i) => PublishedImage::parse_pinned(&i)?.reference,
                None => {
                    let target = resolve_target(&config.registry, &aws.ecr).await?;
                    format!(
                        "{}@{}",
                        target.repository_url(),
                        publisher.build(progress).await?
                    )
                }
            };
            progress.step("reading live state");
            let live = plan::read_live(aws, config).await?;
            let p = plan::compute(config, &image, &live);
            let mut value = json!(p);
            value["changes"] = json!(p.has_changes());
            Ok((p.render(config), value))
        }
        Command::Status => {
            let s = crate::status::status(aws, config).await?;
            Ok((s.render(), json!(s)))
        }
        Command::Rollback { to, lock } => {
            let s =
                crate::rollback::rollback(aws, config, to.as_deref(), lock.wait_for_lock, progress)
                    .await?;
            Ok((s.render(), json!(s)))
        }
        Command::Build => {
            let digest = publisher.build(progress).await?;
            Ok((digest.clone(), json!({ "digest": digest })))
        }
        Command::Push => {
            let target = resolve_target(&config.registry, &aws.ecr).await?;
            let pushed = publisher.publish(&target, progress).await?;
            Ok((pushed.reference.clone(), json!(pushed)))
        }
        Command::Config => show_config(config).map_err(ReleaseError::Other),
        Command::Infra { .. } => Err(ReleaseError::Other(DeployError::Usage(
            "infra commands do not read the service's state".into(),
        ))),
    }
}

fn show_config(config: &Config) -> Result<Printed, DeployError> {
    let text = toml::to_string_pretty(config).map_err(|e| DeployError::Other(e.to_string()))?;
    Ok((text, json!(config)))
}

/// Prints the error (one line, or JSON) and returns its exit code.
fn fail(format: OutputFormat, e: &DeployError, report: Option<serde_json::Value>) -> i32 {
    let code = e.exit_code();
    match format {
        OutputFormat::Text => eprintln!("error: {e}"),
        OutputFormat::Json => {
            let mut v = json!({ "error": e.to_string(), "exit_code": code });
            if let Some(r) = report {
                v["report"] = r;
            }
            println!("{v}");
        }
    }
    code
}
