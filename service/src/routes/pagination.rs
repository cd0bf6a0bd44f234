//! Cursor pagination shared by the listings (`?limit=N&cursor=C`, newest first). Ids are UUIDv7,
//! so the cursor is simply the last id of the page.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    // What `Uuid::try_parse` takes: simple, hyphenated, braced or URN (`next_cursor` is simple).
    #[param(
        pattern = r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u32,
    /// Only rows with a smaller id (older) than this.
    pub before: Option<Uuid>,
}

impl PageRequest {
    pub fn parse(query: Result<Query<PageQuery>, QueryRejection>) -> Result<Self, ApiError> {
        Self::parse_with_default(query, DEFAULT_PAGE)
    }

    /// Like `parse`, with `default_limit` when the query names none (the UI's pages are shorter).
    pub fn parse_with_default(
        query: Result<Query<PageQuery>, QueryRejection>,
        default_limit: u32,
    ) -> Result<Self, ApiError> {
        let Query(query) =
            query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        let limit = query.limit.unwrap_or(default_limit);
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
        Ok(Self { limit, before })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts `rows` (fetched with `fetch_limit`) to the page, converts them to what the API shows
    /// and returns them with the next cursor (None on the last page).
    pub fn finish<R, B: From<R>>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> Uuid,
    ) -> (Vec<B>, Option<String>) {
        let mut next_cursor = None;
        if rows.len() > self.limit as usize {
            rows.truncate(self.limit as usize);
            next_cursor = rows.last().map(|row| id(row).simple().to_string());
        }
        (rows.into_iter().map(B::from).collect(), next_cursor)
    }
}
