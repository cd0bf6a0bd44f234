//! No workspace crate has an import cycle between its modules (see `testkit::module_graph` for
//! what counts). A failure prints each cycle with the lines that form it.

use std::path::{Path, PathBuf};

use testkit::module_graph::find_cycles;

fn workspace_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

/// The `members` of the workspace manifest that have a `src` directory.
fn crates_with_src() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace_dir().join("Cargo.toml")).expect("workspace Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members"))
        .expect("a one-line `members = [...]` in the workspace Cargo.toml");
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| workspace_dir().join(m).join("src").is_dir())
        .map(str::to_string)
        .collect()
}

fn assert_acyclic(krate: &str) {
    let src = workspace_dir().join(krate).join("src");
    let cycles = find_cycles(&src).unwrap_or_else(|e| panic!("{krate}: {e}"));
    // Paths relative to the workspace read better than absolute ones.
    let prefix = format!("{}/", workspace_dir().display());
    let report: Vec<String> = cycles
        .iter()
        .map(|c| c.to_string().replace(&prefix, ""))
        .collect();
    assert!(
        cycles.is_empty(),
        "{krate} has {} module cycle(s):\n{}",
        cycles.len(),
        report.join("\n")
    );
}

#[test]
fn service_has_no_module_cycle() {
    assert_acyclic("service");
}

#[test]
fn deployer_has_no_module_cycle() {
    assert_acyclic("deployer");
}

#[test]
fn every_other_workspace_crate_has_no_module_cycle() {
    let crates = crates_with_src();
    for expected in [
        "service",
        "deployer",
        "csv-profile",
        "ocibuild",
        "loadtest",
        "testkit",
    ] {
        assert!(
            crates.iter().any(|c| c == expected),
            "{expected} missing from {crates:?}: the members line was misread"
        );
    }
    for krate in crates
        .iter()
        .filter(|c| *c != "service" && *c != "deployer")
    {
        assert_acyclic(krate);
    }
}
