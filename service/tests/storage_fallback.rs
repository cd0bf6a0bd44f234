//! The fallback store's circuit breaker against a partitioned primary: moto behind a proxy
//! whose connections go silent. Its own test binary: the `api` tests count fallback reads in the
//! process-wide metrics, which these reads would add to.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_s3::config::{Credentials, Region};
use data_processor::storage::{self, FallbackStore};
use testkit::moto::MotoServer;
use testkit::partition::PartitionProxy;
use testkit::wait_until;

const WAIT: Duration = Duration::from_secs(20);

async fn sdk_config(endpoint: String) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// The whole object `key` from `store`, as text.
async fn read(store: &FallbackStore, key: &str) -> Result<String, storage::StorageError> {
    use futures::TryStreamExt;
    use storage::ObjectStore;
    let reader = store.get(key, None).await?;
    let chunks: Vec<bytes::Bytes> = reader.body.try_collect().await.expect("the body streams");
    Ok(String::from_utf8(chunks.concat()).expect("text"))
}

/// A partitioned primary (connections open, nothing answers) costs the first read the primary
/// deadline; the reads after it skip the primary (the breaker is open) until the cooldown is
/// over, then one read tries the primary again; once it answers, reads go to it.
#[tokio::test]
async fn a_partitioned_primary_costs_one_read_its_deadline_and_is_skipped_for_the_cooldown() {
    const DEADLINE: Duration = Duration::from_millis(500);
    const COOLDOWN: Duration = Duration::from_secs(2);
    let moto = MotoServer::start().await;
    let primary_bucket = moto.create_bucket().await;
    let replica_bucket = moto.create_bucket().await;
    let proxy = PartitionProxy::start(([127, 0, 0, 1], moto.port).into()).await;
    let direct = sdk_config(moto.endpoint()).await;
    let primary = storage::connect_with_sdk_config(
        &storage::StorageSettings::new(format!("s3://{primary_bucket}")),
        &sdk_config(format!("http://{}", proxy.addr())).await,
    )
    .await
    .expect("connect to the primary");
    let replica = storage::connect_with_sdk_config(
        &storage::StorageSettings::new(format!("s3://{replica_bucket}")),
        &direct,
    )
    .await
    .expect("connect to the replica");
    let store = FallbackStore::new(primary, replica).with_timing(DEADLINE, COOLDOWN);
    {
        use storage::ObjectStore;
        store
            .put_bytes("a.txt", "text/plain", bytes::Bytes::from_static(b"hello"))
            .await
            .expect("store on the primary");
    }
    let s3 = aws_sdk_s3::Client::new(&direct);
    s3.copy_object()
        .copy_source(format!("{primary_bucket}/a.txt"))
        .bucket(&replica_bucket)
        .key("a.txt")
        .send()
        .await
        .expect("replicate by hand");
    assert_eq!(read(&store, "a.txt").await.unwrap(), "hello");

    // Every HTTP connection to the primary, open or new, goes silent.
    proxy.freeze(b"HTTP/1.1");
    let tripped = Instant::now();
    assert_eq!(read(&store, "a.txt").await.unwrap(), "hello");
    let first = tripped.elapsed();
    assert!(
        first >= DEADLINE,
        "the first read waited for the primary: {first:?}"
    );
    assert_eq!(store.primary_skipped_reads(), 0);
    let mut skipped = Vec::new();
    for n in 1..=20 {
        let since = Instant::now();
        assert_eq!(read(&store, "a.txt").await.unwrap(), "hello");
        skipped.push(since.elapsed());
        assert_eq!(
            store.primary_skipped_reads(),
            n,
            "read {n} went straight to the replica"
        );
    }
    skipped.sort();
    eprintln!(
        "primary partitioned: first read {first:?} (deadline {DEADLINE:?}), the next 20 from the replica at once: p50 {:?}, max {:?}",
        skipped[skipped.len() / 2],
        skipped[skipped.len() - 1]
    );

    // The cooldown over, a read tries the primary again (it is still partitioned).
    wait_until("a read to try the primary again", WAIT, || async {
        let before = store.primary_skipped_reads();
        assert_eq!(read(&store, "a.txt").await.unwrap(), "hello");
        (store.primary_skipped_reads() == before).then_some(())
    })
    .await;
    assert!(
        tripped.elapsed() >= COOLDOWN,
        "the primary was tried again before the cooldown was over"
    );

    // Back: once the primary answers, reads go to it (the replica's copy is gone, the read works).
    proxy.thaw();
    s3.delete_object()
        .bucket(&replica_bucket)
        .key("a.txt")
        .send()
        .await
        .expect("delete the replica's copy");
    wait_until("reads to go to the primary again", WAIT, || async {
        read(&store, "a.txt").await.ok()
    })
    .await;
    let before = store.primary_skipped_reads();
    assert_eq!(read(&store, "a.txt").await.unwrap(), "hello");
    assert_eq!(store.primary_skipped_reads(), before, "the breaker closed");
}
