//! What the customer waits for: `POST /c/{offer}` → 303 with the Pipedrive CRM and the
//! Stripe gateway behind fakes that answer after realistic delays (see `fakes`). The
//! goal is max(CRM inline work, gateway call) + 20 ms (the two run concurrently), never
//! more than the inline deadline plus the gateway call.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::baselines::percentile;
use crate::fakes::{Fakes, CHECKOUT_DELAY, CRM_DELAY};
use crate::server::{self, Server};

const OFFER: &str = "wait";
/// The default `inline_crm_deadline`: the most a submit waits for the CRM.
const DEADLINE: Duration = Duration::from_secs(2);
/// Sequential submits at 1 connection, and rounds of 16 at 16.
const SINGLE: usize = 5;
const ROUNDS_OF_16: usize = 2;

pub struct Wait {
    /// CRM calls one submit's sync makes, and how many of them fit the inline deadline.
    pub crm_calls: usize,
    pub crm_inline: Duration,
    pub gateway_calls: usize,
    pub gateway: Duration,
    /// (connections, samples, p50 ms, p99 ms, failures)
    pub runs: Vec<(u32, usize, f64, f64, usize)>,
}

impl Wait {
    /// max(CRM inline, gateway) + 20 ms.
    pub fn goal(&self) -> Duration {
        self.crm_inline.max(self.gateway) + Duration::from_millis(20)
    }

    /// The inline deadline plus the gateway call.
    pub fn bound(&self) -> Duration {
        DEADLINE + self.gateway
    }
}

pub async fn measure(binary: &Path, dir: &Path, database_url: &str, admin_hash: &str) -> Result<Wait, String> {
    let fakes = Fakes::start().await;
    let port = server::free_port()?;
    let config = server::write_config(dir, database_url, port, &fakes.toml(OFFER))?;
    let log = dir.join("leadgate-customer-wait.log");
    let srv = Server::start(binary, &config, port, &log, admin_hash, &Fakes::env()).await?;
    srv.warm(&format!("/c/{OFFER}")).await?;
    let result = run(&srv.base, &fakes).await;
    srv.stop();
    result
}

async fn run(base: &str, fakes: &Fakes) -> Result<Wait, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(32)
        .build()
        .map_err(|e| e.to_string())?;
    // One submit alone, then quiet until its CRM sync is over (it may run past the
    // deadline in the background): its calls are what one submit costs the vendors.
    fakes.clear();
    submit(&http, base, "calibrate").await?;
    tokio::time::sleep(DEADLINE + Duration::from_secs(1)).await;
    let crm_calls = Fakes::seen(&fakes.crm_log)
        .iter()
        .filter(|s| !is_catalog(&s.path))
        .count();
    let gateway_calls = Fakes::seen(&fakes.gateway_log).len();
    // The sync's calls run one after another; the customer waits for those within the deadline.
    let crm_inline = (CRM_DELAY * crm_calls as u32).min(DEADLINE);
    let gateway = CHECKOUT_DELAY * gateway_calls as u32;
    let mut runs = Vec::new();
    for (c, rounds) in [(1u32, SINGLE), (16, ROUNDS_OF_16)] {
        let mut took = Vec::new();
        let mut failures = 0;
        for r in 0..rounds {
            let batch = (0..c).map(|i| {
                let (http, base) = (http.clone(), base.to_owned());
                let who = format!("c{c}-r{r}-{i}");
                async move { submit(&http, &base, &who).await }
            });
            for res in futures_join(batch).await {
                match res {
                    Ok(d) => took.push(d),
                    Err(e) => {
                        failures += 1;
                        eprintln!("customer wait: {e}");
                    }
                }
            }
        }
        took.sort();
        runs.push((c, took.len(), percentile(&took, 0.5), percentile(&took, 0.99), failures));
    }
    Ok(Wait {
        crm_calls,
        crm_inline,
        gateway_calls,
        gateway,
        runs,
    })
}

/// The start-up check reads the CRM's catalog once; a submit does not wait for it.
fn is_catalog(path: &str) -> bool {
    [
        "/api/v2/pipelines",
        "/api/v2/stages",
        "/api/v1/users",
        "/api/v2/dealFields",
        "/api/v1/activityTypes",
    ]
    .contains(&path)
}

async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// One submit as a browser that loaded the form earlier; the time to its 303.
async fn submit(http: &reqwest::Client, base: &str, who: &str) -> Result<Duration, String> {
    let (cookie, token) = crate::submit::form_guard(OFFER);
    let email = format!("wait-{who}-{}@example.com", uuid::Uuid::now_v7().simple());
    let form = [
        ("name", "Bench Customer"),
        ("email", email.as_str()),
        ("phone", "3001234567"),
        ("form_token", token.as_str()),
    ];
    let started = Instant::now();
    let res = http
        .post(format!("{base}/c/{OFFER}"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if res.status() != 303 {
        return Err(format!("submit answered {}", res.status()));
    }
    Ok(took)
}
