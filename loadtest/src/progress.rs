//! Live progress: counters the virtual users bump, and a task that prints one line every few
//! seconds. Goose's own running metrics print full tables; a line per interval is readable
//! next to the ECS watch lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Progress {
    started: Instant,
    users_wanted: usize,
    users_started: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl Progress {
    pub fn new(users_wanted: usize) -> Self {
        Self {
            started: Instant::now(),
            users_wanted,
            users_started: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// A new virtual user; returns its number (1-based), used in its username.
    pub fn user_started(&self) -> usize {
        self.users_started.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn record(&self, success: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !success {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request that answered as expected but failed a check afterwards.
    pub fn record_check_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn snapshot(&self) -> (usize, u64, u64) {
        (
            self.users_started
                .load(Ordering::Relaxed)
                .min(self.users_wanted),
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

/// Prints a progress line every `every` until `stop` fires.
pub async fn print_until(
    progress: Arc<Progress>,
    every: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last_requests = 0;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let (users, requests, failures) = progress.snapshot();
        let rate = (requests - last_requests) as f64 / every.as_secs_f64();
        last_requests = requests;
        println!(
            "[{:>5.0}s] users {users}/{} | requests {requests} ({rate:.1}/s) | failures {failures}",
            progress.elapsed().as_secs_f64(),
            progress.users_wanted,
        );
    }
}
