//! Event-to-CRM latency through the real worker: from a webhook's 200 to the CRM being
//! asked to mark the deal won. The app runs in-process with the built-in CRM wrapped to
//! timestamp that call, so nothing but leadgate sits between the two instants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use leadgate::config::{FieldRole, Settings};
use leadgate::crm::builtin::BuiltinCrm;
use leadgate::crm::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
use leadgate::startup::{Application, Overrides};
use tokio::sync::mpsc;

use crate::baselines::percentile;

/// The built-in CRM, reporting the instant each deal is marked won.
struct Stopwatch {
    inner: BuiltinCrm,
    won: mpsc::UnboundedSender<Instant>,
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
        self.inner.find_deal(attempt_id).await
    }
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        self.inner.create_deal(d).await
    }
    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let _ = self.won.send(Instant::now());
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

pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn event_to_crm(database_url: &str, admin_hash: &str, samples: usize) -> Result<Latency, String> {
    let (tx, mut won) = mpsc::unbounded_channel();
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
        crate::server::GUARDS_OFF
    );
    let settings = Settings::from_toml(&toml, &env).map_err(|e| e.to_string())?;
    let overrides = Overrides {
        crm: Some(Box::new(move |db| {
            Arc::new(Stopwatch {
                inner: BuiltinCrm::new(db.clone()),
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
    let mut took = Vec::with_capacity(samples);
    for i in 0..samples {
        let email = format!("latency-{i}@example.com");
        let (cookie, token) = crate::server::form_guard();
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
        let attempt = newest_attempt(&ctx.db).await?;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": format!("evt_latency_{i}_{attempt}"), "type": "payment.updated", "created": 0,
            "data": {"payment_id": "sbx_bench", "reference": attempt, "status": "APPROVED"}
        }))
        .map_err(|e| e.to_string())?;
        let sig = ctx.sandbox.sign(&body, chrono::Utc::now().timestamp());
        let res = http
            .post(format!("{base}/webhooks/sandbox"))
            .header("Sandbox-Signature", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let answered = Instant::now();
        if res.status() != 200 {
            return Err(format!("webhook answered {}", res.status()));
        }
        let at = tokio::time::timeout(Duration::from_secs(10), won.recv())
            .await
            .map_err(|_| "the CRM never heard of the payment".to_string())?
            .ok_or("CRM channel closed")?;
        took.push(at.saturating_duration_since(answered));
    }
    server.abort();
    took.sort();
    Ok(Latency {
        samples: took.len(),
        p50_ms: percentile(&took, 0.50),
        p99_ms: percentile(&took, 0.99),
    })
}

async fn newest_attempt(db: &leadgate::store::Db) -> Result<String, String> {
    let leads = leadgate::store::leads::all(db).await.map_err(|e| e.to_string())?;
    let lead = leads.last().ok_or("no lead stored")?;
    let attempts = leadgate::store::attempts::for_lead(db, &lead.id)
        .await
        .map_err(|e| e.to_string())?;
    attempts
        .last()
        .map(|a| a.id.clone())
        .ok_or_else(|| "no attempt stored".into())
}
