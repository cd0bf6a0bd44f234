//! Sessions: login, logout, cookie flags, fixation, timeouts, throttling, CSRF, replicas.

use std::time::{Duration, Instant};

use data_processor::db::Pool;
use sqlx::PgPool;
use testkit::wait_until;

use crate::helpers::{
    PASSWORD, TestApp, WAIT, assert_problem, json, session_cookie, set_cookie_line, spawn_app,
    spawn_app_on, spawn_app_with, unique_name,
};

fn pg(app: &TestApp) -> &PgPool {
    match &app.state.db.pool {
        Pool::Postgres(pool) => pool,
        Pool::Sqlite(_) => panic!("these tests run on Postgres"),
    }
}

async fn session_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(pg(app))
        .await
        .unwrap()
}

async fn expiry_of_only_session(app: &TestApp) -> time::OffsetDateTime {
    sqlx::query_scalar("SELECT expiry_date FROM sessions")
        .fetch_one(pg(app))
        .await
        .unwrap()
}

#[tokio::test]
async fn register_login_whoami_logout() {
    let app = spawn_app().await;
    assert_eq!(app.register("erin", PASSWORD).await.status(), 201);

    let login = app.login("ERIN", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let cookie = session_cookie(login.headers()).expect("cookie");
    let body = json(login).await;
    assert_eq!(body["user"]["username"], "erin");

    let me = app.get_session(&cookie).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["user"]["username"], "erin");

    let logout = app.delete_as(&cookie, "/api/v1/session").await;
    assert_eq!(logout.status(), 204);
    assert_eq!(session_rows(&app).await, 0, "deleted server-side");
    assert_problem(app.get_session(&cookie).await, 401).await;
}

#[tokio::test]
async fn no_session_is_a_401_problem() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/session").await, 401).await;
    assert_problem(app.get_session("dp_session=forged-value").await, 401).await;
}

#[tokio::test]
async fn the_cookie_is_httponly_samesite_lax_secure_path_root() {
    let app = spawn_app_with(&["--session-cookie-secure", "true"]).await;
    assert_eq!(app.register("frank", PASSWORD).await.status(), 201);
    let login = app.login("frank", PASSWORD).await;
    let line = set_cookie_line(login.headers()).expect("Set-Cookie");
    let attributes: Vec<String> = line.split(';').map(|a| a.trim().to_lowercase()).collect();
    for expected in ["httponly", "samesite=lax", "secure", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing in {line}"
        );
    }
}

#[tokio::test]
async fn the_session_id_changes_at_login() {
    let app = spawn_app().await;
    let first = app.signed_in("grace").await;

    let again = app.login_with_cookie("grace", PASSWORD, Some(&first)).await;
    assert_eq!(again.status(), 200);
    let second = session_cookie(again.headers()).expect("a new cookie");
    assert_ne!(first, second);
    assert_problem(app.get_session(&first).await, 401).await;
    assert_eq!(app.get_session(&second).await.status(), 200);

    // An id planted by an attacker before login is not the one the session gets.
    let planted = "dp_session=AAAAAAAAAAAAAAAAAAAAAA";
    let login = app
        .login_with_cookie("grace", PASSWORD, Some(planted))
        .await;
    assert_ne!(session_cookie(login.headers()).as_deref(), Some(planted));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = spawn_app().await;
    assert_eq!(app.register("heidi", PASSWORD).await.status(), 201);
    let wrong = assert_problem(app.login("heidi", "not the password").await, 401).await;
    let unknown = assert_problem(app.login("nobody-here", "not the password").await, 401).await;
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_username_across_replicas() {
    let db = testkit::postgres::TestDatabase::create().await;
    let args = ["--login-max-failures", "3", "--login-failure-window", "10m"];
    let a = spawn_app_on(&db.url, &args).await;
    let b = spawn_app_on(&db.url, &args).await;
    assert_eq!(a.register("ivan", PASSWORD).await.status(), 201);
    assert_eq!(a.register("judy", PASSWORD).await.status(), 201);

    // A success clears earlier failures.
    assert_eq!(a.login("ivan", "wrong password!").await.status(), 401);
    assert_eq!(a.login("ivan", PASSWORD).await.status(), 200);

    // Three failures spread over two replicas use up the allowance...
    assert_eq!(a.login("ivan", "wrong password!").await.status(), 401);
    assert_eq!(b.login("ivan", "wrong password!").await.status(), 401);
    assert_eq!(a.login("IVAN", "wrong password!").await.status(), 401);
    // ...then even the right password is refused on either replica, with Retry-After.
    for app in [&a, &b] {
        let throttled = app.login("ivan", PASSWORD).await;
        let retry_after: u64 = throttled.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after > 0 && retry_after <= 600, "{retry_after}");
        assert_problem(throttled, 429).await;
    }
    // Another username is not affected.
    assert_eq!(b.login("judy", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn reading_a_session_does_not_write_it() {
    let app = spawn_app().await;
    let cookie = app.signed_in("ken").await;
    let expiry = expiry_of_only_session(&app).await;
    for _ in 0..5 {
        let me = app.get_session(&cookie).await;
        assert_eq!(me.status(), 200);
        assert!(set_cookie_line(me.headers()).is_none(), "no cookie re-sent");
    }
    assert_eq!(expiry_of_only_session(&app).await, expiry);
}

#[tokio::test]
async fn activity_refreshes_the_idle_expiry_and_inactivity_ends_the_session() {
    let app = spawn_app_with(&[
        "--session-idle-timeout",
        "2s",
        "--session-absolute-timeout",
        "1h",
    ])
    .await;
    let cookie = app.signed_in("leo").await;
    let first_expiry = expiry_of_only_session(&app).await;

    // Requests keep the session alive: the stored expiry moves forward (about once a second).
    wait_until("the idle expiry to be refreshed", WAIT, || async {
        assert_eq!(app.get_session(&cookie).await.status(), 200);
        (expiry_of_only_session(&app).await > first_expiry).then_some(())
    })
    .await;

    // Without requests it expires server-side, whatever the client does with its cookie.
    let idle_end = expiry_of_only_session(&app).await;
    wait_until("the session to pass its idle expiry", WAIT, || async {
        (time::OffsetDateTime::now_utc() > idle_end).then_some(())
    })
    .await;
    assert_problem(app.get_session(&cookie).await, 401).await;
}

#[tokio::test]
async fn the_absolute_timeout_ends_even_an_active_session() {
    let app = spawn_app_with(&[
        "--session-idle-timeout",
        "2s",
        "--session-absolute-timeout",
        "4s",
    ])
    .await;
    let cookie = app.signed_in("mallory").await;
    let logged_in_at = Instant::now();
    let last_ok = std::sync::Mutex::new(logged_in_at);
    wait_until("the active session to end", WAIT, || async {
        match app.get_session(&cookie).await.status().as_u16() {
            200 => {
                *last_ok.lock().unwrap() = Instant::now();
                None
            }
            401 => Some(()),
            other => panic!("unexpected status {other}"),
        }
    })
    .await;
    // It outlived the idle timeout (activity kept it), so it was the absolute timeout that ended it.
    let last_ok = *last_ok.lock().unwrap();
    assert!(
        last_ok - logged_in_at > Duration::from_secs(2),
        "the session ended after {:?} of activity",
        last_ok - logged_in_at
    );
}

#[tokio::test]
async fn expired_sessions_are_deleted_periodically() {
    let app = spawn_app_with(&[
        "--session-idle-timeout",
        "1s",
        "--session-absolute-timeout",
        "1s",
        "--session-cleanup-interval",
        "1s",
    ])
    .await;
    app.signed_in("nina").await;
    assert_eq!(session_rows(&app).await, 1);
    wait_until("the expired session row to be deleted", WAIT, || async {
        (session_rows(&app).await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_session_works_on_every_replica_and_logout_reaches_them_all() {
    let db = testkit::postgres::TestDatabase::create().await;
    let a = spawn_app_on(&db.url, &[]).await;
    let b = spawn_app_on(&db.url, &[]).await;
    let cookie = a.signed_in(&unique_name("olga")).await;

    assert_eq!(b.get_session(&cookie).await.status(), 200);
    let logout = b.delete_as(&cookie, "/api/v1/session").await;
    assert_eq!(logout.status(), 204);
    assert_problem(a.get_session(&cookie).await, 401).await;
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let app = spawn_app().await;
    let cookie = app.signed_in("peggy").await;
    let host = format!("127.0.0.1:{}", app.port);

    let forged_logout = app
        .client
        .delete(app.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_problem(forged_logout, 403).await;
    let forged_login = app
        .client
        .post(app.url("/api/v1/session"))
        .header("sec-fetch-site", "cross-site")
        .json(&serde_json::json!({"username": "peggy", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(forged_login, 403).await;
    assert_eq!(
        app.get_session(&cookie).await.status(),
        200,
        "still logged in"
    );

    let same_origin = app
        .client
        .delete(app.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 204);
}
