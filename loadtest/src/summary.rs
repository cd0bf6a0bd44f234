//! The end-of-run summary, built from goose's metrics: per endpoint requests/s and latency
//! percentiles, errors grouped by kind. Printed as a table and written as the JSON report,
//! whose shape is ours (stable for automation) rather than goose's internal one.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use goose::metrics::{
    GooseErrorMetricAggregate, GooseRequestMetricAggregate, GooseRequestMetricTimingData,
};
use goose::prelude::*;
use serde::Serialize;

use crate::ecs_watch::EcsReport;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub url: String,
    pub scenario: String,
    pub users: usize,
    pub started_at: String,
    /// Seconds of load the metrics cover (ramp-up included).
    pub duration_s: f64,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_s: f64,
    pub endpoints: Vec<EndpointStats>,
    /// Profile jobs, measured from start to outcome (not HTTP requests).
    pub jobs: Option<EndpointStats>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub errors: Vec<ErrorStats>,
    pub ecs: Option<EcsReport>,
}

#[derive(Debug, Serialize)]
pub struct EndpointStats {
    pub endpoint: String,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_s: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub status_codes: BTreeMap<u16, usize>,
}

#[derive(Debug, Serialize)]
pub struct ErrorStats {
    pub kind: String,
    pub endpoint: String,
    pub error: String,
    pub count: u64,
}

pub struct RunInfo {
    pub url: String,
    pub scenario: String,
    pub users: usize,
    pub started_at: String,
}

pub fn build(run: RunInfo, metrics: &GooseMetrics, ecs: Option<EcsReport>) -> Summary {
    // Goose counts whole seconds; never divide by zero on a very short run.
    let duration_s = (metrics.duration as f64).max(1.0);
    let mut endpoints = Vec::new();
    let mut jobs = None;
    for aggregate in metrics.requests.values() {
        let stats = endpoint_stats(aggregate, duration_s);
        if aggregate.method == GooseMethod::Custom {
            jobs = Some(stats);
        } else {
            endpoints.push(stats);
        }
    }
    endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    let errors: Vec<ErrorStats> = metrics.errors.values().map(error_stats).collect();
    let mut errors_by_kind = BTreeMap::new();
    for e in &errors {
        *errors_by_kind.entry(e.kind.clone()).or_insert(0) += e.count;
    }
    let requests = endpoints.iter().map(|e| e.requests).sum();
    let failures = endpoints.iter().map(|e| e.failures).sum();
    Summary {
        url: run.url,
        scenario: run.scenario,
        users: run.users,
        started_at: run.started_at,
        duration_s,
        requests,
        failures,
        requests_per_s: round2(requests as f64 / duration_s),
        endpoints,
        jobs,
        errors_by_kind,
        errors,
        ecs,
    }
}

fn endpoint_stats(a: &GooseRequestMetricAggregate, duration_s: f64) -> EndpointStats {
    let t: &GooseRequestMetricTimingData = &a.raw_data;
    let ms = |us: u64| round2(us as f64 / 1000.0);
    let requests = (a.success_count + a.fail_count) as u64;
    EndpointStats {
        endpoint: format!("{} {}", a.method_label(), a.path),
        requests,
        failures: a.fail_count as u64,
        requests_per_s: round2(requests as f64 / duration_s),
        mean_ms: if t.counter == 0 {
            0.0
        } else {
            round2(t.average_ms())
        },
        p50_ms: ms(t.percentile_us(0.50)),
        p90_ms: ms(t.percentile_us(0.90)),
        p99_ms: ms(t.percentile_us(0.99)),
        max_ms: ms(t.maximum_time_us),
        status_codes: a.status_code_counts.iter().map(|(k, v)| (*k, *v)).collect(),
    }
}

fn error_stats(e: &GooseErrorMetricAggregate) -> ErrorStats {
    ErrorStats {
        kind: error_kind(&e.error),
        endpoint: format!("{} {}", e.method_label(), e.name),
        error: e.error.clone(),
        count: e.occurrences as u64,
    }
}

/// Groups goose's error strings: "503 Service Unavailable: NAME" -> "http 503";
/// our checks "check: KIND: detail" -> KIND; transport errors by what failed.
pub fn error_kind(error: &str) -> String {
    let code: String = error.chars().take_while(char::is_ascii_digit).collect();
    if code.len() == 3 {
        return format!("http {code}");
    }
    if let Some(rest) = error.strip_prefix("check: ") {
        return rest.split(':').next().unwrap_or(rest).trim().to_string();
    }
    let lower = error.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        "timeout".into()
    } else if lower.starts_with("error sending request") {
        "connection".into()
    } else if lower.contains("body") || lower.contains("decoding") {
        "body".into()
    } else {
        "other".into()
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Summary {
    /// The human-readable end-of-run table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{} scenario, {} users, {:.0} s against {}: {} requests ({:.1}/s), {} failures",
            self.scenario,
            self.users,
            self.duration_s,
            self.url,
            self.requests,
            self.requests_per_s,
            self.failures
        );
        let _ = writeln!(
            out,
            "\n{:<34} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "endpoint", "requests", "fails", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for e in self.endpoints.iter().chain(self.jobs.iter()) {
            let _ = writeln!(
                out,
                "{:<34} {:>8} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                e.endpoint,
                e.requests,
                e.failures,
                e.requests_per_s,
                e.p50_ms,
                e.p90_ms,
                e.p99_ms,
                e.max_ms
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors: none");
        } else {
            let _ = writeln!(out, "\nerrors by kind:");
            for (kind, count) in &self.errors_by_kind {
                let _ = writeln!(out, "  {kind:<24} {count}");
            }
            let _ = writeln!(out, "errors:");
            for e in &self.errors {
                let _ = writeln!(out, "  {:>6} x {} - {}", e.count, e.endpoint, e.error);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::error_kind;

    #[test]
    fn errors_group_by_kind() {
        assert_eq!(
            error_kind("503 Service Unavailable: GET /api/v1/files"),
            "http 503"
        );
        assert_eq!(
            error_kind("check: sha256 mismatch: downloaded a, uploaded b"),
            "sha256 mismatch"
        );
        assert_eq!(
            error_kind("check: job timeout: still \"running\""),
            "job timeout"
        );
        assert_eq!(
            error_kind("error sending request GET /: connection refused"),
            "connection"
        );
        assert_eq!(error_kind("operation timed out"), "timeout");
    }
}
