//! Assembles the application (database, storage, sessions, router, layers) and serves it with
//! graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::change_feed;
use crate::configuration::Config;
use crate::db::{Db, DbError, Pool};
use crate::middleware::request_id::{self, REQUEST_ID};
use crate::middleware::{csrf, drain, metrics, problem};
use crate::routes;
use crate::sessions::{self, AppSessionStore};
use crate::state::AppState;
use crate::storage::{self, SharedStore, StorageError};
use crate::telemetry::{self, RequestLine, RequestSpan};
use crate::ui;

/// Which replica answered (set on every response).
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: STORAGE_URL: {0}")]
    StorageConfig(String),
    #[error("object storage")]
    Storage(#[source] StorageError),
    #[error("database (DATABASE_URL)")]
    Database(#[from] DbError),
    #[error("sessions: {0}")]
    Sessions(String),
    #[error("cannot listen on LISTEN_ADDR {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl StartupError {
    /// 2 for configuration the operator must fix, 1 for everything else (retryable by a restart).
    pub fn exit_code(&self) -> i32 {
        match self {
            StartupError::StorageConfig(_) | StartupError::Database(DbError::Config(_)) => 2,
            _ => 1,
        }
    }
}

/// A built application, bound to its port, not serving yet.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    session_store: AppSessionStore,
    router: Router,
}

impl Application {
    /// Connects storage as configured, then everything else.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = storage::connect(&config.storage_settings())
            .await
            .map_err(|e| match e {
                StorageError::Config(msg) => StartupError::StorageConfig(msg),
                other => StartupError::Storage(other),
            })?;
        Self::build_with_store(config, store).await
    }

    /// Builds with a given object store (tests inject one).
    pub async fn build_with_store(
        config: Config,
        store: SharedStore,
    ) -> Result<Self, StartupError> {
        if config.is_embedded() {
            tracing::warn!(
                database = config.database_kind().ok().map(|k| format!("{k:?}")),
                storage = %store.describe(),
                "embedded mode: SQLite and/or local storage keep state on this machine; run a single replica only"
            );
        }
        let db_settings = config.db_settings();
        let db = Db::connect(&db_settings)?;
        db.migrate_when_available(&db_settings).await?;
        // Off the runtime like every hash: it costs tens of milliseconds of CPU.
        let _ = tokio::task::spawn_blocking(crate::domain::password::warm_up).await;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: config.listen_addr,
                source,
            })?
            .port();
        let statement_timeout = config.database_statement_timeout;
        let state = AppState::new(db, store, config);
        let session_store =
            AppSessionStore::new(&state.db, statement_timeout, state.session_cache.clone())
                .map_err(StartupError::Sessions)?;
        let router = build_router(state.clone(), session_store.clone());
        Ok(Self {
            listener,
            port,
            state,
            session_store,
            router,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` resolves, then shuts down gracefully:
    /// 1. `/readyz` turns 503 at once, while everything else is still served for
    ///    `SHUTDOWN_DRAIN_DELAY` (load balancers see the 503 and stop routing here);
    /// 2. the listener closes, idle keep-alive connections close, in-flight requests finish;
    /// 3. whatever still runs when `SHUTDOWN_TIMEOUT` (counted from the signal) is over is
    ///    aborted. Returns once stopped.
    pub async fn run_until_stopped(self, signal: impl Future<Output = ()>) {
        let Application {
            listener,
            state,
            session_store,
            router,
            ..
        } = self;
        let config = state.config.clone();
        let cleanup = tokio::spawn(sessions::cleanup_loop(
            session_store,
            state.db.clone(),
            state.sessions.clone(),
        ));
        let forget_clients = tokio::spawn(crate::limits::forget_idle_clients_loop(
            state.limits.clone(),
        ));
        let stop_feed = tokio_util::sync::CancellationToken::new();
        if let Pool::Postgres(pool) = &state.db.pool {
            tokio::spawn(change_feed::run(
                pool.clone(),
                change_feed::Subscribers {
                    sessions: state.session_cache.clone(),
                    jobs: state.job_queued.clone(),
                },
                config.feed_settings().of_replica(&state.replica_id),
                stop_feed.clone(),
            ));
        }

        // Job workers stop claiming at the signal; running jobs get the shutdown budget less a
        // margin to finish, then are handed back to the queue for another replica.
        let workers = crate::jobs::Workers::start(state.clone());
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let job_grace = config
            .shutdown_timeout
            .saturating_sub(Duration::from_secs(4));
        let workers_stopped = tokio::spawn(async move {
            let _ = on_signal.await;
            workers.shutdown(job_grace).await;
        });
        let mut signalled = Some(signalled);
        let signal_at = std::sync::OnceLock::new();

        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's header read timeout starts when a connection waits for its next request, so it
        // is also the keep-alive idle timeout (and bounds slow-header clients).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.http_keepalive_timeout);
        // A peer that vanished (no FIN) is found by pings, not kept with its streams forever.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(config.http2_keepalive_interval)
            .keep_alive_timeout(config.http2_keepalive_interval)
            .max_concurrent_streams(config.http2_max_concurrent_streams);
        let graceful = GracefulShutdown::new();

        tokio::pin!(signal);
        let drained = async {
            (&mut signal).await;
            state.start_draining();
            let _ = signal_at.set(std::time::Instant::now());
            if let Some(signalled) = signalled.take() {
                let _ = signalled.send(());
            }
            tracing::info!(
                drain_delay = ?config.shutdown_drain_delay,
                "shutdown requested: /readyz answers 503, still serving during the drain delay"
            );
            tokio::time::sleep(config.shutdown_drain_delay).await;
        };
        tokio::pin!(drained);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(conn) => conn,
                        Err(error) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(%error, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Responses are written whole or in large frames: Nagle only adds latency.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "setting TCP_NODELAY failed");
                    }
                    // The peer address, for `ClientIp` (rate limits, the login lockout).
                    let service = router.clone().map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request
                    });
                    let service = TowerToHyperService::new(service);
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                    });
                }
                () = &mut drained => break,
            }
        }
        drop(listener);
        let remaining = config
            .shutdown_timeout
            .saturating_sub(config.shutdown_drain_delay);
        tracing::info!(deadline = ?remaining, "listener closed; waiting for in-flight requests");
        match tokio::time::timeout(remaining, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all connections finished; stopped"),
            Err(_) => tracing::warn!("shutdown deadline reached; aborting the remaining requests"),
        }
        // Jobs may still be finishing after the last request: wait for them, within the budget.
        let budget_left = config
            .shutdown_timeout
            .saturating_sub(signal_at.get().map_or(Duration::ZERO, |at| at.elapsed()));
        if tokio::time::timeout(budget_left, workers_stopped)
            .await
            .is_err()
        {
            tracing::warn!("job workers did not stop in time");
        }
        cleanup.abort();
        forget_clients.abort();
        stop_feed.cancel();
    }
}

/// The router with every cross-cutting layer, outermost first.
pub fn build_router(state: AppState, session_store: AppSessionStore) -> Router {
    let served_by = HeaderValue::from_str(&state.replica_id)
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    let session_layer = sessions::layer(session_store, &state.sessions);
    // Installs the metrics recorder before the first request is counted.
    let _ = metrics::handle();
    let drain = axum::middleware::from_fn_with_state(
        state.clone(),
        drain::close_connections_while_draining,
    );
    routes::router(state.config.request_timeout)
        .merge(ui::router(state.config.request_timeout))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new([
                    header::COOKIE,
                    header::SET_COOKIE,
                    header::AUTHORIZATION,
                ]))
                .layer(axum::middleware::from_fn(request_id::drop_unusable))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(SetResponseHeaderLayer::overriding(SERVED_BY, served_by))
                .layer(drain)
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(RequestSpan)
                        .on_request(())
                        .on_response(RequestLine)
                        .on_failure(()),
                )
                .layer(axum::middleware::from_fn(telemetry::remember_request_span))
                .layer(axum::middleware::from_fn(metrics::record))
                .layer(axum::middleware::from_fn(problem::errors_as_problems))
                .layer(CatchPanicLayer::new())
                .layer(axum::middleware::from_fn(csrf::reject_cross_site))
                .layer(session_layer),
        )
}
