//! Every AWS call has a deadline: against an endpoint that accepts the connection and never
//! answers, `deployer` gives up after `[aws] operation_timeout` with the AWS exit code and a
//! message naming the call and the timeout.

use std::process::Command;
use std::time::{Duration, Instant};

use deployer::error::exit;
use tokio::net::TcpListener;

/// Accepts every connection and keeps it open without reading or writing a byte, the way a
/// stalled proxy or a black-holed endpoint behind a load balancer does.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_endpoint_fails_the_call_after_the_operation_timeout() {
    let (endpoint, listener) = silent_endpoint().await;
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deployer.toml");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_deployer"))
            .arg("--config")
            .arg(config)
            .arg("status")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DEPLOYER__AWS__OPERATION_TIMEOUT", "1s")
            .env("DEPLOYER__AWS__ATTEMPT_TIMEOUT", "300ms")
            .env("DEPLOYER__AWS__CONNECT_TIMEOUT", "200ms")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run deployer")
    })
    .await
    .expect("join");
    let waited = started.elapsed();
    listener.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "deployer status -> {:?} after {waited:?}\n{stderr}",
        out.status.code()
    );

    assert_eq!(out.status.code(), Some(exit::AWS), "{stderr}");
    // 1s for the call, plus the process start; far below the SDK's default of waiting forever.
    assert!(waited < Duration::from_secs(10), "gave up after {waited:?}");
    assert!(
        waited >= Duration::from_secs(1),
        "waited the whole operation timeout, not less: {waited:?}"
    );
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    // The first call the checked-in config needs: the service stack's outputs.
    assert!(
        line.contains("cloudformation:DescribeStacks failed"),
        "{line}"
    );
    assert!(
        line.contains("operation timeout (all attempts including retries) occurred after 1s"),
        "{line}"
    );
    assert!(line.contains("[aws] operation_timeout"), "{line}");
}

#[tokio::test]
async fn an_attempt_timeout_longer_than_the_operation_timeout_is_a_config_error() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deployer.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("--config")
        .arg(config)
        .arg("status")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("DEPLOYER__AWS__OPERATION_TIMEOUT", "1s")
        .env("DEPLOYER__AWS__ATTEMPT_TIMEOUT", "5s")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run deployer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::CONFIG), "{stderr}");
    assert!(
        stderr.contains(
            "aws.attempt_timeout: must be longer than 0s and at most aws.operation_timeout"
        ),
        "{stderr}"
    );
}
