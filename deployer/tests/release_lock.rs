//! Releases of one service are serialised by a lock in the service's tags: of two concurrent
//! releases exactly one goes ahead and the other exits 9 naming the holder, or waits for it
//! with `--wait-for-lock`; the lock is given up when the release ends, also when it fails.

mod common;

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::{Stage, image};
use deployer::error::exit;

fn spawn(stage: &Stage, args: &[&str], extra: &[(&str, &str)]) -> Child {
    stage.spawn(args, extra)
}

fn finish(name: &str, child: Child) -> Output {
    let out = child.wait_with_output().expect("wait for deployer");
    eprintln!(
        "{name} -> {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn service_arn(stage: &Stage) -> String {
    stage.service().await.service_arn().unwrap().to_string()
}

/// Lock claims on the service: (key, value).
async fn lock_tags(stage: &Stage) -> Vec<(String, String)> {
    stage.tags("deployer:lock:").await
}

async fn ledger_len(stage: &Stage) -> usize {
    stage.run_json(&["status"])["ledger"]
        .as_array()
        .map_or(0, Vec::len)
}

/// A stage whose service exists (the lock lives on it) and whose rollouts never complete, so
/// that a release holds the lock for the whole `deployment.timeout`.
async fn stage_with_service() -> Stage {
    let stage = Stage::start_with_running(0).await;
    let first = stage.run_with(
        &["release", "--image", &image(1)],
        &[("DEPLOYER__DEPLOYMENT__TIMEOUT", "1s")],
    );
    assert_eq!(first.status.code(), Some(exit::TIMED_OUT));
    assert_eq!(ledger_len(&stage).await, 1);
    stage
}

#[tokio::test]
async fn of_two_concurrent_releases_exactly_one_proceeds() {
    let stage = stage_with_service().await;
    let slow = [("DEPLOYER__DEPLOYMENT__TIMEOUT", "4s")];
    let args = ["release", "--image", &image(2)];
    let a = spawn(&stage, &args, &slow);
    let b = spawn(&stage, &args, &slow);
    let outs = [finish("a", a), finish("b", b)];

    let mut codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    codes.sort();
    // The one that proceeded ran the rollout to its (never completing) end.
    assert_eq!(codes, [exit::TIMED_OUT, exit::LOCKED]);
    let locked = outs
        .iter()
        .find(|o| o.status.code() == Some(exit::LOCKED))
        .unwrap();
    let stderr = String::from_utf8_lossy(&locked.stderr);
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].starts_with(
            "error: another release of prod-data-processor/data-processor-service is in progress (owner "
        ),
        "{stderr}"
    );
    assert!(error[0].contains(", since "), "{stderr}");
    assert!(
        error[0].ends_with("; retry after it ends or pass --wait-for-lock to wait for it"),
        "{stderr}"
    );

    // One new ledger entry, one new revision: the refused release changed nothing.
    assert_eq!(ledger_len(&stage).await, 2);
    assert_eq!(stage.revisions().await.len(), 2);
    // Given up at the end, although that release failed.
    assert_eq!(lock_tags(&stage).await, vec![]);
}

#[tokio::test]
async fn wait_for_lock_waits_for_the_holder_then_proceeds() {
    let stage = stage_with_service().await;
    let holder = spawn(
        &stage,
        &["release", "--image", &image(2)],
        &[("DEPLOYER__DEPLOYMENT__TIMEOUT", "3s")],
    );
    // Start the second only once the first holds the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tags = lock_tags(&stage).await;
        if tags.iter().any(|(_, v)| v.contains("state=held")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first release never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `status` shows who holds it.
    let lock = stage.run_json(&["status"])["lock"].clone();
    assert_eq!(lock.as_array().map(Vec::len), Some(1), "{lock}");
    assert_eq!(lock[0]["command"], "release", "{lock}");
    assert_eq!(lock[0]["state"], "held", "{lock}");
    let waiter = spawn(
        &stage,
        &[
            "--output",
            "json",
            "release",
            "--image",
            &image(2),
            "--wait-for-lock",
            "1m",
        ],
        &[],
    );
    let holder = finish("holder", holder);
    let waiter = finish("waiter", waiter);
    assert_eq!(holder.status.code(), Some(exit::TIMED_OUT));
    assert_eq!(waiter.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&waiter.stderr);
    assert!(
        stderr.contains(
            "waiting for the lock of prod-data-processor/data-processor-service: release "
        ),
        "{stderr}"
    );
    // It read what runs after the holder was done: revision 2 already runs, nothing to deploy.
    let summary: serde_json::Value = serde_json::from_slice(&waiter.stdout).unwrap();
    assert_eq!(summary["task_definition"], "data-processor-task:2");
    assert_eq!(summary["deployment_id"], serde_json::Value::Null);
    assert_eq!(ledger_len(&stage).await, 2);
    assert_eq!(lock_tags(&stage).await, vec![]);
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_with_a_warning() {
    let stage = stage_with_service().await;
    let arn = service_arn(&stage).await;
    // What a release killed an hour ago leaves behind.
    stage
        .ecs()
        .tag_resource()
        .resource_arn(arn)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("deployer:lock:ci-runner-7:4242:0badcafe")
                .value("command=release since=2026-01-01T00:00:00Z expires=2026-01-01T00:30:00Z state=held")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let status = stage.run(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("lock: release by ci-runner-7:4242:0badcafe since 2026-01-01T00:00:00Z, expires 2026-01-01T00:30:00Z (expired)"),
        "{text}"
    );
    let out = stage.run_with(
        &["release", "--image", &image(2)],
        &[("DEPLOYER__DEPLOYMENT__TIMEOUT", "1s")],
    );
    assert_eq!(out.status.code(), Some(exit::TIMED_OUT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "taking over the lock of prod-data-processor/data-processor-service: release by ci-runner-7:4242:0badcafe since 2026-01-01T00:00:00Z expired at 2026-01-01T00:30:00Z"
        ),
        "{stderr}"
    );
    assert_eq!(ledger_len(&stage).await, 2);
    assert_eq!(lock_tags(&stage).await, vec![]);
    let status = stage.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("\nlock: free\n"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}
