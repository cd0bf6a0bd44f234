//! Files: uploads streamed into the object store, their metadata in the database.
//!
//! `POST /api/v1/files` takes the raw body (`?name=`, `Content-Type`) or a `multipart/form-data`
//! form with one file field. The object is complete before its row is written, so a 201 means
//! both are durable; when anything fails, or the client goes away, neither is left behind.

mod download;
mod range;
mod upload;

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::AuthenticatedUser;
use crate::db::Db;
use crate::db::DbError;
use crate::db::files::{self, FileRow};
use crate::error::{ApiError, ApiJson};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RangeNotSatisfiable, RequestTimeout,
    Unauthorized, Unavailable, Unprocessable,
};
use crate::routes::pagination::{PageQuery, PageRequest};
use crate::state::AppState;
use crate::storage::SharedStore;

/// Each attempt waits one statement timeout first (5 s by default).
const MAX_SETTLE_ATTEMPTS: u32 = 36;

/// The routes that answer within the request timeout.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, remove))
}

/// Uploads and downloads: they take as long as the bytes do, bounded instead by the upload idle
/// timeout and the client's own pace.
pub fn streaming_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(content))
}

/// A file as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileBody {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of the content (also its ETag).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    pub content_type: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<FileRow> for FileBody {
    fn from(row: FileRow) -> Self {
        Self {
            id: row.id,
            size: u64::try_from(row.size).unwrap_or(0),
            created_at: row.created_at.format(&Rfc3339).unwrap_or_default(),
            name: row.name,
            sha256: row.sha256,
            content_type: row.content_type,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// The file's name; required for a raw body, overrides the form field's file name. At most
    /// 255 bytes of UTF-8; no control characters, `/` or `\\`; not blank, `.` or `..`.
    // The pattern is `domain::FileName::parse` but for the length in bytes: some character that
    // is neither blank nor a dot; or dots and (non-control) blanks, both present; or 3+ dots.
    #[param(
        pattern = r"^(?:[^\x00-\x1f\x7f-\x9f/\\]*[^\s\x00-\x1f\x7f-\x9f/\\.][^\x00-\x1f\x7f-\x9f/\\]*|(?:\.|[^\S\x00-\x1f\x7f-\x9f])*(?:[^\S\x00-\x1f\x7f-\x9f](?:\.|[^\S\x00-\x1f\x7f-\x9f])*\.|\.(?:\.|[^\S\x00-\x1f\x7f-\x9f])*[^\S\x00-\x1f\x7f-\x9f])(?:\.|[^\S\x00-\x1f\x7f-\x9f])*|\.{3,})$"
    )]
    name: Option<String>,
}

/// A form with one file field (other fields before it are skipped).
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the multipart body; the form is parsed as a stream.
struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file's bytes, as they were uploaded.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Documents raw bodies, which stream.
struct FileBytes(Vec<u8>);

/// Uploads a file: the raw body (any `Content-Type`, named by `?name=`) or a
/// `multipart/form-data` form with one file field.
#[utoipa::path(
    operation_id = "create_file",
    post,
    path = "/api/v1/files",
    tag = "files",
    security(("dp_session" = [])),
    params(CreateQuery),
    request_body(
        description = "The file's bytes (none: an empty file), or a form with a file field",
        content(
            (Option<FileBytes> = "application/octet-stream"),
            (Option<UploadForm> = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 201, description = "Stored", body = FileBody, links(
            ("show" = (operation_id = "show_file", parameters(("id" = "$response.body#/id")))),
            ("content" = (operation_id = "file_content", parameters(("id" = "$response.body#/id")))),
            ("queue_job" = (operation_id = "create_job", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_file", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(file_id))]
async fn create(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    query: Result<Query<CreateQuery>, QueryRejection>,
    request: Request,
) -> Result<(StatusCode, ApiJson<FileBody>), ApiError> {
    // Held until the upload ends, however it ends.
    let _slot = state.limits.upload_permit()?;
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let incoming = upload::Incoming::from_request(
        request,
        query.name,
        state.config.upload_max_bytes,
        state.config.upload_idle_timeout,
    )
    .await?;
    // UUIDv7: time-ordered, so listings page on the id (see db::files).
    let id = Uuid::now_v7();
    tracing::Span::current().record("file_id", tracing::field::display(id));
    let object_key = format!("users/{}/files/{id}", user.id);
    let stored = state
        .store
        .put(
            &object_key,
            &incoming.content_type,
            incoming.body,
            state.config.upload_max_bytes,
        )
        .await?;
    let row = FileRow {
        id,
        user_id: user.id,
        name: incoming.name.to_string(),
        content_type: incoming.content_type,
        size: i64::try_from(stored.size).unwrap_or(i64::MAX),
        sha256: stored.sha256,
        object_key,
        // Postgres keeps microseconds: the value returned now is the one read back later.
        created_at: truncate_to_micros(OffsetDateTime::now_utc()),
    };
    // From here until the row is written, a failure or a dropped request settles the object.
    let pending = PendingObject::new(&state, &row);
    match files::insert(&state.db, &row).await {
        Ok(()) => pending.disarm(),
        Err(error) => {
            if pending.settle(is_ambiguous(&error)).await != Settled::RowExists {
                return Err(error.into());
            }
        }
    }
    Ok((StatusCode::CREATED, ApiJson(row.into())))
}

/// One page of the caller's files, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilePage {
    pub files: Vec<FileBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's files, newest first.
#[utoipa::path(
    operation_id = "list_files",
    get,
    path = "/api/v1/files",
    tag = "files",
    security(("dp_session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page", body = FilePage),
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
) -> Result<ApiJson<FilePage>, ApiError> {
    let page = PageRequest::parse(query)?;
    let rows = files::list(&state.db, user.id, page.before, page.fetch_limit()).await?;
    let (files, next_cursor) = page.finish(rows, |row| row.id);
    Ok(ApiJson(FilePage { files, next_cursor }))
}

/// A file's metadata.
#[utoipa::path(
    operation_id = "show_file",
    get,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file", body = FileBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(file_id = %id))]
async fn show(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<ApiJson<FileBody>, ApiError> {
    Ok(ApiJson(find_own(&state, &user, &id).await?.into()))
}

/// A file's bytes; one `Range: bytes=...` gets 206 (`If-Range` is honoured).
#[utoipa::path(
    operation_id = "file_content",
    get,
    path = "/api/v1/files/{id}/content",
    tag = "files",
    security(("dp_session" = [])),
    params(
        ("id" = String, Path, description = "The file's id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-99`"),
        ("If-Range" = Option<String>, Header, description = "The ETag the client holds"),
    ),
    responses(
        (status = 200, description = "The whole file, in its stored Content-Type", content_type = "*/*", body = FileBytes,
         headers(("ETag" = String, description = "\"sha256\""))),
        (status = 206, description = "The requested range", content_type = "*/*", body = FileBytes,
         headers(("Content-Range" = String))),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 416, response = RangeNotSatisfiable),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(file_id = %id))]
async fn content(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = find_own(&state, &user, &id).await?;
    download::respond(&state.store, &file, &headers).await
}

/// Deletes the object, then the row: a failure in between leaves a row whose DELETE can be
/// retried, never bytes that no row points to.
#[utoipa::path(
    operation_id = "delete_file",
    delete,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("dp_session" = [])),
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 204, description = "Deleted, with its jobs and their results"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(file_id = %id))]
async fn remove(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let file = find_own(&state, &user, &id).await?;
    // Cancelled first, so that a job still running either wrote its result before the listing
    // below (deleted here) or finds itself cancelled when recording it (and deletes it).
    crate::db::jobs::cancel_of_file(&state.db, file.id).await?;
    // Job results live next to the file; their rows go with the file's (ON DELETE CASCADE).
    for result_key in crate::db::jobs::result_keys_of_file(&state.db, file.id).await? {
        state.store.delete(&result_key).await?;
    }
    state.store.delete(&file.object_key).await?;
    files::delete(&state.db, user.id, file.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's file `id`. An id that does not parse, another user's file and a missing file
/// are all the same 404, so ids of other users' files cannot be probed.
async fn find_own(
    state: &AppState,
    user: &AuthenticatedUser,
    id: &str,
) -> Result<FileRow, ApiError> {
    let id = Uuid::try_parse(id).map_err(|_| ApiError::NotFound)?;
    files::find(&state.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

fn truncate_to_micros(time: OffsetDateTime) -> OffsetDateTime {
    let micros = time.microsecond();
    time.replace_microsecond(micros).unwrap_or(time)
}

/// A timed-out or cut-off insert may still commit after the error (the database finishes a
/// statement it has received; SQLite's worker thread is not cancelled by a dropped future).
fn is_ambiguous(error: &DbError) -> bool {
    matches!(error, DbError::Unavailable(_))
}

#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// The row was written after all: the upload succeeded.
    RowExists,
    /// No row: the object was deleted.
    Deleted,
    /// Could not tell (the database does not answer): the object is kept, since bytes without a
    /// row only cost storage, while a row without bytes is a broken file.
    Unknown,
}

/// The object of an upload whose row is not written yet. Settled on `settle` when the insert
/// failed, or in the background when the request's future is dropped (the client went away)
/// before `disarm`.
struct PendingObject {
    job: Option<SettleJob>,
}

#[derive(Clone)]
struct SettleJob {
    store: SharedStore,
    db: Db,
    /// How long the database may still be working on a statement we gave up on.
    statement_timeout: Duration,
    user_id: Uuid,
    id: Uuid,
    key: String,
}

impl PendingObject {
    fn new(state: &AppState, row: &FileRow) -> Self {
        Self {
            job: Some(SettleJob {
                store: state.store.clone(),
                db: state.db.clone(),
                statement_timeout: state.config.database_statement_timeout,
                user_id: row.user_id,
                id: row.id,
                key: row.object_key.clone(),
            }),
        }
    }

    fn disarm(mut self) {
        self.job = None;
    }

    /// Settles once; when that cannot tell, keeps trying in the background.
    async fn settle(mut self, insert_may_commit: bool) -> Settled {
        let Some(job) = self.job.take() else {
            return Settled::Unknown;
        };
        let settled = job.clone().run(insert_may_commit).await;
        if settled == Settled::Unknown {
            tokio::spawn(job.run_until_known());
        }
        settled
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(job.run_until_known());
        }
    }
}

impl SettleJob {
    /// Retries for a few minutes (a database failover takes one or two), then leaves the object
    /// to the operator: it is logged, and bytes without a row are only a cost.
    async fn run_until_known(self) {
        for _ in 0..MAX_SETTLE_ATTEMPTS {
            if self.clone().run(true).await != Settled::Unknown {
                return;
            }
        }
        tracing::error!(
            key = self.key,
            "an upload's object may have no row; it is kept"
        );
    }

    #[tracing::instrument(skip_all, fields(file_id = %self.id))]
    async fn run(self, insert_may_commit: bool) -> Settled {
        if insert_may_commit {
            // Let a statement the database is still running finish (or time out) first.
            tokio::time::sleep(self.statement_timeout).await;
            match files::find(&self.db, self.user_id, self.id).await {
                Ok(Some(_)) => return Settled::RowExists,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, key = self.key, "cannot tell whether an upload's row exists: its object is kept");
                    return Settled::Unknown;
                }
            }
        }
        match self.store.delete(&self.key).await {
            Ok(()) => Settled::Deleted,
            Err(error) => {
                tracing::warn!(%error, key = self.key, "deleting the object of a file without a row failed");
                Settled::Unknown
            }
        }
    }
}
