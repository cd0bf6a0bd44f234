//! What every handler may reach: the database, the object store and the configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::configuration::Config;
use crate::db::Db;
use crate::limits::Limits;
use crate::sessions::SessionSettings;
use crate::sessions::cache::SessionCache;
use crate::storage::SharedStore;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub store: SharedStore,
    pub config: Arc<Config>,
    pub sessions: SessionSettings,
    /// This replica's name (`x-served-by`, job ownership), resolved once at start.
    pub replica_id: Arc<str>,
    /// The bounds on what anonymous clients can make this replica do.
    pub limits: Arc<Limits>,
    /// Set once shutdown starts: `/readyz` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// This replica's session cache (None when turned off).
    pub session_cache: Option<SessionCache>,
    /// Wakes an idle job worker: a job was queued (here, or anywhere via the change feed).
    pub job_queued: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(db: Db, store: SharedStore, config: Config) -> Self {
        let sessions = config.session_settings();
        Self {
            session_cache: sessions.cache(&db),
            job_queued: Arc::new(tokio::sync::Notify::new()),
            db,
            store,
            sessions,
            replica_id: config.resolve_replica_id().into(),
            limits: Arc::new(Limits::new(&config)),
            config: Arc::new(config),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
