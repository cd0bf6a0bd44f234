//! What the user sees while a command runs: a spinner on a terminal, plain timestamped lines
//! otherwise (CI logs), and with `--output json` plain lines on stderr plus one JSON document on
//! stdout at the end.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

pub struct Progress {
    started: Instant,
    spinner: Option<ProgressBar>,
    last_rollout: Mutex<String>,
    /// Last quarter of a transfer printed in plain mode.
    last_quarter: Mutex<u64>,
}

impl Progress {
    pub fn new(format: OutputFormat) -> Self {
        let tty = format == OutputFormat::Text && std::io::stderr().is_terminal();
        let spinner = tty.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            started: Instant::now(),
            spinner,
            last_rollout: Mutex::new(String::new()),
            last_quarter: Mutex::new(0),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A step that starts now (shown as the spinner's message, or a line).
    pub fn step(&self, message: impl AsRef<str>) {
        match &self.spinner {
            Some(bar) => bar.set_message(message.as_ref().to_string()),
            None => self.line(message.as_ref()),
        }
    }

    /// A finished fact worth keeping on screen.
    pub fn done(&self, message: impl AsRef<str>) {
        match &self.spinner {
            Some(bar) => bar.println(format!("  ✓ {}", message.as_ref())),
            None => self.line(message.as_ref()),
        }
    }

    /// The rollout's counts per deployment (one line, `ecs::rollout::summary`); plain output
    /// prints only when they change. Taking the text, not the deployments, keeps this module a
    /// leaf that the ECS code can report to.
    pub fn rollout(&self, text: &str) {
        let Ok(mut last) = self.last_rollout.lock() else {
            return;
        };
        match &self.spinner {
            Some(bar) => bar.set_message(format!("rollout: {text}")),
            None if *last != text => self.line(&format!("rollout: {text}")),
            None => {}
        }
        *last = text.to_string();
    }

    /// Bytes sent of a transfer (image push): a byte bar on a terminal, a line per quarter
    /// otherwise.
    pub fn transfer(&self, what: &str, sent: u64, total: u64) {
        match &self.spinner {
            Some(bar) => bar.set_message(format!(
                "{what}: {} / {}",
                indicatif::HumanBytes(sent),
                indicatif::HumanBytes(total)
            )),
            None => {
                let quarter = (sent * 4).checked_div(total).unwrap_or(4);
                let Ok(mut last) = self.last_quarter.lock() else {
                    return;
                };
                if quarter != *last {
                    *last = quarter;
                    self.line(&format!(
                        "{what}: {} / {}",
                        indicatif::HumanBytes(sent),
                        indicatif::HumanBytes(total)
                    ));
                }
            }
        }
    }

    /// Runs `f` (which prints to stdout) with the spinner out of the way, so that the two do
    /// not garble each other's lines.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.spinner {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }

    fn line(&self, message: &str) {
        eprintln!("[{:>6.1}s] {message}", self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
