//! The session cache across replicas: a logout on one replica is refused on every other within
//! milliseconds (the change feed evicts), and a replica whose change feed is down serves no
//! session from memory. Also: an idle replica starts a queued job at once (the feed wakes it).
//!
//! Its own test binary, and its tests one at a time (`SERIAL`): they measure latencies of a few
//! milliseconds, which the rest of the suite's password hashing would otherwise compete with.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use testkit::postgres::TestDatabase;

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "api/memory_store.rs"]
mod memory_store;

use helpers::{PASSWORD, TestApp, WAIT, session_cookie, spawn_app_on, unique_name};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TRIALS: usize = 200;
/// The bound on the 99th percentile (issue 13); the slowest trial may take up to `WORST`, as a
/// notification competes for the CPU with the rest of the suite on a 2-core CI machine.
const REFUSED_WITHIN: Duration = Duration::from_millis(50);
const WORST: Duration = Duration::from_millis(250);

async fn two_replicas(db: &TestDatabase, extra: &[&str]) -> (TestApp, TestApp) {
    let mut a_args = vec!["--replica-id", "a"];
    a_args.extend_from_slice(extra);
    let mut b_args = vec!["--replica-id", "b"];
    b_args.extend_from_slice(extra);
    let (a, b) = tokio::join!(
        spawn_app_on(&db.url, &a_args),
        spawn_app_on(&db.url, &b_args)
    );
    for app in [&a, &b] {
        wait_for_feed(app).await;
    }
    (a, b)
}

/// Waits until `app`'s session cache is in use (`live`: its change feed listens) or suspended.
async fn wait_for_cache(app: &TestApp, live: bool) {
    let cache = app
        .state
        .session_cache
        .clone()
        .expect("the cache is on by default");
    let what = if live {
        "the change feed to listen"
    } else {
        "the session cache to be suspended"
    };
    testkit::wait_until(what, WAIT, || {
        let now = cache.is_live();
        async move { (now == live).then_some(()) }
    })
    .await;
}

async fn wait_for_feed(app: &TestApp) {
    wait_for_cache(app, true).await;
}

async fn wait_until_suspended(app: &TestApp) {
    wait_for_cache(app, false).await;
}

async fn log_in(app: &TestApp, username: &str) -> String {
    let response = app.login(username, PASSWORD).await;
    assert_eq!(response.status(), 200, "login");
    session_cookie(response.headers()).expect("a session cookie")
}

/// Reads the session on `app` until it is cached there (a second read is a hit).
async fn cached_on(app: &TestApp, cookie: &str) {
    let cache = app.state.session_cache.clone().expect("the cache is on");
    let before = cache.len();
    assert_eq!(app.get_session(cookie).await.status(), 200);
    assert_eq!(cache.len(), before + 1, "the read filled the cache");
    assert_eq!(app.get_session(cookie).await.status(), 200);
}

/// How long after the logout returned `app` went on accepting `cookie`, and how many reads it
/// still answered 200 meanwhile.
async fn time_to_refusal(app: &TestApp, cookie: &str) -> (Duration, usize) {
    let since = Instant::now();
    let mut served = 0;
    loop {
        match app.get_session(cookie).await.status().as_u16() {
            401 => return (since.elapsed(), served),
            200 => served += 1,
            other => panic!("GET /api/v1/session answered {other}"),
        }
        assert!(
            since.elapsed() < WAIT,
            "the session is still served after {WAIT:?}"
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Logs in on `a`, caches the session on `b`, logs out on `a`: how long `b` kept accepting it.
async fn logout_trials(a: &TestApp, b: &TestApp, username: &str, trials: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(trials);
    for _ in 0..trials {
        let cookie = log_in(a, username).await;
        cached_on(b, &cookie).await;
        assert_eq!(a.delete_as(&cookie, "/api/v1/session").await.status(), 204);
        let (elapsed, _) = time_to_refusal(b, &cookie).await;
        times.push(elapsed);
    }
    times.sort();
    times
}

fn report_and_check(what: &str, times: &[Duration]) {
    let (p50, p99, max) = (
        percentile(times, 0.5),
        percentile(times, 0.99),
        times[times.len() - 1],
    );
    eprintln!(
        "{what}: refused after p50 {p50:?}, p99 {p99:?}, max {max:?} over {} trials",
        times.len()
    );
    assert!(
        p99 < REFUSED_WITHIN && max < WORST,
        "{what}: a logged-out session was still served {max:?} later (p50 {p50:?}, p99 {p99:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_replica_is_refused_on_another_within_50ms() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let (a, b) = two_replicas(&db, &[]).await;
    let username = unique_name("cache");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);

    let times = logout_trials(&a, &b, &username, TRIALS).await;
    report_and_check("logout on A, read on B", &times);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_logging_out_replicas_feed_killed_the_logout_still_reaches_the_others() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let (a, b) = two_replicas(&db, &[]).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let username = unique_name("cache");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);

    assert_eq!(
        kill_feed(&pool, "a").await,
        1,
        "A's feed connection was found"
    );
    wait_until_suspended(&a).await;
    let times = logout_trials(&a, &b, &username, TRIALS / 4).await;
    report_and_check("A's feed killed: logout on A, read on B", &times);
    // And A comes back to using its cache.
    wait_for_feed(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_feed_was_killed_never_serves_a_session_deleted_meanwhile() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let (a, b) = two_replicas(&db, &[]).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let username = unique_name("cache");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);

    for _ in 0..10 {
        let cookie = log_in(&a, &username).await;
        cached_on(&b, &cookie).await;
        assert_eq!(
            kill_feed(&pool, "b").await,
            1,
            "B's feed connection was found"
        );
        // B misses the notification of this logout: its cache must not answer for it.
        wait_until_suspended(&b).await;
        assert_eq!(a.delete_as(&cookie, "/api/v1/session").await.status(), 204);
        assert_eq!(
            b.get_session(&cookie).await.status(),
            401,
            "B served a deleted session while its feed was down"
        );
        wait_for_feed(&b).await;
        assert_eq!(
            b.get_session(&cookie).await.status(),
            401,
            "B served a deleted session after its feed came back"
        );
        // The cache works again after the reconnection.
        let cookie = log_in(&a, &username).await;
        cached_on(&b, &cookie).await;
        assert_eq!(a.delete_as(&cookie, "/api/v1/session").await.status(), 204);
        let (elapsed, _) = time_to_refusal(&b, &cookie).await;
        assert!(elapsed < WORST, "refused only after {elapsed:?}");
    }
}

#[tokio::test]
async fn a_cached_session_is_read_from_memory() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let (a, _b) = two_replicas(&db, &[]).await;
    let username = unique_name("cache");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);
    let cookie = log_in(&a, &username).await;
    cached_on(&a, &cookie).await;
    let cache = a.state.session_cache.clone().unwrap();
    let (hits, misses) = cache.hits_and_misses();
    for _ in 0..20 {
        assert_eq!(a.get_session(&cookie).await.status(), 200);
    }
    assert_eq!(cache.hits_and_misses(), (hits + 20, misses));
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let app = spawn_app_on(&db.url, &["--session-cache-capacity", "0"]).await;
    assert!(app.state.session_cache.is_none());
    let cookie = app.signed_in(&unique_name("nocache")).await;
    assert_eq!(app.get_session(&cookie).await.status(), 200);
    assert_eq!(
        app.delete_as(&cookie, "/api/v1/session").await.status(),
        204
    );
    assert_eq!(app.get_session(&cookie).await.status(), 401);
}

/// Terminates replica `replica`'s change feed connection; returns how many were terminated.
async fn kill_feed(pool: &PgPool, replica: &str) -> i64 {
    let name = format!(
        "{} {replica}",
        data_processor::change_feed::APPLICATION_NAME
    );
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()) AS killed",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_replica_starts_a_job_queued_elsewhere_within_100ms_p99() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    // A poll interval far longer than the bound: only the notification can explain a fast start.
    let app = spawn_app_on(
        &db.url,
        &["--job-poll-interval", "60s", "--job-workers", "2"],
    )
    .await;
    wait_for_feed(&app).await;
    let cookie = app.signed_in(&unique_name("wake")).await;
    let upload = app
        .client
        .post(app.url("/api/v1/files?name=w.csv"))
        .header("cookie", &cookie)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let file: serde_json::Value = upload.json().await.unwrap();
    let file_id = uuid::Uuid::parse_str(file["id"].as_str().unwrap()).unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();

    let mut delays = Vec::new();
    for _ in 0..50 {
        // Queued by "another replica": straight into the table, so this replica hears of it only
        // through the change feed.
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO jobs (id, user_id, file_id, kind, status, max_attempts, bytes_total, \
             created_at, updated_at) \
             SELECT $1, user_id, id, 'profile', 'queued', 1, size, clock_timestamp(), \
             clock_timestamp() FROM files WHERE id = $2",
        )
        .bind(id)
        .bind(file_id)
        .execute(&pool)
        .await
        .unwrap();
        let delay = testkit::wait_until("the job to finish", WAIT, || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, f64>(
                    "SELECT extract(epoch FROM started_at - created_at)::float8 FROM jobs \
                     WHERE id = $1 AND status IN ('succeeded', 'failed')",
                )
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
            }
        })
        .await;
        delays.push(Duration::from_secs_f64(delay.max(0.0)));
    }
    delays.sort();
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    eprintln!("job queued -> started: p50 {p50:?}, p99 {p99:?} over 50 jobs");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}, p50 {p50:?}");
}

#[tokio::test]
async fn in_embedded_sqlite_mode_the_cache_is_used_and_a_logout_evicts_at_once() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data-processor.db", dir.path().display());
    let app = helpers::spawn_app_with_config(
        helpers::config(&["--database-url", &url]),
        Default::default(),
    )
    .await;
    let cache = app.state.session_cache.clone().expect("the cache is on");
    assert!(
        cache.is_live(),
        "one process: coherent without a change feed"
    );
    let cookie = app.signed_in(&unique_name("embedded")).await;
    cached_on(&app, &cookie).await;
    let (hits, _) = cache.hits_and_misses();
    assert_eq!(app.get_session(&cookie).await.status(), 200);
    assert_eq!(cache.hits_and_misses().0, hits + 1);
    assert_eq!(
        app.delete_as(&cookie, "/api/v1/session").await.status(),
        204
    );
    assert_eq!(app.get_session(&cookie).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_deleted_in_sql_is_evicted_from_every_replica() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let (a, b) = two_replicas(&db, &[]).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let username = unique_name("operator");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);
    let cookie = log_in(&a, &username).await;
    cached_on(&a, &cookie).await;
    cached_on(&b, &cookie).await;
    // An operator ends every session by hand: no replica's code runs, the trigger notifies.
    sqlx::query("DELETE FROM sessions")
        .execute(&pool)
        .await
        .unwrap();
    for app in [&a, &b] {
        let (elapsed, _) = time_to_refusal(app, &cookie).await;
        assert!(elapsed < WORST, "refused only after {elapsed:?}");
    }
}

/// The server process behind replica `replica`'s change feed connection, if it has one.
async fn feed_backend(pool: &PgPool, replica: &str) -> Option<i32> {
    let name = format!(
        "{} {replica}",
        data_processor::change_feed::APPLICATION_NAME
    );
    sqlx::query_scalar::<_, i32>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// `url` with its host and port replaced by `addr`, and TLS off (so that the proxy can read the
/// startup message's `application_name`).
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "disable");
    url.to_string()
}

/// A partition that closes nothing: B's feed connection stays open but nothing crosses it, so no
/// error ever tells B. Its pings find it (one every 100 ms, each given 200 ms): B stops using its
/// cache, ends the silent connection's server side, and never serves a session deleted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_feed_goes_silent_stops_using_its_cache_within_its_ping_timeout() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let direct = reqwest::Url::parse(&db.url).unwrap();
    let upstream =
        tokio::net::lookup_host((direct.host_str().unwrap(), direct.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap();
    let proxy = testkit::partition::PartitionProxy::start(upstream).await;
    let partitioned_url = through(&db.url, proxy.addr());
    let (a, b) = tokio::join!(
        spawn_app_on(&db.url, &["--replica-id", "a"]),
        spawn_app_on(
            &partitioned_url,
            &["--replica-id", "b", "--change-feed-ping-interval", "100ms"]
        )
    );
    wait_for_feed(&a).await;
    wait_for_feed(&b).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let silent_backend = feed_backend(&pool, "b").await.expect("B's feed connection");
    let username = unique_name("cache");
    assert_eq!(a.register(&username, PASSWORD).await.status(), 201);
    let cookie = log_in(&a, &username).await;
    cached_on(&b, &cookie).await;

    let marker = format!("{} b", data_processor::change_feed::APPLICATION_NAME);
    proxy.freeze(marker.as_bytes());
    let since = Instant::now();
    wait_until_suspended(&b).await;
    let detected = since.elapsed();
    eprintln!("B's feed went silent: cache suspended after {detected:?}");
    assert!(
        detected < Duration::from_secs(2),
        "a silent feed (ping every 100 ms, timeout 200 ms) was found only after {detected:?}"
    );
    testkit::wait_until(
        "the silent feed's server backend to be terminated",
        WAIT,
        || {
            let pool = pool.clone();
            async move {
                let alive: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                )
                .bind(silent_backend)
                .fetch_one(&pool)
                .await
                .unwrap();
                (!alive).then_some(())
            }
        },
    )
    .await;

    // B cannot hear of this logout.
    assert_eq!(a.delete_as(&cookie, "/api/v1/session").await.status(), 204);
    assert_eq!(
        b.get_session(&cookie).await.status(),
        401,
        "B served a deleted session while its feed was partitioned"
    );

    proxy.thaw();
    wait_for_feed(&b).await;
    assert_eq!(
        b.get_session(&cookie).await.status(),
        401,
        "B served a deleted session after its feed came back"
    );
    let cookie = log_in(&a, &username).await;
    cached_on(&b, &cookie).await;
    assert_eq!(a.delete_as(&cookie, "/api/v1/session").await.status(), 204);
    let (elapsed, _) = time_to_refusal(&b, &cookie).await;
    assert!(elapsed < WORST, "refused only after {elapsed:?}");
}
