//! Reads of rows that belong to a user (files, jobs): one row by id, and keyset pages newest
//! first. Another user's row is as absent as a missing one, so ids cannot be probed.

use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{Db, DbError};
use crate::with_db;

/// A table of rows owned by users: its name and the columns its row type reads. Ids are UUIDv7,
/// so ordering by id is ordering by creation.
pub struct OwnedTable {
    pub name: &'static str,
    pub columns: &'static str,
}

/// What a row type needs to be read from either database.
pub trait OwnedRow:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> OwnedRow for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl OwnedTable {
    /// `user_id`'s row `id`.
    pub async fn find<T: OwnedRow>(
        &self,
        db: &Db,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<T>, DbError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1 AND user_id = $2",
            self.columns, self.name
        );
        with_db!(db, pool => sqlx::query_as::<_, T>(&sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)
    }

    /// Up to `limit` of `user_id`'s rows, newest first, older than the row `before` when given.
    pub async fn page<T: OwnedRow>(
        &self,
        db: &Db,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<T>, DbError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE user_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
            self.columns, self.name
        );
        with_db!(db, pool => sqlx::query_as::<_, T>(&sql)
            .bind(user_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)
    }
}
