//! The data-processor API as a virtual user calls it. Every call goes through `call`, which
//! names the request by its route (ids replaced by `{id}`, so metrics group per endpoint),
//! counts it for the live progress line and turns a failed request into a failed step.
//! Checks beyond the status code (SHA-256, job outcome) are recorded as failures of the
//! request they concern, tagged `check: KIND: detail` so the report can group them by kind.

use std::time::{Duration, Instant};

use bytes::Bytes;
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::progress::Progress;

/// A file this user uploaded, with the digest the server acknowledged.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub id: String,
    pub sha256: String,
}

pub enum Body {
    Empty,
    Json(Value),
    Csv(Vec<u8>),
}

/// A successful answer: the request's metric (to mark it failed after a check) and its body.
pub struct Answer {
    pub metric: GooseRequestMetric,
    pub body: Bytes,
}

pub type StepResult<T> = Result<T, Box<TransactionError>>;

/// Sends one request and reads its body; any status other than `expect` fails the step.
pub async fn call(
    user: &mut GooseUser,
    progress: &Progress,
    method: GooseMethod,
    path: &str,
    name: &str,
    expect: u16,
    body: Body,
) -> StepResult<Answer> {
    let builder = user.get_request_builder(&method, path)?;
    let builder = match body {
        Body::Empty => builder,
        Body::Json(value) => builder.json(&value),
        Body::Csv(bytes) => builder.header("content-type", "text/csv").body(bytes),
    };
    let request = GooseRequest::builder()
        .name(name)
        .expect_status_code(expect)
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    progress.record(goose.request.success);
    let mut metric = goose.request;
    let response = match goose.response {
        Ok(response) if metric.success => response,
        _ => {
            return Err(Box::new(TransactionError::RequestFailed {
                raw_request: Box::new(metric),
            }));
        }
    };
    match response.bytes().await {
        Ok(body) => Ok(Answer { metric, body }),
        Err(e) => fail(user, progress, &mut metric, "body", &e.to_string()),
    }
}

/// Marks a request that answered with the expected status as failed by a later check.
pub fn fail<T>(
    user: &mut GooseUser,
    progress: &Progress,
    metric: &mut GooseRequestMetric,
    kind: &str,
    detail: &str,
) -> StepResult<T> {
    progress.record_check_failure();
    user.set_failure(&format!("check: {kind}: {detail}"), metric, None, None)?;
    // set_failure always returns Err; this is for the type checker.
    Err(Box::new(TransactionError::Custom(format!(
        "{kind}: {detail}"
    ))))
}

#[tracing::instrument(skip(user, progress, password))]
pub async fn register(
    user: &mut GooseUser,
    progress: &Progress,
    username: &str,
    password: &str,
) -> StepResult<()> {
    let body = Body::Json(json!({ "username": username, "password": password }));
    let path = "/api/v1/users";
    call(
        user,
        progress,
        GooseMethod::Post,
        path,
        "/api/v1/users",
        201,
        body,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip(user, progress, password))]
pub async fn login(
    user: &mut GooseUser,
    progress: &Progress,
    username: &str,
    password: &str,
) -> StepResult<()> {
    let body = Body::Json(json!({ "username": username, "password": password }));
    let path = "/api/v1/session";
    call(
        user,
        progress,
        GooseMethod::Post,
        path,
        "/api/v1/session",
        200,
        body,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn session(user: &mut GooseUser, progress: &Progress) -> StepResult<()> {
    let path = "/api/v1/session";
    call(
        user,
        progress,
        GooseMethod::Get,
        path,
        "/api/v1/session",
        200,
        Body::Empty,
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn list_files(user: &mut GooseUser, progress: &Progress) -> StepResult<()> {
    let path = "/api/v1/files";
    call(
        user,
        progress,
        GooseMethod::Get,
        path,
        "/api/v1/files",
        200,
        Body::Empty,
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct FileCreated {
    id: Value,
    sha256: String,
}

#[tracing::instrument(skip(user, progress, csv), fields(bytes = csv.len()))]
pub async fn upload(
    user: &mut GooseUser,
    progress: &Progress,
    file_name: &str,
    csv: Vec<u8>,
) -> StepResult<Uploaded> {
    let expected = hex::encode(Sha256::digest(&csv));
    let path = format!("/api/v1/files?name={file_name}");
    let mut answer = call(
        user,
        progress,
        GooseMethod::Post,
        &path,
        "/api/v1/files",
        201,
        Body::Csv(csv),
    )
    .await?;
    let created: FileCreated = match serde_json::from_slice(&answer.body) {
        Ok(created) => created,
        Err(e) => {
            return fail(
                user,
                progress,
                &mut answer.metric,
                "bad response",
                &e.to_string(),
            );
        }
    };
    if !created.sha256.eq_ignore_ascii_case(&expected) {
        let detail = format!("server says {} for bytes with {expected}", created.sha256);
        return fail(
            user,
            progress,
            &mut answer.metric,
            "sha256 mismatch",
            &detail,
        );
    }
    Ok(Uploaded {
        id: id_text(&created.id),
        sha256: expected,
    })
}

#[tracing::instrument(skip(user, progress))]
pub async fn download(
    user: &mut GooseUser,
    progress: &Progress,
    file: &Uploaded,
) -> StepResult<()> {
    let path = format!("/api/v1/files/{}/content", file.id);
    let name = "/api/v1/files/{id}/content";
    let mut answer = call(
        user,
        progress,
        GooseMethod::Get,
        &path,
        name,
        200,
        Body::Empty,
    )
    .await?;
    let got = hex::encode(Sha256::digest(&answer.body));
    if got != file.sha256 {
        let detail = format!("downloaded {got}, uploaded {}", file.sha256);
        return fail(
            user,
            progress,
            &mut answer.metric,
            "sha256 mismatch",
            &detail,
        );
    }
    Ok(())
}

/// Starts a profile job and returns its id.
#[tracing::instrument(skip(user, progress))]
pub async fn start_profile(
    user: &mut GooseUser,
    progress: &Progress,
    file: &Uploaded,
) -> StepResult<String> {
    let path = format!("/api/v1/files/{}/jobs", file.id);
    let name = "/api/v1/files/{id}/jobs";
    let body = Body::Json(json!({ "kind": "profile" }));
    let mut answer = call(user, progress, GooseMethod::Post, &path, name, 202, body).await?;
    match serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| job_field(&v, "id").map(id_text))
    {
        Some(id) => Ok(id),
        None => fail(
            user,
            progress,
            &mut answer.metric,
            "bad response",
            "no job id in the 202 answer",
        ),
    }
}

/// Polls a job until it succeeded or failed, at most `timeout`. The time from start to
/// outcome is recorded as its own metric ("JOB profile"), so the report shows job latency.
#[tracing::instrument(skip(user, progress))]
pub async fn await_job(
    user: &mut GooseUser,
    progress: &Progress,
    job_id: &str,
    timeout: Duration,
    poll_every: Duration,
) -> StepResult<()> {
    let started = Instant::now();
    let path = format!("/api/v1/jobs/{job_id}");
    loop {
        let name = "/api/v1/jobs/{id}";
        let mut answer = call(
            user,
            progress,
            GooseMethod::Get,
            &path,
            name,
            200,
            Body::Empty,
        )
        .await?;
        let job: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    user,
                    progress,
                    &mut answer.metric,
                    "bad response",
                    &e.to_string(),
                );
            }
        };
        let status = job_field(&job, "status")
            .and_then(Value::as_str)
            .unwrap_or("");
        let outcome = match status {
            "succeeded" => Some(Ok(())),
            "failed" => {
                let error = job_field(&job, "error")
                    .map(Value::to_string)
                    .unwrap_or_default();
                Some(Err(("job failed", error)))
            }
            _ if started.elapsed() >= timeout => Some(Err((
                "job timeout",
                format!("still {status:?} after {timeout:?}"),
            ))),
            _ => None,
        };
        if let Some(outcome) = outcome {
            let error = outcome.as_ref().err().map(|(kind, _)| *kind);
            user.record_custom_request_duration(
                "JOB",
                "profile (start to outcome)",
                started.elapsed(),
                outcome.is_ok(),
                None,
                error,
            )
            .await?;
            return match outcome {
                Ok(()) => Ok(()),
                Err((kind, detail)) => fail(user, progress, &mut answer.metric, kind, &detail),
            };
        }
        // Pacing between polls of the same job, not synchronisation: the job runs elsewhere.
        tokio::time::sleep(poll_every).await;
    }
}

/// The API answers `{id, status, ...}`; accept `{job: {...}}` too, so the load test does not
/// break on an envelope.
fn job_field<'a>(value: &'a Value, field: &str) -> Option<&'a Value> {
    value
        .get(field)
        .or_else(|| value.get("job").and_then(|job| job.get(field)))
}

/// Ids may be UUID strings or numbers.
fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
