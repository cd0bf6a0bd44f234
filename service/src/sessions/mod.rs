//! Server-side sessions in the database (tower-sessions + its sqlx stores), so any replica serves
//! any user and a logout reaches every replica at once.
//!
//! Cost model: reading a session is a lookup in this replica's cache (`cache`, kept coherent
//! across replicas by the database's change feed), or one indexed SELECT on a miss; writing it is
//! what makes requests slow, so a session is written only at login, at logout and when its idle
//! expiry is refreshed, which happens at most once per `SessionSettings::refresh_interval` (see
//! `auth`).

pub mod cache;

use std::time::Duration;

use async_trait::async_trait;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::db::{Db, Pool, login_throttle};
use crate::report::report;
use cache::SessionCache;

/// The cookie's name. Not the default `id`, so it is recognisable in a browser's storage.
pub const COOKIE_NAME: &str = "dp_session";
/// The table our migration creates (the store's own `migrate()` is never called).
const TABLE: &str = "sessions";

/// What sessions need from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub cookie_secure: bool,
    pub cleanup_interval: Duration,
    /// Login counters older than this are deleted by the cleanup.
    pub login_failure_window: Duration,
    /// Sessions kept in this replica's cache; 0 turns the cache off.
    pub cache_capacity: u64,
}

impl SessionSettings {
    /// The session is written back (refreshing its idle expiry) at most this often, so reading a
    /// session costs one SELECT instead of a write per request.
    pub fn refresh_interval(&self) -> Duration {
        (self.idle_timeout / 4).min(Duration::from_secs(60))
    }

    /// This replica's session cache, if on. With SQLite (one process) every change goes through
    /// this process, so the cache is coherent from the start; with Postgres it is used only while
    /// the change feed listens.
    pub fn cache(&self, db: &Db) -> Option<SessionCache> {
        (self.cache_capacity > 0).then(|| {
            let coherent_alone = matches!(db.pool, Pool::Sqlite(_));
            // An entry outlives no refresh of its expiry (a safety net: changes evict it first).
            SessionCache::new(self.cache_capacity, self.refresh_interval(), coherent_alone)
        })
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Postgres(PostgresStore),
    Sqlite(SqliteStore),
}

/// The session store for whichever database is configured, with every call bounded by the
/// statement timeout: the stores' own queries have none, and a hung database must give a fast
/// error, not a hung request. Reads go through the cache when there is one; every write evicts
/// (after it is done, so a concurrent read cannot put the old record back).
#[derive(Debug, Clone)]
pub struct AppSessionStore {
    backend: Backend,
    timeout: Duration,
    cache: Option<SessionCache>,
}

impl AppSessionStore {
    pub fn new(db: &Db, timeout: Duration, cache: Option<SessionCache>) -> Result<Self, String> {
        let backend = match &db.pool {
            Pool::Postgres(pool) => Backend::Postgres(
                PostgresStore::new(pool.clone())
                    .with_schema_name("public")?
                    .with_table_name(TABLE)?,
            ),
            Pool::Sqlite(pool) => {
                Backend::Sqlite(SqliteStore::new(pool.clone()).with_table_name(TABLE)?)
            }
        };
        Ok(Self {
            backend,
            timeout,
            cache,
        })
    }

    fn evict(&self, id: &Id) {
        if let Some(cache) = &self.cache {
            cache.evict(id);
        }
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                session_store::Error::Backend(format!(
                    "the session store did not answer within {:?}",
                    self.timeout
                ))
            })?
    }

    /// Deletes expired sessions. Idempotent, so every replica may run it at any time.
    pub async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.backend {
            Backend::Postgres(s) => self.bounded(s.delete_expired()).await,
            Backend::Sqlite(s) => self.bounded(s.delete_expired()).await,
        }
    }
}

#[async_trait]
impl SessionStore for AppSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let created = match &self.backend {
            Backend::Postgres(s) => self.bounded(s.create(record)).await,
            Backend::Sqlite(s) => self.bounded(s.create(record)).await,
        };
        self.evict(&record.id);
        created
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let saved = match &self.backend {
            Backend::Postgres(s) => self.bounded(s.save(record)).await,
            Backend::Sqlite(s) => self.bounded(s.save(record)).await,
        };
        self.evict(&record.id);
        saved
    }

    /// A row that does not decode (corrupted, or written by an incompatible release) is deleted
    /// and reported as no session: its owner logs in again (401), instead of every request with
    /// that cookie failing as if the database were down.
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let ticket = match &self.cache {
            Some(cache) => match cache.get(id) {
                Some(record) => return Ok(Some(record)),
                None => Some(cache.ticket()),
            },
            None => None,
        };
        let loaded = match &self.backend {
            Backend::Postgres(s) => self.bounded(s.load(id)).await,
            Backend::Sqlite(s) => self.bounded(s.load(id)).await,
        };
        match loaded {
            Err(error @ session_store::Error::Decode(_)) => {
                tracing::warn!(error = %report(&error), "a session row does not decode; deleting it");
                self.delete(id).await?;
                Ok(None)
            }
            Ok(Some(record)) => {
                if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
                    cache.fill(ticket, &record);
                }
                Ok(Some(record))
            }
            other => other,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let deleted = match &self.backend {
            Backend::Postgres(s) => self.bounded(s.delete(id)).await,
            Backend::Sqlite(s) => self.bounded(s.delete(id)).await,
        };
        self.evict(id);
        deleted
    }
}

/// The session layer: cookie `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` as configured.
pub fn layer(
    store: AppSessionStore,
    settings: &SessionSettings,
) -> SessionManagerLayer<AppSessionStore> {
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.cookie_secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(to_time(settings.idle_timeout)))
}

pub fn to_time(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

/// Every `interval`, deletes expired sessions and stale login counters. Runs until the process
/// ends; failures (the database is down) are logged and retried at the next tick.
pub async fn cleanup_loop(store: AppSessionStore, db: Db, settings: SessionSettings) {
    let mut ticker = tokio::time::interval(settings.cleanup_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let window = i64::try_from(settings.login_failure_window.as_secs()).unwrap_or(i64::MAX);
    loop {
        ticker.tick().await;
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %report(&e), "deleting expired sessions failed; retrying next interval");
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = login_throttle::delete_stale(&db, now, window).await {
            tracing::warn!(error = %report(&e), "deleting stale login counters failed; retrying next interval");
        }
    }
}
