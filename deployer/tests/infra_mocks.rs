//! Stack states moto cannot produce (it never fails a resource or rolls back), scripted with
//! aws-smithy-mocks: a creation that fails and is rolled back ends `infra up` with exit 8 and a
//! report that puts the failing resource's reason first.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudformation::Client as Cfn;
use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::types::{
    Change, ChangeAction, ChangeSetStatus, ResourceChange, ResourceStatus, Stack, StackEvent,
    StackStatus,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use deployer::cli::{InfraAction, run_infra};
use deployer::config::{InfraSection, StackSection};
use deployer::error::{DeployError, exit};
use deployer::infra::{Context, InfraError, stack::StackClients};
use deployer::progress::{OutputFormat, Progress};

const STACK_ID: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/web/1";

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name("web")
                .stack_id(STACK_ID)
                .stack_status(status)
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build(),
        )
        .build()
}

fn event(id: &str, logical: &str, kind: &str, status: ResourceStatus, reason: &str) -> StackEvent {
    StackEvent::builder()
        .event_id(id)
        .stack_id(STACK_ID)
        .stack_name("web")
        .logical_resource_id(logical)
        .resource_type(kind)
        .resource_status(status)
        .resource_status_reason(reason)
        .timestamp(aws_smithy_types::DateTime::from_secs(0))
        .build()
}

fn events(list: Vec<StackEvent>) -> DescribeStackEventsOutput {
    DescribeStackEventsOutput::builder()
        .set_stack_events(Some(list))
        .build()
}

#[tokio::test]
async fn a_rolled_back_creation_exits_8_with_the_failing_resource_first() {
    let describe = mock!(Cfn::describe_stacks)
        .sequence()
        .error(|| {
            DescribeStacksError::generic(
                ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("Stack with id web does not exist")
                    .build(),
            )
        })
        .output(|| stack(StackStatus::CreateInProgress))
        .output(|| stack(StackStatus::CreateInProgress))
        .output(|| stack(StackStatus::RollbackComplete))
        .repeatedly()
        .build();
    let create = mock!(Cfn::create_change_set).then_output(|| {
        CreateChangeSetOutput::builder()
            .id("arn:aws:cloudformation:eu-west-1:123456789012:changeSet/deployer-1/1")
            .stack_id(STACK_ID)
            .build()
    });
    let computed = mock!(Cfn::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::CreateComplete)
            .changes(
                Change::builder()
                    .resource_change(
                        ResourceChange::builder()
                            .action(ChangeAction::Add)
                            .logical_resource_id("Database")
                            .resource_type("AWS::RDS::DBInstance")
                            .build(),
                    )
                    .build(),
            )
            .changes(
                Change::builder()
                    .resource_change(
                        ResourceChange::builder()
                            .action(ChangeAction::Add)
                            .logical_resource_id("TargetGroup")
                            .resource_type("AWS::ElasticLoadBalancingV2::TargetGroup")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let execute =
        mock!(Cfn::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let started = || {
        event(
            "e1",
            "web",
            "AWS::CloudFormation::Stack",
            ResourceStatus::CreateInProgress,
            "User Initiated",
        )
    };
    let history = mock!(Cfn::describe_stack_events)
        .sequence()
        .output(move || events(vec![started()]))
        .output(move || {
            // Newest first, as CloudFormation lists them.
            events(vec![
                event(
                    "e5",
                    "web",
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::RollbackComplete,
                    "",
                ),
                event(
                    "e4",
                    "TargetGroup",
                    "AWS::ElasticLoadBalancingV2::TargetGroup",
                    ResourceStatus::CreateFailed,
                    "Resource creation cancelled",
                ),
                event(
                    "e3",
                    "Database",
                    "AWS::RDS::DBInstance",
                    ResourceStatus::CreateFailed,
                    "DB instance class db.x9.large is not supported for engine postgres",
                ),
                event(
                    "e2",
                    "Database",
                    "AWS::RDS::DBInstance",
                    ResourceStatus::CreateInProgress,
                    "",
                ),
                started(),
            ])
        })
        .repeatedly()
        .build();
    let cfn = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        &[&describe, &create, &computed, &execute, &history]
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let template = dir.path().join("web.yaml");
    std::fs::write(&template, "Resources: {}\n").expect("write template");
    let infra = InfraSection {
        stacks: vec![StackSection {
            name: "web".into(),
            template,
            region: None,
            parameters: BTreeMap::new(),
            tags: BTreeMap::new(),
        }],
        service_stack: None,
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(10),
    };
    let clients = StackClients::Fixed(cfn);
    let progress = Progress::new(OutputFormat::Json);
    let ctx = Context {
        clients: &clients,
        infra: &infra,
        default_region: Some("eu-west-1"),
        progress: &progress,
    };

    let err = run_infra(InfraAction::Up { stack: None }, &ctx)
        .await
        .expect_err("a rolled-back creation is a failure");
    assert_eq!(err.exit_code(), exit::INFRA_FAILED);
    let DeployError::Infra(InfraError::StackFailed(outcome)) = &err else {
        panic!("expected a failed stack, got {err}");
    };
    assert_eq!(outcome.status, "ROLLBACK_COMPLETE");
    assert_eq!(outcome.events, 5, "every event once: {outcome:?}");
    let report = outcome.report();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[0],
        "stack web ended ROLLBACK_COMPLETE after 5 event(s)"
    );
    assert_eq!(
        lines[1],
        "  CREATE_FAILED Database (AWS::RDS::DBInstance): DB instance class db.x9.large is not supported for engine postgres"
    );
    assert!(lines[2].contains("Resource creation cancelled"), "{report}");
    assert_eq!(
        err.to_string(),
        "stack web: ended ROLLBACK_COMPLETE (CREATE_FAILED Database (AWS::RDS::DBInstance): DB instance class db.x9.large is not supported for engine postgres)"
    );
}
