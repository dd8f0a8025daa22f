//! The HTTP plumbing every real CRM adapter shares: pace calls under the vendor's burst
//! limits, stop every call while a 429 says to wait, and classify failures the way the
//! queue needs them (transient: retried with backoff; permanent: the job is parked).
//! On PostgreSQL the slots and pauses live in the database, so every instance on it
//! keeps to one budget and stops for a 429 any of them met; on SQLite (one process), or
//! while the database does not answer, they live in this process.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::pace::{self, Pace};
use super::CrmError;
use crate::outbound::{describe, excerpt};
use crate::store::{pacing, Db};

/// Which of the vendor's limits a call counts against: searches have a lower one (and, at
/// some vendors, no other; see `Limits::searches_are_requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Plain,
    Search,
}

impl Lane {
    /// Its name in the shared pacing table.
    pub fn as_str(&self) -> &'static str {
        match self {
            Lane::Plain => "plain",
            Lane::Search => "search",
        }
    }
}

/// A vendor's rate windows: at most `requests` calls per `window`, of which at most
/// `searches` per `search_window` may be searches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub requests: u32,
    pub window: Duration,
    pub searches: u32,
    pub search_window: Duration,
    /// A search counts against `requests` too (Pipedrive). HubSpot exempts its search
    /// endpoints from the ten-secondly limit, so there a search only takes a search slot.
    pub searches_are_requests: bool,
}

/// How a vendor says how long to wait after a 429 (headers or body); None: the default.
/// A closure, so an adapter can bring what it learnt (HubSpot: the account's time zone).
pub type WaitHint = Box<dyn Fn(&Reply) -> Option<Duration> + Send + Sync>;

/// Without any hint from the vendor, a 429 pauses the client this long.
const DEFAULT_429_PAUSE: Duration = Duration::from_secs(10);
/// A 403 with an HTML body is a proxy blocking us for ignoring 429s, not a refusal.
const BLOCKED_PAUSE: Duration = Duration::from_secs(15 * 60);
/// The longest pause a call sits out before it leaves; a longer one fails the call at
/// once (transient, with the time left) so the durable queue retries it later. 30 s
/// covers the vendors' burst windows (Pipedrive 2 s, HubSpot 10 s, our 10 s default), so
/// a burst 429 delays calls instead of failing them; it stops short of HubSpot's daily
/// limit and the 15 min proxy block, where a call held for minutes would only sit on a
/// worker slot (and past the customer's inline deadline) for nothing.
pub const MAX_HELD_PAUSE: Duration = Duration::from_secs(30);
/// A pacing statement slower than this counts as the database being unreachable: the
/// call is paced in process instead, never failed or held up for the database.
const SHARED_PACING_TIMEOUT: Duration = Duration::from_secs(1);
/// After the shared pacing failed, calls are paced in process for this long before the
/// database is tried again, so an outage does not add a timeout to every call.
const SHARED_PACING_RETRY: Duration = Duration::from_secs(5);

pub struct CrmHttp {
    vendor: &'static str,
    client: reqwest::Client,
    timeout: Duration,
    requests: Paced,
    searches: Paced,
    searches_are_requests: bool,
    paused_until: Mutex<Option<Instant>>,
    wait_hint: WaitHint,
    shared: Option<Shared>,
}

/// One lane's pace and the in-process limiter running it.
struct Paced {
    pace: Pace,
    limiter: DefaultDirectRateLimiter,
}

/// The database every instance paces through, and when to try it again after a failure.
struct Shared {
    db: Db,
    failed_until: Mutex<Option<Instant>>,
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

impl Paced {
    fn new(n: u32, window: Duration) -> Self {
        let pace = Pace::within(n, window);
        let burst = NonZeroU32::new(pace.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(pace.interval)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self {
            pace,
            limiter: RateLimiter::direct(quota),
        }
    }
}

impl CrmHttp {
    pub fn new(
        vendor: &'static str,
        client: reqwest::Client,
        timeout: Duration,
        limits: Limits,
        wait_hint: impl Fn(&Reply) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        Self {
            vendor,
            client,
            timeout,
            requests: Paced::new(limits.requests, limits.window),
            searches: Paced::new(limits.searches, limits.search_window),
            searches_are_requests: limits.searches_are_requests,
            paused_until: Mutex::new(None),
            wait_hint: Box::new(wait_hint),
            shared: None,
        }
    }

    /// Paces through `db` as well, so every instance on it keeps to one budget of the
    /// vendor's limits and stops for a 429 any of them was given. On SQLite the store
    /// answers that nothing is shared (one process owns the file) and the in-process
    /// pacer does it all.
    pub fn shared_through(mut self, db: &Db) -> Self {
        self.shared = Some(Shared {
            db: db.clone(),
            failed_until: Mutex::new(None),
        });
        self
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends after pacing. Transient failures (429, 408, 423, 5xx, timeouts, connection
    /// errors) are errors; any other answer, 4xx included, is for the caller to read.
    pub async fn send(&self, lane: Lane, req: RequestBuilder) -> Result<Reply, CrmError> {
        self.wait_turn(lane).await?;
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
        self.classify(reply).await
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

    /// Returns when the call may leave: it holds a send slot in every lane it counts
    /// against and no pause is on. The pause is checked again after the slot's wait,
    /// right before the call leaves, because a 429 may have come in (here or at another
    /// instance) while it waited; Pipedrive blocks clients that keep calling after one.
    /// A call that meets a pause there takes a fresh slot after it: the slot it held
    /// was spent inside the pause, and leaving with it would send every queued call in
    /// one burst the moment the pause ends.
    async fn wait_turn(&self, lane: Lane) -> Result<(), CrmError> {
        loop {
            if let Some(left) = self.paused_for() {
                self.sit_out(left).await?;
            }
            let waited = self.take_slots(lane).await?;
            if waited {
                self.refresh_shared_pause().await;
            }
            match self.paused_for() {
                None => return Ok(()),
                Some(left) => self.sit_out(left).await?,
            }
        }
    }

    /// Waits out a short pause; a long one fails the call at once for the queue to retry.
    async fn sit_out(&self, left: Duration) -> Result<(), CrmError> {
        if left > MAX_HELD_PAUSE {
            return Err(self.paused(left));
        }
        tracing::debug!(
            vendor = self.vendor,
            wait_s = left.as_secs_f64(),
            "holding a CRM call for a pause"
        );
        tokio::time::sleep(left).await;
        Ok(())
    }

    fn paused(&self, left: Duration) -> CrmError {
        CrmError::Transient {
            message: format!(
                "{} asked us to wait; not calling it for {}s",
                self.vendor,
                left.as_secs()
            ),
            retry_after: Some(left),
        }
    }

    fn lane(&self, lane: Lane) -> &Paced {
        match lane {
            Lane::Plain => &self.requests,
            Lane::Search => &self.searches,
        }
    }

    /// Every lane a call of this lane counts against.
    fn counted_in(&self, lane: Lane) -> &'static [Lane] {
        match lane {
            Lane::Plain => &[Lane::Plain],
            Lane::Search if self.searches_are_requests => &[Lane::Search, Lane::Plain],
            Lane::Search => &[Lane::Search],
        }
    }

    /// Takes and waits for a slot in every lane the call counts against, from the shared
    /// pacer when there is one, else in process. True when that took any time, so the
    /// pause seen when the slot was reserved may be stale.
    async fn take_slots(&self, lane: Lane) -> Result<bool, CrmError> {
        let mut waited = false;
        for &l in self.counted_in(lane) {
            let paced = self.lane(l);
            match self.shared_slot(l).await? {
                Some(delay) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                        waited = true;
                    }
                    // Keeps the local limiter aware of what this instance sent, so that
                    // falling back to it does not start with a full burst.
                    let _ = paced.limiter.check();
                }
                None => {
                    let start = Instant::now();
                    paced.limiter.until_ready().await;
                    waited |= !start.elapsed().is_zero();
                }
            }
        }
        Ok(waited)
    }

    /// The shared pacer's slot for this call: how long until it starts. None: nothing is
    /// shared (SQLite, no database, or it failed), so the in-process limiter paces.
    /// A pause found in the row is adopted locally; a long one fails the call.
    async fn shared_slot(&self, lane: Lane) -> Result<Option<Duration>, CrmError> {
        let Some(shared) = self.usable_shared() else {
            return Ok(None);
        };
        let pace = self.lane(lane).pace;
        let reserve = pacing::reserve(
            &shared.db,
            self.vendor,
            lane.as_str(),
            pace.interval_ms(),
            millis(MAX_HELD_PAUSE),
        );
        let Some(row) = self.shared_answer(tokio::time::timeout(SHARED_PACING_TIMEOUT, reserve).await) else {
            return Ok(None);
        };
        let left = row.paused_until.saturating_sub(row.now);
        if left > 0 {
            let left = Duration::from_millis(left.unsigned_abs());
            self.pause_locally(left);
            if left > MAX_HELD_PAUSE {
                return Err(self.paused(left));
            }
        }
        let start = pace::start_of(&pace, row.tat, row.now, row.paused_until);
        Ok(Some(Duration::from_millis(
            start.saturating_sub(row.now).max(0).unsigned_abs(),
        )))
    }

    /// Reads the shared pause again (another instance may have met a 429 meanwhile).
    async fn refresh_shared_pause(&self) {
        let Some(shared) = self.usable_shared() else {
            return;
        };
        let read = pacing::paused_until(&shared.db, self.vendor);
        if let Some((now, until)) = self.shared_answer(tokio::time::timeout(SHARED_PACING_TIMEOUT, read).await) {
            if until > now {
                self.pause_locally(Duration::from_millis(until.saturating_sub(now).unsigned_abs()));
            }
        }
    }

    /// Tells every instance to pause; failing that, only this one pauses.
    async fn share_pause(&self, wait: Duration) {
        let Some(shared) = self.usable_shared() else {
            return;
        };
        let lanes = [Lane::Plain.as_str(), Lane::Search.as_str()];
        let write = pacing::pause(&shared.db, self.vendor, &lanes, millis(wait));
        self.shared_answer(tokio::time::timeout(SHARED_PACING_TIMEOUT, write).await);
    }

    fn usable_shared(&self) -> Option<&Shared> {
        let shared = self.shared.as_ref()?;
        let failed_until = *shared.failed_until.lock().ok()?;
        failed_until.is_none_or(|t| t <= Instant::now()).then_some(shared)
    }

    /// The shared pacer's answer, or None (with one warning per outage) when the
    /// database failed or was too slow: the caller then paces in process.
    fn shared_answer<T>(
        &self,
        answer: Result<crate::store::StoreResult<Option<T>>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        let shared = self.shared.as_ref()?;
        let problem = match answer {
            Ok(Ok(value)) => {
                if let Ok(mut f) = shared.failed_until.lock() {
                    if f.take().is_some() {
                        tracing::info!(vendor = self.vendor, "shared CRM pacing is back");
                    }
                }
                return value;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {SHARED_PACING_TIMEOUT:?}"),
        };
        if let Ok(mut f) = shared.failed_until.lock() {
            if f.is_none() {
                tracing::warn!(
                    vendor = self.vendor,
                    error = %problem,
                    "shared CRM pacing unavailable; pacing this instance alone"
                );
            }
            *f = Some(Instant::now() + SHARED_PACING_RETRY);
        }
        None
    }

    async fn classify(&self, reply: Reply) -> Result<Reply, CrmError> {
        let status = reply.status;
        let message = || format!("{} answered {}: {}", self.vendor, status, excerpt(&reply.body));
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = (self.wait_hint)(&reply)
                .or_else(|| retry_after(&reply.headers))
                .unwrap_or(DEFAULT_429_PAUSE);
            self.pause(wait).await;
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
            self.pause(BLOCKED_PAUSE).await;
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

    /// Stops every call of this client, and of every instance sharing its pacing, until
    /// `wait` has passed (never shortens a pause).
    async fn pause(&self, wait: Duration) {
        self.pause_locally(wait);
        self.share_pause(wait).await;
    }

    fn pause_locally(&self, wait: Duration) {
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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

    fn test_http() -> CrmHttp {
        let limits = Limits {
            requests: 5,
            window: Duration::from_secs(1),
            searches: 1,
            search_window: Duration::from_secs(1),
            searches_are_requests: true,
        };
        CrmHttp::new("test", reqwest::Client::new(), Duration::from_secs(1), limits, |_| None)
    }

    #[tokio::test]
    async fn a_long_pause_refuses_calls_without_sending_them() {
        let http = test_http();
        http.pause_locally(MAX_HELD_PAUSE * 2);
        // Port 9 on loopback: were the request sent, the error would be a connection failure.
        let req = http.client().get("http://127.0.0.1:9/");
        match http.send(Lane::Plain, req).await {
            Err(CrmError::Transient {
                retry_after: Some(d),
                message,
            }) => {
                assert!(d > MAX_HELD_PAUSE * 2 - Duration::from_secs(1), "{d:?}");
                assert!(message.contains("asked us to wait"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_short_pause_is_waited_out_then_the_call_leaves() {
        let http = test_http();
        let left = Duration::from_millis(300);
        http.pause_locally(left);
        let began = Instant::now();
        let req = http.client().get("http://127.0.0.1:9/");
        match http.send(Lane::Search, req).await {
            // Sent: nothing listens on port 9.
            Err(CrmError::Transient { message, .. }) => {
                assert!(!message.contains("asked us to wait"), "{message}")
            }
            other => panic!("expected a connection failure, got {other:?}"),
        }
        assert!(began.elapsed() >= left, "left after {:?}", began.elapsed());
    }

    #[tokio::test]
    async fn a_search_exempt_from_the_request_limit_does_not_wait_for_it() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        // One request per 10 s: a second call counted against it waits 10 s.
        let http = |searches_are_requests| {
            let limits = Limits {
                requests: 1,
                window: Duration::from_secs(10),
                searches: 5,
                search_window: Duration::from_secs(1),
                searches_are_requests,
            };
            CrmHttp::new("test", reqwest::Client::new(), Duration::from_secs(5), limits, |_| None)
        };
        let hold = Duration::from_millis(500);
        for exempt in [true, false] {
            let http = http(!exempt);
            http.send(Lane::Plain, http.client().get(server.uri())).await.unwrap();
            let search = http.send(Lane::Search, http.client().post(server.uri()));
            let left = tokio::time::timeout(hold, search).await.is_ok();
            assert_eq!(left, exempt, "exempt: {exempt}");
        }
    }
}
