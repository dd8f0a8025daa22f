//! Every real gateway's webhook verification and event parser on arbitrary deliveries:
//! any headers, query and body. Neither may panic, whatever arrives.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use leadgate::config::{Environment, MercadoPagoSettings, StripeSettings, WompiSettings};
use leadgate::gateways::mercadopago::MercadoPagoGateway;
use leadgate::gateways::stripe::StripeGateway;
use leadgate::gateways::wompi::WompiGateway;
use leadgate::gateways::{Gateway, WebhookHeaders, WebhookRequest};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fn base() -> url::Url {
    url::Url::parse("http://127.0.0.1:9/").unwrap_or_else(|_| unreachable!())
}

fn gateways() -> Vec<Box<dyn Gateway>> {
    let http = reqwest::Client::new();
    let secret = |s: &str| SecretString::from(s.to_owned());
    vec![
        Box::new(WompiGateway::new(
            WompiSettings {
                environment: Environment::Sandbox,
                api_base: base(),
                checkout_url: base(),
                timeout: Duration::from_secs(1),
                public_key: "pub_test_fuzz".into(),
                private_key: secret("prv_test_fuzz"),
                events_secret: secret("test_events_fuzz"),
                integrity_secret: secret("test_integrity_fuzz"),
            },
            http.clone(),
        )),
        Box::new(StripeGateway::new(
            StripeSettings {
                environment: Environment::Sandbox,
                api_base: base(),
                timeout: Duration::from_secs(1),
                secret_key: secret("sk_test_fuzz"),
                webhook_secrets: vec![secret("whsec_fuzz")],
                signature_tolerance: Duration::from_secs(300),
            },
            http.clone(),
        )),
        Box::new(MercadoPagoGateway::new(
            MercadoPagoSettings {
                environment: Environment::Sandbox,
                api_base: base(),
                timeout: Duration::from_secs(1),
                access_token: secret("TEST-fuzz"),
                webhook_secret: secret("fuzz"),
                signature_tolerance: Duration::from_secs(300),
            },
            http,
        )),
    ]
}

fuzz_target!(|input: (Vec<(String, String)>, String, Vec<u8>)| {
    let (headers, query, body) = input;
    let headers = WebhookHeaders::new(headers);
    static GATEWAYS: OnceLock<Vec<Box<dyn Gateway>>> = OnceLock::new();
    for g in GATEWAYS.get_or_init(gateways) {
        let req = WebhookRequest {
            headers: &headers,
            query: &query,
            body: &body,
        };
        let _ = g.verify_webhook(&req);
        let _ = g.parse_event(&query, &body);
    }
});
