//! Starts and manipulates the replicas behind the load balancer the way ECS does.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::haproxy::{HaProxy, HaProxyOptions};
use testkit::moto::MotoServer;
use testkit::postgres::{PrivatePostgres, TestDatabase};
use testkit::process::ChildGuard;

pub const REPLICA_READY_DEADLINE: Duration = Duration::from_secs(60);

pub struct Replica {
    /// `x-served-by` value of this process (unique per process, also across restarts).
    pub id: String,
    pub port: u16,
    pub process: ChildGuard,
}

impl Replica {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Cluster {
    pub postgres: PrivatePostgres,
    pub database: TestDatabase,
    pub moto: MotoServer,
    /// The replicas reach S3 (moto) through this TCP forwarder, so that a test can take object
    /// storage away and bring it back without losing what moto holds in memory.
    pub s3: HaProxy,
    pub bucket: String,
    /// Slot `i` is HAProxy server `r{i}`.
    pub replicas: Vec<Replica>,
    pub lb: HaProxy,
    binary: PathBuf,
    started: usize,
    logs: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
}

impl Cluster {
    pub async fn start(replicas: usize, lb_options: HaProxyOptions) -> Self {
        Self::start_with_env(replicas, lb_options, &[]).await
    }

    /// `extra_env` is given to every replica (e.g. short job leases).
    pub async fn start_with_env(
        replicas: usize,
        lb_options: HaProxyOptions,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let binary = testkit::bin::cargo_bin("data-processor", "data-processor");
        let postgres = PrivatePostgres::start().await;
        let database = TestDatabase::create_on(&postgres.admin_url()).await;
        let moto = MotoServer::start().await;
        let bucket = moto.create_bucket().await;
        let s3 = HaProxy::tcp_forward(moto.port).await;
        let logs = tempfile::Builder::new()
            .prefix("ha-logs-")
            .tempdir()
            .expect("temp dir");
        let ports: Vec<u16> = (0..replicas).map(|_| testkit::free_port()).collect();
        // HAProxy first: ECS registers targets as tasks start, and the checks find them when up.
        let lb = HaProxy::start(&ports, lb_options).await;
        let mut cluster = Self {
            postgres,
            database,
            moto,
            s3,
            bucket,
            replicas: Vec::new(),
            lb,
            binary,
            started: 0,
            logs,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // Start them together, as a new ECS service does: migrations must be safe to race.
        let mut starting = Vec::new();
        for port in ports {
            starting.push(cluster.spawn_replica(port));
        }
        for replica in &starting {
            wait_ready(replica).await;
        }
        cluster.replicas = starting;
        for i in 0..replicas {
            cluster
                .lb
                .wait_status(&format!("r{i}"), "UP", Duration::from_secs(20))
                .await;
        }
        cluster
    }

    pub fn url(&self) -> String {
        self.lb.url()
    }

    fn spawn_replica(&mut self, port: u16) -> Replica {
        self.started += 1;
        let id = format!("replica-{}", self.started);
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &self.database.url)
            .env("STORAGE_URL", format!("s3://{}/data", self.bucket))
            .env("S3_FORCE_PATH_STYLE", "true")
            .env("S3_CHECKSUM_WHEN_REQUIRED", "true")
            .env("SESSION_COOKIE_SECURE", "false")
            .env("REPLICA_ID", &id)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // An ECS task gets SIGTERM only after deregistration; the harsh scenarios use the
            // drain delay to let HAProxy see /readyz... /healthz still 200, so keep it short.
            .env("SHUTDOWN_DRAIN_DELAY", "1s")
            .env("SHUTDOWN_TIMEOUT", "20s")
            // A short lease, so that a killed replica's jobs are taken over within the scenario.
            .env("JOB_LEASE", "5s")
            .env("JOB_POLL_INTERVAL", "200ms")
            // Every client of the test bed is 127.0.0.1 (scenarios that test the limits override).
            .env("AUTH_RATE_LIMIT_PER_MINUTE", "1000000")
            .env("AUTH_RATE_LIMIT_BURST", "1000000");
        for (k, v) in self.moto.client_env() {
            cmd.env(k, v);
        }
        cmd.env("AWS_ENDPOINT_URL", self.s3.url());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let log = self.logs.path().join(format!("{id}.log"));
        let process = ChildGuard::spawn(&id, &mut cmd, &log);
        Replica { id, port, process }
    }

    /// An ECS rolling replacement of slot `i`: deregister (drain) the target, wait until it has no
    /// requests, SIGTERM the task and check it exits 0, then start the new task and register it.
    pub async fn replace_gracefully(&mut self, slot: usize) -> Duration {
        let server = format!("r{slot}");
        let started = Instant::now();
        self.lb.set_state(&server, "drain").await;
        self.lb.wait_idle(&server, Duration::from_secs(30)).await;
        let old = &mut self.replicas[slot];
        old.process.signal(libc::SIGTERM);
        let code = wait_exit(&mut old.process, Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "{} did not exit 0 after SIGTERM", old.id);
        self.start_in_slot(slot).await;
        self.lb.set_state(&server, "ready").await;
        self.lb
            .wait_status(&server, "UP", Duration::from_secs(20))
            .await;
        started.elapsed()
    }

    /// Starts a fresh replica on a new port in `slot` and points the load balancer at it.
    pub async fn start_in_slot(&mut self, slot: usize) {
        let port = testkit::free_port();
        let replica = self.spawn_replica(port);
        wait_ready(&replica).await;
        self.lb.set_port(&format!("r{slot}"), port).await;
        self.replicas[slot] = replica;
    }

    pub fn signal(&self, slot: usize, signal: i32) {
        self.replicas[slot].process.signal(signal);
    }

    /// Jobs with an attempt open (started, not ended) on the replica in `slot`.
    pub async fn jobs_running_on(&self, slot: usize) -> Vec<uuid::Uuid> {
        let owner = format!("{}/%", self.replicas[slot].id);
        let mut db = self.db().await;
        sqlx::query_scalar(
            "SELECT job_id FROM job_attempts WHERE owner LIKE $1 AND ended_ms IS NULL",
        )
        .bind(owner)
        .fetch_all(&mut db)
        .await
        .expect("query job_attempts")
    }

    /// The replica (`x-served-by` id) of each attempt of `job`, oldest first, with its outcome
    /// (None: never ended, e.g. its process was killed).
    pub async fn attempts_of(&self, job: uuid::Uuid) -> Vec<(String, Option<String>)> {
        let mut db = self.db().await;
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT owner, outcome FROM job_attempts WHERE job_id = $1 ORDER BY started_ms",
        )
        .bind(job)
        .fetch_all(&mut db)
        .await
        .expect("query job_attempts");
        rows.into_iter()
            .map(|(owner, outcome)| {
                let replica = owner.split('/').next().unwrap_or_default().to_string();
                (replica, outcome)
            })
            .collect()
    }

    /// A direct connection (not a pool: a pool retries for 30 s when the server is down).
    async fn db(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.database.url)
            .await
            .expect("connect to the test database")
    }

    pub fn replica_log(&self, slot: usize) -> String {
        let id = &self.replicas[slot].id;
        std::fs::read_to_string(self.logs.path().join(format!("{id}.log"))).unwrap_or_default()
    }
}

/// Waits until the replica answers `/readyz` with 200.
pub async fn wait_ready(replica: &Replica) {
    let client = reqwest::Client::new();
    let url = format!("{}/readyz", replica.url());
    testkit::wait_until(
        &format!("{} to be ready", replica.id),
        REPLICA_READY_DEADLINE,
        || async {
            let res = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?;
            res.status().is_success().then_some(())
        },
    )
    .await
}

pub async fn wait_exit(process: &mut ChildGuard, deadline: Duration) -> Option<i32> {
    testkit::wait_until(&format!("{} to exit", process.name()), deadline, || {
        let exited = process.try_wait();
        async move { exited }
    })
    .await
}

/// Status of `GET url` (None when it does not answer within 2 s).
pub async fn status_of(url: &str) -> Option<u16> {
    let res = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}
