//! Faults with the real binary: SIGKILL in the middle of a webhook flood, and two
//! processes sharing one PostgreSQL database. Traffic goes to 127.0.0.1 only, and every
//! loop is bounded.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::both_backends;
use crate::support::{database, eventually, Backend};

const SECRET_KEY: &str = "fault-secret-key-fault-secret-key-0123456789";

both_backends!(sigkill_twice_during_a_webhook_flood_loses_nothing);

/// One `leadgate serve` process on a port of its own.
struct Instance {
    child: Child,
    port: u16,
    config: PathBuf,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, name: &str, db_url: &str, port: u16) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"
bind = "127.0.0.1:{port}"
database_url = "{db_url}"

[worker]
idle_poll = "200ms"
lease = "2s"

[reconcile]
enabled = false

[[offers]]
slug = "demo"
title = "Curso"
price_minor = 19900000
currency = "COP"
followup_delays = ["4s", "5s"]
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl Instance {
    async fn start(dir: &Path, name: &str, db_url: &str) -> Instance {
        let port = free_port();
        let config = write_config(dir, name, db_url, port);
        let log = dir.join(format!("{name}.log"));
        let mut i = Instance {
            child: spawn(&config, &log),
            port,
            config,
            log,
        };
        i.wait_healthy().await;
        i
    }

    async fn wait_healthy(&mut self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        for _ in 0..400 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("leadgate exited with {status}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("leadgate did not become healthy");
    }

    /// SIGKILL: no shutdown code runs, as in a power cut or an OOM kill.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn restart(&mut self) {
        self.child = spawn(&self.config, &self.log);
        self.wait_healthy().await;
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("LEADGATE_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .env_remove("LEADGATE_CONFIG")
        .env_remove("LEADGATE_DATABASE_URL")
        .env_remove("LEADGATE_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Submits the form; true when the customer got their redirect.
async fn submit(http: &reqwest::Client, url: &str, email: &str) -> bool {
    let form = [("name", "Flood Customer"), ("email", email), ("phone", "3001234567")];
    http.post(url).form(&form).send().await.is_ok_and(|r| r.status() == 303)
}

fn sandbox_event(event_id: &str, reference: &str) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&serde_json::json!({
        "id": event_id, "type": "payment.updated", "created": 0,
        "data": {"payment_id": "sbx_fault", "reference": reference, "status": "APPROVED"}
    }))
    .unwrap();
    let keys = leadgate::context::Keys::derive(&SecretString::from(SECRET_KEY));
    let t = chrono::Utc::now().timestamp().to_string();
    let tag = leadgate::domain::signing::tag(keys.sandbox.expose_secret(), &[t.as_bytes(), b".", &body]);
    (body, format!("t={t},v1={}", hex::encode(tag)))
}

/// Sends one webhook until the server gives an HTTP answer (a gateway retries on
/// connection errors and non-2xx); returns whether that answer was 200.
async fn deliver(http: &reqwest::Client, url: &str, body: &[u8], sig: &str) -> bool {
    for _ in 0..200 {
        let sent = http
            .post(url)
            .header("Sandbox-Signature", sig)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => return true,
            Ok(r) if r.status().is_server_error() => {}
            Ok(_) => return false,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn attempts_by_email(db: &leadgate::store::Db) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for lead in leadgate::store::leads::all(db).await.unwrap() {
        let attempts = leadgate::store::attempts::for_lead(db, &lead.id).await.unwrap();
        out.insert(lead.contact.email.to_string(), attempts[0].id.clone());
    }
    out
}

/// Waits until no job but the future follow-up checks is left to run.
async fn settled(db: &leadgate::store::Db) {
    eventually("the queue to drain", || async {
        let leads = leadgate::store::leads::all(db).await.unwrap();
        for lead in leads {
            let jobs = leadgate::store::jobs::for_lead(db, &lead.id).await.unwrap();
            if jobs
                .iter()
                .any(|j| j.kind != "follow_up" && j.state != leadgate::store::jobs::JobState::Done)
            {
                return false;
            }
        }
        true
    })
    .await;
}

async fn sigkill_twice_during_a_webhook_flood_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _db_dir) = database(&backend).await;
    let mut server = Instance::start(dir.path(), "a", &db_url).await;
    let http = client();
    let mut submitted = Vec::new();
    for i in 0..24 {
        let email = format!("before-{i}@example.com");
        assert!(submit(&http, &server.url("/c/demo"), &email).await);
        submitted.push(email);
    }
    let db = leadgate::store::Db::connect(&db_url).await.unwrap();
    let attempts = attempts_by_email(&db).await;

    // One APPROVED event per attempt, a fifth of them sent twice, in shuffled order.
    let mut events: Vec<(String, String)> = attempts
        .values()
        .enumerate()
        .map(|(i, a)| (format!("evt_flood_{i}"), a.clone()))
        .collect();
    let dups: Vec<_> = events.iter().step_by(5).cloned().collect();
    events.extend(dups);
    events.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));

    let answered_200 = Arc::new(Mutex::new(HashSet::new()));
    let url = server.url("/webhooks/sandbox");
    let senders: Vec<_> = events
        .chunks(events.len().div_ceil(4))
        .map(|chunk| {
            let (chunk, http, url, ok) = (chunk.to_vec(), http.clone(), url.clone(), answered_200.clone());
            tokio::spawn(async move {
                for (event_id, reference) in chunk {
                    let (body, sig) = sandbox_event(&event_id, &reference);
                    if deliver(&http, &url, &body, &sig).await {
                        ok.lock().await.insert((event_id, reference));
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        })
        .collect();
    // Killed twice mid-flood; leads keep arriving between the kills.
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let email = format!("between-{round}@example.com");
        if submit(&http, &server.url("/c/demo"), &email).await {
            submitted.push(email);
        }
        server.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.restart().await;
    }
    for s in senders {
        s.await.unwrap();
    }
    settled(&db).await;

    let answered = answered_200.lock().await.clone();
    let references: HashSet<_> = answered.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(
        references.len(),
        attempts.len(),
        "every event was eventually answered 200"
    );
    let stored = attempts_by_email(&db).await;
    for email in &submitted {
        assert!(stored.contains_key(email), "lead {email} was lost");
    }
    let deals = leadgate::store::builtin_crm::deals(&db, 1000).await.unwrap();
    for reference in &references {
        let n = leadgate::store::inbox::count_for_reference(&db, "sandbox", reference)
            .await
            .unwrap();
        assert_eq!(n, 1, "one inbox row per event, duplicates collapsed");
        let attempt = leadgate::store::attempts::get(&db, reference).await.unwrap().unwrap();
        assert_eq!(attempt.status.as_str(), "approved");
        let mine: Vec<_> = deals.iter().filter(|d| &d.external_key == reference).collect();
        assert_eq!(mine.len(), 1, "exactly one deal for {reference}");
        assert_eq!(mine[0].status, "won");
    }
    db.close().await;
}

/// Two processes share one PostgreSQL database and one stream of webhooks (duplicates
/// sent to both) and follow-up deadlines: each event is applied once, each follow-up
/// task created once. (A payment applied after its follow-up fell due rightly leaves a
/// task, so the deadlines sit well after the stream.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_apply_each_event_and_follow_up_once() {
    let Some(backend) = Backend::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _) = database(&backend).await;
    let a = Instance::start(dir.path(), "a", &db_url).await;
    let b = Instance::start(dir.path(), "b", &db_url).await;
    let http = client();
    for i in 0..20 {
        let at = if i % 2 == 0 { &a } else { &b };
        assert!(submit(&http, &at.url("/c/demo"), &format!("twin-{i}@example.com")).await);
    }
    let db = leadgate::store::Db::connect(&db_url).await.unwrap();
    let attempts = attempts_by_email(&db).await;
    let (paid, unpaid): (Vec<_>, Vec<_>) = attempts.values().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    for (i, reference) in &paid {
        let (body, sig) = sandbox_event(&format!("evt_twin_{i}"), reference);
        // The gateway's retry reaches the other instance: both see every event.
        for at in [&a, &b] {
            assert!(deliver(&http, &at.url("/webhooks/sandbox"), &body, &sig).await);
        }
    }
    // Follow-ups are due 4 s and 5 s after each attempt (the payments above are applied
    // well before that); both workers race for them.
    let started = Instant::now();
    eventually("two follow-up tasks per unpaid attempt", || async {
        let tasks = leadgate::store::builtin_crm::tasks(&db, 1000).await.unwrap();
        tasks.len() >= unpaid.len() * 2 && started.elapsed() > Duration::from_secs(6)
    })
    .await;
    settled(&db).await;
    let tasks = leadgate::store::builtin_crm::tasks(&db, 1000).await.unwrap();
    assert_eq!(tasks.len(), unpaid.len() * 2, "each follow-up created once");
    let deals = leadgate::store::builtin_crm::deals(&db, 1000).await.unwrap();
    assert_eq!(deals.len(), attempts.len(), "one deal per attempt");
    for (_, reference) in &paid {
        assert_eq!(
            leadgate::store::inbox::count_for_reference(&db, "sandbox", reference)
                .await
                .unwrap(),
            1
        );
        let deal = deals.iter().find(|d| &d.external_key == reference).unwrap();
        assert_eq!(deal.status, "won");
    }
    for (_, reference) in &unpaid {
        let deal = deals.iter().find(|d| &d.external_key == reference).unwrap();
        assert_eq!(deal.status, "open");
    }
    db.close().await;
}
