//! Object storage for file bytes and job results: one interface, two implementations
//! (S3 via aws-sdk-s3 for production, a local folder for the embedded single-node mode).
//!
//! The contract every implementation keeps:
//! - `put` streams: the body is never held in memory whole; size and SHA-256 are computed on the
//!   fly. When it fails for any reason (too large, body error or client disconnect, storage
//!   error) nothing is left behind at `key`: no object, no open multipart upload.
//! - `put` returns only once the object is durable and readable.
//! - `get` streams the bytes back, optionally a single inclusive byte range that the caller has
//!   already checked against the object's size.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of body chunks; an `Err` item means the producer (usually the HTTP client) failed.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// What `put` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// An object being read back.
pub struct ObjectReader {
    /// Size of the whole object.
    pub total_size: u64,
    /// The bytes served by `body` (the requested range, or the whole object).
    pub range: RangeInclusive<u64>,
    pub etag: Option<String>,
    pub body: ByteStream,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the request body failed: {0}")]
    Body(#[source] std::io::Error),
    #[error("no object at {key}")]
    NotFound { key: String },
    /// The storage service did not answer, timed out or failed: retryable, maps to 503.
    #[error("object storage is unavailable: {0}")]
    Unavailable(String),
    /// A configuration problem found at start-up (bad STORAGE_URL, missing bucket...).
    #[error("invalid storage configuration: {0}")]
    Config(String),
}

#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Streams `body` to `key`. Fails with `TooLarge` as soon as more than `max_bytes` arrive.
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError>;

    /// Reads `key`, the whole object or one inclusive byte range within it.
    async fn get(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError>;

    /// Deletes `key`; deleting a missing key succeeds (idempotent).
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Answers quickly whether the storage is reachable (for `/readyz`).
    async fn check(&self) -> Result<(), StorageError>;

    /// Where objects go, for logs: `s3://bucket/prefix` or `file:///path`. Never secrets.
    fn describe(&self) -> String;
}

pub type SharedStore = Arc<dyn ObjectStore>;

/// Storage settings, filled from configuration (`STORAGE_URL` and the S3 flags).
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `s3://bucket[/prefix]`, or a local folder as `file:///abs/path`, `file://rel/path` or a
    /// bare path.
    pub url: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub force_path_style: bool,
    /// Compute request checksums only when an operation requires them (servers that reject the
    /// SDK's default CRC32 checksums).
    pub checksum_when_required: bool,
    /// Multipart part size in bytes (S3's minimum is 5 MiB).
    pub part_size: usize,
}

/// Opens the store that `settings.url` names.
pub async fn connect(settings: &StorageSettings) -> Result<SharedStore, StorageError> {
    Err(StorageError::Config(format!(
        "no storage backend is built yet for {}",
        settings.url
    )))
}
