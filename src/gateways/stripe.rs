//! Stripe Checkout: one hosted Checkout Session per attempt, `Stripe-Signature` webhooks
//! (HMAC-SHA256 over `"<t>.<raw body>"`, one `v1` per active endpoint secret) and session
//! reads for the return page and reconciliation (docs.stripe.com/api/checkout/sessions).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::http::send_json;
use super::signature::TimedSignature;
use super::{
    query_param, Charged, Checkout, CheckoutRequest, EventFacts, Gateway, GatewayError, GatewayEvent, Observation,
    Verified, WebhookError, WebhookRequest,
};
use crate::config::{Environment, StripeSettings};
use crate::domain::edge::GATEWAY_REF_MAX_CHARS;
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::{Lang, PaymentStatus};

/// The API version this adapter was written and tested against. Pinned per request so a
/// change of the account's default version cannot change the shapes we read.
pub const API_VERSION: &str = "2023-08-16";
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
const VENDOR: &str = "Stripe";
/// Stripe takes `expires_at` between 30 min and 24 h after creation; a minute of margin on
/// each side absorbs clock skew and request latency.
const MIN_EXPIRY_SECS: i64 = 31 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60 - 60;

pub struct StripeGateway {
    settings: StripeSettings,
    http: reqwest::Client,
}

impl StripeGateway {
    pub fn new(settings: StripeSettings, http: reqwest::Client) -> Self {
        Self { settings, http }
    }

    /// Every call carries the timeout, the secret key and the pinned API version.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .timeout(self.settings.timeout)
            .bearer_auth(self.settings.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
    }

    /// The session with its PaymentIntent expanded: a delayed method that failed leaves
    /// the session `complete`/`unpaid` forever, and only the intent says it failed.
    /// Sessions are never deleted, so a 404 for one Stripe named is a refusal (wrong
    /// `api_base`, or a key of the other mode), not "no payment".
    async fn get_session(&self, id: &str) -> Result<Session, GatewayError> {
        let mut url = endpoint(&self.settings.api_base, &["v1", "checkout", "sessions", id])?;
        url.query_pairs_mut().append_pair("expand[]", "payment_intent");
        send_json(VENDOR, self.request(Method::GET, url)).await
    }
}

// ---------------------------------------------------------------------------------------
// Vendor JSON (only what we read; everything else is ignored).

/// A Checkout Session, as created or retrieved, or inside an event.
#[derive(Debug, Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
    /// `open | complete | expired`.
    status: Option<String>,
    /// `paid | unpaid | no_payment_required`.
    payment_status: Option<String>,
    client_reference_id: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    /// An id in events; the object when read with `expand[]=payment_intent`.
    payment_intent: Option<IntentRef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IntentRef {
    // An object first: an id string cannot be read as one, and falls through.
    Expanded { status: Option<String> },
    Id(serde::de::IgnoredAny),
}

impl Session {
    /// The expanded PaymentIntent's status, when we have it.
    fn intent_status(&self) -> Option<&str> {
        match self.payment_intent.as_ref()? {
            IntentRef::Expanded { status } => status.as_deref(),
            IntentRef::Id(_) => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    livemode: Option<bool>,
    data: Option<EventData>,
}

#[derive(Debug, Deserialize)]
struct EventData {
    /// Kept loose: only checkout.session events carry a session here.
    object: serde_json::Value,
}

// ---------------------------------------------------------------------------------------
// Creating the session.

/// `{api_base}/seg/seg/...`, each segment percent-encoded so an id cannot change the path.
fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, GatewayError> {
    super::http::endpoint(VENDOR, base, segments)
}

/// Checkout's own locale codes for our languages.
fn stripe_locale(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "es",
        Lang::PtBr => "pt-BR",
        Lang::En => "en",
    }
}

/// Stripe replaces the literal `{CHECKOUT_SESSION_ID}` when it redirects, which gives the
/// return page a session to look up before the webhook lands.
fn success_url(return_url: &str) -> String {
    let sep = if return_url.contains('?') { '&' } else { '?' };
    format!("{return_url}{sep}session_id={{CHECKOUT_SESSION_ID}}")
}

/// Our deadline (unix ms) in unix seconds, moved into the window Stripe accepts.
fn expires_at(wanted_ms: i64, now_unix: i64) -> i64 {
    let earliest = now_unix.saturating_add(MIN_EXPIRY_SECS);
    let latest = now_unix.saturating_add(MAX_EXPIRY_SECS);
    (wanted_ms / 1000).clamp(earliest, latest)
}

/// The form body of `POST /v1/checkout/sessions`, in Stripe's bracket syntax.
fn checkout_form(req: &CheckoutRequest<'_>, now_unix: i64) -> Vec<(String, String)> {
    let attempt = req.attempt;
    let mut form: Vec<(String, String)> = Vec::with_capacity(20);
    let mut put = |key: &str, value: String| form.push((key.to_owned(), value));
    put("mode", "payment".into());
    let item = "line_items[0][price_data]";
    put(
        &format!("{item}[currency]"),
        attempt.amount.currency().as_str().to_ascii_lowercase(),
    );
    put(&format!("{item}[product_data][name]"), req.offer.title.clone());
    let description = req.offer.description.trim();
    if !description.is_empty() {
        put(&format!("{item}[product_data][description]"), description.to_owned());
    }
    // Our minor units are Stripe's for every currency we sell in (CLP has none in both).
    put(
        &format!("{item}[unit_amount]"),
        attempt.amount.amount_minor().to_string(),
    );
    put("line_items[0][quantity]", "1".into());
    put("customer_email", req.lead.contact.email.as_str().to_owned());
    put("client_reference_id", attempt.id.clone());
    let metadata = [
        ("attempt_id", &attempt.id),
        ("lead_id", &attempt.lead_id),
        ("offer", &attempt.offer_slug),
    ];
    // Session metadata is not copied to the PaymentIntent, so the payment gets its own.
    for prefix in ["metadata", "payment_intent_data[metadata]"] {
        for (key, value) in metadata {
            put(&format!("{prefix}[{key}]"), value.clone());
        }
    }
    put("success_url", success_url(&req.return_url));
    put("cancel_url", req.cancel_url.clone());
    put("expires_at", expires_at(req.expires_at, now_unix).to_string());
    put("locale", stripe_locale(req.lead.lang).into());
    form
}

// ---------------------------------------------------------------------------------------
// Webhook signatures.

/// True when any `v1` is the HMAC of `"<t>.<body>"` under any configured secret.
fn signed_by_any(sig: &TimedSignature<'_>, body: &[u8], secrets: &[SecretString]) -> bool {
    secrets
        .iter()
        .any(|s| sig.signed_with(s.expose_secret().as_bytes(), &[sig.ts.as_bytes(), b".", body]))
}

/// Checks a delivery's `Stripe-Signature` header against the raw body at `now_unix`.
/// The signature is checked before the window, so a forger learns nothing from `Stale`.
fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    tolerance: Duration,
    now_unix: i64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let sig = TimedSignature::parse(header, "t").ok_or(WebhookError::BadSignature)?;
    if !signed_by_any(&sig, body, secrets) {
        return Err(WebhookError::BadSignature);
    }
    if now_unix.abs_diff(sig.unix) > tolerance.as_secs() {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Mapping sessions and events onto our vocabulary.

/// A session whose customer finished Checkout: paid, or waiting for a delayed method
/// (OXXO, boleto), which is never an abandonment.
fn completed_status(payment_status: Option<&str>) -> PaymentStatus {
    match payment_status {
        Some("paid" | "no_payment_required") => PaymentStatus::Approved,
        _ => PaymentStatus::Pending,
    }
}

/// The status a session read from the API stands for; None for a status we do not know.
fn session_status(s: &Session) -> Option<PaymentStatus> {
    match s.status.as_deref()? {
        // After a delayed method failed (voucher expired, boleto unpaid) the intent goes
        // back to needing a payment method, or is canceled.
        "complete" if matches!(s.intent_status(), Some("requires_payment_method" | "canceled")) => {
            Some(PaymentStatus::Declined)
        }
        "complete" => Some(completed_status(s.payment_status.as_deref())),
        "expired" => Some(PaymentStatus::Expired),
        "open" => Some(PaymentStatus::Redirected),
        _ => None,
    }
}

/// The checkout.session events that say something about the payment.
#[derive(Debug, Clone, Copy)]
enum SessionEvent {
    Completed,
    AsyncSucceeded,
    AsyncFailed,
    Expired,
}

impl SessionEvent {
    fn from_type(kind: &str) -> Option<Self> {
        match kind {
            "checkout.session.completed" => Some(Self::Completed),
            "checkout.session.async_payment_succeeded" => Some(Self::AsyncSucceeded),
            "checkout.session.async_payment_failed" => Some(Self::AsyncFailed),
            "checkout.session.expired" => Some(Self::Expired),
            _ => None,
        }
    }

    fn status(self, s: &Session) -> PaymentStatus {
        match self {
            Self::Completed => completed_status(s.payment_status.as_deref()),
            Self::AsyncSucceeded => PaymentStatus::Approved,
            Self::AsyncFailed => PaymentStatus::Declined,
            Self::Expired => PaymentStatus::Expired,
        }
    }
}

/// Stripe's own words, e.g. `complete/paid`, for operators.
fn status_words(s: &Session) -> String {
    format!(
        "{}/{}",
        s.status.as_deref().unwrap_or("?"),
        s.payment_status.as_deref().unwrap_or("?")
    )
}

fn charged(s: &Session) -> Option<Charged> {
    Some(Charged {
        amount_minor: s.amount_total?,
        currency: s.currency.as_deref()?.to_ascii_uppercase(),
    })
}

fn observation(s: Session, status: PaymentStatus, detail: String) -> Observation {
    Observation {
        charged: charged(&s),
        reference: s.client_reference_id,
        checkout_ref: Some(s.id.clone()),
        after_sale: None,
        method: None,
        gateway_ref: Some(s.id),
        status,
        detail: Some(detail),
    }
}

fn session_observation(s: Session) -> Option<Observation> {
    let Some(status) = session_status(&s) else {
        tracing::warn!(session = %s.id, status = ?s.status, "Stripe session in a status we do not know");
        return None;
    };
    let detail = status_words(&s);
    Some(observation(s, status, detail))
}

/// Stripe ids are ASCII letters, digits and `_`; anything else cannot name a session.
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= GATEWAY_REF_MAX_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn malformed(e: impl std::fmt::Display) -> WebhookError {
    WebhookError::Malformed(e.to_string())
}

/// Reads a verified event body. A test-mode event on a production install (or the
/// reverse) means a misrouted endpoint and must never settle an attempt.
fn parse_stripe_event(body: &[u8], environment: Environment) -> Result<GatewayEvent, WebhookError> {
    let ev: Event = serde_json::from_slice(body).map_err(malformed)?;
    if ev.id.is_empty() {
        return Err(malformed("event without an id"));
    }
    if let Some(live) = ev.livemode {
        if live != (environment == Environment::Production) {
            return Err(malformed(format!(
                "livemode={live} event on a {} endpoint",
                environment.as_str()
            )));
        }
    }
    let Some(which) = SessionEvent::from_type(&ev.kind) else {
        return Ok(irrelevant(ev.id));
    };
    let data = ev
        .data
        .ok_or_else(|| malformed("checkout.session event without data"))?;
    let session: Session = serde_json::from_value(data.object).map_err(malformed)?;
    let status = which.status(&session);
    let detail = format!("{}: {}", ev.kind, status_words(&session));
    let facts = EventFacts::Observed(observation(session, status, detail));
    Ok(GatewayEvent { event_id: ev.id, facts })
}

fn irrelevant(event_id: String) -> GatewayEvent {
    GatewayEvent {
        event_id,
        facts: EventFacts::Irrelevant,
    }
}

#[async_trait]
impl Gateway for StripeGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Stripe
    }

    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        let form = checkout_form(req, crate::clock::now_ms() / 1000);
        let url = endpoint(&self.settings.api_base, &["v1", "checkout", "sessions"])?;
        let call = self
            .request(Method::POST, url)
            .header("Idempotency-Key", super::checkout_idempotency_key(&req.attempt.id))
            .form(&form);
        let session: Session = send_json(VENDOR, call).await?;
        match session.url.filter(|u| !u.is_empty()) {
            Some(url) => Ok(Checkout {
                url,
                gateway_ref: Some(session.id),
            }),
            // Only hosted sessions have a URL; without one there is nowhere to send the customer.
            None => Err(GatewayError::Rejected(format!(
                "{VENDOR} created session {} without a url",
                session.id
            ))),
        }
    }

    /// The whole body is signed, so the event's own id is the inbox key.
    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError> {
        verify_signature(
            req.headers.get(SIGNATURE_HEADER),
            req.body,
            &self.settings.webhook_secrets,
            self.settings.signature_tolerance,
            crate::clock::now_ms() / 1000,
        )?;
        Ok(Verified::default())
    }

    fn parse_event(&self, _query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        parse_stripe_event(body, self.settings.environment)
    }

    /// The return URL's `session_id` is only a hint: the caller refuses a session whose
    /// client_reference_id is not this attempt, so it cannot settle someone else's attempt.
    /// A hint Stripe refuses falls back to the session we created; with neither, no
    /// session exists, so there is no payment.
    async fn fetch_status(&self, attempt: &Attempt, return_query: &str) -> Result<Option<Observation>, GatewayError> {
        let ours = attempt.gateway_ref.as_deref();
        if let Some(hint) = query_param(return_query, "session_id").filter(|id| plausible_id(id)) {
            match self.lookup(&hint).await {
                Err(GatewayError::Rejected(e)) if ours.is_some_and(|id| id != hint) => {
                    tracing::warn!(attempt_id = %attempt.id, error = %e, "Stripe refused the return's session id");
                }
                found => return found,
            }
        }
        match ours {
            Some(id) => self.lookup(id).await,
            None => Ok(None),
        }
    }

    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        if !plausible_id(gateway_ref) {
            return Ok(None);
        }
        Ok(session_observation(self.get_session(gateway_ref).await?))
    }
}

#[cfg(test)]
mod tests;
