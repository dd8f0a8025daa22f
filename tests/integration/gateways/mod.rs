//! Real gateways against fakes that behave like the vendors: each fake keeps its own
//! ledger of payments, answers the API calls our adapter makes, and the test signs
//! webhooks with the vendor's scheme, as the vendor would.

use std::collections::HashMap;
use std::time::Duration;

use leadgate::domain::lead::Attempt;
use leadgate::domain::PaymentStatus;

use crate::support::{eventually, location, spawn_with, Backend, Options, TestApp};

pub mod mercadopago;
mod stripe;
pub mod wompi;

/// An app with one extra offer, `slug`, sold through the gateway configured by `toml`.
/// Reconciliation runs only when a test calls it, and asks at once.
pub async fn app_with(backend: Backend, toml: String, env: Vec<(&'static str, String)>) -> TestApp {
    let opts = Options {
        toml,
        env,
        tweak: Box::new(|s| {
            s.reconcile.enabled = false;
            s.reconcile.after = Duration::ZERO;
            s.reconcile.interval = Duration::ZERO;
        }),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

/// Submits the offer form like a customer; returns the gateway URL we were sent to.
pub async fn submit(app: &TestApp, offer: &str) -> String {
    let form = [
        ("name", "Ana María Pérez"),
        ("email", "ana@example.com"),
        ("phone", "300 123 4567"),
        ("tax_id", "1.020.304.050"),
        ("utm_campaign", "launch"),
    ];
    let res = app.post_form(&format!("/c/{offer}"), &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    location(&res)
}

pub fn query_map(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

pub async fn only_attempt(app: &TestApp) -> Attempt {
    let leads = leadgate::store::leads::all(&app.ctx.db).await.unwrap();
    assert_eq!(leads.len(), 1);
    let mut attempts = leadgate::store::attempts::for_lead(&app.ctx.db, &leads[0].id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    attempts.remove(0)
}

pub async fn attempt(app: &TestApp, id: &str) -> Attempt {
    leadgate::store::attempts::get(&app.ctx.db, id).await.unwrap().unwrap()
}

pub async fn wait_for_status(app: &TestApp, id: &str, status: PaymentStatus) {
    eventually(&format!("attempt {id} to become {status}"), || async {
        attempt(app, id).await.status == status
    })
    .await
}

/// Waits for the one deal to reach `status` (open, won, lost) once the queue drains.
pub async fn wait_for_deal(app: &TestApp, status: &str) {
    eventually(&format!("the deal to be {status}"), || async {
        let deals = app.deals().await;
        deals.len() == 1 && deals[0].status == status
    })
    .await
}

/// POSTs a webhook with its headers, as the vendor would.
pub async fn deliver(app: &TestApp, path_and_query: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut req = app
        .http
        .post(app.url(path_and_query))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// One reconciliation pass, then waits for the checks it enqueued to finish.
pub async fn reconcile(app: &TestApp) -> leadgate::flows::reconcile::Pass {
    let pass = leadgate::flows::reconcile::pass(&app.ctx).await.unwrap();
    app.settle().await;
    pass
}

/// `leadgate_reconcile_checks_total` for one gateway and result, as `/metrics` shows it.
pub fn checks(app: &TestApp, gateway: &str, result: &str) -> u64 {
    let metrics = app.ctx.metrics.render().unwrap();
    let series = format!("leadgate_reconcile_checks_total{{gateway=\"{gateway}\",result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}
