//! `deployer` against a real moto: the first release creates everything the classic setup
//! needs; releasing again changes nothing; a change makes exactly one new revision, which `plan`
//! shows before and not after; updates leave the autoscaled desired count alone; rollback goes
//! back to a known-good revision from the ledger.

mod common;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use common::{Stage, digest, image};

#[tokio::test]
async fn first_release_creates_everything_and_second_is_a_noop() {
    let stage = Stage::start().await;
    let plan = stage.run(&["plan", "--image", &image(1)]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("create ECR repository data-processor"),
        "{text}"
    );
    assert!(
        text.contains("register a new revision of data-processor-task"),
        "{text}"
    );
    assert!(
        text.contains("service data-processor-service: create with 4 tasks"),
        "{text}"
    );
    assert!(text.contains("+   \"placement\": ["), "{text}");
    assert!(text.contains("+     \"min\": 4,"), "{text}");
    assert!(stage.revisions().await.is_empty(), "plan changes nothing");

    let first = stage.run_json(&["release", "--image", &image(1)]);
    assert_eq!(first["registered_revision"], true);
    assert_eq!(first["service"], "create");
    assert_eq!(first["digest"], digest(1));
    assert_eq!(first["outcome"]["outcome"], "completed");
    assert!(
        first["deployment_id"]
            .as_str()
            .unwrap()
            .starts_with("ecs-svc/")
    );

    // ECR repository with scan on push and a lifecycle policy keeping 30 images.
    let ecr = aws_sdk_ecr::Client::new(&stage.sdk);
    let repo = ecr
        .describe_repositories()
        .repository_names("data-processor")
        .send()
        .await
        .unwrap();
    assert!(
        repo.repositories()[0]
            .image_scanning_configuration()
            .unwrap()
            .scan_on_push()
    );
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name("data-processor")
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(policy["rules"][0]["selection"]["countNumber"], 30);

    // Task definition pinned by digest, bridge mode, dynamic host port, memory reservation.
    let td = stage
        .ecs()
        .describe_task_definition()
        .task_definition("data-processor-task")
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.revision(), 1);
    assert_eq!(td.network_mode().unwrap().as_str(), "bridge");
    let c = &td.container_definitions()[0];
    assert_eq!(c.image(), Some(image(1).as_str()));
    assert_eq!(c.memory_reservation(), Some(256));
    assert_eq!(c.port_mappings()[0].container_port(), Some(8080));
    assert_eq!(c.port_mappings()[0].host_port(), Some(0));
    assert_eq!(
        c.health_check().unwrap().command(),
        ["CMD", "/usr/local/bin/data-processor", "healthcheck"]
    );
    // From the service stack's outputs: the URL secret and RDS's managed password secret.
    let secrets: Vec<(&str, &str)> = c
        .secrets()
        .iter()
        .map(|s| (s.name(), s.value_from()))
        .collect();
    assert_eq!(
        secrets,
        [
            (
                "DATABASE_PASSWORD",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0123:password::"
            ),
            (
                "DATABASE_URL",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/data-processor/database-url"
            ),
        ]
    );
    assert_eq!(
        c.log_configuration().unwrap().log_driver().as_str(),
        "awslogs"
    );

    // Service: 4 tasks, EC2, behind the target group, AZ-then-instance spread, circuit breaker.
    let svc = stage.service().await;
    assert_eq!(svc.desired_count(), 4);
    assert_eq!(svc.launch_type().unwrap().as_str(), "EC2");
    assert_eq!(
        svc.load_balancers()[0].target_group_arn(),
        Some(stage.target_group_arn.as_str())
    );
    assert_eq!(svc.load_balancers()[0].container_port(), Some(8080));
    let fields: Vec<_> = svc
        .placement_strategy()
        .iter()
        .map(|p| p.field().unwrap())
        .collect();
    assert_eq!(fields, ["attribute:ecs.availability-zone", "instanceId"]);
    let cb = svc
        .deployment_configuration()
        .unwrap()
        .deployment_circuit_breaker()
        .unwrap();
    assert!(cb.enable() && cb.rollback());
    assert_eq!(svc.health_check_grace_period_seconds(), Some(60));

    // Autoscaling: 4..20, +2 / -2 step policies, alarms at 70% for 5 min and < 30% for 30 min.
    let aas = aws_sdk_applicationautoscaling::Client::new(&stage.sdk);
    let rid = "service/prod-data-processor/data-processor-service";
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(rid)
        .send()
        .await
        .unwrap();
    let t = &targets.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (4, 20));
    assert_eq!(
        t.scalable_dimension(),
        &ScalableDimension::EcsServiceDesiredCount
    );
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(rid)
        .send()
        .await
        .unwrap();
    let step = |name: &str| {
        let p = policies
            .scaling_policies()
            .iter()
            .find(|p| p.policy_name() == name)
            .expect(name);
        let c = p.step_scaling_policy_configuration().unwrap();
        (
            p.policy_arn().to_string(),
            c.step_adjustments()[0].scaling_adjustment(),
        )
    };
    let (out_arn, out_adj) = step("data-processor-service-scale-out");
    let (in_arn, in_adj) = step("data-processor-service-scale-in");
    assert_eq!((out_adj, in_adj), (2, -2));
    let cw = aws_sdk_cloudwatch::Client::new(&stage.sdk);
    let alarms = cw
        .describe_alarms()
        .alarm_name_prefix("prod-data-processor-")
        .send()
        .await
        .unwrap();
    let alarm = |suffix: &str| {
        alarms
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name().unwrap().ends_with(suffix))
            .expect(suffix)
            .clone()
    };
    let high = alarm("cpu-high");
    assert_eq!(high.threshold(), Some(70.0));
    assert_eq!(
        high.comparison_operator().unwrap().as_str(),
        "GreaterThanOrEqualToThreshold"
    );
    assert_eq!(high.period(), Some(60));
    assert_eq!(high.evaluation_periods(), Some(5));
    assert_eq!(high.metric_name(), Some("CPUUtilization"));
    assert_eq!(high.alarm_actions(), [out_arn]);
    let low = alarm("cpu-low");
    assert_eq!(low.threshold(), Some(30.0));
    assert_eq!(
        low.comparison_operator().unwrap().as_str(),
        "LessThanThreshold"
    );
    assert_eq!(low.evaluation_periods(), Some(30));
    assert_eq!(low.alarm_actions(), [in_arn]);

    // Second release, nothing changed: nothing registered, no deployment, nothing written.
    let deployments_before = stage.deployment_ids().await;
    let second = stage.run_json(&["release", "--image", &image(1)]);
    assert_eq!(second["registered_revision"], false);
    assert_eq!(second["service"], "unchanged");
    assert_eq!(second["deployment_id"], serde_json::Value::Null);
    assert_eq!(second["scaling_changes"], serde_json::json!([]));
    assert_eq!(second["repository"], "unchanged");
    assert_eq!(stage.revisions().await.len(), 1);
    assert_eq!(deployments_before, stage.deployment_ids().await);

    let status = stage.run_json(&["status"]);
    assert_eq!(
        status["ledger"].as_array().unwrap().len(),
        1,
        "only the first release is recorded"
    );
    assert_eq!(status["ledger"][0]["outcome"], "completed");
}

#[tokio::test]
async fn a_change_is_planned_then_released_as_exactly_one_revision() {
    let stage = Stage::start().await;
    stage.run_json(&["release", "--image", &image(1)]);

    let plan = stage.run(&["plan", "--image", &image(2)]);
    assert_eq!(plan.status.code(), Some(0));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("register a new revision of data-processor-task"),
        "{text}"
    );
    assert!(
        text.contains(&format!("-     \"image\": \"{}\"", image(1))),
        "{text}"
    );
    assert!(
        text.contains(&format!("+     \"image\": \"{}\"", image(2))),
        "{text}"
    );
    assert!(
        text.contains("service data-processor-service: update"),
        "{text}"
    );
    assert!(text.contains("autoscaling: unchanged"), "{text}");
    assert_eq!(stage.revisions().await.len(), 1, "plan changes nothing");

    let released = stage.run_json(&["release", "--image", &image(2)]);
    assert_eq!(released["registered_revision"], true);
    assert_eq!(released["task_definition"], "data-processor-task:2");
    assert_eq!(stage.revisions().await.len(), 2, "exactly one new revision");
    assert!(
        stage
            .service()
            .await
            .task_definition()
            .unwrap()
            .ends_with("data-processor-task:2")
    );

    let after = stage.run_json(&["plan", "--image", &image(2)]);
    assert_eq!(after["changes"], false, "{after}");
    let text =
        String::from_utf8_lossy(&stage.run(&["plan", "--image", &image(2)]).stdout).to_string();
    assert!(text.contains("No changes"), "{text}");
}

#[tokio::test]
async fn updates_never_reset_the_autoscaled_desired_count() {
    let stage = Stage::start().await;
    stage.run_json(&["release", "--image", &image(1)]);
    // What a scale-out would do.
    stage
        .ecs()
        .update_service()
        .cluster("prod-data-processor")
        .service("data-processor-service")
        .desired_count(7)
        .send()
        .await
        .unwrap();
    let released = stage.run_json(&["release", "--image", &image(2)]);
    assert_eq!(released["service"], "update");
    assert_eq!(stage.service().await.desired_count(), 7);
}

#[tokio::test]
async fn rollback_returns_to_the_previous_known_good_revision() {
    let stage = Stage::start().await;
    stage.run_json(&["release", "--image", &image(1)]);
    stage.run_json(&["release", "--image", &image(2)]);

    let back = stage.run_json(&["rollback"]);
    assert_eq!(back["from"], "data-processor-task:2");
    assert_eq!(back["to"], "data-processor-task:1");
    assert_eq!(back["digest"], digest(1));
    assert!(
        stage
            .service()
            .await
            .task_definition()
            .unwrap()
            .ends_with("data-processor-task:1")
    );
    assert_eq!(
        stage.revisions().await.len(),
        2,
        "a rollback registers nothing"
    );

    let status = stage.run_json(&["status"]);
    assert_eq!(status["ledger"][0]["kind"], "rollback");
    assert_eq!(status["ledger"][0]["revision"], "data-processor-task:1");

    // Forward again by revision, then a revision the ledger never saw complete is refused.
    let fwd = stage.run_json(&["rollback", "--to", "2"]);
    assert_eq!(fwd["to"], "data-processor-task:2");
    let refused = stage.run(&["rollback", "--to", "9"]);
    assert_eq!(refused.status.code(), Some(deployer::error::exit::CONFIG));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("known-good: data-processor-task:1, data-processor-task:2"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_config_fails_before_any_aws_call_naming_the_line() {
    let stage = Stage::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::config_path())
        .unwrap()
        .replace("max = 20", "max = 2");
    let path = dir.path().join("deployer.toml");
    std::fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l == "max = 2").unwrap() + 1;
    let out = stage.run(&[
        "--config",
        path.to_str().unwrap(),
        "release",
        "--image",
        &image(1),
    ]);
    assert_eq!(out.status.code(), Some(deployer::error::exit::CONFIG));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!(
            "error: {}:{line}: autoscaling.max: must be >= service.desired_count (4), got 2",
            path.display()
        )
    );
    // Nothing was created.
    let ecr = aws_sdk_ecr::Client::new(&stage.sdk);
    assert!(
        ecr.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rollout_that_never_completes_times_out_with_a_report() {
    let stage = Stage::start_with_running(0).await;
    let out = stage.run_with(
        &["release", "--image", &image(1)],
        &[("DEPLOYER__DEPLOYMENT__TIMEOUT", "1s")],
    );
    assert_eq!(out.status.code(), Some(deployer::error::exit::TIMED_OUT));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not finish within 1s"), "{err}");
    assert!(
        err.contains("rollout: PRIMARY data-processor-task:1 IN_PROGRESS running 0/4"),
        "{err}"
    );
    assert!(err.contains("Stopped tasks:"), "{err}");
    assert!(err.contains("Target health"), "{err}");
    // The ledger records the outcome, so this revision is not "known-good".
    let status = stage.run_json(&["status"]);
    assert_eq!(status["ledger"][0]["outcome"], "timed-out");

    let json = stage.run_with(
        &["--output", "json", "release", "--image", &image(2)],
        &[("DEPLOYER__DEPLOYMENT__TIMEOUT", "1s")],
    );
    assert_eq!(json.status.code(), Some(deployer::error::exit::TIMED_OUT));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["exit_code"], deployer::error::exit::TIMED_OUT);
    assert!(doc["report"]["stopped_tasks"].is_array(), "{doc}");
}

#[tokio::test]
async fn ecr_login_decodes_the_authorization_token() {
    let stage = Stage::start().await;
    let config = common::config(&[]);
    let ecr = aws_sdk_ecr::Client::new(&stage.sdk);
    let target = deployer::image::resolve_target(&config.registry, &ecr)
        .await
        .unwrap();
    // moto's token is base64("AWS:123456789012-auth-token"); the host comes from proxyEndpoint.
    assert_eq!(target.host, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_eq!(
        target.repository_url(),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/data-processor"
    );
    assert_eq!(target.username.as_deref(), Some("AWS"));
    assert_eq!(target.password.as_deref(), Some("123456789012-auth-token"));
    assert!(!target.insecure);
    assert!(
        !format!("{target:?}").contains("auth-token"),
        "Debug hides the password"
    );
}
