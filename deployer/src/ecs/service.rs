//! The ECS service in normalised form, and creating or updating it.
//!
//! An update never sends a desired count while autoscaling manages the service: that would
//! undo whatever the scaling policies decided.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    LaunchType as EcsLaunchType, LoadBalancer, NetworkConfiguration, PlacementStrategy,
    PlacementStrategyType, Service,
};
use serde::Serialize;

use super::taskdef::short_name;
use crate::aws::{AwsError, aws_err};
use crate::config::{Config, Placement};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpec {
    /// `family:revision`
    pub task_definition: String,
    pub launch_type: String,
    pub load_balancer: Option<LoadBalancerSpec>,
    /// `type:field` pairs, in order.
    pub placement: Vec<String>,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub health_check_grace_period: i32,
    pub network: Option<NetworkSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancerSpec {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSpec {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

const AZ_THEN_INSTANCE: [(&str, &str); 2] = [
    ("spread", "attribute:ecs.availability-zone"),
    ("spread", "instanceId"),
];

impl ServiceSpec {
    pub fn desired(config: &Config, task_definition: &str) -> Self {
        let d = &config.deployment;
        Self {
            task_definition: short_name(task_definition).to_string(),
            launch_type: config.task.launch_type.as_str().to_string(),
            load_balancer: config
                .service
                .target_group_arn
                .as_ref()
                .map(|tg| LoadBalancerSpec {
                    target_group_arn: tg.clone(),
                    container_name: config.task.container.name.clone(),
                    container_port: i32::from(config.task.container.port),
                }),
            placement: match config.service.placement {
                Placement::AzThenInstance => AZ_THEN_INSTANCE
                    .iter()
                    .map(|(t, f)| format!("{t}:{f}"))
                    .collect(),
                Placement::None => vec![],
            },
            minimum_healthy_percent: i32::try_from(d.minimum_healthy_percent).unwrap_or(100),
            maximum_percent: i32::try_from(d.maximum_percent).unwrap_or(200),
            circuit_breaker: d.circuit_breaker,
            rollback: d.rollback,
            health_check_grace_period: config
                .service
                .health_check_grace_period
                .map(|g| i32::try_from(g.as_secs()).unwrap_or(i32::MAX))
                .unwrap_or(0),
            network: config.service.network.as_ref().map(|n| {
                let mut subnets = n.subnets.clone();
                subnets.sort();
                let mut security_groups = n.security_groups.clone();
                security_groups.sort();
                NetworkSpec {
                    subnets,
                    security_groups,
                    assign_public_ip: n.assign_public_ip,
                }
            }),
        }
    }

    pub fn live(s: &Service) -> Self {
        let dc = s.deployment_configuration();
        let cb = dc.and_then(|d| d.deployment_circuit_breaker());
        Self {
            task_definition: short_name(s.task_definition().unwrap_or_default()).to_string(),
            launch_type: s
                .launch_type()
                .map(|l| l.as_str().to_string())
                .unwrap_or_default(),
            load_balancer: s.load_balancers().first().map(|lb| LoadBalancerSpec {
                target_group_arn: lb.target_group_arn().unwrap_or_default().to_string(),
                container_name: lb.container_name().unwrap_or_default().to_string(),
                container_port: lb.container_port().unwrap_or(0),
            }),
            placement: s
                .placement_strategy()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}",
                        p.r#type().map(|t| t.as_str()).unwrap_or_default(),
                        p.field().unwrap_or_default()
                    )
                })
                .collect(),
            // Absent = ECS's defaults for a replica service.
            minimum_healthy_percent: dc.and_then(|d| d.minimum_healthy_percent()).unwrap_or(100),
            maximum_percent: dc.and_then(|d| d.maximum_percent()).unwrap_or(200),
            circuit_breaker: cb.is_some_and(|c| c.enable()),
            rollback: cb.is_some_and(|c| c.rollback()),
            health_check_grace_period: s.health_check_grace_period_seconds().unwrap_or(0),
            network: s
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .map(|a| {
                    let mut subnets = a.subnets().to_vec();
                    subnets.sort();
                    let mut security_groups = a.security_groups().to_vec();
                    security_groups.sort();
                    NetworkSpec {
                        subnets,
                        security_groups,
                        assign_public_ip: a.assign_public_ip() == Some(&AssignPublicIp::Enabled),
                    }
                }),
        }
    }

    fn deployment_configuration(&self) -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .minimum_healthy_percent(self.minimum_healthy_percent)
            .maximum_percent(self.maximum_percent)
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(self.circuit_breaker)
                    .rollback(self.rollback)
                    .build(),
            )
            .build()
    }

    fn placement_strategy(&self) -> Vec<PlacementStrategy> {
        self.placement
            .iter()
            .filter_map(|p| p.split_once(':'))
            .map(|(t, f)| {
                PlacementStrategy::builder()
                    .r#type(PlacementStrategyType::from(t))
                    .field(f)
                    .build()
            })
            .collect()
    }

    fn load_balancers(&self) -> Option<Vec<LoadBalancer>> {
        self.load_balancer.as_ref().map(|lb| {
            vec![
                LoadBalancer::builder()
                    .target_group_arn(&lb.target_group_arn)
                    .container_name(&lb.container_name)
                    .container_port(lb.container_port)
                    .build(),
            ]
        })
    }

    /// The awsvpc configuration to send (also to RunTask for a one-off task of the service).
    pub fn network_configuration(&self) -> Result<Option<NetworkConfiguration>, AwsError> {
        self.network
            .as_ref()
            .map(|n| {
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(n.subnets.clone()))
                    .set_security_groups(Some(n.security_groups.clone()))
                    .assign_public_ip(if n.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()
                    .map(|a| {
                        NetworkConfiguration::builder()
                            .awsvpc_configuration(a)
                            .build()
                    })
                    .map_err(|e| AwsError {
                        operation: "ecs:UpdateService",
                        code: None,
                        message: format!("invalid network configuration: {e}"),
                    })
            })
            .transpose()
    }

    fn grace(&self) -> Option<i32> {
        self.load_balancer
            .as_ref()
            .map(|_| self.health_check_grace_period)
    }
}

/// The service, or `None` when it does not exist (or was deleted: INACTIVE).
#[tracing::instrument(skip(ecs))]
pub async fn describe(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<Service>, AwsError> {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(aws_err("ecs:DescribeServices"))?;
    Ok(out
        .services()
        .iter()
        .find(|s| s.status() == Some("ACTIVE") || s.status() == Some("DRAINING"))
        .cloned())
}

/// The id of the PRIMARY deployment: the one an UpdateService/CreateService started.
pub fn primary_deployment(s: &Service) -> Option<String> {
    s.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id())
        .map(str::to_string)
}

#[tracing::instrument(skip_all, fields(service = %name))]
pub async fn create(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    spec: &ServiceSpec,
    desired_count: i32,
) -> Result<Service, AwsError> {
    let out = ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(&spec.task_definition)
        .desired_count(desired_count)
        .launch_type(EcsLaunchType::from(spec.launch_type.as_str()))
        .set_load_balancers(spec.load_balancers())
        .set_placement_strategy(Some(spec.placement_strategy()).filter(|p| !p.is_empty()))
        .deployment_configuration(spec.deployment_configuration())
        .set_health_check_grace_period_seconds(spec.grace())
        .set_network_configuration(spec.network_configuration()?)
        .send()
        .await
        .map_err(aws_err("ecs:CreateService"))?;
    out.service().cloned().ok_or_else(|| AwsError {
        operation: "ecs:CreateService",
        code: None,
        message: "the answer holds no service".into(),
    })
}

/// Updates everything deployer manages. `desired_count` is `None` whenever autoscaling owns it.
#[tracing::instrument(skip_all, fields(service = %name, task_definition = %spec.task_definition))]
pub async fn update(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    task_definition_arn: &str,
    spec: &ServiceSpec,
    desired_count: Option<i32>,
) -> Result<Service, AwsError> {
    let out = ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .task_definition(task_definition_arn)
        .set_desired_count(desired_count)
        .set_load_balancers(spec.load_balancers())
        // An empty list clears the strategy on update (on create it must be omitted instead).
        .set_placement_strategy(Some(spec.placement_strategy()))
        .deployment_configuration(spec.deployment_configuration())
        .set_health_check_grace_period_seconds(spec.grace())
        .set_network_configuration(spec.network_configuration()?)
        .send()
        .await
        .map_err(aws_err("ecs:UpdateService"))?;
    out.service().cloned().ok_or_else(|| AwsError {
        operation: "ecs:UpdateService",
        code: None,
        message: "the answer holds no service".into(),
    })
}

/// The service and the revision its PRIMARY deployment rolls out (what new tasks run; the
/// service's own task definition when no deployment is listed). `None` when the service does
/// not exist.
#[tracing::instrument(skip(ecs))]
pub async fn current_revision(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
) -> Result<Option<(Service, aws_sdk_ecs::types::TaskDefinition)>, AwsError> {
    let Some(service) = describe(ecs, cluster, name).await? else {
        return Ok(None);
    };
    let arn = service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.task_definition())
        .or(service.task_definition())
        .unwrap_or_default()
        .to_string();
    let td = super::taskdef::describe(ecs, &arn)
        .await?
        .ok_or_else(|| AwsError {
            operation: "ecs:DescribeTaskDefinition",
            code: None,
            message: format!("service {name} runs {arn}, which ECS does not describe"),
        })?;
    Ok(Some((service, td)))
}
