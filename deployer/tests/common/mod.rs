//! A stage for CLI-level tests: a real moto (ECS reports services as running so rollouts
//! complete), the cluster and an ALB target group the config points at, and a way to run the
//! real `deployer` binary against them with the checked-in config.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_config::BehaviorVersion;
use testkit::moto::MotoServer;

pub struct Stage {
    pub moto: MotoServer,
    pub sdk: aws_config::SdkConfig,
    pub target_group_arn: String,
    /// Extra `DEPLOYER__*` variables for every run.
    pub vars: Vec<(String, String)>,
}

pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

pub fn image(n: u8) -> String {
    format!("127.0.0.1:5000/data-processor@{}", digest(n))
}

pub fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deployer.toml")
}

/// The checked-in config as `deployer` loads it, with `DEPLOYER__*` variables on top: for tests
/// that call the library instead of running the binary.
pub fn config(vars: &[(&str, &str)]) -> deployer::config::Config {
    let path = config_path();
    let text = std::fs::read_to_string(&path).expect("deploy/deployer.toml");
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    deployer::config::parse(&path, &text, None, vars).expect("the checked-in config is valid")
}

impl Stage {
    pub async fn start() -> Self {
        Self::start_with_running(4).await
    }

    /// `running` = how many tasks moto reports for every service; below the desired count (4)
    /// a deployment never completes.
    pub async fn start_with_running(running: u32) -> Self {
        let moto =
            MotoServer::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", &running.to_string())]).await;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(moto.endpoint())
            .region(aws_config::Region::new(testkit::moto::REGION))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_ecs::Client::new(&sdk)
            .create_cluster()
            .cluster_name("prod-data-processor")
            .send()
            .await
            .expect("create cluster");
        let vpc = default_vpc(&moto).await;
        let tg = aws_sdk_elasticloadbalancingv2::Client::new(&sdk)
            .create_target_group()
            .name("data-processor")
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(8080)
            .vpc_id(vpc)
            .send()
            .await
            .expect("create target group");
        let target_group_arn = tg.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        let vars = vec![
            (
                "DEPLOYER__SERVICE__TARGET_GROUP_ARN".into(),
                target_group_arn.clone(),
            ),
            ("DEPLOYER__DEPLOYMENT__POLL_INTERVAL".into(), "50ms".into()),
            ("DEPLOYER__DEPLOYMENT__TIMEOUT".into(), "30s".into()),
        ];
        Self {
            moto,
            sdk,
            target_group_arn,
            vars,
        }
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// Runs `deployer ARGS` with the checked-in config against this moto.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
        cmd.args(["--config", config_path().to_str().unwrap()])
            .args(args);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in self.moto.client_env() {
            cmd.env(k, v);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run deployer");
        eprintln!(
            "deployer {args:?} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs with `--output json` and expects success; returns the document.
    pub fn run_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.status.code(), Some(0), "deployer {args:?} failed");
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    pub async fn revisions(&self) -> Vec<String> {
        self.ecs()
            .list_task_definitions()
            .family_prefix("data-processor-task")
            .send()
            .await
            .unwrap()
            .task_definition_arns()
            .to_vec()
    }

    /// The ids of the service's deployments, in the order ECS lists them.
    pub async fn deployment_ids(&self) -> Vec<String> {
        self.service()
            .await
            .deployments()
            .iter()
            .map(|d| d.id().unwrap().to_string())
            .collect()
    }

    pub async fn service(&self) -> aws_sdk_ecs::types::Service {
        self.ecs()
            .describe_services()
            .cluster("prod-data-processor")
            .services("data-processor-service")
            .send()
            .await
            .unwrap()
            .services()[0]
            .clone()
    }
}

/// moto creates a default VPC per region; ELBv2 target groups need one. The EC2 SDK is a large
/// crate to build for one call, so this asks moto's query API directly.
async fn default_vpc(moto: &MotoServer) -> String {
    let body = reqwest::Client::new()
        .post(moto.endpoint())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x",
        )
        .form(&[("Action", "DescribeVpcs"), ("Version", "2016-11-15")])
        .send()
        .await
        .expect("DescribeVpcs")
        .text()
        .await
        .unwrap();
    body.split("<vpcId>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("a default VPC in moto")
        .to_string()
}
