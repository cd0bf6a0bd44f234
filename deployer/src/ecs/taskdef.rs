//! The task definition in a normalised form: only the fields deployer manages, API defaults
//! filled in, maps sorted. Desired (from the config) and live (from ECS) compare equal exactly
//! when registering would change nothing, and `plan` diffs their JSON.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver,
    NetworkMode as EcsNetworkMode, PortMapping, Secret, TaskDefinition, TransportProtocol,
};
use serde::Serialize;

use crate::aws::{AwsError, aws_err};
use crate::config::{Config, LaunchType, NetworkMode};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDefSpec {
    pub family: String,
    pub network_mode: String,
    /// Empty for EC2: ECS validates a task definition without requiresCompatibilities against EC2
    /// anyway, and ["EC2"] with only a memory reservation is refused by some validators (moto).
    pub requires_compatibilities: Vec<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub container: ContainerSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub container_port: i32,
    pub host_port: i32,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub stop_timeout: Option<i32>,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub logs: Option<BTreeMap<String, String>>,
    pub health_check: Option<HealthCheckSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheckSpec {
    pub command: Vec<String>,
    pub interval: i32,
    pub timeout: i32,
    pub retries: i32,
    pub start_period: i32,
}

fn secs(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl TaskDefSpec {
    pub fn desired(config: &Config, image: &str) -> Self {
        let t = &config.task;
        let awsvpc = t.network_mode == NetworkMode::Awsvpc;
        Self {
            family: t.family.clone(),
            network_mode: t.network_mode.as_str().to_string(),
            requires_compatibilities: match t.launch_type {
                LaunchType::Ec2 => vec![],
                LaunchType::Fargate => vec!["FARGATE".into()],
            },
            cpu: t.cpu.map(|c| c.to_string()),
            memory: t.memory.map(|m| m.to_string()),
            execution_role_arn: t.execution_role_arn.clone(),
            task_role_arn: t.task_role_arn.clone(),
            container: ContainerSpec {
                name: t.container.name.clone(),
                image: image.to_string(),
                container_port: i32::from(t.container.port),
                // awsvpc has no port mapping of its own: ECS reports hostPort = containerPort.
                host_port: if awsvpc {
                    i32::from(t.container.port)
                } else {
                    i32::from(t.container.host_port)
                },
                memory: t.container.memory.map(int),
                memory_reservation: t.container.memory_reservation.map(int),
                stop_timeout: t.container.stop_timeout.map(secs),
                environment: t.environment.clone(),
                secrets: t.secrets.clone(),
                logs: t.logs.as_ref().map(|l| {
                    BTreeMap::from([
                        ("awslogs-group".to_string(), l.group.clone()),
                        ("awslogs-region".to_string(), l.region.clone()),
                        ("awslogs-stream-prefix".to_string(), l.stream_prefix.clone()),
                    ])
                }),
                health_check: t.health_check.as_ref().map(|h| HealthCheckSpec {
                    command: std::iter::once("CMD".to_string())
                        .chain(h.command.iter().cloned())
                        .collect(),
                    interval: secs(h.interval),
                    timeout: secs(h.timeout),
                    retries: int(h.retries),
                    start_period: secs(h.start_period),
                }),
            },
        }
    }

    /// The live definition in the same normalised form. `None` when it has no container named
    /// like ours (then it is certainly different).
    pub fn live(td: &TaskDefinition, container_name: &str) -> Option<Self> {
        let c = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container_name))?;
        let network_mode = td
            .network_mode()
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "bridge".into());
        let port = c.port_mappings().first();
        let container_port = port.and_then(|p| p.container_port()).unwrap_or(0);
        let mut requires: Vec<String> = td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        requires.sort();
        if requires == ["EC2"] {
            requires.clear();
        }
        Some(Self {
            family: td.family().unwrap_or_default().to_string(),
            network_mode: network_mode.clone(),
            requires_compatibilities: requires,
            cpu: td.cpu().map(str::to_string),
            memory: td.memory().map(str::to_string),
            execution_role_arn: td.execution_role_arn().map(str::to_string),
            task_role_arn: td.task_role_arn().map(str::to_string),
            container: ContainerSpec {
                name: container_name.to_string(),
                image: c.image().unwrap_or_default().to_string(),
                container_port,
                host_port: if network_mode == "awsvpc" {
                    container_port
                } else {
                    port.and_then(|p| p.host_port()).unwrap_or(0)
                },
                memory: c.memory(),
                memory_reservation: c.memory_reservation(),
                stop_timeout: c.stop_timeout(),
                environment: c
                    .environment()
                    .iter()
                    .map(|kv| {
                        (
                            kv.name().unwrap_or_default().to_string(),
                            kv.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                secrets: c
                    .secrets()
                    .iter()
                    .map(|s| (s.name().to_string(), s.value_from().to_string()))
                    .collect(),
                logs: c.log_configuration().map(|l| {
                    l.options()
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default()
                }),
                health_check: c.health_check().map(|h| HealthCheckSpec {
                    command: h.command().to_vec(),
                    interval: h.interval().unwrap_or(30),
                    timeout: h.timeout().unwrap_or(5),
                    retries: h.retries().unwrap_or(3),
                    start_period: h.start_period().unwrap_or(0),
                }),
            },
        })
    }

    fn container_definition(&self) -> Result<ContainerDefinition, aws_sdk_ecs::error::BuildError> {
        let c = &self.container;
        let mut b = ContainerDefinition::builder()
            .name(&c.name)
            .image(&c.image)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(c.container_port)
                    .host_port(c.host_port)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .set_memory(c.memory)
            .set_memory_reservation(c.memory_reservation)
            .set_stop_timeout(c.stop_timeout);
        for (name, value) in &c.environment {
            b = b.environment(KeyValuePair::builder().name(name).value(value).build());
        }
        for (name, from) in &c.secrets {
            b = b.secrets(Secret::builder().name(name).value_from(from).build()?);
        }
        if let Some(options) = &c.logs {
            b = b.log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .set_options(Some(options.clone().into_iter().collect()))
                    .build()?,
            );
        }
        if let Some(h) = &c.health_check {
            b = b.health_check(
                HealthCheck::builder()
                    .set_command(Some(h.command.clone()))
                    .interval(h.interval)
                    .timeout(h.timeout)
                    .retries(h.retries)
                    .start_period(h.start_period)
                    .build()?,
            );
        }
        Ok(b.build())
    }
}

/// A registered revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    pub arn: String,
    pub family: String,
    pub revision: i32,
}

impl Revision {
    pub fn of(td: &TaskDefinition) -> Self {
        Self {
            arn: td.task_definition_arn().unwrap_or_default().to_string(),
            family: td.family().unwrap_or_default().to_string(),
            revision: td.revision(),
        }
    }

    /// `family:revision`
    pub fn short(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }
}

/// `arn:...:task-definition/family:7` or `family:7` -> `family:7`.
pub fn short_name(arn_or_name: &str) -> &str {
    arn_or_name
        .rsplit_once("task-definition/")
        .map(|(_, s)| s)
        .unwrap_or(arn_or_name)
}

/// The latest ACTIVE revision of `family`, or `None` when there is none.
#[tracing::instrument(skip(ecs))]
pub async fn describe(
    ecs: &aws_sdk_ecs::Client,
    family_or_arn: &str,
) -> Result<Option<TaskDefinition>, AwsError> {
    match ecs
        .describe_task_definition()
        .task_definition(family_or_arn)
        .send()
        .await
    {
        Ok(out) => Ok(out.task_definition().cloned()),
        Err(e) => {
            let e = AwsError::new("ecs:DescribeTaskDefinition", e);
            // ECS answers a missing family with ClientException "Unable to describe task definition."
            if e.is_code("ClientException") || e.is_code("InvalidParameterException") {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(family = %spec.family))]
pub async fn register(ecs: &aws_sdk_ecs::Client, spec: &TaskDefSpec) -> Result<Revision, AwsError> {
    let container = spec.container_definition().map_err(|e| AwsError {
        operation: "ecs:RegisterTaskDefinition",
        code: None,
        message: format!("invalid request: {e}"),
    })?;
    let out = ecs
        .register_task_definition()
        .family(&spec.family)
        .network_mode(EcsNetworkMode::from(spec.network_mode.as_str()))
        .set_requires_compatibilities(if spec.requires_compatibilities.is_empty() {
            None
        } else {
            Some(
                spec.requires_compatibilities
                    .iter()
                    .map(|c| Compatibility::from(c.as_str()))
                    .collect(),
            )
        })
        .set_cpu(spec.cpu.clone())
        .set_memory(spec.memory.clone())
        .set_execution_role_arn(spec.execution_role_arn.clone())
        .set_task_role_arn(spec.task_role_arn.clone())
        .container_definitions(container)
        .send()
        .await
        .map_err(aws_err("ecs:RegisterTaskDefinition"))?;
    let td = out.task_definition().ok_or_else(|| AwsError {
        operation: "ecs:RegisterTaskDefinition",
        code: None,
        message: "the answer holds no task definition".into(),
    })?;
    Ok(Revision::of(td))
}

/// Deregisters a revision (it becomes INACTIVE: no new task or service can use it).
#[tracing::instrument(skip(ecs))]
pub async fn deregister(ecs: &aws_sdk_ecs::Client, arn: &str) -> Result<(), AwsError> {
    ecs.deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(aws_err("ecs:DeregisterTaskDefinition"))?;
    Ok(())
}
