//! Sample domain values for the adapters' unit tests; each test overrides what it checks.

use crate::domain::lead::{Attempt, Contact, Lead, Utm};
use crate::domain::offer::{GatewayKind, Offer, OfferSlug};
use crate::domain::{Email, Lang, LocalizedText, Money, PaymentStatus, PersonName, Phone, TaxId};

pub fn offer(slug: &str, gateway: GatewayKind, price: Money) -> Offer {
    Offer {
        slug: OfferSlug::parse(slug).unwrap(),
        title: LocalizedText::plain(Lang::Es, "Curso"),
        description: LocalizedText::plain(Lang::Es, ""),
        price_note: LocalizedText::plain(Lang::Es, ""),
        lang: Lang::Es,
        price,
        gateway,
        crm_pipeline: "Sales".into(),
        crm_stage: "New".into(),
        followup: std::sync::Arc::new(crate::domain::followup::Policy::default_for(&[])),
        ask_tax_id: true,
        tax_id_type: "CC".into(),
        phone_region: "CO".into(),
        embed_origins: vec![],
        on_refund: crate::domain::offer::DealOnRefund::Lost,
        trust: Default::default(),
    }
}

/// A Colombian customer, "María José Pérez".
pub fn lead(tax_id: Option<&str>, created_at: i64) -> Lead {
    Lead {
        id: "lead_1".into(),
        offer_slug: "curso".into(),
        contact: Contact {
            name: PersonName::parse("María José Pérez").unwrap(),
            email: Email::parse("maria@example.com").unwrap(),
            phone: Phone::parse("300 123 4567", Some("CO")).unwrap(),
            tax_id: tax_id.map(|t| TaxId::parse(t).unwrap()),
        },
        lang: Lang::Es,
        utm: Utm::default(),
        consent: None,
        created_at,
    }
}

/// An attempt of `lead_1`, redirected to the gateway.
pub fn attempt(id: &str, gateway: GatewayKind, amount: Money, created_at: i64) -> Attempt {
    Attempt {
        id: id.into(),
        lead_id: "lead_1".into(),
        offer_slug: "curso".into(),
        gateway,
        amount,
        status: PaymentStatus::Redirected,
        gateway_ref: None,
        status_detail: None,
        checkout_url: None,
        settled_by: None,
        created_at,
        updated_at: created_at,
        after: crate::domain::lead::AfterApproval::new(&amount),
        abandoned_at: None,
    }
}
