//! The CRM pacer (`CrmHttp`) against a fake that notes when each call arrives: calls
//! already queued when a 429 comes in wait for its Retry-After, and instances on one
//! PostgreSQL database keep to one budget of the vendor's burst limit and share pauses.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use leadgate::crm::http::{CrmHttp, Lane, Limits};
use leadgate::crm::CrmError;
use leadgate::store::Db;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::Backend;

/// How much earlier than the rule a call may be seen: the fake and the client read the
/// clock at slightly different moments. Early side only.
const EARLY: Duration = Duration::from_millis(25);
/// Slack for a rolling window: a call delayed on its way can land next to a later one.
const WINDOW_SLACK: Duration = Duration::from_millis(60);
const INSTANCE: &str = "x-instance";

#[derive(Debug, Clone)]
struct Arrival {
    at: Instant,
    instance: String,
    status: u16,
}

#[derive(Default)]
struct Log {
    arrivals: Vec<Arrival>,
    /// The next calls, this many, answer 429 with this Retry-After.
    limit_next: u32,
    retry_after: &'static str,
}

/// A CRM that logs every call's arrival time and answers 200, or 429 when told to.
#[derive(Clone, Default)]
struct ClockedCrm(Arc<Mutex<Log>>);

impl Respond for ClockedCrm {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let at = Instant::now();
        let mut log = self.log();
        let instance = req
            .headers
            .get(INSTANCE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let status = if log.limit_next > 0 {
            log.limit_next -= 1;
            429
        } else {
            200
        };
        log.arrivals.push(Arrival { at, instance, status });
        match status {
            429 => ResponseTemplate::new(429).insert_header("Retry-After", log.retry_after),
            _ => ResponseTemplate::new(200).set_body_json(serde_json::json!({ "ok": true })),
        }
    }
}

impl ClockedCrm {
    async fn start() -> (MockServer, ClockedCrm) {
        let server = MockServer::start().await;
        let fake = ClockedCrm::default();
        Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
        (server, fake)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap()
    }

    fn limit_next(&self, calls: u32, retry_after: &'static str) {
        let mut log = self.log();
        log.limit_next = calls;
        log.retry_after = retry_after;
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.log().arrivals.clone()
    }

    /// The one 429 the fake answered.
    fn the_429(&self) -> Arrival {
        let limited: Vec<Arrival> = self.arrivals().into_iter().filter(|a| a.status == 429).collect();
        assert_eq!(limited.len(), 1, "{limited:?}");
        limited[0].clone()
    }
}

/// At most `requests` calls per `window`, searches likewise.
fn limits(requests: u32, window: Duration) -> Limits {
    Limits {
        requests,
        window,
        searches: requests,
        search_window: window,
        searches_are_requests: true,
    }
}

fn pacer(requests: u32, window: Duration) -> CrmHttp {
    CrmHttp::new(
        "Pipedrive",
        reqwest::Client::new(),
        Duration::from_secs(5),
        limits(requests, window),
        |_| None,
    )
}

/// Fires `n` calls at once through `http`, each tagged with `instance`.
fn fire(
    http: &Arc<CrmHttp>,
    server: &MockServer,
    instance: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<(), CrmError>>> {
    (0..n)
        .map(|i| {
            let http = http.clone();
            let req = http
                .client()
                .post(format!("{}/api/v2/deals", server.uri()))
                .header(INSTANCE, instance)
                .body(format!("call {i}"));
            tokio::spawn(async move { http.send(Lane::Plain, req).await.map(|_| ()) })
        })
        .collect()
}

async fn outcomes(calls: Vec<tokio::task::JoinHandle<Result<(), CrmError>>>) -> Vec<Result<(), CrmError>> {
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

/// The most arrivals in any stretch of `window` (shortened by the slack).
fn busiest_window(arrivals: &[Arrival], window: Duration) -> usize {
    let mut at: Vec<Instant> = arrivals.iter().map(|a| a.at).collect();
    at.sort();
    let span = window - WINDOW_SLACK;
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|&&t| t < at[i] + span).count())
        .max()
        .unwrap_or(0)
}

fn is_429(r: &Result<(), CrmError>) -> bool {
    matches!(r, Err(CrmError::Transient { retry_after: Some(d), message }) if *d == Duration::from_secs(2) && message.contains("429"))
}

/// A fresh database on the PostgreSQL server, migrated; None when none is configured.
async fn shared_database() -> Option<String> {
    let backend = Backend::postgres()?;
    let (url, _) = crate::support::database(&backend).await;
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    Some(url)
}

/// One instance of the app as far as pacing goes: its own pool and its own pacer.
async fn instance(url: &str, requests: u32, window: Duration) -> Arc<CrmHttp> {
    let db = Db::connect(url).await.unwrap();
    Arc::new(pacer(requests, window).shared_through(&db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_in_the_pacer_wait_out_a_429_that_came_meanwhile() {
    let (server, fake) = ClockedCrm::start().await;
    fake.limit_next(1, "2");
    // One call per 250 ms: the first leaves at once and meets the 429, the other seven
    // are queued in the pacer with slots inside the 2 s pause.
    let window = Duration::from_millis(500);
    let http = Arc::new(pacer(2, window));
    let fired = Instant::now();
    let results = outcomes(fire(&http, &server, "a", 8)).await;

    assert_eq!(results.iter().filter(|r| is_429(r)).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7, "{results:?}");
    let limited = fake.the_429();
    assert!(
        limited.at - fired < Duration::from_millis(200),
        "the 429 was not the first call"
    );
    let after: Vec<Arrival> = fake.arrivals().into_iter().filter(|a| a.status != 429).collect();
    assert_eq!(after.len(), 7);
    let resume = limited.at + Duration::from_secs(2) - EARLY;
    let early: Vec<Duration> = after
        .iter()
        .filter(|a| a.at < resume)
        .map(|a| a.at - limited.at)
        .collect();
    assert!(early.is_empty(), "called during the pause, after the 429 by {early:?}");
    // And they leave paced after it, not in one burst.
    assert!(busiest_window(&after, window) <= 2, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_database_keep_to_one_burst_budget() {
    let Some(url) = shared_database().await else {
        return;
    };
    let (server, fake) = ClockedCrm::start().await;
    let (burst_limit, window) = (4, Duration::from_millis(600));
    let (one, two) = (
        instance(&url, burst_limit, window).await,
        instance(&url, burst_limit, window).await,
    );
    let mut calls = fire(&one, &server, "one", 8);
    calls.extend(fire(&two, &server, "two", 8));
    let results = outcomes(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let arrivals = fake.arrivals();
    assert_eq!(arrivals.len(), 16);
    for name in ["one", "two"] {
        assert_eq!(arrivals.iter().filter(|a| a.instance == name).count(), 8);
    }
    // Each instance alone keeps to the limit; without sharing, the two would send twice it.
    let most = busiest_window(&arrivals, window);
    assert!(most <= burst_limit as usize, "{most} calls in one window: {arrivals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_at_one_instance_holds_the_calls_queued_at_another() {
    let Some(url) = shared_database().await else {
        return;
    };
    let (server, fake) = ClockedCrm::start().await;
    fake.limit_next(1, "2");
    let window = Duration::from_millis(500);
    let (one, two) = (instance(&url, 2, window).await, instance(&url, 2, window).await);
    let mut calls = fire(&one, &server, "one", 4);
    calls.extend(fire(&two, &server, "two", 4));
    let results = outcomes(calls).await;
    assert_eq!(results.iter().filter(|r| is_429(r)).count(), 1, "{results:?}");

    // Whichever instance met the 429, the other's calls were queued at that moment (one
    // slot per 250 ms across both) and must still wait for the pause to end.
    let limited = fake.the_429();
    let other = if limited.instance == "one" { "two" } else { "one" };
    let resume = limited.at + Duration::from_secs(2) - EARLY;
    let held: Vec<Arrival> = fake.arrivals().into_iter().filter(|a| a.instance == other).collect();
    assert_eq!(held.len(), 4, "{held:?}");
    let early: Vec<Duration> = held
        .iter()
        .filter(|a| a.at < resume)
        .map(|a| a.at - limited.at)
        .collect();
    assert!(
        early.is_empty(),
        "{other} called during the pause, after the 429 by {early:?}"
    );

    // A long pause (here 60 s) met by one instance fails the other's calls at once,
    // without calling the CRM, for the durable queue to retry later.
    fake.limit_next(1, "60");
    let req = one.client().get(format!("{}/api/v2/deals", server.uri()));
    assert!(matches!(
        one.send(Lane::Plain, req).await,
        Err(CrmError::Transient { .. })
    ));
    let seen = fake.arrivals().len();
    let req = two.client().get(format!("{}/api/v2/persons/search", server.uri()));
    let started = Instant::now();
    match two.send(Lane::Search, req).await {
        Err(CrmError::Transient {
            retry_after: Some(d), ..
        }) => assert!(d > Duration::from_secs(55) && d <= Duration::from_secs(60), "{d:?}"),
        other => panic!("expected a refusal for the pause, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal was not at once"
    );
    assert_eq!(
        fake.arrivals().len(),
        seen,
        "the second instance called during the block"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_falls_back_to_pacing_in_process() {
    let Some(url) = shared_database().await else {
        return;
    };
    let (server, fake) = ClockedCrm::start().await;
    let db = Db::connect(&url).await.unwrap();
    db.close().await;
    let window = Duration::from_millis(500);
    let http = Arc::new(pacer(2, window).shared_through(&db));
    let results = outcomes(fire(&http, &server, "a", 5)).await;
    assert!(
        results.iter().all(Result::is_ok),
        "the CRM call failed for the database: {results:?}"
    );
    let arrivals = fake.arrivals();
    assert_eq!(arrivals.len(), 5);
    assert!(busiest_window(&arrivals, window) <= 2, "{arrivals:?}");
}
