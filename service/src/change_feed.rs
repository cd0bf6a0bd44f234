//! The change feed: one Postgres `LISTEN` connection per replica, fed by triggers (migration
//! `change_notifications`). It evicts changed sessions from this replica's session cache and
//! wakes idle job workers when a job is queued.
//!
//! Notifications sent while the connection is down are lost, so the session cache is only used
//! while the feed is known to work: it is suspended (emptied, bypassed) the moment the connection
//! fails or stops answering, and resumed once a new connection listens again. "Stops answering"
//! is found by pings: the feed notifies itself every `ping_interval`; a ping not back within
//! `ping_timeout` counts as a lost connection (a silent network partition sends no error); the
//! silent connection's server backend is then terminated, so that it does not hold a database
//! connection slot for hours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification, PgPoolOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_sessions::session::Id;

use crate::report::report;
use crate::sessions::cache::SessionCache;

pub const SESSIONS_CHANGED: &str = "sessions_changed";
pub const JOBS_QUEUED: &str = "jobs_queued";
const PING: &str = "change_feed_ping";
/// What `pg_stat_activity.application_name` shows for the feed's connection, followed by the
/// replica's name.
pub const APPLICATION_NAME: &str = "data-processor change feed";

#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Longest wait between two reconnection attempts.
    pub max_backoff: Duration,
    pub application_name: String,
}

impl FeedSettings {
    /// The feed of replica `replica_id`.
    pub fn of_replica(mut self, replica_id: &str) -> Self {
        self.application_name = format!("{APPLICATION_NAME} {replica_id}");
        self
    }
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(5),
            application_name: APPLICATION_NAME.to_string(),
        }
    }
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub struct Subscribers {
    pub sessions: Option<SessionCache>,
    pub jobs: Arc<Notify>,
}

/// Listens until `stop` is cancelled, reconnecting whenever the connection is lost.
pub async fn run(
    pool: PgPool,
    subscribers: Subscribers,
    settings: FeedSettings,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let listened = tokio::select! {
            () = stop.cancelled() => return,
            listened = listen(&pool, &settings.application_name) => listened,
        };
        match listened {
            Ok((listener, backend)) => {
                backoff = Duration::from_millis(100);
                if let Some(cache) = &subscribers.sessions {
                    cache.resume();
                }
                // A job may have been queued while nobody listened.
                subscribers.jobs.notify_one();
                tracing::info!("change feed listening; session cache in use");
                let ended = serve(listener, &pool, &subscribers, &settings, &stop).await;
                if let Some(cache) = &subscribers.sessions {
                    cache.suspend();
                }
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost(why) => tracing::warn!(
                        %why,
                        "change feed lost: session cache bypassed until it is back"
                    ),
                    Ended::Silent => {
                        tracing::warn!(
                            ping_timeout = ?settings.ping_timeout,
                            "change feed silent (a ping failed or did not come back): session cache bypassed until it is back"
                        );
                        end_backend(&pool, backend).await;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %report(&error), retry_in = ?backoff, "change feed cannot listen");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.max_backoff);
    }
}

/// A new connection of its own (not one of the pool's: it is held for good), listening; and the
/// process id of its server backend.
async fn listen(pool: &PgPool, application_name: &str) -> Result<(PgListener, i32), sqlx::Error> {
    let options = (*pool.connect_options())
        .clone()
        .application_name(application_name);
    let own = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&own).await?;
    // Reconnection is ours: it must resume the cache, which a silent reconnect would not.
    listener.eager_reconnect(false);
    listener
        .listen_all([SESSIONS_CHANGED, JOBS_QUEUED, PING])
        .await?;
    let backend = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
        .fetch_one(&mut listener)
        .await?;
    Ok((listener, backend))
}

/// Ends the server side of a feed connection that went silent. Across a partition the server
/// would otherwise keep that backend (and one of its `max_connections`) until its TCP keepalive
/// gives up, hours later by default; and when the silence was the backend itself (stuck, not the
/// network), this also closes our socket, which ends the `UNLISTEN` the dropped listener still
/// tries to send. Best effort: if the database cannot be reached either, nothing is lost by
/// trying.
async fn end_backend(pool: &PgPool, backend: i32) {
    let ended = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::query_scalar::<_, bool>("SELECT pg_terminate_backend($1)")
            .bind(backend)
            .fetch_one(pool),
    )
    .await;
    match ended {
        Ok(Ok(found)) => tracing::info!(backend, found, "silent change feed backend terminated"),
        Ok(Err(error)) => {
            tracing::debug!(backend, error = %report(&error), "silent change feed backend not terminated")
        }
        Err(_) => tracing::debug!(backend, "silent change feed backend not terminated in time"),
    }
}

enum Ended {
    Stopped,
    /// The connection failed or closed.
    Lost(String),
    /// A ping did not come back in time: the connection may still look open.
    Silent,
}

async fn serve(
    mut listener: PgListener,
    pool: &PgPool,
    subscribers: &Subscribers,
    settings: &FeedSettings,
    stop: &CancellationToken,
) -> Ended {
    let pings = Arc::new(Pings::default());
    let silent = CancellationToken::new();
    let pinger = tokio::spawn(ping_loop(
        pool.clone(),
        pings.clone(),
        settings.clone(),
        silent.clone(),
    ));
    let _stop_pinger = AbortOnDrop(pinger);
    loop {
        // Cancelling `try_recv` is only done when the listener is dropped with it.
        let received = tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            () = silent.cancelled() => return Ended::Silent,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => dispatch(&notification, subscribers, &pings),
            Ok(None) => return Ended::Lost("the connection closed".into()),
            Err(error) => return Ended::Lost(report(&error).to_string()),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn dispatch(notification: &PgNotification, subscribers: &Subscribers, pings: &Pings) {
    match notification.channel() {
        SESSIONS_CHANGED => {
            let Some(cache) = &subscribers.sessions else {
                return;
            };
            match notification.payload().parse::<Id>() {
                Ok(id) => cache.evict(&id),
                // Not an id this replica could have cached; but be safe.
                Err(_) => cache.flush(),
            }
        }
        JOBS_QUEUED => subscribers.jobs.notify_one(),
        PING => pings.received(notification.payload()),
        _ => {}
    }
}

/// The pings of one connection: `<token>/<n>`, the token telling ours from other replicas'.
struct Pings {
    token: String,
    returned: AtomicU64,
    arrived: Notify,
}

impl Default for Pings {
    fn default() -> Self {
        Self {
            token: uuid::Uuid::new_v4().simple().to_string(),
            returned: AtomicU64::new(0),
            arrived: Notify::new(),
        }
    }
}

impl Pings {
    fn received(&self, payload: &str) {
        let Some((token, n)) = payload.split_once('/') else {
            return;
        };
        if token == self.token
            && let Ok(n) = n.parse::<u64>()
        {
            self.returned.fetch_max(n, Ordering::SeqCst);
            self.arrived.notify_waiters();
        }
    }

    async fn back(&self, n: u64) {
        loop {
            let arrived = self.arrived.notified();
            if self.returned.load(Ordering::SeqCst) >= n {
                return;
            }
            arrived.await;
        }
    }
}

/// Sends a ping every interval through the pool; cancels `silent` when one is not back in time.
async fn ping_loop(
    pool: PgPool,
    pings: Arc<Pings>,
    settings: FeedSettings,
    silent: CancellationToken,
) {
    let mut n = 0_u64;
    loop {
        tokio::time::sleep(settings.ping_interval).await;
        n += 1;
        let payload = format!("{}/{n}", pings.token);
        let round_trip = async {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PING)
                .bind(&payload)
                .execute(&pool)
                .await?;
            pings.back(n).await;
            Ok::<(), sqlx::Error>(())
        };
        match tokio::time::timeout(settings.ping_timeout, round_trip).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(error = %report(&error), "change feed ping not sent");
                silent.cancel();
                return;
            }
            Err(_) => {
                silent.cancel();
                return;
            }
        }
    }
}
