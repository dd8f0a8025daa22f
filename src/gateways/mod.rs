//! Payment gateway adapters: build a prefilled hosted checkout, verify and parse signed
//! webhooks, and report an attempt's true status from the gateway's own records.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::lead::{Attempt, Lead};
use crate::domain::offer::{GatewayKind, Offer};
use crate::domain::PaymentStatus;

pub mod sandbox;

pub struct CheckoutRequest<'a> {
    pub attempt: &'a Attempt,
    pub offer: &'a Offer,
    pub lead: &'a Lead,
    /// Where the gateway sends the browser after payment (carries our attempt id).
    pub return_url: String,
    /// Where the gateway sends the browser when the customer gives up.
    pub cancel_url: String,
    pub webhook_url: String,
}

#[derive(Debug, Clone)]
pub struct Checkout {
    pub url: String,
    pub gateway_ref: Option<String>,
}

/// A verified webhook, mapped onto our vocabulary.
#[derive(Debug, Clone)]
pub struct GatewayEvent {
    pub event_id: String,
    /// Our attempt id as the gateway echoes it back.
    pub reference: Option<String>,
    pub gateway_ref: Option<String>,
    /// None for event types that say nothing about a payment's status.
    pub status: Option<PaymentStatus>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GatewayStatus {
    pub status: PaymentStatus,
    pub gateway_ref: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    #[error("gateway refused the request: {0}")]
    Rejected(String),
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

#[async_trait]
pub trait Gateway: Send + Sync {
    fn kind(&self) -> GatewayKind;
    async fn create_checkout(&self, req: &CheckoutRequest<'_>) -> Result<Checkout, GatewayError>;
    /// Checks the signature over the raw body; nothing in the body is trusted before this.
    fn verify_signature(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<(), WebhookError>;
    /// Reads a body whose signature was verified (now or when it entered the inbox).
    fn parse_event(&self, body: &[u8]) -> Result<GatewayEvent, WebhookError>;
    /// The gateway's own view of the attempt; None when it has no record of it.
    async fn fetch_status(&self, attempt: &Attempt) -> Result<Option<GatewayStatus>, GatewayError>;
}

#[derive(Clone, Default)]
pub struct Gateways(HashMap<GatewayKind, Arc<dyn Gateway>>);

impl Gateways {
    pub fn insert(&mut self, g: Arc<dyn Gateway>) {
        self.0.insert(g.kind(), g);
    }

    pub fn get(&self, kind: GatewayKind) -> Option<&Arc<dyn Gateway>> {
        self.0.get(&kind)
    }
}
