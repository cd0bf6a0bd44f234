//! Rollout states moto cannot produce, scripted with aws-smithy-mocks: a circuit-breaker
//! rollback, tasks that never become healthy (timeout), and throttling.

mod common;

use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client as Logs;
use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
use aws_sdk_ecs::Client as Ecs;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{
    Container, Deployment, DeploymentRolloutState, Service, ServiceEvent, Task,
};
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthReasonEnum,
    TargetHealthStateEnum,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use deployer::aws::Aws;
use deployer::config::Config;
use deployer::ecs::rollout::Outcome;
use deployer::ecs::rollout::{ReleaseError, failure, follow};
use deployer::error::exit;
use deployer::progress::{OutputFormat, Progress};

const NEW: &str = "ecs-svc/1111";
const OLD: &str = "ecs-svc/0000";

fn config() -> Config {
    common::config(&[
        ("DEPLOYER__DEPLOYMENT__POLL_INTERVAL", "20ms"),
        ("DEPLOYER__DEPLOYMENT__TIMEOUT", "300ms"),
    ])
}

fn deployment(
    id: &str,
    status: &str,
    state: DeploymentRolloutState,
    running: i32,
    failed: i32,
    reason: &str,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .rollout_state(state)
        .rollout_state_reason(reason)
        .task_definition(format!(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/data-processor-task:{}",
            if id == NEW { 2 } else { 1 }
        ))
        .desired_count(4)
        .running_count(running)
        .pending_count(4 - running)
        .failed_tasks(failed)
        .build()
}

fn services(deployments: Vec<Deployment>, events: &[&str]) -> DescribeServicesOutput {
    let mut s = Service::builder()
        .service_name("data-processor-service")
        .service_arn(
            "arn:aws:ecs:eu-west-1:123456789012:service/prod-data-processor/data-processor-service",
        )
        .status("ACTIVE")
        .set_deployments(Some(deployments));
    for e in events {
        s = s.events(ServiceEvent::builder().message(*e).build());
    }
    DescribeServicesOutput::builder()
        .services(s.build())
        .build()
}

/// Clients nobody calls in these tests: any call fails against a closed port.
fn unused_sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build()
}

fn aws(ecs: Ecs, elb: Elb) -> Aws {
    let sdk = unused_sdk();
    Aws {
        ecr: aws_sdk_ecr::Client::new(&sdk),
        ecs,
        scaling: aws_sdk_applicationautoscaling::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        elb,
        logs: task_logs(),
    }
}

/// CloudWatch Logs answering every GetLogEvents with the lines a failing task writes, and only
/// for the stream of task abc123 under the checked-in config's awslogs options.
fn task_logs() -> Logs {
    let lines = mock!(Logs::get_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some("/ecs/data-processor")
                && r.log_stream_name() == Some("data-processor/data-processor/abc123")
        })
        .then_output(|| {
            GetLogEventsOutput::builder()
                .events(
                    OutputLogEvent::builder()
                        .timestamp(1)
                        .message("starting data-processor")
                        .build(),
                )
                .events(
                    OutputLogEvent::builder()
                        .timestamp(2)
                        .message("error: DATABASE_URL is not set\n")
                        .build(),
                )
                .build()
        });
    let missing = mock!(Logs::get_log_events).then_output(|| GetLogEventsOutput::builder().build());
    mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        &[&lines, &missing]
    )
}

/// DescribeTargetHealth with one unhealthy target.
fn unhealthy(
    id: &str,
    port: i32,
    reason: TargetHealthReasonEnum,
    description: &str,
) -> DescribeTargetHealthOutput {
    DescribeTargetHealthOutput::builder()
        .target_health_descriptions(
            TargetHealthDescription::builder()
                .target(TargetDescription::builder().id(id).port(port).build())
                .target_health(
                    TargetHealth::builder()
                        .state(TargetHealthStateEnum::Unhealthy)
                        .reason(reason)
                        .description(description)
                        .build(),
                )
                .build(),
        )
        .build()
}

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

/// An ECS client that answers from `rule` in order and retries throttling `max_attempts` times,
/// with a backoff short enough for a test.
fn retrying_ecs(rule: &Rule, max_attempts: u32) -> Ecs {
    mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[rule], |b| {
        b.retry_config(
            deployer::aws::retry_config(max_attempts)
                .with_initial_backoff(Duration::from_millis(1)),
        )
    })
}

/// An ELB client that answers every DescribeTargetHealth with `health`.
fn elb_reporting(health: DescribeTargetHealthOutput) -> Elb {
    let rule = mock!(Elb::describe_target_health).then_output(move || health.clone());
    mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, &[&rule])
}

fn no_elb() -> Elb {
    mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, &[])
}

#[tokio::test]
async fn circuit_breaker_rollback_is_a_failure_with_reasons() {
    let config = config();
    let in_progress = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![
                deployment(NEW, "PRIMARY", DeploymentRolloutState::InProgress, 0, 1, ""),
                deployment(OLD, "ACTIVE", DeploymentRolloutState::Completed, 4, 0, ""),
            ],
            &[],
        )
    });
    // ECS marks ours FAILED and starts a new PRIMARY deployment back on the old revision.
    let rolled_back_state = || {
        services(
            vec![
                deployment(
                    "ecs-svc/2222",
                    "PRIMARY",
                    DeploymentRolloutState::InProgress,
                    4,
                    0,
                    "",
                ),
                deployment(
                    NEW,
                    "ACTIVE",
                    DeploymentRolloutState::Failed,
                    0,
                    2,
                    "ECS deployment circuit breaker: tasks failed to start.",
                ),
            ],
            &[
                "(service data-processor-service) was unable to place a task because no container instance met all of its requirements.",
                "(service data-processor-service) rolling back to deployment ecs-svc/0000.",
            ],
        )
    };
    let rolled_back = mock!(Ecs::describe_services).then_output(rolled_back_state);
    let events = mock!(Ecs::describe_services).then_output(rolled_back_state);
    let list = mock!(Ecs::list_tasks).then_output(|| {
        ListTasksOutput::builder()
            .task_arns("arn:aws:ecs:eu-west-1:123456789012:task/prod-data-processor/abc123")
            .build()
    });
    let describe = mock!(Ecs::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn("arn:aws:ecs:eu-west-1:123456789012:task/prod-data-processor/abc123")
                    .task_definition_arn(
                        "arn:aws:ecs:eu-west-1:123456789012:task-definition/data-processor-task:2",
                    )
                    .started_by(NEW)
                    .stopped_reason("Essential container in task exited")
                    .containers(
                        Container::builder()
                            .name("data-processor")
                            .exit_code(78)
                            .reason("config: DATABASE_URL is not set")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        &[&in_progress, &rolled_back, &list, &describe, &events]
    );
    let elb = elb_reporting(unhealthy(
        "i-0abc",
        32768,
        TargetHealthReasonEnum::FailedHealthChecks,
        "Health checks failed with these codes: [503]",
    ));
    let aws = aws(ecs, elb);
    let progress = Progress::new(OutputFormat::Json);

    let outcome = follow(&aws, &config, NEW, &progress).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::RolledBack {
            reason: "ECS deployment circuit breaker: tasks failed to start.".into()
        }
    );
    let ReleaseError::Failed(f) = failure(&aws, &config, NEW, outcome).await else {
        panic!("expected a rollout failure");
    };
    assert_eq!(f.error.exit_code(), exit::ROLLED_BACK);
    let text = &f.text;
    assert!(text.contains("failed and was rolled back"), "{text}");
    assert!(
        text.contains("Essential container in task exited"),
        "{text}"
    );
    assert!(
        text.contains("data-processor: exit code 78 (config: DATABASE_URL is not set)"),
        "{text}"
    );
    assert!(
        text.contains("i-0abc:32768 unhealthy: Target.FailedHealthChecks"),
        "{text}"
    );
    assert!(text.contains("unable to place a task"), "{text}");
    assert!(
        text.contains("      | starting data-processor\n      | error: DATABASE_URL is not set\n"),
        "the stopped task's last log lines:\n{text}"
    );
    assert_eq!(
        f.report.stopped_tasks[0].last_log_lines,
        ["starting data-processor", "error: DATABASE_URL is not set"]
    );
    assert!(text.lines().count() < 30, "one screen:\n{text}");
}

#[tokio::test]
async fn tasks_that_never_become_healthy_time_out() {
    let config = config();
    let stuck = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![
                deployment(NEW, "PRIMARY", DeploymentRolloutState::InProgress, 0, 0, ""),
                deployment(OLD, "ACTIVE", DeploymentRolloutState::Completed, 4, 0, ""),
            ],
            &["(service data-processor-service) has started 4 tasks."],
        )
    });
    let list = mock!(Ecs::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&stuck, &list]);
    let elb = elb_reporting(unhealthy(
        "i-0def",
        32769,
        TargetHealthReasonEnum::Timeout,
        "Request timed out",
    ));
    let aws = aws(ecs, elb);
    let progress = Progress::new(OutputFormat::Json);

    let started = std::time::Instant::now();
    let outcome = follow(&aws, &config, NEW, &progress).await.unwrap();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up near the 300ms timeout"
    );
    assert!(stuck.num_calls() >= 2, "polled more than once");
    let ReleaseError::Failed(f) = failure(&aws, &config, NEW, outcome).await else {
        panic!("expected a rollout failure");
    };
    assert_eq!(f.error.exit_code(), exit::TIMED_OUT);
    assert!(f.text.contains("did not finish within 300ms"), "{}", f.text);
    assert!(f.text.contains("has started 4 tasks"), "{}", f.text);
    assert!(
        f.text
            .contains("i-0def:32769 unhealthy: Target.Timeout Request timed out"),
        "{}",
        f.text
    );
}

#[tokio::test]
async fn throttling_is_retried() {
    let config = config();
    let throttled = mock!(Ecs::describe_services)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| {
            services(
                vec![deployment(
                    NEW,
                    "PRIMARY",
                    DeploymentRolloutState::Completed,
                    4,
                    0,
                    "",
                )],
                &[],
            )
        })
        .build();
    let ecs = retrying_ecs(&throttled, 5);
    let aws = aws(ecs, no_elb());
    let outcome = follow(&aws, &config, NEW, &Progress::new(OutputFormat::Json))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(
        throttled.num_calls(),
        3,
        "two throttled attempts, then success"
    );
}

#[tokio::test]
async fn throttling_beyond_the_retries_is_an_aws_error() {
    let config = config();
    let throttled = mock!(Ecs::describe_services)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(3)
        .build();
    let ecs = retrying_ecs(&throttled, 3);
    let aws = aws(ecs, no_elb());
    let err = follow(&aws, &config, NEW, &Progress::new(OutputFormat::Json))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::AWS);
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
}

#[tokio::test]
async fn a_failed_deployment_without_rollback_is_rollout_failed() {
    let mut config = config();
    config.deployment.rollback = false;
    let failed = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![deployment(
                NEW,
                "PRIMARY",
                DeploymentRolloutState::Failed,
                0,
                3,
                "ECS deployment circuit breaker: tasks failed to start.",
            )],
            &["(service data-processor-service) deployment ecs-svc/1111 deployment failed: tasks failed to start."],
        )
    });
    let list = mock!(Ecs::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&failed, &list]);
    let elb = elb_reporting(DescribeTargetHealthOutput::builder().build());
    let aws = aws(ecs, elb);
    let outcome = follow(&aws, &config, NEW, &Progress::new(OutputFormat::Json))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    let ReleaseError::Failed(f) = failure(&aws, &config, NEW, outcome).await else {
        panic!("expected a rollout failure");
    };
    assert_eq!(f.error.exit_code(), exit::ROLLOUT_FAILED);
    assert!(
        f.text.contains("deployment failed: tasks failed to start"),
        "{}",
        f.text
    );
}

#[tokio::test]
async fn a_vanished_deployment_is_looked_up_in_service_deployments() {
    use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
    use aws_sdk_ecs::types::{ServiceDeploymentBrief, ServiceDeploymentStatus};
    let config = config();
    // Ours is gone from DescribeServices; only the deployment ECS rolled back to is left.
    let gone = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![deployment(
                OLD,
                "PRIMARY",
                DeploymentRolloutState::Completed,
                4,
                0,
                "",
            )],
            &[],
        )
    });
    let history = mock!(Ecs::list_service_deployments).then_output(|| {
        ListServiceDeploymentsOutput::builder()
            .service_deployments(
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(
                        "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod-data-processor/data-processor-service/1111",
                    )
                    .status(ServiceDeploymentStatus::RollbackSuccessful)
                    .status_reason("Service deployment rolled back because the circuit breaker threshold was exceeded.")
                    .build(),
            )
            .build()
    });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &[&gone, &history]);
    let aws = aws(ecs, no_elb());
    let outcome = follow(
        &aws,
        &config,
        "ecs-svc/1111",
        &Progress::new(OutputFormat::Json),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::RolledBack {
            reason: "ROLLBACK_SUCCESSFUL: Service deployment rolled back because the circuit breaker threshold was exceeded."
                .into()
        }
    );
}

const OTHER: &str = "ecs-svc/3333";

/// A deployment on `data-processor-task:REVISION` with all four tasks pending.
fn on_revision(id: &str, status: &str, state: DeploymentRolloutState, revision: u32) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .rollout_state(state)
        .task_definition(format!(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/data-processor-task:{revision}"
        ))
        .desired_count(4)
        .pending_count(4)
        .build()
}

/// What ours replaced: ours PRIMARY and rolling out, the old one ACTIVE.
fn ours_rolling_out() -> DescribeServicesOutput {
    services(
        vec![
            deployment(NEW, "PRIMARY", DeploymentRolloutState::InProgress, 1, 0, ""),
            deployment(OLD, "ACTIVE", DeploymentRolloutState::Completed, 4, 0, ""),
        ],
        &[],
    )
}

/// ListServiceDeployments as an older region or an emulator answers it.
fn no_service_deployments() -> Rule {
    mock!(Ecs::list_service_deployments)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"UnknownOperationException","message":"not here"}"#.into()),
        )
        .times(1)
        .build()
}

#[tokio::test]
async fn a_deployment_pushed_aside_by_another_release_is_superseded_not_rolled_back() {
    let config = config();
    let first = mock!(Ecs::describe_services).then_output(ours_rolling_out);
    // Someone else's UpdateService: a new PRIMARY on revision 3; ours is ACTIVE and was never
    // marked FAILED.
    let taken_over = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![
                on_revision(OTHER, "PRIMARY", DeploymentRolloutState::InProgress, 3),
                deployment(NEW, "ACTIVE", DeploymentRolloutState::InProgress, 1, 0, ""),
                deployment(OLD, "ACTIVE", DeploymentRolloutState::Completed, 4, 0, ""),
            ],
            &[],
        )
    });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::Sequential, &[&first, &taken_over]);
    let aws = aws(ecs, no_elb());

    let outcome = follow(&aws, &config, NEW, &Progress::new(OutputFormat::Json))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Superseded {
            by: OTHER.into(),
            task_definition: "data-processor-task:3".into()
        }
    );
    assert_eq!(taken_over.num_calls(), 1, "decided on the first look at it");
    let ReleaseError::Other(err) = failure(&aws, &config, NEW, outcome).await else {
        panic!("a superseded deployment has no failure report");
    };
    assert_eq!(err.exit_code(), exit::SUPERSEDED);
    let text = err.to_string();
    assert!(
        text.starts_with(
            "deployment ecs-svc/1111 was superseded by deployment ecs-svc/3333 (data-processor-task:3)"
        ),
        "{text}"
    );
    assert!(!text.contains("rolled back"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test]
async fn a_vanished_deployment_is_superseded_by_a_new_revision_and_rolled_back_by_the_old_one() {
    let config = config();
    let run = |after: DescribeServicesOutput| {
        let config = config.clone();
        async move {
            let first = mock!(Ecs::describe_services).then_output(ours_rolling_out);
            let then = mock!(Ecs::describe_services).then_output(move || after.clone());
            let history = no_service_deployments();
            let ecs = mock_client!(
                aws_sdk_ecs,
                RuleMode::Sequential,
                &[&first, &then, &history]
            );
            follow(
                &aws(ecs, no_elb()),
                &config,
                NEW,
                &Progress::new(OutputFormat::Json),
            )
            .await
            .unwrap()
        }
    };

    // Ours gone, the service on revision 3, which neither ours nor what ours replaced runs.
    let superseded = run(services(
        vec![on_revision(
            OTHER,
            "PRIMARY",
            DeploymentRolloutState::InProgress,
            3,
        )],
        &[],
    ))
    .await;
    assert_eq!(
        superseded,
        Outcome::Superseded {
            by: OTHER.into(),
            task_definition: "data-processor-task:3".into()
        }
    );

    // Ours gone, the service back on revision 1, which ours replaced: the circuit breaker.
    let rolled_back = run(services(
        vec![on_revision(
            "ecs-svc/2222",
            "PRIMARY",
            DeploymentRolloutState::InProgress,
            1,
        )],
        &[],
    ))
    .await;
    assert_eq!(
        rolled_back,
        Outcome::RolledBack {
            reason: "deployment ecs-svc/1111 is gone; the service is back on data-processor-task:1 (deployment ecs-svc/2222)".into()
        }
    );
}

#[tokio::test]
async fn a_service_deployment_stopped_for_a_newer_one_is_superseded() {
    use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
    use aws_sdk_ecs::types::{ServiceDeploymentBrief, ServiceDeploymentStatus};
    let config = config();
    let first = mock!(Ecs::describe_services).then_output(ours_rolling_out);
    let gone = mock!(Ecs::describe_services).then_output(|| {
        services(
            vec![on_revision(
                OTHER,
                "PRIMARY",
                DeploymentRolloutState::InProgress,
                3,
            )],
            &[],
        )
    });
    let history = mock!(Ecs::list_service_deployments).then_output(|| {
        ListServiceDeploymentsOutput::builder()
            .service_deployments(
                ServiceDeploymentBrief::builder()
                    .service_deployment_arn(
                        "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod-data-processor/data-processor-service/1111",
                    )
                    .status(ServiceDeploymentStatus::Stopped)
                    .build(),
            )
            .build()
    });
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        &[&first, &gone, &history]
    );
    let outcome = follow(
        &aws(ecs, no_elb()),
        &config,
        NEW,
        &Progress::new(OutputFormat::Json),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::Superseded {
            by: OTHER.into(),
            task_definition: "data-processor-task:3".into()
        }
    );
}
