//! A regional S3 outage with `STORAGE_FALLBACK_URL`: one moto, two buckets. The primary is
//! reached through a HAProxy TCP gate (closed = connections refused, while moto keeps the
//! objects); the replica directly. moto does not replicate: the test copies what the replica has.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_s3::config::{Credentials, Region};
use data_processor::storage::{self, FALLBACK_READS_METRIC, FallbackStore, SharedStore};
use serde_json::Value;
use testkit::haproxy::HaProxy;
use testkit::moto::MotoServer;
use testkit::postgres::TestDatabase;
use testkit::wait_until;

use crate::helpers::{TestApp, WAIT, assert_problem, config, json, spawn_app_with_store};

async fn sdk_config(endpoint: String) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

async fn upload(app: &TestApp, cookie: &str, name: &str, body: &'static str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/files"))
        .query(&[("name", name)])
        .header("cookie", cookie)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .expect("POST /api/v1/files")
}

async fn get_range(app: &TestApp, cookie: &str, path: &str, range: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", cookie)
        .header("range", range)
        .send()
        .await
        .expect("GET with Range")
}

/// `storage_fallback_reads_total{outcome="..."}` from `/metrics` (0 when not counted yet).
async fn fallback_reads(app: &TestApp, outcome: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let series = format!("{FALLBACK_READS_METRIC}{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().expect("a counter value"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn reads_fall_back_to_the_replica_while_the_primary_is_down_and_writes_answer_503() {
    let moto = MotoServer::start().await;
    let primary_bucket = moto.create_bucket().await;
    let replica_bucket = moto.create_bucket().await;
    let gate = HaProxy::tcp_forward(moto.port).await;
    let db = TestDatabase::create().await;
    let primary_url = format!("s3://{primary_bucket}");
    let replica_url = format!("s3://{replica_bucket}");
    let config = config(&[
        "--database-url",
        db.url.as_str(),
        "--storage-url",
        primary_url.as_str(),
        "--storage-fallback-url",
        replica_url.as_str(),
    ]);
    config.validate().expect("a valid configuration");
    let direct = sdk_config(moto.endpoint()).await;
    // What production builds from the same settings: the primary wrapped with its replica.
    let wired = storage::connect_with_sdk_config(&config.storage_settings(), &direct)
        .await
        .expect("connect");
    assert!(
        wired
            .describe()
            .contains(&format!("reads fall back to s3://{replica_bucket}")),
        "{}",
        wired.describe()
    );
    // Here the primary goes through the gate, the replica does not.
    let mut primary_settings = config.storage_settings();
    primary_settings.fallback = None;
    let primary =
        storage::connect_with_sdk_config(&primary_settings, &sdk_config(gate.url()).await)
            .await
            .expect("connect to the primary");
    let replica = storage::connect_with_sdk_config(
        &storage::StorageSettings::new(replica_url.as_str()),
        &direct,
    )
    .await
    .expect("connect to the replica");
    let store: SharedStore = Arc::new(FallbackStore::new(primary, replica));
    let app = spawn_app_with_store(config, store).await;
    let s3 = aws_sdk_s3::Client::new(&direct);

    let cookie = app.signed_in("fallback-user").await;
    let replicated = upload(&app, &cookie, "replicated.txt", "0123456789abcdef").await;
    assert_eq!(replicated.status(), 201);
    let replicated = json(replicated).await;
    let fresh = upload(&app, &cookie, "fresh.txt", "not replicated yet").await;
    assert_eq!(fresh.status(), 201);
    let fresh = json(fresh).await;
    let content = |file: &Value| format!("/api/v1/files/{}/content", file["id"].as_str().unwrap());
    let (replicated_content, fresh_content) = (content(&replicated), content(&fresh));

    // Replication, done by hand: only the first file has reached the replica.
    let primary_keys = keys(&s3, &primary_bucket).await;
    assert_eq!(primary_keys.len(), 2, "{primary_keys:?}");
    let replicated_key = primary_keys
        .iter()
        .find(|k| k.ends_with(replicated["id"].as_str().unwrap()))
        .expect("the replicated file's key")
        .clone();
    s3.copy_object()
        .copy_source(format!("{primary_bucket}/{replicated_key}"))
        .bucket(&replica_bucket)
        .key(&replicated_key)
        .send()
        .await
        .expect("copy into the replica");
    let served_before = fallback_reads(&app, "served").await;
    let missing_before = fallback_reads(&app, "missing").await;

    gate.close().await;

    // Downloads keep working, from the replica: whole and ranged.
    let whole = tokio::time::timeout(WAIT, app.get_as(&cookie, &replicated_content))
        .await
        .expect("the download answers while the primary is down");
    assert_eq!(whole.status(), 200);
    assert_eq!(header(&whole, "content-length"), "16");
    assert_eq!(whole.text().await.unwrap(), "0123456789abcdef");
    let part = get_range(&app, &cookie, &replicated_content, "bytes=2-5").await;
    assert_eq!(part.status(), 206);
    assert_eq!(header(&part, "content-range"), "bytes 2-5/16");
    assert_eq!(part.text().await.unwrap(), "2345");
    assert_eq!(
        fallback_reads(&app, "served").await,
        served_before + 2,
        "each fallback read is counted"
    );

    // A file the replica does not have yet: 503 + Retry-After, a transient state.
    let not_yet = app.get_as(&cookie, &fresh_content).await;
    assert_eq!(header(&not_yet, "retry-after"), "30");
    let problem = assert_problem(not_yet, 503).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("replica"), "{problem}");
    assert!(!detail.contains("127.0.0.1"), "no internals in {problem}");
    assert_eq!(fallback_reads(&app, "missing").await, missing_before + 1);

    // Writes never go to the replica: an upload and a delete answer 503, leaving nothing behind.
    let refused = upload(&app, &cookie, "during.txt", "during the outage").await;
    assert_problem(refused, 503).await;
    let refused = app
        .delete_as(&cookie, &replicated_content.replace("/content", ""))
        .await;
    assert_problem(refused, 503).await;
    let listing = json(app.get_as(&cookie, "/api/v1/files").await).await;
    assert_eq!(
        listing["files"].as_array().map(Vec::len),
        Some(2),
        "no row for the refused upload, the refused delete kept its row: {listing}"
    );
    assert_eq!(
        keys(&s3, &replica_bucket).await,
        vec![replicated_key.clone()],
        "nothing was written to the replica"
    );

    // Ready, degraded: reads work on every replica.
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready = json(ready).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_ne!(ready["checks"]["storage"], "ok", "{ready}");
    assert_eq!(ready["checks"]["storage_fallback"], "ok", "{ready}");

    gate.open().await;

    // The primary again: the fresh file reads, and the replica is not asked any more (its
    // copy is gone, yet the replicated file still reads).
    s3.delete_object()
        .bucket(&replica_bucket)
        .key(&replicated_key)
        .send()
        .await
        .expect("delete the replica's copy");
    wait_until("reads to go to the primary again", WAIT, || async {
        (app.get_as(&cookie, &fresh_content).await.status() == 200).then_some(())
    })
    .await;
    let served_after = fallback_reads(&app, "served").await;
    let whole = app.get_as(&cookie, &replicated_content).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.text().await.unwrap(), "0123456789abcdef");
    assert_eq!(fallback_reads(&app, "served").await, served_after);
    assert_eq!(
        upload(&app, &cookie, "after.txt", "after").await.status(),
        201
    );
    let ready = json(app.get("/readyz").await).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(keys(&s3, &primary_bucket).await.len(), 3);
    drop(app);
    drop(db);
}

/// With both the primary and the replica unreachable, a read is a plain 503 and `/readyz`
/// is 503 naming storage.
#[tokio::test]
async fn primary_and_replica_both_down_is_503_and_not_ready() {
    let moto = MotoServer::start().await;
    let primary_bucket = moto.create_bucket().await;
    let replica_bucket = moto.create_bucket().await;
    let primary_gate = HaProxy::tcp_forward(moto.port).await;
    let replica_gate = HaProxy::tcp_forward(moto.port).await;
    let db = TestDatabase::create().await;
    let primary_url = format!("s3://{primary_bucket}");
    let replica_url = format!("s3://{replica_bucket}");
    let config = config(&[
        "--database-url",
        db.url.as_str(),
        "--storage-url",
        primary_url.as_str(),
        "--storage-fallback-url",
        replica_url.as_str(),
    ]);
    let primary = storage::connect_with_sdk_config(
        &storage::StorageSettings::new(primary_url.as_str()),
        &sdk_config(primary_gate.url()).await,
    )
    .await
    .expect("connect to the primary");
    let replica = storage::connect_with_sdk_config(
        &storage::StorageSettings::new(replica_url.as_str()),
        &sdk_config(replica_gate.url()).await,
    )
    .await
    .expect("connect to the replica");
    let app = spawn_app_with_store(config, Arc::new(FallbackStore::new(primary, replica))).await;
    let cookie = app.signed_in("both-down-user").await;
    let file = json(upload(&app, &cookie, "a.txt", "abc").await).await;
    let content = format!("/api/v1/files/{}/content", file["id"].as_str().unwrap());

    primary_gate.close().await;
    replica_gate.close().await;

    let download = tokio::time::timeout(WAIT, app.get_as(&cookie, &content))
        .await
        .expect("the download answers");
    let problem = assert_problem(download, 503).await;
    assert!(
        !problem["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{problem}"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let ready = json(ready).await;
    assert_ne!(ready["checks"]["storage"], "ok", "{ready}");
    assert_ne!(ready["checks"]["storage_fallback"], "ok", "{ready}");
    drop(app);
    drop(db);
}
