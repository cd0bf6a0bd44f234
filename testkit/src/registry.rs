//! A real OCI registry (Debian's `docker-registry`) with basic auth, standing in for ECR.

use std::process::Command;
use std::time::Duration;

use crate::process::ChildGuard;

pub struct Registry {
    pub port: u16,
    pub username: String,
    pub password: String,
    dir: tempfile::TempDir,
    _server: ChildGuard,
}

impl Registry {
    pub async fn start() -> Self {
        let port = crate::free_port();
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .expect("temp dir");
        let username = "deployer".to_string();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let hash = bcrypt::hash(&password, 5).expect("bcrypt");
        std::fs::write(dir.path().join("htpasswd"), format!("{username}:{hash}\n"))
            .expect("write htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test-registry\n    path: {htpasswd}\n",
            root = dir.path().join("storage").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let mut cmd = Command::new(
            std::env::var("DOCKER_REGISTRY").unwrap_or_else(|_| "docker-registry".into()),
        );
        cmd.arg("serve").arg(&config_path);
        let server = ChildGuard::spawn(
            "docker-registry",
            &mut cmd,
            &dir.path().join("registry.log"),
        );
        crate::wait_for_http(
            &format!("http://127.0.0.1:{port}/v2/"),
            Duration::from_secs(30),
        )
        .await;
        Self {
            port,
            username,
            password,
            dir,
            _server: server,
        }
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}
