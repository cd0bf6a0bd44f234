use std::sync::atomic::Ordering;

use crate::helpers::{json, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_200_when_dependencies_are_up() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body = json(ready).await;
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["storage"], "ok");
}

#[tokio::test]
async fn readyz_names_storage_when_it_fails() {
    let app = spawn_app().await;
    app.store.fail.store(true, Ordering::Relaxed);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body = json(ready).await;
    assert_eq!(body["checks"]["storage"], "failed", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    // Liveness does not depend on storage either.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn request_ids_are_generated_or_kept_and_the_replica_is_named() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert!(generated.headers().contains_key("x-served-by"));

    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/no/such/route").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/healthz\"")
            && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("http_requests_in_flight"), "{text}");
    assert!(text.contains("db_pool_connections"), "{text}");
}
