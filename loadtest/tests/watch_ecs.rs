//! --watch-ecs against moto: real ECS and CloudWatch APIs on loopback. The load goes to the
//! in-process API stand-in; what is under test is the watch output and its report data.

mod common;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_ecs::types::ContainerDefinition;
use common::stub::Stub;
use common::{loadtest_bin, read_json, run_loadtest, text};
use testkit::moto::MotoServer;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Aws {
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

async fn aws(moto: &MotoServer) -> Aws {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(aws_config::Region::new(testkit::moto::REGION))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    Aws {
        ecs: aws_sdk_ecs::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
    }
}

/// A cluster, a service with `desired` tasks and two alarms named after the service.
async fn create_service(aws: &Aws, cluster: &str, service: &str, desired: i32) {
    aws.ecs
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    aws.ecs
        .register_task_definition()
        .family(service)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("app:1")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.ecs
        .create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(service)
        .desired_count(desired)
        .send()
        .await
        .unwrap();
    for suffix in ["cpu-high", "cpu-low"] {
        aws.cloudwatch
            .put_metric_alarm()
            .alarm_name(format!("{service}-{suffix}"))
            .namespace("AWS/ECS")
            .metric_name("CPUUtilization")
            .statistic(Statistic::Average)
            .period(60)
            .evaluation_periods(1)
            .threshold(70.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
    }
    set_alarm(aws, &format!("{service}-cpu-high"), StateValue::Ok).await;
    set_alarm(aws, &format!("{service}-cpu-low"), StateValue::Alarm).await;
}

async fn set_alarm(aws: &Aws, name: &str, state: StateValue) {
    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("test")
        .send()
        .await
        .unwrap();
}

/// The watch prints counts and alarm states as they change during the run (here: a scale-out
/// to 3 tasks and the high-CPU alarm firing, done through the APIs while the load runs), and
/// the JSON and HTML reports carry the time series.
#[tokio::test]
async fn watch_ecs_prints_task_counts_and_alarm_states_over_time() {
    let moto = MotoServer::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "2")]).await;
    let aws = aws(&moto).await;
    create_service(&aws, "lt-cluster", "web", 2).await;
    let stub = Stub::start().await;
    let reports = tempfile::tempdir().unwrap();

    let mut child = tokio::process::Command::new(loadtest_bin())
        .args([
            "--url",
            &stub.url,
            "--users",
            "2",
            "--duration",
            "4s",
            "--scenario",
            "upload",
            "--watch-ecs",
            "lt-cluster/web",
            "--watch-interval",
            "200ms",
            "--progress-interval",
            "1s",
            "--report-dir",
            reports.path().to_str().unwrap(),
        ])
        .envs(moto.client_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut next_line = async || {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("loadtest output within 30 s")
            .unwrap();
        if let Some(l) = &line {
            seen.push(l.clone());
        }
        line
    };

    // The first sample, taken before any load is sent.
    let first = next_line().await.unwrap();
    assert!(
        first.contains("ecs lt-cluster/web: desired 2 running 2 pending 0")
            && first.contains("web-cpu-high=OK")
            && first.contains("web-cpu-low=ALARM"),
        "{first}"
    );

    // Scale out and fire the alarm, as an autoscaling policy would, while the load runs.
    aws.ecs
        .update_service()
        .cluster("lt-cluster")
        .service("web")
        .desired_count(3)
        .send()
        .await
        .unwrap();
    set_alarm(&aws, "web-cpu-high", StateValue::Alarm).await;
    loop {
        let line = next_line()
            .await
            .expect("a sample showing the scale-out before the run ended");
        if line.contains("desired 3") && line.contains("web-cpu-high=ALARM") {
            break;
        }
    }
    while next_line().await.is_some() {}
    let status = child.wait().await.unwrap();
    let all = seen.join("\n");
    println!("{all}");
    assert!(status.success(), "loadtest failed: {all}");
    assert!(all.contains("users 2/2"), "progress lines expected: {all}");

    let json = read_json(&reports.path().join("report.json"));
    let samples = json["ecs"]["samples"]
        .as_array()
        .expect("ecs samples in the JSON report");
    assert_eq!(samples[0]["desired"], 2);
    assert_eq!(samples[0]["alarms"]["web-cpu-high"], "OK");
    let last = samples.last().unwrap();
    assert_eq!(last["desired"], 3);
    assert_eq!(last["alarms"]["web-cpu-high"], "ALARM");
    assert_eq!(json["ecs"]["alarm_prefix"], "web");
    assert!(json["requests"].as_u64().unwrap() > 0);
    let html = std::fs::read_to_string(reports.path().join("report.html")).unwrap();
    assert!(
        html.contains("ECS service lt-cluster/web"),
        "ECS section in the HTML report"
    );
    assert!(html.contains("web-cpu-high=ALARM"));
}

/// A service that does not exist stops the run before any traffic, with exit code 2.
#[tokio::test]
async fn watch_ecs_of_a_missing_service_fails_before_any_load() {
    let moto = MotoServer::start().await;
    let aws = aws(&moto).await;
    aws.ecs
        .create_cluster()
        .cluster_name("lt-cluster")
        .send()
        .await
        .unwrap();
    let stub = Stub::start().await;

    let out = run_loadtest(
        &[
            "--url",
            &stub.url,
            "--users",
            "1",
            "--duration",
            "1s",
            "--watch-ecs",
            "lt-cluster/nope",
        ],
        &moto.client_env(),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("nope") && stderr.contains("lt-cluster"),
        "{stderr}"
    );
    assert_eq!(stub.requests(), 0, "no load may be sent");
}
