//! The `files` table: metadata of the objects users uploaded. Ids are UUIDv7, so the newest
//! file has the greatest id and a listing pages on the id alone.

use time::OffsetDateTime;
use uuid::Uuid;

use super::owned::OwnedTable;
use super::{Db, DbError};
use crate::with_db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub object_key: String,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, name, content_type, size, sha256, object_key, created_at";

#[tracing::instrument(skip(db, file), fields(file_id = %file.id))]
pub async fn insert(db: &Db, file: &FileRow) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query(
        "INSERT INTO files (id, user_id, name, content_type, size, sha256, object_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(file.id)
    .bind(file.user_id)
    .bind(&file.name)
    .bind(&file.content_type)
    .bind(file.size)
    .bind(&file.sha256)
    .bind(&file.object_key)
    .bind(file.created_at)
    .execute(pool)
    .await
    .map(|_| ()))
}

const TABLE: OwnedTable = OwnedTable {
    name: "files",
    columns: COLUMNS,
};

/// `user_id`'s file `id`; another user's is as absent as a missing one.
#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, user_id: Uuid, id: Uuid) -> Result<Option<FileRow>, DbError> {
    TABLE.find(db, user_id, id).await
}

/// Up to `limit` of `user_id`'s files, newest first, older than `before` when given.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<FileRow>, DbError> {
    TABLE.page(db, user_id, before, limit).await
}

/// Deletes `user_id`'s file `id`; false when there was none.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, user_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    with_db!(db, pool => sqlx::query("DELETE FROM files WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() > 0))
}
