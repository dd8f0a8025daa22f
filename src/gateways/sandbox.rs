//! leadgate's own test gateway. It behaves like a hosted checkout: it keeps its own
//! ledger, shows a page with the prefilled data, and reports the outcome through a
//! signed webhook sent over real HTTP, so the whole flow runs with no vendor account.
//! Signature: `Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256(key, "<t>.<raw body>")>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};

use super::signature::TimedSignature;
use super::{
    Charged, Checkout, CheckoutRequest, EventFacts, Gateway, GatewayError, GatewayEvent, Observation, Verified,
    WebhookError, WebhookRequest,
};
use crate::domain::edge::MintedId;
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::{signing, PaymentStatus};
use crate::store::sandbox::{self as ledger, SandboxPayment};
use crate::store::{Db, StoreError, Tx};

pub const SIGNATURE_HEADER: &str = "Sandbox-Signature";
const TOLERANCE_SECS: i64 = 300;
const PAYMENT_ID_PREFIX: &str = "sbx_";

pub struct SandboxGateway {
    db: Db,
    signer: Arc<Signer>,
    public_url: String,
    http: reqwest::Client,
}

/// What the customer pressed on the sandbox page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approve,
    Decline,
    Abandon,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("no such sandbox payment")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Serialize, Deserialize)]
struct EventData {
    payment_id: String,
    reference: String,
    status: String,
}

impl SandboxGateway {
    pub fn new(db: Db, key: SecretSlice<u8>, public_url: &str, http: reqwest::Client) -> Self {
        Self {
            db,
            signer: Arc::new(Signer(key)),
            public_url: public_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub async fn payment(&self, id: &str) -> Result<SandboxPayment, SandboxError> {
        ledger::get(&self.db, id).await?.ok_or(SandboxError::NotFound)
    }

    /// Records the customer's choice and returns where to send their browser. Approve and
    /// decline send the signed webhook before answering, as a real gateway would.
    pub async fn complete(&self, id: &str, outcome: Outcome) -> Result<String, SandboxError> {
        let payment = self.payment(id).await?;
        // Walking away closes the sandbox checkout, as a hosted checkout's expiry would,
        // so the attempt counts as abandoned at once; the customer goes back to resume.
        let (to, back) = match outcome {
            Outcome::Abandon => ("EXPIRED", &payment.cancel_url),
            Outcome::Approve => ("APPROVED", &payment.redirect_url),
            Outcome::Decline => ("DECLINED", &payment.redirect_url),
        };
        if ledger::transition(&self.db, id, "CREATED", to).await? {
            self.deliver(&payment, to).await;
        }
        Ok(back.clone())
    }

    /// Signature header value for `body` at `unix` time.
    pub fn sign(&self, body: &[u8], unix: i64) -> String {
        self.signer.sign(body, unix)
    }

    async fn deliver(&self, payment: &SandboxPayment, status: &str) {
        let event = Event {
            id: format!("evt_{}", crate::clock::new_id()),
            kind: "payment.updated".into(),
            created: crate::clock::now_ms() / 1000,
            data: EventData {
                payment_id: payment.id.clone(),
                reference: payment.reference.clone(),
                status: status.into(),
            },
        };
        let Ok(body) = serde_json::to_vec(&event) else { return };
        if post_signed(&self.http, &payment.webhook_url, &body, &self.signer).await {
            return;
        }
        // Like a real gateway, keep retrying in the background with growing gaps.
        let (http, url, signer) = (self.http.clone(), payment.webhook_url.clone(), self.signer.clone());
        tokio::spawn(async move {
            for delay in [2u64, 8, 30, 120] {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                if post_signed(&http, &url, &body, &signer).await {
                    return;
                }
            }
            tracing::warn!(%url, "sandbox gave up delivering a webhook");
        });
    }
}

impl SandboxGateway {
    /// [`Gateway::create_checkout`] in the caller's transaction: the sandbox keeps its
    /// ledger in our database, so its payment can commit with the attempt's redirect.
    pub async fn create_checkout_in(&self, tx: &mut Tx, req: &CheckoutRequest<'_>) -> Result<Checkout, StoreError> {
        let p = ledger::create_in(tx, &payment_for(req)).await?;
        Ok(self.checkout_of(p))
    }

    fn checkout_of(&self, p: SandboxPayment) -> Checkout {
        Checkout {
            url: format!("{}/sandbox/pay/{}", self.public_url, p.id),
            gateway_ref: Some(p.id),
        }
    }
}

/// The payment a checkout request asks the sandbox for.
fn payment_for(req: &CheckoutRequest<'_>) -> SandboxPayment {
    let now = crate::clock::now_ms();
    let c = &req.lead.contact;
    SandboxPayment {
        id: format!("{PAYMENT_ID_PREFIX}{}", crate::clock::new_id()),
        reference: req.attempt.id.clone(),
        description: req.offer.title.get(req.lead.lang).into(),
        amount_minor: req.attempt.amount.amount_minor(),
        currency: req.attempt.amount.currency().as_str().into(),
        customer_name: c.name.as_str().into(),
        customer_email: c.email.as_str().into(),
        customer_phone: c.phone.as_str().into(),
        lang: req.lead.lang.code().into(),
        redirect_url: req.return_url.clone(),
        cancel_url: req.cancel_url.clone(),
        webhook_url: req.webhook_url.clone(),
        status: "CREATED".into(),
        created_at: now,
        updated_at: now,
    }
}

/// A sandbox payment's id as a browser brings it back: `sbx_` and an id we minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentId(String);

impl PaymentId {
    pub fn parse(text: &str) -> Option<PaymentId> {
        let minted = text.strip_prefix(PAYMENT_ID_PREFIX).and_then(MintedId::parse)?;
        Some(PaymentId(format!("{PAYMENT_ID_PREFIX}{}", minted.as_str())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// HMAC-SHA256 over `"<t>.<body>"` with the sandbox key.
struct Signer(SecretSlice<u8>);

impl Signer {
    fn sign(&self, body: &[u8], unix: i64) -> String {
        let t = unix.to_string();
        let tag = signing::tag(self.0.expose_secret(), &[t.as_bytes(), b".", body]);
        format!("t={t},v1={}", hex::encode(tag))
    }

    fn signed(&self, sig: &TimedSignature<'_>, body: &[u8]) -> bool {
        sig.signed_with(self.0.expose_secret(), &[sig.ts.as_bytes(), b".", body])
    }
}

async fn post_signed(http: &reqwest::Client, url: &str, body: &[u8], signer: &Signer) -> bool {
    let header = signer.sign(body, crate::clock::now_ms() / 1000);
    let sent = http
        .post(url)
        .header(SIGNATURE_HEADER, header)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "sandbox webhook refused");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "sandbox webhook not delivered");
            false
        }
    }
}

fn map_status(s: &str) -> Option<PaymentStatus> {
    match s {
        "CREATED" => Some(PaymentStatus::Redirected),
        "PENDING" => Some(PaymentStatus::Pending),
        "APPROVED" => Some(PaymentStatus::Approved),
        "DECLINED" => Some(PaymentStatus::Declined),
        "EXPIRED" => Some(PaymentStatus::Expired),
        _ => None,
    }
}

#[async_trait]
impl Gateway for SandboxGateway {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Sandbox
    }

    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError> {
        let p = ledger::create(&self.db, &payment_for(req)).await?;
        Ok(self.checkout_of(p))
    }

    /// The whole body is signed, so the event's own id is the inbox key.
    fn verify_webhook(&self, req: &WebhookRequest<'_>) -> Result<Verified, WebhookError> {
        let header = req
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(WebhookError::MissingSignature)?;
        let sig = TimedSignature::parse(header, "t").ok_or(WebhookError::BadSignature)?;
        if !self.signer.signed(&sig, req.body) {
            return Err(WebhookError::BadSignature);
        }
        if (crate::clock::now_ms() / 1000 - sig.unix).abs() > TOLERANCE_SECS {
            return Err(WebhookError::Stale);
        }
        Ok(Verified::default())
    }

    fn parse_event(&self, _query: &str, body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        let ev: Event = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let facts = match map_status(&ev.data.status) {
            Some(status) => EventFacts::Observed(Observation {
                checkout_ref: None,
                after_sale: None,
                method: None,
                status,
                detail: Some(ev.data.status),
                reference: Some(ev.data.reference),
                gateway_ref: Some(ev.data.payment_id),
                charged: None,
            }),
            None => EventFacts::Irrelevant,
        };
        Ok(GatewayEvent { event_id: ev.id, facts })
    }

    /// By the payment we created when the attempt has one (missing, that is a refusal
    /// like a vendor's 404), else by our reference (missing: no payment).
    async fn fetch_status(&self, attempt: &Attempt, _return_query: &str) -> Result<Option<Observation>, GatewayError> {
        if let Some(id) = attempt.gateway_ref.as_deref() {
            return self.lookup(id).await;
        }
        let found = ledger::by_reference(&self.db, &attempt.id)
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        Ok(found.and_then(observation))
    }

    async fn lookup(&self, gateway_ref: &str) -> Result<Option<Observation>, GatewayError> {
        let found = ledger::get(&self.db, gateway_ref)
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?
            .ok_or_else(|| GatewayError::Rejected(format!("sandbox has no payment {gateway_ref}")))?;
        Ok(observation(found))
    }
}

fn observation(p: SandboxPayment) -> Option<Observation> {
    map_status(&p.status).map(|status| Observation {
        checkout_ref: None,
        after_sale: None,
        method: None,
        status,
        reference: Some(p.reference),
        gateway_ref: Some(p.id),
        detail: Some(p.status),
        charged: Some(Charged {
            amount_minor: p.amount_minor,
            currency: p.currency,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};
    use crate::gateways::fixtures;

    async fn gateway() -> (SandboxGateway, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let key = SecretSlice::from(vec![7u8; 32]);
        (
            SandboxGateway::new(db, key, "http://127.0.0.1:1", reqwest::Client::new()),
            dir,
        )
    }

    fn attempt(gateway_ref: Option<&str>) -> Attempt {
        let mut a = fixtures::attempt(
            "att_1",
            GatewayKind::Sandbox,
            Money::new(1000, Currency::COP).unwrap(),
            0,
        );
        a.gateway_ref = gateway_ref.map(str::to_owned);
        a
    }

    #[tokio::test]
    async fn our_payment_missing_from_the_ledger_is_an_error_not_no_payment() {
        let (gw, _dir) = gateway().await;
        let err = gw.fetch_status(&attempt(Some("sbx_gone")), "").await.unwrap_err();
        assert!(matches!(err, GatewayError::Rejected(_)), "{err}");
        assert!(matches!(gw.lookup("sbx_gone").await, Err(GatewayError::Rejected(_))));
    }

    #[tokio::test]
    async fn no_checkout_and_nothing_under_our_reference_is_no_payment() {
        let (gw, _dir) = gateway().await;
        assert_eq!(gw.fetch_status(&attempt(None), "").await.unwrap(), None);
    }

    #[tokio::test]
    async fn our_payment_is_read_by_its_id() {
        let (gw, _dir) = gateway().await;
        let (l, o) = (
            fixtures::lead(None, 0),
            fixtures::offer("curso", GatewayKind::Sandbox, Money::new(1000, Currency::COP).unwrap()),
        );
        let a = attempt(None);
        let req = CheckoutRequest {
            attempt: &a,
            offer: &o,
            lead: &l,
            return_url: "http://127.0.0.1:1/return/sandbox?attempt=att_1".into(),
            cancel_url: "http://127.0.0.1:1/c/curso".into(),
            webhook_url: "http://127.0.0.1:1/webhooks/sandbox".into(),
            expires_at: 0,
        };
        let checkout = gw.create_checkout(&req).await.unwrap();
        let seen = gw
            .fetch_status(&attempt(checkout.gateway_ref.as_deref()), "")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.status, PaymentStatus::Redirected);
        assert_eq!(seen.reference.as_deref(), Some("att_1"));
        assert_eq!(seen.gateway_ref, checkout.gateway_ref);
    }
}
