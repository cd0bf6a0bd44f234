//! Shared by the loadtest tests: running the binary, and an in-process stand-in of the
//! data-processor API for the tests that are about the load test's own plumbing (CLI,
//! reports, --watch-ecs) rather than the service. The real service is driven in e2e.rs.

#![allow(dead_code)]

pub mod stub;

use std::path::PathBuf;
use std::process::Output;

pub fn loadtest_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
}

/// Runs loadtest with `args` and `env` to completion (off the async runtime's threads).
pub async fn run_loadtest(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(loadtest_bin());
    cmd.args(args).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run loadtest")
}

/// `run_loadtest` with the arguments written as one line (split at whitespace).
pub async fn run_loadtest_line(line: &str, env: &[(String, String)]) -> Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    run_loadtest(&args, env).await
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}
