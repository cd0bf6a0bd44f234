//! The request log: one JSON line per request with method, route, status, latency, request id
//! and the user id once known, and no secrets. Its own test binary, because it installs the
//! process-wide log subscriber.

use std::sync::Arc;

use data_processor::configuration::LogFormat;
use data_processor::startup::Application;
use serde_json::{Value, json};
use testkit::postgres::TestDatabase;

#[path = "support/captured_logs.rs"]
mod captured_logs;

use captured_logs::{Captured, config_on};

mod memory_store {
    include!("api/memory_store.rs");
}

#[tokio::test]
async fn one_json_line_per_request_with_user_and_request_id_and_no_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    data_processor::telemetry::install(LogFormat::Json, "info", move || writer.clone());

    let db = TestDatabase::create().await;
    let config = config_on(&db.url);
    let app = Application::build_with_store(config, Arc::new(memory_store::MemoryStore::default()))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let secret = "a very secret password";

    let registered = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"username": "logged-user", "password": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login = client
        .post(format!("{base}/api/v1/session"))
        .header("x-request-id", "login-req-1")
        .json(&json!({"username": "logged-user", "password": secret}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let session_id = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let user_id = login.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = client
        .get(format!("{base}/api/v1/session"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me_request_id = me.headers()["x-request-id"].to_str().unwrap().to_string();
    server.abort();

    let lines = captured.lines();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 3, "one line per request: {requests:#?}");
    for line in &requests {
        for field in ["method", "route", "request_id"] {
            assert!(line["span"][field].is_string(), "{field} missing in {line}");
        }
        assert!(line["status"].is_number(), "{line}");
        assert!(line["latency_ms"].is_number(), "{line}");
    }
    let login_line = requests
        .iter()
        .find(|l| l["span"]["request_id"] == "login-req-1")
        .expect("the login line carries the client's request id");
    assert_eq!(login_line["span"]["route"], "/api/v1/session");
    assert_eq!(login_line["span"]["method"], "POST");
    assert_eq!(login_line["span"]["user_id"], user_id.as_str());
    let me_line = requests
        .iter()
        .find(|l| l["span"]["request_id"] == me_request_id.as_str())
        .expect("the session read line");
    assert_eq!(me_line["span"]["user_id"], user_id.as_str());
    assert_eq!(me_line["status"], 200);

    let everything = captured.text();
    assert!(
        !everything.contains(secret),
        "a password leaked into the logs"
    );
    assert!(
        !everything.contains(&session_id),
        "a session id leaked into the logs"
    );
}
