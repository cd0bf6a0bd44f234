//! What load balancers and orchestrators ask: is the process alive, is it ready for traffic,
//! and the metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::middleware::{internal, metrics};
use crate::openapi::{NotFound, Unavailable};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let internal = OpenApiRouter::new()
        .routes(routes!(metrics_text))
        .routes(routes!(ping_db))
        .route_layer(axum::middleware::from_fn(internal::reject_forwarded));
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .merge(internal)
}

/// Alive while the process serves. Never touches the database: a database failover must not
/// make every replica fail its load balancer health check at once.
#[utoipa::path(
    operation_id = "healthz",
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive", content_type = "text/plain", body = String, example = "ok"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// `ok`, `failed` or `timeout`.
#[derive(Serialize, ToSchema)]
struct Checks {
    #[schema(value_type = String, example = "ok")]
    database: &'static str,
    #[schema(value_type = String, example = "ok")]
    storage: &'static str,
    /// The replica reads fall back to (`STORAGE_FALLBACK_URL`); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    storage_fallback: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
struct Ready {
    /// `ready`, or `degraded` while reads are served by the storage fallback.
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    checks: Checks,
}

/// The 503 problem document of `/readyz`: a `Problem` that also says why.
#[derive(Serialize, ToSchema)]
struct NotReady {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: &'static str,
    #[schema(value_type = String)]
    title: &'static str,
    status: u16,
    detail: String,
    /// True while the replica shuts down (then `checks` is null).
    draining: bool,
    checks: Option<Checks>,
}

/// Ready when not draining and the database and object storage answer within the readiness
/// timeout (checked concurrently): 200 `{"status":"ready","checks":{...}}`. Otherwise 503 as
/// problem+json whose detail and `checks` member name what failed.
///
/// With a storage fallback, a primary storage that fails while the replica answers is 200
/// `{"status":"degraded",...}`: reads still work on every replica (the outage is regional, so
/// all of them see it at once), and a 503 would make a readiness-gated balancer route nothing,
/// not even the reads. Uploads and deletes answer 503 meanwhile.
#[utoipa::path(
    operation_id = "readyz",
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready (or degraded)", body = Ready),
        (status = 503, description = "Not ready: draining or a dependency failing", content_type = "application/problem+json", body = NotReady),
    )
)]
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
        return (StatusCode::OK, axum::Json(Ready { status, checks })).into_response();
    }
    not_ready(
        &format!("not ready: {} failing", failing.join(", ")),
        Some(checks),
    )
}

fn not_ready(detail: &str, checks: Option<Checks>) -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let body = NotReady {
        kind: "about:blank",
        title: "Service Unavailable",
        status: status.as_u16(),
        detail: detail.to_string(),
        draining: checks.is_none(),
        checks,
    };
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        serde_json::to_string(&body).unwrap_or_default(),
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

/// Prometheus text exposition (internal: 404 through a proxy).
#[utoipa::path(
    operation_id = "metrics",
    get,
    path = "/metrics",
    tag = "internal",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 404, response = NotFound),
    )
)]
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
#[utoipa::path(
    operation_id = "ping_db",
    get,
    path = "/api/v1/_ping-db",
    tag = "internal",
    responses(
        (status = 200, description = "The database answered", content_type = "text/plain", body = String, example = "ok"),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn ping_db(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.db.ping().await?;
    Ok("ok")
}
