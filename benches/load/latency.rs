//! Event-to-CRM latency through the real worker, timed server-side: from the commit of
//! the inbox row (the `webhook stored` event, see `stamps`) to the CRM being asked to
//! mark the deal won (the built-in CRM, wrapped to timestamp that call). The app runs
//! in-process; intervals are paired by attempt and never clamped: a negative one would
//! be a bug, and is counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use leadgate::config::{FieldRole, Settings};
use leadgate::crm::builtin::BuiltinCrm;
use leadgate::crm::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
use leadgate::startup::{Application, Overrides};
use tokio::sync::mpsc;

use crate::seed::Live;

/// Concurrent webhook senders in the loaded phase.
const LOADED_SENDERS: usize = 16;

/// The built-in CRM, reporting the instant each deal is marked won, by attempt.
struct Stopwatch {
    inner: BuiltinCrm,
    /// Deal id → attempt id, from the deals it made or found.
    deals: Mutex<HashMap<String, String>>,
    won: mpsc::UnboundedSender<(String, Instant)>,
}

impl Stopwatch {
    fn remember(&self, deal: &str, attempt: &str) {
        if let Ok(mut d) = self.deals.lock() {
            d.insert(deal.to_owned(), attempt.to_owned());
        }
    }
}

#[async_trait]
impl Crm for Stopwatch {
    fn name(&self) -> &'static str {
        "builtin"
    }
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        self.inner.upsert_person(p).await
    }
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        let found = self.inner.find_deal(attempt_id).await?;
        if let Some(deal) = &found {
            self.remember(deal, attempt_id);
        }
        Ok(found)
    }
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        let deal = self.inner.create_deal(d).await?;
        self.remember(&deal, d.attempt_id);
        Ok(deal)
    }
    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let at = Instant::now();
        if *status == DealStatus::Won {
            let attempt = self.deals.lock().ok().and_then(|d| d.get(deal.deal_id).cloned());
            let _ = self
                .won
                .send((attempt.unwrap_or_else(|| format!("deal {}", deal.deal_id)), at));
        }
        self.inner.set_deal_status(deal, status).await
    }
    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        self.inner.find_task(deal_id, key).await
    }
    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        self.inner.create_task(t).await
    }
    async fn close_task(
        &self,
        t: &leadgate::crm::TaskRef<'_>,
        how: leadgate::domain::followup::CloseTask,
    ) -> Result<(), CrmError> {
        self.inner.close_task(t, how).await
    }
    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        self.inner.add_note(n).await
    }
    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        self.inner.set_deal_fields(deal_id, fields).await
    }
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        self.inner.catalog().await
    }
}

#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Won before its event was stored: impossible unless the bench or the app is wrong.
    pub negative: usize,
    /// Events whose won update never came (within the wait) or could not be paired.
    pub unpaired: usize,
}

/// Quiet: one event at a time. Loaded: `LOADED_SENDERS` sending at once.
pub struct Latencies {
    pub quiet: Latency,
    pub loaded: Latency,
}

const EVENT_PREFIX: &str = "evt_latency_";

pub async fn event_to_crm(database_url: &str, admin_hash: &str, samples: usize) -> Result<Latencies, String> {
    let stored = crate::stamps::install();
    let (tx, mut won_rx) = mpsc::unbounded_channel();
    let url = database_url.to_owned();
    let hash = admin_hash.to_owned();
    let env = move |k: &str| match k {
        "LEADGATE_SECRET_KEY" => Some(crate::server::SECRET_KEY.to_owned()),
        "LEADGATE_ADMIN_PASSWORD_HASH" => Some(hash.clone()),
        "LEADGATE_DATABASE_URL" => Some(url.clone()),
        _ => None,
    };
    let toml = format!(
        "bind = \"127.0.0.1:0\"\n[reconcile]\nenabled = false\n{}",
        crate::server::BENCH_LIMITS
    );
    let settings = Settings::from_toml(&toml, &env).map_err(|e| e.to_string())?;
    let overrides = Overrides {
        crm: Some(Box::new(move |db| {
            Arc::new(Stopwatch {
                inner: BuiltinCrm::new(db.clone()),
                deals: Mutex::default(),
                won: tx,
            })
        })),
        ..Default::default()
    };
    let app = Application::build_with(settings, overrides)
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context();
    let server = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let attempts = open_checkouts(&http, &base, &ctx.db, 2 * samples).await?;
    let (quiet, loaded) = attempts.split_at(samples);
    let mut won = HashMap::new();
    for a in quiet {
        send_event(&http, &base, &ctx.sandbox, a).await?;
        collect(&mut won_rx, &mut won, 1).await;
    }
    let chunks: Vec<Vec<Live>> = loaded
        .chunks(loaded.len().div_ceil(LOADED_SENDERS).max(1))
        .map(<[Live]>::to_vec)
        .collect();
    let mut senders = Vec::new();
    for chunk in chunks {
        let (http, base, sandbox) = (http.clone(), base.clone(), ctx.sandbox.clone());
        senders.push(tokio::spawn(async move {
            for a in &chunk {
                send_event(&http, &base, &sandbox, a).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for s in senders {
        s.await.map_err(|e| e.to_string())??;
    }
    collect(&mut won_rx, &mut won, loaded.len()).await;
    server.abort();
    let stored = stored.lock().map(|m| m.clone()).unwrap_or_default();
    Ok(Latencies {
        quiet: pair(quiet, &stored, &won),
        loaded: pair(loaded, &stored, &won),
    })
}

/// Waits (bounded) until `n` more deals were marked won.
async fn collect(rx: &mut mpsc::UnboundedReceiver<(String, Instant)>, won: &mut HashMap<String, Instant>, n: usize) {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < n {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some((attempt, at))) => {
                won.entry(attempt).or_insert(at);
                got += 1;
            }
            _ => break,
        }
    }
}

fn pair(attempts: &[Live], stored: &HashMap<String, Instant>, won: &HashMap<String, Instant>) -> Latency {
    let mut ms = Vec::new();
    let mut out = Latency::default();
    for a in attempts.iter().map(|l| &l.attempt) {
        let (Some(s), Some(w)) = (stored.get(&format!("{EVENT_PREFIX}{a}")), won.get(a)) else {
            out.unpaired += 1;
            continue;
        };
        let signed = if *w >= *s {
            w.duration_since(*s).as_secs_f64() * 1000.0
        } else {
            out.negative += 1;
            -(s.duration_since(*w).as_secs_f64() * 1000.0)
        };
        ms.push(signed);
    }
    ms.sort_by(f64::total_cmp);
    out.samples = ms.len();
    out.p50_ms = signed_percentile(&ms, 0.50);
    out.p99_ms = signed_percentile(&ms, 0.99);
    out
}

fn signed_percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `n` leads through the real form, each redirected to its sandbox checkout; their attempts.
async fn open_checkouts(
    http: &reqwest::Client,
    base: &str,
    db: &leadgate::store::Db,
    n: usize,
) -> Result<Vec<Live>, String> {
    for i in 0..n {
        let email = format!("latency-{i}@example.com");
        let (cookie, token) = crate::submit::form_guard("demo");
        let form = [
            ("name", "Bench Customer"),
            ("email", email.as_str()),
            ("phone", "3001234567"),
            ("form_token", token.as_str()),
        ];
        let res = http
            .post(format!("{base}/c/demo"))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 303 {
            return Err(format!("form answered {}", res.status()));
        }
    }
    let attempts = crate::seed::redirected_attempts(db).await?;
    if attempts.len() < n {
        return Err(format!("{} checkouts open, {n} expected", attempts.len()));
    }
    Ok(attempts)
}

async fn send_event(
    http: &reqwest::Client,
    base: &str,
    sandbox: &leadgate::gateways::sandbox::SandboxGateway,
    live: &Live,
) -> Result<(), String> {
    let body = serde_json::to_vec(&serde_json::json!({
        "id": format!("{EVENT_PREFIX}{}", live.attempt), "type": "payment.updated", "created": 0,
        "data": {"payment_id": live.payment, "reference": live.attempt, "status": "APPROVED"}
    }))
    .map_err(|e| e.to_string())?;
    let sig = sandbox.sign(&body, chrono::Utc::now().timestamp());
    let res = http
        .post(format!("{base}/webhooks/sandbox"))
        .header("Sandbox-Signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 200 {
        return Err(format!("webhook answered {}", res.status()));
    }
    Ok(())
}
