//! CloudWatch Logs of the service's containers (awslogs driver): where a task's lines are, and
//! reading them once or again and again through a cursor that never hands out an event twice.
//!
//! The awslogs driver writes container CONTAINER of task TASK_ID to stream
//! `PREFIX/CONTAINER/TASK_ID` of the group, in the region its options name.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use aws_sdk_ecs::types::{LogDriver, TaskDefinition};
use serde::Serialize;

use crate::aws::{AwsError, aws_err};
use crate::config::LogsSection;

/// Where one container's lines go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSource {
    pub group: String,
    /// `awslogs-region`; `None` = deployer's own region.
    pub region: Option<String>,
    pub stream_prefix: String,
    pub container: String,
}

/// FilterLogEvents takes at most 100 stream names per call.
const NAMES_PER_CALL: usize = 100;

/// Events can be ingested after events with a later timestamp (another stream, a slow
/// driver flush): a follower re-reads this far back and drops what it has already shown.
pub const LATE_ARRIVAL: Duration = Duration::from_secs(120);

impl LogSource {
    /// From the awslogs options of `container` in a task definition; `None` when it logs
    /// elsewhere or without a stream prefix (then its stream names are not predictable).
    pub fn of(td: &TaskDefinition, container: &str) -> Option<Self> {
        let c = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))?;
        let lc = c.log_configuration()?;
        if *lc.log_driver() != LogDriver::Awslogs {
            return None;
        }
        let o = lc.options()?;
        Some(Self {
            group: o.get("awslogs-group")?.clone(),
            region: o.get("awslogs-region").cloned(),
            stream_prefix: o.get("awslogs-stream-prefix")?.clone(),
            container: container.to_string(),
        })
    }

    /// From `[task.logs]`: what deployer writes into every revision it registers.
    pub fn from_config(logs: &LogsSection, container: &str) -> Self {
        Self {
            group: logs.group.clone(),
            region: Some(logs.region.clone()),
            stream_prefix: logs.stream_prefix.clone(),
            container: container.to_string(),
        }
    }

    /// The stream of one task.
    pub fn stream(&self, task_id: &str) -> String {
        format!("{}{task_id}", self.tasks_prefix())
    }

    /// `PREFIX/CONTAINER/`: the streams of every task of this container.
    pub fn tasks_prefix(&self) -> String {
        format!("{}/{}/", self.stream_prefix, self.container)
    }

    /// A client for the group's region, which may differ from the one deployer works in; it
    /// keeps the retry and timeout settings of `logs`.
    pub fn client(&self, logs: &LogsClient) -> LogsClient {
        match &self.region {
            Some(r) if logs.config().region().map(|x| x.as_ref()) != Some(r.as_str()) => {
                LogsClient::from_conf(
                    logs.config()
                        .to_builder()
                        .region(aws_sdk_cloudwatchlogs::config::Region::new(r.clone()))
                        .build(),
                )
            }
            _ => logs.clone(),
        }
    }
}

/// `arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID` -> `ID`.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LogLine {
    /// Milliseconds since the epoch (the time the container wrote it).
    pub timestamp: i64,
    pub stream: String,
    pub event_id: String,
    pub message: String,
}

impl LogLine {
    /// The task id: the last part of the stream name.
    pub fn task(&self) -> &str {
        task_id(&self.stream)
    }

    /// `2026-12-04T03:00:00.123Z 0123abcd message`: the first 8 characters of the task id
    /// tell the tasks apart.
    pub fn render(&self) -> String {
        let task: String = self.task().chars().take(8).collect();
        format!(
            "{} {task} {}",
            rfc3339_millis(self.timestamp),
            self.message.trim_end()
        )
    }

    fn key(&self) -> (i64, String, String) {
        (self.timestamp, self.stream.clone(), self.event_id.clone())
    }
}

fn rfc3339_millis(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the epoch, `ago` before now.
pub fn millis_ago(ago: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.saturating_sub(ago).as_millis()).unwrap_or(i64::MAX)
}

/// Which streams of the group to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streams {
    /// Every stream whose name starts with this.
    Prefix(String),
    /// Exactly these (e.g. the tasks of one deployment). Empty = nothing to read.
    Named(BTreeSet<String>),
}

impl Streams {
    fn admits(&self, stream: &str) -> bool {
        match self {
            Streams::Prefix(p) => stream.starts_with(p.as_str()),
            Streams::Named(names) => names.contains(stream),
        }
    }
}

/// The events of `streams` at or after `start_ms`, oldest first, every page.
///
/// The stream filter is also applied here: CloudWatch Logs honours `logStreamNamePrefix`, but
/// an emulator may not (moto 5.2 ignores it and answers with every stream of the group).
#[tracing::instrument(skip(client))]
pub async fn fetch(
    client: &LogsClient,
    group: &str,
    streams: &Streams,
    start_ms: i64,
) -> Result<Vec<LogLine>, AwsError> {
    let mut lines = Vec::new();
    let calls: Vec<Option<Vec<String>>> = match streams {
        Streams::Prefix(_) => vec![None],
        Streams::Named(names) if names.is_empty() => vec![],
        Streams::Named(names) => names
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .chunks(NAMES_PER_CALL)
            .map(|c| Some(c.to_vec()))
            .collect(),
    };
    for names in calls {
        let mut token: Option<String> = None;
        loop {
            let mut req = client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start_ms)
                .set_next_token(token.clone());
            req = match (&names, streams) {
                (Some(n), _) => req.set_log_stream_names(Some(n.clone())),
                (None, Streams::Prefix(p)) => req.log_stream_name_prefix(p),
                (None, Streams::Named(_)) => req,
            };
            let out = req.send().await.map_err(aws_err("logs:FilterLogEvents"))?;
            for e in out.events() {
                let stream = e.log_stream_name().unwrap_or_default();
                let timestamp = e.timestamp().unwrap_or_default();
                if !streams.admits(stream) || timestamp < start_ms {
                    continue;
                }
                lines.push(LogLine {
                    timestamp,
                    stream: stream.to_string(),
                    event_id: e.event_id().unwrap_or_default().to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                });
            }
            // A token equal to the one sent would loop forever; an empty page with a token
            // is normal (the service searched part of the streams) and worth following.
            match out.next_token() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    lines.sort();
    lines.dedup();
    Ok(lines)
}

/// Reading the same streams again and again: each read returns only events not returned
/// before, including ones ingested late with an older timestamp (up to [`LATE_ARRIVAL`]).
#[derive(Debug, Clone)]
pub struct Cursor {
    /// Never read before this.
    floor_ms: i64,
    /// Newest timestamp handed out.
    newest_ms: Option<i64>,
    /// Events handed out within `LATE_ARRIVAL` of the newest, which a re-read returns again.
    seen: BTreeSet<(i64, String, String)>,
}

impl Cursor {
    pub fn new(start_ms: i64) -> Self {
        Self {
            floor_ms: start_ms,
            newest_ms: None,
            seen: BTreeSet::new(),
        }
    }

    /// Where the next read starts.
    pub fn start_ms(&self) -> i64 {
        let window = i64::try_from(LATE_ARRIVAL.as_millis()).unwrap_or(i64::MAX);
        match self.newest_ms {
            Some(n) => n.saturating_sub(window).max(self.floor_ms),
            None => self.floor_ms,
        }
    }

    /// Keeps the events not handed out before, oldest first, and remembers them.
    pub fn advance(&mut self, events: Vec<LogLine>) -> Vec<LogLine> {
        let mut fresh: Vec<LogLine> = events
            .into_iter()
            .filter(|e| e.timestamp >= self.floor_ms && !self.seen.contains(&e.key()))
            .collect();
        fresh.sort();
        fresh.dedup();
        for e in &fresh {
            self.seen.insert(e.key());
            self.newest_ms = Some(self.newest_ms.map_or(e.timestamp, |n| n.max(e.timestamp)));
        }
        let start = self.start_ms();
        self.seen.retain(|(ts, _, _)| *ts >= start);
        fresh
    }

    /// Reads once and advances.
    pub async fn read(
        &mut self,
        client: &LogsClient,
        group: &str,
        streams: &Streams,
    ) -> Result<Vec<LogLine>, AwsError> {
        let events = fetch(client, group, streams, self.start_ms()).await?;
        Ok(self.advance(events))
    }
}

/// The last `n` lines of one task's stream (for failure reports), oldest first. A missing group
/// or stream is no lines.
#[tracing::instrument(skip(client, source))]
pub async fn last_lines(
    client: &LogsClient,
    source: &LogSource,
    task_id: &str,
    n: usize,
) -> Result<Vec<String>, AwsError> {
    let out = client
        .get_log_events()
        .log_group_name(&source.group)
        .log_stream_name(source.stream(task_id))
        .start_from_head(false)
        .limit(i32::try_from(n).unwrap_or(100))
        .send()
        .await
        .map_err(aws_err("logs:GetLogEvents"));
    match out {
        Ok(out) => {
            let mut lines: Vec<String> = out
                .events()
                .iter()
                .map(|e| e.message().unwrap_or_default().trim_end().to_string())
                .collect();
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
            Ok(lines)
        }
        Err(e) if e.is_code("ResourceNotFoundException") => Ok(vec![]),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: i64, id: &str) -> LogLine {
        LogLine {
            timestamp: ts,
            stream: "p/c/t1".into(),
            event_id: id.into(),
            message: format!("m{id}"),
        }
    }

    #[test]
    fn a_cursor_hands_out_each_event_once_even_when_read_again() {
        let mut c = Cursor::new(1_000);
        let first = c.advance(vec![line(1_000, "a"), line(2_000, "b"), line(500, "old")]);
        assert_eq!(first, vec![line(1_000, "a"), line(2_000, "b")]);
        // A re-read returns the same events plus a new one at the same millisecond and a late one.
        let second = c.advance(vec![
            line(1_000, "a"),
            line(2_000, "b"),
            line(2_000, "c"),
            line(1_500, "late"),
        ]);
        assert_eq!(second, vec![line(1_500, "late"), line(2_000, "c")]);
        assert_eq!(c.advance(vec![line(2_000, "c")]), vec![]);
        assert_eq!(c.start_ms(), 1_000, "never before the floor");
    }

    #[test]
    fn the_cursor_forgets_what_falls_out_of_the_window() {
        let mut c = Cursor::new(0);
        c.advance(vec![line(1, "a")]);
        let far = 1 + i64::try_from(LATE_ARRIVAL.as_millis()).unwrap() * 2;
        c.advance(vec![line(far, "b")]);
        assert!(c.start_ms() > 1);
        assert_eq!(c.seen.len(), 1);
    }

    #[test]
    fn stream_names_follow_the_awslogs_driver() {
        let s = LogSource {
            group: "/ecs/x".into(),
            region: None,
            stream_prefix: "data-processor".into(),
            container: "app".into(),
        };
        assert_eq!(s.stream("abc"), "data-processor/app/abc");
        assert_eq!(task_id("arn:aws:ecs:eu-west-1:1:task/cluster/abc"), "abc");
        assert_eq!(
            line(1_733_281_200_123, "a").render(),
            "2024-12-04T03:00:00.123Z t1 ma"
        );
    }
}
