//! The user-facing command line. Goose has its own flags; ours are the product's, and
//! `goose_config` translates them, so `loadtest --help` documents only what we support.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use url::Url;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadtest",
    version,
    about = "Load-tests a data-processor deployment: virtual users register, log in, upload CSV \
             files, run profile jobs, download and list, while live progress, per-endpoint \
             latency and (optionally) the ECS service's task counts and alarms are reported."
)]
pub struct Cli {
    /// Base URL of the deployment, scheme and host only, e.g.
    /// https://my-alb-123.eu-west-1.elb.amazonaws.com. Traffic goes nowhere else.
    #[arg(long, env = "LOADTEST_URL", value_parser = parse_target_url)]
    pub url: Url,

    /// Number of virtual users (each registers its own account).
    #[arg(long, default_value_t = 10, value_parser = parse_users)]
    pub users: usize,

    /// How long to run once every user has started, e.g. 30s, 5m, 1h30m.
    #[arg(long, default_value = "1m", value_parser = parse_whole_seconds)]
    pub duration: Duration,

    /// What each virtual user does in a loop.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Mixed)]
    pub scenario: ScenarioKind,

    /// Users started per second (ramp-up). Default: all users within one second.
    #[arg(long, value_name = "USERS_PER_S", value_parser = parse_rate, conflicts_with = "ramp_up")]
    pub hatch_rate: Option<f64>,

    /// Start the users evenly over this time instead of --hatch-rate, e.g. 2m.
    #[arg(long, value_parser = parse_whole_seconds)]
    pub ramp_up: Option<Duration>,

    /// Pause of each user between two steps: a fixed time (500ms) or a range picked at
    /// random (200ms..2s).
    #[arg(long, default_value = "0s", value_parser = parse_think_time)]
    pub think_time: ThinkTime,

    /// Cap on the requests per second of all users together (0 = no cap).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rps: usize,

    /// Timeout of a single HTTP request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// How long a user polls a profile job before counting it as an error.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub job_timeout: Duration,

    /// Rows of the CSV file each upload sends (about 40 bytes a row).
    #[arg(long, default_value_t = 500)]
    pub csv_rows: usize,

    /// Print a progress line this often (0s: never).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress_interval: Duration,

    /// Write report.html and report.json into this folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Write the HTML report (charts of latency, throughput, users, errors) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write the JSON summary (for automation) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Poll this ECS service while the load runs (CLUSTER/SERVICE; the cluster may be an
    /// ARN) and report desired/running/pending tasks and its CloudWatch alarm states.
    /// Uses the standard AWS credential chain and AWS_ENDPOINT_URL.
    #[arg(long, value_name = "CLUSTER/SERVICE", value_parser = parse_ecs_target)]
    pub watch_ecs: Option<EcsTarget>,

    /// Alarms to report: those whose name starts with this. Default: the service name.
    #[arg(long, requires = "watch_ecs")]
    pub alarm_prefix: Option<String>,

    /// How often --watch-ecs polls ECS and CloudWatch.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub watch_interval: Duration,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// Upload, profile job, poll, download (SHA-256 checked), list, session.
    Mixed,
    /// Session reads, listing and downloads of a file uploaded at start.
    Read,
    /// Upload, download (SHA-256 checked), list.
    Upload,
    /// Profile jobs on a file uploaded at start, polled until done.
    Jobs,
}

impl ScenarioKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mixed => "mixed",
            Self::Read => "read",
            Self::Upload => "upload",
            Self::Jobs => "jobs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTime {
    pub min: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTarget {
    pub cluster: String,
    pub service: String,
}

impl std::fmt::Display for EcsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

impl Cli {
    /// Where the HTML and JSON reports go: explicit paths win over --report-dir.
    pub fn report_paths(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        let in_dir = |file: &str| self.report_dir.as_ref().map(|d| d.join(file));
        (
            self.html.clone().or_else(|| in_dir("report.html")),
            self.json.clone().or_else(|| in_dir("report.json")),
        )
    }

    pub fn alarm_prefix(&self) -> Option<String> {
        self.watch_ecs.as_ref().map(|target| {
            self.alarm_prefix
                .clone()
                .unwrap_or_else(|| target.service.clone())
        })
    }
}

const URL_EXAMPLE: &str =
    "e.g. https://my-alb-123.eu-west-1.elb.amazonaws.com or http://127.0.0.1:8080";

fn parse_target_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw)
        .map_err(|e| format!("not a URL ({e}); give scheme and host, {URL_EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme must be http or https, {URL_EXAMPLE}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("no host; {URL_EXAMPLE}"));
    }
    // The API lives at /api/v1 on the host; a path would silently be ignored.
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "give only scheme, host and port, without a path, {URL_EXAMPLE}"
        ));
    }
    Ok(url)
}

fn parse_users(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e}; write a duration such as 500ms, 30s, 5m or 1h30m"))
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        d if d.is_zero() => Err("must be longer than 0s".into()),
        d => Ok(d),
    }
}

/// Goose schedules run time and ramp-up in whole seconds.
fn parse_whole_seconds(raw: &str) -> Result<Duration, String> {
    let d = parse_duration(raw)?;
    if d.as_secs() == 0 || d.subsec_nanos() != 0 {
        return Err("must be a whole number of seconds, at least 1s (e.g. 30s, 5m)".into());
    }
    Ok(d)
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a number of users per second above 0, e.g. 2 or 0.5".into()),
    }
}

fn parse_think_time(raw: &str) -> Result<ThinkTime, String> {
    let (min, max) = match raw.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(raw)?;
            (d, d)
        }
    };
    if min > max {
        return Err("the range's first value must not exceed the second, e.g. 200ms..2s".into());
    }
    Ok(ThinkTime { min, max })
}

fn parse_ecs_target(raw: &str) -> Result<EcsTarget, String> {
    // Split at the last slash: a cluster ARN contains one, a service name cannot.
    match raw.rsplit_once('/') {
        Some((cluster, service)) if !cluster.is_empty() && !service.is_empty() => Ok(EcsTarget {
            cluster: cluster.to_string(),
            service: service.to_string(),
        }),
        _ => Err("write CLUSTER/SERVICE, e.g. prod/data-processor".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_scheme_and_host_and_no_path() {
        assert!(parse_target_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_target_url("https://alb.example.com/").is_ok());
        assert!(parse_target_url("127.0.0.1:8080").is_err());
        assert!(parse_target_url("localhost").is_err());
        assert!(parse_target_url("ftp://example.com").is_err());
        assert!(parse_target_url("http://example.com/api").is_err());
    }

    #[test]
    fn think_time_is_fixed_or_a_range() {
        let fixed = parse_think_time("500ms").unwrap();
        assert_eq!(fixed.min, fixed.max);
        let range = parse_think_time("200ms..2s").unwrap();
        assert_eq!(range.min, Duration::from_millis(200));
        assert_eq!(range.max, Duration::from_secs(2));
        assert!(parse_think_time("2s..1s").is_err());
    }

    #[test]
    fn ecs_target_splits_at_the_last_slash() {
        let arn = parse_ecs_target("arn:aws:ecs:eu-west-1:1:cluster/prod/web").unwrap();
        assert_eq!(arn.cluster, "arn:aws:ecs:eu-west-1:1:cluster/prod");
        assert_eq!(arn.service, "web");
        assert!(parse_ecs_target("prod").is_err());
        assert!(parse_ecs_target("prod/").is_err());
    }

    #[test]
    fn run_time_is_whole_seconds() {
        assert_eq!(parse_whole_seconds("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_whole_seconds("1500ms").is_err());
        assert!(parse_whole_seconds("0s").is_err());
        assert!(parse_whole_seconds("five").is_err());
    }
}
