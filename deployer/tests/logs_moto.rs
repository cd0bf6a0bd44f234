//! `deployer logs` and `deployer run` as far as moto goes: its CloudWatch Logs stores and filters
//! events (by time and stream names; it ignores a stream name prefix, which deployer applies
//! itself), and its ECS starts EC2 tasks on registered container instances and moves them one
//! state per DescribeTasks from RUNNING to STOPPED, every container with exit code 0 (or keeps
//! them RUNNING until StopTask when told to).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::DesiredStatus;
use common::{Stage, image, millis_ago, stream_of};
use deployer::error::exit;

async fn released() -> Stage {
    let stage = Stage::start().await;
    let out = stage.run(&["release", "--image", &image(1)]);
    assert_eq!(out.status.code(), Some(0), "first release");
    stage
}

/// A task of revision 1 as a service deployment `id` would start it (startedBy = the id);
/// returns the task id.
async fn task_of_deployment(stage: &Stage, id: &str) -> String {
    let out = stage
        .ecs()
        .run_task()
        .cluster("prod-data-processor")
        .task_definition("data-processor-task:1")
        .started_by(id)
        .send()
        .await
        .expect("RunTask on moto");
    let arn = out.tasks()[0].task_arn().unwrap();
    arn.rsplit('/').next().unwrap().to_string()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn logs_since_and_deployment_read_only_the_asked_lines() {
    let stage = released().await;
    stage.add_container_instances(2).await;
    let a = task_of_deployment(&stage, "ecs-svc/1111").await;
    let b = task_of_deployment(&stage, "ecs-svc/2222").await;
    let now = millis_ago(Duration::ZERO);
    let half_an_hour_ago = millis_ago(Duration::from_secs(30 * 60));
    stage
        .put_log_lines(
            &stream_of(&a),
            &[(half_an_hour_ago, "a: old line"), (now, "a: recent line")],
        )
        .await;
    stage
        .put_log_lines(&stream_of(&b), &[(now + 1, "b: recent line")])
        .await;
    // Another container's stream in the same group.
    stage
        .put_log_lines("data-processor/sidecar/zzz", &[(now, "not ours")])
        .await;

    let out = stage.run(&["logs", "--since", "10m"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with(&format!(" {} a: recent line", &a[..8])),
        "{text}"
    );
    assert!(
        lines[1].ends_with(&format!(" {} b: recent line", &b[..8])),
        "{text}"
    );

    let out = stage.run(&["logs", "--since", "1h", "--deployment", "1111"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("a: old line"), "{text}");
    assert!(text.contains("a: recent line"), "{text}");
    assert!(!text.contains("b: "), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");

    let doc = stage.run_json(&["logs", "--since", "1h", "--deployment", "ecs-svc/2222"]);
    let lines = doc["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{doc}");
    assert_eq!(lines[0]["message"], "b: recent line");
    assert_eq!(doc["streams"][0], stream_of(&b));
}

/// Reads `child`'s stdout lines on a thread, into the returned channel.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    read_lines(child.stdout.take().expect("piped stdout"))
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Ctrl-C.
fn interrupt(child: &Child) {
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
}

/// Collects lines until one contains `needle` (or the deadline passes: then fails).
fn until(rx: &mpsc::Receiver<String>, needle: &str, got: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                got.push(line);
                if found {
                    return;
                }
            }
            Err(e) => panic!("no line with {needle:?} ({e}); got {got:?}"),
        }
    }
}

#[tokio::test]
async fn logs_follow_prints_each_new_line_once_and_stops_on_ctrl_c() {
    let stage = released().await;
    let now = millis_ago(Duration::ZERO);
    stage
        .put_log_lines(&stream_of("task1"), &[(now, "first")])
        .await;
    let mut child = stage.spawn(&["logs", "--follow", "--since", "5m"], &[]);
    let rx = lines_of(&mut child);
    let mut got = Vec::new();
    until(&rx, "first", &mut got);

    // Same millisecond as the last line, another stream, then a later one: the follower
    // re-reads the window and must print each of them once.
    stage
        .put_log_lines(&stream_of("task2"), &[(now, "second")])
        .await;
    stage
        .put_log_lines(&stream_of("task1"), &[(now + 5, "third")])
        .await;
    until(&rx, "third", &mut got);
    if !got.iter().any(|l| l.contains("second")) {
        until(&rx, "second", &mut got);
    }

    interrupt(&child);
    let status = child.wait().expect("deployer ends on SIGINT");
    assert_eq!(status.code(), Some(0), "Ctrl-C ends following cleanly");
    got.extend(rx.try_iter());
    for word in ["first", "second", "third"] {
        assert_eq!(
            got.iter()
                .filter(|l| l.ends_with(&format!(" {word}")))
                .count(),
            1,
            "{word} once: {got:?}"
        );
    }
    assert_eq!(got.len(), 3, "{got:?}");
}

/// The one task `deployer run` started, as moto describes it now.
async fn the_run_task(stage: &Stage, status: DesiredStatus) -> aws_sdk_ecs::types::Task {
    let mut tasks = stage.tasks_started_by("deployer/run", Some(status)).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks.remove(0)
}

#[tokio::test]
async fn run_on_moto_runs_the_service_revision_with_the_command_to_its_end() {
    let stage = released().await;
    stage.add_container_instances(1).await;

    let doc = stage.run_json(&["run", "--", "migrate", "--dry-run"]);
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["task_definition"], "data-processor-task:1");
    assert_eq!(doc["command"], serde_json::json!(["migrate", "--dry-run"]));

    let t = the_run_task(&stage, DesiredStatus::Running).await;
    assert_eq!(
        doc["task"],
        t.task_arn().unwrap().rsplit('/').next().unwrap()
    );
    assert!(
        t.task_definition_arn()
            .unwrap()
            .ends_with("data-processor-task:1"),
        "{t:?}"
    );
    assert_eq!(t.launch_type().map(|l| l.as_str()), Some("EC2"));
    let o = &t.overrides().unwrap().container_overrides()[0];
    assert_eq!(o.name(), Some("data-processor"));
    assert_eq!(o.command(), ["migrate", "--dry-run"]);
}

#[tokio::test]
async fn run_on_moto_stops_the_task_at_the_deadline_and_says_so() {
    let stage = released().await;
    stage.add_container_instances(1).await;
    stage.hold_tasks_running().await;

    let started = Instant::now();
    let out = stage.run(&["run", "--timeout", "1s", "--", "migrate"]);
    assert_eq!(out.status.code(), Some(exit::TIMED_OUT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not stop within 1s; deployer stopped it (StopTask)"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let t = the_run_task(&stage, DesiredStatus::Stopped).await;
    assert_eq!(t.last_status(), Some("STOPPED"));
    assert_eq!(t.stopped_reason(), Some("deployer: deadline passed"));
}

#[tokio::test]
async fn run_interrupted_stops_the_task_and_says_so() {
    let stage = released().await;
    stage.add_container_instances(1).await;
    stage.hold_tasks_running().await;

    let mut child = stage.spawn(&["run", "--", "migrate"], &[]);
    let stderr = read_lines(child.stderr.take().expect("piped stderr"));
    let mut got = Vec::new();
    until(&stderr, ": RUNNING", &mut got);
    interrupt(&child);
    let status = child.wait().expect("deployer ends on SIGINT");
    got.extend(stderr.iter());

    assert_eq!(status.code(), Some(exit::INTERRUPTED), "{got:?}");
    let t = the_run_task(&stage, DesiredStatus::Stopped).await;
    assert_eq!(t.stopped_reason(), Some("deployer: interrupted"));
    let id = t.task_arn().unwrap().rsplit('/').next().unwrap();
    assert!(
        got.iter()
            .any(|l| l == &format!("error: interrupted; deployer stopped task {id} (StopTask)")),
        "{got:?}"
    );
}
