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

/// The postmaster and every process it started (backends, background workers).
fn postgres_processes(postmaster: u32) -> Vec<i32> {
    let mut pids = vec![postmaster as i32];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal_all(pids: &[i32], signal: i32) {
    for pid in pids {
        // SAFETY: kill(2) on processes of the test's own private Postgres server.
        unsafe {
            libc::kill(*pid, signal);
        }
    }
}

/// A database that stops answering without closing its connections (an RDS failover's old
/// primary): requests still fail fast with 503 thanks to the client-side timeouts, and the
/// service recovers when it answers again.
#[tokio::test]
async fn a_hung_database_gives_fast_503s_not_hung_requests() {
    let pg = PrivatePostgres::start().await;
    let db = TestDatabase::create_on(&pg.admin_url()).await;
    let app = spawn_app_on(
        &db.url,
        &[
            "--database-acquire-timeout",
            "1s",
            "--database-statement-timeout",
            "2s",
        ],
    )
    .await;
    let cookie = app.signed_in("hung-db-user").await;
    // Warm the pool, so that requests go to connections that will hang, not only to new ones.
    assert_eq!(app.get_session(&cookie).await.status(), 200);

    let frozen = postgres_processes(pg.pid());
    signal_all(&frozen, libc::SIGSTOP);
    let started = Instant::now();
    // The session itself may come from this replica's cache: listing files needs the database.
    let response = app.get_as(&cookie, "/api/v1/files").await;
    let took = started.elapsed();
    signal_all(&frozen, libc::SIGCONT);
    assert_problem(response, 503).await;
    assert!(took < Duration::from_secs(5), "503 took {took:?}");
    assert_eq!(app.get("/healthz").await.status(), 200);

    wait_until("the service to use the database again", WAIT, || async {
        (app.get_session(&cookie).await.status() == 200).then_some(())
    })
    .await;
}

/// A replica started while the database is down waits for it (DATABASE_STARTUP_TIMEOUT) instead
/// of exiting, then migrates and serves.
#[tokio::test]
async fn a_replica_started_while_the_database_is_down_waits_for_it() {
    let mut pg = PrivatePostgres::start().await;
    let db = TestDatabase::create_on(&pg.admin_url()).await;
    pg.stop();
    // The replica starts first (its first attempts are refused), the database a moment later.
    let (app, ()) = tokio::time::timeout(WAIT, async {
        tokio::join!(
            spawn_app_on(&db.url, &["--database-acquire-timeout", "1s"]),
            pg.start_server()
        )
    })
    .await
    .expect("the replica starts once the database answers");
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(
        app.register("late-start", crate::helpers::PASSWORD)
            .await
            .status(),
        201
    );
}
