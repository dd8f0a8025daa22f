//! Wompi (Colombia). The Web Checkout link is built and signed here (no API call); events
//! carry a SHA-256 checksum over the properties each event lists; the transactions API
//! gives the truth: by id (public) and by our reference (private key).

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::http::send_json;
use super::{
    decisive, query_param, Charged, Checkout, CheckoutRequest, EventFacts, Gateway, GatewayError, GatewayEvent,
    Observation, Verified, WebhookError, WebhookRequest,
};
use crate::config::{Environment, WompiSettings};
use crate::domain::edge::{truncate_chars, GATEWAY_REF_MAX_CHARS, STATUS_DETAIL_MAX_CHARS};
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::reversal::Report;
use crate::domain::PaymentStatus;

const VENDOR: &str = "Wompi";
/// Carries the same checksum as the body's `signature.checksum`.
pub const CHECKSUM_HEADER: &str = "X-Event-Checksum";
const TRANSACTION_UPDATED: &str = "transaction.updated";
/// The legal-id types Web Checkout accepts; anything else goes as OTHER.
const LEGAL_ID_TYPES: [&str; 8] = ["CC", "CE", "NIT", "PP", "TI", "DNI", "RG", "OTHER"];
/// What an `Observed` fact rests on. Fields outside the signed list can be altered at will,
/// and signed values are concatenated without separators (a re-cut list can keep the sum),
/// so unless all four are listed the transaction is read from the API instead. Wompi's
/// usual list leaves out the reference, so in practice every event is re-read: a signed
/// approval can then never be pinned on another attempt of the same amount.
const MUST_BE_SIGNED: [&str; 4] = [
    "transaction.id",
    "transaction.status",
    "transaction.amount_in_cents",
    "transaction.reference",
];

pub struct WompiGateway {
    settings: WompiSettings,
    http: reqwest::Client,
}

/// `{"data": ...}`, the envelope of every transactions API answer.
#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

/// A transaction as the API and `transaction.updated` events show it.
#[derive(Deserialize)]
struct Transaction {
    id: String,
    status: String,
    reference: Option<String>,
    status_message: Option<String>,
    amount_in_cents: Option<i64>,
    currency: Option<String>,
    /// ISO 8601; orders several transactions of one reference.
    created_at: Option<String>,
    /// `CARD`, `PSE`, `NEQUI`, `BANCOLOMBIA_TRANSFER`…
    payment_method_type: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    data: Value,
    environment: Option<String>,
    signature: Option<EventSignature>,
    /// Unix seconds, part of the checksum. An integer on purpose: text would allow leading
    /// zeros, which could shift digits between it and the last signed value.
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
struct EventSignature {
    properties: Option<Vec<String>>,
    checksum: Option<String>,
}

impl WompiGateway {
    pub fn new(settings: WompiSettings, http: reqwest::Client) -> Self {
        Self { settings, http }
    }

    /// The prefilled, signed Web Checkout URL.
    fn checkout_url(&self, req: &CheckoutRequest<'_>) -> Result<Url, GatewayError> {
        let reference = req.attempt.id.as_str();
        let amount = req.attempt.amount.amount_minor().to_string();
        let currency = req.attempt.amount.currency().as_str();
        let expires = expiration_time(req.expires_at).ok_or_else(|| {
            GatewayError::Rejected(format!("expiry {} ms is not a representable time", req.expires_at))
        })?;
        let secret = self.settings.integrity_secret.expose_secret();
        // Signed from the very strings that go into the URL, so they cannot drift apart.
        let signature = integrity_signature(reference, &amount, currency, Some(&expires), secret);
        let mut url = self.settings.checkout_url.clone();
        url.query_pairs_mut()
            .append_pair("public-key", &self.settings.public_key)
            .append_pair("currency", currency)
            .append_pair("amount-in-cents", &amount)
            .append_pair("reference", reference)
            .append_pair("signature:integrity", &signature)
            .append_pair("redirect-url", &req.return_url)
            .append_pair("expiration-time", &expires)
            .extend_pairs(customer_params(req));
        Ok(url)
    }

    /// `{api_base}/<segments>`, each segment percent-encoded (api_base may end in `/` or not).
    fn endpoint(&self, segments: &[&str]) -> Result<Url, GatewayError> {
        super::http::endpoint(VENDOR, &self.settings.api_base, segments)
    }

    /// One transaction by Wompi's id (a public read). Wompi itself gave us the id, so a
    /// 404 is a refusal (wrong `api_base` or environment), not "no payment"; None only for
    /// a string that cannot be an id.
    async fn transaction(&self, id: &str) -> Result<Option<Transaction>, GatewayError> {
        // Anything else cannot be a Wompi id, and "" or ".." would name another resource.
        if !plausible_id(id) {
            return Ok(None);
        }
        let req = self
            .http
            .get(self.endpoint(&["transactions", id])?)
            .timeout(self.settings.timeout);
        Ok(Some(send_json::<Data<Transaction>>(VENDOR, req).await?.data))
    }

    /// Every transaction Wompi holds for our reference (retries inside its checkout). A
    /// search answers `{"data": []}` when there is none; a 404 means we asked the wrong host.
    async fn transactions_for(&self, reference: &str) -> Result<Vec<Transaction>, GatewayError> {
        let mut url = self.endpoint(&["transactions"])?;
        url.query_pairs_mut().append_pair("reference", reference);
        let req = self
            .http
            .get(url)
            .bearer_auth(self.settings.private_key.expose_secret())
            .timeout(self.settings.timeout);
        Ok(send_json::<Data<Vec<Transaction>>>(VENDOR, req).await?.data)
    }

    /// The transaction the return redirect names (`?id=`), if it really is this attempt's.
    async fn observe_return_hint(&self, attempt: &Attempt, query: &str) -> Result<Option<Observation>, GatewayError> {
        let Some(id) = query_param(query, "id") else {
            return Ok(None);
        };
        // Once paid, another transaction the browser names does not speak for the attempt.
        if paid_by(attempt).is_some_and(|p| p != id) {
            return Ok(None);
        }
        match self.transaction(&id).await {
            Ok(Some(tx)) if tx.reference.as_deref() == Some(attempt.id.as_str()) => Ok(tx.into_observation()),
            Ok(Some(_)) => {
                tracing::warn!(attempt_id = %attempt.id, "Wompi return names a transaction of another reference");
                Ok(None)
            }
            Ok(None) => Ok(None),
            // The hint comes from the browser: Wompi refusing it must not hide the search.
            Err(GatewayError::Rejected(e)) => {
                tracing::warn!(attempt_id = %attempt.id, error = %e, "Wompi refused the return's transaction id");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The transaction that decides the attempt. Once paid, the one that paid it: the API
    /// shows each transaction once, in its current status, so a void after approval is
    /// read here as that transaction's VOIDED (approved, voided). Without this, `decisive`
    /// would take the oldest approved-or-voided one, which is the same transaction unless
    /// the customer paid twice under one reference; then the second payment's fate must
    /// not be pinned on the attempt the first one paid.
    async fn by_reference(&self, attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        let reference = attempt.id.as_str();
        let mut txs = self.transactions_for(reference).await?;
        // Only exact matches are ours, whatever the search considers a match.
        txs.retain(|t| t.reference.as_deref() == Some(reference));
        sort_oldest_first(&mut txs);
        let mut seen: Vec<Observation> = txs.into_iter().filter_map(Transaction::into_observation).collect();
        if let Some(i) = paid_by(attempt).and_then(|id| seen.iter().position(|o| o.gateway_ref.as_deref() == Some(id)))
        {
            return Ok(Some(seen.swap_remove(i)));
        }
        Ok(decisive(seen))
    }

    /// Wompi's environments never share data, so a mismatch means a dashboard misconfiguration.
    fn note_environment(&self, claimed: Option<&str>) {
        let expected = match self.settings.environment {
            Environment::Sandbox => "test",
            Environment::Production => "prod",
        };
        if let Some(claimed) = claimed.filter(|c| *c != expected) {
            tracing::warn!(claimed = ?claimed, expected, "Wompi event from another environment than the configured one");
        }
    }
}

impl Transaction {
    /// Our view of it; None for a status we do not know (better unknown than guessed).
    fn into_observation(self) -> Option<Observation> {
        let status = map_status(&self.status)?;
        let charged = match (self.amount_in_cents, self.currency) {
            (Some(amount_minor), Some(currency)) => Some(Charged { amount_minor, currency }),
            _ => None,
        };
        // Only an authorised card payment can be voided: it was approved, then annulled,
        // and nothing was collected (docs.wompi.co, "métodos de pago"). VOIDED is the only
        // reversal Wompi shows us: it documents no refund or chargeback event or field
        // [unconfirmed whether a refund changes the transaction at all], so refunds and
        // chargebacks seen in the dashboard must be marked by hand (a future admin action).
        let after_sale = (self.status == "VOIDED").then(|| Report {
            voided: true,
            ..Report::default()
        });
        Some(Observation {
            checkout_ref: None,
            after_sale,
            method: self.payment_method_type.map(|m| m.to_ascii_lowercase()),
            detail: Some(detail(&self.status, self.status_message.as_deref())),
            reference: self.reference,
            gateway_ref: Some(self.id),
            status,
            charged,
        })
    }
}

/// The transaction that paid the attempt, once it is paid.
fn paid_by(attempt: &Attempt) -> Option<&str> {
    attempt.gateway_ref.as_deref().filter(|_| attempt.status.is_paid())
}

fn map_status(s: &str) -> Option<PaymentStatus> {
    match s {
        "PENDING" => Some(PaymentStatus::Pending),
        "APPROVED" => Some(PaymentStatus::Approved),
        // ERROR is a failure outside Wompi while authorizing: unpaid all the same.
        "DECLINED" | "ERROR" => Some(PaymentStatus::Declined),
        "VOIDED" => Some(PaymentStatus::Approved),
        _ => None,
    }
}

fn detail(status: &str, message: Option<&str>) -> String {
    let text = match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!("{status}: {m}"),
        None => status.to_owned(),
    };
    truncate_chars(&text, STATUS_DETAIL_MAX_CHARS).to_owned()
}

/// Wompi transaction ids look like `1234-1610641025-49201`.
fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= GATEWAY_REF_MAX_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Oldest first, as `decisive` expects; undated ones count as oldest.
fn sort_oldest_first(txs: &mut [Transaction]) {
    txs.sort_by_key(|t| {
        t.created_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    });
}

/// `expiration-time`: ISO 8601 UTC with milliseconds, e.g. `2023-06-09T20:28:50.000Z`.
fn expiration_time(unix_ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(unix_ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// `signature:integrity`: lowercase hex SHA-256 (not an HMAC) of reference, amount in cents,
/// currency, the expiration time when one is sent, and the integrity secret, unseparated.
fn integrity_signature(
    reference: &str,
    amount_in_cents: &str,
    currency: &str,
    expires: Option<&str>,
    secret: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [reference, amount_in_cents, currency, expires.unwrap_or(""), secret] {
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Customer fields that prefill the checkout; pairs go together or not at all.
fn customer_params(req: &CheckoutRequest<'_>) -> Vec<(&'static str, String)> {
    let c = &req.lead.contact;
    let mut params = vec![
        ("customer-data:email", c.email.as_str().to_owned()),
        ("customer-data:full-name", c.name.as_str().to_owned()),
    ];
    // Country code 0 means a stored number that no longer parses: send no phone then.
    let (code, national) = (c.phone.country_code(), c.phone.national_number());
    if code != 0 && !national.is_empty() {
        params.push(("customer-data:phone-number", national));
        params.push(("customer-data:phone-number-prefix", format!("+{code}")));
    }
    if let Some(tax_id) = &c.tax_id {
        params.push(("customer-data:legal-id", tax_id.as_str().to_owned()));
        params.push((
            "customer-data:legal-id-type",
            legal_id_type(&req.offer.tax_id_type).to_owned(),
        ));
    }
    params
}

fn legal_id_type(configured: &str) -> &'static str {
    let wanted = configured.trim();
    LEGAL_ID_TYPES
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(wanted))
        .unwrap_or("OTHER")
}

fn read_event(body: &[u8]) -> Result<Event, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))
}

/// `signature.checksum`: SHA-256 hex of the listed `data` values in their order, then the
/// timestamp, then the events secret.
fn event_checksum(data: &Value, properties: &[String], timestamp: i64, secret: &str) -> Result<String, WebhookError> {
    let mut h = Sha256::new();
    for property in properties {
        h.update(signed_value(data, property)?.as_bytes());
    }
    h.update(timestamp.to_string().as_bytes());
    h.update(secret.as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// The text of the value at a dotted path under `data`, as Wompi concatenates it.
fn signed_value(data: &Value, property: &str) -> Result<String, WebhookError> {
    let missing = || {
        let name: String = property.chars().take(64).collect();
        WebhookError::Malformed(format!("signed property {name:?} is not a value of the event"))
    };
    match property
        .split('.')
        .try_fold(data, |v, key| v.get(key))
        .ok_or_else(missing)?
    {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) | Value::Object(_) => Err(missing()),
    }
}

/// Constant time over the lowercase hex; the docs print uppercase, libraries lowercase.
fn same_digest(expected_lowercase: &str, given: &str) -> bool {
    let given = given.trim().to_ascii_lowercase();
    expected_lowercase.as_bytes().ct_eq(given.as_bytes()).into()
}

fn signs_core_fields(event: &Event) -> bool {
    let listed = event
        .signature
        .as_ref()
        .and_then(|s| s.properties.as_deref())
        .unwrap_or_default();
    MUST_BE_SIGNED.iter().all(|p| listed.iter().any(|l| l == p))
}

fn event_transaction(event: &Event) -> Result<Transaction, WebhookError> {
    let raw = event
        .data
        .get("transaction")
        .ok_or_else(|| WebhookError::Malformed("transaction.updated without a transaction".into()))?;
    let tx = Transaction::deserialize(raw).map_err(|e| WebhookError::Malformed(format!("transaction: {e}")))?;
    if tx.id.is_empty() {
        return Err(WebhookError::Malformed("transaction without an id".into()));
    }
    Ok(tx)
}

/// Dedup key of events that carry no transaction: the signed delivery itself.
fn other_event_id(event: &Event, body: &[u8]) -> String {
    let checksum = event
        .signature
        .as_ref()
        .and_then(|s| s.checksum.as_deref())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| hex::encode(Sha256::digest(body)));
    let timestamp = event.timestamp.map(|t| t.to_string()).unwrap_or_default();
    format!("{}:{timestamp}:{checksum}", event.event)
}

#[async_trait]
impl Gateway for WompiGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Wompi
    }

    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        Ok(Checkout {
            url: self.checkout_url(req)?.into(),
            gateway_ref: None,
        })
    }

    /// The checksum covers the fields the event id is read from, so that id is the key.
    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError> {
        let event = read_event(req.body)?;
        let signature = event.signature.as_ref().ok_or(WebhookError::MissingSignature)?;
        let properties = signature.properties.as_deref().ok_or(WebhookError::MissingSignature)?;
        // The body's copy and, when sent, the header's: every one present must match.
        let given: Vec<&str> = signature
            .checksum
            .as_deref()
            .into_iter()
            .chain(req.headers.get(CHECKSUM_HEADER))
            .collect();
        if given.is_empty() {
            return Err(WebhookError::MissingSignature);
        }
        let timestamp = event
            .timestamp
            .ok_or_else(|| WebhookError::Malformed("event without a timestamp".into()))?;
        let secret = self.settings.events_secret.expose_secret();
        let expected = event_checksum(&event.data, properties, timestamp, secret)?;
        if !given.iter().all(|g| same_digest(&expected, g)) {
            return Err(WebhookError::BadSignature);
        }
        // No timestamp window: Wompi retries up to 24 h later, and a replay only repeats a
        // fact Wompi signed, which the inbox deduplicates by event id.
        self.note_environment(event.environment.as_deref());
        Ok(Verified::default())
    }

    fn parse_event(&self, _query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        let event = read_event(body)?;
        if event.event != TRANSACTION_UPDATED {
            return Ok(GatewayEvent {
                event_id: other_event_id(&event, body),
                facts: EventFacts::Irrelevant,
            });
        }
        let tx = event_transaction(&event)?;
        // A retry of the same change dedupes; a new status of the transaction does not.
        let event_id = format!("{}:{}", tx.id, tx.status);
        let facts = if signs_core_fields(&event) {
            tx.into_observation()
                .map_or(EventFacts::Irrelevant, EventFacts::Observed)
        } else {
            EventFacts::Changed { gateway_ref: tx.id }
        };
        Ok(GatewayEvent { event_id, facts })
    }

    async fn fetch_status(&self, attempt: &Attempt, return_query: &str) -> Result<Option<Observation>, GatewayError> {
        if let Some(seen) = self.observe_return_hint(attempt, return_query).await? {
            return Ok(Some(seen));
        }
        self.by_reference(attempt).await
    }

    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        Ok(self
            .transaction(gateway_ref)
            .await?
            .and_then(Transaction::into_observation))
    }
}

#[cfg(test)]
mod tests;
