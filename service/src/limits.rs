//! The bounds on what clients, anonymous ones included, can make one replica do: password hashes
//! at once (each Argon2id hash holds 19 MiB), uploads at once (each holds up to two S3 parts),
//! and registrations/login attempts per client address. Past a bound the answer is a fast
//! 503/429 with `Retry-After`, never an unbounded queue.
//!
//! The rate limits are per replica (in memory, `governor`): N replicas admit N times the rate,
//! which is still a bound; the login lockout that must hold across replicas lives in the database
//! (`db::login_throttle`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::configuration::Config;
use crate::domain::password::HashPermit;
use crate::error::ApiError;

/// Clients are told to come back after this long when a replica is at a concurrency limit.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

pub struct Limits {
    hashing: Arc<Semaphore>,
    hash_queue_timeout: Duration,
    /// Requests waiting for a hashing slot; past `max_hash_waiters` they are refused at once.
    hash_waiters: AtomicUsize,
    max_hash_waiters: usize,
    uploads: Arc<Semaphore>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    logins: DefaultKeyedRateLimiter<IpAddr>,
}

/// Which rate-limited route a request is for.
#[derive(Debug, Clone, Copy)]
pub enum AuthRoute {
    Register,
    LogIn,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        let hashes = config.password_hash_concurrency();
        let per_minute =
            NonZeroU32::new(config.auth_rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.auth_rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            hashing: Arc::new(Semaphore::new(hashes)),
            hash_queue_timeout: config.password_hash_queue_timeout,
            hash_waiters: AtomicUsize::new(0),
            // Enough to absorb a burst; a waiter costs a task, not a hash.
            max_hash_waiters: hashes * 16,
            uploads: Arc::new(Semaphore::new(config.upload_max_concurrent)),
            registrations: RateLimiter::keyed(quota),
            logins: RateLimiter::keyed(quota),
        }
    }

    /// A slot to compute one password hash in, waiting at most the queue timeout for it.
    pub async fn hash_permit(&self) -> Result<HashPermit, ApiError> {
        let busy = || ApiError::Overloaded {
            what: "password hashing",
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        };
        if let Ok(permit) = self.hashing.clone().try_acquire_owned() {
            return Ok(HashPermit::new(permit));
        }
        let waiters = self.hash_waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.hash_waiters);
        if waiters >= self.max_hash_waiters {
            return Err(busy());
        }
        match tokio::time::timeout(
            self.hash_queue_timeout,
            self.hashing.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(HashPermit::new(permit)),
            // Timed out, or the semaphore is closed (never: it lives as long as the state).
            _ => Err(busy()),
        }
    }

    /// A slot for one upload in progress, or 503 at once when all are taken (an upload is long:
    /// waiting for one to end would hold the client for minutes).
    pub fn upload_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded {
                what: "uploads in progress",
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
            })
    }

    /// Counts one request of `client` on `route`; 429 past its rate.
    pub fn check_rate(&self, route: AuthRoute, client: IpAddr) -> Result<(), ApiError> {
        let limiter = match route {
            AuthRoute::Register => &self.registrations,
            AuthRoute::LogIn => &self.logins,
        };
        limiter.check_key(&rate_key(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Forgets clients whose limit has fully recovered, so the tables hold only recent clients.
    pub fn forget_idle_clients(&self) {
        for limiter in [&self.registrations, &self.logins] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Clients currently remembered by the rate limiters (for tests and metrics).
    pub fn remembered_clients(&self) -> usize {
        self.registrations.len() + self.logins.len()
    }
}

/// Decrements the waiter count however the wait ends (including the request being dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The key a client is limited under: its IPv4 address, or its IPv6 /64 (one host usually holds a
/// whole /64, so limiting single IPv6 addresses would limit nothing).
fn rate_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let masked = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(masked.into())
            }
        },
    }
}

/// Every minute, drops the rate limiters' state of idle clients. Runs until the process ends.
pub async fn forget_idle_clients_loop(limits: Arc<Limits>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        limits.forget_idle_clients();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn limits(args: &[&str]) -> Limits {
        let cli = crate::configuration::Cli::try_parse_from(
            std::iter::once("data-processor").chain(args.iter().copied()),
        )
        .expect("parses");
        Limits::new(&cli.config)
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(rate_key(a), rate_key(b));
        assert_ne!(rate_key(a), rate_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(rate_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_past_its_burst_gets_429_and_others_do_not() {
        let limits = limits(&[
            "--auth-rate-limit-per-minute",
            "1",
            "--auth-rate-limit-burst",
            "3",
        ]);
        let noisy: IpAddr = "192.0.2.1".parse().unwrap();
        let quiet: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            limits
                .check_rate(AuthRoute::LogIn, noisy)
                .expect("within the burst");
        }
        let refused = limits.check_rate(AuthRoute::LogIn, noisy).unwrap_err();
        assert!(
            matches!(refused, ApiError::RateLimited { retry_after_secs } if (1..=60).contains(&retry_after_secs))
        );
        limits
            .check_rate(AuthRoute::LogIn, quiet)
            .expect("another client");
        // Each route has its own budget.
        limits
            .check_rate(AuthRoute::Register, noisy)
            .expect("another route");
    }

    #[tokio::test]
    async fn hashing_waits_briefly_then_answers_503() {
        let limits = limits(&[
            "--password-hash-concurrency",
            "1",
            "--password-hash-queue-timeout",
            "50ms",
        ]);
        let held = limits.hash_permit().await.expect("a free slot");
        let refused = limits.hash_permit().await.unwrap_err();
        assert!(
            matches!(refused, ApiError::Overloaded { .. }),
            "{refused:?}"
        );
        drop(held);
        limits.hash_permit().await.expect("free again");
        assert_eq!(limits.hash_waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn uploads_past_the_limit_are_refused_at_once() {
        let limits = limits(&["--upload-max-concurrent", "2"]);
        let _a = limits.upload_permit().expect("first");
        let _b = limits.upload_permit().expect("second");
        assert!(matches!(
            limits.upload_permit(),
            Err(ApiError::Overloaded { .. })
        ));
    }
}
