//! Stripe Checkout: sessions created form-encoded with an idempotency key, signed
//! events, sessions read back on return and by reconciliation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{app_with, deliver, now_s, only_attempt, submit, wait_for_deal, wait_for_status};
use crate::both_backends;
use crate::support::{location, Backend, TestApp};
use leadgate::domain::PaymentStatus;

const SECRET_KEY: &str = "sk_test_51Hx";
const WEBHOOK_SECRET: &str = "whsec_test_current";
const OLD_WEBHOOK_SECRET: &str = "whsec_test_previous";

#[derive(Default)]
struct Ledger {
    sessions: Vec<Value>,
    /// Idempotency-Key → session id, as Stripe replays the first answer.
    keys: HashMap<String, String>,
    /// Every create request's form, in order.
    creates: Vec<HashMap<String, String>>,
    fail_creates: u32,
    /// Spec schema `dispute` objects, as `GET /v1/disputes` lists them.
    disputes: Vec<Value>,
    /// Session ids of every `POST /v1/checkout/sessions/{id}/expire`, in order.
    expires: Vec<String>,
}

struct FakeStripe {
    server: MockServer,
    ledger: Arc<Mutex<Ledger>>,
}

impl FakeStripe {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let ledger: Arc<Mutex<Ledger>> = Arc::default();
        let base = server.uri();
        let create = ledger.clone();
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(move |req: &Request| create_session(&mut create.lock().unwrap(), req, &base))
            .mount(&server)
            .await;
        let read = ledger.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/checkout/sessions/[^/]+$"))
            .respond_with(move |req: &Request| {
                let id = req.url.path().rsplit('/').next().unwrap_or_default();
                match read.lock().unwrap().sessions.iter().find(|s| s["id"] == id) {
                    Some(s) => ResponseTemplate::new(200).set_body_json(s),
                    None => {
                        ResponseTemplate::new(404).set_body_json(json!({"error": {"type": "invalid_request_error"}}))
                    }
                }
            })
            .mount(&server)
            .await;
        let list = ledger.clone();
        Mock::given(method("GET"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(move |req: &Request| {
                let pi = query_of(req, "payment_intent");
                let l = list.lock().unwrap();
                let data: Vec<&Value> = l
                    .sessions
                    .iter()
                    .filter(|s| pi.is_some() && s["payment_intent"]["id"].as_str() == pi.as_deref())
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"object": "list", "has_more": false, "data": data}))
            })
            .mount(&server)
            .await;
        let disputes = ledger.clone();
        Mock::given(method("GET"))
            .and(path("/v1/disputes"))
            .respond_with(move |req: &Request| {
                let pi = query_of(req, "payment_intent");
                let l = disputes.lock().unwrap();
                let data: Vec<&Value> = l
                    .disputes
                    .iter()
                    .filter(|d| d["payment_intent"].as_str() == pi.as_deref())
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"object": "list", "has_more": false, "data": data}))
            })
            .mount(&server)
            .await;
        let expire = ledger.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/checkout/sessions/[^/]+/expire$"))
            .respond_with(move |req: &Request| {
                let id = req.url.path().split('/').nth(4).unwrap_or_default().to_owned();
                let mut l = expire.lock().unwrap();
                l.expires.push(id.clone());
                match l.sessions.iter_mut().find(|s| s["id"] == id.as_str()) {
                    Some(s) if s["status"] == "open" => {
                        s["status"] = json!("expired");
                        ResponseTemplate::new(200).set_body_json(s.clone())
                    }
                    _ => ResponseTemplate::new(400).set_body_json(json!({"error": {"type": "invalid_request_error"}})),
                }
            })
            .mount(&server)
            .await;
        Self { server, ledger }
    }

    /// The customer pays by card: the session completes with a PaymentIntent whose latest
    /// charge (spec schema `charge`) is what refunds and disputes change.
    fn pay(&self, id: &str) -> Value {
        let mut l = self.ledger.lock().unwrap();
        let s = l.sessions.iter_mut().find(|s| s["id"] == id).unwrap();
        let pi = id.replace("cs_", "pi_");
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["payment_intent"] = json!({"id": pi, "object": "payment_intent", "status": "succeeded",
            "latest_charge": {"id": id.replace("cs_", "ch_"), "object": "charge", "amount": s["amount_total"],
                "amount_refunded": 0, "refunded": false, "disputed": false, "currency": s["currency"],
                "payment_intent": pi, "payment_method_details": {"type": "card"}}});
        s.clone()
    }

    /// A refund of `amount` more: the charge's running total grows. Returns the charge.
    fn refund(&self, id: &str, amount: i64) -> Value {
        let mut l = self.ledger.lock().unwrap();
        let s = l.sessions.iter_mut().find(|s| s["id"] == id).unwrap();
        let charge = &mut s["payment_intent"]["latest_charge"];
        let total = charge["amount_refunded"].as_i64().unwrap() + amount;
        charge["amount_refunded"] = json!(total);
        charge["refunded"] = json!(Some(total) == charge["amount"].as_i64());
        charge.clone()
    }

    /// Opens or moves the charge's dispute; returns the dispute object.
    fn dispute(&self, id: &str, status: &str, due_by: i64) -> Value {
        let mut l = self.ledger.lock().unwrap();
        let s = l.sessions.iter_mut().find(|s| s["id"] == id).unwrap();
        s["payment_intent"]["latest_charge"]["disputed"] = json!(true);
        let pi = s["payment_intent"]["id"].clone();
        let d = json!({"id": "dp_1", "object": "dispute", "payment_intent": pi, "status": status,
            "reason": "fraudulent", "created": now_s(), "evidence_details": {"due_by": due_by}});
        l.disputes = vec![d.clone()];
        d
    }

    /// The customer finishes (or not) on Stripe's page; returns the updated session.
    fn update(&self, id: &str, status: &str, payment_status: &str) -> Value {
        let mut l = self.ledger.lock().unwrap();
        let s = l.sessions.iter_mut().find(|s| s["id"] == id).unwrap();
        s["status"] = json!(status);
        s["payment_status"] = json!(payment_status);
        s.clone()
    }

    fn config(&self) -> (String, Vec<(&'static str, String)>) {
        let toml = format!(
            r#"
[gateways.stripe]
environment = "sandbox"
api_base = "{}"

[[offers]]
slug = "mentoria"
title = "Mentoría"
description = "Cuatro sesiones"
price_minor = 4990
currency = "USD"
gateway = "stripe"
ask_tax_id = true
followup_delays = ["30m"]
"#,
            self.server.uri()
        );
        let env = vec![
            ("LEADGATE_STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
            ("LEADGATE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
            (
                "LEADGATE_STRIPE_WEBHOOK_SECRET_PREVIOUS",
                OLD_WEBHOOK_SECRET.to_string(),
            ),
        ];
        (toml, env)
    }
}

fn create_session(l: &mut Ledger, req: &Request, base: &str) -> ResponseTemplate {
    let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {SECRET_KEY}")) {
        return ResponseTemplate::new(401).set_body_json(json!({"error": {"type": "invalid_request_error"}}));
    }
    if l.fail_creates > 0 {
        l.fail_creates -= 1;
        return ResponseTemplate::new(500).set_body_json(json!({"error": {"type": "api_error", "message": "boom"}}));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    l.creates.push(form.clone());
    let key = req
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Some(id) = l.keys.get(&key) {
        let s = l.sessions.iter().find(|s| s["id"] == id.as_str()).unwrap();
        return ResponseTemplate::new(200).set_body_json(s);
    }
    let id = format!("cs_test_{}", l.sessions.len() + 1);
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("{base}/c/pay/{id}"),
        "status": "open",
        "payment_status": "unpaid",
        "client_reference_id": form.get("client_reference_id"),
        "amount_total": form.get("line_items[0][price_data][unit_amount]").and_then(|a| a.parse::<i64>().ok()),
        "currency": form.get("line_items[0][price_data][currency]"),
        "expires_at": form.get("expires_at").and_then(|a| a.parse::<i64>().ok()),
    });
    l.keys.insert(key, id);
    l.sessions.push(session.clone());
    ResponseTemplate::new(200).set_body_json(session)
}

fn query_of(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// An Event as Stripe sends it, signed with `secret`.
fn event(id: &str, kind: &str, session: &Value, secret: &str) -> (String, String) {
    let body = json!({
        "id": id,
        "object": "event",
        "type": kind,
        "livemode": false,
        "data": { "object": session },
    })
    .to_string();
    let t = now_s();
    (body.clone(), format!("t={t},v1={}", signature(secret, t, &body)))
}

async fn send(app: &TestApp, id: &str, kind: &str, session: &Value) -> (u16, String) {
    let (body, header) = event(id, kind, session, WEBHOOK_SECRET);
    deliver(app, "/webhooks/stripe", &[("Stripe-Signature", header)], &body).await
}

async fn setup(backend: Backend) -> (FakeStripe, TestApp) {
    let fake = FakeStripe::start().await;
    let (toml, env) = fake.config();
    let app = app_with(backend, toml, env).await;
    (fake, app)
}

/// A customer who chose a delayed method (OXXO, boleto): the session completes unpaid,
/// which is pending, not abandoned.
async fn delayed_payment_pending() -> (FakeStripe, TestApp, leadgate::domain::lead::Attempt) {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "mentoria").await;
    let attempt = only_attempt(&app).await;
    let unpaid = fake.update("cs_test_1", "complete", "unpaid");
    assert_eq!(send(&app, "evt_1", "checkout.session.completed", &unpaid).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Pending).await;
    (fake, app, attempt)
}

both_backends!(
    stripe_approved_journey,
    stripe_event_with_nul_and_long_words_is_stored_cut_and_applied,
    stripe_event_with_an_over_long_id_is_refused_and_stores_nothing
);

/// A signed event with U+0000 in its id and an absurdly long status word: stored byte for
/// byte, applied, its status words kept cut on a char boundary.
async fn stripe_event_with_nul_and_long_words_is_stored_cut_and_applied(backend: Backend) {
    let (fake, app) = setup(backend).await;
    submit(&app, "mentoria").await;
    let attempt = only_attempt(&app).await;
    // The words travel in the session as read back (events are only cues): an unknown
    // payment_status on a complete session is pending.
    let words = format!("paid\u{0}{}", "ñ".repeat(5000));
    let session = fake.update("cs_test_1", "complete", &words);
    let (body, header) = event("evt_\u{0}1", "checkout.session.completed", &session, WEBHOOK_SECRET);
    assert!(body.contains(r"\u0000"), "the NUL travels as JSON's escape");
    let (status, text) = deliver(&app, "/webhooks/stripe", &[("Stripe-Signature", header)], &body).await;
    assert_eq!(status, 200, "{text}");
    wait_for_status(&app, &attempt.id, PaymentStatus::Pending).await;
    let stored = leadgate::store::inbox::by_event_id(&app.ctx.db, "stripe", "evt_\u{FFFD}1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.body, body.as_bytes());
    let detail = super::attempt(&app, &attempt.id).await.status_detail.unwrap();
    let max = leadgate::domain::edge::STATUS_DETAIL_MAX_CHARS;
    assert_eq!(detail.chars().count(), max, "{detail}");
    assert!(detail.starts_with("complete/paid\u{FFFD}ñ"), "{detail}");
    assert!(detail.ends_with('ñ'));
}

/// No Stripe event id is 200,000 chars: a precise 4xx, nothing stored, nothing applied.
async fn stripe_event_with_an_over_long_id_is_refused_and_stores_nothing(backend: Backend) {
    let (fake, app) = setup(backend).await;
    submit(&app, "mentoria").await;
    let attempt = only_attempt(&app).await;
    let paid = fake.update("cs_test_1", "complete", "paid");
    let id = format!("evt_{}", "1".repeat(200_000));
    assert_eq!(send(&app, &id, "checkout.session.completed", &paid).await.0, 422);
    assert_eq!(leadgate::store::inbox::count(&app.ctx.db).await.unwrap(), 0);
    assert_eq!(
        super::attempt(&app, &attempt.id).await.status,
        PaymentStatus::Redirected
    );
}

async fn stripe_approved_journey(backend: Backend) {
    let (fake, app) = setup(backend).await;
    let checkout = submit(&app, "mentoria").await;
    assert_eq!(checkout, format!("{}/c/pay/cs_test_1", fake.server.uri()));
    let attempt = only_attempt(&app).await;
    assert_eq!(attempt.gateway_ref.as_deref(), Some("cs_test_1"));
    let form = fake.ledger.lock().unwrap().creates[0].clone();
    let expect = [
        ("mode", "payment".to_string()),
        ("line_items[0][price_data][currency]", "usd".into()),
        ("line_items[0][price_data][product_data][name]", "Mentoría".into()),
        (
            "line_items[0][price_data][product_data][description]",
            "Cuatro sesiones".into(),
        ),
        ("line_items[0][price_data][unit_amount]", "4990".into()),
        ("line_items[0][quantity]", "1".into()),
        ("customer_email", "ana@example.com".into()),
        ("client_reference_id", attempt.id.clone()),
        ("metadata[attempt_id]", attempt.id.clone()),
        ("metadata[lead_id]", attempt.lead_id.clone()),
        ("payment_intent_data[metadata][attempt_id]", attempt.id.clone()),
        (
            "success_url",
            app.url(&format!(
                "/return/stripe?attempt={}&lang=es&session_id={{CHECKOUT_SESSION_ID}}",
                attempt.id
            )),
        ),
        ("locale", "es".into()),
    ];
    for (k, v) in expect {
        assert_eq!(form.get(k), Some(&v), "form field {k}: {form:?}");
    }
    assert!(
        form["cancel_url"].starts_with(&app.url("/r/")),
        "the resume confirm page"
    );
    let expires: i64 = form["expires_at"].parse().unwrap();
    assert!((now_s() + 1800..=now_s() + 86_400).contains(&expires), "{expires}");

    let paid = fake.update("cs_test_1", "complete", "paid");
    assert_eq!(send(&app, "evt_1", "checkout.session.completed", &paid).await.0, 200);
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(&app, "won").await;
    let back = app
        .get(&format!("/return/stripe?attempt={}&session_id=cs_test_1", attempt.id))
        .await;
    assert!(back.text().await.unwrap().contains(r#"data-status="approved""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_return_before_webhook_settles_from_the_api() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "mentoria").await;
    let attempt = only_attempt(&app).await;
    fake.update("cs_test_1", "complete", "paid");
    // The customer is back before any event: the page asks Stripe, not the query string.
    let back = app
        .get(&format!("/return/stripe?attempt={}&session_id=cs_test_1", attempt.id))
        .await;
    assert!(back.text().await.unwrap().contains(r#"data-status="approved""#));
    assert_eq!(
        super::attempt(&app, &attempt.id).await.settled_by.as_deref(),
        Some("return")
    );
    // Then the event comes: nothing more happens.
    let paid = fake.update("cs_test_1", "complete", "paid");
    assert_eq!(send(&app, "evt_1", "checkout.session.completed", &paid).await.0, 200);
    wait_for_deal(&app, "won").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_delayed_payment_pending_then_failed() {
    let (fake, app, attempt) = delayed_payment_pending().await;
    // The voucher expired unpaid: the session stays complete/unpaid, its intent says so.
    let failed = fake.update("cs_test_1", "complete", "unpaid");
    fake.ledger.lock().unwrap().sessions[0]["payment_intent"] =
        json!({"id": "pi_1", "status": "requires_payment_method"});
    assert_eq!(
        send(&app, "evt_2", "checkout.session.async_payment_failed", &failed)
            .await
            .0,
        200
    );
    wait_for_status(&app, &attempt.id, PaymentStatus::Declined).await;
    wait_for_deal(&app, "lost").await;
    app.settle().await;
    assert_eq!(app.tasks().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_pending_then_paid_duplicates_out_of_order_and_rotated_secrets() {
    // Boleto: completed unpaid (pending), then paid later.
    let (fake, app, attempt) = delayed_payment_pending().await;
    let paid = fake.update("cs_test_1", "complete", "paid");
    // Signed with the previous secret during a rotation: accepted.
    let (body, header) = event(
        "evt_9",
        "checkout.session.async_payment_succeeded",
        &paid,
        OLD_WEBHOOK_SECRET,
    );
    assert_eq!(
        deliver(&app, "/webhooks/stripe", &[("Stripe-Signature", header)], &body)
            .await
            .0,
        200
    );
    let (status, dup) = send(&app, "evt_9", "checkout.session.async_payment_succeeded", &paid).await;
    assert_eq!((status, dup.contains("duplicate")), (200, true));
    wait_for_status(&app, &attempt.id, PaymentStatus::Approved).await;
    // An `expired` delivered late must not undo the payment.
    let expired = json!({"id": "cs_test_1", "object": "checkout.session", "status": "expired",
        "payment_status": "unpaid", "client_reference_id": attempt.id});
    assert_eq!(send(&app, "evt_3", "checkout.session.expired", &expired).await.0, 200);
    app.settle().await;
    assert_eq!(super::attempt(&app, &attempt.id).await.status, PaymentStatus::Approved);
    wait_for_deal(&app, "won").await;
    // A stranger's signature and an old timestamp are both refused.
    let (body, _) = event("evt_4", "checkout.session.completed", &paid, "whsec_guess");
    let t = now_s() - 3600;
    let stale = format!("t={t},v1={}", signature(WEBHOOK_SECRET, t, &body));
    assert_eq!(
        deliver(&app, "/webhooks/stripe", &[("Stripe-Signature", stale)], &body)
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_missed_webhook_is_fixed_by_reconciliation() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "mentoria").await;
    let attempt = only_attempt(&app).await;
    fake.update("cs_test_1", "expired", "unpaid");
    let pass = super::reconcile(&app).await;
    assert_eq!((pass.due, pass.claimed), (1, 1));
    assert_eq!(super::checks(&app, "stripe", "fixed"), 1);
    let fixed = super::attempt(&app, &attempt.id).await;
    assert_eq!(
        (fixed.status, fixed.settled_by.as_deref()),
        (PaymentStatus::Expired, Some("reconcile"))
    );
    wait_for_deal(&app, "lost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_outage_at_checkout_keeps_the_lead_and_offers_a_retry() {
    let (fake, app) = setup(Backend::Sqlite).await;
    fake.ledger.lock().unwrap().fail_creates = 1;
    let res = app
        .post_form(
            "/c/mentoria",
            &[
                ("name", "Ana"),
                ("email", "ana@example.com"),
                ("phone", "300 123 4567"),
                ("tax_id", "102030"),
            ],
        )
        .await;
    assert_eq!(res.status(), 502);
    let html = res.text().await.unwrap();
    assert!(html.contains("La pasarela de pago no respondió"), "{html}");
    let token = html
        .split("href=\"/r/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let retry = format!("/r/{token}");
    // The lead and its deal are kept.
    wait_for_deal(&app, "open").await;
    // The retry button opens a fresh attempt, and Stripe answers this time.
    assert_eq!(app.get(&retry).await.status(), 200, "a confirm page first");
    let again = app.post_form(&retry, &[]).await;
    assert_eq!(again.status(), 303);
    assert!(location(&again).contains("/c/pay/cs_test_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_failed_delayed_payment_with_missed_webhook_is_declined_by_reconciliation() {
    let (fake, app, attempt) = delayed_payment_pending().await;
    // The voucher expires unpaid and `async_payment_failed` never reaches us: only the
    // expanded PaymentIntent says so.
    fake.ledger.lock().unwrap().sessions[0]["payment_intent"] =
        json!({"id": "pi_1", "status": "requires_payment_method"});
    let pass = super::reconcile(&app).await;
    assert_eq!((pass.due, pass.claimed), (1, 1));
    assert_eq!(super::checks(&app, "stripe", "fixed"), 1);
    wait_for_status(&app, &attempt.id, PaymentStatus::Declined).await;
    wait_for_deal(&app, "lost").await;
}

// --- after approval: refunds, disputes, mismatched sessions, replaced checkouts ------

async fn paid(fake: &FakeStripe, app: &TestApp) -> leadgate::domain::lead::Attempt {
    submit(app, "mentoria").await;
    let attempt = only_attempt(app).await;
    let session = fake.pay("cs_test_1");
    assert_eq!(
        send(app, "evt_paid", "checkout.session.completed", &session).await.0,
        200
    );
    wait_for_status(app, &attempt.id, PaymentStatus::Approved).await;
    wait_for_deal(app, "won").await;
    attempt
}

async fn notes(app: &TestApp) -> Vec<leadgate::store::builtin_crm::NoteView> {
    app.settle().await;
    leadgate::store::builtin_crm::notes(&app.ctx.db, 100).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_full_refund_moves_the_deal_to_lost_once() {
    let (fake, app) = setup(Backend::Sqlite).await;
    let attempt = paid(&fake, &app).await;
    let before = notes(&app).await.len();
    let charge = fake.refund("cs_test_1", 4990);
    assert_eq!(send(&app, "evt_refund", "charge.refunded", &charge).await.0, 200);
    wait_for_deal(&app, "lost").await;
    assert_eq!(notes(&app).await.len(), before + 1, "exactly one note for the refund");
    let a = super::attempt(&app, &attempt.id).await;
    assert_eq!(a.after.reversal.refunded.amount_minor(), 4990);
    assert_eq!(a.after.payment_method.as_deref(), Some("card"));
    // The same event again, and another event for the same refund: nothing new.
    let (status, dup) = send(&app, "evt_refund", "charge.refunded", &charge).await;
    assert_eq!((status, dup.contains("duplicate")), (200, true));
    assert_eq!(send(&app, "evt_refund_2", "charge.refunded", &charge).await.0, 200);
    assert_eq!(notes(&app).await.len(), before + 1);
    assert_eq!(super::attempt(&app, &attempt.id).await.after.reversal_version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_partial_refunds_add_up() {
    let (fake, app) = setup(Backend::Sqlite).await;
    let attempt = paid(&fake, &app).await;
    let charge = fake.refund("cs_test_1", 1000);
    assert_eq!(send(&app, "evt_r1", "charge.refunded", &charge).await.0, 200);
    app.settle().await;
    assert_eq!(
        super::attempt(&app, &attempt.id)
            .await
            .after
            .reversal
            .refunded
            .amount_minor(),
        1000
    );
    let charge = fake.refund("cs_test_1", 1500);
    assert_eq!(send(&app, "evt_r2", "charge.refunded", &charge).await.0, 200);
    app.settle().await;
    assert_eq!(
        super::attempt(&app, &attempt.id)
            .await
            .after
            .reversal
            .refunded
            .amount_minor(),
        2500
    );
    // Partly refunded is still won.
    wait_for_deal(&app, "won").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_dispute_opens_a_task_then_a_lost_dispute_loses_the_deal() {
    let (fake, app) = setup(Backend::Sqlite).await;
    let attempt = paid(&fake, &app).await;
    let tasks_before = app.tasks().await.len();
    let due_by = now_s() + 7 * 86_400;
    let d = fake.dispute("cs_test_1", "needs_response", due_by);
    assert_eq!(send(&app, "evt_d1", "charge.dispute.created", &d).await.0, 200);
    app.settle().await;
    let a = super::attempt(&app, &attempt.id).await;
    assert_eq!(
        a.after.reversal.dispute.as_ref().and_then(|d| d.due_at),
        Some(due_by * 1000)
    );
    let tasks = app.tasks().await;
    assert_eq!(tasks.len(), tasks_before + 1, "{tasks:?}");
    let d = fake.dispute("cs_test_1", "lost", due_by);
    assert_eq!(send(&app, "evt_d2", "charge.dispute.closed", &d).await.0, 200);
    wait_for_deal(&app, "lost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_refund_without_a_webhook_is_found_by_reconciliation() {
    let fake = FakeStripe::start().await;
    let (toml, env) = fake.config();
    let opts = crate::support::Options {
        toml,
        env,
        tweak: Box::new(|s| {
            s.reconcile.enabled = false;
            s.reconcile.after = std::time::Duration::ZERO;
            s.reconcile.interval = std::time::Duration::ZERO;
            s.reconcile.paid_interval = std::time::Duration::ZERO;
        }),
        ..crate::support::Options::default()
    };
    let app = crate::support::spawn_with(Backend::Sqlite, opts).await;
    let attempt = paid(&fake, &app).await;
    fake.refund("cs_test_1", 4990);
    super::reconcile(&app).await;
    wait_for_deal(&app, "lost").await;
    let a = super::attempt(&app, &attempt.id).await;
    assert_eq!(a.after.reversal.refunded.amount_minor(), 4990);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_session_of_another_attempt_naming_this_one_is_refused() {
    let (fake, app) = setup(Backend::Sqlite).await;
    submit(&app, "mentoria").await;
    let first = only_attempt(&app).await;
    let other = app
        .post_form(
            "/c/mentoria",
            &[
                ("name", "Otro Cliente"),
                ("email", "otro@example.com"),
                ("phone", "300 765 4321"),
                ("tax_id", "9.080.706"),
            ],
        )
        .await;
    assert_eq!(other.status(), 303);
    // The second session, paid, but claiming the first attempt as its reference.
    fake.pay("cs_test_2");
    fake.ledger.lock().unwrap().sessions[1]["client_reference_id"] = json!(first.id);
    let forged = fake.ledger.lock().unwrap().sessions[1].clone();
    assert_eq!(send(&app, "evt_x", "checkout.session.completed", &forged).await.0, 200);
    app.settle().await;
    assert_eq!(super::attempt(&app, &first.id).await.status, PaymentStatus::Redirected);
    let metrics = app.ctx.metrics.render().unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("payment_mismatches") && l.contains("stripe") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_resubmitting_expires_the_older_session_once() {
    let fake = FakeStripe::start().await;
    let (toml, env) = fake.config();
    let opts = crate::support::Options {
        toml,
        env,
        tweak: Box::new(|s| {
            s.reconcile.enabled = false;
            // The same customer buys again at once (back, then resubmit).
            s.forms.duplicate_window = std::time::Duration::ZERO;
        }),
        ..crate::support::Options::default()
    };
    let app = crate::support::spawn_with(Backend::Sqlite, opts).await;
    submit(&app, "mentoria").await;
    let again = submit(&app, "mentoria").await;
    assert!(again.ends_with("/c/pay/cs_test_2"), "{again}");
    app.settle().await;
    assert_eq!(fake.ledger.lock().unwrap().expires, vec!["cs_test_1".to_string()]);
    assert_eq!(fake.ledger.lock().unwrap().sessions[0]["status"], "expired");
}
