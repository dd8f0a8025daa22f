//! Mercado Pago Checkout Pro. Each attempt gets a preference (`POST /checkout/preferences`)
//! whose `init_point` is the hosted checkout, with our attempt id as `external_reference`.
//! Notifications are signed with `x-signature: ts=<ts>,v1=<hex>` over a manifest built from
//! the query's `data.id`, the `x-request-id` header and `ts`; the body is NOT signed, so a
//! notification only ever tells us which payment to read back from `/v1/payments/{id}`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::http::{fetch_json, send_json};
use super::signature::TimedSignature;
use super::{
    checkout_idempotency_key, decisive, query_param, Charged, Checkout, CheckoutRequest, EventFacts, Gateway,
    GatewayError, GatewayEvent, Observation, Verified, WebhookError, WebhookRequest,
};
use crate::config::{Environment, MercadoPagoSettings};
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::reversal::{Dispute, DisputeStage, Report};
use crate::domain::{Currency, Money, PaymentStatus};

const VENDOR: &str = "Mercado Pago";
pub const SIGNATURE_HEADER: &str = "x-signature";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Mercado Pago documents a 150-character limit on the payer's email; a longer one would
/// make the whole preference fail, while leaving it out only costs the prefill.
const MAX_EMAIL_LEN: usize = 150;
/// `ts` values above this are milliseconds (10^11 seconds is the year 5138).
const MS_THRESHOLD: i64 = 100_000_000_000;

pub struct MercadoPagoGateway {
    settings: MercadoPagoSettings,
    http: reqwest::Client,
}

impl MercadoPagoGateway {
    pub fn new(settings: MercadoPagoSettings, http: reqwest::Client) -> Self {
        Self { settings, http }
    }

    /// `{api_base}/<segments>`, each segment percent-encoded (ids come from webhooks).
    fn endpoint(&self, segments: &[&str]) -> Result<Url, GatewayError> {
        super::http::endpoint(VENDOR, &self.settings.api_base, segments)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.settings.access_token.expose_secret())
            .timeout(self.settings.timeout)
    }

    /// Newest-first search by our reference, narrowed to the payments that can decide.
    /// No payment yet is `{"results": []}`; a 404 means we asked the wrong host.
    async fn search(&self, attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        let mut url = self.endpoint(&["v1", "payments", "search"])?;
        url.query_pairs_mut()
            .append_pair("external_reference", &attempt.id)
            .append_pair("sort", "date_created")
            .append_pair("criteria", "desc");
        let found: SearchResult = send_json(VENDOR, self.request(Method::GET, url)).await?;
        decide(&attempt.id, paid_by(attempt), found.results.unwrap_or_default())
    }

    /// Closes a preference by moving its validity window's end to now. Not documented as
    /// such: the "Update preference" reference lists other body fields, and it is what
    /// integrators do to kill a link [unconfirmed that `expires`/`expiration_date_to` are
    /// honoured on update; test in sandbox].
    /// False when Mercado Pago has no such preference.
    async fn expire_preference(&self, preference_id: &str, now_ms: i64) -> Result<bool, GatewayError> {
        let to = iso8601(now_ms).ok_or_else(|| GatewayError::Rejected("current time out of range".into()))?;
        let url = self.endpoint(&["checkout", "preferences", preference_id])?;
        let body = serde_json::json!({ "expires": true, "expiration_date_to": to });
        let request = self.request(Method::PUT, url).json(&body);
        let updated: Option<Value> = fetch_json(VENDOR, request).await?;
        Ok(updated.is_some())
    }
}

#[async_trait]
impl Gateway for MercadoPagoGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::MercadoPago
    }

    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        let body = preference_body(req)?;
        let url = self.endpoint(&["checkout", "preferences"])?;
        let request = self
            .request(Method::POST, url)
            .header("X-Idempotency-Key", checkout_idempotency_key(&req.attempt.id))
            .json(&body);
        let created: PreferenceResponse = send_json(VENDOR, request).await?;
        let gateway_ref = created.id.clone().map(Id::into_string);
        let url = checkout_url(self.settings.environment, created)
            .ok_or_else(|| GatewayError::Rejected(format!("{VENDOR} created a preference without an init_point")))?;
        Ok(Checkout { url, gateway_ref })
    }

    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError> {
        let secret = self.settings.webhook_secret.expose_secret().as_bytes();
        verify_delivery(req, secret, self.settings.signature_tolerance, crate::clock::now_ms())
    }

    fn parse_event(&self, query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        parse_notification(query, body)
    }

    async fn fetch_status(&self, attempt: &Attempt, return_query: &str) -> Result<Option<Observation>, GatewayError> {
        // Once paid, that payment is the attempt's: another one the browser names (a second
        // payment through the same checkout) must not speak for it.
        let hint = hinted_payment(return_query).filter(|h| paid_by(attempt).is_none_or(|p| p == h));
        if let Some(payment_id) = hint {
            match self.lookup(&payment_id).await {
                Ok(Some(seen)) if seen.reference.as_deref() == Some(attempt.id.as_str()) => return Ok(Some(seen)),
                Ok(Some(_)) => {
                    tracing::warn!(%payment_id, "return names a payment of another reference; ignored");
                }
                Ok(None) => {}
                // The browser's hint may be junk; the search below still answers.
                Err(GatewayError::Rejected(e)) => tracing::warn!(%payment_id, error = %e, "return hint unusable"),
                Err(e) => return Err(e),
            }
        }
        self.search(attempt).await
    }

    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        if gateway_ref.trim().is_empty() {
            return Ok(None);
        }
        let url = self.endpoint(&["v1", "payments", gateway_ref])?;
        // Mercado Pago named this payment, so a 404 is a refusal, not "no payment".
        let mut p: Payment = send_json(VENDOR, self.request(Method::GET, url)).await?;
        // The id we asked for, should the answer leave it out.
        p.id = p.id.or_else(|| Some(Id::Text(gateway_ref.to_owned())));
        observation(p)
    }

    fn can_expire(&self) -> bool {
        true
    }

    /// A preference says nothing about payments, so this answers None whatever happens; a
    /// payment made before the expiry still arrives by notification or reconciliation.
    async fn expire_checkout(&self, attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        let Some(preference) = attempt.after.checkout_ref.as_deref().filter(|r| !r.trim().is_empty()) else {
            tracing::warn!(attempt_id = %attempt.id, "no Mercado Pago preference recorded; nothing to expire");
            return Ok(None);
        };
        // Not found: gone already, or another account's; nothing of ours can take a payment.
        if !self.expire_preference(preference, crate::clock::now_ms()).await? {
            tracing::warn!(%preference, "Mercado Pago preference to expire not found");
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------
// Preference (checkout) creation
// ---------------------------------------------------------------------------------------

/// The `POST /checkout/preferences` body (`PreferenceRequest` in the vendor's OpenAPI).
#[derive(Debug, Serialize)]
struct PreferenceBody<'a> {
    items: [Item<'a>; 1],
    payer: Payer<'a>,
    external_reference: &'a str,
    back_urls: BackUrls<'a>,
    auto_return: &'static str,
    notification_url: &'a str,
    expires: bool,
    expiration_date_from: String,
    expiration_date_to: String,
    metadata: Metadata<'a>,
}

#[derive(Debug, Serialize)]
struct Item<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    quantity: u32,
    currency_id: &'static str,
    unit_price: serde_json::Number,
}

#[derive(Debug, Serialize)]
struct Payer<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    surname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<PayerPhone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identification: Option<Identification<'a>>,
}

#[derive(Debug, Serialize)]
struct PayerPhone {
    #[serde(skip_serializing_if = "Option::is_none")]
    area_code: Option<String>,
    number: String,
}

#[derive(Debug, Serialize)]
struct Identification<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    number: &'a str,
}

#[derive(Debug, Serialize)]
struct BackUrls<'a> {
    success: &'a str,
    pending: &'a str,
    failure: &'a str,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    attempt_id: &'a str,
    lead_id: &'a str,
}

/// Builds the preference. The validity window starts at the attempt's creation rather than
/// "now": it is never ahead of Mercado Pago's clock, and a retried create (same idempotency
/// key) sends the same body.
fn preference_body<'a>(req: &'a CheckoutRequest<'a>) -> Result<PreferenceBody<'a>, GatewayError> {
    let amount = &req.attempt.amount;
    let unit_price = major_units(amount)
        .ok_or_else(|| GatewayError::Rejected(format!("amount {} cannot be sent", amount.amount_minor())))?;
    let from = iso8601(req.attempt.created_at)
        .ok_or_else(|| GatewayError::Rejected("attempt creation time out of range".into()))?;
    let to = iso8601(req.expires_at).ok_or_else(|| GatewayError::Rejected("checkout expiry out of range".into()))?;
    let lang = req.lead.lang;
    let description = Some(req.offer.description.get(lang).trim()).filter(|d| !d.is_empty());
    Ok(PreferenceBody {
        items: [Item {
            id: req.offer.slug.as_str(),
            title: req.offer.title.get(lang),
            description,
            quantity: 1,
            currency_id: amount.currency().as_str(),
            unit_price,
        }],
        payer: payer(req),
        external_reference: &req.attempt.id,
        back_urls: BackUrls {
            success: &req.return_url,
            pending: &req.return_url,
            failure: &req.return_url,
        },
        // Requires back_urls.success, set above.
        auto_return: "approved",
        notification_url: &req.webhook_url,
        expires: true,
        expiration_date_from: from,
        expiration_date_to: to,
        metadata: Metadata {
            attempt_id: &req.attempt.id,
            lead_id: &req.lead.id,
        },
    })
}

fn payer<'a>(req: &'a CheckoutRequest<'a>) -> Payer<'a> {
    let contact = &req.lead.contact;
    let (first, last) = contact.name.first_and_last();
    let number = contact.phone.national_number();
    let code = contact.phone.country_code();
    let tax_id_type = Some(req.offer.tax_id_type.trim()).filter(|t| !t.is_empty());
    Payer {
        name: first,
        surname: Some(last).filter(|l| !l.is_empty()),
        email: Some(contact.email.as_str()).filter(|e| e.len() <= MAX_EMAIL_LEN),
        phone: (!number.is_empty()).then(|| PayerPhone {
            area_code: (code != 0).then(|| code.to_string()),
            number,
        }),
        identification: contact.tax_id.as_ref().map(|t| Identification {
            kind: tax_id_type,
            number: t.as_str(),
        }),
    }
}

/// The amount in major units as a JSON number without float noise: an integer when whole
/// (199000, not 199000.0), else the nearest double to the exact quotient (49.9), which
/// serde_json prints in its shortest form.
fn major_units(m: &Money) -> Option<serde_json::Number> {
    let scale = 10_i64.checked_pow(m.currency().exponent())?;
    let minor = m.amount_minor();
    if minor % scale == 0 {
        return Some(serde_json::Number::from(minor / scale));
    }
    // Both operands are exact below 2^53 and IEEE division rounds correctly.
    serde_json::Number::from_f64(minor as f64 / scale as f64)
}

/// ISO 8601 with milliseconds and an explicit offset, e.g. `2026-11-23T10:00:00.000+00:00`.
fn iso8601(unix_ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(unix_ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string())
}

#[derive(Debug, Deserialize)]
struct PreferenceResponse {
    id: Option<Id>,
    init_point: Option<String>,
    sandbox_init_point: Option<String>,
}

/// Test credentials pay on the sandbox checkout; `init_point` is the fallback there.
fn checkout_url(environment: Environment, p: PreferenceResponse) -> Option<String> {
    let present = |u: Option<String>| u.filter(|u| !u.trim().is_empty());
    match environment {
        Environment::Sandbox => present(p.sandbox_init_point).or_else(|| present(p.init_point)),
        Environment::Production => present(p.init_point),
    }
}

// ---------------------------------------------------------------------------------------
// Webhook signature
// ---------------------------------------------------------------------------------------

/// Alphanumeric ids (Orders API) are signed lowercased; numeric payment ids are unaffected.
fn signed_data_id(id: &str) -> String {
    if id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        id.to_ascii_lowercase()
    } else {
        id.to_owned()
    }
}

/// `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, leaving out absent parts as the
/// vendor's SDK does.
fn manifest(data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let mut m = String::new();
    if let Some(id) = data_id {
        m.push_str(&format!("id:{};", signed_data_id(id)));
    }
    if let Some(r) = request_id {
        m.push_str(&format!("request-id:{r};"));
    }
    m.push_str(&format!("ts:{ts};"));
    m
}

/// `ts` may be in seconds or milliseconds; the docs' own example is in milliseconds.
fn is_stale(ts: i64, tolerance: Duration, now_ms: i64) -> bool {
    let ts_ms = if ts > MS_THRESHOLD { ts } else { ts.saturating_mul(1000) };
    u128::from(now_ms.abs_diff(ts_ms)) > tolerance.as_millis()
}

/// The inbox key, from the signed parts only: the body (and its notification id) is not
/// signed, so a captured delivery replayed with other bodies is still one event, looked up
/// once. With a request id the key leaves `ts` out, so the same delivery re-signed later
/// stays one event; without one, `ts` is all that tells one payment's notifications apart.
fn signed_key(data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let id = data_id.map(signed_data_id).unwrap_or_default();
    match request_id {
        Some(r) => format!("id:{id};request-id:{r};"),
        None => format!("id:{id};ts:{ts};"),
    }
}

fn verify_delivery(
    req: &WebhookRequest<'_>,
    secret: &[u8],
    tolerance: Duration,
    now_ms: i64,
) -> Result<Verified, WebhookError> {
    let header = req
        .headers
        .get(SIGNATURE_HEADER)
        .filter(|h| !h.trim().is_empty())
        .ok_or(WebhookError::MissingSignature)?;
    let sig = TimedSignature::parse(header, "ts").ok_or(WebhookError::BadSignature)?;
    // data.id is read from the query string: that is what Mercado Pago signs.
    let data_id = query_param(req.query, "data.id").filter(|s| !s.is_empty());
    let request_id = req.headers.get(REQUEST_ID_HEADER).filter(|s| !s.is_empty());
    let manifest = manifest(data_id.as_deref(), request_id, sig.ts);
    if !sig.signed_with(secret, &[manifest.as_bytes()]) {
        return Err(WebhookError::BadSignature);
    }
    // After the signature, so a forger learns nothing from `Stale`.
    if is_stale(sig.unix, tolerance, now_ms) {
        return Err(WebhookError::Stale);
    }
    Ok(Verified {
        event_id: Some(signed_key(data_id.as_deref(), request_id, sig.ts)),
    })
}

// ---------------------------------------------------------------------------------------
// Notification parsing
// ---------------------------------------------------------------------------------------

/// Reads a notification in either format. The payment id comes from the query when it has
/// one (its `data.id` is the signed part); the unsigned body is only a fallback, which is
/// safe because the id is merely looked up in our own account, never trusted for a status.
/// The event id made here reads unsigned parts, so it describes the delivery but is not the
/// inbox key: `verify_delivery`'s signed key is.
fn parse_notification(query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let n = Notification {
        query,
        body,
        json: json.as_ref(),
    };
    if let Some(kind) = n.param("type").or_else(|| n.field(&["type"])) {
        return webhook_event(&n, &kind);
    }
    if let Some(topic) = n.param("topic").or_else(|| n.field(&["topic"])) {
        return ipn_event(&n, &topic);
    }
    Err(WebhookError::Malformed(
        "notification names neither a type nor a topic".into(),
    ))
}

struct Notification<'a> {
    query: &'a str,
    body: &'a [u8],
    json: Option<&'a Value>,
}

impl Notification<'_> {
    fn param(&self, name: &str) -> Option<String> {
        query_param(self.query, name).filter(|v| !v.trim().is_empty())
    }

    /// A string or number at `path` in the body.
    fn field(&self, path: &[&str]) -> Option<String> {
        let mut v = self.json?;
        for key in path {
            v = v.get(key)?;
        }
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// An id at `path`: a string, or a JSON integer read exactly. Chargeback ids are
    /// 18-digit numbers, above 2^53: a number serde_json could only hold as an f64 has
    /// already lost digits, so it is refused rather than looked up as another id.
    fn id_field(&self, path: &[&str]) -> Option<String> {
        let mut v = self.json?;
        for key in path {
            v = v.get(key)?;
        }
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => n.as_u64().map(|u| u.to_string()),
            _ => None,
        }
    }

    /// The chargeback body's `actions` list, joined: `changed_case_status`.
    fn actions(&self) -> Option<String> {
        let list = self.json?.get("actions")?.as_array()?;
        let words: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        (!words.is_empty()).then(|| words.join(","))
    }

    /// Short digest of the raw delivery, so deliveries that share every named field are
    /// still told apart (dropping a real update is worse than a duplicate lookup).
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.query.as_bytes());
        h.update([0u8]);
        h.update(self.body);
        hex::encode(&h.finalize()[..8])
    }
}

/// `?data.id=123&type=payment` with `{"id":<notification id>,"action":"payment.updated",...}`.
/// Chargebacks: `?data.id=<chargeback id>&type=topic_chargebacks_wh` with
/// `{"actions":["changed_case_status"],"data":{"id":<chargeback id>,"payment_id":<id>}}`.
fn webhook_event(n: &Notification<'_>, kind: &str) -> Result<GatewayEvent, WebhookError> {
    let data_id = n.param("data.id").or_else(|| n.id_field(&["data", "id"]));
    // `action` on payments; chargebacks carry an `actions` list instead.
    let action = n.field(&["action"]).or_else(|| n.actions()).unwrap_or_default();
    // The notification id distinguishes updates of one payment; without it, the delivery.
    let notification = n.field(&["id"]).unwrap_or_else(|| format!("h{}", n.digest()));
    let event_id = format!("{kind}:{}:{action}:{notification}", data_id.as_deref().unwrap_or(""));
    let facts = if kind.eq_ignore_ascii_case("payment") {
        let gateway_ref =
            data_id.ok_or_else(|| WebhookError::Malformed("payment notification without data.id".into()))?;
        EventFacts::Changed { gateway_ref }
    } else if is_chargeback(kind) {
        // The signed data.id is the chargeback's; the payment it names is in the unsigned
        // body, which is safe for the same reason as above: it is only read back from our
        // own account, where the payment's status (charged_back) is the fact we apply.
        chargeback_facts(n.id_field(&["data", "payment_id"]), data_id.as_deref())
    } else {
        EventFacts::Irrelevant
    };
    Ok(GatewayEvent { event_id, facts })
}

/// `topic_chargebacks_wh` is the documented webhook topic; `chargebacks` is the resource
/// name the docs' IPN table and the stored spec use [unconfirmed which one a delivery
/// carries], so both are taken.
fn is_chargeback(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("topic_chargebacks_wh") || kind.eq_ignore_ascii_case("chargebacks")
}

/// A chargeback changed: read back the payment it is about. Without the payment's id,
/// nothing here can tell which attempt it concerns (the chargeback itself would have to be
/// read, `GET /v1/chargebacks/{id}`); the payment's own notification and the paid-attempt
/// reconciliation still find the `charged_back` status.
fn chargeback_facts(payment_id: Option<String>, chargeback_id: Option<&str>) -> EventFacts {
    match payment_id {
        Some(gateway_ref) => EventFacts::Changed { gateway_ref },
        None => {
            tracing::info!(
                chargeback_id = chargeback_id.unwrap_or(""),
                "Mercado Pago chargeback notification names no payment; left to reconciliation"
            );
            EventFacts::Irrelevant
        }
    }
}

/// Legacy IPN: `?id=123&topic=payment`, body `{"resource":"<id or URL>","topic":"payment"}`.
fn ipn_event(n: &Notification<'_>, topic: &str) -> Result<GatewayEvent, WebhookError> {
    let id = n
        .param("id")
        .or_else(|| n.field(&["resource"]).and_then(|r| last_segment(&r)))
        .or_else(|| n.id_field(&["id"]));
    let event_id = format!("ipn:{topic}:{}:{}", id.as_deref().unwrap_or(""), n.digest());
    let facts = if topic.eq_ignore_ascii_case("payment") {
        let gateway_ref = id.ok_or_else(|| WebhookError::Malformed("payment notification without an id".into()))?;
        EventFacts::Changed { gateway_ref }
    } else if is_chargeback(topic) {
        // An IPN names the chargeback only (`resource` is `/v1/chargebacks/<id>`); a body
        // that also names the payment is used, as in the webhook form.
        let payment = n
            .id_field(&["data", "payment_id"])
            .or_else(|| n.id_field(&["payment_id"]));
        chargeback_facts(payment, id.as_deref())
    } else {
        EventFacts::Irrelevant
    };
    Ok(GatewayEvent { event_id, facts })
}

/// `https://api.mercadolibre.com/collections/notifications/123` → `123`; a bare id as is.
fn last_segment(resource: &str) -> Option<String> {
    let path = resource.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------

/// Ids and references arrive as numbers or strings depending on the endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        }
    }
}

/// `transaction_amount` is a decimal number in major units; accept a numeric string too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Amount {
    Number(f64),
    Text(String),
}

impl Amount {
    fn major(&self) -> Option<f64> {
        match self {
            Amount::Number(n) => Some(*n),
            Amount::Text(s) => s.trim().parse().ok(),
        }
        .filter(|n| n.is_finite())
    }
}

/// The fields of the vendor's `Payment` object that we read.
#[derive(Debug, Deserialize)]
struct Payment {
    id: Option<Id>,
    status: Option<String>,
    status_detail: Option<String>,
    external_reference: Option<Id>,
    transaction_amount: Option<Amount>,
    /// "Total amount refunded so far", in major units like `transaction_amount`.
    transaction_amount_refunded: Option<Amount>,
    currency_id: Option<String>,
    /// `credit_card`, `debit_card`, `ticket`, `bank_transfer`, `account_money`…
    payment_type_id: Option<String>,
    /// `visa`, `master`, `pix`, `bolbradesco`, `account_money`…
    payment_method_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    results: Option<Vec<Payment>>,
}

/// Mercado Pago's payment status in our vocabulary; None for anything new. A refunded,
/// charged-back or mediated payment was approved first, so it stays approved here: what
/// became of its money is read separately (`after_sale`), never as a decline.
fn map_status(status: &str) -> Option<PaymentStatus> {
    match status {
        "pending" | "in_process" | "authorized" => Some(PaymentStatus::Pending),
        "approved" | "refunded" | "charged_back" | "in_mediation" => Some(PaymentStatus::Approved),
        "rejected" => Some(PaymentStatus::Declined),
        // Mercado Pago uses "cancelled" for unfinished payments only (expired cash/ticket
        // payments, cancelled by us or the payer); a paid one is refunded, not cancelled.
        "cancelled" => Some(PaymentStatus::Expired),
        _ => None,
    }
}

fn observation(p: Payment) -> Result<Option<Observation>, GatewayError> {
    let id = p.id.map(Id::into_string);
    let raw = p.status.unwrap_or_default();
    let Some(status) = map_status(&raw) else {
        tracing::info!(payment_id = ?id, status = %raw, "Mercado Pago payment status not applied");
        return Ok(None);
    };
    let charged = charged(p.transaction_amount.as_ref(), p.currency_id.as_deref());
    // A win is only taken after the amount check, which needs the amount.
    if status == PaymentStatus::Approved && charged.is_none() {
        return Err(GatewayError::Unavailable(format!(
            "{VENDOR} payment {} is approved without a readable amount",
            id.as_deref().unwrap_or("?")
        )));
    }
    let status_detail = p.status_detail.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let after_sale = charged
        .as_ref()
        .filter(|_| status == PaymentStatus::Approved)
        .and_then(|paid| {
            let refunded = p
                .transaction_amount_refunded
                .as_ref()
                .and_then(Amount::major)
                .and_then(|major| minor_units(major, &paid.currency));
            after_sale(&raw, status_detail, refunded, paid)
        });
    Ok(Some(Observation {
        checkout_ref: None,
        after_sale,
        method: method(p.payment_type_id.as_deref(), p.payment_method_id.as_deref()),
        reference: reference(p.external_reference),
        gateway_ref: id,
        status,
        detail: Some(detail(raw, status_detail)),
        charged,
    }))
}

fn reference(r: Option<Id>) -> Option<String> {
    r.map(Id::into_string).filter(|r| !r.trim().is_empty() && r != "null")
}

/// `status/status_detail`, as operators read it in Mercado Pago's panel.
fn detail(status: String, status_detail: Option<&str>) -> String {
    match status_detail.filter(|d| !d.is_empty()) {
        Some(d) => format!("{status}/{d}"),
        None => status,
    }
}

/// How the customer paid: the card kind for cards (`credit_card`; the brand says little),
/// the method itself otherwise (`pix`, `bolbradesco`, `account_money`), whose type
/// (`bank_transfer`, `ticket`) would hide which one.
fn method(type_id: Option<&str>, method_id: Option<&str>) -> Option<String> {
    let present = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
    let (kind, name) = (present(type_id), present(method_id));
    match kind.as_deref() {
        Some(k) if k.ends_with("_card") => kind,
        _ => name.or(kind),
    }
}

/// What the payment says of its money after approval, as a snapshot: refunded so far (in
/// the payment's minor units; more than was paid is passed on as is, for the domain to
/// refuse and report), and a dispute. None for a plain approval. Readings follow the
/// status table of Mercado Pago's "query results" page; the dispute outcomes are ours.
fn after_sale(status: &str, status_detail: Option<&str>, refunded: Option<i64>, paid: &Charged) -> Option<Report> {
    // "Refunded so far" when the payment says; a full refund may leave it out.
    let so_far = refunded.filter(|r| *r > 0);
    let whole = || so_far.unwrap_or(paid.amount_minor);
    let detail = status_detail.unwrap_or_default();
    // Words that say more than "refunded" go to the CRM note as the refund's reason.
    let reason = (!matches!(detail, "" | "refunded" | "partially_refunded" | "accredited")).then(|| detail.to_owned());
    let refund = |refunded_minor: i64| Report {
        refunded_minor,
        refund_reason: reason.clone(),
        ..Report::default()
    };
    // `bpp_*` (Mercado Pago's purchase protection paid the buyer back instead of us) is
    // seen in Mercado Libre marketplace code, not in the Checkout Pro docs [unconfirmed]:
    // we treat it as a refund, and its words reach the note so a person reviews it.
    if detail.contains("bpp_") {
        return match (detail.starts_with("partially_"), so_far) {
            (true, Some(r)) => Some(refund(r)),
            (true, None) => {
                tracing::warn!(
                    detail,
                    "Mercado Pago partial purchase-protection refund without an amount"
                );
                None
            }
            (false, _) => Some(refund(whole())),
        };
    }
    let dispute = |stage| Report {
        refunded_minor: so_far.unwrap_or(0),
        dispute: Some(Dispute {
            stage,
            due_at: None,
            reason: None,
        }),
        ..Report::default()
    };
    match status {
        // `refunded` (by us) or `by_admin` (by Mercado Pago): a full refund.
        "refunded" => Some(refund(whole())),
        // `charged_back`: `in_process` is a chargeback under way; `settled` ("ended with
        // the money retained") we read as lost and `reimbursed` ("money reimbursed") as
        // won. The docs do not say whose side these words describe [unconfirmed]: check
        // a real case before trusting them. Anything else needs a human: open.
        "charged_back" => Some(dispute(match detail {
            "settled" => DisputeStage::Lost,
            "reimbursed" => DisputeStage::Won,
            _ => DisputeStage::Open,
        })),
        // "Dispute opened", with no status_detail documented; what follows is unknown.
        "in_mediation" => Some(dispute(DisputeStage::Open)),
        // `partially_refunded`: still approved, with the refunds so far.
        _ => match (so_far, detail) {
            (Some(r), _) => Some(refund(r)),
            (None, "partially_refunded") => {
                tracing::warn!("Mercado Pago payment partially refunded without transaction_amount_refunded");
                None
            }
            (None, _) => None,
        },
    }
}

/// Major units × 10^exponent, rounded (100.5 BRL → 10050).
fn charged(amount: Option<&Amount>, currency: Option<&str>) -> Option<Charged> {
    let currency = currency
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())?;
    let amount_minor = minor_units(amount?.major()?, &currency)?;
    Some(Charged { amount_minor, currency })
}

/// Decimal major units of `currency` in its minor units; None beyond what an f64 holds.
fn minor_units(major: f64, currency: &str) -> Option<i64> {
    // Currencies we do not sell in fail the currency check anyway; 2 digits is ISO's norm.
    let exponent = currency.parse::<Currency>().map_or(2, |c| c.exponent());
    let minor = (major * 10_f64.powi(exponent as i32)).round();
    // Beyond 2^53 the f64 no longer holds whole units exactly.
    if minor.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    Some(minor as i64)
}

/// The payment that paid the attempt, once it is paid.
fn paid_by(attempt: &Attempt) -> Option<&str> {
    attempt.gateway_ref.as_deref().filter(|_| attempt.status.is_paid())
}

/// From search results (newest first), the payment that decides the attempt: the one that
/// paid it, once paid (its refunds are the attempt's; a second payment's are not), else
/// the decisive one. Refunded and disputed payments count as approved.
fn decide(
    attempt_id: &str,
    paid_by: Option<&str>,
    newest_first: Vec<Payment>,
) -> Result<Option<Observation>, GatewayError> {
    let mut seen = Vec::new();
    for p in newest_first.into_iter().rev() {
        // The API filters by reference already; re-check so an ignored filter cannot
        // hand us someone else's payment.
        if let Some(o) = observation(p)?.filter(|o| o.reference.as_deref() == Some(attempt_id)) {
            seen.push(o);
        }
    }
    if let Some(i) = paid_by.and_then(|id| seen.iter().position(|o| o.gateway_ref.as_deref() == Some(id))) {
        return Ok(Some(seen.swap_remove(i)));
    }
    Ok(decisive(seen))
}

/// The payment id Mercado Pago appends to the return URL (`payment_id`, and the same
/// value as `collection_id`). Unsigned, so only used to pick what to look up.
fn hinted_payment(return_query: &str) -> Option<String> {
    let numeric = |v: &String| !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
    query_param(return_query, "payment_id")
        .filter(numeric)
        .or_else(|| query_param(return_query, "collection_id").filter(numeric))
}

#[cfg(test)]
mod tests;
