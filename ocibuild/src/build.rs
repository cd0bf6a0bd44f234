//! Builds a statically linked release binary with cargo, so the image needs no libc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use crate::elf;
use crate::error::BuildError;

/// glibc's static archive works for this target; musl would need another toolchain.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// What to build. `target_dir` keeps the static build's artefacts apart from normal builds,
/// whose RUSTFLAGS differ and would otherwise force full rebuilds in both directions.
#[derive(Clone, Debug)]
pub struct StaticBuild {
    pub workspace_dir: PathBuf,
    pub package: String,
    pub bin: String,
    pub target_dir: Option<PathBuf>,
    /// Pass `--locked` (the default): a release must build from the checked-in Cargo.lock.
    pub locked: bool,
    /// Cargo profile (default `release`).
    pub profile: String,
}

impl StaticBuild {
    pub fn new(workspace_dir: impl Into<PathBuf>, package: &str, bin: &str) -> Self {
        Self {
            workspace_dir: workspace_dir.into(),
            package: package.to_string(),
            bin: bin.to_string(),
            target_dir: None,
            locked: true,
            profile: "release".to_string(),
        }
    }

    /// Builds with another cargo profile than `release` (tests use a quicker one).
    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = profile.to_string();
        self
    }

    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }
}

/// Runs `cargo build --profile PROFILE --target x86_64-unknown-linux-gnu` with `+crt-static`, hands
/// every line cargo prints (progress and diagnostics) to `on_line`, and returns the path of the
/// static executable after checking it really has no dynamic loader.
///
/// Blocking: call it from `tokio::task::spawn_blocking` in async code.
#[tracing::instrument(skip(on_line), fields(package = %build.package, bin = %build.bin))]
pub fn build_static_binary(
    build: &StaticBuild,
    mut on_line: impl FnMut(&str),
) -> Result<PathBuf, BuildError> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&build.workspace_dir)
        .args([
            "build",
            "--profile",
            &build.profile,
            "--target",
            STATIC_TARGET,
        ])
        .args(["-p", &build.package, "--bin", &build.bin])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--color",
            "never",
        ])
        // With an explicit --target, RUSTFLAGS reach only target code, not build scripts or
        // proc macros (which must stay dynamic).
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if build.locked {
        cmd.arg("--locked");
    }
    // Variables cargo sets for the crate being built or tested leak in when this runs under
    // `cargo test` or `cargo run`. Build scripts (ring's, via rerun-if-env-changed) watch some of
    // them, so a caller's CARGO_MANIFEST_DIR would force a rebuild of ring and everything above
    // it (~15 minutes here) whenever the caller changes.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_inherited_cargo_var) {
            cmd.env_remove(&key);
        }
    }
    if let Some(dir) = &build.target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let mut child = cmd.spawn().map_err(BuildError::CargoNotStarted)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let mut tail: Vec<String> = Vec::new();
    let executable = std::thread::scope(|scope| {
        // Artefact messages arrive on stdout while progress and errors arrive on stderr; both
        // pipes must be drained at once or cargo blocks on a full pipe.
        let artefacts = scope.spawn(|| stdout.map(|out| executable_from(out, &build.bin)));
        if let Some(err) = stderr {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                on_line(&line);
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        artefacts.join().ok().flatten().flatten()
    });
    let status = child.wait().map_err(BuildError::CargoNotStarted)?;
    if !status.success() {
        return Err(BuildError::CargoFailed {
            status: status.to_string(),
            tail: tail.join("\n"),
        });
    }
    let path = executable.ok_or_else(|| BuildError::BinaryNotReported {
        package: build.package.clone(),
        bin: build.bin.clone(),
    })?;
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
        path: path.clone(),
        source,
    })?;
    elf::check_static_executable(&path, &bytes)?;
    Ok(path)
}

fn is_inherited_cargo_var(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    EXACT.contains(&key) || key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_CFG_")
}

fn executable_from(out: impl std::io::Read, bin: &str) -> Option<PathBuf> {
    let mut found = None;
    for message in Message::parse_stream(BufReader::new(out)).map_while(Result::ok) {
        if let Message::CompilerArtifact(artifact) = message
            && artifact.target.name == bin
            && let Some(exe) = artifact.executable
        {
            found = Some(Path::new(exe.as_str()).to_path_buf());
        }
    }
    found
}
