//! The files API end to end: the service in-process, a real PostgreSQL database, a real S3
//! (moto). What is left behind is read from the bucket and the table themselves.

use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use bytes::Bytes;
use data_processor::db::Pool;
use data_processor::startup::Application;
use data_processor::state::AppState;
use data_processor::storage::{self, ByteStream};
use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::moto::MotoServer;
use testkit::postgres::TestDatabase;

use crate::helpers::{PASSWORD, WAIT, assert_problem, config, json, session_cookie, unique_name};

const MIB: u64 = 1024 * 1024;

struct FilesApp {
    address: String,
    client: reqwest::Client,
    state: AppState,
    moto: MotoServer,
    s3: aws_sdk_s3::Client,
    bucket: String,
    server: tokio::task::JoinHandle<()>,
    _db: TestDatabase,
}

impl Drop for FilesApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The service on a fresh database and an empty moto bucket, with extra flags.
async fn spawn_files_app(args: &[&str]) -> FilesApp {
    let moto = MotoServer::start().await;
    let bucket = moto.create_bucket().await;
    let db = TestDatabase::create().await;
    let storage_url = format!("s3://{bucket}");
    let mut all = vec![
        "--database-url",
        db.url.as_str(),
        "--storage-url",
        storage_url.as_str(),
    ];
    all.extend_from_slice(args);
    let config = config(&all);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let store = storage::connect_with_sdk_config(&config.storage_settings(), &sdk)
        .await
        .expect("connect to moto");
    let app = Application::build_with_store(config, store)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    FilesApp {
        address,
        client: reqwest::Client::new(),
        state,
        s3: aws_sdk_s3::Client::new(&sdk),
        moto,
        bucket,
        server,
        _db: db,
    }
}

impl FilesApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Registers a new user and logs in: returns (user id, session cookie).
    async fn signed_in(&self) -> (String, String) {
        let username = unique_name("files");
        let registered = self
            .client
            .post(self.url("/api/v1/users"))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        assert_eq!(registered.status(), 201);
        let id = json(registered).await["id"].as_str().unwrap().to_owned();
        let login = self
            .client
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), 200);
        (id, session_cookie(login.headers()).expect("session cookie"))
    }

    async fn upload(
        &self,
        cookie: &str,
        name: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/files"))
            .query(&[("name", name)])
            .header("cookie", cookie)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /api/v1/files")
    }

    async fn get(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn delete(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"))
    }

    async fn objects(&self) -> Vec<String> {
        self.s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list objects")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    async fn open_uploads(&self) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list multipart uploads")
            .uploads()
            .len()
    }

    async fn file_rows(&self) -> i64 {
        let Pool::Postgres(pool) = &self.state.db.pool else {
            panic!("these tests run on Postgres")
        };
        sqlx::query_scalar("SELECT count(*) FROM files")
            .fetch_one(pool)
            .await
            .expect("count files")
    }

    async fn assert_nothing_left(&self) {
        assert_eq!(self.file_rows().await, 0, "file rows left behind");
        assert_eq!(
            self.objects().await,
            Vec::<String>::new(),
            "objects left behind"
        );
        assert_eq!(self.open_uploads().await, 0, "multipart uploads left open");
    }
}

/// `size` pseudo-random bytes from `seed`, generated as they are sent.
fn random_body(seed: u64, size: u64) -> ByteStream {
    const CHUNK: u64 = 64 * 1024 + 17;
    let rng = SmallRng::seed_from_u64(seed);
    futures::stream::unfold((rng, size), |(mut rng, left)| async move {
        if left == 0 {
            return None;
        }
        let mut chunk = vec![0u8; left.min(CHUNK) as usize];
        rng.fill_bytes(&mut chunk);
        Some((Ok(Bytes::from(chunk)), (rng, left - left.min(CHUNK))))
    })
    .boxed()
}

fn streamed(body: ByteStream) -> reqwest::Body {
    reqwest::Body::wrap_stream(body)
}

async fn sha256_of(mut body: ByteStream) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (size, hex::encode(hasher.finalize()))
}

async fn response_sha256(response: reqwest::Response) -> (u64, String) {
    sha256_of(
        response
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed(),
    )
    .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_100_mib_upload_round_trips_byte_exact() {
    let app = spawn_files_app(&[]).await;
    let (user_id, cookie) = app.signed_in().await;
    let size = 100 * MIB;
    let expected = sha256_of(random_body(7, size)).await;

    let created = app
        .upload(
            &cookie,
            "big.bin",
            "application/x-test",
            streamed(random_body(7, size)),
        )
        .await;
    assert_eq!(created.status(), 201);
    let file = json(created).await;
    assert_eq!(file["name"], "big.bin");
    assert_eq!(file["size"], size);
    assert_eq!(file["sha256"], expected.1.as_str());
    assert_eq!(file["content_type"], "application/x-test");
    assert!(
        file["created_at"].as_str().unwrap().ends_with('Z'),
        "{file}"
    );
    let id = file["id"].as_str().unwrap();
    assert_eq!(
        app.objects().await,
        vec![format!("users/{user_id}/files/{id}")],
        "the object key names the user and the file id, not the file name"
    );

    let download = app
        .get(&cookie, &format!("/api/v1/files/{id}/content"))
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(header(&download, "content-length"), size.to_string());
    assert_eq!(header(&download, "content-type"), "application/x-test");
    assert_eq!(header(&download, "etag"), format!("\"{}\"", expected.1));
    assert_eq!(header(&download, "accept-ranges"), "bytes");
    assert_eq!(header(&download, "x-content-type-options"), "nosniff");
    assert_eq!(response_sha256(download).await, expected);

    let shown = json(app.get(&cookie, &format!("/api/v1/files/{id}")).await).await;
    assert_eq!(shown, file);
}

#[tokio::test]
async fn over_the_limit_is_413_and_leaves_no_row_no_object_no_upload() {
    let app = spawn_files_app(&[
        "--upload-max-bytes",
        "12582912", // 12 MiB: two 5 MiB parts go up before the limit is passed
        "--s3-part-size",
        "5242880",
    ])
    .await;
    let (_, cookie) = app.signed_in().await;

    // Streamed without a length: found out mid-way, after parts went up.
    let streamed_over = app
        .upload(
            &cookie,
            "big.bin",
            "application/octet-stream",
            streamed(random_body(1, 20 * MIB)),
        )
        .await;
    assert_problem(streamed_over, 413).await;
    app.assert_nothing_left().await;

    // A declared length over the limit is refused before anything is stored.
    let declared_over = app
        .upload(
            &cookie,
            "big.bin",
            "application/octet-stream",
            vec![0u8; 13 * MIB as usize],
        )
        .await;
    assert_problem(declared_over, 413).await;
    app.assert_nothing_left().await;

    // Exactly the limit is fine.
    let at_limit = app
        .upload(
            &cookie,
            "ok.bin",
            "application/octet-stream",
            streamed(random_body(2, 12 * MIB)),
        )
        .await;
    assert_eq!(at_limit.status(), 201);
}

#[tokio::test]
async fn another_users_file_is_404_and_untouched() {
    let app = spawn_files_app(&[]).await;
    let (_, alice) = app.signed_in().await;
    let (_, bob) = app.signed_in().await;
    let file = json(
        app.upload(&alice, "secret.txt", "text/plain", "alice's")
            .await,
    )
    .await;
    let id = file["id"].as_str().unwrap();

    for path in [
        format!("/api/v1/files/{id}"),
        format!("/api/v1/files/{id}/content"),
    ] {
        assert_problem(app.get(&bob, &path).await, 404).await;
    }
    assert_problem(app.delete(&bob, &format!("/api/v1/files/{id}")).await, 404).await;
    let bobs = json(app.get(&bob, "/api/v1/files").await).await;
    assert_eq!(bobs["files"], serde_json::json!([]));

    let still = app
        .get(&alice, &format!("/api/v1/files/{id}/content"))
        .await;
    assert_eq!(still.text().await.unwrap(), "alice's");
    // Ids that do not parse are the same 404.
    assert_problem(app.get(&alice, "/api/v1/files/not-a-uuid").await, 404).await;
}

#[tokio::test]
async fn without_a_session_every_files_route_is_401() {
    let app = spawn_files_app(&[]).await;
    let id = uuid::Uuid::now_v7();
    let client = &app.client;
    for request in [
        client.get(app.url("/api/v1/files")),
        client.post(app.url("/api/v1/files?name=x")).body("x"),
        client.get(app.url(&format!("/api/v1/files/{id}"))),
        client.get(app.url(&format!("/api/v1/files/{id}/content"))),
        client.delete(app.url(&format!("/api/v1/files/{id}"))),
    ] {
        assert_problem(request.send().await.unwrap(), 401).await;
    }
    app.assert_nothing_left().await;
}

#[tokio::test]
async fn concurrent_uploads_each_keep_their_bytes() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let uploads = (0..5u64).map(|seed| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let size = 9 * MIB + seed;
            let response = app
                .upload(
                    cookie,
                    &format!("f{seed}.bin"),
                    "application/octet-stream",
                    streamed(random_body(seed, size)),
                )
                .await;
            assert_eq!(response.status(), 201);
            (seed, size, json(response).await)
        }
    });
    let results = futures::future::join_all(uploads).await;
    for (seed, size, file) in &results {
        let expected = sha256_of(random_body(*seed, *size)).await;
        assert_eq!(file["sha256"], expected.1.as_str());
        let id = file["id"].as_str().unwrap();
        let download = app
            .get(&cookie, &format!("/api/v1/files/{id}/content"))
            .await;
        assert_eq!(response_sha256(download).await, expected);
    }
    assert_eq!(app.file_rows().await, 5);
    assert_eq!(app.objects().await.len(), 5);
    assert_eq!(app.open_uploads().await, 0);
}

#[tokio::test]
async fn listing_pages_newest_first_with_a_cursor() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let mut uploaded = Vec::new();
    for n in 0..5 {
        let file = json(
            app.upload(&cookie, &format!("{n}.txt"), "text/plain", "x")
                .await,
        )
        .await;
        uploaded.push(file["id"].as_str().unwrap().to_owned());
    }
    uploaded.reverse();

    let mut listed = Vec::new();
    let mut path = "/api/v1/files?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = json(app.get(&cookie, &path).await).await;
        pages += 1;
        let files = page["files"].as_array().unwrap();
        assert!(files.len() <= 2, "{page}");
        listed.extend(files.iter().map(|f| f["id"].as_str().unwrap().to_owned()));
        match &page["next_cursor"] {
            Value::String(cursor) => path = format!("/api/v1/files?limit=2&cursor={cursor}"),
            Value::Null => break,
            other => panic!("next_cursor {other}"),
        }
    }
    assert_eq!(listed, uploaded, "newest first, each file once");
    assert_eq!(pages, 3);

    let all = json(app.get(&cookie, "/api/v1/files").await).await;
    assert_eq!(all["files"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_cursor"], Value::Null);
    for bad in ["limit=0", "limit=101", "limit=x", "cursor=nope"] {
        assert_problem(app.get(&cookie, &format!("/api/v1/files?{bad}")).await, 400).await;
    }
}

#[tokio::test]
async fn ranges_are_206_and_out_of_range_is_416() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let file = json(
        app.upload(&cookie, "r.bin", "application/octet-stream", data.clone())
            .await,
    )
    .await;
    let path = format!("/api/v1/files/{}/content", file["id"].as_str().unwrap());
    let etag = format!("\"{}\"", file["sha256"].as_str().unwrap());

    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=100-5000", 100, 999),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .header("cookie", &cookie)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {start}-{end}/1000")
        );
        assert_eq!(
            header(&response, "content-length"),
            (end - start + 1).to_string()
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            &data[start..=end],
            "{range}"
        );
    }

    let outside = app
        .client
        .get(app.url(&path))
        .header("cookie", &cookie)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&outside, "content-range"), "bytes */1000");
    assert_problem(outside, 416).await;

    // A range for another version of the file gets the whole current one.
    let stale = app
        .client
        .get(app.url(&path))
        .header("cookie", &cookie)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap().len(), 1000);
    let current = app
        .client
        .get(app.url(&path))
        .header("cookie", &cookie)
        .header("range", "bytes=0-9")
        .header("if-range", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 206);
}

#[tokio::test]
async fn delete_removes_object_and_row() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let file = json(app.upload(&cookie, "gone.txt", "text/plain", "bye").await).await;
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());

    assert_eq!(app.delete(&cookie, &path).await.status(), 204);
    app.assert_nothing_left().await;
    assert_problem(app.get(&cookie, &path).await, 404).await;
    assert_problem(app.delete(&cookie, &path).await, 404).await;
}

#[tokio::test]
async fn a_multipart_form_streams_its_file_field() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let size = 11 * MIB + 3;
    let boundary = "----data-processor-test-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot the file\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\tmp\\\\form.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(random_body(11, size))
        .chain(futures::stream::once(async move { Ok(Bytes::from(tail)) }))
        .boxed();
    let response = app
        .client
        .post(app.url("/api/v1/files"))
        .header("cookie", &cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(streamed(body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let file = json(response).await;
    assert_eq!(file["name"], "form.csv");
    assert_eq!(file["content_type"], "text/csv");
    let expected = sha256_of(random_body(11, size)).await;
    assert_eq!(file["size"], expected.0);
    assert_eq!(file["sha256"], expected.1.as_str());
}

#[tokio::test]
async fn bad_uploads_are_problems() {
    let app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let no_name = app
        .client
        .post(app.url("/api/v1/files"))
        .header("cookie", &cookie)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_problem(no_name, 400).await;
    assert_problem(app.upload(&cookie, "a/b", "text/plain", "x").await, 422).await;
    assert_problem(app.upload(&cookie, "a", "not a type", "x").await, 400).await;
    let no_file = app
        .client
        .post(app.url("/api/v1/files"))
        .header("cookie", &cookie)
        .header("content-type", "multipart/form-data; boundary=b")
        .body("--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--b--\r\n")
        .send()
        .await
        .unwrap();
    assert_problem(no_file, 400).await;
    app.assert_nothing_left().await;
}

#[tokio::test]
async fn storage_down_is_a_quick_503_and_recovers() {
    let mut app = spawn_files_app(&[]).await;
    let (_, cookie) = app.signed_in().await;
    let file = json(app.upload(&cookie, "a.txt", "text/plain", "before").await).await;
    let content = format!("/api/v1/files/{}/content", file["id"].as_str().unwrap());

    app.moto.stop();
    // Answers, and does not hang: the deadline is the test's, the figure is in the report.
    let upload = tokio::time::timeout(WAIT, app.upload(&cookie, "b.txt", "text/plain", "during"))
        .await
        .expect("the upload answers while S3 is down");
    let problem = assert_problem(upload, 503).await;
    assert!(
        !problem["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{problem}"
    );
    let download = tokio::time::timeout(WAIT, app.get(&cookie, &content))
        .await
        .expect("the download answers while S3 is down");
    assert_problem(download, 503).await;
    assert_eq!(app.file_rows().await, 1, "no row for the failed upload");

    app.moto.start_server().await;
    app.s3
        .create_bucket()
        .bucket(&app.bucket)
        .send()
        .await
        .expect("recreate bucket");
    let again = app.upload(&cookie, "c.txt", "text/plain", "after").await;
    assert_eq!(again.status(), 201);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), app.get(&cookie, "/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_embedded_mode_stores_files_in_a_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/db.sqlite", dir.path().display());
    let storage_url = format!("file://{}/objects", dir.path().display());
    let config = config(&[
        "--database-url",
        &database_url,
        "--storage-url",
        &storage_url,
    ]);
    let app = Application::build(config).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let username = unique_name("embedded");
    for path in ["/api/v1/users", "/api/v1/session"] {
        let response = client
            .post(format!("{address}{path}"))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        if path.ends_with("session") {
            let cookie = session_cookie(response.headers()).unwrap();
            let size = 6 * MIB;
            let created = client
                .post(format!("{address}/api/v1/files?name=local.bin"))
                .header("cookie", &cookie)
                .body(streamed(random_body(5, size)))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
            let file = json(created).await;
            let id = file["id"].as_str().unwrap();
            let download = client
                .get(format!("{address}/api/v1/files/{id}/content"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response_sha256(download).await,
                sha256_of(random_body(5, size)).await
            );
            let list = client
                .get(format!("{address}/api/v1/files"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(json(list).await["files"][0]["id"], id);
            let deleted = client
                .delete(format!("{address}/api/v1/files/{id}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(deleted.status(), 204);
        }
    }
    server.abort();
}
