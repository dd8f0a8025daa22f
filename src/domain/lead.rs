//! A lead (the person who filled the form) and their checkout attempts.

use super::offer::GatewayKind;
use super::reversal::Reversal;
use super::{Email, Lang, Money, PaymentStatus, PersonName, Phone, TaxId};

/// Campaign attribution carried from the marketing link to the CRM: the UTMs, the ad
/// click ids (Google `gclid`, Meta `fbclid`) and the page the visitor came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub gclid: Option<String>,
    pub fbclid: Option<String>,
    pub referrer: Option<String>,
}

impl Utm {
    /// Each value that is set, under the name it has in a URL and on the form.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        [
            ("utm_source", &self.source),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_term", &self.term),
            ("utm_content", &self.content),
            ("gclid", &self.gclid),
            ("fbclid", &self.fbclid),
            ("referrer", &self.referrer),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// The version of the reminder-email consent text (`email_consent` in `web::i18n`), stored
/// with each lead that ticks it. Bump it whenever that text changes.
pub const EMAIL_CONSENT_VERSION: &str = "2026-12";

/// A consent the customer ticked: which version of the text, shown in which language, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGiven {
    pub version: String,
    pub lang: Lang,
    pub at: i64,
}

/// What the customer typed, parsed once at the edge.
#[derive(Debug, Clone)]
pub struct Contact {
    pub name: PersonName,
    pub email: Email,
    pub phone: Phone,
    pub tax_id: Option<TaxId>,
}

#[derive(Debug, Clone)]
pub struct Lead {
    pub id: String,
    pub offer_slug: String,
    pub contact: Contact,
    pub lang: Lang,
    pub utm: Utm,
    /// The offer's consent (`[offers.consent]`), when the customer ticked it.
    pub consent: Option<ConsentGiven>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: String,
    pub lead_id: String,
    pub offer_slug: String,
    pub gateway: GatewayKind,
    pub amount: Money,
    pub status: PaymentStatus,
    pub gateway_ref: Option<String>,
    pub status_detail: Option<String>,
    pub checkout_url: Option<String>,
    /// What last changed the status: webhook, return or reconcile.
    pub settled_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub after: AfterApproval,
    /// When its last follow-up step fired with the attempt still unpaid.
    pub abandoned_at: Option<i64>,
}

/// What an attempt learns about its payment beyond the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterApproval {
    /// The hosted checkout we opened (Stripe session, Mercado Pago preference); kept apart
    /// from `gateway_ref`, which becomes the payment's id once there is a payment.
    pub checkout_ref: Option<String>,
    /// Refunds, void and dispute of the approved payment; nothing reversed before.
    pub reversal: Reversal,
    /// Bumped by every change of `reversal`: the compare-and-set token.
    pub reversal_version: i64,
    /// Another approved attempt of the same customer for the same offer: this payment is
    /// a second one for one purchase.
    pub duplicate_of: Option<String>,
    /// How the customer paid, in the gateway's words.
    pub payment_method: Option<String>,
}

impl AfterApproval {
    pub fn new(amount: &Money) -> Self {
        AfterApproval {
            checkout_ref: None,
            reversal: Reversal::none(amount),
            reversal_version: 0,
            duplicate_of: None,
            payment_method: None,
        }
    }
}
