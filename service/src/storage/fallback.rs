//! Reads from a replica bucket while the primary object storage is unavailable
//! (`STORAGE_FALLBACK_URL`, e.g. the destination of S3 Cross-Region Replication).
//!
//! Only reads fall back, and only when the primary is *unavailable* (`StorageError::Unavailable`:
//! no connection, a timeout, a 5xx): a missing object on the primary is a missing object. Writes
//! (`put`, `delete`) always go to the primary, so they fail with 503 during its outage and nothing
//! is ever written where replication would not carry it back.
//!
//! Replication is asynchronous: the newest objects may not be in the replica yet. Such a read
//! fails with `StorageError::NotReplicated` (503 + `Retry-After`: the file exists, it is just not
//! readable until the primary is back or replication catches up).
//!
//! An outage should cost a download milliseconds, not the primary's timeouts: a primary read
//! that has not started answering within `primary_deadline` counts as unavailable (a partition
//! answers nothing, and the S3 client would wait for its attempt timeouts), and once the primary
//! is found unavailable, reads skip it for `cooldown` (a circuit breaker); the first read after
//! that tries the primary again.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{ByteStream, ObjectReader, ObjectStore, SharedStore, StorageError, StoredObject};

/// The counter of reads served (or attempted) from the replica, by `outcome`:
/// `served`, `missing` (not replicated yet) or `failed` (the replica is unavailable too).
pub const FALLBACK_READS_METRIC: &str = "storage_fallback_reads_total";
/// The counter of reads that went straight to the replica, the primary having failed shortly
/// before (the breaker was open).
pub const PRIMARY_SKIPPED_METRIC: &str = "storage_primary_skipped_reads_total";

/// S3 starts answering a GET in tens of milliseconds; 2 s without a byte is an outage (or a
/// partition), and waiting longer only makes the download slow without making it work.
pub const PRIMARY_DEADLINE: Duration = Duration::from_secs(2);
/// How long reads skip a primary found unavailable before one tries it again.
pub const COOLDOWN: Duration = Duration::from_secs(10);

pub struct FallbackStore {
    primary: SharedStore,
    replica: SharedStore,
    primary_deadline: Duration,
    cooldown: Duration,
    /// When reads may try the primary again (`None`: the primary is believed to work).
    skip_primary_until: Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl FallbackStore {
    /// Reads go to `primary`, and to `replica` when `primary` is unavailable; writes go to
    /// `primary` only.
    pub fn new(primary: SharedStore, replica: SharedStore) -> Self {
        Self {
            primary,
            replica,
            primary_deadline: PRIMARY_DEADLINE,
            cooldown: COOLDOWN,
            skip_primary_until: Mutex::new(None),
            skipped: AtomicU64::new(0),
        }
    }

    /// Reads of this store that went straight to the replica (also counted, over every store
    /// of the process, as [`PRIMARY_SKIPPED_METRIC`]).
    pub fn primary_skipped_reads(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Other than the defaults ([`PRIMARY_DEADLINE`], [`COOLDOWN`]).
    pub fn with_timing(mut self, primary_deadline: Duration, cooldown: Duration) -> Self {
        self.primary_deadline = primary_deadline;
        self.cooldown = cooldown;
        self
    }

    fn count(outcome: &'static str) {
        metrics::counter!(FALLBACK_READS_METRIC, "outcome" => outcome).increment(1);
    }

    /// `Some(why)` while reads skip the primary.
    fn primary_skipped(&self) -> Option<StorageError> {
        let until = *self
            .skip_primary_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let left = until?.checked_duration_since(Instant::now())?;
        self.skipped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(PRIMARY_SKIPPED_METRIC).increment(1);
        Some(StorageError::Unavailable(format!(
            "the primary object storage failed recently; tried again in {} ms",
            left.as_millis()
        )))
    }

    fn primary_answered(&self, unavailable: bool) {
        let mut until = self
            .skip_primary_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if unavailable {
            if until.is_none() {
                tracing::warn!(
                    cooldown = ?self.cooldown,
                    "the primary object storage is unavailable: reads go to the replica, the primary is tried again after the cooldown"
                );
            }
            *until = Some(Instant::now() + self.cooldown);
        } else if until.take().is_some() {
            tracing::info!("the primary object storage answers again: reads go to it");
        }
    }

    /// The primary's answer, or why it is unavailable.
    async fn read_primary(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError> {
        if let Some(skipped) = self.primary_skipped() {
            return Err(skipped);
        }
        let answer =
            match tokio::time::timeout(self.primary_deadline, self.primary.get(key, range)).await {
                Ok(answer) => answer,
                Err(_) => Err(StorageError::Unavailable(format!(
                    "the primary object storage did not answer within {:?}",
                    self.primary_deadline
                ))),
            };
        self.primary_answered(matches!(answer, Err(StorageError::Unavailable(_))));
        answer
    }
}

#[async_trait::async_trait]
impl ObjectStore for FallbackStore {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        self.primary.put(key, content_type, body, max_bytes).await
    }

    /// Not instrumented: its warnings are logged in the caller's span (a request's, carrying the
    /// request id).
    async fn get(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError> {
        let primary_error = match self.read_primary(key, range.clone()).await {
            Err(error @ StorageError::Unavailable(_)) => error,
            other => return other,
        };
        let replica = self.replica.describe();
        match self.replica.get(key, range).await {
            Ok(reader) => {
                Self::count("served");
                tracing::warn!(
                    key,
                    %replica,
                    primary_error = %primary_error,
                    "the primary object storage is unavailable: read served from the replica"
                );
                Ok(reader)
            }
            Err(StorageError::NotFound { .. }) => {
                Self::count("missing");
                tracing::warn!(
                    key,
                    %replica,
                    primary_error = %primary_error,
                    "the primary object storage is unavailable and the replica has no copy yet"
                );
                Err(StorageError::NotReplicated {
                    key: key.to_owned(),
                    primary: Box::new(primary_error),
                })
            }
            Err(replica_error) => {
                Self::count("failed");
                tracing::warn!(
                    key,
                    %replica,
                    primary_error = %primary_error,
                    replica_error = %replica_error,
                    "the primary object storage and its replica are both unavailable"
                );
                Err(StorageError::Unavailable(format!(
                    "{primary_error}; the replica {replica} failed too: {replica_error}"
                )))
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.primary.delete(key).await
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.primary.check().await
    }

    async fn check_fallback(&self) -> Option<Result<(), StorageError>> {
        Some(self.replica.check().await)
    }

    fn describe(&self) -> String {
        format!(
            "{} (reads fall back to {})",
            self.primary.describe(),
            self.replica.describe()
        )
    }
}
