//! The HTTP plumbing every real CRM adapter shares: pace calls under the vendor's burst
//! limits, stop every call while a 429 says to wait, and classify failures the way the
//! queue needs them (transient: retried with backoff; permanent: the job is parked).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::CrmError;
use crate::outbound::{describe, excerpt};

/// Which of the vendor's limits a call counts against: searches have a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Plain,
    Search,
}

/// A vendor's rate windows: at most `requests` calls per `window`, of which at most
/// `searches` per `search_window` may be searches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub requests: u32,
    pub window: Duration,
    pub searches: u32,
    pub search_window: Duration,
}

/// How a vendor says how long to wait after a 429 (headers or body); None: the default.
pub type WaitHint = fn(&Reply) -> Option<Duration>;

/// Without any hint from the vendor, a 429 pauses the client this long.
const DEFAULT_429_PAUSE: Duration = Duration::from_secs(10);
/// A 403 with an HTML body is a proxy blocking us for ignoring 429s, not a refusal.
const BLOCKED_PAUSE: Duration = Duration::from_secs(15 * 60);

pub struct CrmHttp {
    vendor: &'static str,
    client: reqwest::Client,
    timeout: Duration,
    requests: DefaultDirectRateLimiter,
    searches: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
    wait_hint: WaitHint,
}

/// A CRM's answer that was not a transient failure: 2xx, or a 4xx for the adapter to read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    pub fn json<T: DeserializeOwned>(&self, vendor: &str) -> Result<T, CrmError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CrmError::transient(format!("{vendor} sent an unreadable answer ({}): {e}", self.status)))
    }

    /// The vendor's refusal as a permanent error carrying its own message.
    pub fn refused(&self, vendor: &str) -> CrmError {
        CrmError::Permanent(format!("{vendor} answered {}: {}", self.status, excerpt(&self.body)))
    }

    /// Decodes a 2xx; any other status is the vendor's refusal.
    pub fn ok_json<T: DeserializeOwned>(&self, vendor: &str) -> Result<T, CrmError> {
        if self.is_success() {
            self.json(vendor)
        } else {
            Err(self.refused(vendor))
        }
    }
}

fn quota(n: u32, per: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    let cell = (per / n.get()).max(Duration::from_micros(1));
    Quota::with_period(cell).unwrap_or(Quota::per_second(n)).allow_burst(n)
}

impl CrmHttp {
    pub fn new(
        vendor: &'static str,
        client: reqwest::Client,
        timeout: Duration,
        limits: Limits,
        wait_hint: WaitHint,
    ) -> Self {
        Self {
            vendor,
            client,
            timeout,
            requests: RateLimiter::direct(quota(limits.requests, limits.window)),
            searches: RateLimiter::direct(quota(limits.searches, limits.search_window)),
            paused_until: Mutex::new(None),
            wait_hint,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends after pacing. Transient failures (429, 408, 423, 5xx, timeouts, connection
    /// errors) are errors; any other answer, 4xx included, is for the caller to read.
    pub async fn send(&self, lane: Lane, req: RequestBuilder) -> Result<Reply, CrmError> {
        if let Some(left) = self.paused_for() {
            return Err(CrmError::Transient {
                message: format!(
                    "{} asked us to wait; not calling it for {}s",
                    self.vendor,
                    left.as_secs()
                ),
                retry_after: Some(left),
            });
        }
        if lane == Lane::Search {
            self.searches.until_ready().await;
        }
        self.requests.until_ready().await;
        let resp = req
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| CrmError::transient(format!("{}: {}", self.vendor, describe(e))))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| CrmError::transient(format!("{}: {}", self.vendor, describe(e))))?;
        let reply = Reply {
            status,
            headers,
            body: body.to_vec(),
        };
        self.classify(reply)
    }

    /// `send`, then any non-2xx is the vendor's refusal.
    pub async fn send_ok(&self, lane: Lane, req: RequestBuilder) -> Result<Reply, CrmError> {
        let reply = self.send(lane, req).await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(reply.refused(self.vendor))
        }
    }

    fn classify(&self, reply: Reply) -> Result<Reply, CrmError> {
        let status = reply.status;
        let message = || format!("{} answered {}: {}", self.vendor, status, excerpt(&reply.body));
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = (self.wait_hint)(&reply)
                .or_else(|| retry_after(&reply.headers))
                .unwrap_or(DEFAULT_429_PAUSE);
            self.pause(wait);
            tracing::warn!(
                vendor = self.vendor,
                wait_s = wait.as_secs_f64(),
                "CRM rate limit hit; pausing calls"
            );
            return Err(CrmError::Transient {
                message: message(),
                retry_after: Some(wait),
            });
        }
        if status == StatusCode::FORBIDDEN && is_html(&reply.headers) {
            self.pause(BLOCKED_PAUSE);
            tracing::error!(vendor = self.vendor, "CRM traffic blocked by its proxy; pausing calls");
            return Err(CrmError::Transient {
                message: format!("{} blocked our traffic (HTML 403); paused", self.vendor),
                retry_after: Some(BLOCKED_PAUSE),
            });
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::LOCKED {
            return Err(CrmError::Transient {
                message: message(),
                retry_after: retry_after(&reply.headers),
            });
        }
        Ok(reply)
    }

    /// Stops every call of this client until `wait` has passed (never shortens a pause).
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        if let Ok(mut p) = self.paused_until.lock() {
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
    }

    fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().ok()?)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 2.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = at.timestamp_millis() - crate::clock::now_ms();
    Some(Duration::from_millis(left.max(0) as u64))
}

/// A header holding a number of seconds (e.g. Pipedrive's `x-ratelimit-reset`).
pub fn seconds_header(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let secs: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 2.0)))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test]
    async fn a_pause_refuses_calls_without_sending_them() {
        let limits = Limits {
            requests: 5,
            window: Duration::from_secs(1),
            searches: 1,
            search_window: Duration::from_secs(1),
        };
        let http = CrmHttp::new("test", reqwest::Client::new(), Duration::from_secs(1), limits, |_| None);
        http.pause(Duration::from_secs(30));
        // Port 9 on loopback: were the request sent, the error would be a connection failure.
        let req = http.client().get("http://127.0.0.1:9/");
        match http.send(Lane::Plain, req).await {
            Err(CrmError::Transient {
                retry_after: Some(d),
                message,
            }) => {
                assert!(d > Duration::from_secs(29), "{d:?}");
                assert!(message.contains("asked us to wait"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
