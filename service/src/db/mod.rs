//! The database: Postgres in production, SQLite in the embedded single-node mode. Every dialect
//! difference stays inside this module; callers use functions named after what they do.
//!
//! Every call is bounded by the statement timeout on the client side too: a database that stops
//! answering without closing its connections (an RDS failover) must turn into a fast 503, not a
//! hung request.

pub mod files;
pub mod jobs;
pub mod login_throttle;
pub mod owned;
pub mod users;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Connection, PgPool, SqlitePool};

use crate::report::report;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    /// The kind `url`'s scheme names, if it is one we support.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseKind::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(DatabaseKind::Sqlite)
        } else {
            None
        }
    }
}

/// What the database layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// Holds the password: never printed (`Debug` is redacted).
    pub url: SecretString,
    /// Postgres password given apart from the URL (it wins over one in the URL).
    pub password: Option<SecretString>,
    pub max_connections: u32,
    /// How long a caller waits for a free connection (includes connecting).
    pub acquire_timeout: Duration,
    /// Client-side bound of every statement, and Postgres `statement_timeout`.
    pub statement_timeout: Duration,
    /// At start, how long migrations wait for an unavailable database.
    pub startup_timeout: Duration,
}

/// The migrations, embedded at build time (build.rs reruns the build when a file is added).
/// Migrations unknown to this binary (a newer release already ran) are ignored, so an older
/// replica can still start during a rolling deployment.
fn migrator(kind: DatabaseKind) -> sqlx::migrate::Migrator {
    let mut migrator = match kind {
        DatabaseKind::Postgres => sqlx::migrate!("../migrations/postgres"),
        DatabaseKind::Sqlite => sqlx::migrate!("../migrations/sqlite"),
    };
    migrator.set_ignore_missing(true);
    migrator
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database did not answer in time, refused the connection or the pool is exhausted:
    /// retryable, a 503.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// The settings cannot work (a URL that does not parse, a folder that cannot be created):
    /// permanent, retrying changes nothing.
    #[error("invalid database settings: {0}")]
    Config(String),
    /// A unique constraint rejected the row.
    #[error("a row with the same key exists")]
    Conflict,
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
            e if is_unavailable(e) => DbError::Unavailable(Box::new(error)),
            _ => DbError::Other(error),
        }
    }
}

/// Errors that say "the database is not there right now" (retry later), not "this query is wrong".
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // 57014 query_canceled (statement_timeout), 57P01..03 admin shutdown / cannot connect now;
        // SQLite 5/6: SQLITE_BUSY / SQLITE_LOCKED beyond busy_timeout.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c == "57014" || c.starts_with("57P") || c == "5" || c == "6"),
        _ => false,
    }
}

#[derive(Clone, Debug)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    timeout: Duration,
}

/// Runs `$body` with `$pool` bound to the concrete pool (`&PgPool` or `&SqlitePool`), under the
/// client-side timeout, converting errors to `DbError`. The body is compiled once per dialect, so
/// one query text serves both when the SQL is the same (`$1` placeholders work in both).
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        $db.timed(async {
            match &$db.pool {
                $crate::db::Pool::Postgres($pool) => $body,
                $crate::db::Pool::Sqlite($pool) => $body,
            }
        })
        .await
    };
}

impl Db {
    /// Opens the pool (lazily: a database that is down at start does not stop the process from
    /// serving /healthz; it reports not ready until the database answers).
    pub fn connect(settings: &DbSettings) -> Result<Self, DbError> {
        let url = settings.url.expose_secret();
        let kind = DatabaseKind::of_url(url).ok_or_else(|| {
            DbError::Config("the URL must start with postgres://, postgresql:// or sqlite:".into())
        })?;
        let pool = match kind {
            DatabaseKind::Postgres => {
                let options = postgres_options(settings, settings.statement_timeout)?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        // A connection broken by a failover is found before use, not by a request.
                        .test_before_acquire(true)
                        .idle_timeout(Duration::from_secs(300))
                        .connect_lazy_with(options),
                )
            }
            DatabaseKind::Sqlite => {
                let options = sqlite_options(url)?;
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Self {
            pool,
            timeout: settings.statement_timeout,
        })
    }

    pub fn kind(&self) -> DatabaseKind {
        match self.pool {
            Pool::Postgres(_) => DatabaseKind::Postgres,
            Pool::Sqlite(_) => DatabaseKind::Sqlite,
        }
    }

    /// Applies pending migrations. On Postgres sqlx holds an advisory lock while it migrates, so
    /// replicas starting together apply each migration once.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self, settings: &DbSettings) -> Result<(), DbError> {
        match &self.pool {
            Pool::Postgres(_) => {
                // A dedicated connection without statement_timeout: waiting for another replica's
                // advisory lock, or a long migration, must not be cancelled after a few seconds.
                let options = postgres_options(settings, Duration::ZERO)?;
                let mut conn = tokio::time::timeout(
                    settings.acquire_timeout.max(Duration::from_secs(5)),
                    sqlx::PgConnection::connect_with(&options),
                )
                .await
                .map_err(|_| DbError::Unavailable("connecting timed out".into()))??;
                migrator(DatabaseKind::Postgres).run(&mut conn).await?;
                let _ = conn.close().await;
            }
            Pool::Sqlite(pool) => {
                migrator(DatabaseKind::Sqlite).run(pool).await?;
            }
        }
        Ok(())
    }

    /// `migrate`, retried while the database is unavailable, for up to `DATABASE_STARTUP_TIMEOUT`:
    /// a replica started during a database failover waits for it instead of crash-looping (which
    /// would trip ECS's deployment circuit breaker).
    pub async fn migrate_when_available(&self, settings: &DbSettings) -> Result<(), DbError> {
        let deadline = tokio::time::Instant::now() + settings.startup_timeout;
        let mut pause = Duration::from_millis(250);
        loop {
            match self.migrate(settings).await {
                Err(DbError::Unavailable(cause)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(cause = %report(cause.as_ref()), retry_in = ?pause, "database unavailable at start; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(DbError::Migrate(sqlx::migrate::MigrateError::Execute(e)))
                    if tokio::time::Instant::now() < deadline && is_unavailable(&e) =>
                {
                    tracing::warn!(retry_in = ?pause, "database went away while migrating; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// Runs `query` under the client-side timeout.
    pub async fn timed<T, E>(&self, query: impl Future<Output = Result<T, E>>) -> Result<T, DbError>
    where
        DbError: From<E>,
    {
        match tokio::time::timeout(self.timeout, query).await {
            Ok(result) => result.map_err(DbError::from),
            Err(_) => Err(DbError::Unavailable(
                format!("no answer within {:?}", self.timeout).into(),
            )),
        }
    }

    /// `SELECT 1`, for readiness and the benchmark's baseline route.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// Connections open and idle, for metrics.
    pub fn pool_usage(&self) -> (u32, usize) {
        match &self.pool {
            Pool::Postgres(p) => (p.size(), p.num_idle()),
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
        }
    }
}

/// Whether `url` parses as a connection URL of its kind (for configuration validation).
pub fn check_url(kind: DatabaseKind, url: &str) -> Result<(), String> {
    match kind {
        DatabaseKind::Postgres => PgConnectOptions::from_str(url).map(|_| ()),
        DatabaseKind::Sqlite => SqliteConnectOptions::from_str(url).map(|_| ()),
    }
    .map_err(|e| format!("does not parse: {e}"))
}

fn postgres_options(
    settings: &DbSettings,
    statement_timeout: Duration,
) -> Result<PgConnectOptions, DbError> {
    let mut options = PgConnectOptions::from_str(settings.url.expose_secret())
        .map_err(|e| DbError::Config(format!("the URL does not parse: {e}")))?
        .application_name("data-processor");
    if let Some(password) = &settings.password {
        options = options.password(password.expose_secret());
    }
    if statement_timeout.is_zero() {
        return Ok(options);
    }
    Ok(options.options([(
        "statement_timeout",
        format!("{}ms", statement_timeout.as_millis()),
    )]))
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, DbError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| DbError::Config(format!("the URL does not parse: {e}")))?;
    // The embedded default lives under ./data, which does not exist on a fresh clone.
    if let Some(parent) = Path::new(options.get_filename()).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbError::Config(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}
