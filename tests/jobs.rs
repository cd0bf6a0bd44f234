//! Jobs survive the loss of any replica: three service processes on one database and bucket.
//! 50 jobs run exactly once; a job whose process is SIGKILLed mid-way is finished by another
//! process once its lease expires; a SIGTERMed process finishes or hands back its job.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::api::{csv_of, has_ended, job, start_profile_job, upload_csv};
use e2e::cluster::{Cluster, wait_exit};
use e2e::load::signed_in_user;
use testkit::haproxy::HaProxyOptions;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LEASE: &str = "3s";
const LEASE_MS: i64 = 3000;

async fn cluster(extra: &[(&str, &str)]) -> Cluster {
    let mut env = vec![
        ("JOB_LEASE", LEASE),
        ("JOB_POLL_INTERVAL", "200ms"),
        ("JOB_WORKERS", "2"),
    ];
    env.extend_from_slice(extra);
    Cluster::start_with_env(3, HaProxyOptions::default(), &env).await
}

#[derive(Debug, sqlx::FromRow)]
struct Attempt {
    attempt: i32,
    owner: String,
    started_ms: i64,
    ended_ms: Option<i64>,
    outcome: Option<String>,
}

async fn attempts(pool: &sqlx::PgPool, job_id: &str) -> Vec<Attempt> {
    let id = uuid::Uuid::parse_str(job_id).expect("uuid");
    sqlx::query_as::<_, Attempt>(
        "SELECT attempt, owner, started_ms, ended_ms, outcome FROM job_attempts WHERE job_id = $1 ORDER BY started_ms",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("job attempts")
}

/// Attempts of one job never overlap: each starts after the previous one ended, or after its
/// lease ran out if its process died without ending it.
fn assert_no_overlap(job_id: &str, attempts: &[Attempt]) {
    for pair in attempts.windows(2) {
        let previous_end = pair[0].ended_ms.unwrap_or(pair[0].started_ms + LEASE_MS);
        assert!(
            pair[1].started_ms >= previous_end,
            "job {job_id}: attempt {} started before attempt {} ended: {attempts:?}",
            pair[1].attempt,
            pair[0].attempt
        );
    }
}

async fn result_objects(cluster: &Cluster) -> usize {
    let listing = reqwest::get(format!(
        "{}/{}?list-type=2&prefix=data/",
        cluster.moto.endpoint(),
        cluster.bucket
    ))
    .await
    .expect("list bucket")
    .text()
    .await
    .expect("listing");
    listing.matches(".json</Key>").count()
}

fn slot_of(cluster: &Cluster, owner: &str) -> usize {
    cluster
        .replicas
        .iter()
        .position(|r| owner.starts_with(&format!("{}/", r.id)))
        .unwrap_or_else(|| panic!("no replica owns {owner}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_jobs_on_three_replicas_each_run_exactly_once() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster(&[]).await;
    let base = cluster.url();
    let (_, client) = signed_in_user(&base, Duration::from_secs(10)).await;
    let file = upload_csv(&client, &base, csv_of(64 * 1024)).await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(start_profile_job(&client, &base, &file).await);
    }
    let pool = sqlx::PgPool::connect(&cluster.database.url)
        .await
        .expect("connect");
    let mut by_replica: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let done = testkit::wait_until("every job to finish", Duration::from_secs(120), || async {
            let job = job(&client, &base, id).await?;
            has_ended(&job).then_some(job)
        })
        .await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(
            done["attempts"], 1,
            "a job ran more than once without a crash: {done}"
        );
        let attempts = attempts(&pool, id).await;
        assert_eq!(attempts.len(), 1, "job {id}: {attempts:?}");
        assert_eq!(attempts[0].outcome.as_deref(), Some("succeeded"));
        let replica = attempts[0]
            .owner
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        *by_replica.entry(replica).or_insert(0) += 1;
    }
    assert_eq!(
        result_objects(&cluster).await,
        50,
        "one result object per job"
    );
    println!("jobs per replica: {by_replica:?}");
    assert!(
        by_replica.len() >= 2,
        "the jobs did not spread over the replicas: {by_replica:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_replica_is_killed_is_finished_by_another() {
    let _serial = SERIAL.lock().await;
    let mut cluster = cluster(&[]).await;
    let base = cluster.url();
    let (_, client) = signed_in_user(&base, Duration::from_secs(10)).await;
    let file = upload_csv(&client, &base, csv_of(48 * 1024 * 1024)).await;
    let id = start_profile_job(&client, &base, &file).await;
    let pool = sqlx::PgPool::connect(&cluster.database.url)
        .await
        .expect("connect");

    // Mid-way: running, with progress reported by the heartbeat, not done.
    let first_progress = testkit::wait_until(
        "the job to be part-way through",
        Duration::from_secs(60),
        || async {
            let job = job(&client, &base, &id).await?;
            let processed = job["progress"]["bytes_processed"].as_i64().unwrap_or(0);
            (job["status"] == "running" && processed > 0).then_some(processed)
        },
    )
    .await;
    let first = attempts(&pool, &id).await.pop().expect("an attempt");
    let victim = slot_of(&cluster, &first.owner);
    cluster.signal(victim, libc::SIGKILL);
    let killed_at = e2e_now_ms();

    let done = testkit::wait_until(
        "another replica to finish the job",
        Duration::from_secs(120),
        || async {
            let job = job(&client, &base, &id).await?;
            has_ended(&job).then_some(job)
        },
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let attempts = attempts(&pool, &id).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(
        attempts[0].ended_ms.is_none(),
        "the killed attempt cannot have ended itself"
    );
    assert_eq!(attempts[1].outcome.as_deref(), Some("succeeded"));
    assert_ne!(
        slot_of_owner_prefix(&attempts[1].owner),
        slot_of_owner_prefix(&first.owner),
        "the same replica"
    );
    // The killed replica renewed its lease until it died: nobody may take over before that.
    assert!(
        attempts[1].started_ms >= killed_at,
        "taken over while the lease was held: {attempts:?}"
    );
    assert_no_overlap(&id, &attempts);
    assert_eq!(result_objects(&cluster).await, 1);
    println!(
        "killed mid-way at {} of {} bytes; taken over {} ms after the kill (lease {LEASE})",
        first_progress,
        done["progress"]["bytes_total"],
        attempts[1].started_ms - killed_at
    );
    cluster.start_in_slot(victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_replica_hands_back_its_job_and_exits_cleanly() {
    let _serial = SERIAL.lock().await;
    // A short shutdown budget, so the job cannot finish in it and must be released.
    let mut cluster = cluster(&[
        ("SHUTDOWN_TIMEOUT", "5s"),
        ("SHUTDOWN_DRAIN_DELAY", "500ms"),
    ])
    .await;
    let base = cluster.url();
    let (_, client) = signed_in_user(&base, Duration::from_secs(10)).await;
    let file = upload_csv(&client, &base, csv_of(48 * 1024 * 1024)).await;
    let id = start_profile_job(&client, &base, &file).await;
    let pool = sqlx::PgPool::connect(&cluster.database.url)
        .await
        .expect("connect");
    testkit::wait_until("the job to be running", Duration::from_secs(60), || async {
        let job = job(&client, &base, &id).await?;
        (job["status"] == "running").then_some(())
    })
    .await;
    let first = attempts(&pool, &id).await.pop().expect("an attempt");
    let slot = slot_of(&cluster, &first.owner);
    cluster.signal(slot, libc::SIGTERM);
    let code = wait_exit(&mut cluster.replicas[slot].process, Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "the replica did not exit 0 after SIGTERM");

    let done = testkit::wait_until("the job to finish", Duration::from_secs(120), || async {
        let job = job(&client, &base, &id).await?;
        has_ended(&job).then_some(job)
    })
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let attempts = attempts(&pool, &id).await;
    let first_outcome = attempts[0].outcome.as_deref();
    assert!(
        first_outcome == Some("released") || first_outcome == Some("succeeded"),
        "the SIGTERMed replica neither finished nor released its job: {attempts:?}"
    );
    assert!(
        attempts[0].ended_ms.is_some(),
        "the attempt was abandoned, not ended: {attempts:?}"
    );
    assert_no_overlap(&id, &attempts);
    println!(
        "first attempt on SIGTERM: {first_outcome:?}; attempts: {}",
        attempts.len()
    );
}

fn slot_of_owner_prefix(owner: &str) -> &str {
    owner.split('/').next().unwrap_or_default()
}

fn e2e_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
