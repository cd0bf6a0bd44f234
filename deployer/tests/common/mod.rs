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

/// The log group of the service stack (`${infra.LogGroupName}`), created by moto's CloudFormation.
pub const LOG_GROUP: &str = "/ecs/data-processor";

/// Where the awslogs driver writes the app container of task `id` under the checked-in config.
pub fn stream_of(id: &str) -> String {
    format!("data-processor/data-processor/{id}")
}

/// Milliseconds since the epoch, `ago` before now.
pub fn millis_ago(ago: std::time::Duration) -> i64 {
    deployer::logs::millis_ago(ago)
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

/// The outputs the checked-in config's `${infra.OUTPUT}` references take in the tests that call
/// the library: what a region.yaml stack outputs, shaped like real values.
pub fn stand_in_outputs() -> deployer::config::StackOutputs {
    let infra = [
        ("Region", "eu-west-1"),
        ("ClusterName", "prod-data-processor"),
        (
            "TargetGroupArn",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/data-processor/6d0ecf831eec9f09",
        ),
        ("LogGroupName", "/ecs/data-processor"),
        (
            "ExecutionRoleArn",
            "arn:aws:iam::123456789012:role/data-processor-execution",
        ),
        (
            "TaskRoleArn",
            "arn:aws:iam::123456789012:role/data-processor-task",
        ),
        ("StorageUrl", "s3://prod-data-processor-files/data"),
        (
            "FallbackStorageUrl",
            "s3://prod-data-processor-files-123456789012-eu-central-1/data",
        ),
        ("ReplicaRegion", "eu-central-1"),
        (
            "DatabaseUrlSecretArn",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/data-processor/database-url",
        ),
        (
            "DatabasePasswordSecretArn",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123",
        ),
        (
            "PrivateSubnetIds",
            "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        ),
        ("TaskSecurityGroupId", "sg-0123456789abcdef0"),
    ];
    std::collections::BTreeMap::from([(
        deployer::config::SERVICE_STACK_ALIAS.to_string(),
        infra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )])
}

/// The checked-in config as `deployer` loads it, with `DEPLOYER__*` variables on top and the
/// stand-in outputs: for tests that call the library instead of running the binary.
pub fn config(vars: &[(&str, &str)]) -> deployer::config::Config {
    let path = config_path();
    let text = std::fs::read_to_string(&path).expect("deploy/deployer.toml");
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    deployer::config::draft(&path, &text, None, vars)
        .and_then(|d| d.resolve(&stand_in_outputs()))
        .expect("the checked-in config is valid")
}

/// The service stack the checked-in config refers to, as moto can make it: the stand-in
/// template created with CreateStack (moto gives change-set stacks no outputs). Returns its
/// outputs.
pub async fn create_service_stack(
    sdk: &aws_config::SdkConfig,
) -> std::collections::BTreeMap<String, String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-stack.yaml"),
    )
    .expect("service-stack.yaml");
    cfn.create_stack()
        .stack_name("data-processor")
        .template_body(body)
        .send()
        .await
        .expect("create the service stack");
    let described = cfn
        .describe_stacks()
        .stack_name("data-processor")
        .send()
        .await
        .expect("describe the service stack");
    described.stacks()[0]
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                o.output_value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

impl Stage {
    pub async fn start() -> Self {
        Self::start_with_running(4).await
    }

    /// `running` = how many tasks moto reports for every service; below the desired count (4)
    /// a deployment never completes. The cluster, target group and the rest come from the
    /// service stack, which the checked-in config names through `${infra.OUTPUT}`.
    pub async fn start_with_running(running: u32) -> Self {
        let moto =
            MotoServer::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", &running.to_string())]).await;
        let sdk = moto_sdk(&moto).await;
        let outputs = create_service_stack(&sdk).await;
        let target_group_arn = outputs["TargetGroupArn"].clone();
        let vars = vec![
            ("DEPLOYER__DEPLOYMENT__POLL_INTERVAL".into(), "50ms".into()),
            ("DEPLOYER__DEPLOYMENT__TIMEOUT".into(), "30s".into()),
            // moto never ends a task, so a migration would run until its timeout; the tests of
            // the migration turn it back on.
            ("DEPLOYER__RELEASE__MIGRATE".into(), "false".into()),
        ];
        Self {
            moto,
            sdk,
            target_group_arn,
            vars,
        }
    }

    /// The checked-in config as `deployer` would load it against this stage (its stack's
    /// outputs), with `vars` on top: for tests that call the library.
    pub async fn config(&self, vars: &[(&str, &str)]) -> deployer::config::Config {
        let described = aws_sdk_cloudformation::Client::new(&self.sdk)
            .describe_stacks()
            .stack_name("data-processor")
            .send()
            .await
            .expect("describe the service stack");
        let outputs = described.stacks()[0]
            .outputs()
            .iter()
            .map(|o| {
                (
                    o.output_key().unwrap_or_default().to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let path = config_path();
        let text = std::fs::read_to_string(&path).expect("deploy/deployer.toml");
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        deployer::config::draft(&path, &text, None, vars)
            .and_then(|d| {
                d.resolve(&std::collections::BTreeMap::from([(
                    deployer::config::SERVICE_STACK_ALIAS.to_string(),
                    outputs,
                )]))
            })
            .expect("the checked-in config is valid")
    }

    /// Registers `n` container instances in the cluster: moto places EC2 tasks (RunTask) only
    /// on one, one task per instance here (each reserves host port 0), and never runs them
    /// (they stay RUNNING until StopTask). moto checks that the EC2 instance exists.
    pub async fn add_container_instances(&self, n: u32) {
        for _ in 0..n {
            let instance = self.ec2_instance().await;
            self.ecs()
                .register_container_instance()
                .cluster("prod-data-processor")
                .instance_identity_document(format!(r#"{{"instanceId": "{instance}"}}"#))
                .send()
                .await
                .expect("register a container instance");
        }
    }

    /// An EC2 instance in moto, through the EC2 query API (the crate has no EC2 client; moto
    /// checks no signature, it only reads the service from the credential scope).
    async fn ec2_instance(&self) -> String {
        let body = reqwest::Client::new()
            .post(self.moto.endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20261204/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body("Action=RunInstances&Version=2016-11-15&ImageId=ami-12c6146b&MinCount=1&MaxCount=1&InstanceType=t3.micro")
            .send()
            .await
            .expect("RunInstances on moto")
            .text()
            .await
            .expect("RunInstances answer");
        body.split("<instanceId>")
            .nth(1)
            .and_then(|r| r.split("</instanceId>").next())
            .unwrap_or_else(|| panic!("no instance id in {body}"))
            .to_string()
    }

    /// moto moves a task one state on per DescribeTasks, RUNNING to STOPPED with exit code 0
    /// for every container; after this its tasks stay RUNNING (until StopTask).
    pub async fn hold_tasks_running(&self) {
        let status = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/state-manager/set-transition",
                self.moto.endpoint()
            ))
            .json(&serde_json::json!({
                "model_name": "ecs::task",
                "transition": {"progression": "manual", "times": 1_000_000}
            }))
            .send()
            .await
            .expect("moto state manager")
            .status();
        assert!(status.is_success(), "set-transition: {status}");
    }

    /// Writes `lines` (timestamp in ms, message) to `stream` of the service's log group.
    pub async fn put_log_lines(&self, stream: &str, lines: &[(i64, &str)]) {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.sdk);
        // The stream may exist from an earlier call.
        let _ = logs
            .create_log_stream()
            .log_group_name(LOG_GROUP)
            .log_stream_name(stream)
            .send()
            .await;
        let mut req = logs
            .put_log_events()
            .log_group_name(LOG_GROUP)
            .log_stream_name(stream);
        for (ts, message) in lines {
            req = req.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(*ts)
                    .message(*message)
                    .build()
                    .expect("a log event"),
            );
        }
        req.send().await.expect("put log events");
    }

    /// The service's tags whose key starts with `prefix`, as (key, value), sorted by key.
    pub async fn tags(&self, prefix: &str) -> Vec<(String, String)> {
        let arn = self.service().await.service_arn().unwrap().to_string();
        let mut tags: Vec<(String, String)> = self
            .ecs()
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .filter(|t| t.key().unwrap_or_default().starts_with(prefix))
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        tags.sort();
        tags
    }

    /// The release ledger's entries (tags `deployer:release:NNNNNN` on the service).
    pub async fn ledger(&self) -> Vec<(String, String)> {
        self.tags("deployer:release:").await
    }

    /// The tasks started with `started_by` (RUNNING ones unless `status` says otherwise), as
    /// moto describes them now.
    pub async fn tasks_started_by(
        &self,
        started_by: &str,
        status: Option<aws_sdk_ecs::types::DesiredStatus>,
    ) -> Vec<aws_sdk_ecs::types::Task> {
        let ecs = self.ecs();
        let listed = ecs
            .list_tasks()
            .cluster("prod-data-processor")
            .started_by(started_by)
            .set_desired_status(status)
            .send()
            .await
            .unwrap();
        if listed.task_arns().is_empty() {
            return vec![];
        }
        ecs.describe_tasks()
            .cluster("prod-data-processor")
            .set_tasks(Some(listed.task_arns().to_vec()))
            .send()
            .await
            .unwrap()
            .tasks()
            .to_vec()
    }

    /// Starts `deployer ARGS` with the checked-in config against this stage, stdout and stderr
    /// piped, without waiting for it.
    pub fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
        cmd.arg("--config").arg(config_path()).args(args);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in self.moto.client_env() {
            cmd.env(k, v);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start deployer")
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// Runs `deployer ARGS` with the checked-in config against this moto.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let vars = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied());
        run_deployer(&self.moto, &config_path(), args, vars)
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

/// Runs the real `deployer --config CONFIG ARGS` against `moto`, with only `vars` (and PATH) in
/// its environment and no terminal on stdin; prints what it said, for a failing test's log.
pub fn run_deployer<'a>(
    moto: &MotoServer,
    config: &Path,
    args: &[&str],
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deployer"));
    cmd.arg("--config").arg(config).args(args);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null());
    for (k, v) in moto.client_env() {
        cmd.env(k, v);
    }
    for (k, v) in vars {
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

/// An AWS config that talks to `moto` with its test credentials, in the tests' region.
pub async fn moto_sdk(moto: &MotoServer) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(aws_config::Region::new(testkit::moto::REGION))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}
