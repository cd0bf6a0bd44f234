//! `build_static_binary` produces an executable with no dynamic loader, and a failing build says
//! what cargo said.

mod common;

use std::path::Path;
use std::process::Command;

use ocibuild::{BuildError, StaticBuild, build_static_binary};

#[test]
fn fixture_builds_as_a_static_executable() {
    let binary = common::fixture_binary();
    let file = common::run_ok(Command::new("file").arg(&binary));
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(file.contains("static"), "{file}");
    // ldd exits non-zero for a static executable and says so.
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let ldd = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd.contains("statically linked") || ldd.contains("not a dynamic executable"),
        "{ldd}"
    );
}

#[test]
fn cargo_output_is_streamed_and_failures_quote_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/healthz-server");
    let build = StaticBuild::new(dir, "no-such-package", "no-such-package")
        .target_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("healthz-server"));
    let mut lines = Vec::new();
    let err = build_static_binary(&build, |l| lines.push(l.to_string())).unwrap_err();
    assert!(matches!(err, BuildError::CargoFailed { .. }), "{err:?}");
    assert!(
        lines.iter().any(|l| l.contains("no-such-package")),
        "cargo's complaint reached the callback: {lines:?}"
    );
    assert!(err.to_string().contains("no-such-package"), "{err}");
}

#[test]
fn oci_layout_is_readable_by_skopeo() {
    let image =
        ocibuild::assemble(&ocibuild::ImageSpec::for_binary(common::fixture_binary())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    ocibuild::write_oci_layout(&image, dir.path(), "v1").unwrap();
    let out = common::run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:v1", dir.path().display())),
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], image.digest());
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
}
