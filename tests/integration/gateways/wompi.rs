//! Wompi: Web Checkout redirect, events with the properties checksum, transaction reads.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{app_with, deliver, now_s, only_attempt, query_map, submit, wait_for_deal, wait_for_status};
use crate::both_backends;
use crate::support::{Backend, TestApp};
use leadgate::domain::PaymentStatus;

const EVENTS_SECRET: &str = "test_events_Vi2Kq9";
const INTEGRITY_SECRET: &str = "test_integrity_Jp0Zx1";
const PRIVATE_KEY: &str = "prv_test_Lm4Nb7";

/// Wompi's API as far as we use it: transactions by id (public) and by reference (private
/// key). Also the gateway of the CRM tests that follow a payment after approval.
pub struct FakeWompi {
    server: MockServer,
    txs: Arc<Mutex<Vec<Value>>>,
}

impl FakeWompi {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let txs: Arc<Mutex<Vec<Value>>> = Arc::default();
        let by_id = txs.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/transactions/[^/]+$"))
            .respond_with(move |req: &Request| {
                let id = req.url.path().rsplit('/').next().unwrap_or_default().to_owned();
                match by_id.lock().unwrap().iter().find(|t| t["id"] == id.as_str()) {
                    Some(t) => ResponseTemplate::new(200).set_body_json(json!({ "data": t })),
                    None => ResponseTemplate::new(404).set_body_json(json!({"error": {"type": "NOT_FOUND_ERROR"}})),
                }
            })
            .mount(&server)
            .await;
        let by_ref = txs.clone();
        Mock::given(method("GET"))
            .and(path("/v1/transactions"))
            .respond_with(move |req: &Request| {
                let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth != Some(&format!("Bearer {PRIVATE_KEY}")) {
                    return ResponseTemplate::new(401)
                        .set_body_json(json!({"error": {"type": "INVALID_ACCESS_TOKEN"}}));
                }
                let reference: String = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "reference")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let found: Vec<Value> = by_ref
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|t| t["reference"] == reference.as_str())
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({ "data": found }))
            })
            .mount(&server)
            .await;
        Self { server, txs }
    }

    /// The customer pays (or fails to) inside Wompi's checkout: a transaction appears or changes.
    pub fn transaction(&self, id: &str, reference: &str, status: &str, amount_in_cents: i64) -> Value {
        let tx = json!({
            "id": id,
            "created_at": "2026-11-23T10:00:00.000Z",
            "amount_in_cents": amount_in_cents,
            "reference": reference,
            "customer_email": "ana@example.com",
            "currency": "COP",
            "payment_method_type": "CARD",
            "status": status,
            "status_message": null,
        });
        let mut txs = self.txs.lock().unwrap();
        txs.retain(|t| t["id"] != id);
        txs.push(tx.clone());
        tx
    }

    /// The `[gateways.wompi]` table pointing at this fake.
    pub fn gateway_toml(&self) -> String {
        format!(
            r#"
[gateways.wompi]
environment = "sandbox"
api_base = "{base}/v1"
checkout_url = "{base}/p/"
public_key = "pub_test_Qw3Er5"
"#,
            base = self.server.uri()
        )
    }

    /// The keys the gateway table leaves to the environment.
    pub fn env() -> Vec<(&'static str, String)> {
        vec![
            ("LEADGATE_WOMPI_PRIVATE_KEY", PRIVATE_KEY.to_string()),
            ("LEADGATE_WOMPI_EVENTS_SECRET", EVENTS_SECRET.to_string()),
            ("LEADGATE_WOMPI_INTEGRITY_SECRET", INTEGRITY_SECRET.to_string()),
        ]
    }

    fn config(&self) -> (String, Vec<(&'static str, String)>) {
        let offer = r#"
[[offers]]
slug = "curso-wompi"
title = "Curso Wompi"
price_minor = 9500000
currency = "COP"
gateway = "wompi"
ask_tax_id = true
followup_delays = ["30m"]
"#;
        (format!("{}{offer}", self.gateway_toml()), Self::env())
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A `transaction.updated` event signed the way Wompi signs it.
fn event(tx: &Value, secret: &str) -> (String, String) {
    signed_at(tx, secret, now_s())
}

/// A `transaction.updated` event signed with the fake's events secret, sent at `ts`; the
/// body and its `X-Event-Checksum`.
pub fn event_at(tx: &Value, ts: i64) -> (String, String) {
    signed_at(tx, EVENTS_SECRET, ts)
}

fn signed_at(tx: &Value, secret: &str, ts: i64) -> (String, String) {
    let t = &tx;
    let concat = format!(
        "{}{}{}{ts}{secret}",
        t["id"].as_str().unwrap(),
        t["status"].as_str().unwrap(),
        t["amount_in_cents"]
    );
    let checksum = sha256_hex(&concat);
    let body = json!({
        "event": "transaction.updated",
        "data": { "transaction": tx },
        "environment": "test",
        "signature": {
            "properties": ["transaction.id", "transaction.status", "transaction.amount_in_cents"],
            "checksum": checksum,
        },
        "timestamp": ts,
        "sent_at": "2026-11-23T10:00:01.000Z",
    });
    (body.to_string(), checksum)
}

async fn send(app: &TestApp, tx: &Value) -> (u16, String) {
    let (body, checksum) = event(tx, EVENTS_SECRET);
    deliver(app, "/webhooks/wompi", &[("X-Event-Checksum", checksum)], &body).await
}

async fn setup(backend: Backend) -> (FakeWompi, TestApp) {
    let fake = FakeWompi::start().await;
    let (toml, env) = fake.config();
    let app = app_with(backend, toml, env).await;
    (fake, app)
}

both_backends!(wompi_approved_journey, wompi_void_after_approval_loses_the_deal_once);

async fn wompi_approved_journey(backend: Backend) {
    let (fake, app) = setup(backend).await;
    let checkout = submit(&app, "curso-wompi").await;
    assert!(
        checkout.starts_with(&format!("{}/p/?", fake.server.uri())),
        "{checkout}"
    );
    let q = query_map(&checkout);
    let attempt = only_attempt(&app).await;
    assert_eq!(attempt.status, PaymentStatus::Redirected);
    assert_eq!(q["public-key"], "pub_test_Qw3Er5");
    assert_eq!(q["currency"], "COP");
    assert_eq!(q["amount-in-cents"], "9500000");
    assert_eq!(q["reference"], attempt.id);
    let expiration = &q["expiration-time"];
    assert!(expiration.ends_with('Z') && expiration.len() == 24, "{expiration}");
    let integrity = sha256_hex(&format!("{}9500000COP{expiration}{INTEGRITY_SECRET}", attempt.id));
    assert_eq!(q["signature:integrity"], integrity);
    assert_eq!(
        q["redirect-url"],
        app.url(&format!("/return/wompi?attempt={}&lang=es", attempt.id))
    );
    assert_eq!(q["customer-data:email"], "ana@example.com");
    assert_eq!(q["customer-data:full-name"], "Ana María Pérez");
    assert_eq!(q["customer-data:phone-number"], "3001234567");
    assert_eq!(q["customer-data:phone-number-prefix"], "+57");
    assert_eq!(q["customer-data:legal-id"], "1020304050");
    assert_eq!(q["customer-data:legal-id-type"], "CC");

    // The deal is open before the customer pays.
    wait_for_deal(&app, "open").await;
    let tx = fake.transaction("1234-1700000000-49201", &attempt.id, "APPROVED", 9_500_000);
    assert_eq!(send(&app, &tx).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(&app, "won").await;

    // The browser comes back with Wompi's `id`; the page shows what the API says.
    let back = app
        .get(&format!(
            "/return/wompi?attempt={}&id=1234-1700000000-49201&env=test",
            attempt.id
        ))
        .await;
    assert_eq!(back.status(), 200);
    assert!(back.text().await.unwrap().contains(r#"data-status="approved""#));
    let settled = super::attempt(&app, &attempt.id).await;
    assert_eq!(settled.settled_by.as_deref(), Some("webhook"));
    assert_eq!(settled.gateway_ref.as_deref(), Some("1234-1700000000-49201"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wompi_decline_makes_a_follow_up_and_a_lost_deal() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    let tx = fake.transaction("1234-1-1", &attempt.id, "DECLINED", 9_500_000);
    assert_eq!(send(&app, &tx).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Declined).await;
    wait_for_deal(&app, "lost").await;
    app.settle().await;
    let tasks = app.tasks().await;
    assert_eq!(tasks.len(), 1, "one decline follow-up");
    assert!(tasks[0].body.contains("DECLINED"), "{}", tasks[0].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wompi_pending_then_approved_duplicates_and_late_events() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    // PSE: pending first; never treated as abandoned.
    let pending = fake.transaction("77-1-1", &attempt.id, "PENDING", 9_500_000);
    assert_eq!(send(&app, &pending).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Pending).await;
    let page = app
        .get(&format!("/return/wompi?attempt={}&id=77-1-1", attempt.id))
        .await;
    assert!(page.text().await.unwrap().contains(r#"data-status="pending""#));

    let approved = fake.transaction("77-1-1", &attempt.id, "APPROVED", 9_500_000);
    assert_eq!(send(&app, &approved).await.0, 200);
    // Wompi retries: the same change again is a duplicate.
    let (status, body) = send(&app, &approved).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    // Out of order: the PENDING of an earlier try inside Wompi's checkout (same reference,
    // still pending at Wompi) arrives after the approval, and changes nothing.
    let earlier_try = fake.transaction("77-1-0", &attempt.id, "PENDING", 9_500_000);
    let (status, body) = send(&app, &earlier_try).await;
    assert_eq!((status, body.contains("accepted")), (200, true), "{body}");
    app.settle().await;
    assert_eq!(super::attempt(&app, &attempt.id).await.status, PaymentStatus::Approved);
    wait_for_deal(&app, "won").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wompi_forged_or_tampered_events_are_refused_and_not_stored() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    let tx = fake.transaction("9-9-9", &attempt.id, "APPROVED", 9_500_000);
    let (forged, sum) = event(&tx, "test_events_guessed");
    assert_eq!(
        deliver(&app, "/webhooks/wompi", &[("X-Event-Checksum", sum)], &forged)
            .await
            .0,
        401
    );
    let (good, sum) = event(&tx, EVENTS_SECRET);
    let cheaper = good.replace("9500000", "100");
    assert_eq!(
        deliver(&app, "/webhooks/wompi", &[("X-Event-Checksum", sum)], &cheaper)
            .await
            .0,
        401
    );
    app.settle().await;
    assert_eq!(
        super::attempt(&app, &attempt.id).await.status,
        PaymentStatus::Redirected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wompi_missed_webhook_is_fixed_by_reconciliation() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    // Paid at Wompi, but the event never reached us (and the customer closed the tab).
    fake.transaction("5-5-5", &attempt.id, "APPROVED", 9_500_000);
    let pass = super::reconcile(&app).await;
    assert_eq!((pass.due, pass.claimed), (1, 1));
    assert_eq!(super::checks(&app, "wompi", "fixed"), 1);
    let fixed = super::attempt(&app, &attempt.id).await;
    assert_eq!(fixed.status, PaymentStatus::Approved);
    assert_eq!(fixed.settled_by.as_deref(), Some("reconcile"));
    wait_for_deal(&app, "won").await;
    // Nothing left to ask about.
    let again = super::reconcile(&app).await;
    assert_eq!(again.due, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wompi_payment_for_a_different_amount_never_wins() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    let tx = fake.transaction("3-3-3", &attempt.id, "APPROVED", 100);
    assert_eq!(send(&app, &tx).await.0, 200);
    app.settle().await;
    assert_eq!(
        super::attempt(&app, &attempt.id).await.status,
        PaymentStatus::Redirected
    );
    assert!(app
        .ctx
        .metrics
        .render()
        .unwrap()
        .contains("leadgate_payment_mismatches_total{gateway=\"wompi\"} 1"));
}

/// Notes the built-in CRM holds.
async fn note_count(app: &TestApp) -> usize {
    leadgate::store::builtin_crm::notes(&app.ctx.db, 1000)
        .await
        .unwrap()
        .len()
}

/// A card payment approved, then annulled the same day: Wompi sends a second
/// `transaction.updated` for the same transaction, now VOIDED (the docs' events page).
/// The attempt stays paid-then-voided, the deal is lost as voided with one note, and
/// Wompi's retry of the void changes nothing.
async fn wompi_void_after_approval_loses_the_deal_once(backend: Backend) {
    let (fake, app) = setup(backend).await;
    submit(&app, "curso-wompi").await;
    let attempt = only_attempt(&app).await;
    let approved = fake.transaction("1234-1700000000-70001", &attempt.id, "APPROVED", 9_500_000);
    assert_eq!(send(&app, &approved).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(&app, "won").await;
    app.settle().await;
    let before = note_count(&app).await;

    let voided = fake.transaction("1234-1700000000-70001", &attempt.id, "VOIDED", 9_500_000);
    let (status, body) = send(&app, &voided).await;
    assert_eq!((status, body.contains("accepted")), (200, true), "{body}");
    wait_for_deal(&app, "lost").await;
    app.settle().await;
    let deals = app.deals().await;
    assert_eq!(deals[0].lost_reason.as_deref(), Some("Payment voided"));
    assert_eq!(note_count(&app).await, before + 1);
    let a = super::attempt(&app, &attempt.id).await;
    assert_eq!(a.status, PaymentStatus::Approved, "voided after approval, not declined");
    assert!(a.after.reversal.voided);
    assert_eq!(a.after.payment_method.as_deref(), Some("card"));

    // Wompi retries the same signed change, twice: one event, one note.
    let (status, body) = send(&app, &voided).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    let (status, _) = send(&app, &voided).await;
    assert_eq!(status, 200);
    app.settle().await;
    assert_eq!(note_count(&app).await, before + 1);
    assert_eq!(super::attempt(&app, &attempt.id).await.after.reversal_version, 1);
    assert_eq!(app.deals().await[0].lost_reason.as_deref(), Some("Payment voided"));
}
