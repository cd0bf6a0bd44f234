//! The bounds on what anonymous and slow clients can make one replica do, measured on the real
//! binary against Postgres and S3 (moto): peak memory (VmHWM of the process) under a burst of
//! registrations with long passwords, and under 50 slowloris uploads; no multipart upload left
//! open; the latency of ordinary requests meanwhile.
//!
//! Stated bounds (with PASSWORD_HASH_CONCURRENCY=2, UPLOAD_MAX_CONCURRENT=16, S3_PART_SIZE=5 MiB),
//! over an idle replica's ~50 MiB:
//! - hashing: 2 x 19 MiB at once, so the peak stays under 200 MiB (unbounded, 64 hashes at once
//!   would take 64 x 19 MiB = 1.2 GiB; bounded but with glibc's default mmap threshold, the freed
//!   buffers stayed resident: 730 MiB, see `service/src/memory.rs`);
//! - uploads: at most 16 x 2 parts x 5 MiB = 160 MiB of buffers, so under 300 MiB.

use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::cluster::Cluster;
use e2e::load::{percentile, signed_in_user};
use futures::StreamExt;
use testkit::haproxy::HaProxyOptions;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HASHING_PEAK_RSS_BOUND_KIB: u64 = 200 * 1024;
const UPLOADS_PEAK_RSS_BOUND_KIB: u64 = 300 * 1024;

/// Peak resident memory of `pid` so far (KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_registrations_with_long_passwords_stays_bounded() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_with_env(
        1,
        HaProxyOptions::default(),
        &[
            ("PASSWORD_HASH_CONCURRENCY", "2"),
            ("PASSWORD_HASH_QUEUE_TIMEOUT", "2s"),
        ],
    )
    .await;
    let base = cluster.replicas[0].url();
    let pid = cluster.replicas[0].process.pid();
    let before = peak_rss_kib(pid);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let long_password = "p".repeat(256);
    let started = Instant::now();
    let statuses = futures::future::join_all((0..64).map(|i| {
        let client = client.clone();
        let base = base.clone();
        let password = long_password.clone();
        async move {
            client
                .post(format!("{base}/api/v1/users"))
                .json(&serde_json::json!({"username": format!("burst{i}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]), "password": password}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let peak = peak_rss_kib(pid);
    let created = statuses.iter().filter(|s| **s == Ok(201)).count();
    let busy = statuses.iter().filter(|s| **s == Ok(503)).count();
    println!(
        "64 registrations with 256-char passwords: {created} x 201, {busy} x 503 in {elapsed:?}; \
         peak RSS {} MiB before, {} MiB after (bound {} MiB)",
        before / 1024,
        peak / 1024,
        HASHING_PEAK_RSS_BOUND_KIB / 1024
    );
    for status in &statuses {
        assert!(
            matches!(status, Ok(201 | 429 | 503)),
            "every registration is answered 201, 429 or 503: {statuses:?}"
        );
    }
    assert!(created > 0, "some registrations succeed: {statuses:?}");
    assert!(
        peak < HASHING_PEAK_RSS_BOUND_KIB,
        "peak RSS {peak} KiB is over the bound"
    );
}

/// How long one `GET /api/v1/session` takes (it must answer 200).
async fn timed_session_read(client: &reqwest::Client, base: &str) -> Duration {
    let started = Instant::now();
    let status = client
        .get(format!("{base}/api/v1/session"))
        .send()
        .await
        .expect("GET /api/v1/session")
        .status();
    assert_eq!(status, 200);
    started.elapsed()
}

/// A body that sends `fast` bytes at once, then one byte every `gap`, forever.
fn stalling_body(fast: usize, gap: Duration) -> reqwest::Body {
    let head =
        futures::stream::once(
            async move { Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; fast])) },
        );
    let trickle = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), ()))
    });
    reqwest::Body::wrap_stream(head.chain(trickle))
}

/// Multipart uploads open in `bucket`, as moto lists them.
async fn open_multipart_uploads(endpoint: &str, bucket: &str) -> usize {
    let listing = reqwest::get(format!("{endpoint}/{bucket}?uploads"))
        .await
        .expect("ListMultipartUploads")
        .text()
        .await
        .expect("listing");
    listing.matches("<Upload>").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_uploads_are_cut_and_leave_nothing_open() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_with_env(
        1,
        HaProxyOptions::default(),
        &[
            ("UPLOAD_IDLE_TIMEOUT", "2s"),
            ("UPLOAD_MAX_CONCURRENT", "16"),
            ("S3_PART_SIZE", "5242880"),
        ],
    )
    .await;
    let base = cluster.replicas[0].url();
    let pid = cluster.replicas[0].process.pid();
    let (_, probe) = signed_in_user(&base, Duration::from_secs(10)).await;

    // Baseline: the session route on an idle replica.
    let mut baseline = Vec::new();
    for _ in 0..100 {
        baseline.push(timed_session_read(&probe, &base).await);
    }
    let baseline_p99 = percentile(baseline, 0.99);

    // 50 slow uploaders: 10 send 6 MiB (past the first 5 MiB part: a multipart upload is open on
    // S3) and then stall; 40 send one byte every 3 s, over the 2 s idle timeout.
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(signed_in_user(&base, Duration::from_secs(60)).await.1);
    }
    let mut uploads = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let base = base.clone();
        let fast = if i < 10 { 6 * 1024 * 1024 } else { 1 };
        uploads.push(tokio::spawn(async move {
            let started = Instant::now();
            let outcome = client
                .post(format!("{base}/api/v1/files?name=slow-{i}.csv"))
                .header("content-type", "text/csv")
                .body(stalling_body(fast, Duration::from_secs(3)))
                .send()
                .await;
            (
                outcome
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string()),
                started.elapsed(),
            )
        }));
    }

    // Ordinary requests meanwhile.
    let mut during = Vec::new();
    let probing = Instant::now();
    while probing.elapsed() < Duration::from_secs(4) {
        during.push(timed_session_read(&probe, &base).await);
    }
    let during_p99 = percentile(during, 0.99);

    let (mut cut, mut refused, mut reset) = (0, 0, 0);
    for upload in uploads {
        let (outcome, took) = upload.await.unwrap();
        // The server answers 408 (stalled) or 503 (no upload slot); a client still sending when
        // the server answers and closes may see the connection reset instead.
        match outcome {
            Ok(408) => cut += 1,
            Ok(503) => refused += 1,
            Err(_) => reset += 1,
            Ok(other) => panic!("a stalled upload got {other}"),
        }
        assert!(
            took < Duration::from_secs(30),
            "an upload hung for {took:?}"
        );
    }
    let endpoint = cluster.moto.endpoint();
    testkit::wait_until(
        "no multipart upload left open",
        Duration::from_secs(20),
        || async { (open_multipart_uploads(&endpoint, &cluster.bucket).await == 0).then_some(()) },
    )
    .await;
    let peak = peak_rss_kib(pid);
    println!(
        "50 slowloris uploads: {cut} cut after the idle timeout (408), {refused} refused (no \
         slot, 503), {reset} reset while sending; \
         session p99 {baseline_p99:?} idle vs {during_p99:?} meanwhile (x{:.2}); peak RSS {} MiB \
         (bound {} MiB)",
        during_p99.as_secs_f64() / baseline_p99.as_secs_f64().max(1e-6),
        peak / 1024,
        UPLOADS_PEAK_RSS_BOUND_KIB / 1024
    );
    assert!(
        cut > 0 && refused > 0,
        "both the idle timeout and the slot limit acted"
    );
    assert!(
        peak < UPLOADS_PEAK_RSS_BOUND_KIB,
        "peak RSS {peak} KiB is over the bound"
    );
    // The replica stays responsive: ordinary requests are not queued behind the uploads.
    assert!(
        during_p99 < Duration::from_millis(500),
        "session p99 {during_p99:?} while uploads stall (idle: {baseline_p99:?})"
    );
}
