//! moto server: the AWS API emulator (S3, ECR, ECS, Application Auto Scaling, CloudWatch, ELBv2).
//! Each test starts its own on a free port, so it can also stop it to simulate an outage.

use std::process::Command;
use std::time::Duration;

use crate::process::ChildGuard;

pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

pub struct MotoServer {
    pub port: u16,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    server: Option<ChildGuard>,
}

impl MotoServer {
    pub async fn start() -> Self {
        Self::start_with_env(&[]).await
    }

    /// `env` is passed to the server, e.g. `[("MOTO_ECS_SERVICE_RUNNING", "2")]` so that moto
    /// reports ECS services as running.
    pub async fn start_with_env(env: &[(&str, &str)]) -> Self {
        let mut moto = Self {
            port: crate::free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir: tempfile::Builder::new()
                .prefix("moto-")
                .tempdir()
                .expect("temp dir"),
            server: None,
        };
        moto.start_server().await;
        moto
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`. 127.0.0.1 rather than localhost, so that
    /// the S3 client does not try virtual-host addressing (`bucket.localhost`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a child process (the service, the deployer) needs to talk to this moto.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// Stops the server (for outage tests); state is lost, as moto keeps it in memory.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    pub fn pid(&self) -> u32 {
        self.server.as_ref().map(|s| s.pid()).unwrap_or(0)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub async fn start_server(&mut self) {
        let log = self
            .dir
            .path()
            .join(format!("moto-{}.log", uuid::Uuid::new_v4().simple()));
        let mut cmd =
            Command::new(std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into()));
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.server = Some(ChildGuard::spawn("moto_server", &mut cmd, &log));
        crate::wait_for_http(
            &format!("{}/moto-api/", self.endpoint()),
            Duration::from_secs(60),
        )
        .await;
    }

    /// Clears every resource (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint()))
            .send()
            .await
            .expect("reset moto");
    }

    /// Creates a bucket with a unique name and returns it.
    pub async fn create_bucket(&self) -> String {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let res = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint()))
            .send()
            .await
            .expect("create bucket");
        assert!(
            res.status().is_success(),
            "create bucket {name}: {}",
            res.status()
        );
        name
    }
}
