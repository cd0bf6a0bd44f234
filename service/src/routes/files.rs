//! Files: uploads streamed into the object store, their metadata in the database.
//!
//! `POST /api/v1/files` takes the raw body (`?name=`, `Content-Type`) or a `multipart/form-data`
//! form with one file field. The object is complete before its row is written, so a 201 means
//! both are durable; when anything fails, or the client goes away, neither is left behind.

mod download;
mod range;
mod upload;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::auth::AuthenticatedUser;
use crate::db::files::{self, FileRow};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use crate::storage::SharedStore;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/files", get(list).post(create))
        .route("/api/v1/files/{id}", get(show).delete(remove))
        .route("/api/v1/files/{id}/content", get(content))
}

/// A file as the API shows it.
#[derive(Debug, Serialize)]
pub struct FileBody {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    /// RFC 3339.
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

#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    name: Option<String>,
}

#[tracing::instrument(skip_all, fields(file_id))]
async fn create(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    query: Result<Query<CreateQuery>, QueryRejection>,
    request: Request,
) -> Result<(StatusCode, ApiJson<FileBody>), ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let incoming =
        upload::Incoming::from_request(request, query.name, state.config.upload_max_bytes).await?;
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
    // From here until the row is written, a failure or a dropped request deletes the object.
    let orphan = DeleteOnDrop::new(state.store.clone(), &object_key);
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
    if let Err(error) = files::insert(&state.db, &row).await {
        orphan.delete_now().await;
        return Err(error.into());
    }
    orphan.disarm();
    Ok((StatusCode::CREATED, ApiJson(row.into())))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One page of the caller's files, newest first.
#[derive(Debug, Serialize)]
pub struct FilePage {
    pub files: Vec<FileBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<ApiJson<FilePage>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|cursor| {
            Uuid::try_parse(cursor).map_err(|_| {
                ApiError::BadRequest("cursor is not one this API returned".to_string())
            })
        })
        .transpose()?;
    let mut rows = files::list(&state.db, user.id, before, i64::from(limit) + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|row| row.id.simple().to_string())
    } else {
        None
    };
    Ok(ApiJson(FilePage {
        files: rows.into_iter().map(FileBody::from).collect(),
        next_cursor,
    }))
}

#[tracing::instrument(skip_all, fields(file_id = %id))]
async fn show(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<ApiJson<FileBody>, ApiError> {
    Ok(ApiJson(find_own(&state, &user, &id).await?.into()))
}

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
#[tracing::instrument(skip_all, fields(file_id = %id))]
async fn remove(
    State(state): State<AppState>,
    user: AuthenticatedUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let file = find_own(&state, &user, &id).await?;
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

/// Deletes an object whose row was not written: at once on `delete_now`, or in the background
/// when the request's future is dropped (the client went away) before `disarm`.
struct DeleteOnDrop {
    store: SharedStore,
    key: Option<String>,
}

impl DeleteOnDrop {
    fn new(store: SharedStore, key: &str) -> Self {
        Self {
            store,
            key: Some(key.to_owned()),
        }
    }

    fn disarm(mut self) {
        self.key = None;
    }

    async fn delete_now(mut self) {
        if let Some(key) = self.key.take()
            && let Err(error) = self.store.delete(&key).await
        {
            tracing::warn!(%error, key, "deleting the object of a file without a row failed");
        }
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.delete(&key).await {
                    tracing::warn!(%error, key, "deleting the object of a dropped upload failed");
                }
            });
        }
    }
}
