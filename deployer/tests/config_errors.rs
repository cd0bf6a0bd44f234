//! The checked-in config loads, overrides apply, and every kind of mistake is reported on one
//! line naming the file, the line and the field.

mod common;

use std::path::{Path, PathBuf};

use deployer::config::{self, Config, ConfigError};

fn checked_in() -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deployer.toml");
    let text = std::fs::read_to_string(&path).expect("deploy/deployer.toml");
    (path, text)
}

/// Loads `text` as deployer does, its `${infra.OUTPUT}` taking the stand-in stack outputs.
fn parse(text: &str, env: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    config::draft(
        Path::new("deployer.toml"),
        text,
        env,
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )?
    .resolve(&common::stand_in_outputs())
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[test]
fn checked_in_config_has_the_classic_setup() {
    let (_, text) = checked_in();
    let c = parse(&text, None, &[]).expect("valid");
    assert_eq!(c.cluster, "prod-data-processor");
    assert_eq!(
        c.task.environment["STORAGE_URL"],
        "s3://prod-data-processor-files/data"
    );
    assert_eq!(
        c.task.secrets["DATABASE_PASSWORD"],
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123:password::"
    );
    let infra = c.infra.as_ref().expect("[infra]");
    let stacks: Vec<(&str, Option<&str>)> = infra
        .stacks
        .iter()
        .map(|s| (s.name.as_str(), s.region.as_deref()))
        .collect();
    assert_eq!(
        stacks,
        [
            ("data-processor-replica", Some("eu-central-1")),
            ("data-processor", None)
        ]
    );
    assert_eq!(infra.service_stack_name(), Some("data-processor"));
    for stack in &infra.stacks {
        let template = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(&stack.template);
        assert!(template.is_file(), "{} is not a file", template.display());
    }
    assert_eq!(c.registry.repository, "data-processor");
    assert_eq!(c.task.family, "data-processor-task");
    assert_eq!(c.task.container.port, 8080);
    assert_eq!(c.task.container.host_port, 0);
    assert_eq!(c.service.name, "data-processor-service");
    assert_eq!(c.service.desired_count, 4);
    let a = c.autoscaling.expect("autoscaling");
    assert_eq!((a.min, a.max), (4, 20));
    assert_eq!(a.scale_out.cpu_at_or_above, 70.0);
    assert_eq!(a.scale_out.sustained.as_secs(), 300);
    assert_eq!(a.scale_out.add, 2);
    assert_eq!(a.scale_in.cpu_below, 30.0);
    assert_eq!(a.scale_in.sustained.as_secs(), 1800);
    assert_eq!(a.scale_in.remove, 2);
    assert!(c.deployment.circuit_breaker && c.deployment.rollback);
}

#[test]
fn env_section_and_variables_override_the_file() {
    let (_, text) = checked_in();
    let c = parse(&text, Some("staging"), &[]).unwrap();
    // Staging lists its own stacks, so ${infra.OUTPUT} names staging's service stack.
    let infra = c.infra.as_ref().expect("[infra]");
    assert_eq!(infra.service_stack_name(), Some("data-processor-staging"));
    assert_eq!(infra.stacks.len(), 2);
    assert_eq!(c.service.name, "data-processor-service-staging");
    assert_eq!(c.service.desired_count, 2);
    assert_eq!(c.autoscaling.as_ref().unwrap().max, 4);
    // Untouched fields keep the file's values.
    assert_eq!(c.task.family, "data-processor-task");

    let c = parse(
        &text,
        Some("staging"),
        &[
            ("DEPLOYER__AUTOSCALING__MAX", "6"),
            ("DEPLOYER__REGISTRY__URL", "127.0.0.1:5000"),
        ],
    )
    .unwrap();
    assert_eq!(c.autoscaling.unwrap().max, 6);
    assert_eq!(c.registry.url.as_deref(), Some("127.0.0.1:5000"));
}

#[test]
fn unknown_field_names_its_line() {
    let (_, text) = checked_in();
    let bad = text.replace("desired_count = 4", "desired_count = 4\ndesird_count = 5");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "service.desird_count");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "desird_count"))
    );
    assert!(e.message.contains("unknown field"), "{e}");
    assert_eq!(e.to_string().lines().count(), 1, "one line: {e}");
}

#[test]
fn wrong_type_names_its_line() {
    let (_, text) = checked_in();
    let bad = text.replace("port = 8080", "port = \"eighty\"");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.container.port");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "\"eighty\""))
    );
}

#[test]
fn bad_duration_names_its_line() {
    let (_, text) = checked_in();
    let bad = text.replace("timeout = \"20m\"", "timeout = \"twenty minutes\"");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "deployment.timeout");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "twenty minutes"))
    );
}

#[test]
fn syntax_error_names_its_line() {
    let (_, text) = checked_in();
    let bad = text.replace(
        "family = \"data-processor-task\"",
        "family = \"data-processor-task",
    );
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "syntax");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "family = "))
    );
}

#[test]
fn min_above_desired_is_refused_at_the_line() {
    let (_, text) = checked_in();
    let bad = text.replace("min = 4", "min = 5");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "service.desired_count");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "desired_count = 4"))
    );
    assert!(e.message.contains("autoscaling.min (5)"), "{e}");

    let bad = text.replace("max = 20", "max = 3");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "autoscaling.max");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "max = 3"))
    );
}

#[test]
fn errors_in_an_env_section_point_into_it() {
    let (_, text) = checked_in();
    let bad = text.replace("max = 4", "max = 1");
    let e = parse(&bad, Some("staging"), &[]).unwrap_err();
    assert_eq!(e.field, "autoscaling.max");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "max = 1"))
    );
}

#[test]
fn errors_from_variables_name_the_variable() {
    let (_, text) = checked_in();
    let e = parse(&text, None, &[("DEPLOYER__AUTOSCALING__MAX", "many")]).unwrap_err();
    assert_eq!(e.origin, "environment variable DEPLOYER__AUTOSCALING__MAX");
    assert_eq!(e.field, "autoscaling.max");
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let (_, text) = checked_in();
    let e = parse(&text, Some("prod2"), &[]).unwrap_err();
    assert!(e.message.contains("staging"), "{e}");
}

#[test]
fn fargate_is_expressible_and_checked() {
    let (_, text) = checked_in();
    let fargate = text
        .replace("launch_type = \"EC2\"", "launch_type = \"FARGATE\"")
        .replace("network_mode = \"bridge\"", "network_mode = \"awsvpc\"")
        .replace("# cpu = 256", "cpu = 256")
        .replace("# memory = 512", "memory = 512")
        .replace("placement = \"az-then-instance\"", "placement = \"none\"")
        .replace("# [service.network]", "[service.network]")
        .replace("# subnets =", "subnets =")
        .replace("# security_groups =", "security_groups =")
        .replace("# assign_public_ip =", "assign_public_ip =");
    let c = parse(&fargate, None, &[]).expect("fargate config");
    assert_eq!(c.service.network.unwrap().subnets.len(), 2);

    let no_cpu = fargate.replace("\ncpu = 256", "\n");
    let e = parse(&no_cpu, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.cpu");
}

#[test]
fn secrets_must_be_arns() {
    let (_, text) = checked_in();
    let bad = text.replace(
        "DATABASE_URL = \"${infra.DatabaseUrlSecretArn}\"",
        "DATABASE_URL = \"postgres://user:pw@db/x\"",
    );
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.secrets.DATABASE_URL");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "DATABASE_URL"))
    );
}

#[test]
fn a_task_that_would_start_in_embedded_mode_is_refused_naming_what_is_missing() {
    let (_, text) = checked_in();
    // No STORAGE_URL: every replica would keep files on its own disk.
    let no_storage = text.replace("STORAGE_URL = \"${infra.StorageUrl}\"\n", "");
    let e = parse(&no_storage, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.environment");
    assert!(e.message.contains("has no STORAGE_URL"), "{e}");
    assert!(e.message.contains("s3://BUCKET/PREFIX"), "{e}");

    // A folder is not shared storage either; the line is named.
    let folder = text.replace("\"${infra.StorageUrl}\"", "\"/var/lib/data\"");
    let e = parse(&folder, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.environment.STORAGE_URL");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&folder, "STORAGE_URL = "))
    );

    // No DATABASE_URL secret: SQLite on the task's disk.
    let no_database = text.replace("DATABASE_URL = \"${infra.DatabaseUrlSecretArn}\"\n", "");
    let e = parse(&no_database, None, &[]).unwrap_err();
    assert_eq!(e.field, "task.secrets");
    assert!(e.message.contains("has no DATABASE_URL"), "{e}");

    // Overrides count: an environment variable can also take the setting away.
    let e = parse(
        &text,
        None,
        &[("DEPLOYER__TASK__ENVIRONMENT__STORAGE_URL", "./data")],
    )
    .unwrap_err();
    assert_eq!(
        e.origin,
        "environment variable DEPLOYER__TASK__ENVIRONMENT__STORAGE_URL"
    );
}

#[test]
fn infra_stacks_may_only_use_outputs_of_stacks_listed_before_them() {
    let (_, text) = checked_in();
    let infra = "\n[infra]\n\
        [[infra.stacks]]\nname = \"web\"\ntemplate = \"web.yaml\"\n\
        [infra.stacks.parameters]\nBucket = \"${replica.BucketArn}\"\n\
        [[infra.stacks]]\nname = \"replica\"\ntemplate = \"replica.yaml\"\n";
    let (main, envs) = text.split_at(text.find("\n[env.").expect("env sections"));
    // In place of the example's own [infra].
    let main = &main[..main.find("\n[infra]\n").expect("[infra] in the example")];
    let bad = format!("{main}{infra}{envs}");
    let e = parse(&bad, None, &[]).unwrap_err();
    assert_eq!(e.field, "infra.stacks.0.parameters.Bucket");
    assert_eq!(
        e.origin,
        format!("deployer.toml:{}", line_of(&bad, "Bucket = "))
    );
    assert!(
        e.message
            .contains("refers to stack replica, which is not listed before web"),
        "{e}"
    );

    let twice = bad
        .replace("Bucket = \"${replica.BucketArn}\"", "")
        .replace("name = \"replica\"", "name = \"web\"");
    let e = parse(&twice, None, &[]).unwrap_err();
    assert!(e.message.contains("stack web is listed twice"), "{e}");
}

#[test]
fn a_reference_without_the_outputs_read_is_an_error_at_its_line() {
    let (path, text) = checked_in();
    // Loading without reading the stacks: the first reference is named, at its line.
    let e = config::parse(&path, &text, None, []).unwrap_err();
    assert_eq!(e.field, "cluster");
    assert_eq!(
        e.origin,
        format!("{}:{}", path.display(), line_of(&text, "cluster = "))
    );
    assert!(e.message.contains("${infra.ClusterName}"), "{e}");
    let malformed = text.replace("\"${infra.ClusterName}\"", "\"${infra}\"");
    let e = parse(&malformed, None, &[]).unwrap_err();
    assert!(e.message.contains("write ${STACK.OUTPUT}"), "{e}");
}

#[test]
fn a_reference_to_a_comma_separated_output_in_a_list_becomes_its_items() {
    let (_, text) = checked_in();
    let fargate = text
        .replace("# [service.network]", "[service.network]")
        .replace("# subnets =", "subnets =")
        .replace("# security_groups =", "security_groups =")
        .replace("launch_type = \"EC2\"", "launch_type = \"FARGATE\"")
        .replace("network_mode = \"bridge\"", "network_mode = \"awsvpc\"")
        .replace("# cpu = 256", "cpu = 256")
        .replace("# memory = 512", "memory = 512")
        .replace("placement = \"az-then-instance\"", "placement = \"none\"");
    let c = parse(&fargate, None, &[]).expect("fargate config");
    let network = c.service.network.expect("network");
    assert_eq!(
        network.subnets,
        ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    );
    assert_eq!(network.security_groups, ["sg-0123456789abcdef0"]);
}
