//! The database goes away and comes back; the service reports it and recovers by itself.

use std::time::{Duration, Instant};

use testkit::postgres::{PrivatePostgres, TestDatabase};
use testkit::wait_until;

use crate::helpers::{WAIT, assert_problem, json, spawn_app_on};

#[tokio::test]
async fn database_down_means_not_ready_fast_503s_and_recovery_without_restart() {
    let mut pg = PrivatePostgres::start().await;
    let db = TestDatabase::create_on(&pg.admin_url()).await;
    let app = spawn_app_on(
        &db.url,
        &[
            "--database-acquire-timeout",
            "1s",
            "--database-statement-timeout",
            "2s",
            "--readiness-timeout",
            "1s",
        ],
    )
    .await;
    let cookie = app.signed_in("outage-user").await;

    pg.stop();

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body = json(ready).await;
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["storage"], "ok", "{body}");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness ignores the database"
    );

    let started = Instant::now();
    let problem = assert_problem(app.get_session(&cookie).await, 503).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "503 took {took:?}");
    assert!(
        !problem["detail"].as_str().unwrap().contains("127.0.0.1"),
        "no internals in {problem}"
    );

    pg.start_server().await;
    wait_until("the service to use the database again", WAIT, || async {
        (app.get_session(&cookie).await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}
