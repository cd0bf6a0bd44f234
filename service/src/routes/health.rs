//! What load balancers and orchestrators ask: is the process alive, is it ready for traffic,
//! and the metrics.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::middleware::{internal, metrics};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let internal = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/v1/_ping-db", get(ping_db))
        .route_layer(axum::middleware::from_fn(internal::reject_forwarded));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(internal)
}

/// Alive while the process serves. Never touches the database: a database failover must not
/// make every replica fail its load balancer health check at once.
async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct Checks {
    database: &'static str,
    storage: &'static str,
    /// The replica reads fall back to (`STORAGE_FALLBACK_URL`); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_fallback: Option<&'static str>,
}

/// Ready when not draining and the database and object storage answer within the readiness
/// timeout (checked concurrently): 200 `{"status":"ready","checks":{...}}`. Otherwise 503 as
/// problem+json whose detail and `checks` member name what failed.
///
/// With a storage fallback, a primary storage that fails while the replica answers is 200
/// `{"status":"degraded",...}`: reads still work on every replica (the outage is regional, so
/// all of them see it at once), and a 503 would make a readiness-gated balancer route nothing,
/// not even the reads. Uploads and deletes answer 503 meanwhile.
#[tracing::instrument(skip_all)]
async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return not_ready("the replica is shutting down", None);
    }
    let limit = state.config.readiness_timeout;
    let (database, storage, storage_fallback) = tokio::join!(
        check(limit, async {
            state.db.ping().await.map_err(|e| e.to_string())
        }),
        check(limit, async {
            state.store.check().await.map_err(|e| e.to_string())
        }),
        async {
            let mut configured = true;
            let outcome = check(limit, async {
                match state.store.check_fallback().await {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => {
                        configured = false;
                        Ok(())
                    }
                }
            })
            .await;
            configured.then_some(outcome)
        },
    );
    let degraded = storage != "ok" && storage_fallback == Some("ok");
    let checks = Checks {
        database,
        storage,
        storage_fallback,
    };
    let failing: Vec<&str> = [("database", database), ("storage", storage)]
        .into_iter()
        .filter(|(name, outcome)| *outcome != "ok" && !(*name == "storage" && degraded))
        .map(|(name, _)| name)
        .collect();
    if failing.is_empty() {
        let status = if degraded { "degraded" } else { "ready" };
        let body = serde_json::json!({ "status": status, "checks": checks });
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    not_ready(
        &format!("not ready: {} failing", failing.join(", ")),
        Some(checks),
    )
}

fn not_ready(detail: &str, checks: Option<Checks>) -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": status.as_u16(),
        "detail": detail,
        "draining": checks.is_none(),
        "checks": checks,
    });
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        body.to_string(),
    )
        .into_response()
}

async fn check(limit: Duration, probe: impl Future<Output = Result<(), String>>) -> &'static str {
    match tokio::time::timeout(limit, probe).await {
        Ok(Ok(())) => "ok",
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            "failed"
        }
        Err(_) => "timeout",
    }
}

/// Prometheus text exposition (internal: not through the load balancer).
async fn metrics_text(State(state): State<AppState>) -> Response {
    let (size, idle) = state.db.pool_usage();
    ::metrics::gauge!("db_pool_connections").set(f64::from(size));
    ::metrics::gauge!("db_pool_idle_connections").set(idle as f64);
    ::metrics::gauge!("db_pool_max_connections")
        .set(f64::from(state.config.database_max_connections));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::handle().render(),
    )
        .into_response()
}

/// One `SELECT 1` through the pool: the benchmark's database baseline (what a session lookup
/// costs beyond the round trip). Internal: from the internet it would be a free way to load the
/// database.
#[tracing::instrument(skip_all)]
async fn ping_db(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.db.ping().await?;
    Ok("ok")
}
