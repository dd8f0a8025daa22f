//! A Wompi offer for the CRM tests that follow a payment after its approval: Wompi's
//! `VOIDED` is an approved card payment annulled, the shortest real path to a reversal.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::TestApp;

const EVENTS_SECRET: &str = "test_events_Crm7Rf";
const INTEGRITY_SECRET: &str = "test_integrity_Crm2Qd";
const PRIVATE_KEY: &str = "prv_test_Crm5Tx";
pub const OFFER: &str = "curso-wompi";
/// The offer's price: COP 95,000.00.
pub const AMOUNT_IN_CENTS: i64 = 9_500_000;

/// Wompi's transaction reads, answering with the latest state a test gave a transaction.
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

    /// The transaction `id` of attempt `reference` now has `status`.
    pub fn transaction(&self, id: &str, reference: &str, status: &str) -> Value {
        let tx = json!({
            "id": id,
            "created_at": "2026-11-23T10:00:00.000Z",
            "amount_in_cents": AMOUNT_IN_CENTS,
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

    /// The gateway and one offer on it in pipeline "Sales", with the offer's `on_refund`.
    pub fn toml(&self, on_refund: &str) -> String {
        format!(
            r#"
[gateways.wompi]
environment = "sandbox"
api_base = "{base}/v1"
checkout_url = "{base}/p/"
public_key = "pub_test_Crm9Pk"

[[offers]]
slug = "{OFFER}"
title = "Curso Wompi"
price_minor = {AMOUNT_IN_CENTS}
currency = "COP"
gateway = "wompi"
pipeline = "Sales"
stage = "Checkout started"
on_refund = "{on_refund}"
"#,
            base = self.server.uri()
        )
    }

    pub fn env() -> Vec<(&'static str, String)> {
        vec![
            ("LEADGATE_WOMPI_PRIVATE_KEY", PRIVATE_KEY.to_string()),
            ("LEADGATE_WOMPI_EVENTS_SECRET", EVENTS_SECRET.to_string()),
            ("LEADGATE_WOMPI_INTEGRITY_SECRET", INTEGRITY_SECRET.to_string()),
        ]
    }
}

/// A `transaction.updated` event signed the way Wompi signs it, sent at `ts`.
pub fn event(tx: &Value, ts: i64) -> (String, String) {
    let concat = format!(
        "{}{}{}{ts}{EVENTS_SECRET}",
        tx["id"].as_str().unwrap(),
        tx["status"].as_str().unwrap(),
        tx["amount_in_cents"]
    );
    let checksum = hex::encode(Sha256::digest(concat.as_bytes()));
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

/// Posts the event as Wompi would; the HTTP status.
pub async fn send(app: &TestApp, event: &(String, String)) -> u16 {
    let (body, checksum) = event;
    let headers = [("X-Event-Checksum", checksum.clone())];
    crate::gateways::deliver(app, "/webhooks/wompi", &headers, body).await.0
}

/// Buys the offer like a customer; the attempt's id.
pub async fn buy(app: &TestApp) -> String {
    crate::gateways::submit(app, OFFER).await;
    crate::gateways::only_attempt(app).await.id
}
