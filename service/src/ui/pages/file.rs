//! `/files/{id}`: one file, a button to profile it (the script queues the job through the API
//! and follows its progress), and the latest profile as a table. Another user's file, a
//! missing one and an id that does not parse are the same 404 as in the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use csv_profile::Profile;
use futures::StreamExt;
use maud::html;
use uuid::Uuid;

use super::error::{UiError, html as html_response};
use super::layout::{human_bytes, page, when};
use super::profile;
use crate::auth::AuthenticatedUser;
use crate::db::{files, jobs};
use crate::error::ApiError;
use crate::state::AppState;

/// A profile is a few hundred bytes per column; this is far beyond any page worth showing.
const MAX_PROFILE_BYTES: u64 = 8 * 1024 * 1024;

#[tracing::instrument(skip_all, fields(file_id = %id))]
pub async fn show(
    State(state): State<AppState>,
    user: Result<AuthenticatedUser, ApiError>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let user = user?;
    let id = Uuid::try_parse(&id).map_err(|_| ApiError::NotFound)?;
    let file = files::find(&state.db, user.id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let latest = jobs::latest_of_file(&state.db, user.id, file.id, "profile", None).await?;
    let succeeded = match &latest {
        Some(job) if job.status == jobs::SUCCEEDED => Some(job.clone()),
        _ => {
            jobs::latest_of_file(
                &state.db,
                user.id,
                file.id,
                "profile",
                Some(jobs::SUCCEEDED),
            )
            .await?
        }
    };
    let result = match succeeded.as_ref().and_then(|job| job.result_key.as_deref()) {
        Some(key) => Some(read_profile(&state, key).await?),
        None => None,
    };
    // A job still in the queue or running: the script follows it from the page's first load.
    let active = latest
        .as_ref()
        .filter(|job| job.status == jobs::QUEUED || job.status == jobs::RUNNING);
    let failed = latest.as_ref().filter(|job| job.status == jobs::FAILED);
    let body = html! {
        p { a href="/files" { "← All files" } }
        h1 { (file.name) }
        dl .facts {
            dt { "Size" }
            dd {
                (human_bytes(u64::try_from(file.size).unwrap_or(0)))
                @if file.size >= 1024 { " (" (file.size) " bytes)" }
            }
            dt { "Content type" } dd { (file.content_type) }
            dt { "Uploaded" } dd { (when(file.created_at)) }
            dt { "SHA-256" } dd { code { (file.sha256) } }
        }
        p { a .button href={ "/api/v1/files/" (file.id) "/content" } download { "Download" } }
        section aria-labelledby="profile-heading" {
            h2 #profile-heading { "Profile" }
            div #job data-file-id=(file.id)
                data-job-id=[active.map(|job| job.id.to_string())] {
                button #run-profile type="button" disabled[active.is_some()] {
                    @if result.is_some() { "Profile again" } @else { "Run profile" }
                }
                label for="job-progress" .visually-hidden { "Profile progress" }
                progress #job-progress max="100" value="0" hidden[active.is_none()] {}
                p #job-status role="status" aria-live="polite" {
                    @if let Some(job) = active { "The profile is " (job.status) "…" }
                }
                div #job-error .error role="alert" {
                    @if let Some(job) = failed {
                        "The last profile failed: " (job.error.as_deref().unwrap_or("no reason recorded"))
                    }
                }
            }
            @match &result {
                Some(profile) => { (profile::render(&file.name, profile)) }
                None => { p #no-profile { "This file has not been profiled yet." } }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(&file.name, Some(&user.username), body),
    ))
}

/// The stored result of a profile job.
#[tracing::instrument(skip(state))]
async fn read_profile(state: &AppState, key: &str) -> Result<Profile, UiError> {
    let object = state.store.get(key, None).await.map_err(ApiError::from)?;
    if object.total_size > MAX_PROFILE_BYTES {
        return Err(UiError::ProfileTooLarge(object.total_size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(object.total_size).unwrap_or(0));
    let mut body = object.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| ApiError::unavailable("object storage", error))?;
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(UiError::ProfileUnreadable)
}
