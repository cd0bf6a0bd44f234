//! One-off tasks (`deployer run`, the release's migration) where moto cannot go: its tasks
//! always end with exit code 0 and never fail to start. ECS's RunTask and DescribeTasks are scripted
//! with aws-smithy-mocks; every other call (the service, task definitions, tags, CloudWatch
//! Logs) passes through to a real moto, so what "nothing updated" means is read back from it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::Client as Ecs;
use aws_sdk_ecs::operation::describe_tasks::{DescribeTasksError, DescribeTasksOutput};
use aws_sdk_ecs::operation::run_task::{RunTaskInput, RunTaskOutput};
use aws_sdk_ecs::types::error::AccessDeniedException;
use aws_sdk_ecs::types::{Container, DesiredStatus, Failure, Task, TaskStopCode};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};
use common::{Stage, image, millis_ago, stream_of};
use deployer::aws::Aws;
use deployer::ecs::rollout::ReleaseError;
use deployer::error::{DeployError, exit};
use deployer::image::{OciPublisher, PublishedImage};
use deployer::progress::{OutputFormat, Progress};
use deployer::release::{ImageSource, release};

const TASK_ID: &str = "0123456789abcdef0123456789abcdef";

fn task_arn() -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task/prod-data-processor/{TASK_ID}")
}

/// A stage whose service runs revision 1 (released through the binary, no migration).
///
/// With passthrough, aws-smithy-mocks still sends a scripted call to moto and only replaces the
/// answer afterwards: RunTask must succeed there too (a 500 would be retried, and a retry of a
/// computed answer panics), so moto gets container instances to place the task on.
async fn released() -> Stage {
    let stage = Stage::start().await;
    let out = stage.run(&["release", "--image", &image(1)]);
    assert_eq!(out.status.code(), Some(0), "first release");
    stage.add_container_instances(2).await;
    stage
}

/// moto's clients, with ECS answering `rules` from the script and everything else from moto.
fn aws(stage: &Stage, rules: &[&Rule]) -> Aws {
    let mut interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .allow_passthrough();
    for r in rules {
        interceptor = interceptor.with_rule(r);
    }
    let mut aws = Aws::from_shared(&stage.sdk);
    aws.ecs = Ecs::from_conf(
        aws_sdk_ecs::config::Builder::from(&stage.sdk)
            .interceptor(interceptor)
            .build(),
    );
    aws
}

/// RunTask starting task TASK_ID; the request is kept for the test to look at.
fn run_task(seen: Arc<Mutex<Vec<RunTaskInput>>>) -> Rule {
    mock!(Ecs::run_task).then_compute_output(move |input| {
        seen.lock().unwrap().push(input.clone());
        RunTaskOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn(task_arn())
                    .last_status("PROVISIONING")
                    .build(),
            )
            .build()
    })
}

fn task(status: &str, container: Container) -> DescribeTasksOutput {
    DescribeTasksOutput::builder()
        .tasks(
            Task::builder()
                .task_arn(task_arn())
                .task_definition_arn(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/data-processor-task:2",
                )
                .last_status(status)
                .containers(container)
                .build(),
        )
        .build()
}

/// DescribeTasks of TASK_ID: RUNNING twice, then STOPPED as `stopped` says, from then on.
fn stops_as(stopped: impl Fn() -> DescribeTasksOutput + Send + Sync + 'static) -> Rule {
    let running = || {
        task(
            "RUNNING",
            Container::builder().name("data-processor").build(),
        )
    };
    mock!(Ecs::describe_tasks)
        .match_requests(|r| r.tasks().iter().any(|t| t.ends_with(TASK_ID)))
        .sequence()
        .output(running)
        .times(2)
        .output(stopped)
        .repeatedly()
        .build()
}

fn exits_with(code: i32) -> impl Fn() -> DescribeTasksOutput + Send + Sync + 'static {
    move || {
        let mut out = task(
            "STOPPED",
            Container::builder()
                .name("data-processor")
                .exit_code(code)
                .build(),
        );
        if let Some(t) = out.tasks.as_mut().and_then(|t| t.first_mut()) {
            t.stopped_reason = Some("Essential container in task exited".into());
            t.stop_code = Some(TaskStopCode::EssentialContainerExited);
        }
        out
    }
}

fn config_vars(migrate: bool) -> Vec<(&'static str, &'static str)> {
    vec![
        ("DEPLOYER__DEPLOYMENT__POLL_INTERVAL", "50ms"),
        ("DEPLOYER__DEPLOYMENT__TIMEOUT", "30s"),
        (
            "DEPLOYER__RELEASE__MIGRATE",
            if migrate { "true" } else { "false" },
        ),
    ]
}

/// The task's lines, already in CloudWatch Logs (moto) when it starts.
async fn task_wrote(stage: &Stage, lines: &[&str]) {
    // A little ahead: the follower reads from shortly before RunTask, whenever that is.
    let now = millis_ago(Duration::ZERO) + 1_000;
    let events: Vec<(i64, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (now + i64::try_from(i).unwrap(), *l))
        .collect();
    stage.put_log_lines(&stream_of(TASK_ID), &events).await;
}

#[tokio::test]
async fn run_streams_the_task_lines_and_exits_with_its_exit_code() {
    let stage = released().await;
    task_wrote(&stage, &["checking 12 files", "3 files are broken"]).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let start = run_task(seen.clone());
    let stopped = stops_as(exits_with(3));
    let aws = aws(&stage, &[&start, &stopped]);
    let config = stage.config(&config_vars(false)).await;
    let progress = Progress::new(OutputFormat::Json);

    let mut printed = Vec::new();
    let err = deployer::run::run(
        &aws,
        &config,
        vec!["check".into(), "--all".into()],
        Duration::from_secs(30),
        &progress,
        |l| printed.push(l.message.clone()),
        std::future::pending(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, DeployError::TaskExited { code: 3, .. }),
        "{err}"
    );
    assert_eq!(err.exit_code(), 3, "deployer exits with the task's code");
    assert_eq!(printed, ["checking 12 files", "3 files are broken"]);
    let req = seen.lock().unwrap()[0].clone();
    let current = stage.service().await.task_definition().unwrap().to_string();
    assert!(current.ends_with("data-processor-task:1"), "{current}");
    assert_eq!(req.task_definition(), Some(current.as_str()));
    assert_eq!(req.started_by(), Some("deployer/run"));
    assert_eq!(req.cluster(), Some("prod-data-processor"));
    assert_eq!(
        req.launch_type().map(|l| l.as_str()),
        Some("EC2"),
        "placed like the service"
    );
    let o = &req.overrides().unwrap().container_overrides()[0];
    assert_eq!(o.name(), Some("data-processor"));
    assert_eq!(o.command(), ["check", "--all"]);
}

#[tokio::test]
async fn a_task_that_never_ran_is_one_line_and_its_own_exit_code() {
    let stage = released().await;
    let start = run_task(Arc::default());
    let pull_failed = stops_as(|| {
        let mut out = task(
            "STOPPED",
            Container::builder()
                .name("data-processor")
                .reason("CannotPullContainerError: pull image manifest has been retried 5 time(s): 127.0.0.1:5000/data-processor@sha256:0101: not found")
                .build(),
        );
        if let Some(t) = out.tasks.as_mut().and_then(|t| t.first_mut()) {
            t.stopped_reason = Some(
                "CannotPullContainerError: pull image manifest has been retried 5 time(s)".into(),
            );
            t.stop_code = Some(TaskStopCode::TaskFailedToStart);
        }
        out
    });
    let aws = aws(&stage, &[&start, &pull_failed]);
    let config = stage.config(&config_vars(false)).await;

    let err = run_failing(&aws, &config).await;
    let text = err.to_string();
    assert_eq!(err.exit_code(), exit::TASK_NEVER_RAN, "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("task {TASK_ID} never ran: CannotPullContainerError: pull image manifest has been retried 5 time(s): 127.0.0.1:5000")),
        "{text}"
    );
    assert!(text.contains("stop code TaskFailedToStart"), "{text}");
}

#[tokio::test]
async fn a_task_run_task_refuses_never_ran() {
    let stage = released().await;
    let refused = mock!(Ecs::run_task).then_output(|| {
        RunTaskOutput::builder()
            .failures(
                Failure::builder()
                    .arn("arn:aws:ecs:us-east-1:123456789012:container-instance/prod-data-processor/abc")
                    .reason("RESOURCE:MEMORY")
                    .build(),
            )
            .build()
    });
    let aws = aws(&stage, &[&refused]);
    let config = stage.config(&config_vars(false)).await;

    let err = run_failing(&aws, &config).await;
    assert_eq!(err.exit_code(), exit::TASK_NEVER_RAN, "{err}");
    assert_eq!(
        err.to_string(),
        "task (none started) never ran: RunTask: RESOURCE:MEMORY"
    );
}

/// `deployer run -- migrate` in this process, expected to fail.
async fn run_failing(aws: &Aws, config: &deployer::config::Config) -> DeployError {
    deployer::run::run(
        aws,
        config,
        vec!["migrate".into()],
        Duration::from_secs(30),
        &Progress::new(OutputFormat::Json),
        |_| {},
        std::future::pending(),
    )
    .await
    .unwrap_err()
}

/// `release --image image(2)` in this process, with `[release] migrate = true`.
async fn release_with_migration(
    stage: &Stage,
    rules: &[&Rule],
) -> Result<serde_json::Value, ReleaseError> {
    release_of(stage, rules, 2, &[]).await
}

/// `release --image image(n)` in this process, with `[release] migrate = true` and `extra`.
async fn release_of(
    stage: &Stage,
    rules: &[&Rule],
    n: u8,
    extra: &[(&'static str, &'static str)],
) -> Result<serde_json::Value, ReleaseError> {
    let aws = aws(stage, rules);
    let mut vars = config_vars(true);
    vars.extend_from_slice(extra);
    let config = stage.config(&vars).await;
    let pinned = PublishedImage::parse_pinned(&image(n)).expect("a pinned image");
    release(
        &aws,
        &config,
        ImageSource::<OciPublisher>::Pinned(pinned),
        None,
        &Progress::new(OutputFormat::Json),
    )
    .await
    .map(|s| serde_json::to_value(&s).unwrap())
}

#[tokio::test]
async fn a_failed_migration_stops_the_release_with_nothing_updated() {
    let stage = released().await;
    let ledger_before = stage.ledger().await;
    assert_eq!(ledger_before.len(), 1);
    task_wrote(
        &stage,
        &[
            "applying migration 0007_jobs_lease",
            "error: relation \"jobs\" does not exist",
        ],
    )
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let start = run_task(seen.clone());
    let stopped = stops_as(exits_with(3));

    let Err(ReleaseError::Other(err)) = release_with_migration(&stage, &[&start, &stopped]).await
    else {
        panic!("the release must fail on the migration");
    };

    let text = err.to_string();
    assert_eq!(err.exit_code(), exit::MIGRATION_FAILED, "{text}");
    assert!(
        text.starts_with(&format!(
            "migration failed: task {TASK_ID} (data-processor-task:2) exited with code 3; service data-processor-service not updated, nothing recorded in the ledger; revision data-processor-task:2 deregistered"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "last log lines of the migration:\n  | applying migration 0007_jobs_lease\n  | error: relation \"jobs\" does not exist"
        ),
        "{text}"
    );
    // The migration ran the new revision's image with the migrate subcommand.
    let req = seen.lock().unwrap()[0].clone();
    assert!(
        req.task_definition()
            .unwrap()
            .ends_with("data-processor-task:2"),
        "{req:?}"
    );
    assert_eq!(req.started_by(), Some("deployer/migrate"));
    assert_eq!(
        req.overrides().unwrap().container_overrides()[0].command(),
        ["migrate"]
    );
    // Nothing changed: the service runs revision 1, the ledger is as it was, revision 2 is gone.
    let svc = stage.service().await;
    assert!(
        svc.task_definition()
            .unwrap()
            .ends_with("data-processor-task:1"),
        "{:?}",
        svc.task_definition()
    );
    assert_eq!(stage.deployment_ids().await.len(), 1);
    assert_eq!(stage.ledger().await, ledger_before);
    let r2 = stage
        .ecs()
        .describe_task_definition()
        .task_definition("data-processor-task:2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r2.task_definition().unwrap().status().map(|s| s.as_str()),
        Some("INACTIVE")
    );
    // And the lock is given back.
    assert_eq!(stage.tags("deployer:lock:").await, vec![]);
}

/// moto itself runs a task to STOPPED with exit code 0: no script needed.
#[tokio::test]
async fn a_passing_migration_lets_the_release_proceed() {
    let stage = released().await;
    let plan = stage.run_with(
        &["plan", "--image", &image(2)],
        &[("DEPLOYER__RELEASE__MIGRATE", "true")],
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("migration: run `data-processor migrate` as a one-off task of data-processor-task:(new revision) before the service is updated; a failure stops the release"),
        "{text}"
    );

    let summary = match release_with_migration(&stage, &[]).await {
        Ok(s) => s,
        Err(ReleaseError::Other(e)) => panic!("{e}"),
        Err(ReleaseError::Failed(f)) => panic!("{}", f.text),
    };

    assert_eq!(summary["migration"]["exit_code"], 0, "{summary}");
    assert_eq!(
        summary["migration"]["task_definition"],
        "data-processor-task:2"
    );
    assert_eq!(summary["task_definition"], "data-processor-task:2");
    assert_eq!(summary["outcome"]["outcome"], "completed");
    let svc = stage.service().await;
    assert!(
        svc.task_definition()
            .unwrap()
            .ends_with("data-processor-task:2"),
        "{:?}",
        svc.task_definition()
    );
    assert_eq!(stage.ledger().await.len(), 2);
    // The migration task ran the new revision with the migrate subcommand.
    let tasks = stage.tasks_started_by("deployer/migrate", None).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert!(
        tasks[0]
            .task_definition_arn()
            .unwrap()
            .ends_with("data-processor-task:2")
    );
    assert_eq!(
        tasks[0].overrides().unwrap().container_overrides()[0].command(),
        ["migrate"]
    );
}

/// DescribeTasks refused while the task runs: deployer cannot see how it ends, so it stops it
/// (on moto, for real) instead of leaving it running unwatched.
#[tokio::test]
async fn a_task_deployer_loses_sight_of_is_stopped() {
    let stage = released().await;
    stage.hold_tasks_running().await;
    let denied = mock!(Ecs::describe_tasks).then_error(|| {
        DescribeTasksError::AccessDeniedException(
            AccessDeniedException::builder()
                .message("not allowed to describe tasks")
                // What the SDK reads an error's code and message from, as from a real answer.
                .meta(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not allowed to describe tasks")
                        .build(),
                )
                .build(),
        )
    });
    let aws = aws(&stage, &[&denied]);
    let config = stage.config(&config_vars(false)).await;

    let err = run_failing(&aws, &config).await;

    let text = err.to_string();
    assert_eq!(err.exit_code(), exit::AWS, "{text}");
    let tasks = stage
        .tasks_started_by("deployer/run", Some(DesiredStatus::Stopped))
        .await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        tasks[0].stopped_reason(),
        Some("deployer: lost track of it")
    );
    let id = tasks[0].task_arn().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        text,
        format!(
            "lost track of task {id}: ecs:DescribeTasks failed: AccessDeniedException: not allowed to describe tasks; deployer stopped it (StopTask)"
        )
    );
}

/// A release that changes service settings but not the revision runs no migration.
#[tokio::test]
async fn the_same_revision_needs_no_migration() {
    let stage = released().await;

    let summary = match release_of(
        &stage,
        &[],
        1,
        &[("DEPLOYER__SERVICE__HEALTH_CHECK_GRACE_PERIOD", "90s")],
    )
    .await
    {
        Ok(s) => s,
        Err(ReleaseError::Other(e)) => panic!("{e}"),
        Err(ReleaseError::Failed(f)) => panic!("{}", f.text),
    };

    assert_eq!(summary["service"], "update", "{summary}");
    assert_eq!(summary["task_definition"], "data-processor-task:1");
    assert!(summary["migration"].is_null(), "{summary}");
    assert_eq!(
        stage.tasks_started_by("deployer/migrate", None).await,
        vec![]
    );
}
