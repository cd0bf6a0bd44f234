//! loadtest against the real service: a `data-processor` process on a fresh Postgres database
//! and a moto S3 bucket, all on loopback. The run must be clean (no errors at all) and write
//! both reports.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{read_json, run_loadtest_line, text};
use testkit::moto::MotoServer;
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;

struct Service {
    url: String,
    log: PathBuf,
    _process: ChildGuard,
    _db: TestDatabase,
    _moto: MotoServer,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start() -> Self {
        let moto = MotoServer::start().await;
        let bucket = moto.create_bucket().await;
        let db = TestDatabase::create().await;
        let bin = tokio::task::spawn_blocking(|| {
            testkit::bin::cargo_bin("data-processor", "data-processor")
        })
        .await
        .unwrap();
        let port = testkit::free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("service.log");
        let mut cmd = Command::new(bin);
        cmd.envs(moto.client_env())
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &db.url)
            .env("STORAGE_URL", format!("s3://{bucket}"))
            .env("S3_FORCE_PATH_STYLE", "true")
            .env("SESSION_COOKIE_SECURE", "false");
        let process = ChildGuard::spawn("data-processor", &mut cmd, &log);
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let ready = format!("{url}/readyz");
        testkit::wait_until(
            "data-processor /readyz 200",
            Duration::from_secs(60),
            || async {
                let res = client.get(&ready).send().await.ok()?;
                res.status().is_success().then_some(())
            },
        )
        .await;
        Self {
            url,
            log,
            _process: process,
            _db: db,
            _moto: moto,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// 10 s of load: the service under test is a debug build, where each Argon2 hash (register,
/// login) takes seconds, and every user must get past them to reach the scenario's steps.
async fn clean_run(service: &Service, scenario: &str) {
    let reports = tempfile::tempdir().unwrap();
    let dir = reports.path().display();
    let line = format!(
        "--url {} --users 3 --duration 10s --scenario {scenario} --progress-interval 1s --report-dir {dir}",
        service.url
    );
    let out = run_loadtest_line(&line, &[]).await;
    let stdout = text(&out.stdout);
    let tail: String = service
        .log()
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "{scenario}: {stdout}\n{}\nservice log (last lines, newest first):\n{tail}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("users 3/3"),
        "live progress expected: {stdout}"
    );

    let report = read_json(&reports.path().join("report.json"));
    assert!(report["requests"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["failures"], 0, "{report:#}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(report["users"], 3);
    let html = reports.path().join("report.html");
    assert!(
        html.exists() && std::fs::metadata(&html).unwrap().len() > 1000,
        "HTML report"
    );
}

/// `mixed` covers every step (register, login, upload, profile job polled to the end, download
/// with its SHA-256 checked, list); `read` the read-only path. One service serves both runs.
#[tokio::test]
async fn mixed_and_read_scenarios_against_the_real_service_are_clean() {
    let service = Service::start().await;
    clean_run(&service, "mixed").await;
    clean_run(&service, "read").await;
}
