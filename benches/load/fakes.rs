//! Vendor fakes for the customer-wait workload: Pipedrive answering every call after
//! 300 ms and Stripe answering checkout creation after 400 ms, each request's path
//! logged. Only what leadgate calls on a submit is answered meaningfully.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const CRM_DELAY: Duration = Duration::from_millis(300);
pub const CHECKOUT_DELAY: Duration = Duration::from_millis(400);
pub const PIPEDRIVE_TOKEN: &str = "pd_bench_token";
pub const STRIPE_KEY: &str = "sk_test_bench";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_bench";
const ATTEMPT_KEY: &str = "9d1c3b5a7e2f4d6b8a0c1e3f5a7b9c2d4e6f8a0b";

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

fn log(l: &Log, req: &Request) {
    if let Ok(mut l) = l.lock() {
        l.push(Seen {
            path: req.url.path().to_owned(),
        });
    }
}

struct Pipedrive {
    log: Log,
    next: AtomicU64,
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "success": true, "data": data, "additional_data": { "next_cursor": null } }))
        .set_delay(CRM_DELAY)
}

impl Respond for Pipedrive {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        log(&self.log, req);
        let id = 100 + self.next.fetch_add(1, Ordering::Relaxed);
        match (req.method.as_str(), req.url.path()) {
            ("GET", "/api/v2/pipelines") => ok(json!([{ "id": 1, "name": "Sales", "is_deleted": false }])),
            ("GET", "/api/v2/stages") => ok(json!([
                { "id": 10, "name": "New", "pipeline_id": 1, "order_nr": 1 },
                { "id": 11, "name": "Checkout started", "pipeline_id": 1, "order_nr": 2 },
            ])),
            ("GET", "/api/v1/users") => ok(json!([
                { "id": 9, "name": "Sales Bot", "email": "bot@example.com", "active_flag": true },
            ])),
            ("GET", "/api/v2/dealFields") => ok(json!([
                { "field_code": "title", "field_name": "Title", "field_type": "varchar", "is_custom_field": false },
                { "field_code": ATTEMPT_KEY, "field_name": "Leadgate attempt", "field_type": "varchar", "is_custom_field": true },
            ])),
            ("GET", "/api/v1/activityTypes") => ok(json!([
                { "id": 1, "name": "Call", "key_string": "call", "active_flag": true },
                { "id": 2, "name": "Task", "key_string": "task", "active_flag": true },
            ])),
            ("GET", p) if p.ends_with("/search") => ok(json!({ "items": [] })),
            ("GET", "/api/v2/activities") => ok(json!([])),
            ("POST", _) | ("PATCH", _) => {
                let mut body: Value = serde_json::from_slice(&req.body).unwrap_or_else(|_| json!({}));
                body["id"] = json!(id);
                ok(body)
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({ "success": false, "error": "Unknown method ." })),
        }
    }
}

struct Stripe {
    log: Log,
    base: String,
    next: AtomicU64,
}

impl Respond for Stripe {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        log(&self.log, req);
        if req.method.as_str() != "POST" || req.url.path() != "/v1/checkout/sessions" {
            return ResponseTemplate::new(404).set_body_json(json!({"error": {"type": "invalid_request_error"}}));
        }
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&req.body).into_owned().collect();
        let id = format!("cs_test_bench_{}", self.next.fetch_add(1, Ordering::Relaxed));
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "id": id,
                "object": "checkout.session",
                "url": format!("{}/c/pay/{id}", self.base),
                "status": "open",
                "payment_status": "unpaid",
                "client_reference_id": form.get("client_reference_id"),
                "amount_total": form.get("line_items[0][price_data][unit_amount]").and_then(|a| a.parse::<i64>().ok()),
                "currency": form.get("line_items[0][price_data][currency]"),
                "expires_at": form.get("expires_at").and_then(|a| a.parse::<i64>().ok()),
            }))
            .set_delay(CHECKOUT_DELAY)
    }
}

pub struct Fakes {
    pub crm: MockServer,
    pub gateway: MockServer,
    pub crm_log: Log,
    pub gateway_log: Log,
}

impl Fakes {
    pub async fn start() -> Fakes {
        let crm = MockServer::start().await;
        let gateway = MockServer::start().await;
        let crm_log = Log::default();
        let gateway_log = Log::default();
        Mock::given(any())
            .respond_with(Pipedrive {
                log: crm_log.clone(),
                next: AtomicU64::new(1),
            })
            .mount(&crm)
            .await;
        Mock::given(any())
            .respond_with(Stripe {
                log: gateway_log.clone(),
                base: gateway.uri(),
                next: AtomicU64::new(1),
            })
            .mount(&gateway)
            .await;
        Fakes {
            crm,
            gateway,
            crm_log,
            gateway_log,
        }
    }

    /// The `[crm]`, `[gateways.stripe]` and offer tables pointing leadgate at the fakes.
    pub fn toml(&self, offer: &str) -> String {
        format!(
            "[crm]\nkind = \"pipedrive\"\napi_base = \"{crm}\"\n[crm.fields]\nattempt_id = \"Leadgate attempt\"\n\
             [gateways.stripe]\nenvironment = \"sandbox\"\napi_base = \"{gw}\"\n\
             [[offers]]\nslug = \"{offer}\"\ntitle = \"Mentoría\"\nprice_minor = 4990\ncurrency = \"USD\"\ngateway = \"stripe\"\n",
            crm = self.crm.uri(),
            gw = self.gateway.uri(),
        )
    }

    pub fn env() -> Vec<(&'static str, String)> {
        vec![
            ("LEADGATE_PIPEDRIVE_API_TOKEN", PIPEDRIVE_TOKEN.into()),
            ("LEADGATE_STRIPE_SECRET_KEY", STRIPE_KEY.into()),
            ("LEADGATE_STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET.into()),
        ]
    }

    pub fn clear(&self) {
        for l in [&self.crm_log, &self.gateway_log] {
            if let Ok(mut l) = l.lock() {
                l.clear();
            }
        }
    }

    pub fn seen(log: &Log) -> Vec<Seen> {
        log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
