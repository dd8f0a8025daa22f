//! Payment links that start from the CRM: what the Pipedrive and HubSpot tests share (the
//! tests themselves sit beside each fake, in `pipedrive/links.rs` and `hubspot/links.rs`).

use leadgate::store::payment_links::PaymentLink;
use serde_json::Value;

use crate::support::TestApp;

/// The link stage's configuration and limits that let a deal's COP value through.
pub fn links_toml(stage: &str, extra: &str) -> String {
    format!(
        "\n[crm.payment_links]\nstage = \"{stage}\"\nlang = \"es\"\n{extra}\n\n\
         [payment_links.limits.COP]\nmin_minor = 100000\nmax_minor = 100000000000\n"
    )
}

/// POSTs `body` as JSON with the given headers.
pub async fn post_webhook(app: &TestApp, path: &str, headers: &[(&str, String)], body: &str) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    req.send().await.unwrap()
}

pub async fn status_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every payment link, and every attempt of each (with its checkout URL).
pub async fn links_and_attempts(app: &TestApp) -> (Vec<PaymentLink>, Vec<leadgate::domain::lead::Attempt>) {
    let links = leadgate::store::payment_links::recent(&app.ctx.db, 100).await.unwrap();
    let mut attempts = Vec::new();
    for l in &links {
        attempts.extend(
            leadgate::store::attempts::for_lead(&app.ctx.db, &l.lead_id)
                .await
                .unwrap(),
        );
    }
    (links, attempts)
}

/// The CRM inbox: (event id, outcome) of every stored event.
pub async fn inbox(app: &TestApp) -> Vec<(String, Option<String>)> {
    leadgate::store::crm_inbox::recent(&app.ctx.db, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_id, e.outcome))
        .collect()
}

/// The CRM deal the attempt's CRM sync recorded (none made by it: it was bound).
pub async fn deal_of(app: &TestApp, attempt_id: &str) -> Option<String> {
    let leads = app.leads().await;
    leads
        .iter()
        .flat_map(|l| l["attempts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["id"] == attempt_id)
        .and_then(|a| a["crm_deal_id"].as_str().map(str::to_owned))
}
