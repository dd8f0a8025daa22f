//! Faults with the real binary: SIGKILL in the middle of a webhook flood, and two
//! processes sharing one PostgreSQL database. The CRM is the fake Pipedrive, which keeps
//! every object it is asked to create, so "exactly one" is counted in the requests it got
//! (the built-in CRM's inserts are upserts and would hide a duplicate). Traffic goes to
//! 127.0.0.1 only, and every loop is bounded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tokio::sync::Mutex;

use crate::both_backends;
use crate::crm::pipedrive::SharedPipedrive;
use crate::process::{client, post_event, sandbox_event, submit_contact, Instance, Launch};
use crate::support::{database, eventually, Backend};

both_backends!(sigkill_twice_during_a_webhook_flood_loses_nothing);

fn config(db_url: &str, crm: &SharedPipedrive) -> Launch {
    let text = format!(
        r#"
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

{}
"#,
        crm.toml()
    );
    let (var, token) = SharedPipedrive::TOKEN;
    Launch {
        config: text,
        env: vec![(var.to_owned(), token.to_owned())],
    }
}

/// Submits the form; true when the customer got their redirect. Each customer has a
/// phone of their own (`n` picks it): Pipedrive's adapter reuses a person found by phone.
async fn submit(http: &reqwest::Client, url: &str, email: &str, n: u32) -> bool {
    let phone = (3_001_000_000u64 + u64::from(n)).to_string();
    submit_contact(http, url, email, &phone).await == Some(303)
}

/// Sends one webhook until the server gives an HTTP answer (a gateway retries on
/// connection errors and non-2xx); returns whether that answer was 200.
async fn deliver(http: &reqwest::Client, url: &str, body: &[u8], sig: &str) -> bool {
    for _ in 0..200 {
        match post_event(http, url, body, sig).await {
            Some(200) => return true,
            Some(s) if s >= 500 => {}
            Some(_) => return false,
            None => {}
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

/// How many persons were created with this email.
fn person_creates(crm: &SharedPipedrive, email: &str) -> usize {
    let created = crm.created("/api/v2/persons");
    created.iter().filter(|p| p["emails"][0]["value"] == email).count()
}

/// How many deals were created for this attempt.
fn deal_creates(crm: &SharedPipedrive, attempt_id: &str) -> usize {
    let created = crm.created("/api/v2/deals");
    created
        .iter()
        .filter(|d| SharedPipedrive::attempt_of(d) == attempt_id)
        .count()
}

/// How many tasks (activities) were created on this deal.
fn tasks_of(crm: &SharedPipedrive, deal: &serde_json::Value) -> usize {
    let created = crm.created("/api/v2/activities");
    created.iter().filter(|t| t["deal_id"] == deal["id"]).count()
}

/// No follow-up task was created twice: each carries its key's marker in its note.
fn no_task_twice(crm: &SharedPipedrive) {
    let mut markers = HashSet::new();
    for task in crm.created("/api/v2/activities") {
        let note = task["note"].as_str().unwrap_or_default();
        let marker = note.rsplit("[leadgate:").next().unwrap_or_default().to_owned();
        assert!(note.contains("[leadgate:"), "a task without its marker: {task}");
        assert!(markers.insert(marker), "a task created twice: {task}");
    }
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
    let crm = SharedPipedrive::start().await;
    let mut server = Instance::start(dir.path(), "a", config(&db_url, &crm)).await;
    let http = client();
    let mut submitted = Vec::new();
    for i in 0..24 {
        let email = format!("before-{i}@example.com");
        assert!(submit(&http, &server.url("/c/demo"), &email, i).await);
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
        if submit(&http, &server.url("/c/demo"), &email, 100 + round).await {
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
    // Every lead, paid or not, has its one person and its one deal.
    for email in &submitted {
        assert_eq!(person_creates(&crm, email), 1, "persons created for {email}");
    }
    for attempt in stored.values() {
        assert_eq!(deal_creates(&crm, attempt), 1, "deals created for {attempt}");
    }
    let deals = crm.deals();
    for reference in &references {
        let n = leadgate::store::inbox::count_for_reference(&db, "sandbox", reference)
            .await
            .unwrap();
        assert_eq!(n, 1, "one inbox row per event, duplicates collapsed");
        let attempt = leadgate::store::attempts::get(&db, reference).await.unwrap().unwrap();
        assert_eq!(attempt.status.as_str(), "approved");
        let mine: Vec<_> = deals
            .iter()
            .filter(|d| &SharedPipedrive::attempt_of(d) == reference)
            .collect();
        assert_eq!(mine.len(), 1, "exactly one deal for {reference}");
        assert_eq!(mine[0]["status"], "won");
    }
    no_task_twice(&crm);
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
    let crm = SharedPipedrive::start().await;
    let a = Instance::start(dir.path(), "a", config(&db_url, &crm)).await;
    let b = Instance::start(dir.path(), "b", config(&db_url, &crm)).await;
    let http = client();
    for i in 0..20 {
        let at = if i % 2 == 0 { &a } else { &b };
        assert!(submit(&http, &at.url("/c/demo"), &format!("twin-{i}@example.com"), i).await);
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
        let tasks = crm.created("/api/v2/activities");
        tasks.len() >= unpaid.len() * 2 && started.elapsed() > Duration::from_secs(6)
    })
    .await;
    settled(&db).await;
    let tasks = crm.created("/api/v2/activities");
    assert_eq!(tasks.len(), unpaid.len() * 2, "each follow-up created once");
    no_task_twice(&crm);
    assert_eq!(
        crm.created("/api/v2/deals").len(),
        attempts.len(),
        "one deal per attempt"
    );
    for (email, attempt) in &attempts {
        assert_eq!(deal_creates(&crm, attempt), 1, "deals created for {attempt}");
        assert_eq!(person_creates(&crm, email), 1, "persons created for {email}");
    }
    let deals = crm.deals();
    let deal_of = |reference: &String| {
        let mut mine = deals.iter().filter(|d| &SharedPipedrive::attempt_of(d) == reference);
        let deal = mine.next().unwrap_or_else(|| panic!("no deal for {reference}"));
        assert!(mine.next().is_none(), "two deals for {reference}");
        deal.clone()
    };
    for (_, reference) in &paid {
        assert_eq!(
            leadgate::store::inbox::count_for_reference(&db, "sandbox", reference)
                .await
                .unwrap(),
            1
        );
        assert_eq!(deal_of(reference)["status"], "won");
        assert_eq!(tasks_of(&crm, &deal_of(reference)), 0, "a paid attempt needs no call");
    }
    for (_, reference) in &unpaid {
        let deal = deal_of(reference);
        assert!(deal["status"].is_null(), "never marked won or lost: {deal}");
        assert_eq!(tasks_of(&crm, &deal), 2, "one task per follow-up step");
    }
    db.close().await;
}
