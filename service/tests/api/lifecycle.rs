//! Start-up, configuration errors, migrations, embedded mode and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use testkit::postgres::{PrivatePostgres, TestDatabase};
use testkit::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    PASSWORD, WAIT, config, json, session_cookie, spawn_app_on, spawn_app_with,
    spawn_app_with_config,
};

const BINARY: &str = env!("CARGO_BIN_EXE_data-processor");

fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run the binary")
}

#[test]
fn invalid_configuration_exits_2_with_one_line_naming_the_variable() {
    for (variable, value) in [
        ("LISTEN_ADDR", "not-an-address"),
        ("DATABASE_URL", "mysql://somewhere/db"),
        ("DATABASE_URL", "postgres://user@host:notaport/db"),
        ("SESSION_IDLE_TIMEOUT", "soon"),
        ("S3_PART_SIZE", "1024"),
        ("SESSION_COOKIE_SECURE", "maybe"),
        // The embedded default is SQLite: a password has nothing to apply to.
        ("DATABASE_PASSWORD", "secret"),
        // STORAGE_URL is the default local folder: a replica bucket makes no sense there.
        ("STORAGE_FALLBACK_URL", "s3://replica-bucket"),
    ] {
        let out = run_binary(&[], &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{variable}: {stderr}");
        assert!(
            stderr.contains(variable),
            "{variable} not named in: {stderr}"
        );
    }
}

/// The example deployment gives the password apart from the URL (RDS's managed secret as
/// DATABASE_PASSWORD, a URL secret without one). Against a server that checks passwords: the
/// service is ready with it, and refuses to start with a wrong one, naming the cause.
#[tokio::test]
async fn the_database_password_can_be_given_apart_from_the_url() {
    let pg = PrivatePostgres::start_with_password("from-rds-managed-secret").await;
    let url = pg.admin_url();
    assert!(
        !url.contains("from-rds"),
        "the URL carries no password: {url}"
    );

    let app = spawn_app_on(&url, &["--database-password", "from-rds-managed-secret"]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    let wrong = config(&["--database-url", &url, "--database-password", "stale"]);
    let error = match data_processor::startup::Application::build(wrong).await {
        Ok(_) => panic!("started with a wrong database password"),
        Err(e) => data_processor::report::report(&e),
    };
    assert!(
        error.contains("password authentication failed"),
        "the cause is not named: {error}"
    );
    assert!(!error.contains("stale"), "the password leaked: {error}");
}

#[test]
fn help_lists_every_setting() {
    let out = run_binary(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for variable in [
        "LISTEN_ADDR",
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "DATABASE_MAX_CONNECTIONS",
        "DATABASE_ACQUIRE_TIMEOUT",
        "DATABASE_STATEMENT_TIMEOUT",
        "DATABASE_STARTUP_TIMEOUT",
        "STORAGE_URL",
        "STORAGE_FALLBACK_URL",
        "STORAGE_FALLBACK_REGION",
        "S3_FORCE_PATH_STYLE",
        "S3_CHECKSUM_WHEN_REQUIRED",
        "S3_PART_SIZE",
        "UPLOAD_MAX_BYTES",
        "SESSION_IDLE_TIMEOUT",
        "SESSION_ABSOLUTE_TIMEOUT",
        "SESSION_COOKIE_SECURE",
        "SESSION_CLEANUP_INTERVAL",
        "LOGIN_MAX_FAILURES",
        "LOGIN_FAILURE_WINDOW",
        "READINESS_TIMEOUT",
        "SHUTDOWN_DRAIN_DELAY",
        "SHUTDOWN_TIMEOUT",
        "HTTP_KEEPALIVE_TIMEOUT",
        "LOGIN_USER_SLOWDOWN_AFTER",
        "PASSWORD_HASH_CONCURRENCY",
        "PASSWORD_HASH_QUEUE_TIMEOUT",
        "AUTH_RATE_LIMIT_PER_MINUTE",
        "AUTH_RATE_LIMIT_BURST",
        "TRUSTED_PROXY_HOPS",
        "UPLOAD_MAX_CONCURRENT",
        "UPLOAD_IDLE_TIMEOUT",
        "REQUEST_TIMEOUT",
        "HTTP2_KEEPALIVE_INTERVAL",
        "HTTP2_MAX_CONCURRENT_STREAMS",
        "REPLICA_ID",
        "LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}

/// The example deploy config sets only variables the service reads: a misspelt or invented
/// name would be silently ignored in production.
#[test]
fn the_example_deploy_config_sets_only_variables_the_service_reads() {
    use clap::CommandFactory;
    let known: Vec<String> = data_processor::configuration::Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/deployer.toml");
    let text = std::fs::read_to_string(path).expect("deploy/deployer.toml");
    let config: toml::Table = text.parse().expect("deploy/deployer.toml parses");
    let mut tasks = vec![config.get("task")];
    if let Some(envs) = config.get("env").and_then(|e| e.as_table()) {
        tasks.extend(envs.values().map(|env| env.get("task")));
    }
    let mut checked = 0;
    for task in tasks.into_iter().flatten() {
        for section in ["environment", "secrets"] {
            for name in task
                .get(section)
                .and_then(|s| s.as_table())
                .into_iter()
                .flat_map(|t| t.keys())
            {
                assert!(
                    known.contains(name),
                    "deploy/deployer.toml sets task.{section}.{name}, which the service does not read"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "the example sets its variables under [task.environment]/[task.secrets]"
    );
}

#[tokio::test]
async fn the_migrate_subcommand_applies_migrations_and_exits() {
    let db = TestDatabase::create().await;
    let out = run_binary(
        &["migrate"],
        &[("DATABASE_URL", &db.url), ("LOG_FORMAT", "text")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_name IN ('users', 'sessions', 'login_throttle')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 3);
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_and_all_start() {
    let db = TestDatabase::create().await;
    let (a, b, c) = tokio::join!(
        spawn_app_on(&db.url, &[]),
        spawn_app_on(&db.url, &[]),
        spawn_app_on(&db.url, &[]),
    );
    for app in [&a, &b, &c] {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
}

#[tokio::test]
async fn embedded_sqlite_mode_serves_the_same_account_flows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/data-processor.db", dir.path().display());
    let app = spawn_app_with_config(
        config(&["--database-url", &url, "--login-max-failures", "2"]),
        Default::default(),
    )
    .await;
    assert!(app.state.config.is_embedded());
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.register("Quinn", PASSWORD).await.status(), 201);
    assert_eq!(app.register("quinn", PASSWORD).await.status(), 409);
    let login = app.login("quinn", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let cookie = session_cookie(login.headers()).unwrap();
    assert_eq!(
        json(app.get_session(&cookie).await).await["user"]["username"],
        "Quinn"
    );
    let logout = app.delete_as(&cookie, "/api/v1/session").await;
    assert_eq!(logout.status(), 204);
    assert_eq!(app.get_session(&cookie).await.status(), 401);
    for _ in 0..2 {
        assert_eq!(app.login("quinn", "wrong password!").await.status(), 401);
    }
    assert_eq!(app.login("quinn", PASSWORD).await.status(), 429);
}

/// A registration whose body the test holds open over a raw connection: a request in flight for
/// as long as the test likes. The headers and the first half of the body are written at once.
struct HeldRequest {
    stream: tokio::net::TcpStream,
    rest: String,
}

async fn hold_a_request(port: u16, username: &str) -> HeldRequest {
    let body = format!("{{\"username\":\"{username}\",\"password\":\"{PASSWORD}\"}}");
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/users HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    HeldRequest {
        stream,
        rest: rest.to_string(),
    }
}

impl HeldRequest {
    /// Sends the rest of the body and returns the response's status code.
    async fn finish(mut self) -> u16 {
        self.stream
            .write_all(self.rest.as_bytes())
            .await
            .expect("write the rest");
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = self.stream.read(&mut buf).await.expect("read the response");
            assert!(n > 0, "the connection closed before a response");
            response.extend_from_slice(&buf[..n]);
        }
        let status_line = String::from_utf8_lossy(&response);
        status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code")
    }
}

#[tokio::test]
async fn shutdown_drains_and_in_flight_requests_finish() {
    let mut app =
        spawn_app_with(&["--shutdown-drain-delay", "2s", "--shutdown-timeout", "20s"]).await;
    let held = hold_a_request(app.port, "draining-user").await;

    app.signal_stop();
    wait_until("/readyz to answer 503", WAIT, || async {
        (app.get("/readyz").await.status() == 503).then_some(())
    })
    .await;
    let during_drain = app.get("/healthz").await;
    assert_eq!(during_drain.status(), 200, "still serving while draining");
    assert_eq!(
        during_drain
            .headers()
            .get("connection")
            .map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "keep-alive clients are told to reconnect elsewhere"
    );
    let client = app.client.clone();
    let health = app.url("/healthz");
    wait_until("the listener to close", WAIT, || async {
        client.get(&health).send().await.is_err().then_some(())
    })
    .await;

    assert_eq!(held.finish().await, 201, "the in-flight request completes");

    let stopped = app.stopped.take().unwrap();
    tokio::time::timeout(WAIT, stopped)
        .await
        .expect("the server stops once drained")
        .unwrap();
}

#[tokio::test]
async fn shutdown_aborts_what_is_still_running_at_the_deadline() {
    let mut app = spawn_app_with(&[
        "--shutdown-drain-delay",
        "100ms",
        "--shutdown-timeout",
        "1s",
    ])
    .await;
    let _held = hold_a_request(app.port, "never-finishes").await;
    app.signal_stop();
    let stopped = app.stopped.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the server stops by its deadline")
        .unwrap();
}

/// The real binary on SIGTERM: /readyz 503 while draining, the in-flight request completes,
/// exit code 0.
#[tokio::test]
async fn sigterm_drains_the_real_binary_and_exits_0() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("service.log");
    let mut command = Command::new(BINARY);
    command
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("STORAGE_URL", dir.path().join("files"))
        .env("SHUTDOWN_DRAIN_DELAY", "2s")
        .env("SHUTDOWN_TIMEOUT", "20s");
    let mut child = testkit::process::ChildGuard::spawn("data-processor", &mut command, &log);
    testkit::wait_for_http(&format!("{address}/healthz"), WAIT).await;

    let held = hold_a_request(port, "sigterm-user").await;
    let client = reqwest::Client::new();

    child.signal(libc::SIGTERM);
    wait_until("/readyz to answer 503", WAIT, || async {
        let r = client.get(format!("{address}/readyz")).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    assert_eq!(held.finish().await, 201, "the in-flight request completes");
    let code = wait_until("the process to exit", WAIT, || {
        let exited = child.try_wait();
        async move { exited }
    })
    .await;
    assert_eq!(
        code,
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let logs = std::fs::read_to_string(&log).unwrap();
    let request_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "request" && l["span"]["route"] == "/api/v1/users")
        .expect("a JSON request line");
    assert_eq!(request_line["status"], 201);
    assert!(request_line["latency_ms"].is_number());
    assert!(request_line["span"]["request_id"].is_string());
}

#[tokio::test]
async fn the_healthcheck_subcommand_exits_0_when_healthz_answers_else_1() {
    let app = crate::helpers::spawn_app().await;
    let healthy = tokio::task::spawn_blocking({
        let addr = format!("0.0.0.0:{}", app.port);
        move || run_binary(&["healthcheck"], &[("LISTEN_ADDR", &addr)])
    })
    .await
    .unwrap();
    assert_eq!(healthy.status.code(), Some(0));

    let nothing_there = format!("0.0.0.0:{}", testkit::free_port());
    let down = tokio::task::spawn_blocking(move || {
        run_binary(&["healthcheck"], &[("LISTEN_ADDR", &nothing_there)])
    })
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&down.stderr).trim().lines().count(),
        1
    );
}

/// The README's first command: no configuration at all gives SQLite and a local folder under
/// ./data, a warning that this is single-node, and the account flows work.
#[tokio::test]
async fn the_binary_runs_embedded_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("service.log");
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The only setting: a free port instead of 8080, so tests run in parallel.
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let _child = testkit::process::ChildGuard::spawn("data-processor", &mut command, &log);
    wait_until("the embedded service to be ready", WAIT, || async {
        let r = reqwest::get(format!("{address}/readyz")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;

    let client = reqwest::Client::new();
    let body = serde_json::json!({"username": "embedded", "password": PASSWORD});
    let created = client
        .post(format!("{address}/api/v1/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let login = client
        .post(format!("{address}/api/v1/session"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = session_cookie(login.headers()).unwrap();
    let me = client
        .get(format!("{address}/api/v1/session"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    assert!(dir.path().join("data/data-processor.db").exists());
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.lines()
            .any(|l| l.contains("WARN") && l.contains("single")),
        "no single-node warning in: {logs}"
    );
}

/// An idle keep-alive connection stays open until HTTP_KEEPALIVE_TIMEOUT (default 75 s, above the
/// ALB's 60 s), then the server closes it. Here with 1 s, to see both halves.
#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_configured_timeout() {
    let app = spawn_app_with(&["--http-keepalive-timeout", "1s"]).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_since = std::time::Instant::now();
    let closed = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the server closes the idle connection");
    assert_eq!(closed.unwrap_or(0), 0, "EOF, not more data");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the timeout",
        idle_since.elapsed()
    );
}
