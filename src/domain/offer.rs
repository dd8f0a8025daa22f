//! A configured offer: what the customer buys, for how much, through which gateway.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::followup::Policy;
use super::{Lang, LocalizedText, Money};

/// URL-safe offer identifier as it appears in `/c/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct OfferSlug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("offer slug must be 1-64 characters of a-z, 0-9 and '-'")]
pub struct InvalidSlug;

impl OfferSlug {
    pub fn parse(s: &str) -> Result<Self, InvalidSlug> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSlug)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OfferSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which payment gateway an offer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    Sandbox,
    Wompi,
    Stripe,
    #[serde(rename = "mercadopago")]
    MercadoPago,
}

impl GatewayKind {
    pub const ALL: [GatewayKind; 4] = [
        GatewayKind::Sandbox,
        GatewayKind::Wompi,
        GatewayKind::Stripe,
        GatewayKind::MercadoPago,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            GatewayKind::Sandbox => "sandbox",
            GatewayKind::Wompi => "wompi",
            GatewayKind::Stripe => "stripe",
            GatewayKind::MercadoPago => "mercadopago",
        }
    }

    /// Whether this gateway can charge `amount`: its currency, and how it takes the units.
    pub fn takes(&self, amount: &Money) -> Result<(), Refused> {
        use crate::domain::Currency as C;
        let currency = amount.currency();
        match self {
            GatewayKind::Wompi if currency != C::COP => {
                Err(Refused::Currency("Wompi (Colombia) only takes COP".into()))
            }
            GatewayKind::MercadoPago if currency == C::USD || currency == C::EUR => Err(Refused::Currency(format!(
                "Mercado Pago does not take {}",
                currency.as_str()
            ))),
            // Mercado Pago takes whole pesos for COP (its own plugins drop the cents).
            GatewayKind::MercadoPago if currency == C::COP && amount.amount_minor() % 100 != 0 => Err(Refused::Amount(
                "Mercado Pago takes whole pesos for COP (a multiple of 100)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Why a gateway cannot charge an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Currency(String),
    Amount(String),
}

impl FromStr for GatewayKind {
    type Err = UnknownGateway;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GatewayKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownGateway(s.chars().take(32).collect()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown gateway {0:?}")]
pub struct UnknownGateway(pub String);

#[derive(Debug, Clone)]
pub struct Offer {
    pub slug: OfferSlug,
    /// Customers read these in their language (falling back to `lang`); sales in `lang`.
    pub title: LocalizedText,
    pub description: LocalizedText,
    /// A line under the price on the form ("one payment, lifetime access"); may be blank.
    pub price_note: LocalizedText,
    /// The language the offer is written in, and its texts' fallback.
    pub lang: Lang,
    pub price: Money,
    pub gateway: GatewayKind,
    pub crm_pipeline: String,
    pub crm_stage: String,
    /// What follows an attempt that did not pay; shared, as offers are cloned per request.
    pub followup: Arc<Policy>,
    pub ask_tax_id: bool,
    /// The kind of tax id the form asks for, as gateways name it (CC, NIT, CPF, DNI...).
    pub tax_id_type: String,
    /// ISO 3166 alpha-2 region used to read phone numbers typed without a country code.
    pub phone_region: String,
    /// Origins (`https://host[:port]`) allowed to frame the offer's form.
    pub embed_origins: Vec<String>,
    /// Where the deal goes when its payment is refunded in full, voided or lost to a
    /// chargeback.
    pub on_refund: DealOnRefund,
    /// Seller identity, consent and the paid page's links; shared like `followup`.
    pub trust: Arc<super::trust::Trust>,
}

/// What a fully reversed payment does to its deal, per offer (`on_refund`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealOnRefund {
    /// Lost, with the reason (refunded, voided, chargeback lost): the default.
    Lost,
    /// Stays won; the refunded amount is on the deal (field and note) for finance.
    KeepWon,
    /// Open again in this stage of the offer's pipeline (e.g. "Refunded").
    Stage(String),
}

impl DealOnRefund {
    /// `lost`, `keep_won` or `stage:<name>`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "lost" => Some(DealOnRefund::Lost),
            "keep_won" => Some(DealOnRefund::KeepWon),
            other => {
                let stage = other.strip_prefix("stage:")?.trim();
                (!stage.is_empty()).then(|| DealOnRefund::Stage(stage.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_accepts_kebab_case_only() {
        assert!(OfferSlug::parse("demo-2026").is_ok());
        for bad in ["", "Demo", "a b", "a/b", "ñ", &"x".repeat(65)] {
            assert_eq!(OfferSlug::parse(bad), Err(InvalidSlug), "{bad}");
        }
    }

    #[test]
    fn on_refund_reads_the_three_policies_and_nothing_else() {
        assert_eq!(DealOnRefund::parse("lost"), Some(DealOnRefund::Lost));
        assert_eq!(DealOnRefund::parse("keep_won"), Some(DealOnRefund::KeepWon));
        assert_eq!(
            DealOnRefund::parse("stage: Reembolsado "),
            Some(DealOnRefund::Stage("Reembolsado".into()))
        );
        for bad in ["", "won", "stage:", "stage: ", "Lost", "refunded"] {
            assert_eq!(DealOnRefund::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn gateway_kind_roundtrips() {
        for kind in GatewayKind::ALL {
            assert_eq!(kind.as_str().parse::<GatewayKind>().ok(), Some(kind));
        }
        assert!("paypal".parse::<GatewayKind>().is_err());
    }
}
