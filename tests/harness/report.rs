//! One printed row per scenario (the README's HA summary table is made of these rows).

use std::io::Write;
use std::time::Duration;

use crate::load::LoadReport;

pub struct Row {
    pub scenario: &'static str,
    pub requests: usize,
    pub failures: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub recovery: Option<Duration>,
    pub note: String,
}

impl Row {
    pub fn from_load(scenario: &'static str, load: &LoadReport) -> Self {
        Self {
            scenario,
            requests: load.requests(),
            failures: load.failures().len(),
            p50: load.percentile(50.0),
            p99: load.percentile(99.0),
            recovery: None,
            note: String::new(),
        }
    }

    pub fn recovery(mut self, recovery: Duration) -> Self {
        self.recovery = Some(recovery);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// Prints the row (visible with `--nocapture`, and appended to `$HA_REPORT` when set).
    pub fn print(&self) {
        let recovery = self
            .recovery
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "| {} | {} | {} | {:.1} ms | {:.1} ms | {} | {} |",
            self.scenario,
            self.requests,
            self.failures,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            recovery,
            self.note
        );
        println!("HA | scenario | requests | failures | p50 | p99 | recovery | note |");
        println!("HA {line}");
        if let Ok(path) = std::env::var("HA_REPORT")
            && let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}
