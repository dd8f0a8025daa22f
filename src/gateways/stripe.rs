//! Stripe Checkout: one hosted Checkout Session per attempt, `Stripe-Signature` webhooks
//! (HMAC-SHA256 over `"<t>.<raw body>"`, one `v1` per active endpoint secret) and session
//! reads for the return page and reconciliation (docs.stripe.com/api/checkout/sessions).
//! Events are only a cue: every one we act on names a session or a PaymentIntent, and
//! the status and the money after approval (refunds, disputes) are read back from the API,
//! so a late, replayed or out-of-order event can only make us look again.

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
use crate::domain::reversal::{Dispute, DisputeStage, Report};
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

    /// The session with its PaymentIntent and that intent's latest Charge expanded: a
    /// delayed method that failed leaves the session `complete`/`unpaid` forever, and only
    /// the intent says it failed; refunds and disputes are only on the charge. Sessions are
    /// never deleted, so a 404 for one Stripe named is a refusal (wrong `api_base`, or a
    /// key of the other mode), not "no payment".
    async fn get_session(&self, id: &str) -> Result<Session, GatewayError> {
        let mut url = endpoint(&self.settings.api_base, &["v1", "checkout", "sessions", id])?;
        url.query_pairs_mut().append_pair("expand[]", EXPAND_CHARGE);
        send_json(VENDOR, self.request(Method::GET, url)).await
    }

    /// The Checkout Session a PaymentIntent was paid through. Refund and dispute objects
    /// name only the intent; the session carries our attempt id and is what settle checks.
    /// None when no session has it (a payment made on the account outside Checkout).
    async fn session_of_intent(&self, intent: &str) -> Result<Option<Session>, GatewayError> {
        let mut url = endpoint(&self.settings.api_base, &["v1", "checkout", "sessions"])?;
        url.query_pairs_mut()
            .append_pair("payment_intent", intent)
            .append_pair("expand[]", &format!("data.{EXPAND_CHARGE}"));
        let list: List<Session> = send_json(VENDOR, self.request(Method::GET, url)).await?;
        let mut sessions = list.data.into_iter();
        let first = sessions.next();
        if sessions.next().is_some() {
            // A PaymentIntent is created by one session's confirmation; two would be a
            // Stripe change we have not seen. The first (newest) is the one we read.
            tracing::warn!(
                payment_intent = intent,
                "Stripe lists several sessions for one PaymentIntent"
            );
        }
        Ok(first)
    }

    /// The newest dispute of a PaymentIntent (a charge that was disputed, lost and then
    /// disputed again is rare, but the newest is the one that stands).
    async fn newest_dispute(&self, intent: &str) -> Result<Option<DisputeJson>, GatewayError> {
        let mut url = endpoint(&self.settings.api_base, &["v1", "disputes"])?;
        url.query_pairs_mut().append_pair("payment_intent", intent);
        let list: List<DisputeJson> = send_json(VENDOR, self.request(Method::GET, url)).await?;
        Ok(list.data.into_iter().max_by_key(|d| d.created.unwrap_or(i64::MIN)))
    }

    /// The observation a session stands for, with the money after approval read from its
    /// charge (and its dispute, when the charge says it was disputed).
    async fn observe(&self, s: Session) -> Result<Option<Observation>, GatewayError> {
        let Some(mut seen) = session_observation(&s) else {
            return Ok(None);
        };
        if seen.status != PaymentStatus::Approved {
            return Ok(Some(seen));
        }
        let Some(charge) = s.latest_charge() else {
            return Ok(Some(seen));
        };
        seen.method = charge.method().map(str::to_owned);
        if !same_currency(&s, charge) {
            tracing::error!(
                session = %s.id, charge = %charge.id, charge_currency = ?charge.currency, session_currency = ?s.currency,
                "Stripe charge in another currency than its session; its refunds are not applied"
            );
            return Ok(Some(seen));
        }
        let dispute = match (charge.disputed, s.intent_id()) {
            (Some(true), Some(intent)) => self.newest_dispute(intent).await?,
            _ => None,
        };
        seen.after_sale = Some(after_sale(charge, dispute.as_ref()));
        Ok(Some(seen))
    }
}

/// One `expand[]` gives the intent's status and its latest charge's money in the same read.
const EXPAND_CHARGE: &str = "payment_intent.latest_charge";

// ---------------------------------------------------------------------------------------
// Vendor JSON (only what we read; everything else is ignored).

/// A Checkout Session, as created or retrieved (spec schema `checkout.session`).
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
    /// An id unless read with `expand[]=payment_intent…`; null until the customer confirms.
    payment_intent: Option<Expandable<Intent>>,
}

/// A field Stripe sends as an id, or as the object when expanded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable<T> {
    // An object first: an id string cannot be read as one, and falls through.
    Object(T),
    Id(String),
    /// Anything else (a shape we do not know) is ignored rather than refusing the session.
    Other(serde::de::IgnoredAny),
}

impl<T> Expandable<T> {
    fn object(&self) -> Option<&T> {
        match self {
            Expandable::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// Spec schema `payment_intent`, only what we read.
#[derive(Debug, Deserialize)]
struct Intent {
    id: Option<String>,
    status: Option<String>,
    latest_charge: Option<Expandable<Charge>>,
}

/// Spec schema `charge`. `amount_refunded` is the running total in minor units; the
/// `refunds` list is not included unless expanded (since 2022-11-15), so its reason is a
/// bonus when present, never needed.
#[derive(Debug, Deserialize)]
struct Charge {
    id: String,
    amount_refunded: Option<i64>,
    currency: Option<String>,
    disputed: Option<bool>,
    payment_method_details: Option<MethodDetails>,
    refunds: Option<List<RefundJson>>,
}

#[derive(Debug, Deserialize)]
struct MethodDetails {
    /// `card`, `oxxo`, `boleto`…
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Spec schema `refund`, only its reason.
#[derive(Debug, Deserialize)]
struct RefundJson {
    reason: Option<String>,
    created: Option<i64>,
}

/// Spec schema `dispute`, only what we read.
#[derive(Debug, Deserialize)]
struct DisputeJson {
    status: Option<String>,
    reason: Option<String>,
    created: Option<i64>,
    evidence_details: Option<EvidenceDetails>,
}

#[derive(Debug, Deserialize)]
struct EvidenceDetails {
    /// Unix seconds; null, or 0 when the issuer allows no response.
    due_by: Option<i64>,
}

/// A list object (`{"object":"list","data":[…]}`); a missing `data` reads as empty.
#[derive(Debug, Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

impl Session {
    fn intent(&self) -> Option<&Intent> {
        self.payment_intent.as_ref()?.object()
    }

    /// The expanded PaymentIntent's status, when we have it.
    fn intent_status(&self) -> Option<&str> {
        self.intent()?.status.as_deref()
    }

    fn intent_id(&self) -> Option<&str> {
        match self.payment_intent.as_ref()? {
            Expandable::Object(i) => i.id.as_deref(),
            Expandable::Id(id) => Some(id),
            Expandable::Other(_) => None,
        }
    }

    fn latest_charge(&self) -> Option<&Charge> {
        self.intent()?.latest_charge.as_ref()?.object()
    }
}

impl Charge {
    fn method(&self) -> Option<&str> {
        self.payment_method_details.as_ref()?.kind.as_deref()
    }

    /// The newest refund's reason, if the charge happens to carry its refunds.
    fn refund_reason(&self) -> Option<String> {
        let refunds = &self.refunds.as_ref()?.data;
        refunds
            .iter()
            .max_by_key(|r| r.created.unwrap_or(i64::MIN))?
            .reason
            .clone()
    }
}

/// The charge's currency is the session's: a refunded total in another currency's units
/// must not be read as ours. Unknown on either side counts as different.
fn same_currency(s: &Session, c: &Charge) -> bool {
    match (s.currency.as_deref(), c.currency.as_deref()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Stripe's dispute statuses (spec enum on 2023-08-16) in our three stages. `warning_*`
/// are inquiries; an unknown status (later versions add `prevented`…) stays open, so a
/// human looks at it rather than us calling it settled.
fn dispute_stage(status: Option<&str>) -> DisputeStage {
    match status {
        Some("won" | "warning_closed") => DisputeStage::Won,
        Some("lost") => DisputeStage::Lost,
        _ => DisputeStage::Open,
    }
}

fn dispute(d: &DisputeJson) -> Dispute {
    let due_by = d.evidence_details.as_ref().and_then(|e| e.due_by);
    Dispute {
        stage: dispute_stage(d.status.as_deref()),
        // 0 means no response is allowed: there is no deadline to give sales.
        due_at: due_by.filter(|&s| s > 0).map(|s| s.saturating_mul(1000)),
        reason: d.reason.clone(),
    }
}

/// What the charge (and its newest dispute) say about the money now. A voided
/// authorisation cannot happen here: Checkout in payment mode captures automatically.
fn after_sale(c: &Charge, d: Option<&DisputeJson>) -> Report {
    let refunded_minor = c.amount_refunded.unwrap_or(0);
    Report {
        refunded_minor,
        voided: false,
        dispute: d.map(dispute),
        refund_reason: if refunded_minor > 0 { c.refund_reason() } else { None },
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
    /// A session, charge, refund or dispute, by the event's type; read as `EventObject`
    /// only for the types we act on, so an odd object elsewhere refuses nothing.
    object: serde_json::Value,
}

/// What we read from any event object: its own id and the PaymentIntent it belongs to
/// (`charge`, `refund` and `dispute` all carry `payment_intent`, an id or null).
#[derive(Debug, Deserialize)]
struct EventObject {
    id: Option<String>,
    payment_intent: Option<serde_json::Value>,
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
    // The hosted page is the customer's: in their language.
    let lang = req.lead.lang;
    put(
        &format!("{item}[product_data][name]"),
        req.offer.title.get(lang).to_owned(),
    );
    let description = req.offer.description.get(lang).trim();
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

/// What an event type asks us to read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// `checkout.session.*`: the session in `data.object`.
    Session,
    /// A refund or dispute event: the payment of the object's `payment_intent`.
    Payment,
}

/// On 2023-08-16 `refund.*` fire only for refunds without a charge (never ours), so card
/// refunds reach us as `charge.refunded` (a charge) and `charge.refund.updated` (a refund).
fn cue(kind: &str) -> Option<Cue> {
    match kind {
        k if k.starts_with("checkout.session.") => Some(Cue::Session),
        "charge.refunded"
        | "charge.refund.updated"
        | "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => Some(Cue::Payment),
        _ => None,
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

/// The session's own status; the money after approval is added by `observe`. The session
/// id is both the payment id we keep and the checkout settle compares with the attempt's.
fn session_observation(s: &Session) -> Option<Observation> {
    let Some(status) = session_status(s) else {
        tracing::warn!(session = %s.id, status = ?s.status, "Stripe session in a status we do not know");
        return None;
    };
    Some(Observation {
        charged: charged(s),
        reference: s.client_reference_id.clone(),
        checkout_ref: Some(s.id.clone()),
        after_sale: None,
        method: None,
        gateway_ref: Some(s.id.clone()),
        status,
        detail: Some(status_words(s)),
    })
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
    let Some(cue) = cue(&ev.kind) else {
        return Ok(irrelevant(ev.id));
    };
    let data = ev
        .data
        .ok_or_else(|| malformed(format!("{} event without data", ev.kind)))?;
    let object: EventObject = serde_json::from_value(data.object).map_err(malformed)?;
    let gateway_ref = match cue {
        // Never the status in the body: it is a copy from when the event was made, and
        // the session as it is now is one read away.
        Cue::Session => object
            .id
            .filter(|id| plausible_id(id))
            .ok_or_else(|| malformed(format!("{} event without a session id", ev.kind)))?,
        Cue::Payment => match object.payment_intent {
            Some(serde_json::Value::String(pi)) if plausible_id(&pi) => pi,
            Some(serde_json::Value::Null) | None => {
                // A charge made outside a PaymentIntent (the legacy Charges API) was never
                // a Checkout payment, so it cannot be an attempt of ours.
                tracing::info!(event = %ev.id, kind = %ev.kind, object = ?object.id, "Stripe event for an object without a PaymentIntent; not ours");
                return Ok(irrelevant(ev.id));
            }
            Some(other) => return Err(malformed(format!("{} event with payment_intent {other}", ev.kind))),
        },
    };
    Ok(GatewayEvent {
        event_id: ev.id,
        facts: EventFacts::Changed { gateway_ref },
    })
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

    /// A session by its id (`cs_…`), or the session a PaymentIntent (`pi_…`, from a refund
    /// or dispute event) was paid through, so the attempt id and the checkout are checked
    /// the same way whichever event led here.
    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        if !plausible_id(gateway_ref) {
            return Ok(None);
        }
        let session = if gateway_ref.starts_with("pi_") {
            match self.session_of_intent(gateway_ref).await? {
                Some(s) => s,
                None => {
                    tracing::warn!(
                        payment_intent = gateway_ref,
                        "no Stripe Checkout Session has this PaymentIntent"
                    );
                    return Ok(None);
                }
            }
        } else {
            self.get_session(gateway_ref).await?
        };
        self.observe(session).await
    }

    fn can_expire(&self) -> bool {
        true
    }

    /// Expires the attempt's session so it cannot take a second payment for one purchase.
    /// Stripe only expires an `open` session and answers 400 for a complete or expired one
    /// (its message wording varies, so it is not read): on any refusal the session is read
    /// again, and a customer who paid meanwhile comes back as a payment.
    async fn expire_checkout(&self, attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        let Some(id) = attempt
            .after
            .checkout_ref
            .as_deref()
            .or(attempt.gateway_ref.as_deref())
            .filter(|id| plausible_id(id))
        else {
            return Ok(None);
        };
        let url = endpoint(&self.settings.api_base, &["v1", "checkout", "sessions", id, "expire"])?;
        let call = self
            .request(Method::POST, url)
            .header("Idempotency-Key", format!("leadgate-expire-{id}"));
        let session = match send_json::<Session>(VENDOR, call).await {
            Ok(s) => s,
            Err(GatewayError::Rejected(e)) => {
                tracing::info!(session = id, error = %e, "Stripe did not expire the session; reading it back");
                self.get_session(id).await?
            }
            Err(e) => return Err(e),
        };
        self.observe(session).await
    }
}

#[cfg(test)]
mod tests;
