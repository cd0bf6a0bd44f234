//! `deployer infra` against moto's CloudFormation, through the real binary: plan of a new stack
//! changes nothing, up creates what the plan listed (checked through the services' own
//! describe APIs, not moto's stack status), plan after up says "no changes", a changed
//! parameter shows up in the plan, down asks first and then deletes; and `${STACK.OUTPUT}`
//! references in the config resolve from a stack's outputs.
//!
//! Measured moto 5.2.5 limits these tests live with: a stack created or updated through a
//! change set has no outputs (moto rebuilds outputs only in CreateStack/UpdateStack), events are
//! stack-level only, and nothing ever fails or rolls back. So the output references are tested
//! on a stack the test creates with CreateStack, and failed stacks are scripted in
//! `infra_mocks.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use testkit::moto::MotoServer;

const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/infra-small.yaml"
);

struct Bed {
    moto: MotoServer,
    sdk: aws_config::SdkConfig,
    dir: tempfile::TempDir,
}

impl Bed {
    async fn start() -> Self {
        let moto = MotoServer::start().await;
        let sdk = common::moto_sdk(&moto).await;
        Self {
            moto,
            sdk,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The checked-in example config; `extra` (another [infra] section) replaces its own.
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deployer.toml");
        let text = std::fs::read_to_string(example).expect("deploy/deployer.toml");
        // [env.*] tables come last in the example; [infra] must not land inside one.
        let (main, envs) = text.split_at(text.find("\n[env.").unwrap_or(text.len()));
        let main = match main.find("\n[infra]\n") {
            Some(at) if !extra.is_empty() => &main[..at],
            _ => main,
        };
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{main}\n{extra}\n{envs}")).expect("write config");
        path
    }

    fn run(&self, config: &Path, args: &[&str]) -> Output {
        common::run_deployer(&self.moto, config, args, [])
    }

    fn cfn(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.sdk)
    }

    async fn stack_exists(&self, name: &str) -> bool {
        match self.cfn().describe_stacks().stack_name(name).send().await {
            Ok(out) => out
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .is_some_and(|s| s.as_str() != "DELETE_COMPLETE"),
            Err(_) => false,
        }
    }

    async fn target_groups(&self) -> Vec<aws_sdk_elasticloadbalancingv2::types::TargetGroup> {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk)
            .describe_target_groups()
            .send()
            .await
            .expect("describe target groups")
            .target_groups()
            .to_vec()
    }

    async fn clusters(&self) -> Vec<String> {
        aws_sdk_ecs::Client::new(&self.sdk)
            .list_clusters()
            .send()
            .await
            .expect("list clusters")
            .cluster_arns()
            .to_vec()
    }
}

fn infra(stack: &str, name_parameter: &str) -> String {
    format!(
        "[infra]\npoll_interval = \"1s\"\ntimeout = \"2m\"\n\n[[infra.stacks]]\nname = \"{stack}\"\n\
         template = \"{TEMPLATE}\"\n\n[infra.stacks.parameters]\nName = \"{name_parameter}\"\n"
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn plan_up_plan_change_and_down_against_moto() {
    let bed = Bed::start().await;
    let config = bed.config("deployer.toml", &infra("small", "small"));

    // A plan of a stack that does not exist lists what it would create and creates nothing.
    let out = bed.run(&config, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(0));
    let plan = stdout(&out);
    assert!(
        plan.contains("stack small: create, 5 resource change(s)"),
        "{plan}"
    );
    for line in [
        "+ Vpc",
        "+ Subnet",
        "+ Cluster",
        "+ TargetGroup",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
    ] {
        assert!(plan.contains(line), "plan lacks {line:?}: {plan}");
    }
    assert!(
        !bed.stack_exists("small").await,
        "plan left a stack (or its REVIEW_IN_PROGRESS placeholder) behind"
    );
    assert!(
        bed.target_groups().await.is_empty(),
        "plan created resources"
    );

    // Up creates them: seen through ELBv2 and ECS, not through the stack's status.
    let out = bed.run(&config, &["infra", "up"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("stack small: CREATE_COMPLETE"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("small: CREATE_IN_PROGRESS"),
        "events are not shown: {}",
        stderr(&out)
    );
    let groups = bed.target_groups().await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].target_group_name(), Some("small-tg"));
    assert_eq!(groups[0].health_check_path(), Some("/healthz"));
    assert!(
        bed.clusters()
            .await
            .iter()
            .any(|c| c.ends_with("/small-cluster")),
        "no ECS cluster small-cluster"
    );

    // Nothing changed since: the plan says so, in text and JSON, and exits 0.
    let out = bed.run(&config, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("stack small (us-east-1): no changes")
            || stdout(&out).contains("stack small: no changes"),
        "{}",
        stdout(&out)
    );
    let out = bed.run(&config, &["--output", "json", "infra", "plan"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["changes"], false, "{doc}");

    // A changed parameter is in the plan, and up applies it.
    let changed = bed.config("changed.toml", &infra("small", "renamed"));
    let out = bed.run(&changed, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("parameter Name: small -> renamed"),
        "{}",
        stdout(&out)
    );
    let out = bed.run(&changed, &["infra", "up"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("stack small: UPDATE_COMPLETE"));

    // Down refuses without a terminal or --yes, and deletes with --yes.
    let out = bed.run(&changed, &["infra", "down"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pass --yes to confirm"),
        "{}",
        stderr(&out)
    );
    assert!(
        bed.stack_exists("small").await,
        "deleted without confirmation"
    );
    let out = bed.run(&changed, &["infra", "down", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!bed.stack_exists("small").await, "the stack is still there");
    let out = bed.run(&changed, &["infra", "down", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("does not exist (nothing to delete)"));
}

#[tokio::test]
async fn a_template_cloudformation_cannot_read_fails_with_one_line_and_changes_nothing() {
    let bed = Bed::start().await;
    let broken = bed.dir.path().join("broken.yaml");
    std::fs::write(&broken, "Resources: [unclosed\n").expect("write template");
    let extra = format!(
        "[infra]\n[[infra.stacks]]\nname = \"broken\"\ntemplate = \"{}\"\n",
        broken.display()
    );
    let config = bed.config("deployer.toml", &extra);
    let out = bed.run(&config, &["infra", "up"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("cloudformation:CreateChangeSet")),
        "{err}"
    );
    // moto answers a template it cannot parse with an HTML 500 page: the status is named.
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(!bed.stack_exists("broken").await);

    // A template that is not there is named, before any AWS call.
    let extra = "[infra]\n[[infra.stacks]]\nname = \"missing\"\ntemplate = \"no/such.yaml\"\n";
    let config = bed.config("missing.toml", extra);
    let out = bed.run(&config, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read template no/such.yaml"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn the_checked_in_config_takes_its_values_from_the_service_stack() {
    let bed = Bed::start().await;
    let outputs = common::create_service_stack(&bed.sdk).await;
    let config = bed.config("deployer.toml", "");

    let out = bed.run(&config, &["--output", "json", "config"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["cluster"], "prod-data-processor");
    assert_eq!(
        doc["service"]["target_group_arn"],
        outputs["TargetGroupArn"]
    );
    assert_eq!(doc["task"]["logs"]["group"], "/ecs/data-processor");
    assert_eq!(doc["task"]["logs"]["region"], "us-east-1");
    assert_eq!(
        doc["task"]["environment"]["STORAGE_URL"],
        "s3://prod-data-processor-files/data"
    );
    assert_eq!(
        doc["task"]["secrets"]["DATABASE_PASSWORD"],
        format!("{}:password::", outputs["DatabasePasswordSecretArn"])
    );
    assert_eq!(
        doc["task"]["execution_role_arn"],
        outputs["ExecutionRoleArn"]
    );

    // The replica stack does not exist here: only the service stack's outputs are listed.
    let out = bed.run(&config, &["infra", "outputs"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("${data-processor.ClusterName} = prod-data-processor"),
        "{}",
        stdout(&out)
    );

    // An output the stack does not have: exit 2 at its line, with the outputs it has.
    let text = std::fs::read_to_string(&config).expect("config");
    let line = line_of(&text, "${infra.ClusterName}");
    let typo = bed.dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        text.replace("${infra.ClusterName}", "${infra.Clustr}"),
    )
    .expect("write");
    let out = bed.run(&typo, &["config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "typo.toml:{line}: cluster: stack infra has no output Clustr"
        )),
        "{err}"
    );
    assert!(
        err.contains("ClusterName, DatabasePasswordSecretArn"),
        "known outputs not listed: {err}"
    );

    // A service stack that does not exist: exit 2 at the first line that needs it, before any
    // other AWS call.
    let absent = bed.dir.path().join("absent.toml");
    std::fs::write(
        &absent,
        text.replace(
            "name = \"data-processor\"\ntemplate = \"deploy/cloudformation/region.yaml\"",
            "name = \"gone\"\ntemplate = \"deploy/cloudformation/region.yaml\"",
        ),
    )
    .expect("write");
    let out = bed.run(&absent, &["plan", "--image", "x@sha256:00"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "absent.toml:{line}: cluster: stack gone does not exist"
        )),
        "{err}"
    );
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle in text")
}

/// The checked-in HA templates, driven by deployer itself: the replica stack in a second region,
/// then the primary region's stack, created through change sets on moto and checked through the
/// ECS and ELBv2 describe APIs. What moto skips (capacity provider, secrets, alarms, bucket
/// settings) is checked by the policy rules of `scripts/check-templates` instead.
#[tokio::test]
async fn the_ha_templates_come_up_through_deployer_on_moto() {
    let bed = Bed::start().await;
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cloudformation");
    // moto gives stacks made through change sets no outputs (measured), so the replica bucket's
    // name is written out here rather than taken from `${dp-replica.ReplicaBucketName}`.
    let extra = format!(
        "[infra]\npoll_interval = \"1s\"\n\n\
         [[infra.stacks]]\nname = \"dp-replica\"\ntemplate = \"{replica}\"\nregion = \"us-west-2\"\n\
         [infra.stacks.parameters]\nPrimaryRegion = \"us-east-1\"\n\n\
         [[infra.stacks]]\nname = \"dp-primary\"\ntemplate = \"{region}\"\nregion = \"us-east-1\"\n\
         [infra.stacks.parameters]\nAvailabilityZone1 = \"us-east-1a\"\nAvailabilityZone2 = \"us-east-1b\"\n\
         ReplicaRegion = \"us-west-2\"\nReplicaBucketName = \"prod-data-processor-files-123456789012-us-west-2\"\n",
        replica = templates.join("replica.yaml").display(),
        region = templates.join("region.yaml").display(),
    );
    let config = bed.config("deployer.toml", &extra);

    let out = bed.run(&config, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(0));
    let plan = stdout(&out);
    assert!(
        plan.contains("stack dp-replica (us-west-2): create"),
        "{plan}"
    );
    assert!(
        plan.contains("stack dp-primary (us-east-1): create"),
        "{plan}"
    );
    assert!(
        plan.contains("+ Database") && plan.contains("AWS::RDS::DBInstance"),
        "{plan}"
    );

    let out = bed.run(&config, &["infra", "up"]);
    assert_eq!(out.status.code(), Some(0));
    let report = stdout(&out);
    assert!(
        report.contains("stack dp-replica: CREATE_COMPLETE"),
        "{report}"
    );
    assert!(
        report.contains("stack dp-primary: CREATE_COMPLETE"),
        "{report}"
    );

    assert!(
        bed.clusters()
            .await
            .iter()
            .any(|c| c.ends_with("/prod-data-processor")),
        "no ECS cluster prod-data-processor"
    );
    let groups = bed.target_groups().await;
    assert_eq!(
        groups.len(),
        2,
        "service and alternate target groups: {groups:?}"
    );
    for g in &groups {
        assert_eq!(g.health_check_path(), Some("/healthz"), "{g:?}");
        assert_eq!(g.port(), Some(8080), "{g:?}");
    }
    let balancers = aws_sdk_elasticloadbalancingv2::Client::new(&bed.sdk)
        .describe_load_balancers()
        .send()
        .await
        .expect("describe load balancers");
    let alb = &balancers.load_balancers()[0];
    assert_eq!(
        alb.scheme().map(|s| s.as_str()),
        Some("internet-facing"),
        "{alb:?}"
    );
    assert_eq!(alb.availability_zones().len(), 2, "{alb:?}");

    let out = bed.run(&config, &["infra", "plan"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
}
