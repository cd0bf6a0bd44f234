//! Rules a well-typed config must also satisfy. Each rule names the field to fix; AWS would
//! reject most of these too, but only after earlier steps changed things.

use std::time::Duration;

use super::model::*;

pub struct Violation {
    pub path: Vec<String>,
    pub message: String,
}

fn fail(path: &str, message: impl Into<String>) -> Result<(), Violation> {
    Err(Violation {
        path: path.split('.').map(String::from).collect(),
        message: message.into(),
    })
}

pub fn validate(c: &Config) -> Result<(), Violation> {
    not_empty("cluster", &c.cluster)?;
    not_empty("registry.repository", &c.registry.repository)?;
    if c.registry.keep_images == 0 {
        fail("registry.keep_images", "must be at least 1")?;
    }
    if c.registry.username_env.is_some() != c.registry.password_env.is_some() {
        fail(
            "registry.password_env",
            "set both registry.username_env and registry.password_env, or neither",
        )?;
    }
    if c.registry.url.is_none() && c.registry.insecure {
        fail(
            "registry.insecure",
            "only applies with registry.url (ECR is always HTTPS)",
        )?;
    }
    aws(&c.aws)?;
    task(c)?;
    not_embedded(&c.task)?;
    service(c)?;
    deployment(&c.deployment)?;
    if c.release.migrate && c.release.migrate_timeout.is_zero() {
        fail("release.migrate_timeout", "must be longer than 0s")?;
    }
    if let Some(a) = &c.autoscaling {
        autoscaling(a, c.service.desired_count)?;
    }
    if let Some(i) = &c.infra {
        infra(i)?;
    }
    Ok(())
}

/// Without shared storage and a shared database the service starts in its single-node embedded
/// mode (SQLite and a folder on the task's own disk): every replica would hold its own users and
/// files, and lose them when it stops. ECS would report that deployment healthy.
fn not_embedded(t: &TaskSection) -> Result<(), Violation> {
    let value = |name: &str| t.environment.get(name).map(String::as_str);
    if !t.secrets.contains_key("STORAGE_URL") {
        match value("STORAGE_URL") {
            Some(url) if url.starts_with("s3://") => {}
            Some(url) => fail(
                "task.environment.STORAGE_URL",
                format!(
                    "is {url:?}, a folder on the task's own disk; replicas would not share files: set s3://BUCKET/PREFIX"
                ),
            )?,
            None => fail(
                "task.environment",
                "has no STORAGE_URL: the service would keep files on the task's own disk (embedded mode); set STORAGE_URL = \"s3://BUCKET/PREFIX\"",
            )?,
        }
    }
    if !t.secrets.contains_key("DATABASE_URL") {
        match value("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                fail(
                    "task.environment.DATABASE_URL",
                    "holds the database password in plain text; move it to task.secrets (a Secrets Manager ARN)",
                )?
            }
            Some(_) => fail(
                "task.environment.DATABASE_URL",
                "is not a postgres:// URL: replicas would each use their own SQLite file; put a Postgres URL in a secret under task.secrets",
            )?,
            None => fail(
                "task.secrets",
                "has no DATABASE_URL: the service would use a SQLite file on the task's own disk (embedded mode); add DATABASE_URL = \"arn:aws:secretsmanager:...\"",
            )?,
        }
    }
    Ok(())
}

fn not_empty(path: &str, value: &str) -> Result<(), Violation> {
    if value.trim().is_empty() {
        fail(path, "must not be empty")?;
    }
    Ok(())
}

fn arn(path: &str, value: &str, service: &str, what: &str) -> Result<(), Violation> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2] != service {
        fail(
            path,
            format!("must be {what} ARN (arn:aws:{service}:...), got {value:?}"),
        )?;
    }
    Ok(())
}

fn task(c: &Config) -> Result<(), Violation> {
    let t = &c.task;
    not_empty("task.family", &t.family)?;
    not_empty("task.container.name", &t.container.name)?;
    if let Some(r) = &t.execution_role_arn {
        arn("task.execution_role_arn", r, "iam", "an IAM role")?;
    }
    if let Some(r) = &t.task_role_arn {
        arn("task.task_role_arn", r, "iam", "an IAM role")?;
    }
    if !t.secrets.is_empty() && t.execution_role_arn.is_none() {
        fail(
            "task.execution_role_arn",
            "is required when task.secrets is set (ECS reads secrets with the execution role)",
        )?;
    }
    for (name, value) in &t.secrets {
        let path = format!("task.secrets.{name}");
        let is_secret = value.starts_with("arn:")
            && (value.contains(":ssm:") || value.contains(":secretsmanager:"));
        if !is_secret {
            fail(
                &path,
                // The value is not echoed: it may be the secret itself, pasted by mistake.
                "must be an SSM parameter or Secrets Manager ARN (arn:aws:ssm:... or arn:aws:secretsmanager:...)",
            )?;
        }
    }
    for name in t.environment.keys() {
        if t.secrets.contains_key(name) {
            fail(
                &format!("task.environment.{name}"),
                "is also set in task.secrets; keep one",
            )?;
        }
    }
    match t.launch_type {
        LaunchType::Fargate => {
            if t.network_mode != NetworkMode::Awsvpc {
                fail(
                    "task.network_mode",
                    "must be \"awsvpc\" with launch_type FARGATE",
                )?;
            }
            if t.cpu.is_none() {
                fail(
                    "task.cpu",
                    "is required with launch_type FARGATE (e.g. 256)",
                )?;
            }
            if t.memory.is_none() {
                fail(
                    "task.memory",
                    "is required with launch_type FARGATE (e.g. 512)",
                )?;
            }
        }
        LaunchType::Ec2 => {
            if t.memory.is_none()
                && t.container.memory.is_none()
                && t.container.memory_reservation.is_none()
            {
                fail(
                    "task.container.memory_reservation",
                    "set task.container.memory_reservation (or memory) for EC2 tasks",
                )?;
            }
        }
    }
    if let (Some(hard), Some(soft)) = (t.container.memory, t.container.memory_reservation)
        && soft > hard
    {
        fail(
            "task.container.memory_reservation",
            format!("must be <= task.container.memory ({hard}), got {soft}"),
        )?;
    }
    if t.container.port == 0 {
        fail("task.container.port", "must be a port number (1-65535)")?;
    }
    if t.network_mode == NetworkMode::Awsvpc
        && t.container.host_port != 0
        && t.container.host_port != t.container.port
    {
        fail(
            "task.container.host_port",
            "must be 0 or equal to task.container.port in awsvpc mode",
        )?;
    }
    if let Some(logs) = &t.logs {
        not_empty("task.logs.group", &logs.group)?;
        not_empty("task.logs.region", &logs.region)?;
        not_empty("task.logs.stream_prefix", &logs.stream_prefix)?;
    }
    if let Some(hc) = &t.health_check {
        if hc.command.is_empty() {
            fail(
                "task.health_check.command",
                "must name a program, e.g. [\"data-processor\", \"healthcheck\"]",
            )?;
        }
        within("task.health_check.interval", hc.interval, 5, 300)?;
        within("task.health_check.timeout", hc.timeout, 2, 120)?;
        within("task.health_check.start_period", hc.start_period, 0, 300)?;
        if !(1..=10).contains(&hc.retries) {
            fail(
                "task.health_check.retries",
                format!("must be 1-10, got {}", hc.retries),
            )?;
        }
        if hc.timeout >= hc.interval {
            fail(
                "task.health_check.timeout",
                "must be shorter than task.health_check.interval",
            )?;
        }
    }
    Ok(())
}

fn within(path: &str, d: Duration, min_s: u64, max_s: u64) -> Result<(), Violation> {
    if d.subsec_nanos() != 0 || d.as_secs() < min_s || d.as_secs() > max_s {
        fail(
            path,
            format!("must be whole seconds between {min_s}s and {max_s}s, got {d:?}"),
        )?;
    }
    Ok(())
}

fn service(c: &Config) -> Result<(), Violation> {
    let s = &c.service;
    not_empty("service.name", &s.name)?;
    if let Some(tg) = &s.target_group_arn {
        if !tg.contains(":targetgroup/") {
            fail(
                "service.target_group_arn",
                format!("must be a target group ARN (…:targetgroup/NAME/ID), got {tg:?}"),
            )?;
        }
        arn(
            "service.target_group_arn",
            tg,
            "elasticloadbalancing",
            "a target group",
        )?;
    }
    if s.health_check_grace_period.is_some() && s.target_group_arn.is_none() {
        fail(
            "service.health_check_grace_period",
            "only applies with service.target_group_arn",
        )?;
    }
    if let Some(g) = s.health_check_grace_period {
        within("service.health_check_grace_period", g, 0, 2_147_483_647)?;
    }
    let awsvpc = c.task.network_mode == NetworkMode::Awsvpc;
    match (&s.network, awsvpc) {
        (None, true) => fail(
            "service.network",
            "is required with task.network_mode \"awsvpc\" (subnets, security_groups)",
        )?,
        (Some(_), false) => fail(
            "service.network",
            "only applies with task.network_mode \"awsvpc\"",
        )?,
        (Some(n), true) if n.subnets.is_empty() => {
            fail("service.network.subnets", "must list at least one subnet")?
        }
        _ => {}
    }
    if c.task.launch_type == LaunchType::Fargate && s.placement != Placement::None {
        fail(
            "service.placement",
            "must be \"none\" with launch_type FARGATE (Fargate spreads by AZ itself)",
        )?;
    }
    Ok(())
}

pub fn aws(a: &AwsSection) -> Result<(), Violation> {
    if a.operation_timeout.is_zero() {
        fail("aws.operation_timeout", "must be longer than 0s")?;
    }
    if a.attempt_timeout.is_zero() || a.attempt_timeout > a.operation_timeout {
        fail(
            "aws.attempt_timeout",
            "must be longer than 0s and at most aws.operation_timeout",
        )?;
    }
    if a.connect_timeout.is_zero() || a.connect_timeout > a.attempt_timeout {
        fail(
            "aws.connect_timeout",
            "must be longer than 0s and at most aws.attempt_timeout",
        )?;
    }
    Ok(())
}

fn deployment(d: &DeploymentSection) -> Result<(), Violation> {
    if d.minimum_healthy_percent > 100 {
        fail("deployment.minimum_healthy_percent", "must be 0-100")?;
    }
    if d.maximum_percent < 100 {
        fail("deployment.maximum_percent", "must be at least 100")?;
    }
    if d.rollback && !d.circuit_breaker {
        fail(
            "deployment.rollback",
            "needs deployment.circuit_breaker = true",
        )?;
    }
    if d.timeout.is_zero() {
        fail("deployment.timeout", "must be longer than 0s")?;
    }
    if d.poll_interval.is_zero() || d.poll_interval > d.timeout {
        fail(
            "deployment.poll_interval",
            "must be longer than 0s and at most deployment.timeout",
        )?;
    }
    Ok(())
}

fn autoscaling(a: &AutoscalingSection, desired: u32) -> Result<(), Violation> {
    if a.min == 0 {
        fail("autoscaling.min", "must be at least 1")?;
    }
    if desired < a.min {
        fail(
            "service.desired_count",
            format!("must be >= autoscaling.min ({}), got {desired}", a.min),
        )?;
    }
    if a.max < desired {
        fail(
            "autoscaling.max",
            format!(
                "must be >= service.desired_count ({desired}), got {}",
                a.max
            ),
        )?;
    }
    percent(
        "autoscaling.scale_out.cpu_at_or_above",
        a.scale_out.cpu_at_or_above,
    )?;
    percent("autoscaling.scale_in.cpu_below", a.scale_in.cpu_below)?;
    if a.scale_in.cpu_below >= a.scale_out.cpu_at_or_above {
        fail(
            "autoscaling.scale_in.cpu_below",
            format!(
                "must be below autoscaling.scale_out.cpu_at_or_above ({}), or the service flaps",
                a.scale_out.cpu_at_or_above
            ),
        )?;
    }
    minutes("autoscaling.scale_out.for", a.scale_out.sustained)?;
    minutes("autoscaling.scale_in.for", a.scale_in.sustained)?;
    if a.scale_out.add == 0 {
        fail("autoscaling.scale_out.add", "must be at least 1")?;
    }
    if a.scale_in.remove == 0 {
        fail("autoscaling.scale_in.remove", "must be at least 1")?;
    }
    Ok(())
}

fn percent(path: &str, v: f64) -> Result<(), Violation> {
    if !(0.0..=100.0).contains(&v) {
        fail(path, format!("must be a percentage 0-100, got {v}"))?;
    }
    Ok(())
}

/// Alarms evaluate one-minute periods; CloudWatch allows at most one day of them.
fn minutes(path: &str, d: Duration) -> Result<(), Violation> {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 || !s.is_multiple_of(60) || s > 86_400 {
        fail(
            path,
            format!(
                "must be whole minutes between 1m and 24h, got {}",
                humantime::format_duration(d)
            ),
        )?;
    }
    Ok(())
}

/// `[infra]` on its own: `deployer infra` reads it before the stacks the rest refers to exist.
pub fn infra(infra: &InfraSection) -> Result<(), Violation> {
    if infra.stacks.is_empty() {
        fail(
            "infra.stacks",
            "lists no stack; add [[infra.stacks]] with name and template",
        )?;
    }
    within("infra.timeout", infra.timeout, 60, 6 * 3600)?;
    within("infra.poll_interval", infra.poll_interval, 1, 300)?;
    let mut earlier: Vec<&str> = Vec::new();
    for (i, stack) in infra.stacks.iter().enumerate() {
        let at = |field: &str| format!("infra.stacks.{i}.{field}");
        let valid = stack.name.len() <= 128
            && stack.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && stack
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            fail(
                &at("name"),
                format!(
                    "{:?} is not a CloudFormation stack name (a letter, then letters, digits and -, at most 128)",
                    stack.name
                ),
            )?;
        }
        if stack.name == SERVICE_STACK_ALIAS {
            fail(
                &at("name"),
                "\"infra\" is reserved: ${infra.OUTPUT} names the service stack's outputs",
            )?;
        }
        if earlier.contains(&stack.name.as_str()) {
            fail(&at("name"), format!("stack {} is listed twice", stack.name))?;
        }
        for (key, value) in &stack.parameters {
            let path = format!("infra.stacks.{i}.parameters.{key}");
            let references =
                super::refs::parse(value).or_else(|m| fail(&path, m).map(|_| vec![]))?;
            for r in references {
                if !earlier.contains(&r.stack.as_str()) {
                    fail(
                        &path,
                        format!(
                            "refers to stack {}, which is not listed before {} in [[infra.stacks]]",
                            r.stack, stack.name
                        ),
                    )?;
                }
            }
        }
        earlier.push(&stack.name);
    }
    if let Some(name) = &infra.service_stack
        && !earlier.contains(&name.as_str())
    {
        fail(
            "infra.service_stack",
            format!(
                "names {name}, which is not in [[infra.stacks]] ({})",
                earlier.join(", ")
            ),
        )?;
    }
    Ok(())
}
