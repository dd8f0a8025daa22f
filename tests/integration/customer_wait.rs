//! What the customer waits for after pressing pay: the CRM sync and the gateway's checkout
//! run at the same time, so the redirect waits for the slower of the two, not for both in
//! turn. Proven by order, never by a clock: the CRM fake holds its answer to the deal
//! creation until the gateway fake has been asked (for at most `HOLD`, then it answers
//! anyway), and each fake notes what the other was doing when it was called.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::both_backends;
use crate::support::{location, spawn_with, Backend, Options, TestApp};

both_backends!(
    the_gateway_is_asked_while_the_crm_is_still_creating_the_deal,
    a_failed_checkout_is_answered_without_waiting_for_the_crm
);

/// Longest the CRM fake holds its deal answer; only turns a broken order into a failure.
const HOLD: Duration = Duration::from_secs(3);
const PIPEDRIVE_TOKEN: &str = "pd_wait_token";
const ATTEMPT_KEY: &str = "9d1c3b5a7e2f4d6b8a0c1e3f5a7b9c2d4e6f8a0b";

/// What the two fakes (and the test) have seen, in one place.
#[derive(Default)]
struct Order {
    /// Deals answered so far: the CRM sync is over once its deal is answered.
    deals: u32,
    /// The gateway has been asked for a checkout.
    gateway_asked: bool,
    /// How many deals had been answered when the gateway was asked.
    deals_when_asked: Option<u32>,
    /// Whether the gateway had been asked by the time the deal was answered.
    asked_before_deal_answered: Option<bool>,
    /// The test has its answer: the deal creation may finish (for the failure test).
    customer_answered: bool,
}

#[derive(Clone, Default)]
struct Meeting(Arc<(Mutex<Order>, Condvar)>);

impl Meeting {
    fn with<T>(&self, f: impl FnOnce(&mut Order) -> T) -> T {
        let (lock, wake) = &*self.0;
        let out = f(&mut lock.lock().unwrap());
        wake.notify_all();
        out
    }

    /// Blocks the CRM fake's own server thread (each wiremock server has one) until
    /// `ready` holds or `HOLD` has passed.
    fn hold_until(&self, ready: impl Fn(&Order) -> bool) {
        let (lock, wake) = &*self.0;
        let guard = lock.lock().unwrap();
        let _unused = wake.wait_timeout_while(guard, HOLD, |o| !ready(o)).unwrap();
    }

    fn order(&self) -> (Option<u32>, Option<bool>, u32) {
        self.with(|o| (o.deals_when_asked, o.asked_before_deal_answered, o.deals))
    }
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "success": true, "data": data, "additional_data": { "next_cursor": null } }))
}

/// Pipedrive as far as one new lead needs it: the start-up catalog, an empty person
/// search, a person, and a deal whose answer is held as `hold` says.
async fn pipedrive(meeting: &Meeting, hold: fn(&Order) -> bool) -> MockServer {
    let server = MockServer::start().await;
    let get = |p: &'static str, data: Value| Mock::given(method("GET")).and(path(p)).respond_with(ok(data));
    for mock in [
        get(
            "/api/v2/pipelines",
            json!([{ "id": 1, "name": "Sales", "is_deleted": false }]),
        ),
        get(
            "/api/v2/stages",
            json!([{ "id": 11, "name": "Checkout started", "pipeline_id": 1, "order_nr": 1 }]),
        ),
        get(
            "/api/v1/users",
            json!([{ "id": 9, "name": "Sales Bot", "email": "bot@example.com", "active_flag": true }]),
        ),
        get(
            "/api/v2/dealFields",
            json!([{ "field_code": ATTEMPT_KEY, "field_name": "Leadgate attempt", "field_type": "varchar",
                     "is_custom_field": true }]),
        ),
        get(
            "/api/v1/activityTypes",
            json!([{ "id": 1, "name": "Call", "key_string": "call", "active_flag": true }]),
        ),
        get("/api/v2/persons/search", json!({ "items": [] })),
        Mock::given(method("POST"))
            .and(path("/api/v2/persons"))
            .respond_with(ok(json!({ "id": 501 }))),
    ] {
        mock.mount(&server).await;
    }
    let m = meeting.clone();
    Mock::given(method("POST"))
        .and(path("/api/v2/deals"))
        .respond_with(move |req: &Request| {
            m.hold_until(hold);
            m.with(|o| {
                o.deals += 1;
                o.asked_before_deal_answered = Some(o.gateway_asked);
            });
            let mut deal: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            deal["id"] = json!(701);
            ok(deal)
        })
        .mount(&server)
        .await;
    server
}

/// Stripe's session creation, answering `status` (a session on 200, an error otherwise).
async fn stripe(meeting: &Meeting, status: u16) -> MockServer {
    let server = MockServer::start().await;
    let m = meeting.clone();
    let base = server.uri();
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(move |_: &Request| {
            m.with(|o| {
                o.gateway_asked = true;
                o.deals_when_asked = Some(o.deals);
            });
            if status != 200 {
                return ResponseTemplate::new(status)
                    .set_body_json(json!({"error": {"type": "api_error", "message": "boom"}}));
            }
            ResponseTemplate::new(200).set_body_json(json!({
                "id": "cs_test_wait", "object": "checkout.session", "url": format!("{base}/c/pay/cs_test_wait"),
                "status": "open", "payment_status": "unpaid",
            }))
        })
        .mount(&server)
        .await;
    server
}

async fn app(backend: Backend, crm: &MockServer, gateway: &MockServer) -> TestApp {
    let toml = format!(
        r#"
[crm]
kind = "pipedrive"
api_base = "{}"

[crm.fields]
attempt_id = "Leadgate attempt"

[gateways.stripe]
environment = "sandbox"
api_base = "{}"

[[offers]]
slug = "mentoria"
title = "Mentoría"
price_minor = 4990
currency = "USD"
gateway = "stripe"
pipeline = "Sales"
stage = "Checkout started"
"#,
        crm.uri(),
        gateway.uri()
    );
    let env = vec![
        ("LEADGATE_PIPEDRIVE_API_TOKEN", PIPEDRIVE_TOKEN.to_string()),
        ("LEADGATE_STRIPE_SECRET_KEY", "sk_test_51Hx".to_string()),
        ("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_test_wait".to_string()),
    ];
    let opts = Options {
        toml,
        env,
        tweak: Box::new(|s| {
            // Longer than the CRM fake's hold: were the two run in turn, the checkout would
            // only be asked for after the deal's answer, not cut off by the deadline.
            s.inline_crm_deadline = Duration::from_secs(10);
            s.reconcile.enabled = false;
        }),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

async fn press_pay(app: &TestApp) -> reqwest::Response {
    let form = [
        ("name", "Ana María Pérez"),
        ("email", "ana.wait@example.com"),
        ("phone", "300 123 4567"),
    ];
    app.post_form("/c/mentoria", &form).await
}

/// The customer's redirect waits for the deal (it exists before the 303), but the checkout
/// was asked for while the deal was still being created: the two ran side by side.
async fn the_gateway_is_asked_while_the_crm_is_still_creating_the_deal(backend: Backend) {
    let meeting = Meeting::default();
    let crm = pipedrive(&meeting, |o| o.gateway_asked).await;
    let gateway = stripe(&meeting, 200).await;
    let app = app(backend, &crm, &gateway).await;
    let res = press_pay(&app).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert!(location(&res).ends_with("/c/pay/cs_test_wait"), "{}", location(&res));
    let (deals_when_asked, asked_before_answer, deals) = meeting.order();
    assert_eq!(deals, 1, "the deal exists before the redirect");
    assert_eq!(
        deals_when_asked,
        Some(0),
        "the gateway must be asked while the CRM sync is still making the deal"
    );
    assert_eq!(
        asked_before_answer,
        Some(true),
        "the deal was answered before the gateway was asked"
    );
}

/// A checkout the gateway refuses is answered at once, with the CRM still busy; the sync
/// finishes in the background and the deal is made all the same.
async fn a_failed_checkout_is_answered_without_waiting_for_the_crm(backend: Backend) {
    let meeting = Meeting::default();
    let crm = pipedrive(&meeting, |o| o.customer_answered).await;
    let gateway = stripe(&meeting, 400).await;
    let app = app(backend, &crm, &gateway).await;
    let res = press_pay(&app).await;
    let deals_when_answered = meeting.with(|o| {
        o.customer_answered = true;
        o.deals
    });
    assert_ne!(res.status(), 303);
    assert_eq!(
        meeting.order().0,
        Some(0),
        "the gateway was asked after the CRM sync had finished"
    );
    assert_eq!(
        deals_when_answered, 0,
        "the customer's answer waited for the CRM after the checkout failed"
    );
    crate::support::eventually("the deal to be made in the background", || async {
        meeting.order().2 == 1
    })
    .await;
    app.settle().await;
    let records = leadgate::store::crm_records::for_lead(&app.ctx.db, app.leads().await[0]["id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        records.iter().any(|r| r.kind == "deal" && r.remote_id == "701"),
        "{records:?}"
    );
}
