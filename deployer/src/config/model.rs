//! The shape of `deployer.toml`. Field documentation lives in `deploy/deployer.toml` itself and
//! in the README; defaults here are the ones ECS applies, so that omitting a field and writing
//! the default produce the same plan.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// ECS cluster the service runs in (must exist).
    pub cluster: String,
    #[serde(default)]
    pub aws: AwsSection,
    pub registry: RegistrySection,
    #[serde(default)]
    pub image: ImageSection,
    pub task: TaskSection,
    pub service: ServiceSection,
    #[serde(default)]
    pub deployment: DeploymentSection,
    pub autoscaling: Option<AutoscalingSection>,
    #[serde(default)]
    pub release: ReleaseSection,
    /// CloudFormation stacks `deployer infra` manages; their outputs can be used anywhere else
    /// in the file as `${STACK.OUTPUT}`.
    pub infra: Option<InfraSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    /// Overrides the region from the standard chain (AWS_REGION, profile).
    pub region: Option<String>,
    /// Attempts per AWS call, including the first (throttling and 5xx are retried).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Longest one AWS call may take, all attempts and backoff included: an endpoint that
    /// accepts the connection and never answers must not hold a release forever.
    #[serde(default = "default_operation_timeout", with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// Longest one attempt may take before it is abandoned (and retried, within
    /// `operation_timeout` and `max_attempts`).
    #[serde(default = "default_attempt_timeout", with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Longest the TCP (and TLS) connection to an endpoint may take to open.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for AwsSection {
    fn default() -> Self {
        Self {
            region: None,
            max_attempts: default_max_attempts(),
            operation_timeout: default_operation_timeout(),
            attempt_timeout: default_attempt_timeout(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

fn default_max_attempts() -> u32 {
    5
}
fn default_operation_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_attempt_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// Repository name, in ECR and in the registry the image is pushed to.
    pub repository: String,
    /// `host[:port]` of a registry other than ECR (e.g. `127.0.0.1:5000` for tests). When unset,
    /// images go to this account's ECR and credentials come from GetAuthorizationToken.
    pub url: Option<String>,
    /// Talk plain HTTP to `url` (only for loopback test registries).
    #[serde(default)]
    pub insecure: bool,
    /// Names of the environment variables holding basic-auth credentials for `url`.
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// Create and configure the ECR repository (scan on push, lifecycle policy). Turn off when
    /// `url` is a non-ECR registry.
    #[serde(default = "yes")]
    pub manage_ecr: bool,
    #[serde(default = "yes")]
    pub scan_on_push: bool,
    /// ECR lifecycle policy: keep this many most recent images, expire older ones.
    #[serde(default = "default_keep_images")]
    pub keep_images: u32,
}

fn default_keep_images() -> u32 {
    30
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Cargo package and binary that go into the image.
    #[serde(default = "default_package")]
    pub package: String,
    #[serde(default = "default_package")]
    pub binary: String,
    /// Cargo workspace the image is built from (relative to the working directory).
    #[serde(default = "default_context")]
    pub context: std::path::PathBuf,
    /// Target directory of the static build; default `$CARGO_TARGET_DIR/static` or
    /// `CONTEXT/target/static`, apart from normal builds whose RUSTFLAGS differ.
    pub target_dir: Option<std::path::PathBuf>,
}

fn default_context() -> std::path::PathBuf {
    ".".into()
}

fn default_package() -> String {
    "data-processor".into()
}

impl Default for ImageSection {
    fn default() -> Self {
        Self {
            package: default_package(),
            binary: default_package(),
            context: default_context(),
            target_dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LaunchType {
    Ec2,
    Fargate,
}

impl LaunchType {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchType::Ec2 => "EC2",
            LaunchType::Fargate => "FARGATE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Bridge,
    Awsvpc,
    Host,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::Host => "host",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    pub family: String,
    pub launch_type: LaunchType,
    pub network_mode: NetworkMode,
    /// Task-level CPU units / MiB. Required for Fargate, optional for EC2.
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub container: ContainerSection,
    /// Plain environment variables.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Secrets: variable name -> SSM parameter or Secrets Manager ARN.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub logs: Option<LogsSection>,
    pub health_check: Option<HealthCheckSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSection {
    pub name: String,
    /// Port the service listens on inside the container.
    pub port: u16,
    /// 0 = dynamic host port (bridge mode behind an ALB). Ignored in awsvpc mode.
    #[serde(default)]
    pub host_port: u16,
    /// Soft memory limit (MiB): what the scheduler reserves on the instance.
    pub memory_reservation: Option<u32>,
    /// Hard memory limit (MiB): the container is killed above it.
    pub memory: Option<u32>,
    /// Time between SIGTERM and SIGKILL.
    #[serde(default, with = "humantime_serde")]
    pub stop_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogsSection {
    pub group: String,
    pub region: String,
    pub stream_prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSection {
    /// Executed in the container (exec form, no shell).
    pub command: Vec<String>,
    #[serde(default = "default_hc_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_hc_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_hc_retries")]
    pub retries: u32,
    #[serde(default, with = "humantime_serde")]
    pub start_period: Duration,
}

fn default_hc_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_hc_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_hc_retries() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Spread across availability zones, then across instances (EC2 only).
    AzThenInstance,
    /// Let ECS decide (the only choice on Fargate).
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    pub name: String,
    /// Tasks at creation; afterwards autoscaling owns the count (when configured).
    pub desired_count: u32,
    #[serde(default = "default_placement")]
    pub placement: Placement,
    /// Existing ALB target group the container port is registered in.
    pub target_group_arn: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub health_check_grace_period: Option<Duration>,
    /// Required for awsvpc network mode (Fargate).
    pub network: Option<NetworkSection>,
}

fn default_placement() -> Placement {
    Placement::AzThenInstance
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSection {
    #[serde(default = "default_min_healthy")]
    pub minimum_healthy_percent: u32,
    #[serde(default = "default_max_percent")]
    pub maximum_percent: u32,
    #[serde(default = "yes")]
    pub circuit_breaker: bool,
    #[serde(default = "yes")]
    pub rollback: bool,
    /// How long `release`/`rollback` wait for the deployment before exiting "timed out".
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Time between two looks at the deployment.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_min_healthy() -> u32 {
    100
}
fn default_max_percent() -> u32 {
    200
}
fn default_timeout() -> Duration {
    Duration::from_secs(20 * 60)
}
fn default_poll() -> Duration {
    Duration::from_secs(5)
}

impl Default for DeploymentSection {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: default_min_healthy(),
            maximum_percent: default_max_percent(),
            circuit_breaker: true,
            rollback: true,
            timeout: default_timeout(),
            poll_interval: default_poll(),
        }
    }
}

/// What `release` does besides the rollout.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSection {
    /// Run `data-processor migrate` as a one-off task of the new revision (same image, the
    /// service's network) after registering it and before updating the service; a failed
    /// migration stops the release with the service untouched.
    #[serde(default)]
    pub migrate: bool,
    /// How long the migration may run before it is stopped and the release fails.
    #[serde(default = "default_migrate_timeout", with = "humantime_serde")]
    pub migrate_timeout: Duration,
}

/// The arguments of the migration task: the image's entrypoint is the service binary (ocibuild
/// and the root Dockerfile alike), so the command override is its subcommand.
pub const MIGRATE_COMMAND: [&str; 1] = ["migrate"];

fn default_migrate_timeout() -> Duration {
    Duration::from_secs(10 * 60)
}

impl Default for ReleaseSection {
    fn default() -> Self {
        Self {
            migrate: false,
            migrate_timeout: default_migrate_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingSection {
    pub min: u32,
    pub max: u32,
    pub scale_out: ScaleOut,
    pub scale_in: ScaleIn,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    /// Average service CPU (percent) at or above which tasks are added...
    pub cpu_at_or_above: f64,
    /// ...when it stays there this long (whole minutes).
    #[serde(rename = "for", with = "humantime_serde")]
    pub sustained: Duration,
    pub add: u32,
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleIn {
    pub cpu_below: f64,
    #[serde(rename = "for", with = "humantime_serde")]
    pub sustained: Duration,
    pub remove: u32,
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
}

fn default_cooldown() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfraSection {
    /// Created or updated in this order by `infra up`, deleted in reverse by `infra down`.
    pub stacks: Vec<StackSection>,
    /// The stack the service runs on, whose outputs `${infra.OUTPUT}` names (default: the last
    /// one listed), so that an `[env.NAME]` section that lists other stacks switches every
    /// reference at once.
    pub service_stack: Option<String>,
    /// How long `infra up`/`down` follow one stack before exiting "timed out".
    #[serde(default = "default_infra_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Time between two looks at a stack or change set.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_infra_timeout() -> Duration {
    Duration::from_secs(60 * 60)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackSection {
    /// CloudFormation stack name; `${NAME.OUTPUT}` refers to one of its outputs.
    pub name: String,
    /// Template file (YAML or JSON), relative to the working directory.
    pub template: std::path::PathBuf,
    /// Region of this stack; default `aws.region` (e.g. a replica bucket's second region).
    pub region: Option<String>,
    /// Template parameters. Values may use `${STACK.OUTPUT}` of a stack listed before this one.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Tags CloudFormation puts on the stack and on every resource that supports tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl InfraSection {
    pub fn stack(&self, name: &str) -> Option<&StackSection> {
        self.stacks.iter().find(|s| s.name == name)
    }

    /// The name `${infra.OUTPUT}` stands for.
    pub fn service_stack_name(&self) -> Option<&str> {
        self.service_stack
            .as_deref()
            .or_else(|| self.stacks.last().map(|s| s.name.as_str()))
    }
}

/// The stack name in `${infra.OUTPUT}`: the `[infra]` service stack, whatever it is called.
pub const SERVICE_STACK_ALIAS: &str = "infra";
