use super::*;
use crate::domain::lead::Lead;
use crate::domain::offer::Offer;
use crate::domain::signing;
use crate::domain::{Lang, LocalizedText, PersonName};
use crate::gateways::{fixtures, WebhookHeaders};
use secrecy::SecretString;
use serde_json::json;

const SECRET: &str = "mp_test_secret";
const REQUEST_ID: &str = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e";
// 2026-11-23T10:00:00Z
const T0: i64 = 1_795_428_000_000;

fn settings(api_base: &str, environment: Environment) -> MercadoPagoSettings {
    MercadoPagoSettings {
        environment,
        api_base: Url::parse(api_base).unwrap(),
        timeout: Duration::from_secs(5),
        access_token: SecretString::from("TEST-token"),
        webhook_secret: SecretString::from(SECRET),
        signature_tolerance: Duration::from_secs(300),
    }
}

fn offer(price: Money) -> Offer {
    Offer {
        title: LocalizedText::plain(Lang::Es, "Curso de demostración"),
        description: LocalizedText::plain(Lang::Es, "Acceso por un año"),
        ..fixtures::offer("curso-demo", GatewayKind::MercadoPago, price)
    }
}

fn lead(tax_id: Option<&str>) -> Lead {
    fixtures::lead(tax_id, T0)
}

fn attempt(amount: Money) -> Attempt {
    Attempt {
        status: PaymentStatus::Created,
        ..fixtures::attempt("att_1", GatewayKind::MercadoPago, amount, T0)
    }
}

fn request<'a>(attempt: &'a Attempt, offer: &'a Offer, lead: &'a Lead) -> CheckoutRequest<'a> {
    CheckoutRequest {
        attempt,
        offer,
        lead,
        return_url: "https://pay.example.com/return/mercadopago?attempt=att_1".into(),
        cancel_url: "https://pay.example.com/c/curso-demo?resume=x".into(),
        webhook_url: "https://pay.example.com/webhooks/mercadopago".into(),
        expires_at: T0 + 3_600_000,
    }
}

fn cop(pesos: i64) -> Money {
    Money::new(pesos * 100, Currency::COP).unwrap()
}

#[test]
fn preference_body_has_every_field() {
    let (a, o, l) = (attempt(cop(199_000)), offer(cop(199_000)), lead(Some("1.020.304.050")));
    let req = request(&a, &o, &l);
    let body = serde_json::to_value(preference_body(&req).unwrap()).unwrap();
    let back = "https://pay.example.com/return/mercadopago?attempt=att_1";
    assert_eq!(
        body,
        json!({
            "items": [{
                "id": "curso-demo",
                "title": "Curso de demostración",
                "description": "Acceso por un año",
                "quantity": 1,
                "currency_id": "COP",
                "unit_price": 199000
            }],
            "payer": {
                "name": "María",
                "surname": "José Pérez",
                "email": "maria@example.com",
                "phone": {"area_code": "57", "number": "3001234567"},
                "identification": {"type": "CC", "number": "1020304050"}
            },
            "external_reference": "att_1",
            "back_urls": {"success": back, "pending": back, "failure": back},
            "auto_return": "approved",
            "notification_url": "https://pay.example.com/webhooks/mercadopago",
            "expires": true,
            "expiration_date_from": "2026-11-23T10:00:00.000+00:00",
            "expiration_date_to": "2026-11-23T11:00:00.000+00:00",
            "metadata": {"attempt_id": "att_1", "lead_id": "lead_1"}
        })
    );
    // A whole amount goes out as an integer, never 199000.0.
    let text = serde_json::to_string(&preference_body(&req).unwrap()).unwrap();
    assert!(text.contains("\"unit_price\":199000}"), "{text}");
}

#[test]
fn preference_body_leaves_out_what_the_lead_lacks() {
    let price = Money::new(4_990, Currency::BRL).unwrap();
    let (a, mut o, mut l) = (attempt(price), offer(price), lead(None));
    o.description = LocalizedText::plain(Lang::Es, "  ");
    l.contact.name = PersonName::parse("Madonna").unwrap();
    let req = request(&a, &o, &l);
    let body = serde_json::to_value(preference_body(&req).unwrap()).unwrap();
    assert_eq!(body["items"][0].get("description"), None);
    assert_eq!(body["items"][0]["unit_price"], json!(49.9));
    assert_eq!(body["items"][0]["currency_id"], "BRL");
    assert_eq!(
        body["payer"],
        json!({
            "name": "Madonna",
            "email": "maria@example.com",
            "phone": {"area_code": "57", "number": "3001234567"}
        })
    );
}

#[test]
fn unit_price_is_exact_major_units() {
    let price = |minor, c| major_units(&Money::new(minor, c).unwrap()).unwrap().to_string();
    assert_eq!(price(19_900_000, Currency::COP), "199000");
    assert_eq!(price(4_990, Currency::BRL), "49.9");
    assert_eq!(price(1, Currency::MXN), "0.01");
    assert_eq!(price(10_050, Currency::PEN), "100.5");
    assert_eq!(price(123_456_789, Currency::ARS), "1234567.89");
    assert_eq!(price(15_000, Currency::CLP), "15000");
    assert_eq!(price(30, Currency::BRL), "0.3");
}

#[test]
fn timestamps_are_iso8601_with_millis_and_offset() {
    assert_eq!(iso8601(T0 + 42).unwrap(), "2026-11-23T10:00:00.042+00:00");
    assert_eq!(iso8601(0).unwrap(), "1970-01-01T00:00:00.000+00:00");
}

fn created(id: Value, init: Option<&str>, sandbox: Option<&str>) -> PreferenceResponse {
    serde_json::from_value(json!({"id": id, "init_point": init, "sandbox_init_point": sandbox, "extra": 1})).unwrap()
}

#[test]
fn checkout_url_follows_the_environment() {
    let both = || created(json!("pref-1"), Some("https://prod"), Some("https://sandbox"));
    assert_eq!(
        checkout_url(Environment::Sandbox, both()).as_deref(),
        Some("https://sandbox")
    );
    assert_eq!(
        checkout_url(Environment::Production, both()).as_deref(),
        Some("https://prod")
    );
    let prod_only = || created(json!(7), Some("https://prod"), None);
    assert_eq!(
        checkout_url(Environment::Sandbox, prod_only()).as_deref(),
        Some("https://prod")
    );
    let sandbox_only = created(json!("p"), Some(""), Some("https://sandbox"));
    assert_eq!(checkout_url(Environment::Production, sandbox_only), None);
    assert_eq!(
        checkout_url(Environment::Sandbox, created(json!("p"), None, None)),
        None
    );
    assert_eq!(created(json!(7), None, None).id.unwrap().into_string(), "7");
}

// --- signatures ---------------------------------------------------------------------

fn headers(signature: Option<&str>, request_id: Option<&str>) -> WebhookHeaders {
    let mut h = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(s) = signature {
        h.push(("X-Signature".to_owned(), s.to_owned()));
    }
    if let Some(r) = request_id {
        h.push(("X-Request-Id".to_owned(), r.to_owned()));
    }
    WebhookHeaders::new(h)
}

/// The vectors' timestamps are fixed dates long past: the signature tests check them with
/// a window wide enough for any date, and the window is tested on its own below.
const ANY_TIME: Duration = Duration::MAX;

fn check(h: &WebhookHeaders, query: &str, secret: &str, tolerance: Duration, now: i64) -> Result<(), WebhookError> {
    verify(h, query, br#"{"type":"payment"}"#, secret, tolerance, now).map(|_| ())
}

fn verify(
    h: &WebhookHeaders,
    query: &str,
    body: &[u8],
    secret: &str,
    tolerance: Duration,
    now: i64,
) -> Result<Verified, WebhookError> {
    let req = WebhookRequest {
        headers: h,
        query,
        body,
    };
    verify_delivery(&req, secret.as_bytes(), tolerance, now)
}

fn sign(manifest: &str) -> String {
    hex::encode(signing::tag(SECRET.as_bytes(), &[manifest.as_bytes()]))
}

const M1: &str = "ts=1742505638683,v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7";

#[test]
fn vector_m1_verifies() {
    let manifest = "id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1742505638683;";
    assert_eq!(manifest_for("123456", Some(REQUEST_ID), "1742505638683"), manifest);
    let h = headers(Some(M1), Some(REQUEST_ID));
    assert_eq!(check(&h, "data.id=123456&type=payment", SECRET, ANY_TIME, T0), Ok(()));
    // Spaces after the comma are tolerated.
    let spaced = M1.replace(',', ", ");
    let h = headers(Some(&spaced), Some(REQUEST_ID));
    assert_eq!(check(&h, "data.id=123456&type=payment", SECRET, ANY_TIME, T0), Ok(()));
}

fn manifest_for(id: &str, request_id: Option<&str>, ts: &str) -> String {
    manifest(Some(id), request_id, ts)
}

#[test]
fn sdk_vector_verifies() {
    let h = headers(
        Some("ts=1700000000,v1=d455e8ca69c4837fde55884516ec1ab066b379a8ba5d3290eaa45ad6e5588874"),
        Some(REQUEST_ID),
    );
    assert_eq!(
        manifest_for("123456789", Some(REQUEST_ID), "1700000000"),
        "id:123456789;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1700000000;"
    );
    assert_eq!(
        check(&h, "type=payment&data.id=123456789", SECRET, ANY_TIME, T0),
        Ok(())
    );
}

#[test]
fn wrong_secret_or_data_id_is_rejected() {
    let h = headers(Some(M1), Some(REQUEST_ID));
    let q = "data.id=123456&type=payment";
    assert_eq!(
        check(&h, q, "mp_other_secret", ANY_TIME, T0),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        check(&h, "data.id=123457&type=payment", SECRET, ANY_TIME, T0),
        Err(WebhookError::BadSignature)
    );
    // data.id must come from the query; a body or a missing one does not do.
    assert_eq!(
        check(&h, "type=payment", SECRET, ANY_TIME, T0),
        Err(WebhookError::BadSignature)
    );
    let other_request = headers(Some(M1), Some("bb56a2f1-0000-46ac-982e-9dcd3581d08e"));
    assert_eq!(
        check(&other_request, q, SECRET, ANY_TIME, T0),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn missing_request_id_leaves_its_part_out() {
    let q = "data.id=123456&type=payment";
    // M1 was made with the request id: without the header it no longer matches.
    assert_eq!(
        check(&headers(Some(M1), None), q, SECRET, ANY_TIME, T0),
        Err(WebhookError::BadSignature)
    );
    let v1 = sign("id:123456;ts:1742505638683;");
    let h = headers(Some(&format!("ts=1742505638683,v1={v1}")), None);
    assert_eq!(check(&h, q, SECRET, ANY_TIME, T0), Ok(()));
    // An empty header counts as absent, as in the SDK.
    let h = headers(Some(&format!("ts=1742505638683,v1={v1}")), Some(""));
    assert_eq!(check(&h, q, SECRET, ANY_TIME, T0), Ok(()));
    // And without data.id, only request-id and ts are signed.
    let v1 = sign(&format!("request-id:{REQUEST_ID};ts:1742505638683;"));
    let h = headers(Some(&format!("ts=1742505638683,v1={v1}")), Some(REQUEST_ID));
    assert_eq!(check(&h, "topic=merchant_order&id=5", SECRET, ANY_TIME, T0), Ok(()));
}

#[test]
fn alphanumeric_data_id_is_signed_lowercased() {
    let q = "data.id=ORD01JQ4S4KY8HWQ6NA5PXB65B3D3&type=order";
    let lower = sign(&format!(
        "id:ord01jq4s4ky8hwq6na5pxb65b3d3;request-id:{REQUEST_ID};ts:1742505638683;"
    ));
    let h = headers(Some(&format!("ts=1742505638683,v1={lower}")), Some(REQUEST_ID));
    assert_eq!(check(&h, q, SECRET, ANY_TIME, T0), Ok(()));
    let upper = sign(&format!(
        "id:ORD01JQ4S4KY8HWQ6NA5PXB65B3D3;request-id:{REQUEST_ID};ts:1742505638683;"
    ));
    let h = headers(Some(&format!("ts=1742505638683,v1={upper}")), Some(REQUEST_ID));
    assert_eq!(check(&h, q, SECRET, ANY_TIME, T0), Err(WebhookError::BadSignature));
    assert_eq!(signed_data_id("123456"), "123456");
    assert_eq!(signed_data_id("AbC-1"), "AbC-1");
}

#[test]
fn stale_timestamp_is_rejected_outside_the_window() {
    let h = headers(Some(M1), Some(REQUEST_ID));
    let q = "data.id=123456&type=payment";
    let five_min = Duration::from_secs(300);
    let ts_ms = 1_742_505_638_683;
    assert_eq!(check(&h, q, SECRET, ANY_TIME, T0), Ok(()));
    assert_eq!(check(&h, q, SECRET, five_min, T0), Err(WebhookError::Stale));
    assert_eq!(check(&h, q, SECRET, five_min, ts_ms + 299_000), Ok(()));
    assert_eq!(check(&h, q, SECRET, five_min, ts_ms - 299_000), Ok(()));
    assert_eq!(
        check(&h, q, SECRET, five_min, ts_ms + 301_000),
        Err(WebhookError::Stale)
    );
    // The SDK vector's ts is in seconds.
    let h = headers(
        Some("ts=1700000000,v1=d455e8ca69c4837fde55884516ec1ab066b379a8ba5d3290eaa45ad6e5588874"),
        Some(REQUEST_ID),
    );
    let q = "data.id=123456789";
    assert_eq!(check(&h, q, SECRET, five_min, 1_700_000_100_000), Ok(()));
    assert_eq!(
        check(&h, q, SECRET, five_min, 1_700_000_400_000),
        Err(WebhookError::Stale)
    );
    // A bad signature is reported as such even when also stale.
    assert_eq!(check(&h, q, "nope", five_min, T0), Err(WebhookError::BadSignature));
}

fn signed_key_of(h: &WebhookHeaders, query: &str, body: &str) -> Option<String> {
    verify(h, query, body.as_bytes(), SECRET, ANY_TIME, T0).ok()?.event_id
}

#[test]
fn the_inbox_key_is_made_of_the_signed_parts_only() {
    let h = headers(Some(M1), Some(REQUEST_ID));
    let q = "data.id=123456&type=payment";
    let key = signed_key_of(&h, q, WEBHOOK_BODY);
    assert_eq!(
        key.as_deref(),
        Some("id:123456;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;")
    );
    // Nothing unsigned changes it: the body (its notification id, its action), the query's
    // type, other query parameters.
    for (query, body) in [
        (q, WEBHOOK_BODY.replace("12345", "12346")),
        (q, WEBHOOK_BODY.replace("payment.updated", "payment.created")),
        (q, "{}".to_owned()),
        ("data.id=123456&type=merchant_order", WEBHOOK_BODY.to_owned()),
        ("type=payment&data.id=123456&x=1", WEBHOOK_BODY.to_owned()),
    ] {
        assert_eq!(signed_key_of(&h, query, &body), key, "{query} {body}");
    }
    // Another signed request id is another delivery.
    let v1 = sign("id:123456;request-id:other-request;ts:1742505638683;");
    let other = headers(Some(&format!("ts=1742505638683,v1={v1}")), Some("other-request"));
    let other_key = signed_key_of(&other, q, WEBHOOK_BODY);
    assert!(other_key.is_some() && other_key != key, "{other_key:?}");
    // The same delivery signed again later (a new ts) keeps its key.
    let v1 = sign(&format!("id:123456;request-id:{REQUEST_ID};ts:1742505999999;"));
    let later = headers(Some(&format!("ts=1742505999999,v1={v1}")), Some(REQUEST_ID));
    assert_eq!(signed_key_of(&later, q, WEBHOOK_BODY), key);
    // Without a request id, ts is the only signed part that tells deliveries apart.
    let v1 = sign("id:123456;ts:1742505638683;");
    let bare = headers(Some(&format!("ts=1742505638683,v1={v1}")), None);
    assert_eq!(
        signed_key_of(&bare, q, WEBHOOK_BODY).as_deref(),
        Some("id:123456;ts:1742505638683;")
    );
    // Ids signed lowercased are keyed lowercased, so a case variant is the same event.
    let lower = sign(&format!(
        "id:ord01jq4s4ky8hwq6na5pxb65b3d3;request-id:{REQUEST_ID};ts:1742505638683;"
    ));
    let h = headers(Some(&format!("ts=1742505638683,v1={lower}")), Some(REQUEST_ID));
    assert_eq!(
        signed_key_of(&h, "data.id=ORD01JQ4S4KY8HWQ6NA5PXB65B3D3&type=order", "{}"),
        signed_key_of(&h, "data.id=ord01jq4s4ky8hwq6na5pxb65b3d3&type=order", "{}"),
    );
}

#[test]
fn missing_or_malformed_header() {
    let q = "data.id=123456";
    assert_eq!(
        check(&headers(None, Some(REQUEST_ID)), q, SECRET, ANY_TIME, T0),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        check(&headers(Some(" "), Some(REQUEST_ID)), q, SECRET, ANY_TIME, T0),
        Err(WebhookError::MissingSignature)
    );
    for bad in [
        "garbage",
        "ts=1742505638683",
        "v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7",
        "ts=abc,v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7",
        "ts=1742505638683,v1=zz",
        "ts=-1742505638683,v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7",
        "ts=1,ts=1742505638683,v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7",
        "ts=99999999999999999999999,v1=b1cc1a34bd2768e117d85d1b9babb722d32cfd2df1b359ef809170500556d3c7",
    ] {
        let h = headers(Some(bad), Some(REQUEST_ID));
        assert_eq!(
            check(&h, q, SECRET, ANY_TIME, T0),
            Err(WebhookError::BadSignature),
            "{bad}"
        );
    }
    // Any of several v1 values may match (room for a future rotation).
    let two = M1.replace("ts=", "v1=00ff,ts=");
    let h = headers(Some(&two), Some(REQUEST_ID));
    assert_eq!(check(&h, "data.id=123456", SECRET, ANY_TIME, T0), Ok(()));
}

// --- notifications ------------------------------------------------------------------

fn changed(ev: &GatewayEvent) -> Option<&str> {
    match &ev.facts {
        EventFacts::Changed { gateway_ref } => Some(gateway_ref),
        _ => None,
    }
}

const WEBHOOK_BODY: &str = r#"{"id":12345,"live_mode":true,"type":"payment","date_created":"2026-11-23T10:00:00Z","user_id":44444,"api_version":"v1","action":"payment.updated","data":{"id":"999999999"}}"#;

#[test]
fn webhook_format_names_the_payment_from_the_query() {
    let ev = parse_notification("data.id=999999999&type=payment", WEBHOOK_BODY.as_bytes()).unwrap();
    assert_eq!(changed(&ev), Some("999999999"));
    assert_eq!(ev.event_id, "payment:999999999:payment.updated:12345");
    assert_eq!(ev.reference(), None);
    assert_eq!(ev.status(), None);
    // The unsigned body never overrides the signed query.
    let forged = WEBHOOK_BODY.replace("999999999", "111");
    let ev = parse_notification("data.id=999999999&type=payment", forged.as_bytes()).unwrap();
    assert_eq!(changed(&ev), Some("999999999"));
    // Without a query, the body is the fallback.
    let ev = parse_notification("", WEBHOOK_BODY.as_bytes()).unwrap();
    assert_eq!(changed(&ev), Some("999999999"));
}

#[test]
fn webhook_ids_tell_updates_apart() {
    let q = "data.id=999999999&type=payment";
    let created = WEBHOOK_BODY
        .replace("payment.updated", "payment.created")
        .replace("12345", "12344");
    let a = parse_notification(q, created.as_bytes()).unwrap();
    let b = parse_notification(q, WEBHOOK_BODY.as_bytes()).unwrap();
    assert_ne!(a.event_id, b.event_id);
    // Redelivery of the same notification keeps its id.
    assert_eq!(
        b.event_id,
        parse_notification(q, WEBHOOK_BODY.as_bytes()).unwrap().event_id
    );
    // Without a notification id, the raw delivery decides.
    let x = parse_notification(q, br#"{"type":"payment","action":"payment.updated"}"#).unwrap();
    let y = parse_notification(q, br#"{"type":"payment","action":"payment.updated","n":2}"#).unwrap();
    assert!(
        x.event_id.starts_with("payment:999999999:payment.updated:h"),
        "{}",
        x.event_id
    );
    assert_ne!(x.event_id, y.event_id);
}

#[test]
fn ipn_format() {
    let body = br#"{"resource":"https://api.mercadolibre.com/collections/notifications/123","topic":"payment"}"#;
    let ev = parse_notification("id=123&topic=payment", body).unwrap();
    assert_eq!(changed(&ev), Some("123"));
    assert!(ev.event_id.starts_with("ipn:payment:123:"), "{}", ev.event_id);
    assert_eq!(ev.event_id.len(), "ipn:payment:123:".len() + 16);
    // Query only, empty body.
    let q_only = parse_notification("id=123&topic=payment", b"").unwrap();
    assert_eq!(changed(&q_only), Some("123"));
    assert_ne!(q_only.event_id, ev.event_id);
    // Body only: the resource names the payment, as a URL or a bare id.
    assert_eq!(changed(&parse_notification("", body).unwrap()), Some("123"));
    let bare = parse_notification("", br#"{"resource":"456","topic":"payment"}"#).unwrap();
    assert_eq!(changed(&bare), Some("456"));
    // The query wins over the body.
    let ev = parse_notification("id=789&topic=payment", body).unwrap();
    assert_eq!(changed(&ev), Some("789"));
}

#[test]
fn other_topics_are_irrelevant() {
    let mo = br#"{"resource":"https://api.mercadolibre.com/merchant_orders/456","topic":"merchant_order"}"#;
    let ev = parse_notification("id=456&topic=merchant_order", mo).unwrap();
    assert_eq!(ev.facts, EventFacts::Irrelevant);
    assert!(ev.event_id.starts_with("ipn:merchant_order:456:"));
    let ev = parse_notification("data.id=1&type=topic_merchant_order_wh", b"{}").unwrap();
    assert_eq!(ev.facts, EventFacts::Irrelevant);
    let ev = parse_notification("type=subscription_preapproval", b"not json").unwrap();
    assert_eq!(ev.facts, EventFacts::Irrelevant);
}

#[test]
fn payment_without_id_is_malformed() {
    for (q, body) in [
        ("type=payment", &br#"{"action":"payment.updated","data":{}}"#[..]),
        ("topic=payment", &b""[..]),
        ("", &br#"{"topic":"payment","resource":""}"#[..]),
        ("", &b"not json"[..]),
        ("data.id=1", &b"{}"[..]),
    ] {
        assert!(
            matches!(parse_notification(q, body), Err(WebhookError::Malformed(_))),
            "{q} {body:?}"
        );
    }
}

// --- payments -----------------------------------------------------------------------

fn payment(v: Value) -> Payment {
    serde_json::from_value(v).unwrap()
}

#[test]
fn payment_maps_to_an_observation() {
    // Shaped like the vendor's fixture, with our reference.
    let p = payment(json!({
        "id": 1234567890_u64, "status": "approved", "status_detail": "accredited",
        "currency_id": "BRL", "transaction_amount": 100.5, "external_reference": "att_1",
        "metadata": {}, "payer": {"id": "987654321"}, "date_of_expiration": null
    }));
    assert_eq!(
        observation(p).unwrap(),
        Some(Observation {
            reference: Some("att_1".into()),
            gateway_ref: Some("1234567890".into()),
            status: PaymentStatus::Approved,
            detail: Some("approved/accredited".into()),
            charged: Some(Charged {
                amount_minor: 10_050,
                currency: "BRL".into()
            }),
            checkout_ref: None,
            after_sale: None,
            method: None,
        })
    );
}

#[test]
fn status_map() {
    for (raw, want) in [
        ("pending", Some(PaymentStatus::Pending)),
        ("in_process", Some(PaymentStatus::Pending)),
        ("authorized", Some(PaymentStatus::Pending)),
        ("approved", Some(PaymentStatus::Approved)),
        ("rejected", Some(PaymentStatus::Declined)),
        ("cancelled", Some(PaymentStatus::Expired)),
        ("refunded", Some(PaymentStatus::Approved)),
        ("charged_back", Some(PaymentStatus::Approved)),
        ("in_mediation", Some(PaymentStatus::Approved)),
        ("something_new", None),
    ] {
        assert_eq!(map_status(raw), want, "{raw}");
        let p = payment(json!({"id": "1", "status": raw, "currency_id": "COP", "transaction_amount": 1}));
        assert_eq!(observation(p).unwrap().map(|o| o.status), want, "{raw}");
    }
    assert_eq!(observation(payment(json!({"id": 1}))).unwrap(), None);
}

#[test]
fn amounts_become_minor_units() {
    let minor = |amount: Value, currency: &str| {
        let p = payment(json!({"id": 1, "status": "pending", "transaction_amount": amount, "currency_id": currency}));
        observation(p).unwrap().unwrap().charged
    };
    let c = |amount_minor, currency: &str| {
        Some(Charged {
            amount_minor,
            currency: currency.into(),
        })
    };
    assert_eq!(minor(json!(199000), "COP"), c(19_900_000, "COP"));
    assert_eq!(minor(json!(199000.0), "COP"), c(19_900_000, "COP"));
    assert_eq!(minor(json!(49.9), "BRL"), c(4_990, "BRL"));
    assert_eq!(minor(json!(0.29), "MXN"), c(29, "MXN"));
    assert_eq!(minor(json!(15000), "CLP"), c(15_000, "CLP"));
    assert_eq!(minor(json!("49.90"), "brl"), c(4_990, "BRL"));
    assert_eq!(minor(json!(null), "BRL"), None);
    assert_eq!(minor(json!(1e300), "BRL"), None);
    // The currency check matches what we asked for.
    let asked = Money::new(19_900_000, Currency::COP).unwrap();
    assert!(minor(json!(199000), "COP").unwrap().matches(&asked));
}

#[test]
fn approved_without_an_amount_is_not_taken() {
    let p = payment(json!({"id": 9, "status": "approved", "external_reference": "att_1"}));
    assert!(matches!(observation(p), Err(GatewayError::Unavailable(_))));
}

#[test]
fn references_and_details() {
    let obs = |v: Value| observation(payment(v)).unwrap().unwrap();
    let base = |reference: Value| {
        json!({"id": "77", "status": "rejected", "status_detail": "cc_rejected_other_reason",
               "external_reference": reference, "transaction_amount": 10, "currency_id": "PEN"})
    };
    assert_eq!(obs(base(json!("null"))).reference, None);
    assert_eq!(obs(base(json!(""))).reference, None);
    assert_eq!(obs(base(json!(null))).reference, None);
    assert_eq!(obs(base(json!(42))).reference.as_deref(), Some("42"));
    let o = obs(base(json!("att_1")));
    assert_eq!(o.detail.as_deref(), Some("rejected/cc_rejected_other_reason"));
    assert_eq!(o.gateway_ref.as_deref(), Some("77"));
    let o = obs(json!({"id": 5, "status": "pending", "transaction_amount": 1, "currency_id": "COP"}));
    assert_eq!(o.detail.as_deref(), Some("pending"));
}

#[test]
fn search_results_pick_the_decisive_payment() {
    let p = |id: u64, status: &str, reference: &str| {
        payment(json!({"id": id, "status": status, "external_reference": reference,
                       "transaction_amount": 199000, "currency_id": "COP"}))
    };
    // Newest first: a later rejection does not hide an earlier approval.
    let found = decide(
        "att_1",
        None,
        vec![
            p(3, "rejected", "att_1"),
            p(2, "approved", "att_1"),
            p(1, "rejected", "att_1"),
        ],
    );
    assert_eq!(found.unwrap().unwrap().gateway_ref.as_deref(), Some("2"));
    // Without an approval, the newest mappable one.
    let found = decide(
        "att_1",
        None,
        vec![
            p(3, "something_new", "att_1"),
            p(2, "pending", "att_1"),
            p(1, "rejected", "att_1"),
        ],
    );
    assert_eq!(found.unwrap().unwrap().gateway_ref.as_deref(), Some("2"));
    // A refunded payment was approved: it still decides, carrying its refund.
    let found = decide(
        "att_1",
        None,
        vec![p(3, "rejected", "att_1"), p(2, "refunded", "att_1")],
    )
    .unwrap()
    .unwrap();
    assert_eq!(found.gateway_ref.as_deref(), Some("2"));
    assert_eq!(found.after_sale.map(|r| r.refunded_minor), Some(19_900_000));
    // Once paid, the paying payment speaks for the attempt, not an older or newer one.
    let found = decide(
        "att_1",
        Some("3"),
        vec![p(3, "refunded", "att_1"), p(2, "approved", "att_1")],
    );
    assert_eq!(found.unwrap().unwrap().gateway_ref.as_deref(), Some("3"));
    // Someone else's payment never decides.
    let found = decide("att_1", Some("4"), vec![p(4, "approved", "att_9")]);
    assert_eq!(found.unwrap(), None);
    assert_eq!(decide("att_1", None, vec![]).unwrap(), None);
    let r: SearchResult = serde_json::from_value(json!({"paging": {"total": 0}})).unwrap();
    assert!(r.results.is_none());
}

#[test]
fn return_hint() {
    let q = "attempt=att_1&collection_id=123&collection_status=approved&payment_id=123&status=approved&external_reference=att_1";
    assert_eq!(hinted_payment(q).as_deref(), Some("123"));
    assert_eq!(
        hinted_payment("attempt=att_1&collection_id=456").as_deref(),
        Some("456")
    );
    assert_eq!(hinted_payment("payment_id=null&collection_id=null"), None);
    assert_eq!(hinted_payment("payment_id=../../x"), None);
    assert_eq!(hinted_payment(""), None);
}

// --- over HTTP (wiremock) -----------------------------------------------------------

use wiremock::matchers::{body_json, header, method, path, query_param as q};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn gateway(server: &MockServer, environment: Environment) -> MercadoPagoGateway {
    MercadoPagoGateway::new(settings(&server.uri(), environment), reqwest::Client::new())
}

#[tokio::test]
async fn create_checkout_posts_the_preference() {
    let server = MockServer::start().await;
    let (a, o, l) = (attempt(cop(199_000)), offer(cop(199_000)), lead(None));
    let req = request(&a, &o, &l);
    let expected = serde_json::to_value(preference_body(&req).unwrap()).unwrap();
    Mock::given(method("POST"))
        .and(path("/checkout/preferences"))
        .and(header("authorization", "Bearer TEST-token"))
        .and(header("x-idempotency-key", "leadgate-checkout-att_1"))
        .and(body_json(expected))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "123-abc", "init_point": "https://www.mercadopago.com.co/checkout/v1/redirect?pref_id=123-abc",
            "sandbox_init_point": "https://sandbox.mercadopago.com.co/checkout/v1/redirect?pref_id=123-abc",
            "collector_id": 1
        })))
        .expect(2)
        .mount(&server)
        .await;
    let c = gateway(&server, Environment::Sandbox)
        .create_checkout(&req)
        .await
        .unwrap();
    assert_eq!(c.gateway_ref.as_deref(), Some("123-abc"));
    assert!(c.url.starts_with("https://sandbox.mercadopago.com.co/"), "{}", c.url);
    let c = gateway(&server, Environment::Production)
        .create_checkout(&req)
        .await
        .unwrap();
    assert!(c.url.starts_with("https://www.mercadopago.com.co/"), "{}", c.url);
}

#[tokio::test]
async fn create_checkout_errors() {
    let server = MockServer::start().await;
    let (a, o, l) = (attempt(cop(199_000)), offer(cop(199_000)), lead(None));
    let req = request(&a, &o, &l);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_auto_return"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "p"})))
        .mount(&server)
        .await;
    let gw = gateway(&server, Environment::Sandbox);
    assert!(matches!(gw.create_checkout(&req).await, Err(GatewayError::Rejected(_))));
    assert!(matches!(gw.create_checkout(&req).await, Err(GatewayError::Rejected(_))));
}

#[tokio::test]
async fn lookup_reads_the_payment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/555"))
        .and(header("authorization", "Bearer TEST-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 555, "status": "approved", "status_detail": "accredited",
            "external_reference": "att_1", "transaction_amount": 199000, "currency_id": "COP"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/503"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let gw = gateway(&server, Environment::Sandbox);
    let o = gw.lookup("555").await.unwrap().unwrap();
    assert_eq!(o.status, PaymentStatus::Approved);
    assert_eq!(o.reference.as_deref(), Some("att_1"));
    assert!(o.charged.unwrap().matches(&cop(199_000)));
    // Mercado Pago named the payment: a 404 is a wrong host or token, not "no payment".
    assert!(matches!(gw.lookup("404").await, Err(GatewayError::Rejected(_))));
    assert_eq!(gw.lookup("").await.unwrap(), None);
    assert!(matches!(gw.lookup("503").await, Err(GatewayError::Unavailable(_))));
    // A hostile id stays one path segment (nothing is mounted there: a 404).
    assert!(matches!(
        gw.lookup("../../checkout/preferences").await,
        Err(GatewayError::Rejected(_))
    ));
    assert_eq!(
        gw.endpoint(&["v1", "payments", "../x?y"]).unwrap().path(),
        "/v1/payments/..%2Fx%3Fy"
    );
}

fn search_mock(results: Value) -> Mock {
    Mock::given(method("GET"))
        .and(path("/v1/payments/search"))
        .and(q("external_reference", "att_1"))
        .and(q("sort", "date_created"))
        .and(q("criteria", "desc"))
        .and(header("authorization", "Bearer TEST-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": results, "paging": {}})))
}

#[tokio::test]
async fn fetch_status_uses_the_return_hint_for_this_attempt_only() {
    let server = MockServer::start().await;
    let pay = |id: u64, status: &str, reference: &str| {
        json!({"id": id, "status": status, "external_reference": reference,
               "transaction_amount": 199000, "currency_id": "COP"})
    };
    Mock::given(method("GET"))
        .and(path("/v1/payments/10"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pay(10, "approved", "att_1")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pay(11, "approved", "att_other")))
        .mount(&server)
        .await;
    search_mock(json!([pay(13, "rejected", "att_1"), pay(12, "pending", "att_1")]))
        .mount(&server)
        .await;
    let gw = gateway(&server, Environment::Sandbox);
    let a = attempt(cop(199_000));
    let hinted = gw
        .fetch_status(&a, "attempt=att_1&payment_id=10&collection_id=10")
        .await
        .unwrap();
    assert_eq!(hinted.unwrap().gateway_ref.as_deref(), Some("10"));
    // Another attempt's payment in the URL is ignored: the search decides.
    let other = gw.fetch_status(&a, "payment_id=11").await.unwrap().unwrap();
    assert_eq!(
        (other.gateway_ref.as_deref(), other.status),
        (Some("13"), PaymentStatus::Declined)
    );
    let plain = gw.fetch_status(&a, "").await.unwrap().unwrap();
    assert_eq!(plain.gateway_ref.as_deref(), Some("13"));
}

#[tokio::test]
async fn fetch_status_without_payments() {
    let server = MockServer::start().await;
    search_mock(json!([])).mount(&server).await;
    let gw = gateway(&server, Environment::Production);
    assert_eq!(gw.fetch_status(&attempt(cop(1)), "").await.unwrap(), None);
}

#[tokio::test]
async fn search_answering_404_is_an_error_not_no_payment() {
    // A wrong api_base answers 404 to everything; a search that works answers 200 with
    // `results: []` when nothing matches (`fetch_status_without_payments`).
    let server = MockServer::start().await;
    let gw = gateway(&server, Environment::Production);
    let err = gw.fetch_status(&attempt(cop(1)), "").await.unwrap_err();
    assert!(matches!(err, GatewayError::Rejected(_)), "{err}");
    // A hint that 404s falls through to the search, which fails the same way.
    let err = gw.fetch_status(&attempt(cop(1)), "payment_id=77").await.unwrap_err();
    assert!(matches!(err, GatewayError::Rejected(_)), "{err}");
}

#[tokio::test]
async fn fetch_status_searches_when_the_hint_is_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/77"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    search_mock(json!([{"id": 12, "status": "pending", "external_reference": "att_1",
                        "transaction_amount": 1, "currency_id": "COP"}]))
    .expect(1)
    .mount(&server)
    .await;
    let gw = gateway(&server, Environment::Production);
    let seen = gw
        .fetch_status(&attempt(cop(1)), "payment_id=77")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.gateway_ref.as_deref(), Some("12"));
}

// --- after approval: refunds, chargebacks, mediation ---------------------------------
//
// Payments below are shaped like `GET /v1/payments/{id}` answers (Payments reference,
// fields `status`, `status_detail`, `transaction_amount`, `transaction_amount_refunded`,
// `payment_type_id`, `payment_method_id`); each status/status_detail pair is a row of
// the docs' "query results" status table (checkout-api/response-handling/query-results).

/// A BRL 100.50 payment with the given status words and refunded total (major units).
fn after(status: &str, status_detail: Option<&str>, refunded: Option<Value>) -> Option<Observation> {
    let mut v = json!({
        "id": 1234567890_u64, "status": status, "status_detail": status_detail,
        "external_reference": "att_1", "transaction_amount": 100.5, "currency_id": "BRL",
        "payment_type_id": "credit_card", "payment_method_id": "master",
        "date_approved": "2026-11-23T10:00:00.000-03:00"
    });
    if let Some(r) = refunded {
        v["transaction_amount_refunded"] = r;
    }
    observation(payment(v)).unwrap()
}

fn report(refunded_minor: i64, reason: Option<&str>) -> Option<Report> {
    Some(Report {
        refunded_minor,
        refund_reason: reason.map(str::to_owned),
        ..Report::default()
    })
}

fn disputed(stage: DisputeStage, refunded_minor: i64) -> Option<Report> {
    Some(Report {
        refunded_minor,
        dispute: Some(Dispute {
            stage,
            due_at: None,
            reason: None,
        }),
        ..Report::default()
    })
}

#[test]
fn every_reversal_row_of_the_status_table() {
    let row = |status, detail, refunded: Option<Value>| {
        let o = after(status, detail, refunded).unwrap();
        assert_eq!(o.status, PaymentStatus::Approved, "{status}/{detail:?}");
        o.after_sale
    };
    // approved/accredited: nothing after the sale.
    assert_eq!(row("approved", Some("accredited"), Some(json!(0))), None);
    assert_eq!(row("approved", Some("accredited"), None), None);
    // approved/partially_refunded: the refunds so far, in minor units.
    assert_eq!(
        row("approved", Some("partially_refunded"), Some(json!(20.25))),
        report(2_025, None)
    );
    // Without the amount there is nothing to apply (the next read may have it).
    assert_eq!(row("approved", Some("partially_refunded"), None), None);
    // refunded/refunded (by us) and refunded/by_admin (by Mercado Pago): a full refund.
    assert_eq!(
        row("refunded", Some("refunded"), Some(json!(100.5))),
        report(10_050, None)
    );
    assert_eq!(
        row("refunded", Some("by_admin"), Some(json!(100.5))),
        report(10_050, Some("by_admin"))
    );
    // A full refund whose total is left out refunds the whole payment.
    assert_eq!(row("refunded", Some("refunded"), None), report(10_050, None));
    assert_eq!(row("refunded", None, Some(json!(0))), report(10_050, None));
    // charged_back: under way, then [unconfirmed] settled = lost, reimbursed = won.
    assert_eq!(
        row("charged_back", Some("in_process"), None),
        disputed(DisputeStage::Open, 0)
    );
    assert_eq!(
        row("charged_back", Some("settled"), None),
        disputed(DisputeStage::Lost, 0)
    );
    assert_eq!(
        row("charged_back", Some("reimbursed"), None),
        disputed(DisputeStage::Won, 0)
    );
    // An undocumented detail needs a human: open.
    assert_eq!(
        row("charged_back", Some("something_new"), None),
        disputed(DisputeStage::Open, 0)
    );
    // A chargeback of a partly refunded payment keeps the refund.
    assert_eq!(
        row("charged_back", Some("in_process"), Some(json!("10.00"))),
        disputed(DisputeStage::Open, 1_000)
    );
    // in_mediation has no documented detail: a dispute opened.
    assert_eq!(row("in_mediation", None, None), disputed(DisputeStage::Open, 0));
    // Purchase protection paid the buyer back [unconfirmed for Checkout Pro]: a refund,
    // whose words reach the note for a person to review.
    assert_eq!(
        row("refunded", Some("bpp_refunded"), None),
        report(10_050, Some("bpp_refunded"))
    );
    assert_eq!(
        row("charged_back", Some("bpp_covered"), None),
        report(10_050, Some("bpp_covered"))
    );
    assert_eq!(
        row("approved", Some("partially_bpp_refunded"), Some(json!(50))),
        report(5_000, Some("partially_bpp_refunded"))
    );
    assert_eq!(row("approved", Some("partially_bpp_refunded"), None), None);
    // cancelled is for unfinished payments: expired, never a reversal.
    for detail in ["expired", "by_collector", "by_payer"] {
        let o = after("cancelled", Some(detail), None).unwrap();
        assert_eq!(o.status, PaymentStatus::Expired);
        assert_eq!(o.after_sale, None);
    }
}

#[test]
fn partial_refunds_are_running_totals_in_minor_units() {
    let refunded = |major: Value, currency: &str| {
        let p = payment(
            json!({"id": 1, "status": "approved", "status_detail": "partially_refunded",
            "external_reference": "att_1", "transaction_amount": 199000, "currency_id": currency,
            "transaction_amount_refunded": major}),
        );
        observation(p).unwrap().unwrap().after_sale.map(|r| r.refunded_minor)
    };
    // Same exponent logic as `charged`: COP has 2 decimals, CLP none.
    assert_eq!(refunded(json!(50000), "COP"), Some(5_000_000));
    assert_eq!(refunded(json!(150000.5), "COP"), Some(15_000_050));
    assert_eq!(refunded(json!(0.29), "MXN"), Some(29));
    assert_eq!(refunded(json!(1500), "CLP"), Some(1_500));
    assert_eq!(refunded(json!("49.90"), "BRL"), Some(4_990));
    // Unreadable: nothing reported rather than a guess.
    assert_eq!(refunded(json!(1e300), "COP"), None);
    assert_eq!(refunded(json!("n/a"), "COP"), None);
}

#[test]
fn more_refunded_than_paid_is_reported_as_is() {
    // The domain refuses it and tells the operator; clamping here would hide it.
    let o = after("refunded", Some("refunded"), Some(json!(150))).unwrap();
    assert_eq!(o.after_sale, report(15_000, None));
    let o = after("approved", Some("partially_refunded"), Some(json!(100.51))).unwrap();
    assert_eq!(o.after_sale, report(10_051, None));
}

#[test]
fn unpaid_payments_carry_no_after_sale_whatever_they_say() {
    let p = payment(
        json!({"id": 1, "status": "rejected", "status_detail": "cc_rejected_other_reason",
        "external_reference": "att_1", "transaction_amount": 10, "currency_id": "BRL",
        "transaction_amount_refunded": 10}),
    );
    assert_eq!(observation(p).unwrap().unwrap().after_sale, None);
}

#[test]
fn payment_method_is_the_card_kind_or_the_method() {
    let m = |type_id: Option<&str>, method_id: Option<&str>| {
        let p = payment(
            json!({"id": 1, "status": "pending", "transaction_amount": 1, "currency_id": "BRL",
            "payment_type_id": type_id, "payment_method_id": method_id}),
        );
        observation(p).unwrap().unwrap().method
    };
    assert_eq!(m(Some("credit_card"), Some("master")).as_deref(), Some("credit_card"));
    assert_eq!(m(Some("debit_card"), Some("debvisa")).as_deref(), Some("debit_card"));
    assert_eq!(m(Some("bank_transfer"), Some("pix")).as_deref(), Some("pix"));
    assert_eq!(m(Some("ticket"), Some("bolbradesco")).as_deref(), Some("bolbradesco"));
    assert_eq!(
        m(Some("account_money"), Some("account_money")).as_deref(),
        Some("account_money")
    );
    assert_eq!(m(Some("ticket"), None).as_deref(), Some("ticket"));
    assert_eq!(m(None, Some("PIX")).as_deref(), Some("pix"));
    assert_eq!(m(None, None), None);
    assert_eq!(m(Some(" "), Some("")), None);
}

// The chargebacks webhook as the docs' notifications page shows it ("Chargebacks" topic):
// an `actions` list instead of `action`, and an 18-digit numeric `data.id`, above 2^53.
const CHARGEBACK_BODY: &str = r#"{"actions":["changed_case_status"],"api_version":"v1","data":{"checkout":"PRO","date_updated":"2026-11-23T10:00:00.000-04:00","id":217000061307271000,"payment_id":1234567890,"product_id":"","site_id":"MLB"},"date_created":"2026-11-23T10:00:00.000-04:00","id":"217000061307271000","live_mode":true,"type":"topic_chargebacks_wh","user_id":44444,"version":2}"#;

#[test]
fn chargeback_webhook_names_the_payment_to_read_back() {
    let q = "data.id=217000061307271000&type=topic_chargebacks_wh";
    let ev = parse_notification(q, CHARGEBACK_BODY.as_bytes()).unwrap();
    assert_eq!(changed(&ev), Some("1234567890"));
    assert!(
        ev.event_id
            .starts_with("topic_chargebacks_wh:217000061307271000:changed_case_status:"),
        "{}",
        ev.event_id
    );
    // Without the query, the body's big number is read exactly, never through an f64.
    let no_top_id = CHARGEBACK_BODY.replace(r#""id":"217000061307271000","#, "");
    let ev = parse_notification("", no_top_id.as_bytes()).unwrap();
    assert!(
        ev.event_id.starts_with("topic_chargebacks_wh:217000061307271000:"),
        "{}",
        ev.event_id
    );
    assert!(!ev.event_id.contains("217000061307271040"), "{}", ev.event_id);
    // A big payment id (and one sent as text) is kept whole too.
    let big = CHARGEBACK_BODY.replace(r#""payment_id":1234567890"#, r#""payment_id":18446744073709551615"#);
    assert_eq!(
        changed(&parse_notification(q, big.as_bytes()).unwrap()),
        Some("18446744073709551615")
    );
    let text = CHARGEBACK_BODY.replace(r#""payment_id":1234567890"#, r#""payment_id":"987""#);
    assert_eq!(changed(&parse_notification(q, text.as_bytes()).unwrap()), Some("987"));
    // A payment id that did not survive as an integer is refused, not looked up.
    let lossy = CHARGEBACK_BODY.replace(r#""payment_id":1234567890"#, r#""payment_id":1.5e19"#);
    assert_eq!(
        parse_notification(q, lossy.as_bytes()).unwrap().facts,
        EventFacts::Irrelevant
    );
    // No payment named: nothing to read back here.
    let none = CHARGEBACK_BODY.replace(r#""payment_id":1234567890,"#, "");
    assert_eq!(
        parse_notification(q, none.as_bytes()).unwrap().facts,
        EventFacts::Irrelevant
    );
    // The stored spec's `chargebacks` type is taken alike.
    let ev = parse_notification(
        "data.id=217000061307271000&type=chargebacks",
        CHARGEBACK_BODY.as_bytes(),
    )
    .unwrap();
    assert_eq!(changed(&ev), Some("1234567890"));
}

#[test]
fn chargeback_changes_are_told_apart_and_redeliveries_are_not() {
    let q = "data.id=217000061307271000&type=topic_chargebacks_wh";
    let a = parse_notification(q, CHARGEBACK_BODY.as_bytes()).unwrap();
    let again = parse_notification(q, CHARGEBACK_BODY.as_bytes()).unwrap();
    assert_eq!(a.event_id, again.event_id);
    // The documented body has a top-level id only sometimes; without it a changed body
    // (a later case status) is another delivery.
    let strip = |b: &str| b.replace(r#""id":"217000061307271000","#, "");
    let first = parse_notification(q, strip(CHARGEBACK_BODY).as_bytes()).unwrap();
    let later = strip(CHARGEBACK_BODY).replace(r#""version":2"#, r#""version":3"#);
    let later = parse_notification(q, later.as_bytes()).unwrap();
    assert_ne!(first.event_id, later.event_id);
}

#[test]
fn chargeback_webhook_signature_covers_the_chargeback_id_from_the_query() {
    // The signed manifest is built from the query's data.id (the chargeback id), as for
    // payments; the body, which names the payment, is not signed.
    let q = "data.id=217000061307271000&type=topic_chargebacks_wh";
    let ts = (T0 / 1000).to_string();
    let v1 = sign(&manifest_for("217000061307271000", Some(REQUEST_ID), &ts));
    let h = headers(Some(&format!("ts={ts},v1={v1}")), Some(REQUEST_ID));
    assert_eq!(check(&h, q, SECRET, Duration::from_secs(300), T0), Ok(()));
    assert_eq!(
        check(
            &h,
            "data.id=217000061307271001&type=topic_chargebacks_wh",
            SECRET,
            Duration::from_secs(300),
            T0
        ),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        signed_key_of(&h, q, CHARGEBACK_BODY).as_deref(),
        Some(format!("id:217000061307271000;request-id:{REQUEST_ID};").as_str())
    );
}

#[test]
fn chargeback_ipn_is_read_when_it_names_the_payment() {
    // The IPN form names the chargeback as its resource (`/v1/chargebacks/[ID]` in the
    // docs' resource table); the payment is not derivable from it.
    let body = br#"{"resource":"https://api.mercadopago.com/v1/chargebacks/217000061307271000","topic":"chargebacks"}"#;
    let ev = parse_notification("id=217000061307271000&topic=chargebacks", body).unwrap();
    assert_eq!(ev.facts, EventFacts::Irrelevant);
    assert!(
        ev.event_id.starts_with("ipn:chargebacks:217000061307271000:"),
        "{}",
        ev.event_id
    );
    let with_payment = br#"{"resource":"217000061307271000","topic":"chargebacks","payment_id":1234567890}"#;
    let ev = parse_notification("", with_payment).unwrap();
    assert_eq!(changed(&ev), Some("1234567890"));
    let nested = br#"{"resource":"217000061307271000","topic":"chargebacks","data":{"payment_id":"55"}}"#;
    assert_eq!(
        changed(&parse_notification("topic=chargebacks", nested).unwrap()),
        Some("55")
    );
}

#[tokio::test]
async fn lookup_carries_the_refund_and_the_method() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/555"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 555, "status": "approved", "status_detail": "partially_refunded",
            "external_reference": "att_1", "transaction_amount": 199000, "currency_id": "COP",
            "transaction_amount_refunded": 50000, "payment_type_id": "bank_transfer", "payment_method_id": "pse"
        })))
        .mount(&server)
        .await;
    let o = gateway(&server, Environment::Sandbox)
        .lookup("555")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status, PaymentStatus::Approved);
    assert_eq!(o.detail.as_deref(), Some("approved/partially_refunded"));
    assert_eq!(o.after_sale, report(5_000_000, None));
    assert_eq!(o.method.as_deref(), Some("pse"));
}

#[tokio::test]
async fn a_paid_attempt_is_read_through_its_own_payment() {
    let server = MockServer::start().await;
    let pay = |id: u64, status: &str| {
        json!({"id": id, "status": status, "external_reference": "att_1",
               "transaction_amount": 199000, "currency_id": "COP"})
    };
    // A second payment through the same checkout, named by the browser: not asked.
    Mock::given(method("GET"))
        .and(path("/v1/payments/78"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pay(78, "refunded")))
        .expect(0)
        .mount(&server)
        .await;
    search_mock(json!([pay(78, "refunded"), pay(77, "approved")]))
        .mount(&server)
        .await;
    let paid = Attempt {
        status: PaymentStatus::Approved,
        gateway_ref: Some("77".into()),
        ..attempt(cop(199_000))
    };
    let gw = gateway(&server, Environment::Sandbox);
    let o = gw.fetch_status(&paid, "payment_id=78").await.unwrap().unwrap();
    assert_eq!(o.gateway_ref.as_deref(), Some("77"));
    assert_eq!(o.after_sale, None);
    // Before it is paid, the decisive one (the older approval among them).
    let open = attempt(cop(199_000));
    let o = gw.fetch_status(&open, "").await.unwrap().unwrap();
    assert_eq!(o.gateway_ref.as_deref(), Some("77"));
}

#[tokio::test]
async fn expire_checkout_closes_the_preference_now() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/checkout/preferences/123-abc"))
        .and(header("authorization", "Bearer TEST-token"))
        .and(wiremock::matchers::body_partial_json(json!({"expires": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "123-abc", "expires": true})))
        .expect(1)
        .mount(&server)
        .await;
    let gw = gateway(&server, Environment::Sandbox);
    assert!(gw.can_expire());
    let mut a = attempt(cop(199_000));
    a.after.checkout_ref = Some("123-abc".into());
    let before = crate::clock::now_ms();
    assert_eq!(gw.expire_checkout(&a).await.unwrap(), None);
    // `expiration_date_to` is "now", ISO 8601 with an offset.
    let received = server.received_requests().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    let to = body["expiration_date_to"].as_str().unwrap_or_default();
    let at = chrono::DateTime::parse_from_str(to, "%Y-%m-%dT%H:%M:%S%.3f%:z").unwrap();
    assert!((at.timestamp_millis() - before).abs() < 60_000, "{to}");
}

#[tokio::test]
async fn expire_checkout_of_a_missing_preference_is_nothing_to_do() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/checkout/preferences/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "preference not found"})))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/checkout/preferences/busy"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let gw = gateway(&server, Environment::Sandbox);
    let mut a = attempt(cop(199_000));
    a.after.checkout_ref = Some("gone".into());
    assert_eq!(gw.expire_checkout(&a).await.unwrap(), None);
    // Unavailable is retried by the job, not taken as done.
    a.after.checkout_ref = Some("busy".into());
    assert!(matches!(
        gw.expire_checkout(&a).await,
        Err(GatewayError::Unavailable(_))
    ));
    // Nothing recorded to expire: no call at all.
    a.after.checkout_ref = None;
    assert_eq!(gw.expire_checkout(&a).await.unwrap(), None);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(2));
}
