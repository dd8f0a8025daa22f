//! A Wompi offer for the CRM tests that follow a payment after its approval: Wompi's
//! `VOIDED` is an approved card payment annulled, the shortest real path to a reversal.

pub use crate::gateways::wompi::FakeWompi;
use crate::support::TestApp;

pub const OFFER: &str = "curso-wompi";
/// The offer's price: COP 95,000.00.
pub const AMOUNT_IN_CENTS: i64 = 9_500_000;

/// The gateway and one offer on it in pipeline "Sales", with the offer's `on_refund`.
pub fn toml(gateway: &FakeWompi, on_refund: &str) -> String {
    format!(
        r#"{gateway}
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
        gateway = gateway.gateway_toml()
    )
}

pub use crate::gateways::wompi::event_at as event;

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
