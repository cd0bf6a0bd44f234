//! What an anonymous or hostile client cannot do: lock a chosen user out, exceed the per-address
//! rates, break a session by corrupting its row; and what a file delete leaves behind while its
//! job runs (nothing).

use std::time::{Duration, Instant};

use data_processor::db::Pool;
use serde_json::json;
use testkit::wait_until;

use crate::helpers::{PASSWORD, TestApp, WAIT, assert_problem, json, spawn_app_with, unique_name};

const ATTACKER: &str = "198.51.100.66";
const ALICE_AT_HOME: &str = "203.0.113.5";

fn pg(app: &TestApp) -> &sqlx::PgPool {
    match &app.state.db.pool {
        Pool::Postgres(pool) => pool,
        Pool::Sqlite(_) => panic!("these tests run on Postgres"),
    }
}

#[tokio::test]
async fn a_guesser_at_one_address_does_not_lock_the_user_out_at_another() {
    let app = spawn_app_with(&[
        "--trusted-proxy-hops",
        "1",
        "--login-max-failures",
        "3",
        "--login-user-slowdown-after",
        "100",
    ])
    .await;
    let alice = unique_name("alice");
    assert_eq!(app.register(&alice, PASSWORD).await.status(), 201);

    for attempt in 1..=3 {
        let guess = app.login_from(ATTACKER, &alice, "guess number one").await;
        assert_eq!(guess.status(), 401, "guess {attempt}");
    }
    // The guesser's address is locked out, even with the right password...
    let locked = app.login_from(ATTACKER, &alice, PASSWORD).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429).await;
    // ...while alice, elsewhere, logs in at once.
    let home = app.login_from(ALICE_AT_HOME, &alice, PASSWORD).await;
    assert_eq!(home.status(), 200);
}

#[tokio::test]
async fn failures_from_many_addresses_only_slow_the_user_down() {
    let app = spawn_app_with(&[
        "--trusted-proxy-hops",
        "1",
        "--login-max-failures",
        "3",
        "--login-user-slowdown-after",
        "4",
    ])
    .await;
    let bob = unique_name("bob");
    assert_eq!(app.register(&bob, PASSWORD).await.status(), 201);
    // A distributed guess: each address stays under its own limit.
    for i in 0..6 {
        let guess = app
            .login_from(&format!("198.51.100.{}", 10 + i), &bob, "distributed guess")
            .await;
        assert_eq!(guess.status(), 401, "guess {i}");
    }
    let started = Instant::now();
    let login = app.login_from(ALICE_AT_HOME, &bob, PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(
        login.status(),
        200,
        "the user is slowed down, never refused"
    );
    // 6 failures against a threshold of 4: three steps of the half-second slowdown.
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test]
async fn registrations_and_logins_are_rate_limited_per_client_address() {
    let app = spawn_app_with(&[
        "--trusted-proxy-hops",
        "1",
        "--auth-rate-limit-per-minute",
        "1",
        "--auth-rate-limit-burst",
        "2",
    ])
    .await;
    for _ in 0..2 {
        let response = app.register_from(ATTACKER, &unique_name("burst")).await;
        assert_eq!(response.status(), 201);
    }
    let refused = app.register_from(ATTACKER, &unique_name("burst")).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(refused, 429).await;
    // Another address, and another route, have budgets of their own.
    let other = app
        .register_from(ALICE_AT_HOME, &unique_name("other"))
        .await;
    assert_eq!(other.status(), 201);
    let login = app
        .login_from(ATTACKER, "nobody-at-all", "whatever password")
        .await;
    assert_eq!(login.status(), 401);
}

#[tokio::test]
async fn without_trusted_proxies_a_forged_forwarded_for_changes_nothing() {
    let app = spawn_app_with(&[
        "--auth-rate-limit-per-minute",
        "1",
        "--auth-rate-limit-burst",
        "1",
    ])
    .await;
    let first = app
        .register_from("198.51.100.1", &unique_name("forged"))
        .await;
    assert_eq!(first.status(), 201);
    // A different claimed address, same TCP peer: the same client.
    let second = app
        .register_from("198.51.100.2", &unique_name("forged"))
        .await;
    assert_problem(second, 429).await;
}

#[tokio::test]
async fn a_corrupt_session_row_is_a_401_and_is_dropped() {
    // What the database load does with the row; the cache would answer from memory until the
    // UPDATE's notification evicted it (session_cache.rs tests that eviction).
    let app = spawn_app_with(&["--session-cache-capacity", "0"]).await;
    let cookie = app.signed_in(&unique_name("carol")).await;
    assert_eq!(app.get_session(&cookie).await.status(), 200);
    sqlx::query("UPDATE sessions SET data = '\\xc1c1c1'::bytea")
        .execute(pg(&app))
        .await
        .unwrap();
    assert_problem(app.get_session(&cookie).await, 401).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(pg(&app))
        .await
        .unwrap();
    assert_eq!(rows, 0, "the corrupt row is deleted");
    // Logging in again works as usual.
    assert_eq!(app.get_session(&cookie).await.status(), 401);
}

#[tokio::test]
async fn a_session_whose_user_entry_does_not_decode_is_a_401() {
    let app = spawn_app_with(&["--session-cache-capacity", "0"]).await;
    let cookie = app.signed_in(&unique_name("dave")).await;
    // A record that decodes, with a `user` entry of the wrong shape (as an incompatible release
    // could write): MessagePack of {id, data: {"user": 7}, expiry_date}, re-encoded from the row.
    let id: String = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_one(pg(&app))
        .await
        .unwrap();
    let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM sessions")
        .fetch_one(pg(&app))
        .await
        .unwrap();
    let mut record: tower_sessions::session::Record = rmp_serde::from_slice(&data).unwrap();
    record.data.insert("user".into(), json!(7));
    sqlx::query("UPDATE sessions SET data = $1 WHERE id = $2")
        .bind(rmp_serde::to_vec(&record).unwrap())
        .bind(id)
        .execute(pg(&app))
        .await
        .unwrap();
    assert_problem(app.get_session(&cookie).await, 401).await;
}

#[tokio::test]
async fn deleting_a_file_while_its_job_writes_leaves_no_result_object() {
    let app = spawn_app_with(&["--job-workers", "1", "--job-poll-interval", "50ms"]).await;
    let cookie = app.signed_in(&unique_name("erin")).await;
    let uploaded = app
        .client
        .post(app.url("/api/v1/files?name=data.csv"))
        .header("cookie", &cookie)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n3,4\n")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let file = json(uploaded).await;
    let file_id = file["id"].as_str().unwrap().to_string();

    // The job gets as far as writing its result, and is held there.
    app.store.hold_puts(".jobs/");
    let started = app
        .post_json_as(
            &cookie,
            &format!("/api/v1/files/{file_id}/jobs"),
            &json!({"kind": "profile"}),
        )
        .await;
    assert_eq!(started.status(), 202);
    wait_until("the job to be writing its result", WAIT, || async {
        (app.store.held_puts() == 1).then_some(())
    })
    .await;

    let deleted = app
        .delete_as(&cookie, &format!("/api/v1/files/{file_id}"))
        .await;
    assert_eq!(deleted.status(), 204);
    // The write completes after the delete; the worker finds its job gone and removes it.
    app.store.release_puts();
    wait_until("the worker to delete the result it wrote", WAIT, || async {
        app.store
            .deleted_keys()
            .iter()
            .any(|k| k.contains(&file_id) && k.contains(".jobs/"))
            .then_some(())
    })
    .await;
    let left: Vec<_> = app
        .store
        .keys()
        .into_iter()
        .filter(|k| k.contains(&file_id))
        .collect();
    assert!(left.is_empty(), "objects left behind: {left:?}");
}
