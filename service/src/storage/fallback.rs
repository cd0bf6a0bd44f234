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

use std::ops::RangeInclusive;

use super::{ByteStream, ObjectReader, ObjectStore, SharedStore, StorageError, StoredObject};

/// The counter of reads served (or attempted) from the replica, by `outcome`:
/// `served`, `missing` (not replicated yet) or `failed` (the replica is unavailable too).
pub const FALLBACK_READS_METRIC: &str = "storage_fallback_reads_total";

pub struct FallbackStore {
    primary: SharedStore,
    replica: SharedStore,
}

impl FallbackStore {
    /// Reads go to `primary`, and to `replica` when `primary` is unavailable; writes go to
    /// `primary` only.
    pub fn new(primary: SharedStore, replica: SharedStore) -> Self {
        Self { primary, replica }
    }

    fn count(outcome: &'static str) {
        metrics::counter!(FALLBACK_READS_METRIC, "outcome" => outcome).increment(1);
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
        let primary_error = match self.primary.get(key, range.clone()).await {
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
