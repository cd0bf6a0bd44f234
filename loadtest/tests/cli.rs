//! Command-line errors: exit code 2 and one line that names the flag and the fix, before any
//! traffic is sent.

mod common;

use common::{run_loadtest, text};

async fn assert_usage_error(args: &[&str], mentions: &[&str]) {
    let out = run_loadtest(args, &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "args {args:?}, stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(stderr.starts_with("loadtest: "), "{stderr}");
    for m in mentions {
        assert!(stderr.contains(m), "{m:?} missing in: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "nothing should run: {}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn url_without_scheme_is_refused() {
    assert_usage_error(
        &[
            "--url",
            "127.0.0.1:8080",
            "--users",
            "1",
            "--duration",
            "1s",
        ],
        &["--url", "https://"],
    )
    .await;
}

#[tokio::test]
async fn url_without_host_is_refused() {
    assert_usage_error(&["--url", "http://", "--duration", "1s"], &["--url"]).await;
}

#[tokio::test]
async fn url_with_a_path_is_refused() {
    assert_usage_error(
        &["--url", "http://127.0.0.1:8080/api", "--duration", "1s"],
        &["--url", "path"],
    )
    .await;
}

#[tokio::test]
async fn missing_url_is_refused() {
    assert_usage_error(&["--duration", "1s"], &["--url"]).await;
}

#[tokio::test]
async fn bad_duration_is_refused() {
    assert_usage_error(
        &["--url", "http://127.0.0.1:9", "--duration", "five"],
        &["--duration", "30s"],
    )
    .await;
    assert_usage_error(
        &["--url", "http://127.0.0.1:9", "--duration", "1500ms"],
        &["--duration", "whole"],
    )
    .await;
}

#[tokio::test]
async fn bad_think_time_and_users_are_refused() {
    assert_usage_error(
        &["--url", "http://127.0.0.1:9", "--think-time", "2s..1s"],
        &["--think-time"],
    )
    .await;
    assert_usage_error(
        &["--url", "http://127.0.0.1:9", "--users", "0"],
        &["--users"],
    )
    .await;
    assert_usage_error(
        &[
            "--url",
            "http://127.0.0.1:9",
            "--users",
            "1",
            "--ramp-up",
            "10s",
        ],
        &["--ramp-up", "--hatch-rate"],
    )
    .await;
}

#[tokio::test]
async fn bad_watch_target_is_refused() {
    assert_usage_error(
        &[
            "--url",
            "http://127.0.0.1:9",
            "--watch-ecs",
            "just-a-cluster",
        ],
        &["--watch-ecs", "CLUSTER/SERVICE"],
    )
    .await;
}
