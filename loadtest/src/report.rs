//! Report files. The HTML report is goose's (latency, throughput, users and errors over time,
//! as charts); when --watch-ecs ran, a section with the ECS task counts and alarm states over
//! time is added to it, drawn with the same chart library the page already loads. The JSON
//! report is our `Summary`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::ecs_watch::EcsReport;
use crate::summary::Summary;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write report {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read goose's HTML report {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the JSON report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Creates the parent folder of a report file, so goose and we can write it.
pub fn prepare(path: &Path) -> Result<(), ReportError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[tracing::instrument(skip(summary))]
pub fn write_json(path: &Path, summary: &Summary) -> Result<(), ReportError> {
    let text = serde_json::to_string_pretty(summary)?;
    std::fs::write(path, text + "\n").map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[tracing::instrument(skip(ecs))]
pub fn add_ecs_section(path: &Path, ecs: &EcsReport) -> Result<(), ReportError> {
    let html = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let section = ecs_section(ecs)?;
    let html = match html.rfind("</body>") {
        Some(at) => format!("{}{section}{}", &html[..at], &html[at..]),
        None => html + &section,
    };
    std::fs::write(path, html).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn ecs_section(ecs: &EcsReport) -> Result<String, ReportError> {
    let series = |pick: fn(&crate::ecs_watch::EcsSample) -> Option<i32>| {
        ecs.samples
            .iter()
            .map(|s| serde_json::json!([s.at_s, pick(s)]))
            .collect::<Vec<_>>()
    };
    let data = serde_json::json!({
        "desired": series(|s| s.desired),
        "running": series(|s| s.running),
        "pending": series(|s| s.pending),
    });
    // JSON inside <script>: "</" would end the script element early.
    let data = serde_json::to_string(&data)?.replace("</", "<\\/");
    let mut out = String::new();
    let _ = write!(
        out,
        r#"
<div class="ecs-watch" style="margin:2em">
<h2>ECS service {target}</h2>
<p>Tasks over time (seconds since the load test started), polled with DescribeServices;
alarm states from CloudWatch alarms named {prefix}*.</p>
<div id="ecs-tasks-chart" style="width:100%;height:320px"></div>
<script>
(function() {{
  if (typeof echarts === "undefined") return;
  var d = {data};
  var line = function(name, points) {{ return {{name: name, type: "line", step: "end", data: points}}; }};
  echarts.init(document.getElementById("ecs-tasks-chart")).setOption({{
    tooltip: {{trigger: "axis"}}, legend: {{}},
    xAxis: {{type: "value", name: "s"}}, yAxis: {{type: "value", name: "tasks", minInterval: 1}},
    series: [line("desired", d.desired), line("running", d.running), line("pending", d.pending)]
  }});
}})();
</script>
<table class="table"><thead><tr><th>s</th><th>desired</th><th>running</th><th>pending</th>
<th>deployments</th><th>alarms</th></tr></thead><tbody>
"#,
        target = escape(&format!("{}/{}", ecs.cluster, ecs.service)),
        prefix = escape(&ecs.alarm_prefix),
    );
    let count = |v: Option<i32>| v.map_or("?".to_string(), |n| n.to_string());
    for s in &ecs.samples {
        let alarms = match &s.error {
            Some(e) => format!("poll failed: {e}"),
            None => s
                .alarms
                .iter()
                .map(|(name, state)| format!("{name}={state}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(
            out,
            "<tr><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            s.at_s,
            count(s.desired),
            count(s.running),
            count(s.pending),
            s.deployments.map_or("?".to_string(), |n| n.to_string()),
            s.rollout
                .as_deref()
                .map(|r| format!(" ({})", escape(r)))
                .unwrap_or_default(),
            escape(&alarms),
        );
    }
    out.push_str("</tbody></table>\n</div>\n");
    Ok(out)
}

/// The five characters HTML text and attributes need escaped; a crate for this alone would
/// be more code to review than the function.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
