//! Payment gateway adapters: build a prefilled hosted checkout, verify and parse signed
//! webhooks, and report an attempt's true status from the gateway's own records.
//! Vendor JSON never leaves its adapter: everything here is in our own vocabulary.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::edge::{self, storable, truncate_chars};
use crate::domain::lead::{Attempt, Lead};
use crate::domain::offer::{GatewayKind, Offer};
use crate::domain::reversal::{Dispute, Report};
use crate::domain::{Money, PaymentStatus};

#[cfg(test)]
mod fixtures;
pub mod http;
pub mod mercadopago;
pub mod sandbox;
pub mod signature;
pub mod stripe;
pub mod wompi;

pub struct CheckoutRequest<'a> {
    pub attempt: &'a Attempt,
    pub offer: &'a Offer,
    pub lead: &'a Lead,
    /// Where the gateway sends the browser after payment (carries our attempt id).
    pub return_url: String,
    /// Where the gateway sends the browser when the customer gives up.
    pub cancel_url: String,
    pub webhook_url: String,
    /// When the hosted checkout should stop accepting payment (unix milliseconds).
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct Checkout {
    pub url: String,
    pub gateway_ref: Option<String>,
}

/// What a gateway says about one payment, from an API read or a signed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Our attempt id as the gateway echoes it back.
    pub reference: Option<String>,
    /// The gateway's own id for the payment (transaction, session, payment).
    pub gateway_ref: Option<String>,
    pub status: PaymentStatus,
    /// The gateway's own status words, kept for operators.
    pub detail: Option<String>,
    /// What the gateway charged, when it says; checked against the attempt before a win.
    pub charged: Option<Charged>,
    /// The hosted checkout the payment went through (Stripe session), when the gateway
    /// says: a payment made through another attempt's checkout is never this one's.
    pub checkout_ref: Option<String>,
    /// What became of the money after approval (refunds, void, dispute), read back from
    /// the gateway; None when it says nothing about it. Only for an approved payment.
    pub after_sale: Option<Report>,
    /// How the customer paid, in the gateway's words (`card`, `pse`, `nequi`, `pix`…).
    pub method: Option<String>,
}

impl Observation {
    /// A report with only a status: the common case, and the base for the rest.
    pub fn status(reference: Option<String>, gateway_ref: Option<String>, status: PaymentStatus) -> Self {
        Observation {
            reference,
            gateway_ref,
            status,
            detail: None,
            charged: None,
            checkout_ref: None,
            after_sale: None,
            method: None,
        }
    }
}

/// An amount as the gateway reports it: minor units and an ISO currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub amount_minor: i64,
    pub currency: String,
}

impl Charged {
    pub fn matches(&self, expected: &Money) -> bool {
        self.amount_minor == expected.amount_minor() && self.currency.eq_ignore_ascii_case(expected.currency().as_str())
    }
}

/// What a verified webhook tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
// One per delivery, read and dropped at once: a box would buy nothing but noise.
#[allow(clippy::large_enum_variant)]
pub enum EventFacts {
    /// The event itself (signed) carries the payment's status.
    Observed(Observation),
    /// The event only says that the payment with this gateway id changed: ask the gateway.
    Changed { gateway_ref: String },
    /// An event type that says nothing about a payment.
    Irrelevant,
}

/// A verified webhook, mapped onto our vocabulary.
#[derive(Debug, Clone)]
pub struct GatewayEvent {
    /// Deduplication key: the same key twice is the same delivery. Only the inbox key when
    /// the signature covers what it is read from; otherwise `Verified::event_id` is.
    pub event_id: String,
    pub facts: EventFacts,
}

impl GatewayEvent {
    pub fn reference(&self) -> Option<&str> {
        match &self.facts {
            EventFacts::Observed(o) => o.reference.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<PaymentStatus> {
        match &self.facts {
            EventFacts::Observed(o) => Some(o.status),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Worth retrying: timeouts, connection errors, 429 and 5xx.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway refused what we sent (4xx); retrying the same request will not help.
    #[error("gateway refused the request: {0}")]
    Rejected(String),
    /// Our own database failed where the gateway keeps state with us (the sandbox).
    #[error("database error: {0}")]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing signature")]
    MissingSignature,
    #[error("signature does not match")]
    BadSignature,
    #[error("signature timestamp outside the accepted window")]
    Stale,
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A field no real vendor makes this long (see `domain::edge`): not stored, not cut.
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
}

/// What a signature check proved about a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The inbox key, built only from what the signature covers, for a vendor that does not
    /// sign the body (Mercado Pago): a captured delivery replayed with other unsigned parts
    /// is then still the same event. `None`: `GatewayEvent::event_id` is signed and is it.
    pub event_id: Option<String>,
}

/// Request headers as the adapter sees them, free of any web framework's types.
#[derive(Debug, Default)]
pub struct WebhookHeaders(Vec<(String, String)>);

impl WebhookHeaders {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook delivery as received: some vendors sign the query string, not the body.
pub struct WebhookRequest<'a> {
    pub headers: &'a WebhookHeaders,
    /// The raw query string, without the `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The key that makes a retried checkout creation return the first one (Stripe,
/// Mercado Pago): one per attempt.
pub fn checkout_idempotency_key(attempt_id: &str) -> String {
    format!("leadgate-checkout-{attempt_id}")
}

/// First value of `name` in a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[async_trait]
pub trait Gateway: Send + Sync {
    fn kind(&self) -> GatewayKind;
    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError>;
    /// Checks the signature over the raw request; nothing in it is trusted before this.
    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError>;
    /// Reads a delivery whose signature was verified (now, or when it entered the inbox).
    fn parse_event(&self, query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError>;
    /// The gateway's own view of the attempt; None when it has no payment for it yet.
    /// `return_query` is the browser's return query string (a hint naming the gateway's
    /// payment id, never trusted as a status), or empty.
    async fn fetch_status(&self, attempt: &Attempt, return_query: &str) -> Result<Option<Observation>, GatewayError>;
    /// The gateway's record of one payment by its own id (after a `Changed` event).
    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError>;
    /// Whether `expire_checkout` does anything for this gateway.
    fn can_expire(&self) -> bool {
        false
    }
    /// Stops the attempt's hosted checkout from taking a payment, because a newer attempt
    /// of the same lead replaced it. Returns what the gateway then says about the attempt
    /// (a checkout paid meanwhile says so), or None when it says nothing.
    async fn expire_checkout(&self, _attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        Ok(None)
    }
}

#[derive(Clone, Default)]
pub struct Gateways(HashMap<GatewayKind, Arc<dyn Gateway>>);

impl Gateways {
    /// Every adapter is reached through `Vetted`, so no vendor string gets past this file
    /// unbounded or unstorable, whichever adapter it came from.
    pub fn insert(&mut self, g: Arc<dyn Gateway>) {
        self.0.insert(g.kind(), Arc::new(Vetted(g)));
    }

    pub fn get(&self, kind: GatewayKind) -> Option<&Arc<dyn Gateway>> {
        self.0.get(&kind)
    }
}

/// Of several payments the gateway holds for one reference (retries inside its checkout),
/// the one that decides: any approval wins, else the newest. Expects oldest first.
pub fn decisive(mut oldest_first: Vec<Observation>) -> Option<Observation> {
    match oldest_first.iter().position(|o| o.status == PaymentStatus::Approved) {
        Some(i) => Some(oldest_first.swap_remove(i)),
        None => oldest_first.pop(),
    }
}

// ---------------------------------------------------------------------------------------
// The one edge where vendor strings become ours.

/// Wraps an adapter and passes every answer through the caps and the text rules of
/// `domain::edge`: NUL made storable, status words cut on a char boundary, ids bounded.
/// Adapters translate the vendor's JSON; this decides what of it we are willing to keep.
struct Vetted(Arc<dyn Gateway>);

#[async_trait]
impl Gateway for Vetted {
    fn kind(&self) -> GatewayKind {
        self.0.kind()
    }

    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        vet_checkout(self.0.create_checkout(req).await?)
    }

    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError> {
        vet_verified(self.0.verify_webhook(req)?)
    }

    fn parse_event(&self, query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        vet_event(self.0.parse_event(query, body)?)
    }

    async fn fetch_status(&self, attempt: &Attempt, return_query: &str) -> Result<Option<Observation>, GatewayError> {
        Ok(self.0.fetch_status(attempt, return_query).await?.map(vet_observation))
    }

    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        Ok(self.0.lookup(gateway_ref).await?.map(vet_observation))
    }

    fn can_expire(&self) -> bool {
        self.0.can_expire()
    }

    async fn expire_checkout(&self, attempt: &Attempt) -> Result<Option<Observation>, GatewayError> {
        Ok(self.0.expire_checkout(attempt).await?.map(vet_observation))
    }
}

/// Storable, and at most `max` chars.
fn bounded(text: &str, max: usize) -> String {
    truncate_chars(&storable(text), max).to_owned()
}

/// Storable, or an error naming the field when it is over its cap: ids are never cut.
fn whole_id(text: &str, field: &'static str, max: usize) -> Result<String, WebhookError> {
    if edge::longer_than(text, max) {
        return Err(WebhookError::TooLong { field, max });
    }
    Ok(storable(text).into_owned())
}

/// A signed inbox key is kept whole, as any event id is.
fn vet_verified(v: Verified) -> Result<Verified, WebhookError> {
    let event_id = v
        .event_id
        .map(|id| whole_id(&id, "event id", edge::EVENT_ID_MAX_CHARS))
        .transpose()?;
    Ok(Verified { event_id })
}

/// A signed event's facts. Its key and the payment id it asks us to look up must be whole;
/// the rest is kept as far as it is storable, so a real event is never refused for it.
fn vet_event(ev: GatewayEvent) -> Result<GatewayEvent, WebhookError> {
    let event_id = whole_id(&ev.event_id, "event id", edge::EVENT_ID_MAX_CHARS)?;
    let facts = match ev.facts {
        EventFacts::Observed(o) => EventFacts::Observed(vet_observation(o)),
        EventFacts::Changed { gateway_ref } => EventFacts::Changed {
            gateway_ref: whole_id(&gateway_ref, "payment id", edge::GATEWAY_REF_MAX_CHARS)?,
        },
        EventFacts::Irrelevant => EventFacts::Irrelevant,
    };
    Ok(GatewayEvent { event_id, facts })
}

/// What a gateway says about a payment, made storable. A reference is cut rather than
/// dropped: cut, it still names no attempt of ours (ours are far shorter), while None would
/// read as "no reference" and skip the check that it is this attempt's.
fn vet_observation(o: Observation) -> Observation {
    let whole_ref = |r: String| {
        if edge::longer_than(&r, edge::GATEWAY_REF_MAX_CHARS) {
            tracing::warn!(chars = r.chars().count(), "gateway payment id over its cap; not kept");
            return None;
        }
        Some(storable(&r).into_owned())
    };
    let gateway_ref = o.gateway_ref.and_then(whole_ref);
    let words = |d: String| bounded(&d, edge::STATUS_DETAIL_MAX_CHARS);
    Observation {
        // Cut like a reference: a cut id still differs from the attempt's own.
        checkout_ref: o.checkout_ref.map(|r| bounded(&r, edge::GATEWAY_REF_MAX_CHARS)),
        after_sale: o.after_sale.map(|r| Report {
            refund_reason: r.refund_reason.map(words),
            dispute: r.dispute.map(|d| Dispute {
                reason: d.reason.map(words),
                ..d
            }),
            ..r
        }),
        method: o.method.map(|m| bounded(&m, edge::STATUS_DETAIL_MAX_CHARS)),
        reference: o.reference.map(|r| bounded(&r, edge::REFERENCE_MAX_CHARS)),
        gateway_ref,
        status: o.status,
        detail: o.detail.map(|d| bounded(&d, edge::STATUS_DETAIL_MAX_CHARS)),
        charged: o.charged.map(|c| Charged {
            amount_minor: c.amount_minor,
            // Only ever compared with ours: a cut one still fails the comparison.
            currency: bounded(&c.currency, edge::CURRENCY_MAX_CHARS),
        }),
    }
}

/// The hosted checkout we will store and send the browser to: whole and storable, or refused.
fn vet_checkout(c: Checkout) -> Result<Checkout, GatewayError> {
    let unusable = |what: &str| GatewayError::Rejected(format!("the gateway answered an unusable {what}"));
    if c.url.contains('\0') || edge::longer_than(&c.url, edge::CHECKOUT_URL_MAX_CHARS) {
        return Err(unusable("checkout url"));
    }
    match &c.gateway_ref {
        Some(r) if r.contains('\0') || edge::longer_than(r, edge::GATEWAY_REF_MAX_CHARS) => Err(unusable("payment id")),
        _ => Ok(c),
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    fn seen(reference: &str, gateway_ref: &str, detail: &str) -> Observation {
        Observation {
            reference: Some(reference.into()),
            gateway_ref: Some(gateway_ref.into()),
            status: PaymentStatus::Approved,
            detail: Some(detail.into()),
            charged: Some(Charged {
                amount_minor: 1,
                currency: "U\0SD".into(),
            }),
            checkout_ref: None,
            after_sale: None,
            method: None,
        }
    }

    #[test]
    fn every_vendor_string_comes_out_storable_and_bounded() {
        let long_detail = "á".repeat(edge::STATUS_DETAIL_MAX_CHARS + 50);
        let o = vet_observation(seen("ref\0", "pay\0", &long_detail));
        assert_eq!(o.reference.as_deref(), Some("ref\u{FFFD}"));
        assert_eq!(o.gateway_ref.as_deref(), Some("pay\u{FFFD}"));
        let detail = o.detail.unwrap_or_default();
        assert_eq!(detail.chars().count(), edge::STATUS_DETAIL_MAX_CHARS);
        assert!(detail.chars().all(|c| c == 'á'));
        assert_eq!(o.charged.map(|c| c.currency), Some("U\u{FFFD}SD".to_string()));
    }

    #[test]
    fn an_over_long_reference_is_cut_so_it_still_names_no_attempt_of_ours() {
        let ours = crate::clock::new_id();
        let theirs = format!("{ours}{}", "x".repeat(edge::REFERENCE_MAX_CHARS));
        let o = vet_observation(seen(&theirs, "pay_1", "APPROVED"));
        let cut = o.reference.unwrap_or_default();
        assert_eq!(cut.chars().count(), edge::REFERENCE_MAX_CHARS);
        assert_ne!(cut, ours);
    }

    #[test]
    fn an_over_long_payment_id_is_not_kept_from_a_read_and_refused_from_an_event() {
        let long = "9".repeat(edge::GATEWAY_REF_MAX_CHARS + 1);
        assert_eq!(vet_observation(seen("r", &long, "d")).gateway_ref, None);
        let changed = GatewayEvent {
            event_id: "evt_1".into(),
            facts: EventFacts::Changed { gateway_ref: long },
        };
        assert!(matches!(
            vet_event(changed),
            Err(WebhookError::TooLong {
                field: "payment id",
                ..
            })
        ));
    }

    #[test]
    fn event_ids_are_kept_whole_or_refused_never_cut() {
        let at_cap = GatewayEvent {
            event_id: "é".repeat(edge::EVENT_ID_MAX_CHARS),
            facts: EventFacts::Irrelevant,
        };
        assert_eq!(vet_event(at_cap.clone()).map(|e| e.event_id), Ok(at_cap.event_id));
        let over = GatewayEvent {
            event_id: "e".repeat(edge::EVENT_ID_MAX_CHARS + 1),
            facts: EventFacts::Irrelevant,
        };
        assert_eq!(
            vet_event(over).map(|e| e.event_id),
            Err(WebhookError::TooLong {
                field: "event id",
                max: edge::EVENT_ID_MAX_CHARS
            })
        );
        let nul = GatewayEvent {
            event_id: "evt_\0".into(),
            facts: EventFacts::Irrelevant,
        };
        assert_eq!(vet_event(nul).map(|e| e.event_id), Ok("evt_\u{FFFD}".to_string()));
    }

    #[test]
    fn a_checkout_we_could_not_store_or_redirect_to_is_refused() {
        let ok = Checkout {
            url: "https://pay.example/c/1".into(),
            gateway_ref: Some("cs_1".into()),
        };
        assert!(vet_checkout(ok.clone()).is_ok());
        let nul_url = Checkout {
            url: "https://pay.example/\0".into(),
            ..ok.clone()
        };
        assert!(vet_checkout(nul_url).is_err());
        let long_ref = Checkout {
            gateway_ref: Some("c".repeat(edge::GATEWAY_REF_MAX_CHARS + 1)),
            ..ok
        };
        assert!(vet_checkout(long_ref).is_err());
    }
}
