//! Reconciliation on several instances, beside webhook events, and against a gateway that
//! answers 404: claimed once per attempt and interval, run under the lead lock, and never
//! mistaking a refusal for "no payment".

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::both_backends;
use crate::gateways::{checks, deliver, now_s, submit};
use crate::support::{eventually, spawn_beside, spawn_with, Backend, Options, TestApp};
use leadgate::domain::PaymentStatus;
use leadgate::flows::reconcile::{pass, Pass};

const EVENTS_SECRET: &str = "test_events_Rc0n1l";
const PRIVATE_KEY: &str = "prv_test_Rc0n1l";
const AMOUNT: i64 = 9_500_000;

/// Settings for a Wompi offer at `base`; reconciliation runs only when a test calls it,
/// asks at once, and then not again for an hour (one interval spans the whole test).
fn options(base: &str, checkout_ttl: Duration) -> Options {
    let toml = format!(
        r#"
[gateways.wompi]
environment = "sandbox"
api_base = "{base}/v1"
checkout_url = "{base}/p/"
public_key = "pub_test_Rc0n1l"

[[offers]]
slug = "curso-wompi"
title = "Curso Wompi"
price_minor = {AMOUNT}
currency = "COP"
gateway = "wompi"
ask_tax_id = true
followup_delays = ["30m"]
"#
    );
    Options {
        toml,
        env: vec![
            ("LEADGATE_WOMPI_PRIVATE_KEY", PRIVATE_KEY.to_string()),
            ("LEADGATE_WOMPI_EVENTS_SECRET", EVENTS_SECRET.to_string()),
            ("LEADGATE_WOMPI_INTEGRITY_SECRET", "test_integrity_Rc0n1l".to_string()),
        ],
        tweak: Box::new(move |s| {
            s.reconcile.enabled = false;
            s.reconcile.after = Duration::ZERO;
            s.reconcile.interval = Duration::from_secs(3600);
            s.checkout_ttl = checkout_ttl;
            // Many attempts from one customer: each submit opens its own.
            s.forms.duplicate_window = Duration::ZERO;
        }),
        ..Options::default()
    }
}

/// Wompi's search by reference, answering `status` for every reference (None: no
/// transaction yet) after `delay`.
async fn wompi_search(server: &MockServer, status: Option<&'static str>, delay: Duration) {
    Mock::given(method("GET"))
        .and(path("/v1/transactions"))
        .respond_with(move |req: &Request| {
            let reference = reference_of(req).unwrap_or_default();
            let data = match status {
                Some(status) => vec![transaction(&format!("tx-{reference}"), &reference, status)],
                None => vec![],
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": data }))
                .set_delay(delay)
        })
        .mount(server)
        .await;
}

fn reference_of(req: &Request) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == "reference")
        .map(|(_, v)| v.into_owned())
}

/// How many times the gateway was asked about each of `attempts`.
async fn lookups(server: &MockServer, attempts: &[String]) -> Vec<usize> {
    let requests = server.received_requests().await.unwrap();
    attempts
        .iter()
        .map(|id| {
            requests
                .iter()
                .filter(|r| reference_of(r).as_deref() == Some(id))
                .count()
        })
        .collect()
}

fn transaction(id: &str, reference: &str, status: &str) -> Value {
    json!({
        "id": id,
        "created_at": "2026-11-23T10:00:00.000Z",
        "amount_in_cents": AMOUNT,
        "reference": reference,
        "currency": "COP",
        "payment_method_type": "CARD",
        "status": status,
        "status_message": null,
    })
}

/// A `transaction.updated` event signed as Wompi signs it, the reference included, so it
/// carries its status and is queued under its lead (an event that leaves the reference
/// unsigned is re-read from the API and queued without a lead: see the report).
async fn send_event(app: &TestApp, tx: &Value) -> u16 {
    let ts = now_s();
    let signed = format!(
        "{}{}{}{}{ts}{EVENTS_SECRET}",
        tx["id"].as_str().unwrap(),
        tx["status"].as_str().unwrap(),
        tx["amount_in_cents"],
        tx["reference"].as_str().unwrap(),
    );
    let checksum = hex::encode(Sha256::digest(signed.as_bytes()));
    let body = json!({
        "event": "transaction.updated",
        "data": { "transaction": tx },
        "environment": "test",
        "signature": {
            "properties": [
                "transaction.id",
                "transaction.status",
                "transaction.amount_in_cents",
                "transaction.reference"
            ],
            "checksum": checksum,
        },
        "timestamp": ts,
        "sent_at": "2026-11-23T10:00:01.000Z",
    });
    deliver(
        app,
        "/webhooks/wompi",
        &[("X-Event-Checksum", checksum)],
        &body.to_string(),
    )
    .await
    .0
}

async fn attempt_ids(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for lead in leadgate::store::leads::all(&app.ctx.db).await.unwrap() {
        for a in leadgate::store::attempts::for_lead(&app.ctx.db, &lead.id)
            .await
            .unwrap()
        {
            ids.push(a.id);
        }
    }
    ids
}

async fn attempt(app: &TestApp, id: &str) -> leadgate::domain::lead::Attempt {
    leadgate::store::attempts::get(&app.ctx.db, id).await.unwrap().unwrap()
}

fn status_changes(app: &TestApp, source: &str, status: &str) -> u64 {
    let metrics = app.ctx.metrics.render().unwrap();
    let series =
        format!("leadgate_payment_status_changes_total{{gateway=\"wompi\",source=\"{source}\",status=\"{status}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A third connection holding the attempts against writes: passes can read which are due,
/// and wait at their first claim.
enum WriteHold {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl WriteHold {
    async fn take(app: &TestApp) -> Self {
        use sqlx::Connection;
        let url = &app.ctx.settings.database_url;
        match &app.ctx.db {
            leadgate::store::Db::Postgres(_) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut c).await.unwrap();
                sqlx::query("SELECT id FROM attempts FOR UPDATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                WriteHold::Postgres(c)
            }
            leadgate::store::Db::Sqlite(_) => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
                WriteHold::Sqlite(c)
            }
        }
    }

    /// Lets the claims go once both passes wait on a claim (PostgreSQL shows them
    /// waiting for the row lock; SQLite shows nothing, so it gets a moment instead).
    async fn release_once_two_wait(self) {
        match self {
            WriteHold::Postgres(mut c) => {
                let sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                           AND wait_event_type = 'Lock' AND query LIKE 'UPDATE attempts SET checked_at%'";
                for _ in 0..600 {
                    let waiting: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                    if waiting >= 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            WriteHold::Sqlite(mut c) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

both_backends!(two_instances_ask_the_gateway_once_per_attempt_per_interval);

async fn two_instances_ask_the_gateway_once_per_attempt_per_interval(backend: Backend) {
    const N: usize = 12;
    let server = MockServer::start().await;
    wompi_search(&server, None, Duration::ZERO).await;
    let ttl = Duration::from_secs(3600);
    let a = spawn_with(backend, options(&server.uri(), ttl)).await;
    let b = spawn_beside(&a, options(&server.uri(), ttl)).await;
    for _ in 0..N {
        submit(&a, "curso-wompi").await;
    }
    let ids = attempt_ids(&a).await;
    assert_eq!(ids.len(), N);

    // Both instances' passes at once, and both find all N due before either can claim one.
    let hold = WriteHold::take(&a).await;
    let (ca, cb) = (a.ctx.clone(), b.ctx.clone());
    let pa = tokio::spawn(async move { pass(&ca).await.unwrap() });
    let pb = tokio::spawn(async move { pass(&cb).await.unwrap() });
    hold.release_once_two_wait().await;
    let (pa, pb) = (pa.await.unwrap(), pb.await.unwrap());
    assert_eq!((pa.due, pb.due), (N, N));
    a.settle().await;
    b.settle().await;
    assert_eq!(lookups(&server, &ids).await, vec![1; N]);
    assert_eq!(pa.claimed + pb.claimed, N, "{pa:?} {pb:?}");
    let asked = |result| checks(&a, "wompi", result) + checks(&b, "wompi", result);
    assert_eq!(asked("no_payment"), N as u64);

    // Within the same interval nobody asks again, however many passes run.
    let (pa, pb) = tokio::join!(pass(&a.ctx), pass(&b.ctx));
    assert_eq!((pa.unwrap(), pb.unwrap()), (Pass::default(), Pass::default()));
    a.settle().await;
    b.settle().await;
    assert_eq!(lookups(&server, &ids).await, vec![1; N]);
}

both_backends!(a_webhook_event_waits_for_the_reconciliation_of_its_lead);

async fn a_webhook_event_waits_for_the_reconciliation_of_its_lead(backend: Backend) {
    // Reconciliation will learn "PENDING", slowly; meanwhile the webhook says "APPROVED".
    let server = MockServer::start().await;
    wompi_search(&server, Some("PENDING"), Duration::from_secs(3)).await;
    let app = spawn_with(backend, options(&server.uri(), Duration::from_secs(3600))).await;
    submit(&app, "curso-wompi").await;
    let id = attempt_ids(&app).await.remove(0);
    assert_eq!(pass(&app.ctx).await.unwrap().claimed, 1);
    // The reconcile job is running: it has asked Wompi and waits for the answer.
    eventually("the reconciliation lookup to start", || async {
        lookups(&server, std::slice::from_ref(&id)).await == vec![1]
    })
    .await;
    let paid = transaction("tx-paid", &id, "APPROVED");
    assert_eq!(send_event(&app, &paid).await, 200);
    app.settle().await;
    // Had the event run beside the lookup, APPROVED would have landed first and the
    // reconciliation's PENDING been ignored as stale. Under the lead lock the event waits:
    // PENDING is applied by reconciliation, then APPROVED by the webhook.
    assert_eq!(status_changes(&app, "reconcile", "pending"), 1);
    assert_eq!(status_changes(&app, "webhook", "approved"), 1);
    let a = attempt(&app, &id).await;
    assert_eq!(
        (a.status, a.settled_by.as_deref()),
        (PaymentStatus::Approved, Some("webhook"))
    );
}

both_backends!(a_404_for_a_known_reference_is_a_failed_check_and_expires_nothing);

async fn a_404_for_a_known_reference_is_a_failed_check_and_expires_nothing(backend: Backend) {
    // A wrong api_base: every request is answered 404. The checkout closed at once, so
    // reading the 404 as "no payment" would expire the attempt.
    let server = MockServer::start().await;
    let app = spawn_with(backend, options(&server.uri(), Duration::ZERO)).await;
    submit(&app, "curso-wompi").await;
    let id = attempt_ids(&app).await.remove(0);
    // "Closed" and "due" are strictly after creation: let a millisecond pass.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(pass(&app.ctx).await.unwrap().claimed, 1);
    app.settle().await;
    assert_eq!(lookups(&server, std::slice::from_ref(&id)).await, vec![1]);
    let a = attempt(&app, &id).await;
    assert_eq!((a.status, a.settled_by), (PaymentStatus::Redirected, None));
    assert_eq!(checks(&app, "wompi", "failed"), 1);
    assert_eq!(checks(&app, "wompi", "no_payment"), 0);
    // The operator sees why, on the parked job.
    let jobs = leadgate::store::jobs::for_lead(&app.ctx.db, &a.lead_id).await.unwrap();
    let check = jobs.iter().find(|j| j.kind == "reconcile").unwrap();
    assert_eq!(check.state, leadgate::store::jobs::JobState::Dead);
    let error = check.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("404"), "{error}");
}
