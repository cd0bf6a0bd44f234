//! What every handler may reach: the database, the object store and the configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::configuration::Config;
use crate::db::Db;
use crate::limits::Limits;
use crate::sessions::SessionSettings;
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
}

impl AppState {
    pub fn new(db: Db, store: SharedStore, config: Config) -> Self {
        Self {
            db,
            store,
            sessions: config.session_settings(),
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
