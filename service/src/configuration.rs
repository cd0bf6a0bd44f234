//! Configuration: every setting is an environment variable and a flag (12-factor). Parsed and
//! validated once at start; an invalid value stops the process with exit code 2 and one line that
//! names the variable, before anything binds a port or touches a database.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::db::{DatabaseKind, DbSettings};
use crate::sessions::SessionSettings;
use crate::storage::{FallbackSettings, StorageLocation, StorageSettings};

/// Where the embedded mode keeps its data when nothing is configured.
pub const EMBEDDED_DATABASE_URL: &str = "sqlite://data/data-processor.db";
pub const EMBEDDED_STORAGE_URL: &str = "data/files";

#[derive(Debug, Parser)]
#[command(
    name = "data-processor",
    version,
    args_override_self = true,
    about = "A stateless, horizontally scalable data-processing API.",
    long_about = "A stateless, horizontally scalable data-processing API: accounts and sessions \
                  in Postgres, file bytes in S3. Every option is also an environment variable. \
                  Without DATABASE_URL and STORAGE_URL it runs in an embedded single-node mode \
                  (SQLite and a local folder under ./data)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Run pending database migrations, then exit (for a one-off ECS task).
    Migrate,
    /// GET /healthz on this host's LISTEN_ADDR port; exit 0 when it answers 200, else 1
    /// (the container health check: the image has no curl).
    Healthcheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// Database: `postgres://user:pass@host:5432/db` (production) or `sqlite://path` (embedded,
    /// single node). Default: a SQLite file under ./data.
    /// Held as a secret: `Debug` prints it redacted.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<SecretString>,

    /// Postgres password, used instead of one in DATABASE_URL: lets ECS inject RDS's own
    /// managed secret (which RDS rotates) while the URL secret holds no password.
    #[arg(long, env = "DATABASE_PASSWORD", hide_env_values = true, value_parser = parse_secret)]
    pub database_password: Option<SecretString>,

    /// Maximum database connections per process (2-4 per core is enough; keep
    /// replicas x this under the database's connection limit).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,

    /// How long a request waits for a free database connection (includes connecting).
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub database_acquire_timeout: Duration,

    /// Upper bound for one database statement, enforced on the client (a hung server) and as
    /// Postgres `statement_timeout`.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub database_statement_timeout: Duration,

    /// At start, wait this long for an unavailable database (retrying) before giving up.
    #[arg(long, env = "DATABASE_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub database_startup_timeout: Duration,

    /// Object storage: `s3://bucket[/prefix]` (production; AWS credential/region chain and
    /// AWS_ENDPOINT_URL apply) or a local folder (embedded). Default: ./data/files.
    #[arg(long, env = "STORAGE_URL")]
    pub storage_url: Option<String>,

    /// A replica bucket, `s3://bucket[/prefix]` (e.g. the destination of S3 Cross-Region
    /// Replication): while the primary (STORAGE_URL) is unavailable, reads are served from it;
    /// writes are not (they answer 503). Only with an s3:// STORAGE_URL. Replication is
    /// asynchronous: the newest objects may not be there yet.
    #[arg(long, env = "STORAGE_FALLBACK_URL")]
    pub storage_fallback_url: Option<String>,

    /// The region of STORAGE_FALLBACK_URL's bucket. Default: the primary's (the AWS region chain).
    #[arg(long, env = "STORAGE_FALLBACK_REGION")]
    pub storage_fallback_region: Option<String>,

    /// Use path-style S3 addressing (endpoint/bucket/key), needed by most S3-compatible servers.
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_force_path_style: bool,

    /// Compute S3 request checksums only when an operation requires them (for servers that
    /// reject the SDK's default CRC32 checksums).
    #[arg(long, env = "S3_CHECKSUM_WHEN_REQUIRED", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_checksum_when_required: bool,

    /// S3 multipart part size in bytes (at least 5 MiB).
    #[arg(long, env = "S3_PART_SIZE", default_value_t = 8 * 1024 * 1024)]
    pub s3_part_size: usize,

    /// Largest accepted upload in bytes (larger -> 413).
    #[arg(long, env = "UPLOAD_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// A session ends after this long without requests (enforced by the server).
    #[arg(long, env = "SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Duration,

    /// A session ends this long after login, however active it is.
    #[arg(long, env = "SESSION_ABSOLUTE_TIMEOUT", default_value = "8h", value_parser = humantime::parse_duration)]
    pub session_absolute_timeout: Duration,

    /// Mark the session cookie `Secure` (HTTPS only). Turn off only for plain-HTTP development.
    #[arg(long, env = "SESSION_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub session_cookie_secure: bool,

    /// How often each replica deletes expired sessions and stale login counters.
    #[arg(long, env = "SESSION_CLEANUP_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub session_cleanup_interval: Duration,

    /// Failed logins per username allowed within LOGIN_FAILURE_WINDOW before 429.
    #[arg(long, env = "LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Sessions each replica keeps in memory (a read then costs no query); 0 turns the cache
    /// off. With Postgres a logout on any replica evicts the session everywhere (LISTEN/NOTIFY),
    /// and the cache is bypassed whenever that notification channel is down.
    #[arg(long, env = "SESSION_CACHE_CAPACITY", default_value_t = 50_000)]
    pub session_cache_capacity: u64,

    /// How often each replica checks that its database change feed (LISTEN connection) still
    /// delivers; a check not answered within twice this suspends the session cache.
    #[arg(long, env = "CHANGE_FEED_PING_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub change_feed_ping_interval: Duration,

    /// The window in which failed logins are counted (and the longest lockout).
    #[arg(long, env = "LOGIN_FAILURE_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub login_failure_window: Duration,

    /// Past LOGIN_MAX_FAILURES failed logins *from one client address* for a username, that client
    /// gets 429 for the rest of the window; other addresses are not refused. This many failures
    /// for a username from all addresses together only slow its logins down (a delay per attempt),
    /// so nobody can lock a chosen user out.
    #[arg(long, env = "LOGIN_USER_SLOWDOWN_AFTER", default_value_t = 20)]
    pub login_user_slowdown_after: u32,

    /// Password hashes (Argon2id, 19 MiB each) computed at once on this replica; more wait in
    /// line. Default: the number of CPU cores.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// How long a registration or login waits for a hashing slot before 503 + Retry-After.
    #[arg(long, env = "PASSWORD_HASH_QUEUE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub password_hash_queue_timeout: Duration,

    /// Registrations and login attempts allowed per client address per minute (each route
    /// separately), on this replica; past it 429 + Retry-After.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_MINUTE", default_value_t = 30)]
    pub auth_rate_limit_per_minute: u32,

    /// How many of those requests a client address may send in a burst.
    #[arg(long, env = "AUTH_RATE_LIMIT_BURST", default_value_t = 10)]
    pub auth_rate_limit_burst: u32,

    /// How many proxies in front of the service append to `X-Forwarded-For` (1 behind an ALB).
    /// The client address is the entry this many places from the right; 0 (the default) ignores
    /// the header and uses the TCP peer, since anyone can send the header.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,

    /// Uploads in progress at once on this replica (each holds up to two S3 parts in memory);
    /// past it 503 + Retry-After.
    #[arg(long, env = "UPLOAD_MAX_CONCURRENT", default_value_t = 16)]
    pub upload_max_concurrent: usize,

    /// An upload whose body sends nothing for this long is aborted (408), with its multipart
    /// upload.
    #[arg(long, env = "UPLOAD_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upload_idle_timeout: Duration,

    /// Every request except uploads and downloads (which stream, bounded by the idle timeout)
    /// is answered within this time, or 503.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// HTTP/2: a connection is pinged this often and closed when a ping is not answered within
    /// the same time (a vanished peer does not hold its streams forever).
    #[arg(long, env = "HTTP2_KEEPALIVE_INTERVAL", default_value = "20s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// HTTP/2: streams (concurrent requests) one connection may open.
    #[arg(long, env = "HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 128)]
    pub http2_max_concurrent_streams: u32,

    /// Each dependency check of /readyz must answer within this time.
    #[arg(long, env = "READINESS_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub readiness_timeout: Duration,

    /// After SIGTERM/SIGINT keep serving this long with /readyz = 503, so load balancers stop
    /// routing here before the listener closes.
    #[arg(long, env = "SHUTDOWN_DRAIN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_drain_delay: Duration,

    /// From SIGTERM/SIGINT to exit, at most (below ECS's 30 s stop timeout); requests still
    /// running then are aborted.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// An idle keep-alive connection is closed after this long; keep it above the load balancer's
    /// idle timeout (ALB: 60 s), or the balancer reuses connections the service closed (502).
    #[arg(long, env = "HTTP_KEEPALIVE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub http_keepalive_timeout: Duration,

    /// Jobs each replica runs at once (CPU-bound). Default: the number of CPU cores.
    #[arg(long, env = "JOB_WORKERS")]
    pub job_workers: Option<usize>,

    /// Threads one profile job may use. A job gets the cores no other profile job of this
    /// replica is using when it starts (at least 1, at most this). Default: the number of CPU
    /// cores, so that a lone job on an idle replica uses all of them.
    #[arg(long, env = "PROFILE_MAX_THREADS")]
    pub profile_max_threads: Option<usize>,

    /// A running job's lease: if its replica stops renewing it (crash, hang) for this long,
    /// another replica takes the job over. The heartbeat renews it every third of this.
    #[arg(long, env = "JOB_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub job_lease: Duration,

    /// A job is tried at most this many times (crashes and transient errors), then fails.
    #[arg(long, env = "JOB_MAX_ATTEMPTS", default_value_t = 3)]
    pub job_max_attempts: u32,

    /// A job that failed for a transient reason (storage or database unavailable) waits this long
    /// before its next attempt, twice as long after each further failure (at most 5 minutes).
    #[arg(long, env = "JOB_RETRY_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration)]
    pub job_retry_backoff: Duration,

    /// How often an idle worker looks for new jobs.
    #[arg(long, env = "JOB_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub job_poll_interval: Duration,

    /// Name of this replica, returned in the `x-served-by` header. Default: the hostname.
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,

    /// Log format on stdout.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

/// A configuration value that parses but makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

fn parse_secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw.to_string()))
}

impl Config {
    /// Parses argv and the environment. Help and version exit 0; anything invalid exits 2 with one
    /// line naming the variable.
    pub fn parse_cli() -> Cli {
        match Cli::try_parse() {
            Ok(cli) => match cli.config.validate() {
                Ok(()) => cli,
                Err(e) => exit_config_error(&e.to_string()),
            },
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => exit_config_error(&one_line(&e)),
            },
        }
    }

    /// The database URL with its password: hand it only to the database layer.
    fn database_url(&self) -> SecretString {
        self.database_url
            .clone()
            .unwrap_or_else(|| SecretString::from(EMBEDDED_DATABASE_URL))
    }

    pub fn storage_url(&self) -> &str {
        self.storage_url.as_deref().unwrap_or(EMBEDDED_STORAGE_URL)
    }

    pub fn database_kind(&self) -> Result<DatabaseKind, ConfigError> {
        DatabaseKind::of_url(self.database_url().expose_secret()).ok_or_else(|| {
            ConfigError::new(
                "DATABASE_URL",
                "must start with postgres:// (or postgresql://) or sqlite:",
            )
        })
    }

    pub fn db_settings(&self) -> DbSettings {
        DbSettings {
            url: self.database_url(),
            password: self.database_password.clone(),
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
            statement_timeout: self.database_statement_timeout,
            startup_timeout: self.database_startup_timeout,
        }
    }

    pub fn session_settings(&self) -> SessionSettings {
        SessionSettings {
            idle_timeout: self.session_idle_timeout,
            absolute_timeout: self.session_absolute_timeout,
            cookie_secure: self.session_cookie_secure,
            cleanup_interval: self.session_cleanup_interval,
            login_failure_window: self.login_failure_window,
            cache_capacity: self.session_cache_capacity,
        }
    }

    pub fn feed_settings(&self) -> crate::change_feed::FeedSettings {
        crate::change_feed::FeedSettings {
            ping_interval: self.change_feed_ping_interval,
            ping_timeout: self.change_feed_ping_interval * 2,
            ..Default::default()
        }
    }

    /// True when nothing names a shared database or storage: one node only.
    pub fn is_embedded(&self) -> bool {
        matches!(self.database_kind(), Ok(DatabaseKind::Sqlite))
            || !self.storage_url().starts_with("s3://")
    }

    /// Resolved once at start (it may read /etc/hostname): use `AppState::replica_id`.
    pub fn resolve_replica_id(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    }

    pub fn storage_settings(&self) -> StorageSettings {
        StorageSettings {
            url: self.storage_url().to_string(),
            force_path_style: self.s3_force_path_style,
            checksum_when_required: self.s3_checksum_when_required,
            part_size: self.s3_part_size,
            fallback: self
                .storage_fallback_url
                .as_ref()
                .map(|url| FallbackSettings {
                    url: url.trim().to_string(),
                    region: self.storage_fallback_region.clone(),
                }),
        }
    }

    /// STORAGE_FALLBACK_URL and STORAGE_FALLBACK_REGION make sense together, and only with S3.
    fn validate_fallback(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.storage_fallback_url else {
            if self.storage_fallback_region.is_some() {
                return Err(ConfigError::new(
                    "STORAGE_FALLBACK_REGION",
                    "is only used with STORAGE_FALLBACK_URL, which is not set",
                ));
            }
            return Ok(());
        };
        let replica = match StorageLocation::parse_named(url, "STORAGE_FALLBACK_URL") {
            Ok(location @ StorageLocation::S3 { .. }) => location,
            Ok(StorageLocation::Local(_)) => {
                return Err(ConfigError::new(
                    "STORAGE_FALLBACK_URL",
                    "must be s3://bucket[/prefix] (a replica bucket)",
                ));
            }
            Err(error) => return Err(ConfigError::new("STORAGE_FALLBACK_URL", error.to_string())),
        };
        match StorageLocation::parse(self.storage_url()) {
            Ok(primary @ StorageLocation::S3 { .. }) => {
                if primary == replica {
                    return Err(ConfigError::new(
                        "STORAGE_FALLBACK_URL",
                        "names the same bucket and prefix as STORAGE_URL",
                    ));
                }
            }
            _ => {
                return Err(ConfigError::new(
                    "STORAGE_FALLBACK_URL",
                    "is only valid with an s3:// STORAGE_URL (a local folder has no replica)",
                ));
            }
        }
        if self
            .storage_fallback_region
            .as_deref()
            .is_some_and(|region| region.trim().is_empty())
        {
            return Err(ConfigError::new(
                "STORAGE_FALLBACK_REGION",
                "must not be empty",
            ));
        }
        Ok(())
    }

    /// Concurrent jobs on this replica.
    pub fn profile_max_threads(&self) -> usize {
        self.profile_max_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn job_workers(&self) -> usize {
        self.job_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Password hashes at once on this replica.
    pub fn password_hash_concurrency(&self) -> usize {
        self.password_hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Checks what clap's types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let kind = self.database_kind()?;
        crate::db::check_url(kind, self.database_url().expose_secret())
            .map_err(|problem| ConfigError::new("DATABASE_URL", problem))?;
        if self.database_password.is_some() && kind != DatabaseKind::Postgres {
            return Err(ConfigError::new(
                "DATABASE_PASSWORD",
                "only applies to a postgres:// DATABASE_URL",
            ));
        }
        if self.storage_url().trim().is_empty() {
            return Err(ConfigError::new("STORAGE_URL", "must not be empty"));
        }
        self.validate_fallback()?;
        if self.database_max_connections == 0 {
            return Err(ConfigError::new(
                "DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        for (variable, value) in [
            ("DATABASE_ACQUIRE_TIMEOUT", self.database_acquire_timeout),
            (
                "DATABASE_STATEMENT_TIMEOUT",
                self.database_statement_timeout,
            ),
            ("SESSION_IDLE_TIMEOUT", self.session_idle_timeout),
            ("SESSION_ABSOLUTE_TIMEOUT", self.session_absolute_timeout),
            ("SESSION_CLEANUP_INTERVAL", self.session_cleanup_interval),
            ("LOGIN_FAILURE_WINDOW", self.login_failure_window),
            ("CHANGE_FEED_PING_INTERVAL", self.change_feed_ping_interval),
            ("READINESS_TIMEOUT", self.readiness_timeout),
            ("SHUTDOWN_TIMEOUT", self.shutdown_timeout),
            ("HTTP_KEEPALIVE_TIMEOUT", self.http_keepalive_timeout),
            ("UPLOAD_IDLE_TIMEOUT", self.upload_idle_timeout),
            ("REQUEST_TIMEOUT", self.request_timeout),
            ("HTTP2_KEEPALIVE_INTERVAL", self.http2_keepalive_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(variable, "must be longer than 0"));
            }
        }
        if self.session_absolute_timeout < self.session_idle_timeout {
            return Err(ConfigError::new(
                "SESSION_ABSOLUTE_TIMEOUT",
                "must not be shorter than SESSION_IDLE_TIMEOUT",
            ));
        }
        if self.shutdown_drain_delay >= self.shutdown_timeout {
            return Err(ConfigError::new(
                "SHUTDOWN_DRAIN_DELAY",
                "must be shorter than SHUTDOWN_TIMEOUT",
            ));
        }
        if self.login_max_failures == 0 {
            return Err(ConfigError::new("LOGIN_MAX_FAILURES", "must be at least 1"));
        }
        if self.s3_part_size < 5 * 1024 * 1024 {
            return Err(ConfigError::new(
                "S3_PART_SIZE",
                "must be at least 5242880 (5 MiB, S3's minimum part size)",
            ));
        }
        if self.job_workers == Some(0) {
            return Err(ConfigError::new("JOB_WORKERS", "must be at least 1"));
        }
        if self.profile_max_threads == Some(0) {
            return Err(ConfigError::new(
                "PROFILE_MAX_THREADS",
                "must be at least 1",
            ));
        }
        if self.job_max_attempts == 0 {
            return Err(ConfigError::new("JOB_MAX_ATTEMPTS", "must be at least 1"));
        }
        if self.job_lease < Duration::from_secs(1) {
            return Err(ConfigError::new("JOB_LEASE", "must be at least 1s"));
        }
        if self.job_poll_interval.is_zero() {
            return Err(ConfigError::new(
                "JOB_POLL_INTERVAL",
                "must be longer than 0",
            ));
        }
        for (variable, value) in [
            (
                "LOGIN_USER_SLOWDOWN_AFTER",
                self.login_user_slowdown_after as usize,
            ),
            (
                "AUTH_RATE_LIMIT_PER_MINUTE",
                self.auth_rate_limit_per_minute as usize,
            ),
            ("AUTH_RATE_LIMIT_BURST", self.auth_rate_limit_burst as usize),
            ("UPLOAD_MAX_CONCURRENT", self.upload_max_concurrent),
            (
                "HTTP2_MAX_CONCURRENT_STREAMS",
                self.http2_max_concurrent_streams as usize,
            ),
            (
                "PASSWORD_HASH_CONCURRENCY",
                self.password_hash_concurrency.unwrap_or(1),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(variable, "must be at least 1"));
            }
        }
        if self.upload_max_bytes == 0 {
            return Err(ConfigError::new("UPLOAD_MAX_BYTES", "must be at least 1"));
        }
        if let Err(e) = self.log_filter.parse::<tracing_subscriber::EnvFilter>() {
            return Err(ConfigError::new("RUST_LOG", e.to_string()));
        }
        Ok(())
    }
}

/// Prints `message` as one line on stderr and exits 2 (the usage-error code).
pub fn exit_config_error(message: &str) -> ! {
    eprintln!("data-processor: {message}");
    std::process::exit(2)
}

/// clap's message in one line, with the environment variable named next to the flag.
fn one_line(error: &clap::Error) -> String {
    use clap::CommandFactory;
    use clap::error::ContextKind;

    let rendered = error.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    let Some(arg) = error.get(ContextKind::InvalidArg).map(|a| a.to_string()) else {
        return format!("invalid configuration: {first}");
    };
    let env = Cli::command()
        .get_arguments()
        .find(|a| {
            a.get_long().is_some_and(|long| {
                arg.starts_with(&format!("--{long} ")) || arg == format!("--{long}")
            })
        })
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    match env {
        Some(env) => format!("invalid configuration: {env}: {first}"),
        None => format!("invalid configuration: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("data-processor").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_valid_and_keepalive_outlives_the_alb() {
        let cli = parse(&[]).expect("defaults parse");
        cli.config.validate().expect("defaults are valid");
        assert!(cli.config.http_keepalive_timeout > Duration::from_secs(60));
        assert!(cli.config.shutdown_timeout < Duration::from_secs(30));
        assert_eq!(cli.config.upload_max_bytes, 1 << 30);
    }

    #[test]
    fn the_database_password_never_reaches_debug_output() {
        let cli =
            parse(&["--database-url", "postgres://app:hunter2-secret@db/app"]).expect("parses");
        cli.config.validate().expect("valid");
        let printed = format!("{:?} {:?}", cli.config, cli.config.db_settings());
        assert!(!printed.contains("hunter2-secret"), "{printed}");
    }

    #[test]
    fn a_database_url_that_does_not_parse_is_a_configuration_error() {
        let cli = parse(&["--database-url", "postgres://app@db:notaport/app"]).expect("parses");
        assert_eq!(cli.config.validate().unwrap_err().variable, "DATABASE_URL");
    }

    #[test]
    fn a_bad_value_names_its_variable_in_one_line() {
        let err = parse(&["--listen-addr", "nope"]).expect_err("invalid");
        let line = one_line(&err);
        assert!(line.contains("LISTEN_ADDR"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn semantic_checks_name_the_variable() {
        let cli = parse(&["--database-url", "mysql://x"]).expect("parses");
        assert_eq!(cli.config.validate().unwrap_err().variable, "DATABASE_URL");
        let cli = parse(&["--s3-part-size", "1024"]).expect("parses");
        assert_eq!(cli.config.validate().unwrap_err().variable, "S3_PART_SIZE");
    }

    #[test]
    fn a_storage_fallback_needs_s3_on_both_sides() {
        for (args, variable) in [
            // The default STORAGE_URL is a local folder.
            (
                &["--storage-fallback-url", "s3://replica"][..],
                "STORAGE_FALLBACK_URL",
            ),
            (
                &[
                    "--storage-url",
                    "/var/data",
                    "--storage-fallback-url",
                    "s3://replica",
                ][..],
                "STORAGE_FALLBACK_URL",
            ),
            (
                &[
                    "--storage-url",
                    "s3://primary",
                    "--storage-fallback-url",
                    "/var/replica",
                ][..],
                "STORAGE_FALLBACK_URL",
            ),
            (
                &[
                    "--storage-url",
                    "s3://primary",
                    "--storage-fallback-url",
                    "s3://Not_A_Bucket",
                ][..],
                "STORAGE_FALLBACK_URL",
            ),
            (
                &[
                    "--storage-url",
                    "s3://primary/p",
                    "--storage-fallback-url",
                    "s3://primary/p/",
                ][..],
                "STORAGE_FALLBACK_URL",
            ),
            (
                &["--storage-fallback-region", "eu-west-1"][..],
                "STORAGE_FALLBACK_REGION",
            ),
        ] {
            let cli = parse(args).expect("parses");
            let error = cli.config.validate().expect_err("invalid");
            assert_eq!(error.variable, variable, "{args:?}: {error}");
        }
        let cli = parse(&[
            "--storage-url",
            "s3://primary",
            "--storage-fallback-url",
            "s3://replica/files",
            "--storage-fallback-region",
            "eu-west-1",
        ])
        .expect("parses");
        cli.config.validate().expect("valid");
        let fallback = cli.config.storage_settings().fallback.expect("a fallback");
        assert_eq!(fallback.url, "s3://replica/files");
        assert_eq!(fallback.region.as_deref(), Some("eu-west-1"));
    }
}
