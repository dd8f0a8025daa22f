use crate::domain::signing;
use std::collections::HashSet;

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::domain::lead::Lead;
use crate::domain::offer::Offer;
use crate::domain::{Currency, Email, Money, PersonName};
use crate::gateways::{fixtures, WebhookHeaders};

const NOW: i64 = 1_750_000_000;
const SECRET: &str = "whsec_test_secret";
/// A vector made by Stripe's own SDK (stripe@23.1.0, `generateTestHeaderString`).
const SDK_PAYLOAD: &str = r#"{"id":"evt_test_webhook","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_123","object":"checkout.session","client_reference_id":"att_1","payment_status":"paid"}}}"#;
const SDK_HEADER: &str = "t=1700000000,v1=5486146ad2222753ec976f0bbec66905ba920c69237c9bba25269bd9070594d1";
const SDK_T: i64 = 1_700_000_000;

fn settings(api_base: &str) -> StripeSettings {
    StripeSettings {
        environment: Environment::Sandbox,
        api_base: Url::parse(api_base).unwrap(),
        timeout: Duration::from_secs(5),
        secret_key: SecretString::from("sk_test_123".to_owned()),
        webhook_secrets: secrets(&[SECRET]),
        signature_tolerance: Duration::from_secs(300),
    }
}

fn secrets(list: &[&str]) -> Vec<SecretString> {
    list.iter().map(|s| SecretString::from((*s).to_owned())).collect()
}

fn gateway(api_base: &str) -> StripeGateway {
    StripeGateway::new(settings(api_base), reqwest::Client::new())
}

fn offer(description: &str) -> Offer {
    let price = Money::new(4_990_000, Currency::COP).unwrap();
    Offer {
        title: "Curso de ventas".into(),
        description: description.into(),
        ..fixtures::offer("curso-ventas", GatewayKind::Stripe, price)
    }
}

fn lead(lang: Lang) -> Lead {
    let mut lead = fixtures::lead(None, NOW * 1000);
    lead.contact.name = PersonName::parse("María Pérez").unwrap();
    lead.contact.email = Email::parse("Maria@Example.com").unwrap();
    Lead { lang, ..lead }
}

fn attempt(gateway_ref: Option<&str>) -> Attempt {
    let amount = Money::new(4_990_000, Currency::COP).unwrap();
    Attempt {
        gateway_ref: gateway_ref.map(str::to_owned),
        offer_slug: "curso-ventas".into(),
        ..fixtures::attempt("att_1", GatewayKind::Stripe, amount, NOW * 1000)
    }
}

fn request<'a>(attempt: &'a Attempt, offer: &'a Offer, lead: &'a Lead) -> CheckoutRequest<'a> {
    CheckoutRequest {
        attempt,
        offer,
        lead,
        return_url: "https://shop.example/return/stripe?attempt=att_1".into(),
        cancel_url: "https://shop.example/c/curso-ventas?resume=tok".into(),
        webhook_url: "https://shop.example/webhooks/stripe".into(),
        expires_at: (NOW + 3600) * 1000,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(signing::tag(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]))
}

fn verify_at(header: Option<&str>, body: &[u8], keys: &[&str], now: i64) -> Result<(), WebhookError> {
    verify_signature(header, body, &secrets(keys), Duration::from_secs(300), now)
}

// --- the form -------------------------------------------------------------------

#[test]
fn form_carries_every_field() {
    let (a, o, l) = (attempt(None), offer("Acceso por un año"), lead(Lang::PtBr));
    let form = checkout_form(&request(&a, &o, &l), NOW);
    let want = pairs(&[
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "cop"),
        ("line_items[0][price_data][product_data][name]", "Curso de ventas"),
        (
            "line_items[0][price_data][product_data][description]",
            "Acceso por un año",
        ),
        ("line_items[0][price_data][unit_amount]", "4990000"),
        ("line_items[0][quantity]", "1"),
        ("customer_email", "maria@example.com"),
        ("client_reference_id", "att_1"),
        ("metadata[attempt_id]", "att_1"),
        ("metadata[lead_id]", "lead_1"),
        ("metadata[offer]", "curso-ventas"),
        ("payment_intent_data[metadata][attempt_id]", "att_1"),
        ("payment_intent_data[metadata][lead_id]", "lead_1"),
        ("payment_intent_data[metadata][offer]", "curso-ventas"),
        (
            "success_url",
            "https://shop.example/return/stripe?attempt=att_1&session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "https://shop.example/c/curso-ventas?resume=tok"),
        ("expires_at", &(NOW + 3600).to_string()),
        ("locale", "pt-BR"),
    ]);
    assert_eq!(form, want);
    let keys: HashSet<_> = form.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), form.len(), "no key twice");
}

#[test]
fn form_leaves_out_an_empty_description() {
    let (a, o, l) = (attempt(None), offer("  "), lead(Lang::Es));
    let form = checkout_form(&request(&a, &o, &l), NOW);
    assert!(!form.iter().any(|(k, _)| k.contains("[description]")));
}

#[test]
fn locale_follows_the_lead() {
    for (lang, want) in [(Lang::Es, "es"), (Lang::PtBr, "pt-BR"), (Lang::En, "en")] {
        let (a, o, l) = (attempt(None), offer(""), lead(lang));
        let form = checkout_form(&request(&a, &o, &l), NOW);
        let locale = form.iter().find(|(k, _)| k == "locale").map(|(_, v)| v.as_str());
        assert_eq!(locale, Some(want));
    }
}

#[test]
fn expiry_is_clamped_into_stripes_window() {
    assert_eq!(expires_at((NOW + 3600) * 1000 + 999, NOW), NOW + 3600);
    assert_eq!(expires_at((NOW + 60) * 1000, NOW), NOW + 31 * 60);
    assert_eq!(expires_at(0, NOW), NOW + 31 * 60);
    assert_eq!(expires_at((NOW + 3 * 86_400) * 1000, NOW), NOW + 86_400 - 60);
    assert_eq!(expires_at(i64::MAX, NOW), NOW + 86_400 - 60);
}

#[test]
fn success_url_gets_the_session_template() {
    assert_eq!(
        success_url("https://x.example/r?attempt=1"),
        "https://x.example/r?attempt=1&session_id={CHECKOUT_SESSION_ID}"
    );
    assert_eq!(
        success_url("https://x.example/r"),
        "https://x.example/r?session_id={CHECKOUT_SESSION_ID}"
    );
}

#[test]
fn endpoint_encodes_ids_as_one_segment() {
    let base = Url::parse("https://api.stripe.com").unwrap();
    let url = endpoint(&base, &["v1", "checkout", "sessions", "a/b?c#d"]).unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.stripe.com/v1/checkout/sessions/a%2Fb%3Fc%23d"
    );
    let prefixed = Url::parse("http://127.0.0.1:4012/mock/").unwrap();
    let url = endpoint(&prefixed, &["v1", "checkout", "sessions"]).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:4012/mock/v1/checkout/sessions");
}

#[test]
fn only_stripe_like_ids_are_looked_up() {
    assert!(plausible_id("cs_test_a1B2c3"));
    for bad in ["", "..", ".", "cs/1", "cs 1", "{CHECKOUT_SESSION_ID}", &"a".repeat(256)] {
        assert!(!plausible_id(bad), "{bad}");
    }
}

// --- signatures -----------------------------------------------------------------

#[test]
fn sdk_vector_is_accepted_with_its_clock() {
    assert_eq!(
        verify_at(Some(SDK_HEADER), SDK_PAYLOAD.as_bytes(), &[SECRET], SDK_T + 10),
        Ok(())
    );
}

#[test]
fn sdk_vector_is_stale_with_the_real_clock() {
    let g = gateway("https://api.stripe.com");
    let headers = WebhookHeaders::new([("stripe-signature".to_owned(), SDK_HEADER.to_owned())]);
    let req = WebhookRequest {
        headers: &headers,
        query: "",
        body: SDK_PAYLOAD.as_bytes(),
    };
    assert_eq!(g.verify_webhook(&req), Err(WebhookError::Stale));
}

#[test]
fn spec_vector_s1() {
    let body = br#"{"id":"evt_test","type":"checkout.session.completed"}"#;
    let header = "t=1492774577,v1=1e2a30e0318037954e7d11cf8965514ac828cb33448848c716d628ea836cd5c5";
    assert_eq!(sign(SECRET, 1_492_774_577, body), &header[16..]);
    assert_eq!(verify_at(Some(header), body, &[SECRET], 1_492_774_577), Ok(()));
}

#[test]
fn tampered_body_is_rejected() {
    let tampered = SDK_PAYLOAD.replace("\"paid\"", "\"unpaid\"");
    assert_eq!(
        verify_at(Some(SDK_HEADER), tampered.as_bytes(), &[SECRET], SDK_T),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn wrong_secret_is_rejected() {
    assert_eq!(
        verify_at(Some(SDK_HEADER), SDK_PAYLOAD.as_bytes(), &["whsec_other"], SDK_T),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn previous_secret_is_accepted_during_rotation() {
    assert_eq!(
        verify_at(Some(SDK_HEADER), SDK_PAYLOAD.as_bytes(), &["whsec_new", SECRET], SDK_T),
        Ok(())
    );
}

#[test]
fn any_v1_may_match() {
    let body = b"{}";
    let header = format!(
        "t={NOW},v1={},v1={}",
        sign("whsec_other", NOW, body),
        sign(SECRET, NOW, body)
    );
    assert_eq!(verify_at(Some(&header), body, &[SECRET], NOW), Ok(()));
}

#[test]
fn v0_alone_is_not_enough() {
    let body = b"{}";
    let header = format!("t={NOW},v0={}", sign(SECRET, NOW, body));
    assert_eq!(
        verify_at(Some(&header), body, &[SECRET], NOW),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn missing_or_unreadable_headers() {
    let body = b"{}";
    let good = sign(SECRET, NOW, body);
    assert_eq!(
        verify_at(None, body, &[SECRET], NOW),
        Err(WebhookError::MissingSignature)
    );
    for header in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={good}"),
        format!("t=,v1={good}"),
        format!("t=abc,v1={good}"),
        format!("t={NOW}"),
        format!("t={NOW},v1=zz"),
        format!("t={NOW},t={NOW},v1={good}"),
    ] {
        assert_eq!(
            verify_at(Some(&header), body, &[SECRET], NOW),
            Err(WebhookError::BadSignature),
            "{header}"
        );
    }
    // Spaces after commas and upper-case hex are still the same signature.
    let spaced = format!("t={NOW}, v1={}", good.to_uppercase());
    assert_eq!(verify_at(Some(&spaced), body, &[SECRET], NOW), Ok(()));
}

#[test]
fn window_applies_both_ways_after_the_signature() {
    let body = b"{}";
    let header = format!("t={NOW},v1={}", sign(SECRET, NOW, body));
    assert_eq!(verify_at(Some(&header), body, &[SECRET], NOW + 300), Ok(()));
    assert_eq!(verify_at(Some(&header), body, &[SECRET], NOW - 300), Ok(()));
    assert_eq!(
        verify_at(Some(&header), body, &[SECRET], NOW + 301),
        Err(WebhookError::Stale)
    );
    assert_eq!(
        verify_at(Some(&header), body, &[SECRET], NOW - 301),
        Err(WebhookError::Stale)
    );
    // A forged, stale header says "bad signature", not "stale".
    let forged = format!("t={NOW},v1={}", sign("whsec_other", NOW, body));
    assert_eq!(
        verify_at(Some(&forged), body, &[SECRET], NOW + 10_000),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn empty_secret_never_verifies() {
    let body = b"{}";
    let header = format!("t={NOW},v1={}", sign("", NOW, body));
    assert_eq!(
        verify_at(Some(&header), body, &[""], NOW),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_at(Some(&header), body, &[], NOW),
        Err(WebhookError::BadSignature)
    );
}

// --- events ---------------------------------------------------------------------

fn event(kind: &str, session: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "evt_1", "object": "event", "type": kind, "livemode": false, "created": NOW,
        "data": {"object": session}
    }))
    .unwrap()
}

fn session_json(status: &str, payment_status: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "cs_test_1", "object": "checkout.session", "client_reference_id": "att_1",
        "status": status, "payment_status": payment_status,
        "amount_total": 4990000, "currency": "cop", "url": null, "metadata": {"attempt_id": "att_1"}
    })
}

fn observed(ev: GatewayEvent) -> Observation {
    match ev.facts {
        EventFacts::Observed(o) => o,
        other => panic!("expected an observation, got {other:?}"),
    }
}

#[test]
fn sdk_vector_event_is_an_approval() {
    let ev = parse_stripe_event(SDK_PAYLOAD.as_bytes(), Environment::Sandbox).unwrap();
    assert_eq!(ev.event_id, "evt_test_webhook");
    let o = observed(ev);
    assert_eq!(o.status, PaymentStatus::Approved);
    assert_eq!(o.reference.as_deref(), Some("att_1"));
    assert_eq!(o.gateway_ref.as_deref(), Some("cs_test_123"));
    assert_eq!(o.detail.as_deref(), Some("checkout.session.completed: ?/paid"));
    assert_eq!(o.charged, None);
}

#[test]
fn session_events_map_onto_statuses() {
    let cases = [
        (
            "checkout.session.completed",
            "complete",
            "paid",
            PaymentStatus::Approved,
        ),
        (
            "checkout.session.completed",
            "complete",
            "no_payment_required",
            PaymentStatus::Approved,
        ),
        (
            "checkout.session.completed",
            "complete",
            "unpaid",
            PaymentStatus::Pending,
        ),
        (
            "checkout.session.async_payment_succeeded",
            "complete",
            "paid",
            PaymentStatus::Approved,
        ),
        (
            "checkout.session.async_payment_failed",
            "complete",
            "unpaid",
            PaymentStatus::Declined,
        ),
        ("checkout.session.expired", "expired", "unpaid", PaymentStatus::Expired),
    ];
    for (kind, status, paid, want) in cases {
        let ev = parse_stripe_event(&event(kind, session_json(status, paid)), Environment::Sandbox).unwrap();
        assert_eq!(ev.event_id, "evt_1");
        let o = observed(ev);
        assert_eq!(o.status, want, "{kind} {paid}");
        assert_eq!(o.reference.as_deref(), Some("att_1"));
        assert_eq!(o.gateway_ref.as_deref(), Some("cs_test_1"));
        assert_eq!(o.detail, Some(format!("{kind}: {status}/{paid}")));
        assert_eq!(
            o.charged,
            Some(Charged {
                amount_minor: 4_990_000,
                currency: "COP".into()
            })
        );
    }
}

#[test]
fn other_events_are_irrelevant() {
    let pi = serde_json::json!({"id": "pi_1", "object": "payment_intent", "status": "succeeded"});
    for kind in [
        "payment_intent.succeeded",
        "charge.refunded",
        "checkout.session.async_payment_pending",
    ] {
        let body = if kind.starts_with("checkout.") {
            event(kind, session_json("complete", "unpaid"))
        } else {
            event(kind, pi.clone())
        };
        let ev = parse_stripe_event(&body, Environment::Sandbox).unwrap();
        assert_eq!(ev.event_id, "evt_1");
        assert_eq!(ev.facts, EventFacts::Irrelevant, "{kind}");
    }
    let bare = br#"{"id":"evt_2","type":"customer.created"}"#;
    assert_eq!(
        parse_stripe_event(bare, Environment::Sandbox).unwrap().facts,
        EventFacts::Irrelevant
    );
}

#[test]
fn unreadable_events_are_malformed() {
    let no_session_id = event(
        "checkout.session.completed",
        serde_json::json!({"payment_status": "paid"}),
    );
    for body in [
        b"not json".to_vec(),
        br#"{"type":"checkout.session.completed"}"#.to_vec(),
        br#"{"id":"","type":"customer.created"}"#.to_vec(),
        br#"{"id":"evt_3","type":"checkout.session.completed"}"#.to_vec(),
        no_session_id,
    ] {
        let got = parse_stripe_event(&body, Environment::Sandbox);
        assert!(
            matches!(got, Err(WebhookError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn events_from_the_other_mode_are_refused() {
    let test_event = event("checkout.session.completed", session_json("complete", "paid"));
    assert!(matches!(
        parse_stripe_event(&test_event, Environment::Production),
        Err(WebhookError::Malformed(_))
    ));
    let live = String::from_utf8(test_event)
        .unwrap()
        .replace("\"livemode\":false", "\"livemode\":true");
    assert!(matches!(
        parse_stripe_event(live.as_bytes(), Environment::Sandbox),
        Err(WebhookError::Malformed(_))
    ));
    assert!(parse_stripe_event(live.as_bytes(), Environment::Production).is_ok());
}

#[test]
fn sessions_map_onto_statuses() {
    let cases = [
        ("complete", "paid", Some(PaymentStatus::Approved)),
        ("complete", "no_payment_required", Some(PaymentStatus::Approved)),
        ("complete", "unpaid", Some(PaymentStatus::Pending)),
        ("expired", "unpaid", Some(PaymentStatus::Expired)),
        ("open", "unpaid", Some(PaymentStatus::Redirected)),
        ("reopened", "unpaid", None),
    ];
    for (status, paid, want) in cases {
        let s: Session = serde_json::from_value(session_json(status, paid)).unwrap();
        assert_eq!(session_status(&s), want, "{status}/{paid}");
    }
}

// --- HTTP -----------------------------------------------------------------------

fn session_body(status: &str, payment_status: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(session_json(status, payment_status))
}

#[tokio::test]
async fn create_checkout_posts_the_form_once_per_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header("authorization", "Bearer sk_test_123"))
        .and(header("stripe-version", API_VERSION))
        .and(header("idempotency-key", "leadgate-checkout-att_1"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "cs_test_new", "object": "checkout.session", "status": "open",
            "payment_status": "unpaid", "url": "https://checkout.stripe.com/c/pay/cs_test_new"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (a, o, l) = (attempt(None), offer("Acceso"), lead(Lang::Es));
    let checkout = gateway(&server.uri())
        .create_checkout(&request(&a, &o, &l))
        .await
        .unwrap();
    assert_eq!(checkout.url, "https://checkout.stripe.com/c/pay/cs_test_new");
    assert_eq!(checkout.gateway_ref.as_deref(), Some("cs_test_new"));

    let sent = server.received_requests().await.unwrap();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&sent[0].body).into_owned().collect();
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("success_url"),
        Some("https://shop.example/return/stripe?attempt=att_1&session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("4990000"));
    assert_eq!(get("payment_intent_data[metadata][attempt_id]"), Some("att_1"));
    assert_eq!(get("locale"), Some("es"));
}

#[tokio::test]
async fn create_checkout_without_a_url_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "cs_test_x", "url": null})))
        .mount(&server)
        .await;
    let (a, o, l) = (attempt(None), offer(""), lead(Lang::En));
    let got = gateway(&server.uri()).create_checkout(&request(&a, &o, &l)).await;
    assert!(matches!(got, Err(GatewayError::Rejected(_))), "{got:?}");
}

#[tokio::test]
async fn create_checkout_failures_are_classified() {
    for (code, unavailable) in [(429, true), (500, true), (400, false), (401, false)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(code)
                    .set_body_json(serde_json::json!({"error": {"type": "invalid_request_error", "message": "nope"}})),
            )
            .mount(&server)
            .await;
        let (a, o, l) = (attempt(None), offer(""), lead(Lang::En));
        let got = gateway(&server.uri()).create_checkout(&request(&a, &o, &l)).await;
        match got {
            Err(GatewayError::Unavailable(_)) => assert!(unavailable, "{code}"),
            Err(GatewayError::Rejected(_)) => assert!(!unavailable, "{code}"),
            Err(e @ GatewayError::Store(_)) => panic!("{code} gave {e}"),
            Ok(c) => panic!("{code} gave {c:?}"),
        }
    }
}

#[tokio::test]
async fn fetch_status_prefers_the_returned_session_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_1"))
        .and(header("authorization", "Bearer sk_test_123"))
        .and(header("stripe-version", API_VERSION))
        .respond_with(session_body("complete", "paid"))
        .expect(1)
        .mount(&server)
        .await;
    let seen = gateway(&server.uri())
        .fetch_status(&attempt(Some("cs_test_stored")), "attempt=att_1&session_id=cs_test_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.status, PaymentStatus::Approved);
    assert_eq!(seen.reference.as_deref(), Some("att_1"));
    assert_eq!(seen.gateway_ref.as_deref(), Some("cs_test_1"));
    assert_eq!(seen.detail.as_deref(), Some("complete/paid"));
    assert_eq!(
        seen.charged,
        Some(Charged {
            amount_minor: 4_990_000,
            currency: "COP".into()
        })
    );
}

#[tokio::test]
async fn fetch_status_falls_back_to_the_stored_session() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_1"))
        .respond_with(session_body("open", "unpaid"))
        .expect(2)
        .mount(&server)
        .await;
    let g = gateway(&server.uri());
    for query in ["", "attempt=att_1&session_id=..%2Fx"] {
        let seen = g
            .fetch_status(&attempt(Some("cs_test_1")), query)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.status, PaymentStatus::Redirected, "{query}");
    }
}

#[tokio::test]
async fn nothing_to_look_up_asks_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(session_body("open", "unpaid"))
        .expect(0)
        .mount(&server)
        .await;
    let g = gateway(&server.uri());
    assert_eq!(g.fetch_status(&attempt(None), "attempt=att_1").await.unwrap(), None);
    assert_eq!(g.lookup("../../v1/customers").await.unwrap(), None);
}

#[tokio::test]
async fn lookup_maps_404_and_unknown_statuses_to_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_odd"))
        .respond_with(session_body("reopened", "unpaid"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_done"))
        .respond_with(session_body("expired", "unpaid"))
        .mount(&server)
        .await;
    let g = gateway(&server.uri());
    assert_eq!(g.lookup("cs_test_gone").await.unwrap(), None);
    assert_eq!(g.lookup("cs_test_odd").await.unwrap(), None);
    let seen = g.lookup("cs_test_done").await.unwrap().unwrap();
    assert_eq!(seen.status, PaymentStatus::Expired);
}

#[test]
fn kind_is_stripe() {
    assert_eq!(gateway("https://api.stripe.com").kind(), GatewayKind::Stripe);
}

#[test]
fn failed_delayed_payment_reads_as_declined_once_the_intent_says_so() {
    let session = |intent: serde_json::Value| -> Session {
        serde_json::from_value(serde_json::json!({
            "id": "cs_1", "status": "complete", "payment_status": "unpaid", "payment_intent": intent
        }))
        .unwrap()
    };
    assert_eq!(
        session_status(&session(serde_json::json!("pi_1"))),
        Some(PaymentStatus::Pending)
    );
    let waiting = session(serde_json::json!({"id": "pi_1", "status": "processing"}));
    assert_eq!(session_status(&waiting), Some(PaymentStatus::Pending));
    for failed in ["requires_payment_method", "canceled"] {
        let s = session(serde_json::json!({"id": "pi_1", "status": failed}));
        assert_eq!(session_status(&s), Some(PaymentStatus::Declined), "{failed}");
    }
}
