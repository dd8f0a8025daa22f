//! Our gateway clients checked against tools the vendors made: their OpenAPI specs served
//! by Prism (requests must conform) and their Node SDKs (signatures must agree). These
//! run when the environment points at the tools (`.ci/run` sets it up); otherwise they
//! say so and skip, unless `LEADGATE_TEST_REQUIRE_VENDOR_TOOLS=1`.

use std::time::Duration;

use secrecy::SecretString;

use leadgate::config::{Environment, MercadoPagoSettings, StripeSettings};
use leadgate::domain::lead::{Attempt, Contact, Lead, Utm};
use leadgate::domain::offer::{GatewayKind, Offer, OfferSlug};
use leadgate::domain::{Currency, Email, Lang, LocalizedText, Money, PaymentStatus, PersonName, Phone, TaxId};
use leadgate::gateways::mercadopago::MercadoPagoGateway;
use leadgate::gateways::stripe::StripeGateway;
use leadgate::gateways::{CheckoutRequest, Gateway, GatewayError, Observation, WebhookHeaders, WebhookRequest};

/// `node_modules` holding the `stripe` and `mercadopago` npm packages.
const SDK_ENV: &str = "LEADGATE_TEST_VENDOR_SDKS";
/// Base URLs of Prism serving `tests/contracts/...`.
const PRISM_STRIPE_ENV: &str = "LEADGATE_TEST_PRISM_STRIPE";
const PRISM_MERCADOPAGO_ENV: &str = "LEADGATE_TEST_PRISM_MERCADOPAGO";
const REQUIRED_ENV: &str = "LEADGATE_TEST_REQUIRE_VENDOR_TOOLS";

pub fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1") => panic!("{REQUIRED_ENV}=1 but {var} is not set"),
        _ => {
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

fn stripe(api_base: &str, webhook_secret: &str) -> StripeGateway {
    StripeGateway::new(
        StripeSettings {
            environment: Environment::Sandbox,
            api_base: url::Url::parse(api_base).unwrap(),
            timeout: Duration::from_secs(20),
            secret_key: SecretString::from("sk_test_contract"),
            webhook_secrets: vec![SecretString::from(webhook_secret)],
            signature_tolerance: Duration::from_secs(300),
        },
        reqwest::Client::new(),
    )
}

fn mercadopago(api_base: &str, webhook_secret: &str) -> MercadoPagoGateway {
    MercadoPagoGateway::new(
        MercadoPagoSettings {
            environment: Environment::Sandbox,
            api_base: url::Url::parse(api_base).unwrap(),
            timeout: Duration::from_secs(20),
            access_token: SecretString::from("TEST-contract-token"),
            webhook_secret: SecretString::from(webhook_secret),
            signature_tolerance: Duration::from_secs(300),
        },
        reqwest::Client::new(),
    )
}

fn sample(gateway: GatewayKind, currency: Currency) -> (Offer, Lead, Attempt) {
    let price = Money::new(29_990, currency).unwrap();
    let offer = Offer {
        slug: OfferSlug::parse("curso").unwrap(),
        title: LocalizedText::plain(Lang::Es, "Curso"),
        description: LocalizedText::plain(Lang::Es, "Doce módulos"),
        price_note: LocalizedText::plain(Lang::Es, ""),
        lang: Lang::Es,
        price,
        gateway,
        crm_pipeline: "Sales".into(),
        crm_stage: "Checkout started".into(),
        followup: std::sync::Arc::new(leadgate::domain::followup::Policy::default_for(&[])),
        ask_tax_id: true,
        tax_id_type: "CPF".into(),
        phone_region: "BR".into(),
        embed_origins: vec![],
        on_refund: leadgate::domain::offer::DealOnRefund::Lost,
        trust: Default::default(),
    };
    let lead = Lead {
        id: "lead-1".into(),
        offer_slug: "curso".into(),
        contact: Contact {
            name: PersonName::parse("Ana Pérez").unwrap(),
            email: Email::parse("ana@example.com").unwrap(),
            phone: Phone::parse("11 91234 5678", Some("BR")).unwrap(),
            tax_id: Some(TaxId::parse("123.456.789-09").unwrap()),
        },
        lang: Lang::PtBr,
        utm: Utm::default(),
        consent: None,
        created_at: chrono::Utc::now().timestamp_millis(),
    };
    let attempt = Attempt {
        id: "att-1".into(),
        lead_id: lead.id.clone(),
        offer_slug: "curso".into(),
        gateway,
        amount: price,
        status: PaymentStatus::Created,
        gateway_ref: Some("cs_test_contract".into()),
        status_detail: None,
        checkout_url: None,
        settled_by: None,
        created_at: lead.created_at,
        updated_at: lead.created_at,
        after: leadgate::domain::lead::AfterApproval::new(&price),
        abandoned_at: None,
    };
    (offer, lead, attempt)
}

fn request<'a>(offer: &'a Offer, lead: &'a Lead, attempt: &'a Attempt) -> CheckoutRequest<'a> {
    CheckoutRequest {
        attempt,
        offer,
        lead,
        return_url: "https://pay.example.com/return/x?attempt=att-1".into(),
        cancel_url: "https://pay.example.com/c/curso?resume=t".into(),
        webhook_url: "https://pay.example.com/webhooks/x".into(),
        expires_at: lead.created_at + 3_600_000,
    }
}

/// Prism answers from the spec, not from what was sent, and these responses have no named
/// examples (so no `Prefer: example=...` to pick): it fills each field with the schema's
/// `example`, else its first enum value, else a type placeholder such as this one. A read
/// that finds nothing (`Ok(None)`) is therefore a failure here, never a pass.
const PRISM_TEXT: &str = "string";

/// The observation a read must give; `Ok(None)` or an error fails the test.
fn observed(what: &str, read: Result<Option<Observation>, GatewayError>) -> Observation {
    match read {
        Ok(Some(seen)) => seen,
        other => panic!("{what}: Prism's answer gave no observation: {other:?}"),
    }
}

#[tokio::test]
async fn stripe_requests_conform_to_stripes_openapi_spec() {
    let Some(prism) = tool(PRISM_STRIPE_ENV) else { return };
    let gw = stripe(&prism, "whsec_unused");
    let (offer, lead, attempt) = sample(GatewayKind::Stripe, Currency::BRL);
    let created = gw.create_checkout(&request(&offer, &lead, &attempt)).await;
    let created = created.unwrap_or_else(|e| panic!("Prism refused our session: {e:?}"));
    assert_eq!(created.gateway_ref.as_deref(), Some(PRISM_TEXT), "{created:?}");
    assert!(!created.url.is_empty());
    // The schema's first enum values: status "complete", payment_status "no_payment_required".
    let seen = observed("session lookup", gw.lookup("cs_test_contract").await);
    assert_eq!(seen.status, PaymentStatus::Approved, "{seen:?}");
    assert_eq!(seen.detail.as_deref(), Some("complete/no_payment_required"));
    assert_eq!(seen.reference.as_deref(), Some(PRISM_TEXT));
    let seen = observed("status by the attempt's session", gw.fetch_status(&attempt, "").await);
    assert_eq!(seen.status, PaymentStatus::Approved, "{seen:?}");
    // A refund or dispute event names a PaymentIntent: its session is found with the list
    // filter `payment_intent` and `expand[]=data.payment_intent.latest_charge`. Prism may
    // answer an empty list, so only acceptance of the request is asserted.
    let by_intent = gw.lookup("pi_contract").await;
    assert!(
        by_intent.is_ok(),
        "Prism refused the list by payment_intent: {by_intent:?}"
    );
    // Expiring a replaced session: POST .../expire with an Idempotency-Key and no body.
    let mut replaced = attempt.clone();
    replaced.after.checkout_ref = Some("cs_test_contract".into());
    observed("expire", gw.expire_checkout(&replaced).await);
}

#[tokio::test]
async fn mercadopago_requests_conform_to_mercadopagos_openapi_spec() {
    let Some(prism) = tool(PRISM_MERCADOPAGO_ENV) else {
        return;
    };
    let gw = mercadopago(&prism, "unused");
    let (offer, lead, mut attempt) = sample(GatewayKind::MercadoPago, Currency::BRL);
    let created = gw.create_checkout(&request(&offer, &lead, &attempt)).await;
    let created = created.unwrap_or_else(|e| panic!("Prism refused our preference: {e:?}"));
    assert!(created.gateway_ref.is_some(), "{created:?}");
    // The Payment schema's `id` example, its first status ("pending", listed before the
    // `example: approved` Prism passes over for an enum) and its status_detail example.
    let seen = observed("payment lookup", gw.lookup("1319000001").await);
    assert_eq!(seen.status, PaymentStatus::Pending, "{seen:?}");
    assert_eq!(seen.gateway_ref.as_deref(), Some("1234567890"));
    assert_eq!(seen.detail.as_deref(), Some("pending/accredited"));
    // The search re-checks each result's external_reference against the attempt, and
    // Prism's results carry its placeholder: the attempt takes that name so one matches.
    attempt.id = PRISM_TEXT.into();
    let seen = observed("payment search", gw.fetch_status(&attempt, "").await);
    assert_eq!(seen.status, PaymentStatus::Pending, "{seen:?}");
    assert_eq!(seen.reference.as_deref(), Some(PRISM_TEXT));
}

fn node(sdks: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/vendor-sdk.cjs"))
        .args(args)
        .env("NODE_PATH", sdks)
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn delivery<'a>(headers: &'a WebhookHeaders, query: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest { headers, query, body }
}

#[test]
fn stripe_sdk_signed_payloads_are_accepted_and_tampered_ones_refused() {
    let Some(sdks) = tool(SDK_ENV) else { return };
    let secret = "whsec_sdk_cross_check";
    let body = r#"{"id":"evt_sdk","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1","object":"checkout.session","client_reference_id":"att-1","payment_status":"paid","status":"complete"}}}"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let (ok, header) = node(&sdks, &["stripe-sign", secret, file.path().to_str().unwrap()]);
    assert!(ok, "{header}");
    let gw = stripe("http://127.0.0.1:9", secret);
    let headers = WebhookHeaders::new([("Stripe-Signature".to_string(), header.trim().to_string())]);
    assert!(gw.verify_webhook(&delivery(&headers, "", body.as_bytes())).is_ok());
    let tampered = body.replace("\"paid\"", "\"unpaid\"");
    assert!(gw.verify_webhook(&delivery(&headers, "", tampered.as_bytes())).is_err());
    let other = stripe("http://127.0.0.1:9", "whsec_someone_else");
    assert!(other.verify_webhook(&delivery(&headers, "", body.as_bytes())).is_err());
}

#[test]
fn mercadopago_sdk_validator_agrees_with_ours() {
    let Some(sdks) = tool(SDK_ENV) else { return };
    let secret = "mp_sdk_cross_check";
    let (data_id, request_id, ts) = (
        "1319000001",
        "bb56a2f1-6aae-46ac-982e-9dcd3581d08e",
        chrono::Utc::now().timestamp(),
    );
    let manifest = format!("id:{data_id};request-id:{request_id};ts:{ts};");
    let v1 = hex::encode(leadgate::domain::signing::tag(
        secret.as_bytes(),
        &[manifest.as_bytes()],
    ));
    let good = format!("ts={ts},v1={v1}");
    let gw = mercadopago("http://127.0.0.1:9", secret);
    let query = format!("data.id={data_id}&type=payment");
    for (signature, id, expected) in [(good.as_str(), data_id, true), (good.as_str(), "1319000002", false)] {
        let headers = WebhookHeaders::new([
            ("x-signature".to_string(), signature.to_string()),
            ("x-request-id".to_string(), request_id.to_string()),
        ]);
        let q = query.replace(data_id, id);
        let ours = gw.verify_webhook(&delivery(&headers, &q, b"{}")).is_ok();
        let (sdk, why) = node(&sdks, &["mp-validate", signature, request_id, id, secret]);
        assert_eq!((ours, sdk), (expected, expected), "data.id {id}: {why}");
    }
}

/// The after-approval calls against the same spec: the preference update that closes an
/// older checkout (`PUT /checkout/preferences/{id}`), and a payment read, whose Payment
/// schema carries `transaction_amount_refunded` and the method fields we now read.
#[tokio::test]
async fn mercadopago_after_approval_requests_conform_to_mercadopagos_openapi_spec() {
    let Some(prism) = tool(PRISM_MERCADOPAGO_ENV) else {
        return;
    };
    let gw = mercadopago(&prism, "unused");
    let (_, _, mut attempt) = sample(GatewayKind::MercadoPago, Currency::BRL);
    attempt.after.checkout_ref = Some("202809963-a2201f8d-11cb-443f-adf6-de5a42eed67d".into());
    assert!(gw.can_expire());
    // The stored spec types the update's body as the create's `PreferenceRequest`, which
    // requires `items`; we send only `expires` and `expiration_date_to`, as integrators
    // do (the official "Update preference" reference lists no required field, and sending
    // `items` again would rewrite the checkout). So Prism refuses it with a 400. That
    // refusal is what this checks: it proves the path and method exist (an unknown path is
    // a 404, which the adapter takes as "nothing to expire"), and a spec that stops
    // requiring `items` fails here, to be looked at.
    let expired = gw.expire_checkout(&attempt).await;
    assert!(
        matches!(&expired, Err(GatewayError::Rejected(m)) if m.contains("400")),
        "{expired:?}"
    );
    // A read is still readable with the refund and method fields in it; Prism's status is
    // the schema's first ("pending"), so there is nothing after a sale to report.
    let seen = observed("payment lookup", gw.lookup("1319000001").await);
    assert_eq!(seen.after_sale, None, "{seen:?}");
    assert!(seen.method.is_some(), "{seen:?}");
}
