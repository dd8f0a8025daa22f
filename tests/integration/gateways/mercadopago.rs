//! Mercado Pago Checkout Pro: preferences, notifications signed over the query's
//! `data.id`, payments read back by id and searched by external reference.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{app_with, deliver, now_s, only_attempt, submit, wait_for_deal, wait_for_status};
use crate::both_backends;
use crate::support::{Backend, TestApp};
use leadgate::domain::PaymentStatus;

const TOKEN: &str = "TEST-8812-token";
const WEBHOOK_SECRET: &str = "mp_webhook_secret_9f";

#[derive(Default)]
struct Ledger {
    preferences: Vec<Value>,
    payments: Vec<Value>,
    /// Answer preference creates this late (longer than leadgate's timeout).
    slow: Option<std::time::Duration>,
    /// Answer payment searches (reconciliation's question) this late.
    slow_search: Option<std::time::Duration>,
    searches: usize,
}

pub struct FakeMercadoPago {
    pub server: MockServer,
    ledger: Arc<Mutex<Ledger>>,
}

fn authorized(req: &Request) -> bool {
    req.headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"message": "invalid access token", "status": 401}))
}

impl FakeMercadoPago {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let ledger: Arc<Mutex<Ledger>> = Arc::default();
        let (prefs, base) = (ledger.clone(), server.uri());
        Mock::given(method("POST"))
            .and(path("/checkout/preferences"))
            .respond_with(move |req: &Request| {
                if !authorized(req) {
                    return unauthorized();
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let mut l = prefs.lock().unwrap();
                let id = format!("202809963-pref{}", l.preferences.len() + 1);
                l.preferences.push(body);
                let created = ResponseTemplate::new(201).set_body_json(json!({
                    "id": id,
                    "init_point": format!("{base}/checkout/v1/redirect?pref_id={id}"),
                    "sandbox_init_point": format!("{base}/sandbox/checkout/v1/redirect?pref_id={id}"),
                }));
                match l.slow {
                    Some(delay) => created.set_delay(delay),
                    None => created,
                }
            })
            .mount(&server)
            .await;
        let by_id = ledger.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/payments/[0-9]+$"))
            .respond_with(move |req: &Request| {
                if !authorized(req) {
                    return unauthorized();
                }
                let id: i64 = req.url.path().rsplit('/').next().unwrap().parse().unwrap();
                match by_id.lock().unwrap().payments.iter().find(|p| p["id"] == id) {
                    Some(p) => ResponseTemplate::new(200).set_body_json(p),
                    None => ResponseTemplate::new(404).set_body_json(json!({"message": "Payment not found"})),
                }
            })
            .mount(&server)
            .await;
        let search = ledger.clone();
        Mock::given(method("GET"))
            .and(path("/v1/payments/search"))
            .respond_with(move |req: &Request| {
                if !authorized(req) {
                    return unauthorized();
                }
                let reference: String = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "external_reference")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                // Newest first, as asked with sort=date_created&criteria=desc.
                let mut l = search.lock().unwrap();
                l.searches += 1;
                let results: Vec<Value> = l
                    .payments
                    .iter()
                    .rev()
                    .filter(|p| p["external_reference"] == reference.as_str())
                    .cloned()
                    .collect();
                let found = ResponseTemplate::new(200)
                    .set_body_json(json!({ "results": results, "paging": {"total": results.len()} }));
                match l.slow_search {
                    Some(delay) => found.set_delay(delay),
                    None => found,
                }
            })
            .mount(&server)
            .await;
        Self { server, ledger }
    }

    /// A payment appears or changes at Mercado Pago.
    pub fn payment(&self, id: i64, reference: &str, status: &str, amount: f64) {
        let p = json!({
            "id": id,
            "status": status,
            "status_detail": if status == "approved" { "accredited" } else { "pending_waiting_payment" },
            "external_reference": reference,
            "transaction_amount": amount,
            "currency_id": "BRL",
            "date_created": "2026-11-23T10:00:00.000-03:00",
            "payment_type_id": "bank_transfer",
            "payment_method_id": "pix",
        });
        let mut l = self.ledger.lock().unwrap();
        l.payments.retain(|x| x["id"] != id);
        l.payments.push(p);
    }

    /// What became of an approved payment since: its status words and, when Mercado Pago
    /// says, the refunded total so far (major units), as `GET /v1/payments/{id}` shows them.
    pub fn after_sale(&self, id: i64, status: &str, status_detail: &str, refunded: Option<f64>) {
        let mut l = self.ledger.lock().unwrap();
        let p = l
            .payments
            .iter_mut()
            .find(|x| x["id"] == id)
            .expect("an existing payment");
        p["status"] = json!(status);
        p["status_detail"] = json!(status_detail);
        match refunded {
            Some(r) => p["transaction_amount_refunded"] = json!(r),
            None => {
                if let Some(o) = p.as_object_mut() {
                    o.remove("transaction_amount_refunded");
                }
            }
        }
    }

    pub fn config(&self) -> (String, Vec<(&'static str, String)>) {
        let toml = format!(
            r#"
[gateways.mercadopago]
environment = "sandbox"
api_base = "{}"
timeout = "1s"

[[offers]]
slug = "curso-br"
title = "Curso de Vendas"
price_minor = 29990
currency = "BRL"
gateway = "mercadopago"
ask_tax_id = true
phone_region = "BR"
followup_delays = ["30m"]
"#,
            self.server.uri()
        );
        let env = vec![
            ("LEADGATE_MERCADOPAGO_ACCESS_TOKEN", TOKEN.to_string()),
            ("LEADGATE_MERCADOPAGO_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ];
        (toml, env)
    }
}

/// A notification as Mercado Pago sends it: signed over the query's data.id, the
/// request id and the timestamp; the body itself is not signed.
async fn notify(app: &TestApp, notification: i64, payment: i64, secret: &str) -> (u16, String) {
    let headers = signed(payment, &format!("req-{notification}"), now_s(), secret);
    deliver(
        app,
        &notification_path(payment),
        &headers,
        &notification_body(notification, payment),
    )
    .await
}

fn notification_path(payment: i64) -> String {
    format!("/webhooks/mercadopago?data.id={payment}&type=payment")
}

/// The `x-signature` and `x-request-id` headers Mercado Pago sends with a notification.
fn signed(payment: i64, request_id: &str, ts: i64, secret: &str) -> [(&'static str, String); 2] {
    let manifest = format!("id:{payment};request-id:{request_id};ts:{ts};");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(manifest.as_bytes());
    let v1 = hex::encode(mac.finalize().into_bytes());
    [
        ("x-signature", format!("ts={ts},v1={v1}")),
        ("x-request-id", request_id.to_owned()),
    ]
}

fn notification_body(notification: i64, payment: i64) -> String {
    json!({
        "id": notification, "live_mode": false, "type": "payment", "date_created": "2026-11-23T10:00:00Z",
        "user_id": 44444, "api_version": "v1", "action": "payment.updated", "data": {"id": payment.to_string()},
    })
    .to_string()
}

/// Every call the fake's payments API received (lookups by id and searches).
pub async fn payment_reads(fake: &FakeMercadoPago) -> usize {
    let received = fake.server.received_requests().await.unwrap_or_default();
    received
        .iter()
        .filter(|r| r.method == wiremock::http::Method::GET && r.url.path().starts_with("/v1/payments"))
        .count()
}

async fn setup(backend: Backend) -> (FakeMercadoPago, TestApp) {
    let fake = FakeMercadoPago::start().await;
    let (toml, env) = fake.config();
    let app = app_with(backend, toml, env).await;
    (fake, app)
}

both_backends!(
    mercadopago_approved_journey,
    a_notification_naming_only_the_payment_waits_for_its_leads_running_job,
    a_captured_notification_replayed_with_other_bodies_is_one_event,
    a_notification_signed_too_long_ago_is_refused_and_stores_nothing
);

/// The body is not signed, so an attacker holding one real notification can send it again
/// with any body. Each must not become an inbox row, a job and a call to Mercado Pago:
/// the inbox key is built from the signed query `data.id` and `x-request-id` only.
async fn a_captured_notification_replayed_with_other_bodies_is_one_event(backend: Backend) {
    let (fake, app) = setup(backend).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    fake.payment(1_319_000_001, &attempt.id, "approved", 299.9);
    let captured = signed(1_319_000_001, "req-captured", now_s(), WEBHOOK_SECRET);
    let path = notification_path(1_319_000_001);
    let mut answers = Vec::new();
    for body_id in 1..=20 {
        let body = notification_body(body_id, 1_319_000_001 + body_id);
        answers.push(deliver(&app, &path, &captured, &body).await);
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert!(answers[0].1.contains("accepted"), "{}", answers[0].1);
    for (status, body) in &answers[1..] {
        assert_eq!((*status, body.contains("duplicate")), (200, true), "{body}");
    }
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    app.settle().await;
    // One row, and its job was enqueued with it in one transaction: one job.
    assert_eq!(leadgate::store::inbox::count(&app.ctx.db).await.unwrap(), 1);
    // The fake would answer every lookup; it was asked once.
    assert_eq!(payment_reads(&fake).await, 1);
}

/// Mercado Pago's docs leave the `ts` check optional; we always make it, so a captured
/// notification cannot be replayed later (5 minutes by default).
async fn a_notification_signed_too_long_ago_is_refused_and_stores_nothing(backend: Backend) {
    let (fake, app) = setup(backend).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    fake.payment(1_319_000_002, &attempt.id, "approved", 299.9);
    let old = signed(1_319_000_002, "req-old", now_s() - 6 * 60, WEBHOOK_SECRET);
    let (status, body) = deliver(
        &app,
        &notification_path(1_319_000_002),
        &old,
        &notification_body(7, 1_319_000_002),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("outside the accepted window"), "{body}");
    app.settle().await;
    assert_eq!(leadgate::store::inbox::count(&app.ctx.db).await.unwrap(), 0);
    assert_eq!(payment_reads(&fake).await, 0);
    assert_eq!(
        super::attempt(&app, &attempt.id).await.status,
        PaymentStatus::Redirected
    );
}

/// Mercado Pago's notifications name only its payment id, so the event's job is queued
/// before anyone knows whose payment it is. Once its lookup names our attempt it must
/// still wait for the lead's running job (here a slow reconciliation), as signed events
/// that name the attempt do.
async fn a_notification_naming_only_the_payment_waits_for_its_leads_running_job(backend: Backend) {
    let fake = FakeMercadoPago::start().await;
    let (toml, env) = fake.config();
    // Patient enough for the slow search below.
    let app = app_with(backend, toml.replace("timeout = \"1s\"", "timeout = \"10s\""), env).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    // Reconciliation will learn "pending", slowly; meanwhile the payment is approved.
    fake.payment(100, &attempt.id, "pending", 299.9);
    fake.ledger.lock().unwrap().slow_search = Some(std::time::Duration::from_secs(3));
    assert_eq!(leadgate::flows::reconcile::pass(&app.ctx).await.unwrap().claimed, 1);
    crate::support::eventually("the reconciliation search to start", || async {
        fake.ledger.lock().unwrap().searches == 1
    })
    .await;
    fake.payment(100, &attempt.id, "approved", 299.9);
    assert_eq!(notify(&app, 9001, 100, WEBHOOK_SECRET).await.0, 200);
    app.settle().await;
    // Run beside the search, the approval would land first and the search's "pending"
    // be dropped as stale; in line, pending is applied, then the approval.
    let changes = |source: &str, status: &str| {
        let series = format!(
            "leadgate_payment_status_changes_total{{gateway=\"mercadopago\",source=\"{source}\",status=\"{status}\"}} "
        );
        let metrics = app.ctx.metrics.render().unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0u64, |n| n.trim().parse().unwrap())
    };
    assert_eq!(changes("reconcile", "pending"), 1, "reconciliation ran first, alone");
    assert_eq!(changes("webhook", "approved"), 1, "then the notification");
    let a = super::attempt(&app, &attempt.id).await;
    assert_eq!(
        (a.status, a.settled_by.as_deref()),
        (PaymentStatus::Approved, Some("webhook"))
    );
}

async fn mercadopago_approved_journey(backend: Backend) {
    let (fake, app) = setup(backend).await;
    let checkout = submit(&app, "curso-br").await;
    assert_eq!(
        checkout,
        format!(
            "{}/sandbox/checkout/v1/redirect?pref_id=202809963-pref1",
            fake.server.uri()
        )
    );
    let attempt = only_attempt(&app).await;
    let pref = fake.ledger.lock().unwrap().preferences[0].clone();
    assert_eq!(pref["items"][0]["title"], "Curso de Vendas");
    assert_eq!(pref["items"][0]["quantity"], 1);
    assert_eq!(pref["items"][0]["currency_id"], "BRL");
    assert_eq!(pref["items"][0]["unit_price"], json!(299.9));
    assert_eq!(pref["payer"]["name"], "Ana");
    assert_eq!(pref["payer"]["surname"], "María Pérez");
    assert_eq!(pref["payer"]["email"], "ana@example.com");
    assert_eq!(
        pref["payer"]["identification"],
        json!({"type": "CPF", "number": "1020304050"})
    );
    assert_eq!(pref["external_reference"], attempt.id.as_str());
    let back = app.url(&format!("/return/mercadopago?attempt={}&lang=es", attempt.id));
    assert_eq!(pref["back_urls"]["success"], back.as_str());
    assert_eq!(pref["auto_return"], "approved");
    assert_eq!(pref["notification_url"], app.url("/webhooks/mercadopago").as_str());
    assert_eq!(pref["expires"], true);
    assert!(pref["expiration_date_to"].as_str().is_some());

    fake.payment(1_319_000_001, &attempt.id, "approved", 299.9);
    assert_eq!(notify(&app, 9001, 1_319_000_001, WEBHOOK_SECRET).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(&app, "won").await;
    let page = app
        .get(&format!(
            "/return/mercadopago?attempt={}&collection_id=1319000001&payment_id=1319000001&status=approved",
            attempt.id
        ))
        .await;
    assert!(page.text().await.unwrap().contains(r#"data-status="approved""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_pending_then_approved_with_duplicate_and_late_notifications() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    // Boleto/Pix: pending first.
    fake.payment(42, &attempt.id, "pending", 299.9);
    assert_eq!(notify(&app, 1, 42, WEBHOOK_SECRET).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Pending).await;
    fake.payment(42, &attempt.id, "approved", 299.9);
    assert_eq!(notify(&app, 2, 42, WEBHOOK_SECRET).await.0, 200);
    let (status, body) = notify(&app, 2, 42, WEBHOOK_SECRET).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    // The approval re-sent hours later (a known Mercado Pago habit) changes nothing.
    assert_eq!(notify(&app, 3, 42, WEBHOOK_SECRET).await.0, 200);
    app.settle().await;
    wait_for_deal(&app, "won").await;
    assert_eq!(super::attempt(&app, &attempt.id).await.status, PaymentStatus::Approved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_rejected_payment_is_a_decline_with_follow_up() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    fake.payment(77, &attempt.id, "rejected", 299.9);
    assert_eq!(notify(&app, 5, 77, WEBHOOK_SECRET).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Declined).await;
    wait_for_deal(&app, "lost").await;
    app.settle().await;
    assert_eq!(app.tasks().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_forged_notifications_are_refused() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    fake.payment(88, &attempt.id, "approved", 299.9);
    assert_eq!(notify(&app, 6, 88, "guessed").await.0, 401);
    let unsigned = deliver(&app, "/webhooks/mercadopago?data.id=88&type=payment", &[], "{}").await;
    assert_eq!(unsigned.0, 401);
    app.settle().await;
    assert_eq!(
        super::attempt(&app, &attempt.id).await.status,
        PaymentStatus::Redirected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_missed_notification_is_fixed_by_reconciliation() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await;
    // A rejected try, then an approved one, under the same preference.
    fake.payment(100, &attempt.id, "rejected", 299.9);
    fake.payment(101, &attempt.id, "approved", 299.9);
    let pass = super::reconcile(&app).await;
    assert_eq!((pass.due, pass.claimed), (1, 1));
    assert_eq!(super::checks(&app, "mercadopago", "fixed"), 1);
    let fixed = super::attempt(&app, &attempt.id).await;
    assert_eq!(
        (fixed.status, fixed.settled_by.as_deref()),
        (PaymentStatus::Approved, Some("reconcile"))
    );
    assert_eq!(fixed.gateway_ref.as_deref(), Some("101"));
    wait_for_deal(&app, "won").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_timeout_at_checkout_shows_a_retry_page_in_the_customers_language() {
    let (fake, app) = setup(Backend::Sqlite).await;
    fake.ledger.lock().unwrap().slow = Some(std::time::Duration::from_secs(3));
    let form = [
        ("name", "João Silva"),
        ("email", "joao@example.com"),
        ("phone", "11 91234 5678"),
        ("tax_id", "12345678909"),
    ];
    let res = app.post_form_in("/c/curso-br", "pt-BR,pt;q=0.9", &form).await;
    assert_eq!(res.status(), 502);
    let html = res.text().await.unwrap();
    assert!(html.contains("href=\"/r/"), "a retry button: {html}");
    assert!(html.contains("lang=\"pt-BR\""), "{html}");
    // The lead, its deal and its follow-up are all kept.
    wait_for_deal(&app, "open").await;
    let attempt = only_attempt(&app).await;
    assert_eq!(attempt.status, PaymentStatus::Created);
    let jobs = leadgate::store::jobs::for_lead(&app.ctx.db, &attempt.lead_id)
        .await
        .unwrap();
    assert!(jobs.iter().any(|j| j.kind == "follow_up"), "{jobs:?}");
}

// --- after approval: refunds and chargebacks ----------------------------------------

both_backends!(
    mercadopago_refund_loses_the_deal_with_one_note,
    mercadopago_chargeback_notification_opens_a_dispute_task
);

async fn refunded(app: &TestApp, attempt: &str) -> i64 {
    super::attempt(app, attempt)
        .await
        .after
        .reversal
        .refunded
        .amount_minor()
}

/// Notes the built-in CRM holds, newest first.
async fn notes(app: &TestApp) -> Vec<String> {
    leadgate::store::builtin_crm::notes(&app.ctx.db, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.body)
        .collect()
}

async fn wait_for_notes(app: &TestApp, count: usize) {
    crate::support::eventually(&format!("{count} notes"), || async { notes(app).await.len() == count }).await;
    app.settle().await;
    assert_eq!(notes(app).await.len(), count, "{:?}", notes(app).await);
}

/// Approved through a notification, the deal won; returns the attempt id.
async fn paid(fake: &FakeMercadoPago, app: &TestApp, payment: i64) -> String {
    submit(app, "curso-br").await;
    let attempt = only_attempt(app).await;
    fake.payment(payment, &attempt.id, "approved", 299.9);
    assert_eq!(notify(app, 1, payment, WEBHOOK_SECRET).await.0, 200);
    wait_for_status(app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(app, "won").await;
    app.settle().await;
    let a = super::attempt(app, &attempt.id).await;
    assert_eq!(a.after.payment_method.as_deref(), Some("pix"));
    attempt.id
}

fn lost_reason(deals: &[leadgate::store::builtin_crm::DealView]) -> Option<&str> {
    deals.first().and_then(|d| d.lost_reason.as_deref())
}

/// A full refund (`refunded/refunded`) after the win: the deal is lost as refunded, with
/// one note; the notification replayed, and re-sent later with the same facts, add none.
async fn mercadopago_refund_loses_the_deal_with_one_note(backend: Backend) {
    let (fake, app) = setup(backend).await;
    let attempt = paid(&fake, &app, 500).await;
    let before = notes(&app).await.len();
    fake.after_sale(500, "refunded", "refunded", Some(299.9));
    assert_eq!(notify(&app, 2, 500, WEBHOOK_SECRET).await.0, 200);
    wait_for_deal(&app, "lost").await;
    assert_eq!(lost_reason(&app.deals().await), Some("Refunded"));
    wait_for_notes(&app, before + 1).await;
    let a = super::attempt(&app, &attempt).await;
    assert_eq!(a.status, PaymentStatus::Approved, "refunded, not unpaid");
    assert_eq!(a.after.reversal.refunded.amount_minor(), 29_990);
    // The same delivery again, and a new one with nothing new: no second note.
    let (status, body) = notify(&app, 2, 500, WEBHOOK_SECRET).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    assert_eq!(notify(&app, 3, 500, WEBHOOK_SECRET).await.0, 200);
    app.settle().await;
    assert_eq!(notes(&app).await.len(), before + 1);
    assert_eq!(super::attempt(&app, &attempt).await.after.reversal_version, 1);
    assert_eq!(lost_reason(&app.deals().await), Some("Refunded"));
}

/// Partial refunds are running totals: each one adds a note, the deal stays won until
/// they add up to the whole payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_partial_refunds_add_up_to_a_full_one() {
    let (fake, app) = setup(Backend::Sqlite).await;
    let attempt = paid(&fake, &app, 600).await;
    let before = notes(&app).await.len();
    fake.after_sale(600, "approved", "partially_refunded", Some(100.0));
    assert_eq!(notify(&app, 2, 600, WEBHOOK_SECRET).await.0, 200);
    wait_for_notes(&app, before + 1).await;
    assert_eq!(refunded(&app, &attempt).await, 10_000);
    fake.after_sale(600, "approved", "partially_refunded", Some(250.5));
    assert_eq!(notify(&app, 3, 600, WEBHOOK_SECRET).await.0, 200);
    wait_for_notes(&app, before + 2).await;
    assert_eq!(refunded(&app, &attempt).await, 25_050);
    assert_eq!(app.deals().await[0].status, "won", "a partial refund keeps the win");
    // The last one completes it: Mercado Pago then reports the payment refunded.
    fake.after_sale(600, "refunded", "refunded", Some(299.9));
    assert_eq!(notify(&app, 4, 600, WEBHOOK_SECRET).await.0, 200);
    wait_for_deal(&app, "lost").await;
    wait_for_notes(&app, before + 3).await;
    assert_eq!(refunded(&app, &attempt).await, 29_990);
}

/// The chargebacks topic as documented: `data.id` is the chargeback (an 18-digit number),
/// `data.payment_id` the payment, read back as `charged_back`. An open dispute is a task
/// for the owner; `settled` then loses the deal.
async fn mercadopago_chargeback_notification_opens_a_dispute_task(backend: Backend) {
    let (fake, app) = setup(backend).await;
    paid(&fake, &app, 700).await;
    let tasks_before = app.tasks().await.len();
    fake.after_sale(700, "charged_back", "in_process", None);
    let chargeback = |version: u32| {
        let body = format!(
            r#"{{"actions":["changed_case_status"],"api_version":"v1","data":{{"checkout":"PRO","id":217000061307271000,"payment_id":700,"site_id":"MLB"}},"date_created":"2026-11-23T10:00:00.000-04:00","live_mode":false,"type":"topic_chargebacks_wh","user_id":44444,"version":{version}}}"#
        );
        let path = "/webhooks/mercadopago?data.id=217000061307271000&type=topic_chargebacks_wh".to_owned();
        let manifest_id = "217000061307271000";
        let request_id = format!("req-cb-{version}");
        let ts = now_s();
        let manifest = format!("id:{manifest_id};request-id:{request_id};ts:{ts};");
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(manifest.as_bytes());
        let v1 = hex::encode(mac.finalize().into_bytes());
        let headers = [
            ("x-signature", format!("ts={ts},v1={v1}")),
            ("x-request-id", request_id),
        ];
        (path, headers, body)
    };
    let (path, headers, body) = chargeback(1);
    assert_eq!(deliver(&app, &path, &headers, &body).await.0, 200);
    crate::support::eventually("a dispute task", || async {
        app.tasks().await.len() == tasks_before + 1
    })
    .await;
    app.settle().await;
    let tasks = app.tasks().await;
    assert!(tasks.iter().any(|t| t.external_key.ends_with(":dispute")), "{tasks:?}");
    assert_eq!(app.deals().await[0].status, "won", "an open dispute keeps the win");
    // The case closes against us.
    fake.after_sale(700, "charged_back", "settled", None);
    let (path, headers, body) = chargeback(2);
    assert_eq!(deliver(&app, &path, &headers, &body).await.0, 200);
    wait_for_deal(&app, "lost").await;
    assert_eq!(lost_reason(&app.deals().await), Some("Chargeback lost"));
    app.settle().await;
    assert_eq!(app.tasks().await.len(), tasks_before + 1, "one task per dispute");
}

/// No notification at all: the paid-attempt reconciliation finds the refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercadopago_refund_found_only_by_reconciliation() {
    let fake = FakeMercadoPago::start().await;
    let (toml, env) = fake.config();
    let opts = crate::support::Options {
        toml,
        env,
        tweak: Box::new(|s| {
            s.reconcile.enabled = false;
            s.reconcile.after = std::time::Duration::ZERO;
            s.reconcile.interval = std::time::Duration::ZERO;
            // Paid attempts are asked about again after a second (hours in production).
            s.reconcile.paid_interval = std::time::Duration::from_secs(1);
        }),
        ..crate::support::Options::default()
    };
    let app = crate::support::spawn_with(Backend::Sqlite, opts).await;
    let attempt = paid(&fake, &app, 800).await;
    let before = notes(&app).await.len();
    fake.after_sale(800, "refunded", "by_admin", None);
    // Asked about at most once per paid_interval: wait it out, then pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pass = super::reconcile(&app).await;
    assert_eq!(pass.claimed, 1, "{pass:?}");
    wait_for_deal(&app, "lost").await;
    wait_for_notes(&app, before + 1).await;
    let a = super::attempt(&app, &attempt).await;
    // by_admin without a refunded total: the whole payment, and the words kept.
    assert_eq!(a.after.reversal.refunded.amount_minor(), 29_990);
    assert_eq!(a.after.reversal.refund_reason.as_deref(), Some("by_admin"));
    assert!(notes(&app).await[0].contains("by_admin"), "{:?}", notes(&app).await);
}
