//! A growing wait after consecutive failures of one key (e.g. wrong admin passwords from
//! one address), on top of the plain rate limits: a guesser slows down exponentially,
//! a person who mistyped twice does not notice.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures in a row that cost nothing.
    pub free: u32,
    /// The wait after the first failure beyond `free`; it doubles with each further one.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Most keys remembered; beyond it the longest-quiet one is forgotten.
    pub max_keys: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            free: 2,
            first: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
            max_keys: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: Instant,
}

pub struct Backoff<K: Hash + Eq + Clone> {
    policy: Policy,
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry>> {
        // The map holds plain numbers, so a panic elsewhere cannot leave it half-written.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some(wait)` while `key` must not try again.
    pub fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let entries = self.entries();
        let until = entries.get(key)?.blocked_until;
        (until > now).then(|| until - now)
    }

    /// Records one more failure in a row; returns the wait it imposes, if any.
    pub fn failed(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut entries = self.entries();
        if !entries.contains_key(key) && entries.len() >= self.policy.max_keys {
            self.make_room(&mut entries, now);
        }
        let entry = entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            blocked_until: now,
        });
        entry.failures = entry.failures.saturating_add(1);
        let wait = self.wait_after(entry.failures);
        entry.blocked_until = now + wait;
        (!wait.is_zero()).then_some(wait)
    }

    /// A success wipes the slate for `key`.
    pub fn succeeded(&self, key: &K) {
        self.entries().remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wait_after(&self, failures: u32) -> Duration {
        let Some(beyond) = failures.checked_sub(self.policy.free + 1) else {
            return Duration::ZERO;
        };
        // 2^beyond, saturating long before the cap matters.
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        self.policy.first.saturating_mul(factor).min(self.policy.cap)
    }

    /// Forgets keys quiet for a whole `cap` after their wait ended (a new streak starts
    /// over); if none is, the one whose wait ended longest ago.
    fn make_room(&self, entries: &mut HashMap<K, Entry>, now: Instant) {
        let cap = self.policy.cap;
        entries.retain(|_, e| e.blocked_until + cap > now);
        if entries.len() >= self.policy.max_keys {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.blocked_until)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn free_failures_then_doubling_up_to_the_cap() {
        let b = Backoff::new(Policy::default());
        let t0 = Instant::now();
        assert_eq!(b.failed(&1, t0), None);
        assert_eq!(b.failed(&1, t0), None);
        assert_eq!(b.wait(&1, t0), None, "two mistakes cost nothing");
        assert_eq!(b.failed(&1, t0), Some(secs(2)), "the third waits");
        assert_eq!(b.wait(&1, t0 + secs(1)), Some(secs(1)));
        assert_eq!(b.wait(&1, t0 + secs(2)), None);
        let waits: Vec<_> = (0..12).filter_map(|_| b.failed(&1, t0)).collect();
        assert_eq!(&waits[..4], &[secs(4), secs(8), secs(16), secs(32)]);
        assert_eq!(*waits.last().unwrap(), secs(900), "capped at 15 minutes");
        assert!((0..100).all(|_| b.failed(&1, t0) == Some(secs(900))), "no overflow");
    }

    #[test]
    fn keys_are_apart_and_success_resets() {
        let b = Backoff::new(Policy::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            b.failed(&"a", t0);
        }
        assert!(b.wait(&"a", t0).is_some());
        assert_eq!(b.wait(&"b", t0), None, "another key is not held up");
        b.succeeded(&"a");
        assert_eq!(b.wait(&"a", t0), None);
        assert_eq!(b.failed(&"a", t0), None, "a new streak starts free");
    }

    #[test]
    fn a_flood_of_keys_stays_within_the_bound() {
        let b = Backoff::new(Policy {
            max_keys: 100,
            ..Policy::default()
        });
        let t0 = Instant::now();
        for _ in 0..20 {
            b.failed(&u32::MAX, t0);
        }
        for k in 0..10_000u32 {
            b.failed(&k, t0 + Duration::from_millis(u64::from(k)));
        }
        assert!(b.len() <= 100, "{}", b.len());
        assert!(
            b.wait(&u32::MAX, t0 + secs(10)).is_some(),
            "a flood cannot wash out a key that is being held back"
        );
        // Quiet keys go first: after a long pause one new key makes room for itself alone.
        let later = t0 + secs(3600);
        b.failed(&20_000, later);
        assert_eq!(b.len(), 1);
    }
}
