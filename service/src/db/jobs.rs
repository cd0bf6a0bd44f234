//! The `jobs` table, a queue in the database: workers on every replica claim jobs with
//! `FOR UPDATE SKIP LOCKED` (Postgres; SQLite has a single writer, so its plain
//! `UPDATE ... RETURNING` is already atomic), under a lease their heartbeat extends.
//!
//! Every write made by a worker names its lease owner (a token unique to one claim): a worker
//! whose lease expired and was taken over, or whose job was cancelled, changes nothing.
//! Lease times are Unix milliseconds from the replicas' clocks (NTP-synchronised on ECS); the
//! lease is tens of seconds, so millisecond skew does not matter.

use time::OffsetDateTime;
use uuid::Uuid;

use super::owned::OwnedTable;
use super::{Db, DbError, Pool};
use crate::with_db;

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub file_id: Uuid,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub bytes_processed: i64,
    pub bytes_total: i64,
    pub result_key: Option<String>,
    pub result_summary: Option<String>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, file_id, kind, status, attempts, max_attempts, lease_owner, \
    bytes_processed, bytes_total, result_key, result_summary, error, created_at, started_at, \
    finished_at, updated_at";

/// A new job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub user_id: Uuid,
    pub file_id: Uuid,
    pub kind: String,
    pub max_attempts: i32,
    pub bytes_total: i64,
}

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[tracing::instrument(skip(db, job), fields(job_id = %job.id))]
pub async fn insert(db: &Db, job: &NewJob) -> Result<JobRow, DbError> {
    let now = OffsetDateTime::now_utc();
    let sql = format!(
        "INSERT INTO jobs (id, user_id, file_id, kind, status, max_attempts, bytes_total, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, '{QUEUED}', $5, $6, $7, $7) RETURNING {COLUMNS}"
    );
    with_db!(db, pool => sqlx::query_as::<_, JobRow>(&sql)
        .bind(job.id)
        .bind(job.user_id)
        .bind(job.file_id)
        .bind(&job.kind)
        .bind(job.max_attempts)
        .bind(job.bytes_total)
        .bind(now)
        .fetch_one(pool)
        .await)
}

const TABLE: OwnedTable = OwnedTable {
    name: "jobs",
    columns: COLUMNS,
};

/// `user_id`'s job `id`; another user's is as absent as a missing one.
#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, user_id: Uuid, id: Uuid) -> Result<Option<JobRow>, DbError> {
    TABLE.find(db, user_id, id).await
}

/// Up to `limit` of `user_id`'s jobs, newest first, older than `before` when given.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<JobRow>, DbError> {
    TABLE.page(db, user_id, before, limit).await
}

/// `user_id`'s newest job of `kind` on `file_id`, only among those in `status` when given (the
/// UI's file page shows the latest run and the latest result).
#[tracing::instrument(skip(db))]
pub async fn latest_of_file(
    db: &Db,
    user_id: Uuid,
    file_id: Uuid,
    kind: &str,
    status: Option<&str>,
) -> Result<Option<JobRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE user_id = $1 AND file_id = $2 AND kind = $3 \
         AND ($4 IS NULL OR status = $4) ORDER BY id DESC LIMIT 1"
    );
    with_db!(db, pool => sqlx::query_as::<_, JobRow>(&sql)
        .bind(user_id)
        .bind(file_id)
        .bind(kind)
        .bind(status)
        .fetch_optional(pool)
        .await)
}

/// Result objects of `file_id`'s jobs (to delete with the file).
#[tracing::instrument(skip(db))]
pub async fn result_keys_of_file(db: &Db, file_id: Uuid) -> Result<Vec<String>, DbError> {
    with_db!(db, pool => sqlx::query_scalar::<_, String>(
        "SELECT result_key FROM jobs WHERE file_id = $1 AND result_key IS NOT NULL",
    )
    .bind(file_id)
    .fetch_all(pool)
    .await)
}

/// Cancels `user_id`'s job `id` if it is queued or running; returns whether it did. A running
/// worker notices at its next heartbeat (its lease is gone) and stops.
#[tracing::instrument(skip(db))]
pub async fn cancel(db: &Db, user_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    let now = OffsetDateTime::now_utc();
    let sql = format!(
        "UPDATE jobs SET status = '{CANCELLED}', lease_owner = NULL, lease_expires_ms = NULL, \
         finished_at = $3, updated_at = $3 \
         WHERE id = $1 AND user_id = $2 AND status IN ('{QUEUED}', '{RUNNING}')"
    );
    with_db!(db, pool => sqlx::query(&sql)
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// Cancels every queued or running job of `file_id` (before the file is deleted). Their workers
/// find out at their next heartbeat or when recording the outcome, and then delete any result
/// object they wrote.
#[tracing::instrument(skip(db))]
pub async fn cancel_of_file(db: &Db, file_id: Uuid) -> Result<u64, DbError> {
    let now = OffsetDateTime::now_utc();
    let sql = format!(
        "UPDATE jobs SET status = '{CANCELLED}', lease_owner = NULL, lease_expires_ms = NULL, \
         finished_at = $2, updated_at = $2 \
         WHERE file_id = $1 AND status IN ('{QUEUED}', '{RUNNING}')"
    );
    with_db!(db, pool => sqlx::query(&sql)
        .bind(file_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

/// Claims the oldest job that is queued, or running under an expired lease, for `owner` until
/// `lease_ms` from now, and records the attempt. None when there is nothing to do.
#[tracing::instrument(skip(db))]
pub async fn claim(db: &Db, owner: &str, lease_ms: i64) -> Result<Option<JobRow>, DbError> {
    let now = OffsetDateTime::now_utc();
    let claim_ms = now_ms();
    let lock = match db.pool {
        Pool::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        Pool::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE jobs SET status = '{RUNNING}', attempts = attempts + 1, lease_owner = $1, \
         lease_expires_ms = $2, started_at = COALESCE(started_at, $3), updated_at = $3 \
         WHERE id = (SELECT id FROM jobs \
             WHERE ((status = '{QUEUED}' AND (run_after_ms IS NULL OR run_after_ms <= $4)) \
                    OR (status = '{RUNNING}' AND lease_expires_ms < $4)) \
               AND attempts < max_attempts \
             ORDER BY created_at, id LIMIT 1 {lock}) \
         RETURNING {COLUMNS}"
    );
    let attempt_sql =
        "INSERT INTO job_attempts (job_id, attempt, owner, started_ms) VALUES ($1, $2, $3, $4)";
    with_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let job = sqlx::query_as::<_, JobRow>(&sql)
            .bind(owner)
            .bind(claim_ms + lease_ms)
            .bind(now)
            .bind(claim_ms)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(job) = &job {
            // Read the clock after the claim: the row became claimable when the previous
            // attempt's transaction committed, and that attempt took its `ended_ms` before
            // committing, so this start is never recorded before the previous end.
            sqlx::query(attempt_sql)
                .bind(job.id)
                .bind(job.attempts)
                .bind(owner)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(job)
    }.await)
}

/// Fails the jobs whose lease expired on their last allowed attempt (their workers died each
/// time): they would otherwise stay `running` forever. Returns how many.
#[tracing::instrument(skip(db))]
pub async fn fail_exhausted(db: &Db) -> Result<u64, DbError> {
    let now = OffsetDateTime::now_utc();
    let sql = format!(
        "UPDATE jobs SET status = '{FAILED}', lease_owner = NULL, lease_expires_ms = NULL, \
         error = COALESCE(error, 'the worker running it stopped answering') || ' (gave up after ' || attempts || ' attempts)', \
         finished_at = $1, updated_at = $1 \
         WHERE status = '{RUNNING}' AND lease_expires_ms < $2 AND attempts >= max_attempts"
    );
    with_db!(db, pool => sqlx::query(&sql)
        .bind(now)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

/// Extends `owner`'s lease and records progress. False when the lease is no longer `owner`'s
/// (taken over after expiring, or the job was cancelled): the worker must stop.
#[tracing::instrument(skip(db))]
pub async fn heartbeat(
    db: &Db,
    id: Uuid,
    owner: &str,
    lease_ms: i64,
    bytes_processed: i64,
) -> Result<bool, DbError> {
    let sql = format!(
        "UPDATE jobs SET lease_expires_ms = $1, bytes_processed = $2, updated_at = $3 \
         WHERE id = $4 AND lease_owner = $5 AND status = '{RUNNING}'"
    );
    with_db!(db, pool => sqlx::query(&sql)
        .bind(now_ms() + lease_ms)
        .bind(bytes_processed)
        .bind(OffsetDateTime::now_utc())
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Finish {
    Succeeded {
        result_key: String,
        summary: String,
    },
    /// A permanent failure: the input is bad, another attempt would fail the same way.
    Failed {
        error: String,
    },
    /// A transient failure (storage down...): queued again unless attempts are used up, and not
    /// claimed again before `run_after_ms` (Unix milliseconds).
    Retry {
        error: String,
        run_after_ms: i64,
    },
    /// Shutdown: handed back without counting the attempt.
    Released,
}

impl Finish {
    fn outcome(&self) -> &'static str {
        match self {
            Finish::Succeeded { .. } => SUCCEEDED,
            Finish::Failed { .. } => FAILED,
            Finish::Retry { .. } => "retry",
            Finish::Released => "released",
        }
    }
}

/// Ends `owner`'s attempt. False when the lease was no longer `owner`'s (nothing changed but the
/// attempt's record). Writing the same result twice is harmless: the result object's key is the
/// job's, so a repeated attempt overwrites it with the same content.
#[tracing::instrument(skip(db, finish), fields(outcome = finish.outcome()))]
pub async fn finish(
    db: &Db,
    id: Uuid,
    owner: &str,
    attempt: i32,
    finish: &Finish,
) -> Result<bool, DbError> {
    // $1 id, $2 owner, $3 now, then the variant's own values.
    let guard = format!("WHERE id = $1 AND lease_owner = $2 AND status = '{RUNNING}'");
    let released = "lease_owner = NULL, lease_expires_ms = NULL";
    let sql = match finish {
        Finish::Succeeded { .. } => format!(
            "UPDATE jobs SET status = '{SUCCEEDED}', result_key = $4, result_summary = $5, error = NULL, \
             bytes_processed = bytes_total, {released}, finished_at = $3, updated_at = $3 {guard}"
        ),
        Finish::Failed { .. } => format!(
            "UPDATE jobs SET status = '{FAILED}', error = $4, {released}, finished_at = $3, updated_at = $3 {guard}"
        ),
        Finish::Retry { .. } => format!(
            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN '{FAILED}' ELSE '{QUEUED}' END, \
             finished_at = CASE WHEN attempts >= max_attempts THEN $3 ELSE NULL END, \
             error = $4, run_after_ms = $5, {released}, updated_at = $3 {guard}"
        ),
        Finish::Released => format!(
            "UPDATE jobs SET status = '{QUEUED}', attempts = attempts - 1, {released}, updated_at = $3 {guard}"
        ),
    };
    let attempt_sql = "UPDATE job_attempts SET ended_ms = $1, outcome = $2 \
        WHERE job_id = $3 AND attempt = $4 AND owner = $5";
    let now = OffsetDateTime::now_utc();
    with_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        let query = sqlx::query(&sql).bind(id).bind(owner).bind(now);
        let query = match finish {
            Finish::Succeeded { result_key, summary } => query.bind(result_key).bind(summary),
            Finish::Failed { error } => query.bind(error),
            Finish::Retry { error, run_after_ms } => query.bind(error).bind(run_after_ms),
            Finish::Released => query,
        };
        let changed = query.execute(&mut *tx).await?.rows_affected() == 1;
        let outcome = if changed { finish.outcome() } else { "lost_lease" };
        sqlx::query(attempt_sql)
            .bind(now_ms())
            .bind(outcome)
            .bind(id)
            .bind(attempt)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(changed)
    }.await)
}

/// One execution attempt, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub job_id: Uuid,
    pub attempt: i32,
    pub owner: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub outcome: Option<String>,
}

/// Every attempt of `job_id`, in order.
#[tracing::instrument(skip(db))]
pub async fn attempts(db: &Db, job_id: Uuid) -> Result<Vec<AttemptRow>, DbError> {
    with_db!(db, pool => sqlx::query_as::<_, AttemptRow>(
        "SELECT job_id, attempt, owner, started_ms, ended_ms, outcome FROM job_attempts WHERE job_id = $1 ORDER BY started_ms",
    )
    .bind(job_id)
    .fetch_all(pool)
    .await)
}
