//! The `login_throttle` table: login attempts per key (a username with a client address, or a
//! username alone; see `routes::session`), shared by every replica so the limits hold however
//! requests are spread.

use super::{Db, DbError};
use crate::with_db;

/// Counts one attempt for `username_key` and returns how many attempts the current window holds
/// and when that window started (Unix seconds). One statement, so the count stays exact under
/// concurrent attempts on several replicas.
#[tracing::instrument(skip(db))]
pub async fn count_attempt(
    db: &Db,
    username_key: &str,
    now: i64,
    window_secs: i64,
) -> Result<(i64, i64), DbError> {
    let window_start_cutoff = now - window_secs;
    with_db!(db, pool => sqlx::query_as::<_, (i64, i64)>(
        "INSERT INTO login_throttle (username_key, failures, window_started_at) VALUES ($1, 1, $2) \
         ON CONFLICT (username_key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_started_at <= $3 THEN 1 \
                           ELSE login_throttle.failures + 1 END, \
           window_started_at = CASE WHEN login_throttle.window_started_at <= $3 THEN $2 \
                           ELSE login_throttle.window_started_at END \
         RETURNING CAST(failures AS BIGINT), window_started_at",
    )
    .bind(username_key)
    .bind(now)
    .bind(window_start_cutoff)
    .fetch_one(pool)
    .await)
}

/// How many attempts `username_key` has in its current window (0 when none or expired).
#[tracing::instrument(skip(db))]
pub async fn attempts(
    db: &Db,
    username_key: &str,
    now: i64,
    window_secs: i64,
) -> Result<i64, DbError> {
    with_db!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT CAST(failures AS BIGINT) FROM login_throttle \
         WHERE username_key = $1 AND window_started_at > $2",
    )
    .bind(username_key)
    .bind(now - window_secs)
    .fetch_optional(pool)
    .await
    .map(|count| count.unwrap_or(0)))
}

/// Forgets the attempts of `username_key` (after a successful login).
#[tracing::instrument(skip(db))]
pub async fn clear(db: &Db, username_key: &str) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query("DELETE FROM login_throttle WHERE username_key = $1")
        .bind(username_key)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Deletes counters whose window has passed (periodic cleanup; idempotent, so N replicas may run
/// it at once).
#[tracing::instrument(skip(db))]
pub async fn delete_stale(db: &Db, now: i64, window_secs: i64) -> Result<u64, DbError> {
    with_db!(db, pool => sqlx::query("DELETE FROM login_throttle WHERE window_started_at <= $1")
        .bind(now - window_secs)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}
