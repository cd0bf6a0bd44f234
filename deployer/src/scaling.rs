//! Service autoscaling: the scalable target, a scale-out and a scale-in step policy, and the two
//! CloudWatch alarms on the service's average CPU that trigger them. Normalised like the task
//! definition, and each piece is written only when it differs.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, PolicyType, ScalableDimension, ServiceNamespace,
    StepAdjustment, StepScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, Statistic};
use serde::Serialize;

use crate::aws::{AwsError, aws_err};
use crate::config::Config;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScalingSpec {
    pub target: Option<TargetSpec>,
    pub policies: BTreeMap<String, PolicySpec>,
    pub alarms: BTreeMap<String, AlarmSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSpec {
    pub min: i32,
    pub max: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySpec {
    pub adjustment_type: String,
    pub metric_aggregation: String,
    pub cooldown: i32,
    /// `lower..upper => adjustment`, bounds relative to the alarm threshold.
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSpec {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub adjustment: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSpec {
    pub namespace: String,
    pub metric: String,
    pub statistic: String,
    pub dimensions: BTreeMap<String, String>,
    pub period: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub comparison: String,
    pub threshold: f64,
    /// Names of the scaling policies the alarm triggers (ARNs differ per account; names do not).
    pub actions: Vec<String>,
}

/// Alarms look at one-minute averages.
const PERIOD: i32 = 60;

pub struct Names {
    pub resource_id: String,
    pub scale_out_policy: String,
    pub scale_in_policy: String,
    pub high_alarm: String,
    pub low_alarm: String,
}

impl Names {
    pub fn of(config: &Config) -> Self {
        let (c, s) = (&config.cluster, &config.service.name);
        Self {
            resource_id: format!("service/{c}/{s}"),
            scale_out_policy: format!("{s}-scale-out"),
            scale_in_policy: format!("{s}-scale-in"),
            high_alarm: format!("{c}-{s}-cpu-high"),
            low_alarm: format!("{c}-{s}-cpu-low"),
        }
    }
}

fn minutes(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs() / 60).unwrap_or(i32::MAX)
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl ScalingSpec {
    pub fn desired(config: &Config) -> Self {
        let Some(a) = &config.autoscaling else {
            return Self::default();
        };
        let n = Names::of(config);
        let dimensions = BTreeMap::from([
            ("ClusterName".to_string(), config.cluster.clone()),
            ("ServiceName".to_string(), config.service.name.clone()),
        ]);
        let alarm = |comparison: &str, threshold: f64, mins: i32, policy: &str| AlarmSpec {
            namespace: "AWS/ECS".into(),
            metric: "CPUUtilization".into(),
            statistic: "Average".into(),
            dimensions: dimensions.clone(),
            period: PERIOD,
            evaluation_periods: mins,
            datapoints_to_alarm: mins,
            comparison: comparison.into(),
            threshold,
            actions: vec![policy.to_string()],
        };
        let policy = |cooldown: std::time::Duration, step: StepSpec| PolicySpec {
            adjustment_type: "ChangeInCapacity".into(),
            metric_aggregation: "Average".into(),
            cooldown: i32::try_from(cooldown.as_secs()).unwrap_or(i32::MAX),
            steps: vec![step],
        };
        Self {
            target: Some(TargetSpec {
                min: int(a.min),
                max: int(a.max),
            }),
            policies: BTreeMap::from([
                (
                    n.scale_out_policy.clone(),
                    policy(
                        a.scale_out.cooldown,
                        StepSpec {
                            lower: Some(0.0),
                            upper: None,
                            adjustment: int(a.scale_out.add),
                        },
                    ),
                ),
                (
                    n.scale_in_policy.clone(),
                    policy(
                        a.scale_in.cooldown,
                        StepSpec {
                            lower: None,
                            upper: Some(0.0),
                            adjustment: -int(a.scale_in.remove),
                        },
                    ),
                ),
            ]),
            alarms: BTreeMap::from([
                (
                    n.high_alarm.clone(),
                    alarm(
                        "GreaterThanOrEqualToThreshold",
                        a.scale_out.cpu_at_or_above,
                        minutes(a.scale_out.sustained),
                        &n.scale_out_policy,
                    ),
                ),
                (
                    n.low_alarm.clone(),
                    alarm(
                        "LessThanThreshold",
                        a.scale_in.cpu_below,
                        minutes(a.scale_in.sustained),
                        &n.scale_in_policy,
                    ),
                ),
            ]),
        }
    }
}

/// What is live, plus the policy ARNs alarms need.
pub struct Live {
    pub spec: ScalingSpec,
    pub policy_arns: BTreeMap<String, String>,
    /// Alarm name -> state (OK, ALARM, INSUFFICIENT_DATA), for `status`.
    pub alarm_states: BTreeMap<String, String>,
}

#[tracing::instrument(skip_all)]
pub async fn live(
    scaling: &aws_sdk_applicationautoscaling::Client,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    config: &Config,
) -> Result<Live, AwsError> {
    let n = Names::of(config);
    let targets = scaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&n.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(aws_err("application-autoscaling:DescribeScalableTargets"))?;
    let target = targets.scalable_targets().first().map(|t| TargetSpec {
        min: t.min_capacity(),
        max: t.max_capacity(),
    });
    let policies = scaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&n.resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(aws_err("application-autoscaling:DescribeScalingPolicies"))?;
    let mut policy_arns = BTreeMap::new();
    let mut live_policies = BTreeMap::new();
    for p in policies.scaling_policies() {
        policy_arns.insert(p.policy_name().to_string(), p.policy_arn().to_string());
        let Some(c) = p.step_scaling_policy_configuration() else {
            continue;
        };
        live_policies.insert(
            p.policy_name().to_string(),
            PolicySpec {
                adjustment_type: c
                    .adjustment_type()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default(),
                metric_aggregation: c
                    .metric_aggregation_type()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_else(|| "Average".into()),
                cooldown: c.cooldown().unwrap_or(0),
                steps: c
                    .step_adjustments()
                    .iter()
                    .map(|s| StepSpec {
                        lower: s.metric_interval_lower_bound(),
                        upper: s.metric_interval_upper_bound(),
                        adjustment: s.scaling_adjustment(),
                    })
                    .collect(),
            },
        );
    }
    let arn_to_name: BTreeMap<&str, &str> = policy_arns
        .iter()
        .map(|(k, v)| (v.as_str(), k.as_str()))
        .collect();
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_names(&n.high_alarm)
        .alarm_names(&n.low_alarm)
        .send()
        .await
        .map_err(aws_err("cloudwatch:DescribeAlarms"))?;
    let mut live_alarms = BTreeMap::new();
    let mut alarm_states = BTreeMap::new();
    for a in alarms.metric_alarms() {
        let name = a.alarm_name().unwrap_or_default().to_string();
        alarm_states.insert(
            name.clone(),
            a.state_value()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        );
        let evaluation_periods = a.evaluation_periods().unwrap_or(1);
        live_alarms.insert(
            name,
            AlarmSpec {
                namespace: a.namespace().unwrap_or_default().to_string(),
                metric: a.metric_name().unwrap_or_default().to_string(),
                statistic: a
                    .statistic()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                dimensions: a
                    .dimensions()
                    .iter()
                    .map(|d| {
                        (
                            d.name().unwrap_or_default().to_string(),
                            d.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                period: a.period().unwrap_or(0),
                evaluation_periods,
                datapoints_to_alarm: a.datapoints_to_alarm().unwrap_or(evaluation_periods),
                comparison: a
                    .comparison_operator()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                threshold: a.threshold().unwrap_or(0.0),
                actions: a
                    .alarm_actions()
                    .iter()
                    .map(|arn| {
                        arn_to_name
                            .get(arn.as_str())
                            .map_or(arn.clone(), |n| n.to_string())
                    })
                    .collect(),
            },
        );
    }
    Ok(Live {
        spec: ScalingSpec {
            target,
            policies: live_policies,
            alarms: live_alarms,
        },
        policy_arns,
        alarm_states,
    })
}

/// Names of what `apply` wrote ("scalable target", policy and alarm names).
#[tracing::instrument(skip_all)]
pub async fn apply(
    scaling: &aws_sdk_applicationautoscaling::Client,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    config: &Config,
    desired: &ScalingSpec,
    live: &Live,
) -> Result<Vec<String>, AwsError> {
    let n = Names::of(config);
    let mut changed = Vec::new();
    if let Some(t) = &desired.target
        && live.spec.target.as_ref() != Some(t)
    {
        scaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&n.resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(t.min)
            .max_capacity(t.max)
            .send()
            .await
            .map_err(aws_err("application-autoscaling:RegisterScalableTarget"))?;
        changed.push("scalable target".to_string());
    }
    let mut arns = live.policy_arns.clone();
    for (name, p) in &desired.policies {
        if live.spec.policies.get(name) == Some(p) && arns.contains_key(name) {
            continue;
        }
        let steps = p
            .steps
            .iter()
            .map(|s| {
                StepAdjustment::builder()
                    .set_metric_interval_lower_bound(s.lower)
                    .set_metric_interval_upper_bound(s.upper)
                    .scaling_adjustment(s.adjustment)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError {
                operation: "application-autoscaling:PutScalingPolicy",
                code: None,
                message: format!("invalid step: {e}"),
            })?;
        let out = scaling
            .put_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&n.resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::StepScaling)
            .step_scaling_policy_configuration(
                StepScalingPolicyConfiguration::builder()
                    .adjustment_type(AdjustmentType::from(p.adjustment_type.as_str()))
                    .metric_aggregation_type(MetricAggregationType::from(
                        p.metric_aggregation.as_str(),
                    ))
                    .cooldown(p.cooldown)
                    .set_step_adjustments(Some(steps))
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("application-autoscaling:PutScalingPolicy"))?;
        arns.insert(name.clone(), out.policy_arn().to_string());
        changed.push(format!("policy {name}"));
    }
    for (name, a) in &desired.alarms {
        if live.spec.alarms.get(name) == Some(a) {
            continue;
        }
        let mut put = cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(format!(
                "deployer: {} {} -> {}",
                a.comparison,
                a.threshold,
                a.actions.join(", ")
            ))
            .namespace(&a.namespace)
            .metric_name(&a.metric)
            .statistic(Statistic::from(a.statistic.as_str()))
            .unit(StandardUnit::Percent)
            .period(a.period)
            .evaluation_periods(a.evaluation_periods)
            .datapoints_to_alarm(a.datapoints_to_alarm)
            .threshold(a.threshold)
            .comparison_operator(ComparisonOperator::from(a.comparison.as_str()));
        for (k, v) in &a.dimensions {
            put = put.dimensions(Dimension::builder().name(k).value(v).build());
        }
        for policy in &a.actions {
            put = put.alarm_actions(arns.get(policy).cloned().unwrap_or_else(|| policy.clone()));
        }
        put.send()
            .await
            .map_err(aws_err("cloudwatch:PutMetricAlarm"))?;
        changed.push(format!("alarm {name}"));
    }
    Ok(changed)
}
