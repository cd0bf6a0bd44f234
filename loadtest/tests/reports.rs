//! The load test's own plumbing against the in-process API stand-in: every scenario runs,
//! the reports are written with the figures the summary prints, and a check that fails
//! (a download whose SHA-256 differs) is counted as an error of its kind, with exit code 1.

mod common;

use common::stub::Stub;
use common::{read_json, run_loadtest_line, text};
use serde_json::Value;

fn endpoint<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {report:#}"))
}

#[tokio::test]
async fn mixed_scenario_covers_every_endpoint_and_writes_both_reports() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("out/lt.html");
    let json = dir.path().join("out/lt.json");
    let (url, html_path, json_path) = (&stub.url, html.display(), json.display());
    let line = format!(
        "--url {url} --users 2 --duration 2s --scenario mixed --think-time 1ms..5ms \
         --html {html_path} --json {json_path}"
    );
    let out = run_loadtest_line(&line, &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));

    let report = read_json(&json);
    assert_eq!(report["failures"], 0, "{report:#}");
    assert_eq!(report["scenario"], "mixed");
    for name in [
        "POST /api/v1/users",
        "POST /api/v1/session",
        "POST /api/v1/files",
        "POST /api/v1/files/{id}/jobs",
        "GET /api/v1/jobs/{id}",
        "GET /api/v1/files/{id}/content",
        "GET /api/v1/files",
        "GET /api/v1/session",
    ] {
        let e = endpoint(&report, name);
        assert!(e["requests"].as_u64().unwrap() > 0, "{name}: {e}");
        assert!(e["p99_ms"].as_f64().unwrap() >= e["p50_ms"].as_f64().unwrap());
        assert!(e["max_ms"].as_f64().unwrap() >= e["p99_ms"].as_f64().unwrap());
    }
    // The stand-in answers "running" on a job's first poll: users poll until "succeeded".
    let polls = endpoint(&report, "GET /api/v1/jobs/{id}")["requests"]
        .as_u64()
        .unwrap();
    let jobs = endpoint(&report, "POST /api/v1/files/{id}/jobs")["requests"]
        .as_u64()
        .unwrap();
    // Each of the 2 users may be cut off by the end of the run between queueing its last job and
    // its second poll of it (0 or 1 poll instead of 2).
    let users = 2;
    assert!(
        polls >= 2 * jobs - 2 * users,
        "{polls} polls for {jobs} jobs"
    );
    assert!(
        report["jobs"]["requests"].as_u64().unwrap() > 0,
        "job latency recorded"
    );
    let total: u64 = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(report["requests"].as_u64().unwrap(), total);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<html") && page.contains("echarts"),
        "goose's HTML report with charts"
    );
    assert!(
        stdout.contains("GET /api/v1/files/{id}/content"),
        "summary table: {stdout}"
    );
    assert!(stdout.contains("errors: none"), "{stdout}");
}

#[tokio::test]
async fn read_upload_and_jobs_scenarios_run_cleanly() {
    let stub = Stub::start().await;
    for scenario in ["read", "upload", "jobs"] {
        let dir = tempfile::tempdir().unwrap();
        let out = run_loadtest_line(
            &format!(
                "--url {} --users 2 --duration 1s --scenario {} --report-dir {} --max-rps 200",
                &stub.url,
                scenario,
                dir.path().to_str().unwrap()
            ),
            &[],
        )
        .await;
        assert!(
            out.status.success(),
            "{scenario}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let report = read_json(&dir.path().join("report.json"));
        assert!(
            report["requests"].as_u64().unwrap() > 4,
            "{scenario}: {report:#}"
        );
        assert_eq!(report["failures"], 0, "{scenario}: {report:#}");
        assert!(dir.path().join("report.html").exists());
    }
}

#[tokio::test]
async fn a_download_with_another_sha256_is_an_error_of_its_kind() {
    let stub = Stub::start_corrupting_downloads().await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_loadtest_line(
        &format!(
            "--url {} --users 1 --duration 1s --scenario upload --report-dir {}",
            &stub.url,
            dir.path().to_str().unwrap()
        ),
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{:#}",
        text(&out.stdout),
        read_json(&dir.path().join("report.json"))
    );
    assert!(
        text(&out.stderr).contains("requests failed"),
        "{}",
        text(&out.stderr)
    );
    let report = read_json(&dir.path().join("report.json"));
    let mismatches = report["errors_by_kind"]["sha256 mismatch"]
        .as_u64()
        .unwrap_or(0);
    let downloads = endpoint(&report, "GET /api/v1/files/{id}/content");
    assert!(mismatches > 0, "{report:#}");
    assert_eq!(
        downloads["failures"].as_u64().unwrap(),
        mismatches,
        "{report:#}"
    );
    assert_eq!(
        report["failures"].as_u64().unwrap(),
        mismatches,
        "only downloads fail"
    );
    assert!(text(&out.stdout).contains("sha256 mismatch"));
}

#[tokio::test]
async fn an_unreachable_target_reports_connection_errors() {
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = run_loadtest_line(
        &format!(
            "--url {} --users 1 --duration 1s --report-dir {}",
            &format!("http://127.0.0.1:{port}"),
            dir.path().to_str().unwrap()
        ),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report = read_json(&dir.path().join("report.json"));
    assert!(
        report["errors_by_kind"]["connection"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}
