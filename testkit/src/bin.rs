//! Finds (and builds when needed) a workspace binary for tests in another package, e.g. the
//! end-to-end tests that start several `data-processor` replicas.

use std::path::PathBuf;
use std::process::Command;

/// The target folder this test binary was built into (`<target>/debug/deps/test-xxxx` -> `<target>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .map(PathBuf::from)
        .expect("test executable lives in <target>/<profile>/deps")
}

/// Path to `bin` of workspace package `package`, built in debug mode in the same target folder
/// as the running test (a no-op when it is up to date).
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    let target = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let path = target.join("debug").join(bin);
    assert!(path.exists(), "{} was not built", path.display());
    path
}
