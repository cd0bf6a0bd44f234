//! `loadtest` pointed at the HA test bed (three replicas behind HAProxy), as a user points it at
//! their ALB: the run is clean, its traffic reaches every replica, and it writes both reports.

use e2e::cluster::Cluster;
use testkit::haproxy::HaProxyOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_against_the_test_bed_is_clean_and_writes_its_reports() {
    let cluster = Cluster::start(3, HaProxyOptions::default()).await;
    let binary = tokio::task::spawn_blocking(|| testkit::bin::cargo_bin("loadtest", "loadtest"))
        .await
        .expect("build loadtest");
    let reports = tempfile::tempdir().expect("temp dir");
    let before: u64 = cluster
        .lb
        .stats()
        .await
        .iter()
        .map(|s| s.total_sessions)
        .sum();

    let out = tokio::process::Command::new(binary)
        .args(["--url", &cluster.url(), "--users", "4", "--duration", "10s"])
        .args([
            "--scenario",
            "mixed",
            "--progress-interval",
            "2s",
            "--report-dir",
        ])
        .arg(reports.path())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run loadtest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadtest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.path().join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    assert!(report["requests"].as_u64().unwrap_or(0) > 0, "{report:#}");
    assert_eq!(report["failures"], 0, "{report:#}");
    let html = std::fs::metadata(reports.path().join("report.html")).expect("report.html");
    assert!(html.len() > 1000, "the HTML report is too small");

    for server in cluster.lb.stats().await {
        assert!(
            server.total_sessions > 0,
            "replica {} got no traffic from the load test",
            server.name
        );
    }
    let after: u64 = cluster
        .lb
        .stats()
        .await
        .iter()
        .map(|s| s.total_sessions)
        .sum();
    println!(
        "loadtest through HAProxy: {} requests in the report, {} sessions on the balancer\n{}",
        report["requests"],
        after - before,
        stdout
            .lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
