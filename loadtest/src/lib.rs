//! `loadtest`: drives a data-processor deployment with virtual users (goose), prints live
//! progress, writes HTML and JSON reports, and can watch the ECS service scale meanwhile.

pub mod api;
pub mod cli;
pub mod csvgen;
pub mod ecs_watch;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod summary;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use tokio::sync::oneshot;

use crate::cli::Cli;
use crate::ecs_watch::{WatchError, Watcher};
use crate::progress::Progress;
use crate::report::ReportError;
use crate::scenario::Plan;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Flags that parse but do not fit together.
    #[error("{0}")]
    Usage(String),
    #[error("--watch-ecs: {0}; check the cluster/service names, region and credentials")]
    Watch(#[source] WatchError),
    #[error("load test failed: {0}")]
    Goose(#[from] GooseError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) | Self::Watch(_) => 2,
            Self::Goose(GooseError::InvalidOption { .. }) => 2,
            Self::Goose(_) | Self::Report(_) => 1,
        }
    }
}

pub struct Outcome {
    pub requests: u64,
    pub failures: u64,
}

/// How often a user polls a running job.
const JOB_POLL_EVERY: Duration = Duration::from_millis(250);

pub async fn run(cli: Cli) -> Result<Outcome, RunError> {
    if cli.ramp_up.is_some() && cli.users < 2 {
        return Err(RunError::Usage(
            "--ramp-up needs --users 2 or more; with one user use --hatch-rate".into(),
        ));
    }
    let (html, json) = cli.report_paths();
    for path in html.iter().chain(json.iter()) {
        report::prepare(path)?;
    }

    let progress = Arc::new(Progress::new(cli.users));
    // Check the ECS target before any load is sent: a typo should not cost a test run.
    let watcher = match (&cli.watch_ecs, cli.alarm_prefix()) {
        (Some(target), Some(prefix)) => {
            let watcher = Watcher::connect(target.clone(), prefix).await;
            let first = watcher
                .sample(progress.elapsed())
                .await
                .map_err(RunError::Watch)?;
            println!("{}", watcher.line(&first));
            Some((watcher, first))
        }
        _ => None,
    };

    let plan = Arc::new(Plan {
        progress: Arc::clone(&progress),
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        csv_rows: cli.csv_rows,
        job_timeout: cli.job_timeout,
        poll_every: JOB_POLL_EVERY,
    });
    let attack = GooseAttack::initialize_with_config(goose_config(&cli, html.as_deref()))?
        .set_client_builder_with_cookies(GooseClientBuilder::new().user_agent(concat!(
            "data-processor-loadtest/",
            env!("CARGO_PKG_VERSION")
        )))?
        .register_scenario(scenario::build(cli.scenario, plan, cli.think_time)?);

    println!(
        "loadtest: {} users, scenario {}, {:?} after ramp-up, against {}",
        cli.users,
        cli.scenario.name(),
        cli.duration,
        cli.url
    );
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (stop_progress, progress_stopped) = oneshot::channel();
    let printer = (!cli.progress_interval.is_zero()).then(|| {
        tokio::spawn(progress::print_until(
            Arc::clone(&progress),
            cli.progress_interval,
            progress_stopped,
        ))
    });
    let (stop_watch, watch_stopped) = oneshot::channel();
    let watch = watcher.map(|(w, first)| {
        let started = std::time::Instant::now() - progress.elapsed();
        tokio::spawn(w.run(first, started, cli.watch_interval, watch_stopped))
    });

    let metrics = attack.execute().await;

    let _ = stop_progress.send(());
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    let _ = stop_watch.send(());
    let ecs = match watch {
        Some(handle) => handle.await.ok(),
        None => None,
    };
    let metrics = metrics?;

    let run = summary::RunInfo {
        url: cli.url.to_string(),
        scenario: cli.scenario.name().to_string(),
        users: cli.users,
        started_at,
    };
    let summary = summary::build(run, &metrics, ecs);
    print!("{}", summary.render());
    if let Some(path) = &html {
        if let Some(ecs) = &summary.ecs {
            report::add_ecs_section(path, ecs)?;
        }
        println!("HTML report: {}", path.display());
    }
    if let Some(path) = &json {
        report::write_json(path, &summary)?;
        println!("JSON report: {}", path.display());
    }
    Ok(Outcome {
        requests: summary.requests,
        failures: summary.failures,
    })
}

/// Our flags in goose's terms. Everything goose would do on its own that a user did not ask
/// for is off: its telnet controller (a listening port), its metrics tables (we print ours),
/// the metrics reset after ramp-up (errors while users start count too).
fn goose_config(cli: &Cli, html: Option<&Path>) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(cli.url.as_str().trim_end_matches('/').to_string());
    config.users = Some(cli.users);
    match cli.ramp_up {
        Some(ramp_up) => config.increase_time = Some(ramp_up.as_secs().to_string()),
        None => {
            let rate = cli.hatch_rate.unwrap_or(cli.users as f64);
            config.increase_rate = Some(rate.to_string());
        }
    }
    config.run_time = Some(cli.duration.as_secs().to_string());
    if cli.max_rps > 0 {
        config.throttle_requests = Some(cli.max_rps);
    }
    config.timeout = Some(cli.request_timeout.as_secs_f64().to_string());
    config.report_file = html.map(|p| p.display().to_string()).into_iter().collect();
    config.no_print_metrics = true;
    config.no_reset_metrics = true;
    config.no_telnet = true;
    config.quiet = 1;
    config
}
