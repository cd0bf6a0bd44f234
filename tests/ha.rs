//! High availability, proven: three replicas behind HAProxy (the ALB stand-in) under a steady
//! mixed load, while replicas are restarted, killed, frozen, and the database and object storage
//! go away. Each scenario prints a row (run with `--nocapture`) and asserts its bounds.
//!
//! The scenarios run one at a time (they each start 3 replicas, Postgres, moto and HAProxy, and
//! measure latencies on a 2-core machine).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::api;
use e2e::cluster::{Cluster, status_of};
use e2e::load::{Load, LoadOptions, Op, signed_in_user};
use e2e::report::Row;
use testkit::haproxy::HaProxyOptions;

/// Tokio's mutex: it works across the tests' runtimes and is not poisoned by a failed test.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// HAProxy's detection window: `fall` failed checks `inter` apart, plus one interval of phase
/// and the check's own timeout.
/// How long accepted jobs may take to end after the load stops (a killed replica's jobs wait for
/// their 5 s lease to expire first).
const JOBS_DEADLINE: Duration = Duration::from_secs(60);

/// How long HAProxy may take to mark a dead or frozen server down, as the test observes it.
/// HAProxy's own worst case is a check interval of phase plus `fall` checks that each run out
/// their timeout (one interval) and wait the next interval: `inter * (fall + 2)` for fall = 2.
/// The test reads the state by polling the stats socket, on a machine that may be running builds
/// beside it: half a second more covers the poll and the scheduling (a 4.16 s reading against
/// the bare 4 s failed a loaded CI run).
fn detection_window(options: &HaProxyOptions) -> Duration {
    Duration::from_millis(options.check_interval_ms * (options.fall as u64 + 2))
        + Duration::from_millis(500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_1_a_session_is_valid_on_every_replica() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3, HaProxyOptions::default()).await;
    let load = Load::start(&cluster.url(), LoadOptions::default()).await;

    let (_, client) = signed_in_user(&cluster.url(), Duration::from_secs(10)).await;
    let mut served_by = BTreeSet::new();
    for _ in 0..30 {
        let res = client
            .get(format!("{}/api/v1/session", cluster.url()))
            .send()
            .await
            .expect("request");
        assert_eq!(
            res.status(),
            200,
            "one login must authenticate on every replica"
        );
        let replica = res
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .expect("x-served-by");
        served_by.insert(replica.to_string());
    }
    assert_eq!(
        served_by.len(),
        3,
        "requests did not spread over the 3 replicas: {served_by:?}"
    );

    load.run_until(Duration::from_secs(5)).await;
    let report = load.stop().await;
    Row::from_load("1. session continuity", &report)
        .note(format!("served by {:?}", report.served_by()))
        .print();
    assert_eq!(
        report.failures().len(),
        0,
        "failures under steady load:\n{}",
        report.failure_sample()
    );
    assert_eq!(
        report.served_by().len(),
        3,
        "load did not reach all replicas"
    );
    assert!(
        report.lost_uploads(&cluster.url()).await.is_empty(),
        "acknowledged uploads lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_a_rolling_restart_fails_no_request_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3, HaProxyOptions::default()).await;
    let load = Load::start(&cluster.url(), LoadOptions::default()).await;
    load.run_until(Duration::from_secs(2)).await;

    let roll = Instant::now();
    for slot in 0..3 {
        cluster.replace_gracefully(slot).await;
    }
    let roll = roll.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(2))
        .await;
    let report = load.stop().await;
    let lost = report.lost_uploads(&cluster.url()).await;
    let lost_jobs = report.lost_jobs(&cluster.url(), JOBS_DEADLINE).await;
    Row::from_load("2. rolling restart (drain, SIGTERM, replace)", &report)
        .recovery(roll)
        .note(format!(
            "{} acknowledged uploads, {} lost; {} accepted jobs, {} not succeeded; recovery = whole roll",
            report.acknowledged(),
            lost.len(),
            report.accepted_jobs(),
            lost_jobs.len()
        ))
        .print();
    assert_eq!(
        report.failures().len(),
        0,
        "a rolling restart failed requests:\n{}",
        report.failure_sample()
    );
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
    assert!(report.acknowledged() > 0, "the load uploaded nothing");
    assert!(
        lost_jobs.is_empty(),
        "accepted jobs lost or failed: {lost_jobs:?}"
    );
    assert!(report.accepted_jobs() > 0, "the load started no job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_3_a_killed_replica_fails_only_its_requests_in_flight() {
    let _serial = SERIAL.lock().await;
    let options = HaProxyOptions {
        retry_on_connection_failure: true,
        ..HaProxyOptions::default()
    };
    let window = detection_window(&options);
    let mut cluster = Cluster::start(3, options).await;
    let load_options = LoadOptions::default();
    let users = load_options.users;
    let load = Load::start(&cluster.url(), load_options).await;
    // Longer jobs than the load's, so that the victim is surely running one when it dies.
    let (_, owner) = signed_in_user(&cluster.url(), Duration::from_secs(30)).await;
    let long_jobs = start_long_jobs(&cluster.url(), &owner, 9).await;
    testkit::wait_until(
        "the victim to be running a job",
        Duration::from_secs(30),
        || async { (!cluster.jobs_running_on(1).await.is_empty()).then_some(()) },
    )
    .await;
    load.run_until(Duration::from_secs(3)).await;

    let orphaned = cluster.jobs_running_on(1).await;
    let killed_at = load.elapsed();
    let victim = cluster.replicas[1].id.clone();
    cluster.signal(1, libc::SIGKILL);
    let detect = Instant::now();
    cluster.lb.wait_status("r1", "DOWN", window * 2).await;
    let detection = detect.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(3))
        .await;
    cluster.start_in_slot(1).await;
    cluster
        .lb
        .wait_status("r1", "UP", Duration::from_secs(20))
        .await;
    load.run_until(load.elapsed() + Duration::from_secs(2))
        .await;
    let report = load.stop().await;
    let lost = report.lost_uploads(&cluster.url()).await;
    let lost_jobs = report.lost_jobs(&cluster.url(), JOBS_DEADLINE).await;
    let unfinished = wait_jobs_succeeded(&cluster.url(), &owner, &long_jobs).await;
    let mut taken_over = Vec::new();
    for job in &orphaned {
        let attempts = cluster.attempts_of(*job).await;
        taken_over.push((*job, attempts));
    }
    let failures = report.failures();
    Row::from_load("3. crash (SIGKILL one replica)", &report)
        .recovery(detection)
        .note(format!(
            "{} failed (in flight on it, or sent to it before detection); LB marked it down in {:.1} s; {} jobs running on it finished elsewhere; {} accepted jobs, {} not succeeded",
            failures.len(),
            detection.as_secs_f64(),
            orphaned.len(),
            report.accepted_jobs() + long_jobs.len(),
            lost_jobs.len() + unfinished.len()
        ))
        .print();
    assert!(
        detection <= window,
        "HAProxy took {detection:?} to mark the killed replica down (window {window:?})"
    );
    assert!(
        failures.len() <= users,
        "more failures ({}) than requests that can be in flight on one replica ({users}):\n{}",
        failures.len(),
        report.failure_sample()
    );
    // In flight on the victim when it died, or sent to it before the load balancer noticed
    // (HAProxy retries refused connections, but a request racing the kill on a connection the
    // balancer already had open to the victim can still fail, as with an ALB).
    for f in &failures {
        assert!(
            f.at + f.latency >= killed_at && f.at <= killed_at + detection,
            "a failure outside the kill's detection window ({killed_at:?} + {detection:?}): {f:?} (victim {victim})"
        );
    }
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
    assert!(
        lost_jobs.is_empty(),
        "accepted jobs lost or failed: {lost_jobs:?}"
    );
    assert!(
        unfinished.is_empty(),
        "long jobs lost or failed: {unfinished:?}"
    );
    assert!(!orphaned.is_empty(), "the victim ran no job when it died");
    for (job, attempts) in &taken_over {
        let (first, first_outcome) = &attempts[0];
        let (last, last_outcome) = attempts.last().expect("an attempt");
        assert!(
            first == &victim && first_outcome.is_none(),
            "job {job}: the killed attempt should be open: {attempts:?}"
        );
        assert!(
            last != &victim && last_outcome.as_deref() == Some("succeeded"),
            "job {job} was not finished by another replica: {attempts:?}"
        );
    }
}

/// Uploads one 4 MiB CSV for `client` and starts `count` profile jobs on it.
async fn start_long_jobs(base: &str, client: &reqwest::Client, count: usize) -> Vec<String> {
    let file = api::upload_csv(client, base, api::csv_of(4 * 1024 * 1024)).await;
    let mut jobs = Vec::new();
    for _ in 0..count {
        jobs.push(api::start_profile_job(client, base, &file).await);
    }
    jobs
}

/// Waits for `jobs` to end; returns those that did not succeed.
async fn wait_jobs_succeeded(base: &str, client: &reqwest::Client, jobs: &[String]) -> Vec<String> {
    let mut not_succeeded = Vec::new();
    for id in jobs {
        let job = testkit::wait_until(&format!("job {id} to end"), JOBS_DEADLINE, || async {
            api::job(client, base, id).await.filter(api::has_ended)
        })
        .await;
        if job["status"] != "succeeded" {
            not_succeeded.push(format!("{id}: {} {}", job["status"], job["error"]));
        }
    }
    not_succeeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_4_a_frozen_replica_is_routed_around_and_rejoins() {
    let _serial = SERIAL.lock().await;
    let options = HaProxyOptions {
        retry_on_connection_failure: true,
        ..HaProxyOptions::default()
    };
    let window = detection_window(&options);
    let cluster = Cluster::start(3, options).await;
    let load_options = LoadOptions {
        request_timeout: Duration::from_secs(5),
        ..LoadOptions::default()
    };
    let users = load_options.users;
    let load = Load::start(&cluster.url(), load_options).await;
    load.run_until(Duration::from_secs(3)).await;

    let frozen_at = load.elapsed();
    cluster.signal(2, libc::SIGSTOP);
    let detect = Instant::now();
    cluster.lb.wait_status("r2", "DOWN", window * 2).await;
    let routed_around = detect.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(3))
        .await;
    cluster.signal(2, libc::SIGCONT);
    let rejoin = Instant::now();
    cluster
        .lb
        .wait_status("r2", "UP", Duration::from_secs(20))
        .await;
    let rejoined = rejoin.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(2))
        .await;
    let report = load.stop().await;
    let lost = report.lost_uploads(&cluster.url()).await;
    let lost_jobs = report.lost_jobs(&cluster.url(), JOBS_DEADLINE).await;
    let failures = report.failures();
    Row::from_load("4. hang (SIGSTOP one replica, then SIGCONT)", &report)
        .recovery(routed_around)
        .note(format!(
            "{} failed (timed out in flight); routed around in {:.1} s; rejoined in {:.1} s",
            failures.len(),
            routed_around.as_secs_f64(),
            rejoined.as_secs_f64()
        ))
        .print();
    assert!(
        routed_around <= window,
        "routing around the frozen replica took {routed_around:?}"
    );
    assert!(
        failures.len() <= users,
        "more failures than requests in flight:\n{}",
        report.failure_sample()
    );
    for f in &failures {
        assert!(
            f.at <= frozen_at + window && f.at + f.latency >= frozen_at,
            "a failure outside the freeze window: {f:?}"
        );
    }
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
    assert!(
        lost_jobs.is_empty(),
        "accepted jobs lost or failed: {lost_jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_5_a_database_restart_keeps_liveness_and_sessions() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3, HaProxyOptions::default()).await;
    let load = Load::start(
        &cluster.url(),
        LoadOptions {
            users: 3,
            ..LoadOptions::default()
        },
    )
    .await;
    let (_, probe) = signed_in_user(&cluster.url(), Duration::from_secs(10)).await;
    load.run_until(Duration::from_secs(2)).await;

    cluster.postgres.stop();
    for replica in &cluster.replicas {
        let readyz = format!("{}/readyz", replica.url());
        testkit::wait_until(
            "readyz 503 while the database is down",
            Duration::from_secs(10),
            || async { (status_of(&readyz).await == Some(503)).then_some(()) },
        )
        .await;
        assert_eq!(
            status_of(&format!("{}/healthz", replica.url())).await,
            Some(200),
            "healthz must not need the DB"
        );
    }
    cluster
        .lb
        .wait_status("r0", "UP", Duration::from_secs(1))
        .await;
    load.run_until(load.elapsed() + Duration::from_secs(3))
        .await;

    cluster.postgres.start_server().await;
    let back = Instant::now();
    let session_url = format!("{}/api/v1/session", cluster.url());
    testkit::wait_until(
        "sessions to work again",
        Duration::from_secs(30),
        || async {
            let res = probe.get(&session_url).send().await.ok()?;
            (res.status() == 200).then_some(())
        },
    )
    .await;
    let recovery = back.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(2))
        .await;
    let report = load.stop().await;
    for user in &report.users {
        let res = user.client.get(&session_url).send().await.expect("request");
        assert_eq!(
            res.status(),
            200,
            "session of {} lost across the database restart",
            user.username
        );
    }
    let lost = report.lost_uploads(&cluster.url()).await;
    let lost_jobs = report.lost_jobs(&cluster.url(), JOBS_DEADLINE).await;
    Row::from_load("5. database restart", &report)
        .recovery(recovery)
        .note(format!(
            "failures all while the DB was down; readyz 503 / healthz 200 meanwhile; {} uploads lost; {} of {} jobs not succeeded",
            lost.len(),
            lost_jobs.len(),
            report.accepted_jobs()
        ))
        .print();
    assert!(
        recovery <= Duration::from_secs(5),
        "recovery took {recovery:?} after the database answered"
    );
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
    assert!(
        lost_jobs.is_empty(),
        "accepted jobs lost or failed: {lost_jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_6_an_object_storage_outage_only_affects_file_endpoints() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3, HaProxyOptions::default()).await;
    let load = Load::start(
        &cluster.url(),
        LoadOptions {
            users: 4,
            ..LoadOptions::default()
        },
    )
    .await;
    load.run_until(Duration::from_secs(2)).await;

    // The S3 endpoint goes away (connections refused) while moto keeps its objects in memory.
    let outage_start = load.elapsed();
    cluster.s3.close().await;
    load.run_until(load.elapsed() + Duration::from_secs(6))
        .await;
    let outage_end = load.elapsed();
    cluster.s3.open().await;
    let back = Instant::now();
    let (_, probe) = signed_in_user(&cluster.url(), Duration::from_secs(10)).await;
    let upload_url = format!("{}/api/v1/files?name=probe.txt", cluster.url());
    testkit::wait_until("uploads to work again", Duration::from_secs(30), || async {
        let res = probe.post(&upload_url).body("back").send().await.ok()?;
        (res.status() == 201).then_some(())
    })
    .await;
    let recovery = back.elapsed();
    load.run_until(load.elapsed() + Duration::from_secs(2))
        .await;
    let report = load.stop().await;

    let during = |o: &&e2e::load::Outcome| o.at >= outage_start && o.at <= outage_end;
    let session_failures: Vec<_> = report
        .outcomes()
        .filter(during)
        .filter(|o| !o.op.touches_storage() && o.failed())
        .collect();
    let file_failures: Vec<_> = report
        .outcomes()
        .filter(during)
        .filter(|o| o.op.touches_storage() && o.failed())
        .collect();
    let slowest_file_failure = file_failures
        .iter()
        .map(|o| o.latency)
        .max()
        .unwrap_or_default();
    let lost_jobs = report.lost_jobs(&cluster.url(), JOBS_DEADLINE).await;
    Row::from_load("6. object storage outage (S3 endpoint down 6 s)", &report)
        .recovery(recovery)
        .note(format!(
            "{} file requests failed with 503 (slowest {:.1} s), {} session/list failures; {} of {} jobs not succeeded",
            file_failures.len(),
            slowest_file_failure.as_secs_f64(),
            session_failures.len(),
            lost_jobs.len(),
            report.accepted_jobs()
        ))
        .print();
    assert!(
        lost_jobs.is_empty(),
        "jobs failed by a short storage outage (they should be retried after it): {lost_jobs:?}"
    );
    assert!(
        session_failures.is_empty(),
        "session endpoints failed during the S3 outage: {session_failures:?}"
    );
    assert!(
        !file_failures.is_empty(),
        "no file request noticed the outage"
    );
    for f in &file_failures {
        assert_eq!(
            f.status,
            Some(503),
            "file endpoints must answer 503 problem+json: {f:?}"
        );
    }
    assert!(
        slowest_file_failure < Duration::from_secs(5),
        "503 took {slowest_file_failure:?}"
    );
    assert!(
        report
            .outcomes()
            .any(|o| o.op == Op::Upload && !o.failed() && o.at > outage_end),
        "no upload after recovery"
    );
}
