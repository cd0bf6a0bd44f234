//! data-processor: the application. `main.rs` only parses configuration, starts telemetry and
//! calls `run`; everything else is built here.

pub mod auth;
pub mod change_feed;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod limits;
pub mod memory;
pub mod middleware;
pub mod openapi;
pub mod report;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod ui;

use std::time::Duration;

use configuration::{Command, Config};
use startup::{Application, StartupError};

/// Runs the subcommand and returns the process exit code.
pub async fn run(command: Command, config: Config) -> i32 {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Healthcheck => healthcheck(&config).await,
    }
}

async fn serve(config: Config) -> i32 {
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(error) => return startup_failed(&error),
    };
    tracing::info!(
        port = app.port(),
        replica = %app.state().replica_id,
        storage = %app.state().store.describe(),
        "serving"
    );
    app.run_until_stopped(shutdown_signal()).await;
    0
}

async fn migrate(config: Config) -> i32 {
    let result = async {
        let settings = config.db_settings();
        let db = db::Db::connect(&settings)?;
        db.migrate_when_available(&settings).await
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!("migrations applied");
            0
        }
        Err(error) => startup_failed(&StartupError::Database(error)),
    }
}

fn startup_failed(error: &StartupError) -> i32 {
    let chain = report::report(error);
    tracing::error!(error = %chain, "start-up failed");
    eprintln!("data-processor: {chain}");
    error.exit_code()
}

/// The container health check: GET /healthz on this host's LISTEN_ADDR port.
async fn healthcheck(config: &Config) -> i32 {
    let url = format!("http://127.0.0.1:{}/healthz", config.listen_addr.port());
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("data-processor healthcheck: {error}");
            return 1;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => 0,
        Ok(response) => {
            eprintln!(
                "data-processor healthcheck: {url} answered {}",
                response.status()
            );
            1
        }
        Err(error) => {
            eprintln!("data-processor healthcheck: {url}: {error}");
            1
        }
    }
}

/// Resolves on SIGTERM (ECS stopping the task) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
