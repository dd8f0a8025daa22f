//! The one place that reads the wall clock and mints ids, so tests and storage agree on units.

use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT on every backend.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// UUIDv7: unique, and sorts by creation time, which keeps B-tree inserts local.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// RFC 3339 rendering for JSON output and pages.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The wall clock as the follow-up rules read it (business hours, "two hours ago"), so
/// tests can run a multi-day sequence in milliseconds. Leases and due times in the queue
/// keep the database's clock: hosts disagree, the database is one.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// The system clock moved forward by however much a test has advanced it.
#[derive(Clone, Default)]
pub struct ShiftedClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl ShiftedClock {
    /// A clock that reads `at_ms` now and runs on from there.
    pub fn starting_at(at_ms: i64) -> Self {
        let c = ShiftedClock::default();
        c.0.store(at_ms - now_ms(), std::sync::atomic::Ordering::SeqCst);
        c
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(ms(by), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        now_ms() + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
