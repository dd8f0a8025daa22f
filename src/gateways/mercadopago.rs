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

use super::http::send_json;
use super::signature::TimedSignature;
use super::{
    checkout_idempotency_key, decisive, query_param, Charged, Checkout, CheckoutRequest, EventFacts, Gateway,
    GatewayError, GatewayEvent, Observation, Verified, WebhookError, WebhookRequest,
};
use crate::config::{Environment, MercadoPagoSettings};
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
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
    async fn search(&self, attempt_id: &str) -> Result<Option<Observation>, GatewayError> {
        let mut url = self.endpoint(&["v1", "payments", "search"])?;
        url.query_pairs_mut()
            .append_pair("external_reference", attempt_id)
            .append_pair("sort", "date_created")
            .append_pair("criteria", "desc");
        let found: SearchResult = send_json(VENDOR, self.request(Method::GET, url)).await?;
        decide(attempt_id, found.results.unwrap_or_default())
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
        if let Some(payment_id) = hinted_payment(return_query) {
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
        self.search(&attempt.id).await
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
    let description = Some(req.offer.description.trim()).filter(|d| !d.is_empty());
    Ok(PreferenceBody {
        items: [Item {
            id: req.offer.slug.as_str(),
            title: &req.offer.title,
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
fn webhook_event(n: &Notification<'_>, kind: &str) -> Result<GatewayEvent, WebhookError> {
    let data_id = n.param("data.id").or_else(|| n.field(&["data", "id"]));
    let action = n.field(&["action"]).unwrap_or_default();
    // The notification id distinguishes updates of one payment; without it, the delivery.
    let notification = n.field(&["id"]).unwrap_or_else(|| format!("h{}", n.digest()));
    let event_id = format!("{kind}:{}:{action}:{notification}", data_id.as_deref().unwrap_or(""));
    let facts = if kind.eq_ignore_ascii_case("payment") {
        let gateway_ref =
            data_id.ok_or_else(|| WebhookError::Malformed("payment notification without data.id".into()))?;
        EventFacts::Changed { gateway_ref }
    } else {
        EventFacts::Irrelevant
    };
    Ok(GatewayEvent { event_id, facts })
}

/// Legacy IPN: `?id=123&topic=payment`, body `{"resource":"<id or URL>","topic":"payment"}`.
fn ipn_event(n: &Notification<'_>, topic: &str) -> Result<GatewayEvent, WebhookError> {
    let id = n
        .param("id")
        .or_else(|| n.field(&["resource"]).and_then(|r| last_segment(&r)))
        .or_else(|| n.field(&["id"]));
    let event_id = format!("ipn:{topic}:{}:{}", id.as_deref().unwrap_or(""), n.digest());
    let facts = if topic.eq_ignore_ascii_case("payment") {
        let gateway_ref = id.ok_or_else(|| WebhookError::Malformed("payment notification without an id".into()))?;
        EventFacts::Changed { gateway_ref }
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
    currency_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    results: Option<Vec<Payment>>,
}

/// Mercado Pago's payment status in our vocabulary; None for what our state machine does
/// not apply (refunds, chargebacks, disputes, anything new).
fn map_status(status: &str) -> Option<PaymentStatus> {
    match status {
        "pending" | "in_process" | "authorized" => Some(PaymentStatus::Pending),
        "approved" => Some(PaymentStatus::Approved),
        "rejected" => Some(PaymentStatus::Declined),
        // Mercado Pago uses "cancelled" for expired cash/ticket payments too.
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
    let detail = match p.status_detail.filter(|d| !d.is_empty()) {
        Some(d) => format!("{raw}/{d}"),
        None => raw,
    };
    Ok(Some(Observation {
        checkout_ref: None,
        after_sale: None,
        method: None,
        reference: p
            .external_reference
            .map(Id::into_string)
            .filter(|r| !r.trim().is_empty() && r != "null"),
        gateway_ref: id,
        status,
        detail: Some(detail),
        charged,
    }))
}

/// Major units × 10^exponent, rounded (100.5 BRL → 10050).
fn charged(amount: Option<&Amount>, currency: Option<&str>) -> Option<Charged> {
    let currency = currency
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())?;
    let major = amount?.major()?;
    // Currencies we do not sell in fail the currency check anyway; 2 digits is ISO's norm.
    let exponent = currency.parse::<Currency>().map_or(2, |c| c.exponent());
    let minor = (major * 10_f64.powi(exponent as i32)).round();
    // Beyond 2^53 the f64 no longer holds whole units exactly.
    if minor.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    Some(Charged {
        amount_minor: minor as i64,
        currency,
    })
}

/// From search results (newest first), the payment that decides the attempt.
fn decide(attempt_id: &str, newest_first: Vec<Payment>) -> Result<Option<Observation>, GatewayError> {
    let mut seen = Vec::new();
    for p in newest_first.into_iter().rev() {
        // The API filters by reference already; re-check so an ignored filter cannot
        // hand us someone else's payment.
        if let Some(o) = observation(p)?.filter(|o| o.reference.as_deref() == Some(attempt_id)) {
            seen.push(o);
        }
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
