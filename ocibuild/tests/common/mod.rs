//! Shared by the image tests: the fixture binary, and podman with private storage.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ocibuild::{StaticBuild, build_static_binary};

/// The std-only fixture server, built statically once per test binary (cargo's own
/// fingerprinting makes later builds a no-op).
pub fn fixture_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/healthz-server");
            let build = StaticBuild::new(dir, "healthz-server", "healthz-server")
                .target_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("healthz-server"));
            build_static_binary(&build, |line| eprintln!("[fixture build] {line}"))
                .expect("build the fixture server statically")
        })
        .clone()
}

/// Runs a command and returns its output, panicking with stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// podman with its own storage and configuration in a temp dir, so tests neither share nor
/// leave images and containers behind. runc and the ulimits are what works on these machines.
pub struct Podman {
    dir: tempfile::TempDir,
    containers: Vec<String>,
}

impl Podman {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podman-")
            .tempdir()
            .expect("temp dir for podman");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[engine]\nruntime = \"runc\"\n\n[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
        )
        .expect("write containers.conf");
        Self {
            dir,
            containers: Vec::new(),
        }
    }

    /// A podman command using the private storage.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("runroot"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ]);
        cmd
    }

    pub fn pull(&self, image: &str, creds: &str) {
        run_ok(self.cmd().args([
            "pull",
            "--quiet",
            "--tls-verify=false",
            "--creds",
            creds,
            image,
        ]));
    }

    /// Starts a detached container publishing `host_port` -> 8080 on loopback; removed on drop.
    pub fn run_detached(&mut self, image: &str, host_port: u16, extra: &[&str]) -> String {
        let out = run_ok(
            self.cmd()
                .args(["run", "--detach", "--publish"])
                .arg(format!("127.0.0.1:{host_port}:8080"))
                .args(extra)
                .arg(image),
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.containers.push(id.clone());
        id
    }

    pub fn logs(&self, id: &str) -> String {
        let out = self.cmd().args(["logs", id]).output().expect("podman logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    pub fn inspect(&self, id: &str, format: &str) -> String {
        let out = run_ok(self.cmd().args(["inspect", "--format", format, id]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self
                .cmd()
                .args(["rm", "--force", "--time", "0", id])
                .output();
        }
        // vfs layers are plain directories; podman removes them with its own storage lock.
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
    }
}

impl Podman {
    /// Waits until `GET /healthz` on the published port answers 200 and returns how long that
    /// took; panics with the container's logs if it exits or the deadline passes.
    pub async fn wait_healthy(
        &self,
        id: &str,
        port: u16,
        deadline: std::time::Duration,
    ) -> std::time::Duration {
        let start = std::time::Instant::now();
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let outcome = tokio::time::timeout(
            deadline,
            testkit::wait_until("/healthz to answer 200", deadline * 2, || async {
                if let Ok(r) = client.get(&url).send().await
                    && r.status() == 200
                {
                    return Some(Ok(()));
                }
                (self.inspect(id, "{{.State.Running}}") != "true").then_some(Err(()))
            }),
        )
        .await;
        match outcome {
            Ok(Ok(())) => start.elapsed(),
            Ok(Err(())) => panic!(
                "container exited before /healthz answered:\n{}",
                self.logs(id)
            ),
            Err(_) => panic!(
                "/healthz did not answer 200 within {deadline:?}:\n{}",
                self.logs(id)
            ),
        }
    }
}
