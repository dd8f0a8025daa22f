//! Per-process rate limits (governor's GCRA), one keyed limiter per thing we count.
//! Each instance behind a load balancer counts on its own.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, Settings};

pub mod backoff;

/// Admin password checks running at once: each Argon2 run holds ~19 MiB.
pub const PASSWORD_CHECKS: usize = 2;

/// Keys are forgotten once their bucket is full again, every this many checks.
const PRUNE_EVERY: u32 = 4096;

pub struct Limiter<K: Hash + Eq + Clone> {
    inner: Option<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU32,
}

fn quota(rate: Rate) -> Quota {
    let count = std::num::NonZeroU32::new(rate.count).unwrap_or(std::num::NonZeroU32::MIN);
    let period = (rate.per / rate.count.max(1)).max(Duration::from_nanos(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `None` never limits.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            inner: rate.map(|r| RateLimiter::keyed(quota(r))),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one for `key`; `Err` says how long until it would be let through.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Counts per client address: the addresses a `[[limits.raised]]` entry names against
/// that entry's rate (a limiter of its own), every other against the default.
pub struct PerAddress {
    default: Limiter<IpAddr>,
    raised: Vec<(Vec<ipnet::IpNet>, Limiter<IpAddr>)>,
}

impl PerAddress {
    /// `submit_per_ip` and `[[limits.raised]]` of `[limits]`.
    pub fn submits(l: &crate::config::Limits) -> Self {
        Self {
            default: Limiter::new(l.submit_per_ip),
            raised: l
                .raised
                .iter()
                .map(|r| (r.addresses.clone(), Limiter::new(r.submit_per_ip)))
                .collect(),
        }
    }

    /// Counts one for `ip`; `Err` says how long until it would be let through.
    pub fn check(&self, ip: &IpAddr) -> Result<(), Duration> {
        // An IPv4 client on a dual-stack socket arrives as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        let limiter = self
            .raised
            .iter()
            .find(|(nets, _)| nets.iter().any(|n| n.contains(&ip)))
            .map_or(&self.default, |(_, l)| l);
        limiter.check(&ip)
    }
}

/// Every limit the web layer applies, built once from `[limits]`.
pub struct Limits {
    /// Offer submits per client address, raised for the addresses `[[limits.raised]]` names.
    pub submit_per_ip: PerAddress,
    pub submit_per_offer: Limiter<String>,
    pub login_per_ip: Limiter<IpAddr>,
    pub login_global: Limiter<()>,
    pub return_per_attempt: Limiter<String>,
    /// One gateway status lookup per attempt per `gateway_status_every`.
    pub gateway_status: Limiter<String>,
    /// A growing wait after consecutive wrong admin passwords from one address.
    pub login_backoff: backoff::Backoff<IpAddr>,
    /// The same after consecutive refused API tokens, so tokens cannot be guessed at speed.
    pub api_auth_backoff: backoff::Backoff<IpAddr>,
    /// Permits to run Argon2, so a burst of guesses cannot run the box out of memory.
    pub password_checks: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Limits {
    pub fn from_settings(s: &Settings) -> Self {
        let l = &s.limits;
        Self {
            submit_per_ip: PerAddress::submits(l),
            submit_per_offer: Limiter::new(l.submit_per_offer),
            login_per_ip: Limiter::new(Some(l.login_per_ip)),
            login_global: Limiter::new(Some(l.login_global)),
            return_per_attempt: Limiter::new(l.return_per_attempt),
            gateway_status: Limiter::new(
                (!l.gateway_status_every.is_zero()).then_some(Rate::new(1, l.gateway_status_every)),
            ),
            login_backoff: backoff::Backoff::new(backoff::Policy::default()),
            // A client misconfigured once retries a few times; its first waits are short.
            api_auth_backoff: backoff::Backoff::new(backoff::Policy {
                free: 5,
                first: Duration::from_secs(1),
                ..backoff::Policy::default()
            }),
            password_checks: std::sync::Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS)),
        }
    }
}

/// Whole seconds for `Retry-After`, never 0 (which would invite an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_rate_is_refused_with_a_wait() {
        let l = Limiter::new(Some(Rate::new(3, Duration::from_secs(60))));
        for _ in 0..3 {
            assert!(l.check(&"a").is_ok());
        }
        let wait = l.check(&"a").unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check(&"b").is_ok(), "keys are counted apart");
    }

    #[test]
    fn off_never_limits() {
        let l = Limiter::new(None);
        assert!((0..10_000).all(|_| l.check(&1).is_ok()));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn raised_addresses_count_against_their_own_rate_and_others_against_the_default() {
        let toml = "[limits]\nsubmit_per_ip = \"2/1m\"\n\
                    [[limits.raised]]\naddresses = [\"10.1.0.0/16\", \"127.0.0.1\"]\nsubmit_per_ip = \"50/1m\"\n\
                    [[limits.raised]]\naddresses = [\"10.0.0.0/8\"]\nsubmit_per_ip = \"off\"\n";
        let settings = Settings::from_toml(toml, &|_| None).unwrap();
        let l = PerAddress::submits(&settings.limits);
        let passed = |who: &str| (0..60).take_while(|_| l.check(&ip(who)).is_ok()).count();
        assert_eq!(passed("10.1.2.3"), 50, "in the first entry");
        assert_eq!(passed("10.1.9.9"), 50, "each address of a range counts alone");
        assert_eq!(passed("::ffff:127.0.0.1"), 50, "an IPv4 client on a dual-stack socket");
        assert_eq!(
            passed("10.2.0.1"),
            60,
            "the first entry naming an address wins; off never limits"
        );
        assert_eq!(passed("192.0.2.1"), 2, "everyone else gets the default");
        assert_eq!(passed("10.1.2.3"), 0, "and the raised rate still ends");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
