//! Test support shared by every crate's tests: real services on loopback, started per test.
//!
//! Everything here is for tests only, so it panics with a clear message instead of returning
//! errors: a test that cannot start its stand-in has nothing else to do.

pub mod bin;
pub mod haproxy;
pub mod module_graph;
pub mod moto;
pub mod partition;
pub mod postgres;
pub mod process;
pub mod registry;

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the OS picks it; there is a small race until the caller binds).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Polls `check` until it returns `Some`, or panics naming `what` once `deadline` has passed.
/// This is how tests wait: on a condition, never on a fixed sleep.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Waits until an HTTP server answers anything at `url`.
pub async fn wait_for_http(url: &str, deadline: Duration) {
    let client = reqwest::Client::new();
    wait_until(&format!("{url} to answer"), deadline, || async {
        client.get(url).send().await.ok().map(|_| ())
    })
    .await
}

/// True when the current process runs as root (then server processes that refuse root, like
/// Postgres, are started as the `postgres` user).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
