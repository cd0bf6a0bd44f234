//! Jobs through the API: queue a profile of an uploaded CSV, watch it finish, read its result;
//! failures name the line; cancellation; another user's job is invisible.

use serde_json::{Value, json};

use crate::helpers::{TestApp, WAIT, assert_problem, json, spawn_app, spawn_app_with, unique_name};

pub async fn upload(app: &TestApp, cookie: &str, name: &str, body: &'static str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/files?name={name}")))
        .header("cookie", cookie)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201, "upload {name}");
    json(response).await
}

pub async fn start_job(app: &TestApp, cookie: &str, file_id: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/files/{file_id}/jobs")))
        .header("cookie", cookie)
        .json(&json!({"kind": "profile"}))
        .send()
        .await
        .expect("start job");
    assert_eq!(response.status(), 202);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let job = json(response).await;
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()).as_str())
    );
    job
}

async fn get_job(app: &TestApp, cookie: &str, id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/jobs/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get job")
}

/// Polls the job until it is no longer queued or running.
pub async fn finished(app: &TestApp, cookie: &str, id: &str) -> Value {
    testkit::wait_until("the job to finish", WAIT, || async {
        let job = json(get_job(app, cookie, id).await).await;
        (job["status"] != "queued" && job["status"] != "running").then_some(job)
    })
    .await
}

const CSV: &str = "id,name,score,active\n1,ada,9.5,true\n2,bob,,false\n3,cy,7.25,true\n";

#[tokio::test]
async fn a_profile_job_succeeds_and_its_result_describes_the_columns() {
    let app = spawn_app().await;
    let cookie = app.signed_in(&unique_name("jobs")).await;
    let file = upload(&app, &cookie, "scores.csv", CSV).await;
    let job = start_job(&app, &cookie, file["id"].as_str().unwrap()).await;
    assert_eq!(job["kind"], "profile");
    assert!(
        job["status"] == "queued" || job["status"] == "running",
        "{job}"
    );
    assert_eq!(job["progress"]["bytes_total"], CSV.len());

    let done = finished(&app, &cookie, job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["progress"]["bytes_processed"], CSV.len());
    assert_eq!(done["result"]["rows"], 3);
    assert_eq!(done["result"]["columns"], 4);
    assert_eq!(done["result"]["has_header"], true);
    assert!(done["error"].is_null());

    let url = done["result"]["url"].as_str().expect("a result url");
    let result = app
        .client
        .get(app.url(url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("result");
    assert_eq!(result.status(), 200);
    let profile = json(result).await;
    let columns = profile["column_profiles"]
        .as_array()
        .expect("column profiles");
    assert_eq!(columns.len(), 4);
    assert_eq!(columns[2]["name"], "score");
    assert_eq!(columns[2]["nulls"], 1);

    // Deleting the file deletes its jobs and their results.
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/files/{}", file["id"].as_str().unwrap())))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("delete file");
    assert_eq!(deleted.status(), 204);
    assert_problem(
        get_job(&app, &cookie, job["id"].as_str().unwrap()).await,
        404,
    )
    .await;
    let gone = app
        .client
        .get(app.url(url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("result");
    assert_problem(gone, 404).await;
}

#[tokio::test]
async fn a_malformed_file_fails_with_the_line_number() {
    let app = spawn_app().await;
    let cookie = app.signed_in(&unique_name("jobs")).await;
    let file = upload(&app, &cookie, "ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n").await;
    let job = start_job(&app, &cookie, file["id"].as_str().unwrap()).await;
    let done = finished(&app, &cookie, job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().expect("an error");
    assert!(
        error.contains("line 3"),
        "the error does not say where: {error}"
    );
    assert!(done["result"].is_null());
    assert_eq!(done["attempts"], 1, "a malformed file is not retried");
}

#[tokio::test]
async fn jobs_are_private_listed_newest_first_and_validated() {
    let app = spawn_app().await;
    let alice = app.signed_in(&unique_name("alice")).await;
    let bob = app.signed_in(&unique_name("bob")).await;
    let file = upload(&app, &alice, "a.csv", CSV).await;
    let file_id = file["id"].as_str().unwrap();
    let first = start_job(&app, &alice, file_id).await;
    let second = start_job(&app, &alice, file_id).await;

    assert_problem(
        get_job(&app, &bob, first["id"].as_str().unwrap()).await,
        404,
    )
    .await;
    let bobs_try = app
        .post_json_as(
            &bob,
            &format!("/api/v1/files/{file_id}/jobs"),
            &json!({"kind": "profile"}),
        )
        .await;
    assert_problem(bobs_try, 404).await;

    let page = json(app.get_as(&alice, "/api/v1/jobs?limit=1").await).await;
    assert_eq!(page["jobs"][0]["id"], second["id"], "newest first");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let page = json(
        app.get_as(&alice, &format!("/api/v1/jobs?limit=1&cursor={cursor}"))
            .await,
    )
    .await;
    assert_eq!(page["jobs"][0]["id"], first["id"]);
    assert!(page["next_cursor"].is_null());
    let bobs_list = json(app.get_as(&bob, "/api/v1/jobs").await).await;
    assert_eq!(bobs_list["jobs"].as_array().unwrap().len(), 0);

    let unknown_kind = app
        .post_json_as(
            &alice,
            &format!("/api/v1/files/{file_id}/jobs"),
            &json!({"kind": "transcode"}),
        )
        .await;
    assert_problem(unknown_kind, 422).await;
    let anonymous = app
        .client
        .get(app.url("/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
    let missing_file = app
        .post_json_as(
            &alice,
            &format!("/api/v1/files/{}/jobs", uuid::Uuid::now_v7()),
            &json!({"kind": "profile"}),
        )
        .await;
    assert_problem(missing_file, 404).await;
}

#[tokio::test]
async fn a_queued_job_can_be_cancelled_and_a_finished_one_cannot() {
    // No workers pick jobs up quickly here: one worker polling rarely keeps the job queued.
    let app = spawn_app_with(&["--job-workers", "1", "--job-poll-interval", "1h"]).await;
    let cookie = app.signed_in(&unique_name("cancel")).await;
    let file = upload(&app, &cookie, "c.csv", CSV).await;
    let job = start_job(&app, &cookie, file["id"].as_str().unwrap()).await;
    let id = job["id"].as_str().unwrap();
    let cancel = |id: String| {
        let app = &app;
        let cookie = cookie.clone();
        async move { app.delete_as(&cookie, &format!("/api/v1/jobs/{id}")).await }
    };
    let first_cancel = cancel(id.to_string()).await;
    // The single worker may have claimed it on its first poll at start-up: then it is running,
    // and cancelling a running job works the same way.
    assert_eq!(first_cancel.status(), 204);
    let after = json(get_job(&app, &cookie, id).await).await;
    assert_eq!(after["status"], "cancelled");
    assert!(after["finished_at"].is_string());
    assert_problem(cancel(id.to_string()).await, 409).await;
    assert_problem(cancel(uuid::Uuid::now_v7().to_string()).await, 404).await;
}

#[tokio::test]
async fn jobs_run_in_the_embedded_sqlite_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}/db.sqlite", dir.path().display());
    let storage = dir.path().join("objects").display().to_string();
    let config = crate::helpers::config(&["--database-url", &database, "--storage-url", &storage]);
    let store = data_processor::storage::connect(&config.storage_settings())
        .await
        .expect("local store");
    let app = crate::helpers::spawn_app_with_store(config, store).await;
    let cookie = app.signed_in(&unique_name("lite")).await;
    let file = upload(&app, &cookie, "s.csv", CSV).await;
    let job = start_job(&app, &cookie, file["id"].as_str().unwrap()).await;
    let done = finished(&app, &cookie, job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["rows"], 3);
}

#[tokio::test]
async fn a_transient_storage_failure_is_retried_after_the_backoff() {
    let app = spawn_app_with(&["--job-retry-backoff", "3s", "--job-poll-interval", "100ms"]).await;
    let cookie = app.signed_in(&unique_name("jobs")).await;
    let file = upload(&app, &cookie, "scores.csv", CSV).await;
    app.store
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let job = start_job(&app, &cookie, file["id"].as_str().unwrap()).await;
    let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();

    // The first attempt fails on the store and hands the job back to the queue.
    let first = testkit::wait_until("the first attempt to end", WAIT, || async {
        let attempts = data_processor::db::jobs::attempts(&app.state.db, id)
            .await
            .ok()?;
        let first = attempts.first()?.clone();
        first.ended_ms.is_some().then_some(first)
    })
    .await;
    assert_eq!(first.outcome.as_deref(), Some("retry"));
    let queued = get_job(&app, &cookie, &id.to_string()).await;
    let queued = json(queued).await;
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["attempts"], 1, "{queued}");

    app.store
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let done = finished(&app, &cookie, &id.to_string()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let attempts = data_processor::db::jobs::attempts(&app.state.db, id)
        .await
        .unwrap();
    let waited = attempts[1].started_ms - first.ended_ms.unwrap();
    assert!(
        waited >= 3000,
        "the retry came {waited} ms after the failure, before the 3 s backoff: {attempts:?}"
    );
}
