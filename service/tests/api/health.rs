use std::sync::atomic::Ordering;

use crate::helpers::{assert_problem, json, spawn_app};

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

    // Not a plain token (it would end up in every log line): replaced by a fresh UUID.
    for unusable in ["two words", "a\"quote", &"x".repeat(129)] {
        let replaced = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", unusable)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(id, *unusable);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "not a UUID: {id}");
    }
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

#[tokio::test]
async fn internal_endpoints_do_not_exist_through_a_load_balancer() {
    let app = spawn_app().await;
    for path in ["/metrics", "/api/v1/_ping-db"] {
        assert_eq!(app.get(path).await.status(), 200, "{path} direct");
        for (name, value) in [
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7;proto=https"),
        ] {
            let forwarded = app
                .client
                .get(app.url(path))
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_problem(forwarded, 404).await;
        }
    }
    // Everything else is served through the load balancer as usual.
    let health = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
