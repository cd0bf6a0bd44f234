//! The ObjectStore contract, checked against both backends with the same cases: S3 against a
//! real moto server, and the local folder. What is stored is read back from the storage itself
//! (S3 listings, the folder's files), not from the store under test.

use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use bytes::Bytes;
use data_processor::storage::{self, ByteStream, SharedStore, StorageError, StorageSettings};
use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use testkit::moto::MotoServer;

const MIB: u64 = 1024 * 1024;
/// The smallest part S3 accepts, so that the multipart path is reached with small bodies.
const PART: usize = 5 * MIB as usize;
/// Cleanups after a dropped future run in the background; they finish well within this.
// Generous: cleanup runs on a spawned task, and a loaded CI machine with moto can be slow.
const DEADLINE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Fixtures

enum Backend {
    S3 {
        moto: MotoServer,
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
    Local {
        dir: tempfile::TempDir,
    },
}

struct Fixture {
    store: SharedStore,
    backend: Backend,
}

async fn sdk_config(moto: &MotoServer) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

impl Fixture {
    async fn s3() -> Self {
        Self::s3_with(|_| {}).await
    }

    async fn s3_with(adjust: impl FnOnce(&mut StorageSettings)) -> Self {
        let moto = MotoServer::start().await;
        let bucket = moto.create_bucket().await;
        let prefix = format!("tenant-{}", uuid::Uuid::new_v4().simple());
        let mut settings = StorageSettings::new(format!("s3://{bucket}/{prefix}"));
        settings.part_size = PART;
        adjust(&mut settings);
        let sdk = sdk_config(&moto).await;
        let store = storage::connect_with_sdk_config(&settings, &sdk)
            .await
            .expect("connect to moto");
        Self {
            store,
            backend: Backend::S3 {
                client: aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&sdk)
                        .force_path_style(true)
                        .build(),
                ),
                moto,
                bucket,
                prefix: format!("{prefix}/"),
            },
        }
    }

    async fn local() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = StorageSettings::new(format!("file://{}/objects", dir.path().display()));
        let store = storage::connect(&settings).await.expect("open folder");
        Self {
            store,
            backend: Backend::Local { dir },
        }
    }

    /// Every object in the storage (for S3 the whole bucket; for the folder every file,
    /// temporary files included), as keys relative to the store's prefix or root.
    async fn stored(&self) -> Vec<String> {
        match &self.backend {
            Backend::S3 {
                client,
                bucket,
                prefix,
                ..
            } => {
                let mut keys = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    for object in page.expect("list objects").contents() {
                        let key = object.key().unwrap_or_default();
                        keys.push(key.strip_prefix(prefix.as_str()).unwrap_or(key).to_owned());
                    }
                }
                keys.sort();
                keys
            }
            Backend::Local { dir } => {
                let root = dir.path().join("objects");
                let mut files = Vec::new();
                let mut pending = vec![root.clone()];
                while let Some(folder) = pending.pop() {
                    for entry in std::fs::read_dir(&folder).expect("read folder") {
                        let path = entry.expect("folder entry").path();
                        if path.is_dir() {
                            pending.push(path);
                        } else {
                            let relative = path.strip_prefix(&root).expect("under root");
                            files.push(relative.to_string_lossy().into_owned());
                        }
                    }
                }
                files.sort();
                files
            }
        }
    }

    /// Open multipart uploads in the bucket (the folder has none).
    async fn open_uploads(&self) -> Vec<String> {
        match &self.backend {
            Backend::S3 { client, bucket, .. } => client
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .expect("list multipart uploads")
                .uploads()
                .iter()
                .map(|upload| upload.key().unwrap_or_default().to_owned())
                .collect(),
            Backend::Local { .. } => Vec::new(),
        }
    }

    /// Whether an upload is under way: an open multipart upload, or a temporary file.
    async fn upload_in_progress(&self) -> bool {
        match &self.backend {
            Backend::S3 { .. } => !self.open_uploads().await.is_empty(),
            Backend::Local { .. } => self.stored().await.iter().any(|f| f.contains(".tmp-")),
        }
    }

    async fn assert_nothing_left(&self) {
        assert_eq!(
            self.stored().await,
            Vec::<String>::new(),
            "objects left behind"
        );
        assert_eq!(
            self.open_uploads().await,
            Vec::<String>::new(),
            "multipart uploads left open"
        );
    }
}

fn key() -> String {
    format!("users/7/files/{}", uuid::Uuid::new_v4())
}

/// `size` pseudo-random bytes from `seed`, in chunks of an odd size (so parts never line up
/// with chunks), generated as they are read.
fn random_body(seed: u64, size: u64) -> ByteStream {
    const CHUNK: u64 = 64 * 1024 + 17;
    let rng = SmallRng::seed_from_u64(seed);
    futures::stream::unfold((rng, size), |(mut rng, left)| async move {
        if left == 0 {
            return None;
        }
        let mut chunk = vec![0u8; left.min(CHUNK) as usize];
        rng.fill_bytes(&mut chunk);
        Some((Ok(Bytes::from(chunk)), (rng, left - left.min(CHUNK))))
    })
    .boxed()
}

async fn sha256_of(mut body: ByteStream) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body chunk");
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (size, hex::encode(hasher.finalize()))
}

async fn read_all(body: ByteStream) -> Vec<u8> {
    body.map(|chunk| chunk.expect("body chunk").to_vec())
        .concat()
        .await
}

/// `size` bytes, then the body fails (a client that disconnects).
fn failing_body(size: u64) -> ByteStream {
    random_body(1, size)
        .chain(futures::stream::once(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            ))
        }))
        .boxed()
}

/// `size` bytes, then the body never ends (a client that stalls).
fn stalling_body(size: u64) -> ByteStream {
    random_body(2, size)
        .chain(futures::stream::pending())
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// The same cases for both backends

async fn round_trip_of_100_mib_is_byte_exact(fx: Fixture) {
    let size = 100 * MIB;
    let (_, expected) = sha256_of(random_body(42, size)).await;
    let key = key();
    let stored = fx
        .store
        .put(
            &key,
            "application/octet-stream",
            random_body(42, size),
            200 * MIB,
        )
        .await
        .expect("put");
    assert_eq!(stored.size, size);
    assert_eq!(stored.sha256, expected);

    let reader = fx.store.get(&key, None).await.expect("get");
    assert_eq!(reader.total_size, size);
    assert_eq!(reader.range, 0..=size - 1);
    assert!(reader.etag.is_some(), "an ETag");
    assert_eq!(sha256_of(reader.body).await, (size, expected));
    assert_eq!(fx.stored().await, vec![key]);
    assert_eq!(fx.open_uploads().await, Vec::<String>::new());
}

async fn ranges_return_exactly_the_requested_bytes(fx: Fixture) {
    let data = read_all(random_body(3, 3 * MIB + 5)).await;
    let key = key();
    fx.store
        .put_bytes(&key, "text/plain", Bytes::from(data.clone()))
        .await
        .expect("put");
    let last = data.len() as u64 - 1;
    for range in [0..=0, 0..=9, 1000..=2_000_000, last..=last, 5..=last] {
        let reader = fx.store.get(&key, Some(range.clone())).await.expect("get");
        assert_eq!(reader.total_size, data.len() as u64);
        assert_eq!(reader.range, range);
        let bytes = read_all(reader.body).await;
        let (start, end) = (*range.start() as usize, *range.end() as usize);
        assert_eq!(bytes.len(), end - start + 1, "length of {range:?}");
        assert!(bytes == data[start..=end], "bytes of {range:?}");
    }
}

async fn empty_body_round_trips(fx: Fixture) {
    let key = key();
    let stored = fx
        .store
        .put(&key, "text/plain", futures::stream::empty().boxed(), 10)
        .await
        .expect("put");
    assert_eq!(stored.size, 0);
    assert_eq!(
        stored.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let reader = fx.store.get(&key, None).await.expect("get");
    assert_eq!(reader.total_size, 0);
    assert!(read_all(reader.body).await.is_empty());
}

async fn too_large_multipart_leaves_nothing(fx: Fixture) {
    // Two full parts go up before the limit is passed in the third.
    let result = fx
        .store
        .put(
            &key(),
            "application/octet-stream",
            random_body(4, 20 * MIB),
            12 * MIB,
        )
        .await;
    assert!(
        matches!(result, Err(StorageError::TooLarge { limit }) if limit == 12 * MIB),
        "{result:?}"
    );
    fx.assert_nothing_left().await;
}

async fn too_large_small_body_leaves_nothing(fx: Fixture) {
    let result = fx
        .store
        .put(&key(), "text/plain", random_body(5, 1000), 999)
        .await;
    assert!(
        matches!(result, Err(StorageError::TooLarge { limit: 999 })),
        "{result:?}"
    );
    fx.assert_nothing_left().await;
}

async fn limit_is_inclusive(fx: Fixture) {
    let stored = fx
        .store
        .put(&key(), "text/plain", random_body(5, 1000), 1000)
        .await
        .expect("a body of exactly the limit is accepted");
    assert_eq!(stored.size, 1000);
}

async fn body_error_midway_leaves_nothing(fx: Fixture) {
    let result = fx
        .store
        .put(
            &key(),
            "application/octet-stream",
            failing_body(11 * MIB),
            100 * MIB,
        )
        .await;
    assert!(matches!(result, Err(StorageError::Body(_))), "{result:?}");
    fx.assert_nothing_left().await;
}

async fn dropped_put_leaves_nothing(fx: Fixture) {
    let store = fx.store.clone();
    let upload = tokio::spawn(async move {
        store
            .put(
                &key(),
                "application/octet-stream",
                stalling_body(12 * MIB),
                100 * MIB,
            )
            .await
    });
    testkit::wait_until("the upload to be under way", DEADLINE, || async {
        fx.upload_in_progress().await.then_some(())
    })
    .await;
    // What a client disconnect does to the request's future: drop it mid-way.
    upload.abort();
    assert!(upload.await.expect_err("aborted").is_cancelled());
    testkit::wait_until("the dropped upload to be cleaned up", DEADLINE, || async {
        (fx.stored().await.is_empty() && fx.open_uploads().await.is_empty()).then_some(())
    })
    .await;
}

async fn concurrent_puts_keep_their_own_bytes(fx: Fixture) {
    let uploads = (0..6u64).map(|seed| {
        let store = fx.store.clone();
        async move {
            let key = key();
            let size = 6 * MIB + seed * 1000;
            let stored = store
                .put(
                    &key,
                    "application/octet-stream",
                    random_body(seed, size),
                    100 * MIB,
                )
                .await
                .expect("put");
            (key, seed, size, stored)
        }
    });
    let results = futures::future::join_all(uploads).await;
    for (key, seed, size, stored) in &results {
        let expected = sha256_of(random_body(*seed, *size)).await;
        assert_eq!((stored.size, stored.sha256.clone()), expected);
        let reader = fx.store.get(key, None).await.expect("get");
        assert_eq!(sha256_of(reader.body).await, expected, "{key}");
    }
    assert_eq!(fx.stored().await.len(), results.len());
}

async fn delete_is_idempotent(fx: Fixture) {
    let key = key();
    fx.store
        .put_bytes(&key, "text/plain", Bytes::from_static(b"hello"))
        .await
        .expect("put");
    fx.store.delete(&key).await.expect("delete");
    assert!(matches!(
        fx.store.get(&key, None).await,
        Err(StorageError::NotFound { .. })
    ));
    fx.store.delete(&key).await.expect("delete again");
    fx.assert_nothing_left().await;
}

async fn missing_object_is_not_found(fx: Fixture) {
    let key = key();
    match fx.store.get(&key, None).await {
        Err(StorageError::NotFound { key: missing }) => assert_eq!(missing, key),
        Err(other) => panic!("expected NotFound, got {other:?}"),
        Ok(_) => panic!("expected NotFound, got an object"),
    }
}

async fn keys_that_could_escape_are_refused(fx: Fixture) {
    for bad in ["../escape", "users/../../etc/passwd", "/abs", "a//b"] {
        let result = fx
            .store
            .put_bytes(bad, "text/plain", Bytes::from_static(b"x"))
            .await;
        assert!(
            matches!(result, Err(StorageError::Config(_))),
            "{bad}: {result:?}"
        );
    }
    fx.assert_nothing_left().await;
}

async fn check_answers_when_storage_is_there(fx: Fixture) {
    fx.store.check().await.expect("check");
}

macro_rules! for_both_backends {
    ($($case:ident),* $(,)?) => {
        mod s3 {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::s3().await).await
                }
            )*
        }
        mod local {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::local().await).await
                }
            )*
        }
    };
}

for_both_backends!(
    round_trip_of_100_mib_is_byte_exact,
    ranges_return_exactly_the_requested_bytes,
    empty_body_round_trips,
    too_large_multipart_leaves_nothing,
    too_large_small_body_leaves_nothing,
    limit_is_inclusive,
    body_error_midway_leaves_nothing,
    dropped_put_leaves_nothing,
    concurrent_puts_keep_their_own_bytes,
    delete_is_idempotent,
    missing_object_is_not_found,
    keys_that_could_escape_are_refused,
    check_answers_when_storage_is_there,
);

// ---------------------------------------------------------------------------------------------
// S3 only

#[tokio::test]
async fn s3_multipart_works_with_checksums_only_when_required_and_path_style() {
    let fx = Fixture::s3_with(|settings| {
        settings.checksum_when_required = true;
        settings.force_path_style = true;
    })
    .await;
    let size = 12 * MIB + 3;
    let key = key();
    let stored = fx
        .store
        .put(&key, "application/octet-stream", random_body(9, size), size)
        .await
        .expect("put");
    let expected = sha256_of(random_body(9, size)).await;
    assert_eq!((stored.size, stored.sha256), expected.clone());
    let reader = fx.store.get(&key, None).await.expect("get");
    assert_eq!(sha256_of(reader.body).await, expected);
}

#[tokio::test]
async fn s3_objects_carry_the_content_type_under_the_prefix() {
    let fx = Fixture::s3().await;
    let Backend::S3 {
        client,
        bucket,
        prefix,
        ..
    } = &fx.backend
    else {
        unreachable!()
    };
    for (size, key) in [(10, key()), (6 * MIB, key())] {
        fx.store
            .put(&key, "text/csv", random_body(1, size), size)
            .await
            .expect("put");
        let head = client
            .head_object()
            .bucket(bucket)
            .key(format!("{prefix}{key}"))
            .send()
            .await
            .expect("the object is under the prefix");
        assert_eq!(head.content_type(), Some("text/csv"));
        assert_eq!(head.content_length(), Some(size as i64));
    }
}

#[tokio::test]
async fn s3_check_fails_fast_while_the_server_is_down_and_recovers() {
    let mut fx = Fixture::s3().await;
    fx.store.check().await.expect("check while up");
    let Backend::S3 { moto, bucket, .. } = &mut fx.backend else {
        unreachable!()
    };
    let bucket = bucket.clone();
    moto.stop();

    // Fails, and does not hang: /readyz and the API answer 503 instead of waiting.
    let down = tokio::time::timeout(DEADLINE, fx.store.check())
        .await
        .expect("check answers while S3 is down");
    assert!(
        matches!(down, Err(StorageError::Unavailable(_))),
        "{down:?}"
    );
    let put = tokio::time::timeout(
        DEADLINE,
        fx.store
            .put_bytes(&key(), "text/plain", Bytes::from_static(b"x")),
    )
    .await
    .expect("put answers while S3 is down");
    assert!(matches!(put, Err(StorageError::Unavailable(_))), "{put:?}");

    // moto keeps its state in memory: the restarted server needs the bucket again.
    let Backend::S3 { moto, client, .. } = &mut fx.backend else {
        unreachable!()
    };
    moto.start_server().await;
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("recreate bucket");
    testkit::wait_until("check to pass again", DEADLINE, || async {
        fx.store.check().await.ok()
    })
    .await;
    fx.store
        .put_bytes(&key(), "text/plain", Bytes::from_static(b"x"))
        .await
        .expect("put after recovery");
}

#[tokio::test]
async fn s3_check_names_a_missing_bucket() {
    let moto = MotoServer::start().await;
    let settings = StorageSettings::new("s3://no-such-bucket");
    let store = storage::connect_with_sdk_config(&settings, &sdk_config(&moto).await)
        .await
        .expect("connect");
    match store.check().await {
        Err(StorageError::Unavailable(message)) => {
            assert!(message.contains("no-such-bucket"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn s3_part_size_below_the_minimum_is_a_config_error() {
    let moto = MotoServer::start().await;
    let mut settings = StorageSettings::new("s3://some-bucket");
    settings.part_size = 1024 * 1024;
    let result = storage::connect_with_sdk_config(&settings, &sdk_config(&moto).await).await;
    assert!(
        matches!(&result, Err(StorageError::Config(m)) if m.contains("part size")),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn connect_refuses_an_unknown_scheme() {
    let result = storage::connect(&StorageSettings::new("ftp://host/x")).await;
    assert!(
        matches!(&result, Err(StorageError::Config(m)) if m.contains("STORAGE_URL")),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn connect_opens_a_bare_local_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/data");
    let store = storage::connect(&StorageSettings::new(path.display().to_string()))
        .await
        .expect("connect");
    assert!(store.describe().starts_with("file://"));
    store.check().await.expect("check");
    assert!(path.is_dir(), "the folder is created");
}
