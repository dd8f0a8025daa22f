//! A payment-link request as the API's JSON and the admin's form both carry it, parsed
//! into `NewLink` with every bad field reported at once.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::AppContext;
use crate::domain::lead::Contact;
use crate::domain::payment_link::LinkSource;
use crate::domain::{Currency, Email, Lang, Money, PersonName, Phone, TaxId};
use crate::flows::payment_link::{DealRef, FieldProblem, NewLink};

/// The longest CRM id we keep (HubSpot's and Pipedrive's are digits; some CRMs use UUIDs).
pub const CRM_ID_MAX: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub email: String,
    /// International (`+57…`) or national in the offer's phone region.
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
}

/// A payment link to make: for an `offer` (its price), or an amount with its currency and
/// a description (through `[payment_links] offer`), or an offer with an amount of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub person: Person,
    /// `es`, `pt-BR` or `en`: the page's and the email's language (default: the offer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// An offer's slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// In the currency's minor units (cents), with `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// ISO 4217, e.g. `COP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Shown instead of the offer's title; required with an amount and no offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The CRM deal the link's payment closes (no second deal is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_deal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_person_id: Option<String>,
    /// RFC 3339; default `[payment_links] expires_in` from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Email the link to the person (needs `[email]`).
    #[serde(default)]
    pub send_email: bool,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

fn crm_id(v: &Option<String>, field: &'static str, problems: &mut Vec<FieldProblem>) -> Option<String> {
    let s = v.as_deref().map(str::trim)?;
    if s.is_empty() || s.len() > CRM_ID_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
        problems.push(problem(field, format!("1 to {CRM_ID_MAX} printable ASCII characters")));
        return None;
    }
    Some(s.to_owned())
}

/// Every field checked; the amount limits, the expiry's bounds and the offer's gateway
/// rules are checked by `payment_link::create`.
pub fn parse(ctx: &AppContext, r: &LinkRequest, source: LinkSource) -> Result<NewLink, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let slug = r.offer.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let offer = ctx.offer(slug.unwrap_or(&ctx.settings.payment_links.default_offer));
    if offer.is_none() {
        problems.push(problem("offer", "no such offer"));
    }
    let region = offer.map(|o| o.phone_region.as_str());
    let name = PersonName::parse(&r.person.name).map_err(|e| problems.push(problem("person.name", e.to_string())));
    let email = Email::parse(&r.person.email).map_err(|e| problems.push(problem("person.email", e.to_string())));
    let phone =
        Phone::parse(&r.person.phone, region).map_err(|e| problems.push(problem("person.phone", e.to_string())));
    let tax_id = match r.person.tax_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(t) => TaxId::parse(t)
            .map(Some)
            .map_err(|e| problems.push(problem("person.tax_id", e.to_string()))),
        None if offer.is_some_and(|o| o.ask_tax_id) => {
            problems.push(problem("person.tax_id", "required by this offer"));
            Err(())
        }
        None => Ok(None),
    };
    let lang = match r.lang.as_deref() {
        None => offer.map_or(Lang::Es, |o| o.lang),
        Some(code) => Lang::from_code(code).unwrap_or_else(|| {
            problems.push(problem("lang", "one of es, pt-BR, en"));
            Lang::Es
        }),
    };
    let amount = match (r.amount_minor, r.currency.as_deref()) {
        (None, None) => None,
        (Some(minor), Some(cur)) => match cur.parse::<Currency>() {
            Ok(c) => Money::new(minor, c)
                .map_err(|e| problems.push(problem("amount_minor", e.to_string())))
                .ok(),
            Err(_) => {
                problems.push(problem("currency", "an ISO 4217 code leadgate knows, e.g. COP"));
                None
            }
        },
        (Some(_), None) => {
            problems.push(problem("currency", "required with amount_minor"));
            None
        }
        (None, Some(_)) => {
            problems.push(problem("amount_minor", "required with currency"));
            None
        }
    };
    if slug.is_none() && r.amount_minor.is_none() {
        problems.push(problem(
            "offer",
            "give an offer, or amount_minor, currency and description",
        ));
    }
    let description = r.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if slug.is_none() && r.amount_minor.is_some() && description.is_none() {
        problems.push(problem("description", "required with an amount and no offer"));
    }
    let deal_id = crm_id(&r.crm_deal_id, "crm_deal_id", &mut problems);
    let person_id = crm_id(&r.crm_person_id, "crm_person_id", &mut problems);
    if person_id.is_some() && deal_id.is_none() && r.crm_deal_id.is_none() {
        problems.push(problem("crm_person_id", "only with crm_deal_id"));
    }
    let expires_at = match r.expires_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                problems.push(problem("expires_at", "an RFC 3339 time, e.g. 2026-12-31T23:59:00Z"));
                None
            }
        },
    };
    // Refused rather than silently not sent.
    if r.send_email && ctx.mailer.is_none() {
        problems.push(problem("send_email", "no [email] server is configured"));
    }
    match (name, email, phone, tax_id) {
        (Ok(name), Ok(email), Ok(phone), Ok(tax_id)) if problems.is_empty() => Ok(NewLink {
            contact: Contact {
                name,
                email,
                phone,
                tax_id,
            },
            lang,
            offer: slug.map(str::to_owned),
            amount,
            description: description.map(str::to_owned),
            deal: deal_id.map(|deal_id| DealRef { deal_id, person_id }),
            expires_at,
            source,
            idempotency: None,
            email_link: r.send_email,
        }),
        _ => Err(problems),
    }
}
