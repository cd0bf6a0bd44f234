//! `/files`: the upload form (the script sends it to the API with a progress bar) and one page
//! of the user's files, newest first, with download and delete.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::error::{UiError, html as html_response};
use super::layout::{human_bytes, page, when};
use crate::auth::AuthenticatedUser;
use crate::db::files::{self, FileRow};
use crate::error::ApiError;
use crate::routes::pagination::{PageQuery, PageRequest};
use crate::state::AppState;

/// Files per page when the query names no `limit`.
const PAGE_SIZE: u32 = 20;

#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    user: Result<AuthenticatedUser, ApiError>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, UiError> {
    let user = user?;
    let page_request = PageRequest::parse_with_default(query, PAGE_SIZE)?;
    let first_page = page_request.before.is_none();
    let rows = files::list(
        &state.db,
        user.id,
        page_request.before,
        page_request.fetch_limit(),
    )
    .await?;
    let (rows, next_cursor): (Vec<FileRow>, _) = page_request.finish(rows, |row| row.id);
    let max_bytes = state.config.upload_max_bytes;
    let body = html! {
        h1 { "Your files" }
        section aria-labelledby="upload-heading" {
            h2 #upload-heading { "Upload a file" }
            form #upload-form .card method="post" action="/api/v1/files"
                enctype="multipart/form-data" data-max-bytes=(max_bytes) {
                label for="file" { "File (CSV files can be profiled)" }
                input #file name="file" type="file" required aria-describedby="upload-limit";
                p #upload-limit .hint {
                    "Files can be up to " (human_bytes(max_bytes)) " (" (max_bytes) " bytes)."
                }
                button type="submit" { "Upload" }
                label for="upload-progress" .visually-hidden { "Upload progress" }
                progress #upload-progress max="100" value="0" hidden {}
                span #upload-percent .hint aria-hidden="true" {}
            }
            div #upload-status .notice role="status" aria-live="polite" {}
            div #upload-error .error role="alert" {}
        }
        section #files-section aria-labelledby="files-heading" {
            h2 #files-heading { "Files" }
            div #list-status .notice role="status" aria-live="polite" {}
            div #list-error .error role="alert" {}
            @if rows.is_empty() {
                p { @if first_page { "No files yet: upload one above." } @else { "No more files." } }
            } @else {
                div .table-wrap {
                    table #file-table {
                        caption .visually-hidden { "Your files, newest first" }
                        thead { tr {
                            th scope="col" { "Name" }
                            th scope="col" .num { "Size" }
                            th scope="col" { "Uploaded" }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for row in &rows {
                                tr {
                                    td { a href={ "/files/" (row.id) } { (row.name) } }
                                    td .num { (human_bytes(u64::try_from(row.size).unwrap_or(0))) }
                                    td { (when(row.created_at)) }
                                    td { div .actions {
                                        a href={ "/api/v1/files/" (row.id) "/content" } download {
                                            "Download" span .visually-hidden { " " (row.name) }
                                        }
                                        button .danger .js-delete type="button"
                                            data-url={ "/api/v1/files/" (row.id) } data-name=(row.name) {
                                            "Delete" span .visually-hidden { " " (row.name) }
                                        }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            nav .pagination aria-label="Pages of files" {
                @if !first_page { a href="/files" { "Newest files" } }
                @if let Some(cursor) = &next_cursor {
                    a href={ "/files?cursor=" (cursor) "&limit=" (page_request.limit) } { "Older files" }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Your files", Some(&user.username), body),
    ))
}
