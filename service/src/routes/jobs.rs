//! Processing jobs: `POST /api/v1/files/{id}/jobs` queues one, `GET /api/v1/jobs[/{id}]` shows
//! them, `GET /api/v1/jobs/{id}/result` streams the result, `DELETE /api/v1/jobs/{id}` cancels.
//! Any replica's workers run them (see `jobs`).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::AuthenticatedUser;
use crate::db::files;
use crate::db::jobs::{self, JobRow, NewJob};
use crate::error::{ApiError, ApiJson};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
    Unprocessable, UnsupportedMediaType,
};
use crate::routes::pagination::{PageQuery, PageRequest};
use crate::state::AppState;
use crate::telemetry::storage_read_span;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show, cancel))
        .routes(routes!(result))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct JobRequest {
    #[schema(value_type = JobKindName)]
    kind: String,
}

/// The job kinds (`jobs::kind_names()`; a test keeps the two equal).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only describes the `kind` strings.
pub enum JobKindName {
    Profile,
}

/// A job's state (`db::jobs`' status strings).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only describes the `status` strings.
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub bytes_processed: i64,
    pub bytes_total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobBody {
    pub id: Uuid,
    pub file_id: Uuid,
    #[schema(value_type = JobKindName)]
    pub kind: String,
    #[schema(value_type = JobStatus)]
    pub status: String,
    pub progress: Progress,
    pub attempts: i32,
    pub max_attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When succeeded: a summary, and where the full result is (`url`).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// When failed: what went wrong (and where in the file, for malformed input).
    pub error: Option<String>,
}

impl From<JobRow> for JobBody {
    fn from(row: JobRow) -> Self {
        let failed = row.status == jobs::FAILED;
        let result = (row.status == jobs::SUCCEEDED).then(|| {
            let mut summary = row
                .result_summary
                .as_deref()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(object) = summary.as_object_mut() {
                object.insert(
                    "url".into(),
                    format!("/api/v1/jobs/{}/result", row.id).into(),
                );
            }
            summary
        });
        Self {
            id: row.id,
            file_id: row.file_id,
            kind: row.kind,
            status: row.status,
            progress: Progress {
                bytes_processed: row.bytes_processed,
                bytes_total: row.bytes_total,
            },
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            result,
            // A failure reason is only shown once the job has failed; a retried attempt's error
            // stays internal until then.
            error: if failed { row.error } else { None },
        }
    }
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    // An id that does not parse names no job of the caller's: 404, like any other.
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound)
}

/// Queues a job on one of the caller's files.
#[utoipa::path(
    operation_id = "create_job",
    post,
    path = "/api/v1/files/{id}/jobs",
    tag = "jobs",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The file's id")),
    request_body = JobRequest,
    responses(
        (status = 202, description = "Queued", body = JobBody,
         headers(("Location" = String, description = "The job's URL")), links(
            ("show" = (operation_id = "show_job", parameters(("id" = "$response.body#/id")))),
            ("result" = (operation_id = "job_result", parameters(("id" = "$response.body#/id")))),
            ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(file_id = %file_id))]
async fn create(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(file_id): Path<String>,
    ApiJson(request): ApiJson<JobRequest>,
) -> Result<Response, ApiError> {
    if crate::jobs::kind_named(&request.kind).is_none() {
        return Err(ApiError::Validation(format!(
            "unknown job kind {:?}; known kinds: {}",
            request.kind,
            crate::jobs::kind_names().join(", ")
        )));
    }
    let file_id = parse_id(&file_id)?;
    let file = files::find(&state.db, user.id, file_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = jobs::insert(
        &state.db,
        &NewJob {
            id: Uuid::now_v7(),
            user_id: user.id,
            file_id: file.id,
            kind: request.kind,
            max_attempts: state.config.job_max_attempts as i32,
            bytes_total: file.size,
        },
    )
    .await?;
    // Other replicas hear of it through the change feed.
    state.job_queued.notify_one();
    let location =
        HeaderValue::from_str(&format!("/api/v1/jobs/{}", row.id)).map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        ApiJson(JobBody::from(row)),
    )
        .into_response())
}

/// A job: its state, progress, and its result summary or error.
#[utoipa::path(
    operation_id = "show_job",
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn show(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<ApiJson<JobBody>, ApiError> {
    let row = jobs::find(&state.db, user.id, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ApiJson(row.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's jobs, newest first.
#[utoipa::path(
    operation_id = "list_jobs",
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    security(("dp_session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page", body = JobPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<ApiJson<JobPage>, ApiError> {
    let page = PageRequest::parse(query)?;
    let rows = jobs::list(&state.db, user.id, page.before, page.fetch_limit()).await?;
    let (jobs, next_cursor) = page.finish(rows, |row| row.id);
    Ok(ApiJson(JobPage { jobs, next_cursor }))
}

/// Cancels a queued or running job (its worker stops at its next heartbeat).
#[utoipa::path(
    operation_id = "cancel_job",
    delete,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if jobs::cancel(&state.db, user.id, id).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    match jobs::find(&state.db, user.id, id).await? {
        None => Err(ApiError::NotFound),
        Some(job) => Err(ApiError::Conflict(format!(
            "the job has {} already and cannot be cancelled",
            job.status
        ))),
    }
}

/// The full result of a succeeded job (for `profile`: the column profile).
#[utoipa::path(
    operation_id = "job_result",
    get,
    path = "/api/v1/jobs/{id}/result",
    tag = "jobs",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The result document", body = Object),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn result(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = jobs::find(&state.db, user.id, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = match (&job.result_key, job.status.as_str()) {
        (Some(key), jobs::SUCCEEDED) => key.clone(),
        _ => {
            return Err(ApiError::Conflict(format!(
                "the job is {} and has no result",
                job.status
            )));
        }
    };
    let object = storage_read_span(&headers, state.store.get(&key, None)).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(object.total_size)),
        ],
        Body::from_stream(object.body),
    )
        .into_response())
}
