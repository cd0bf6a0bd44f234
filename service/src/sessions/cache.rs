//! A per-replica cache of session records in front of the database, kept coherent across
//! replicas: every update or delete of a session row notifies all replicas (a Postgres trigger,
//! `change_feed`), which evict it here.
//!
//! Correctness comes before hit rate:
//! - while the change feed is down (listener connection lost, not yet back) the cache is empty
//!   and bypassed: a replica that may miss an eviction serves nothing from memory;
//! - a load that raced with an eviction (or with the feed going down or coming back) does not
//!   fill the cache: every eviction bumps an epoch, and a fill whose epoch changed since its
//!   database read began is undone;
//! - an entry lives at most `ttl` (no longer than the session refresh interval) and is never
//!   served past its own expiry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tower_sessions::session::{Id, Record};

/// The cache of one replica. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SessionCache {
    entries: moka::sync::Cache<Id, Record>,
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    /// Bumped by every eviction, flush and resume.
    epoch: AtomicU64,
    /// Whether evictions are known to reach this replica (the change feed is up).
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Taken before a database read; the read's result fills the cache only if nothing was evicted
/// meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket(u64);

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("entries", &self.entries.entry_count())
            .field("live", &self.is_live())
            .finish()
    }
}

impl SessionCache {
    /// At most `capacity` sessions, each for at most `ttl`. `live`: whether evictions reach the
    /// cache from the start (SQLite: one process, always; Postgres: once the feed listens).
    pub fn new(capacity: u64, ttl: Duration, live: bool) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            shared: std::sync::Arc::new(Shared {
                epoch: AtomicU64::new(0),
                live: AtomicBool::new(live),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// The cached record, if the cache is live and holds an unexpired one.
    pub fn get(&self, id: &Id) -> Option<Record> {
        let found = self.lookup(id);
        let (counter, metric) = match found {
            Some(_) => (&self.shared.hits, "session_cache_hits_total"),
            None => (&self.shared.misses, "session_cache_misses_total"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric).increment(1);
        found
    }

    fn lookup(&self, id: &Id) -> Option<Record> {
        if !self.is_live() {
            return None;
        }
        let record = self.entries.get(id)?;
        if record.expiry_date <= time::OffsetDateTime::now_utc() {
            self.entries.invalidate(id);
            return None;
        }
        Some(record)
    }

    /// Lookups answered from memory and lookups that went to the database, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.shared.hits.load(Ordering::Relaxed),
            self.shared.misses.load(Ordering::Relaxed),
        )
    }

    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.shared.epoch.load(Ordering::SeqCst))
    }

    /// Caches what a read that began at `ticket` found, unless anything was evicted since.
    pub fn fill(&self, ticket: FillTicket, record: &Record) {
        if !self.is_live() || self.shared.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        self.entries.insert(record.id, record.clone());
        // An eviction between the check above and the insert bumped the epoch first: undo. (An
        // eviction after this check removes the entry itself.)
        if self.shared.epoch.load(Ordering::SeqCst) != ticket.0 {
            self.entries.invalidate(&record.id);
        }
    }

    /// The session changed or ended somewhere: forget it.
    pub fn evict(&self, id: &Id) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(id);
    }

    /// Evictions may be lost from now on (the feed is down): empty the cache and bypass it.
    pub fn suspend(&self) {
        self.shared.live.store(false, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    /// Evictions reach the cache again (the feed listens): reads that began before do not fill.
    pub fn resume(&self) {
        self.flush();
        self.shared.live.store(true, Ordering::SeqCst);
    }

    /// Forgets everything; reads that began before do not fill.
    pub fn flush(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn record(id: i128, expires_in: time::Duration) -> Record {
        Record {
            id: Id(id),
            data: HashMap::new(),
            expiry_date: time::OffsetDateTime::now_utc() + expires_in,
        }
    }

    fn cache() -> SessionCache {
        SessionCache::new(100, Duration::from_secs(60), true)
    }

    #[test]
    fn a_fill_is_served_until_evicted() {
        let cache = cache();
        let r = record(1, time::Duration::minutes(5));
        cache.fill(cache.ticket(), &r);
        assert_eq!(cache.get(&r.id).map(|r| r.id), Some(r.id));
        cache.evict(&r.id);
        assert!(cache.get(&r.id).is_none());
    }

    #[test]
    fn a_read_that_raced_with_an_eviction_does_not_fill() {
        let cache = cache();
        let r = record(1, time::Duration::minutes(5));
        let ticket = cache.ticket();
        cache.evict(&Id(2));
        cache.fill(ticket, &r);
        assert!(cache.get(&r.id).is_none());
    }

    #[test]
    fn an_expired_record_is_never_served() {
        let cache = cache();
        let r = record(1, time::Duration::seconds(-1));
        cache.fill(cache.ticket(), &r);
        assert!(cache.get(&r.id).is_none());
    }

    #[test]
    fn a_suspended_cache_is_empty_and_bypassed_until_resumed() {
        let cache = cache();
        let r = record(1, time::Duration::minutes(5));
        cache.fill(cache.ticket(), &r);
        let before_suspend = cache.ticket();
        cache.suspend();
        assert!(cache.get(&r.id).is_none());
        cache.fill(cache.ticket(), &r);
        assert!(cache.is_empty(), "no fill while suspended");
        cache.resume();
        assert!(cache.get(&r.id).is_none(), "flushed, not restored");
        cache.fill(before_suspend, &r);
        assert!(
            cache.get(&r.id).is_none(),
            "a read from before the outage does not fill"
        );
        cache.fill(cache.ticket(), &r);
        assert!(cache.get(&r.id).is_some());
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = SessionCache::new(10, Duration::from_secs(60), true);
        for id in 0..1000 {
            cache.fill(cache.ticket(), &record(id, time::Duration::minutes(5)));
        }
        assert!(cache.len() <= 10, "{} entries", cache.len());
    }
}
