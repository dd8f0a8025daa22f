//! Webhook ingest on the real path: signed sandbox events (status APPROVED, each with an
//! event id of its own) naming live attempts seeded just before the run, so the worker
//! applies them while ingest runs (lead locks, status change, CRM deal won, follow-on
//! jobs). After the run: how many of the stored events were applied, and how long the
//! backlog took to drain.

use std::path::Path;
use std::time::{Duration, Instant};

use leadgate::store::Db;

use crate::seed::{self, Mix};
use crate::wrk::{self, Run};

/// How long the backlog may take to drain after a run before the next one starts.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct Ingest {
    pub run: Run,
    /// Live attempts the events could name (more requests than that repeat event ids).
    pub live: u64,
    pub stored: i64,
    pub applied_at_end: i64,
    pub won_at_end: i64,
    /// Applied once the backlog drained (or `DRAIN_WAIT` ran out), and how long it took.
    pub applied_after: i64,
    pub drained_in: Option<Duration>,
}

pub struct Target<'a> {
    pub db: &'a Db,
    pub base: &'a str,
    pub dir: &'a Path,
    /// Namespaces the seeded ids, so every run gets attempts of its own.
    pub batch: u32,
    pub live: u64,
}

pub async fn run(t: &Target<'_>, connections: u32, duration: Duration) -> Result<Ingest, String> {
    seed::seed(t.db, t.batch, t.live, Mix::Live, t.base).await?;
    let lines = t.dir.join(format!("webhooks-{}.txt", t.batch));
    write_events(&lines, t.batch, t.live)?;
    let script = t.dir.join(format!("webhooks-{}.lua", t.batch));
    std::fs::write(&script, wrk::webhook_lua(&lines)).map_err(|e| e.to_string())?;
    let since = leadgate::clock::now_ms();
    let url = t.base.to_owned();
    let run = tokio::task::spawn_blocking(move || wrk::run(&url, connections, duration, Some(&script)))
        .await
        .map_err(|e| e.to_string())??;
    let (stored, applied_at_end, won_at_end) = seed::ingest_counts(t.db, since).await?;
    let started = Instant::now();
    let mut applied_after = applied_at_end;
    let mut drained_in = None;
    while started.elapsed() < DRAIN_WAIT {
        let (stored_now, applied, _) = seed::ingest_counts(t.db, since).await?;
        applied_after = applied;
        if applied >= stored_now {
            drained_in = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Ingest {
        run,
        live: t.live,
        stored,
        applied_at_end,
        won_at_end,
        applied_after,
        drained_in,
    })
}

/// `signature TAB body` per line: one APPROVED event per live attempt, as the sandbox
/// gateway sends them (see `gateways::sandbox`), signed now.
fn write_events(path: &Path, batch: u32, n: u64) -> Result<(), String> {
    use secrecy::{ExposeSecret, SecretString};
    let keys = leadgate::context::Keys::derive(&SecretString::from(crate::server::SECRET_KEY));
    let key = keys.sandbox.expose_secret();
    let t = chrono::Utc::now().timestamp();
    let ts = t.to_string();
    let mut out = String::with_capacity(n as usize * 300);
    for (i, live) in seed::live(batch, n).iter().enumerate() {
        let body = serde_json::json!({
            "id": format!("evt_bench_{batch}_{i}"),
            "type": "payment.updated",
            "created": t,
            "data": {"payment_id": live.payment, "reference": live.attempt, "status": "APPROVED"},
        })
        .to_string();
        let tag = leadgate::domain::signing::tag(key, &[ts.as_bytes(), b".", body.as_bytes()]);
        out.push_str(&format!("t={ts},v1={}\t{body}\n", hex::encode(tag)));
    }
    std::fs::write(path, out).map_err(|e| e.to_string())
}
