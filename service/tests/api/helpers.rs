//! `spawn_app()`: the service on a free port with a fresh database, and what tests need to talk
//! to it.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use data_processor::configuration::{Cli, Config};
use data_processor::startup::Application;
use data_processor::state::AppState;
use data_processor::storage::SharedStore;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use testkit::postgres::TestDatabase;
use tokio::sync::oneshot;

pub use crate::memory_store::MemoryStore;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: AppState,
    pub client: reqwest::Client,
    pub store: Arc<MemoryStore>,
    stop: Option<oneshot::Sender<()>>,
    pub stopped: Option<tokio::task::JoinHandle<()>>,
    /// Kept alive for the app's lifetime (dropped after it).
    pub _db: Option<Arc<TestDatabase>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Starts graceful shutdown as a SIGTERM would.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/users"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /api/v1/users")
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.login_with_cookie(username, password, None).await
    }

    pub async fn login_with_cookie(
        &self,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/api/v1/session"))
            .json(&json!({"username": username, "password": password}));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("POST /api/v1/session")
    }

    /// A login as if from `client` behind one trusted proxy (which appended `client` to
    /// `X-Forwarded-For`); the app must run with `--trusted-proxy-hops 1`.
    pub async fn login_from(
        &self,
        client: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/session"))
            .header("x-forwarded-for", format!("192.0.2.250, {client}"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("POST /api/v1/session")
    }

    pub async fn register_from(&self, client: &str, username: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/users"))
            .header("x-forwarded-for", client)
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("POST /api/v1/users")
    }

    /// Registers `username` and logs in; returns the `name=value` cookie.
    pub async fn signed_in(&self, username: &str) -> String {
        let registered = self.register(username, PASSWORD).await;
        assert_eq!(registered.status(), 201, "register {username}");
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), 200, "login {username}");
        session_cookie(response.headers()).expect("a session cookie at login")
    }

    pub async fn get_session(&self, cookie: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/v1/session"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("GET /api/v1/session")
    }

    /// `GET path` with the session `cookie`.
    pub async fn get_as(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `DELETE path` with the session `cookie`.
    pub async fn delete_as(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    /// `POST path` with a JSON `body` and the session `cookie`.
    pub async fn post_json_as(&self, cookie: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("cookie", cookie)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = &self.stopped {
            task.abort();
        }
    }
}

/// The `name=value` part of the session cookie a response sets, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    set_cookie_line(headers).map(|line| {
        line.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

/// The full Set-Cookie line of the session cookie.
pub fn set_cookie_line(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(data_processor::sessions::COOKIE_NAME))
        .map(str::to_string)
}

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A configuration as the binary would parse it from `args`, listening on a free port, quiet.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec![
        "data-processor",
        "--listen-addr",
        "127.0.0.1:0",
        "--session-cookie-secure",
        "false",
        "--log-format",
        "text",
        "--log-filter",
        "warn",
        // Every test client is 127.0.0.1: the per-address limits would throttle the suite itself.
        // Tests of the limits set their own values (later flags win).
        "--auth-rate-limit-per-minute",
        "1000000",
        "--auth-rate-limit-burst",
        "1000000",
    ];
    argv.extend_from_slice(args);
    // clap also reads the environment; these tests set their values by flag, which wins.
    Cli::try_parse_from(argv)
        .expect("test configuration parses")
        .config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A fresh database and the app with extra `args`.
pub async fn spawn_app_with(args: &[&str]) -> TestApp {
    let db = Arc::new(TestDatabase::create().await);
    let mut app = spawn_app_on(&db.url, args).await;
    app._db = Some(db);
    app
}

/// The app on an existing database (several apps may share one).
pub async fn spawn_app_on(database_url: &str, args: &[&str]) -> TestApp {
    let mut all = vec!["--database-url", database_url];
    all.extend_from_slice(args);
    spawn_app_with_config(config(&all), Arc::new(MemoryStore::default())).await
}

pub async fn spawn_app_with_config(config: Config, store: Arc<MemoryStore>) -> TestApp {
    spawn(config, store.clone() as SharedStore, store).await
}

/// The app on a real store (S3 or a local folder); `TestApp::store` is then an unused stand-in.
pub async fn spawn_app_with_store(config: Config, store: SharedStore) -> TestApp {
    spawn(config, store, Arc::new(MemoryStore::default())).await
}

async fn spawn(config: Config, shared: SharedStore, store: Arc<MemoryStore>) -> TestApp {
    init_test_logs();
    let app = Application::build_with_store(config, shared)
        .await
        .expect("the app builds");
    let port = app.port();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        state,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        store,
        stop: Some(stop),
        stopped: Some(task),
        _db: None,
    }
}

/// Logs go through the test harness's capture (shown for failing tests); `TEST_LOG` sets the
/// filter (default `warn`).
fn init_test_logs() {
    let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Asserts a problem+json body with `status` and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body = json(response).await;
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["type"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

pub const WAIT: Duration = Duration::from_secs(20);
