//! The S3 backend (aws-sdk-s3). Uploads of unknown length go up as a multipart upload in
//! fixed-size parts, so at most two parts are in memory (one uploading, one filling); an upload
//! that fails or is cancelled is aborted, so no parts are left to bill for.

use std::fmt::Debug;
use std::ops::RangeInclusive;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::meter::Meter;
use super::{
    ByteStream, ObjectReader, ObjectStore, StorageError, StorageSettings, StoredObject, key,
};

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's maximum number of parts in one upload.
const MAX_PARTS: i32 = 10_000;
/// The first buffer of a body, before it is known to be large.
const SMALL_BUFFER: usize = 64 * 1024;
/// Short enough that an S3 outage turns into a 503 in seconds rather than a hanging request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of one call; an 8 MiB part needs about 300 KiB/s to make it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// All attempts of one call. Streaming a download's body is not included, only its start.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// S3 may take minutes to assemble a large object (it answers 200 with keep-alive whitespace
/// meanwhile); a retry while the first attempt still runs fails, so CompleteMultipartUpload
/// gets a long attempt.
const COMPLETE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
const COMPLETE_OPERATION_TIMEOUT: Duration = Duration::from_secs(600);
/// `/readyz` must answer well within the load balancer's health check timeout.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed `put` waits for its cleanup before returning (the cleanup goes on after):
/// enough for a healthy S3 to abort, short enough that an outage still answers 503 in seconds.
const CLEANUP_WAIT: Duration = Duration::from_secs(2);
/// The SDK's standard retry (3 attempts), with a shorter first backoff than its 1 s: when the S3
/// endpoint is unreachable every attempt fails at once, and the 503 then comes within ~1.5 s
/// instead of ~3 s. Throttling (503 SlowDown) still backs off exponentially with jitter.
const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(500);

pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty or ending with `/`.
    prefix: String,
    part_size: usize,
    /// Send CRC32 checksums with parts (off when the server only accepts them when required).
    part_checksums: bool,
}

impl S3Store {
    /// Builds the client from `sdk_config` (credentials, region, endpoint) and the S3 settings.
    pub fn new(
        sdk_config: &SdkConfig,
        bucket: String,
        prefix: String,
        settings: &StorageSettings,
    ) -> Result<Self, StorageError> {
        if settings.part_size < MIN_PART_SIZE {
            return Err(StorageError::Config(format!(
                "the multipart part size {} is below S3's minimum of {MIN_PART_SIZE} bytes (5 MiB)",
                settings.part_size
            )));
        }
        if sdk_config.region().is_none() {
            return Err(StorageError::Config(
                "no AWS region is configured for S3: set AWS_REGION".into(),
            ));
        }
        let mut builder = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(settings.force_path_style)
            .retry_config(RetryConfig::standard().with_initial_backoff(RETRY_INITIAL_BACKOFF))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if settings.checksum_when_required {
            builder = builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix,
            part_size: settings.part_size,
            part_checksums: !settings.checksum_when_required,
        })
    }

    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        Ok(format!("{}{}", self.prefix, key::checked(key)?))
    }

    async fn put_small(
        &self,
        key: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        // A cancelled or failed PutObject may still have landed: delete it then.
        let cleanup = Cleanup::new(self.client.clone(), &self.bucket, key, None);
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .body(SdkByteStream::from(bytes))
            .send()
            .await;
        match result {
            Ok(_) => {
                cleanup.disarm();
                Ok(())
            }
            Err(err) => {
                cleanup.run_bounded().await;
                Err(unavailable("PutObject", err))
            }
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        content_type: &str,
        first: Bytes,
        parts: &mut PartReader,
    ) -> Result<(), StorageError> {
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type);
        if self.part_checksums {
            create = create.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let upload_id = create
            .send()
            .await
            .map_err(|err| unavailable("CreateMultipartUpload", err))?
            .upload_id
            .ok_or_else(|| {
                StorageError::Unavailable("CreateMultipartUpload returned no upload id".into())
            })?;
        // From here on, whatever happens (an error, or the caller dropping this future), the
        // upload is aborted unless it completes.
        let cleanup = Cleanup::new(
            self.client.clone(),
            &self.bucket,
            key,
            Some(upload_id.clone()),
        );
        match self.upload_parts(key, &upload_id, first, parts).await {
            Ok(()) => {
                cleanup.disarm();
                Ok(())
            }
            Err(err) => {
                cleanup.run_bounded().await;
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        parts: &mut PartReader,
    ) -> Result<(), StorageError> {
        let mut completed = Vec::new();
        let mut current = first;
        let mut number = 1;
        loop {
            // Upload one part while the next one fills: the client's upload speed and S3's are
            // both used, with two parts in memory at most.
            let (part, next) = futures::try_join!(
                self.upload_part(key, upload_id, number, current),
                parts.next_part()
            )?;
            completed.push(part);
            match next {
                Some(bytes) => current = bytes,
                None => break,
            }
            number += 1;
            if number > MAX_PARTS {
                return Err(StorageError::Config(format!(
                    "the upload needs more than {MAX_PARTS} parts of {} bytes: \
                     raise the part size",
                    self.part_size
                )));
            }
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::new().timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .operation_attempt_timeout(COMPLETE_ATTEMPT_TIMEOUT)
                        .operation_timeout(COMPLETE_OPERATION_TIMEOUT)
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|err| unavailable("CompleteMultipartUpload", err))?;
        Ok(())
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        bytes: Bytes,
    ) -> Result<CompletedPart, StorageError> {
        let mut request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(bytes.len() as i64)
            .body(SdkByteStream::from(bytes));
        if self.part_checksums {
            request = request.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let output = request
            .send()
            .await
            .map_err(|err| unavailable("UploadPart", err))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(output.e_tag)
            .set_checksum_crc32(output.checksum_crc32)
            .build())
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    #[tracing::instrument(skip(self, body), err(Display))]
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        let key = self.object_key(key)?;
        let mut parts = PartReader::new(body, self.part_size, max_bytes);
        match parts.next_part().await? {
            Some(first) if first.len() == self.part_size => {
                self.put_multipart(&key, content_type, first, &mut parts)
                    .await?
            }
            // The whole body fitted in one part: one PutObject is enough.
            first => {
                self.put_small(&key, content_type, first.unwrap_or_default())
                    .await?
            }
        }
        Ok(parts.finish())
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn get(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError> {
        let object_key = self.object_key(key)?;
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key);
        if let Some(range) = &range {
            request = request.range(format!("bytes={}-{}", range.start(), range.end()));
        }
        let output = request
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(GetObjectError::NoSuchKey(_)) => StorageError::NotFound {
                    key: key.to_owned(),
                },
                _ => unavailable("GetObject", err),
            })?;
        let length = output.content_length.unwrap_or(0).max(0) as u64;
        let (total_size, served) = match output
            .content_range
            .as_deref()
            .and_then(parse_content_range)
        {
            Some((served, total)) => (total, served),
            None => (length, 0..=length.saturating_sub(1)),
        };
        let body = futures::stream::unfold(output.body, |mut body| async move {
            body.next()
                .await
                .map(|chunk| (chunk.map_err(std::io::Error::other), body))
        })
        .boxed();
        Ok(ObjectReader {
            total_size,
            range: served,
            etag: output.e_tag,
            body,
        })
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let key = self.object_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| unavailable("DeleteObject", err))?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn check(&self) -> Result<(), StorageError> {
        let result = self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::new()
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(CHECK_TIMEOUT)
                            .operation_timeout(CHECK_TIMEOUT)
                            .build(),
                    )
                    .retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(HeadBucketError::NotFound(_))) => {
                Err(StorageError::Unavailable(format!(
                    "the bucket {} does not exist",
                    self.bucket
                )))
            }
            Err(err) => Err(unavailable("HeadBucket", err)),
        }
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Any S3 failure but a missing object is the storage being unavailable (503): the keys are the
/// service's own, so a refusal means an outage or a misconfiguration, not a client mistake.
fn unavailable<E, R>(operation: &str, err: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + 'static,
    R: Debug,
{
    let what = match &err {
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => "timed out".to_owned(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    StorageError::Unavailable(format!("S3 {operation} failed: {what}"))
}

/// `bytes 0-9/100` -> (0..=9, 100).
fn parse_content_range(header: &str) -> Option<(RangeInclusive<u64>, u64)> {
    let (range, total) = header.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?..=end.parse().ok()?, total.parse().ok()?))
}

/// Cuts the body into parts of exactly `part_size` bytes (the last may be shorter), metering it
/// on the way. Holds at most one part plus one incoming chunk.
struct PartReader {
    body: ByteStream,
    meter: Meter,
    part_size: usize,
    buffer: BytesMut,
    /// The part of a chunk that did not fit into the previous part.
    pending: Option<Bytes>,
    ended: bool,
}

impl PartReader {
    fn new(body: ByteStream, part_size: usize, max_bytes: u64) -> Self {
        Self {
            body,
            meter: Meter::new(max_bytes),
            part_size,
            buffer: BytesMut::new(),
            pending: None,
            ended: false,
        }
    }

    /// The next part, or `None` once the body has ended and every byte was handed out.
    async fn next_part(&mut self) -> Result<Option<Bytes>, StorageError> {
        loop {
            if let Some(mut chunk) = self.pending.take() {
                let room = self.part_size - self.buffer.len();
                if chunk.len() > room {
                    self.pending = Some(chunk.split_off(room));
                }
                if self.buffer.capacity() - self.buffer.len() < chunk.len() {
                    // Small bodies get a small buffer; a body that outgrows it gets a buffer of
                    // the part's final size at once, so it is never regrown (and doubled).
                    let needed = self.buffer.len() + chunk.len();
                    let capacity = if needed <= SMALL_BUFFER {
                        SMALL_BUFFER
                    } else {
                        self.part_size
                    };
                    let mut bigger = BytesMut::with_capacity(capacity);
                    bigger.extend_from_slice(&self.buffer);
                    self.buffer = bigger;
                }
                self.buffer.extend_from_slice(&chunk);
            }
            if self.buffer.len() == self.part_size || (self.ended && !self.buffer.is_empty()) {
                return Ok(Some(std::mem::take(&mut self.buffer).freeze()));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.meter.observe(&chunk)?;
                    self.pending = Some(chunk);
                }
                Some(Err(err)) => return Err(StorageError::Body(err)),
                None => self.ended = true,
            }
        }
    }

    fn finish(self) -> StoredObject {
        self.meter.finish()
    }
}

/// Removes what a failed or cancelled upload may have left: the open multipart upload and the
/// object. Runs on `run_bounded`, or from `Drop` when the upload future was dropped mid-way.
struct Cleanup {
    job: Option<CleanupJob>,
}

struct CleanupJob {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl Cleanup {
    fn new(client: Client, bucket: &str, key: &str, upload_id: Option<String>) -> Self {
        Self {
            job: Some(CleanupJob {
                client,
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                upload_id,
            }),
        }
    }

    fn disarm(mut self) {
        self.job = None;
    }

    /// Cleans up now and waits for it, but not for longer than `CLEANUP_WAIT`: when S3 is down
    /// the cleanup cannot succeed anyway, and the caller's 503 should not wait for it.
    async fn run_bounded(mut self) {
        if let Some(job) = self.job.take() {
            let task = tokio::spawn(job.run());
            if tokio::time::timeout(CLEANUP_WAIT, task).await.is_err() {
                tracing::warn!("the cleanup of a failed upload goes on in the background");
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(job.run());
            }
            Err(_) => tracing::warn!(
                key = %job.key,
                "an upload was dropped outside a runtime: it is left to the bucket's lifecycle rule"
            ),
        }
    }
}

impl CleanupJob {
    #[tracing::instrument(skip_all, fields(key = %self.key))]
    async fn run(self) {
        if let Some(upload_id) = &self.upload_id {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(err) = aborted {
                // Left to the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
                tracing::warn!(error = %DisplayErrorContext(&err), "aborting a multipart upload failed");
            }
        }
        // The upload may have completed just before it was dropped (or a PutObject landed).
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await;
        if let Err(err) = deleted {
            tracing::warn!(error = %DisplayErrorContext(&err), "deleting a failed upload's object failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0..=9, 100)));
        assert_eq!(parse_content_range("bytes */100"), None);
    }

    fn stream(chunks: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
    }

    #[tokio::test]
    async fn cuts_the_body_into_parts_of_the_same_size() {
        let mut reader = PartReader::new(stream(vec![b"abc", b"defgh", b"", b"ij"]), 4, 100);
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await.unwrap() {
            parts.push(part);
        }
        assert_eq!(parts, vec![&b"abcd"[..], b"efgh", b"ij"]);
        assert_eq!(reader.finish().size, 10);
    }

    #[tokio::test]
    async fn an_exact_multiple_ends_without_an_empty_part() {
        let mut reader = PartReader::new(stream(vec![b"abcdefgh"]), 4, 100);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"abcd"[..]);
        assert_eq!(reader.next_part().await.unwrap().unwrap(), &b"efgh"[..]);
        assert_eq!(reader.next_part().await.unwrap(), None);
    }
}
