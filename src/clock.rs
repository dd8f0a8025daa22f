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
