//! The `users` table.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError};
use crate::domain::Username;
use crate::with_db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// Inserts a user; `DbError::Conflict` when the username is taken (in any letter case).
#[tracing::instrument(skip(db, password_hash), fields(username = %username.as_str()))]
pub async fn insert(
    db: &Db,
    id: Uuid,
    username: &Username,
    password_hash: &str,
    created_at: OffsetDateTime,
) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(username.as_str())
    .bind(password_hash)
    .bind(created_at)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// The user whose name matches `username` case-insensitively.
#[tracing::instrument(skip(db))]
pub async fn find_by_username(db: &Db, username_key: &str) -> Result<Option<UserRow>, DbError> {
    with_db!(db, pool => sqlx::query_as::<_, UserRow>(
        "SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = $1",
    )
    .bind(username_key)
    .fetch_optional(pool)
    .await)
}
