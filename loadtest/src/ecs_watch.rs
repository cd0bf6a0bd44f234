//! `--watch-ecs`: while the load runs, polls the ECS service (task counts, deployments) and
//! its CloudWatch alarms, prints a line per poll and keeps the samples for the reports, so a
//! user sees their scale-out policy act on the load they generate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::error::DisplayErrorContext as CwErrorContext;
use aws_sdk_ecs::error::DisplayErrorContext as EcsErrorContext;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::cli::EcsTarget;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("ECS DescribeServices on {target}: {detail}")]
    Ecs { target: String, detail: String },
    #[error("ECS service {service} not found in cluster {cluster} ({reason})")]
    NotFound {
        cluster: String,
        service: String,
        reason: String,
    },
    #[error("CloudWatch DescribeAlarms (prefix {prefix:?}): {detail}")]
    CloudWatch { prefix: String, detail: String },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EcsSample {
    /// Seconds since the load test started.
    pub at_s: f64,
    pub desired: Option<i32>,
    pub running: Option<i32>,
    pub pending: Option<i32>,
    pub deployments: Option<usize>,
    /// Rollout state of the primary deployment, when ECS reports one.
    pub rollout: Option<String>,
    /// Alarm name -> OK | ALARM | INSUFFICIENT_DATA.
    pub alarms: BTreeMap<String, String>,
    /// Set when this poll failed (the run goes on).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EcsReport {
    pub cluster: String,
    pub service: String,
    pub alarm_prefix: String,
    pub samples: Vec<EcsSample>,
}

pub struct Watcher {
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    target: EcsTarget,
    alarm_prefix: String,
}

struct ServiceState {
    desired: i32,
    running: i32,
    pending: i32,
    deployments: usize,
    rollout: Option<String>,
}

impl Watcher {
    /// Clients from the standard AWS chain (env, profile, IMDS/ECS role; AWS_ENDPOINT_URL).
    pub async fn connect(target: EcsTarget, alarm_prefix: String) -> Self {
        let config = aws_config::load_from_env().await;
        Self {
            ecs: aws_sdk_ecs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            target,
            alarm_prefix,
        }
    }

    /// One poll; an error here at start means the flags point at nothing.
    pub async fn sample(&self, at: Duration) -> Result<EcsSample, WatchError> {
        let service = self.describe_service().await?;
        let alarms = self.describe_alarms().await?;
        Ok(EcsSample {
            at_s: round_tenths(at),
            desired: Some(service.desired),
            running: Some(service.running),
            pending: Some(service.pending),
            deployments: Some(service.deployments),
            rollout: service.rollout,
            alarms,
            error: None,
        })
    }

    /// Polls every `every` until `stop` fires (and once more then), printing each sample.
    /// `first` is the sample taken before the load started.
    pub async fn run(
        self,
        first: EcsSample,
        started: Instant,
        every: Duration,
        mut stop: oneshot::Receiver<()>,
    ) -> EcsReport {
        let mut samples = vec![first];
        let mut ticker = tokio::time::interval(every);
        // The first tick is immediate; `first` was just taken.
        ticker.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = &mut stop => true,
                _ = ticker.tick() => false,
            };
            let at = started.elapsed();
            let sample = self.sample(at).await.unwrap_or_else(|e| EcsSample {
                at_s: round_tenths(at),
                desired: None,
                running: None,
                pending: None,
                deployments: None,
                rollout: None,
                alarms: BTreeMap::new(),
                error: Some(e.to_string()),
            });
            println!("{}", self.line(&sample));
            samples.push(sample);
            if stopping {
                break;
            }
        }
        EcsReport {
            cluster: self.target.cluster,
            service: self.target.service,
            alarm_prefix: self.alarm_prefix,
            samples,
        }
    }

    pub fn line(&self, s: &EcsSample) -> String {
        let head = format!("[{:>5.0}s] ecs {}:", s.at_s, self.target);
        if let Some(error) = &s.error {
            return format!("{head} poll failed: {error}");
        }
        let count = |v: Option<i32>| v.map_or("?".to_string(), |n| n.to_string());
        let rollout = s
            .rollout
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let alarms = if s.alarms.is_empty() {
            format!("none with prefix {:?}", self.alarm_prefix)
        } else {
            s.alarms
                .iter()
                .map(|(name, state)| format!("{name}={state}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{head} desired {} running {} pending {} deployments {}{rollout} | alarms: {alarms}",
            count(s.desired),
            count(s.running),
            count(s.pending),
            s.deployments.map_or("?".to_string(), |n| n.to_string()),
        )
    }

    #[tracing::instrument(skip(self), fields(target = %self.target))]
    async fn describe_service(&self) -> Result<ServiceState, WatchError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(&self.target.cluster)
            .services(&self.target.service)
            .send()
            .await
            .map_err(|e| WatchError::Ecs {
                target: self.target.to_string(),
                detail: EcsErrorContext(&e).to_string(),
            })?;
        let Some(service) = out.services().first() else {
            let reason = out
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("no such service")
                .to_string();
            return Err(WatchError::NotFound {
                cluster: self.target.cluster.clone(),
                service: self.target.service.clone(),
                reason,
            });
        };
        let primary = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        Ok(ServiceState {
            desired: service.desired_count(),
            running: service.running_count(),
            pending: service.pending_count(),
            deployments: service.deployments().len(),
            rollout: primary
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str().to_string()),
        })
    }

    #[tracing::instrument(skip(self), fields(prefix = %self.alarm_prefix))]
    async fn describe_alarms(&self) -> Result<BTreeMap<String, String>, WatchError> {
        let pages = self
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(&self.alarm_prefix)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut alarms = BTreeMap::new();
        for page in pages {
            let page = page.map_err(|e| WatchError::CloudWatch {
                prefix: self.alarm_prefix.clone(),
                detail: CwErrorContext(&e).to_string(),
            })?;
            for alarm in page.metric_alarms() {
                let name = alarm.alarm_name().unwrap_or_default().to_string();
                let state = alarm
                    .state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "UNKNOWN".into());
                alarms.insert(name, state);
            }
        }
        Ok(alarms)
    }
}

fn round_tenths(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}
