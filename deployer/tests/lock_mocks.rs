//! Interleavings of two contenders for the release lock that moto cannot be made to produce on
//! demand, scripted with aws-smithy-mocks: both write their claim before either reads.

use std::time::Duration;

use aws_sdk_ecs::Client as Ecs;
use aws_sdk_ecs::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_ecs::operation::tag_resource::TagResourceOutput;
use aws_sdk_ecs::operation::untag_resource::UntagResourceOutput;
use aws_sdk_ecs::types::Tag;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use deployer::error::{DeployError, exit};
use deployer::lock::{self, LockError, Request};
use deployer::progress::{OutputFormat, Progress};

const ARN: &str =
    "arn:aws:ecs:eu-west-1:123456789012:service/prod-data-processor/data-processor-service";
const RIVAL: &str = "deployer:lock:ci-runner-2:777:feedbeef";

fn request() -> Request<'static> {
    Request {
        cluster: "prod-data-processor",
        service: "data-processor-service",
        service_arn: ARN,
        command: "release",
        ttl: Duration::from_secs(600),
        wait: None,
        poll_interval: Duration::from_millis(20),
    }
}

/// ListTagsForResource answering with the rival's claim (or none), besides a ledger entry.
fn tags(rival: Option<&'static str>) -> ListTagsForResourceOutput {
    let mut out = ListTagsForResourceOutput::builder().tags(
        Tag::builder()
            .key("deployer:release:000001")
            .value("rev=data-processor-task:1 outcome=completed")
            .build(),
    );
    if let Some(state) = rival {
        out = out.tags(
            Tag::builder()
                .key(RIVAL)
                .value(format!(
                    "command=release since=2026-12-04T01:00:00Z expires=2099-01-01T00:00:00Z state={state}"
                ))
                .build(),
        );
    }
    out.build()
}

#[tokio::test]
async fn both_claimed_at_once_we_withdraw_and_refuse_once_the_rival_holds_it() {
    let empty = mock!(Ecs::list_tags_for_resource).then_output(|| tags(None));
    let claim = mock!(Ecs::tag_resource).then_output(|| TagResourceOutput::builder().build());
    let rival_pending = mock!(Ecs::list_tags_for_resource).then_output(|| tags(Some("pending")));
    let withdraw = mock!(Ecs::untag_resource)
        .match_requests(|r| r.tag_keys().iter().all(|k| k != RIVAL))
        .then_output(|| UntagResourceOutput::builder().build());
    let rival_held = mock!(Ecs::list_tags_for_resource).then_output(|| tags(Some("held")));
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        &[&empty, &claim, &rival_pending, &withdraw, &rival_held]
    );

    let err = lock::acquire(&ecs, &request(), &Progress::new(OutputFormat::Json))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Held(_)), "{err}");
    assert_eq!(
        claim.num_calls(),
        1,
        "our claim was written once, never confirmed"
    );
    assert_eq!(withdraw.num_calls(), 1, "and withdrawn");
    assert_eq!(rival_held.num_calls(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with(
            "another release of prod-data-processor/data-processor-service is in progress (owner ci-runner-2:777:feedbeef, since 2026-12-04T01:00:00Z"
        ),
        "{text}"
    );
    assert_eq!(DeployError::from(err).exit_code(), exit::LOCKED);
}

#[tokio::test]
async fn a_rival_that_withdrew_leaves_the_lock_to_us() {
    let rival_pending = mock!(Ecs::list_tags_for_resource).then_output(|| tags(Some("pending")));
    let gone = mock!(Ecs::list_tags_for_resource).then_output(|| tags(None));
    let claim = mock!(Ecs::tag_resource).then_output(|| TagResourceOutput::builder().build());
    let alone = mock!(Ecs::list_tags_for_resource).then_output(|| tags(None));
    let confirm = mock!(Ecs::tag_resource)
        .match_requests(|r| {
            r.tags()
                .iter()
                .all(|t| t.value().is_some_and(|v| v.ends_with("state=held")))
        })
        .then_output(|| TagResourceOutput::builder().build());
    let release = mock!(Ecs::untag_resource).then_output(|| UntagResourceOutput::builder().build());
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        &[&rival_pending, &gone, &claim, &alone, &confirm, &release]
    );

    let held = lock::acquire(&ecs, &request(), &Progress::new(OutputFormat::Json))
        .await
        .unwrap();
    assert!(held.claim.held);
    assert_eq!(held.claim.command, "release");
    assert_eq!(confirm.num_calls(), 1);
    held.release().await;
    assert_eq!(release.num_calls(), 1);
}

#[tokio::test]
async fn a_claim_whose_check_fails_is_withdrawn() {
    let empty = mock!(Ecs::list_tags_for_resource).then_output(|| tags(None));
    let claim = mock!(Ecs::tag_resource).then_output(|| TagResourceOutput::builder().build());
    let denied = mock!(Ecs::list_tags_for_resource)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"not allowed"}"#.into()),
        )
        .times(1)
        .build();
    let withdraw = mock!(Ecs::untag_resource)
        .match_requests(|r| r.tag_keys().iter().all(|k| k.starts_with("deployer:lock:")))
        .then_output(|| UntagResourceOutput::builder().build());
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::Sequential,
        &[&empty, &claim, &denied, &withdraw]
    );

    let err = lock::acquire(&ecs, &request(), &Progress::new(OutputFormat::Json))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Aws(_)), "{err}");
    assert!(
        err.to_string()
            .contains("ecs:ListTagsForResource failed: AccessDeniedException"),
        "{err}"
    );
    assert_eq!(
        withdraw.num_calls(),
        1,
        "our claim does not outlive the failure"
    );
    assert_eq!(DeployError::from(err).exit_code(), exit::AWS);
}
