//! A read served by the storage fallback is logged as one WARN line carrying the request id (in
//! the JSON logs, which show the fields of the current span only). Its own test binary, because
//! it installs the process-wide log subscriber. At RUST_LOG=warn, where the request span itself
//! is off.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use data_processor::configuration::LogFormat;
use data_processor::startup::Application;
use data_processor::storage::{FallbackStore, ObjectStore};
use futures::StreamExt;
use serde_json::{Value, json};
use testkit::postgres::TestDatabase;

#[path = "support/captured_logs.rs"]
mod captured_logs;

use captured_logs::{Captured, config_on};

mod memory_store {
    include!("api/memory_store.rs");
}

use memory_store::MemoryStore;

#[tokio::test]
async fn a_fallback_read_is_one_warning_with_the_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    data_processor::telemetry::install(LogFormat::Json, "warn", move || writer.clone());

    let db = TestDatabase::create().await;
    let config = config_on(&db.url);
    let primary = Arc::new(MemoryStore::default());
    let replica = Arc::new(MemoryStore::default());
    let store = Arc::new(FallbackStore::new(primary.clone(), replica.clone()));
    let app = Application::build_with_store(config, store).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    let password = "a very secret password";
    let registered = client
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"username": "fallback-logged", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "fallback-logged", "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let file: Value = client
        .post(format!("{base}/api/v1/files?name=a.txt"))
        .header("cookie", &cookie)
        .header("content-type", "text/plain")
        .body("replicated bytes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Replication, by hand.
    for key in primary.keys() {
        let mut body = primary.get(&key, None).await.unwrap().body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        replica
            .put_bytes(&key, "text/plain", bytes.into())
            .await
            .unwrap();
    }

    primary.fail.store(true, Ordering::Relaxed);
    let download = client
        .get(format!(
            "{base}/api/v1/files/{}/content",
            file["id"].as_str().unwrap()
        ))
        .header("cookie", &cookie)
        .header("x-request-id", "fallback-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.unwrap(), "replicated bytes");
    server.abort();

    let lines = captured.lines();
    let fallback: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("served from the replica"))
        })
        .collect();
    assert_eq!(fallback.len(), 1, "one line per fallback read: {lines:#?}");
    let line = fallback[0];
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["span"]["request_id"], "fallback-req-1", "{line}");
    assert!(
        line["key"]
            .as_str()
            .unwrap()
            .ends_with(file["id"].as_str().unwrap()),
        "{line}"
    );
    assert!(line["primary_error"].is_string(), "{line}");
    let everything = captured.text();
    assert!(
        !everything.contains(password),
        "a password leaked into the logs"
    );
}
