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
//!
//! With `STORAGE_FALLBACK_URL` the S3 store is wrapped in a [`FallbackStore`]: reads go to the
//! replica bucket while the primary is unavailable, writes never do.

mod fallback;
mod key;
mod local;
mod meter;
mod s3;

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

pub use fallback::{FALLBACK_READS_METRIC, FallbackStore, PRIMARY_SKIPPED_METRIC};
pub use local::LocalStore;
pub use s3::{MIN_PART_SIZE, S3Store};

/// 8 MiB parts: two in memory per upload, and 1 GiB in 128 parts.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

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
    /// The primary storage is unavailable and the replica read instead has no object at `key`
    /// yet (replication is asynchronous): retryable, maps to 503 with `Retry-After`.
    #[error("object storage is unavailable and its replica has no object at {key} yet")]
    NotReplicated {
        key: String,
        #[source]
        primary: Box<StorageError>,
    },
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

    /// Like `check`, for the replica that reads fall back to; `None` when there is none.
    async fn check_fallback(&self) -> Option<Result<(), StorageError>> {
        None
    }

    /// Where objects go, for logs: `s3://bucket/prefix` or `file:///path`. Never secrets.
    fn describe(&self) -> String;

    /// Stores a body that is already in memory (small results, tests).
    async fn put_bytes(
        &self,
        key: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<StoredObject, StorageError> {
        let size = bytes.len() as u64;
        let body = futures::stream::once(async move { Ok(bytes) }).boxed();
        self.put(key, content_type, body, size).await
    }
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
    /// The replica bucket that reads fall back to while the primary is unavailable (S3 only).
    pub fallback: Option<FallbackSettings>,
}

/// `STORAGE_FALLBACK_URL` and `STORAGE_FALLBACK_REGION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackSettings {
    /// `s3://bucket[/prefix]`.
    pub url: String,
    /// The replica bucket's region; `None`: the primary's (the AWS region chain).
    pub region: Option<String>,
}

impl StorageSettings {
    /// Settings for `url` with the defaults: virtual-host addressing, the SDK's default
    /// checksums, 8 MiB parts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            force_path_style: false,
            checksum_when_required: false,
            part_size: DEFAULT_PART_SIZE,
            fallback: None,
        }
    }
}

/// Where `STORAGE_URL` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// `s3://bucket[/prefix]`; `prefix` is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
    /// A local folder (`file://...` or a bare path).
    Local(std::path::PathBuf),
}

impl StorageLocation {
    /// Parses `STORAGE_URL`: `s3://bucket[/prefix]`, `file:///abs/path`, `file://rel/path` or a
    /// bare path.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        Self::parse_named(url, "STORAGE_URL")
    }

    /// Like [`StorageLocation::parse`], with messages naming `variable`.
    pub fn parse_named(url: &str, variable: &str) -> Result<Self, StorageError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StorageError::Config(format!(
                "{variable} is empty: use s3://bucket[/prefix] or a local folder"
            )));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_bucket_name(bucket) {
                return Err(StorageError::Config(format!(
                    "{variable} {url:?} does not name a valid S3 bucket \
                     (3-63 characters: lower-case letters, digits, '.', '-'), \
                     expected s3://bucket[/prefix]"
                )));
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() {
                key::validate(prefix).map_err(|why| {
                    StorageError::Config(format!("{variable} {url:?} has an invalid prefix: {why}"))
                })?;
            }
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        let path = match url.strip_prefix("file://") {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(StorageError::Config(format!(
                    "{variable} {url:?} has an unknown scheme: use s3://bucket[/prefix], \
                     file:///path or a bare folder path"
                )));
            }
            None => url,
        };
        if path.is_empty() {
            return Err(StorageError::Config(format!(
                "{variable} {url:?} names no folder: use file:///path or a bare folder path"
            )));
        }
        Ok(Self::Local(path.into()))
    }
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Opens the store that `settings.url` names. For S3 the client comes from the standard AWS
/// chain (environment, profile, container/instance credentials; `AWS_ENDPOINT_URL`).
#[tracing::instrument(skip_all, fields(url = %settings.url))]
pub async fn connect(settings: &StorageSettings) -> Result<SharedStore, StorageError> {
    match StorageLocation::parse(&settings.url)? {
        StorageLocation::S3 { .. } => {
            let sdk_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            connect_with_sdk_config(settings, &sdk_config).await
        }
        StorageLocation::Local(path) => {
            if settings.fallback.is_some() {
                return Err(fallback_needs_s3());
            }
            Ok(Arc::new(LocalStore::open(path).await?))
        }
    }
}

/// Like [`connect`], but with an explicit AWS configuration for S3 (tests, or callers that load
/// the configuration themselves). The fallback replica, if any, uses the same configuration with
/// its own region when `STORAGE_FALLBACK_REGION` names one.
pub async fn connect_with_sdk_config(
    settings: &StorageSettings,
    sdk_config: &aws_config::SdkConfig,
) -> Result<SharedStore, StorageError> {
    let primary: SharedStore = match StorageLocation::parse(&settings.url)? {
        StorageLocation::S3 { bucket, prefix } => {
            Arc::new(S3Store::new(sdk_config, bucket, prefix, settings)?)
        }
        StorageLocation::Local(path) => {
            if settings.fallback.is_some() {
                return Err(fallback_needs_s3());
            }
            return Ok(Arc::new(LocalStore::open(path).await?));
        }
    };
    let Some(fallback) = &settings.fallback else {
        return Ok(primary);
    };
    let (bucket, prefix) =
        match StorageLocation::parse_named(&fallback.url, "STORAGE_FALLBACK_URL")? {
            StorageLocation::S3 { bucket, prefix } => (bucket, prefix),
            StorageLocation::Local(_) => {
                return Err(StorageError::Config(
                    "STORAGE_FALLBACK_URL must be s3://bucket[/prefix]".into(),
                ));
            }
        };
    let replica_config = match &fallback.region {
        Some(region) => sdk_config
            .to_builder()
            .region(aws_config::Region::new(region.clone()))
            .build(),
        None => sdk_config.clone(),
    };
    let replica = S3Store::new(&replica_config, bucket, prefix, settings)?;
    Ok(Arc::new(FallbackStore::new(primary, Arc::new(replica))))
}

fn fallback_needs_s3() -> StorageError {
    StorageError::Config(
        "STORAGE_FALLBACK_URL needs an s3:// STORAGE_URL (a local folder has no replica)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        assert_eq!(
            StorageLocation::parse("s3://my-bucket").unwrap(),
            StorageLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StorageLocation::parse("s3://my-bucket/a/b/").unwrap(),
            StorageLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b/".into()
            }
        );
    }

    #[test]
    fn parses_local_paths() {
        assert_eq!(
            StorageLocation::parse("file:///var/data").unwrap(),
            StorageLocation::Local("/var/data".into())
        );
        assert_eq!(
            StorageLocation::parse("file://data/files").unwrap(),
            StorageLocation::Local("data/files".into())
        );
        assert_eq!(
            StorageLocation::parse("./data/files").unwrap(),
            StorageLocation::Local("./data/files".into())
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_clear_message() {
        for (url, words) in [
            ("", "empty"),
            ("s3://", "valid S3 bucket"),
            ("s3://Upper_Case", "valid S3 bucket"),
            ("s3://bucket/../x", "invalid prefix"),
            ("gs://bucket", "unknown scheme"),
            ("file://", "names no folder"),
        ] {
            match StorageLocation::parse(url) {
                Err(StorageError::Config(message)) => {
                    assert!(message.contains(words), "{url:?}: {message}")
                }
                other => panic!("{url:?}: expected a Config error, got {other:?}"),
            }
        }
    }
}
