//! Command line: parse, load the config (before any AWS call), run the command, print the result
//! as text or JSON, and return the exit code (see `error::exit`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::aws::Aws;
use crate::config::{self, Config};
use crate::ecs::rollout::ReleaseError;
use crate::error::{DeployError, exit};
use crate::image::{ImagePublisher, OciPublisher, PublishedImage, resolve_target};
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
    },
    /// Show what `release` would change, without changing anything.
    Plan {
        /// Plan for this image (REPOSITORY@sha256:...) instead of building one.
        #[arg(long)]
        image: Option<String>,
    },
    /// Deployments, counts, target health, autoscaling, alarms, events and the release ledger.
    Status,
    /// Go back to a known-good revision from the release ledger and follow that deployment.
    Rollback {
        /// Revision number or family:revision (default: the newest known-good one not running).
        #[arg(long)]
        to: Option<String>,
    },
    /// Build the image locally and print its digest.
    Build,
    /// Build and push the image; print the pinned reference.
    Push,
    /// Check the config (with --env and DEPLOYER__* overrides) and print the result as TOML.
    Config,
}

/// Runs the command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let format = cli.output;
    let vars = std::env::vars().filter(|(k, _)| k.starts_with(config::ENV_PREFIX));
    let config = match config::load(&cli.config, cli.env.as_deref(), vars) {
        Ok(c) => c,
        Err(e) => return fail(format, &DeployError::Config(e), None),
    };
    // No AWS client for `config`: building one may probe instance metadata for a region.
    if let Command::Config = cli.command {
        return match show_config(&config) {
            Ok((text, value)) => {
                match format {
                    OutputFormat::Text => print!("{text}"),
                    OutputFormat::Json => println!("{value}"),
                }
                exit::OK
            }
            Err(e) => fail(format, &e, None),
        };
    }
    let progress = Progress::new(format);
    let aws = Aws::from_env(&config).await;
    let publisher = OciPublisher::new(&config.image);
    let result = dispatch(cli.command, &aws, &config, &publisher, &progress).await;
    progress.finish();
    match result {
        Ok((text, value)) => {
            match format {
                OutputFormat::Text => println!("{text}"),
                OutputFormat::Json => println!("{value}"),
            }
            exit::OK
        }
        Err(ReleaseError::Other(e)) => fail(format, &e, None),
        Err(ReleaseError::Failed(f)) => {
            if format == OutputFormat::Text {
                eprintln!("{}", f.text);
            }
            fail(format, &f.error, serde_json::to_value(&f.report).ok())
        }
    }
}

type Printed = (String, serde_json::Value);

async fn dispatch<P: ImagePublisher>(
    command: Command,
    aws: &Aws,
    config: &Config,
    publisher: &P,
    progress: &Progress,
) -> Result<Printed, ReleaseError> {
    match command {
        Command::Release { image } => {
            let source = match image {
                Some(i) => ImageSource::Pinned(PublishedImage::parse_pinned(&i)?),
                None => ImageSource::Build(publisher),
            };
            let s = release(aws, config, source, progress).await?;
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
        Command::Rollback { to } => {
            let s = crate::rollback::rollback(aws, config, to.as_deref(), progress).await?;
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
