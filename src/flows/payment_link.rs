//! Payment links as customers meet them: the page a link opens and its pay button. Making
//! one is in `jobs::payment_link` (a CRM's webhook makes them from a job too).

use std::sync::Arc;

use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::offer::Offer;
use crate::links;
use crate::store::payment_links::{self, PaymentLink};
use crate::store::{attempts, leads, StoreError};

pub use crate::jobs::payment_link::{
    create, offer_view, CreatedLink, DealRef, FieldProblem, Idempotency, LinkError, NewLink,
};

use super::checkout::{self, CheckoutError, Outcome};

/// What the link's page shows, and what its button does.
pub struct Opened {
    pub link: PaymentLink,
    pub lead: Lead,
    /// The offer as the link presents it (its description and amount).
    pub offer: Offer,
}

/// The link a token names, with its lead and offer; `None` when the token is not ours or
/// the link, its lead or its offer is gone.
pub async fn open(ctx: &AppContext, token: &str) -> Result<Option<Opened>, StoreError> {
    let Some(id) = links::verify_payment_link(ctx, token) else {
        return Ok(None);
    };
    let Some(link) = payment_links::get(&ctx.db, &id).await? else {
        return Ok(None);
    };
    opened(ctx, link).await
}

async fn opened(ctx: &AppContext, link: PaymentLink) -> Result<Option<Opened>, StoreError> {
    let Some(lead) = leads::get(&ctx.db, &link.lead_id).await? else {
        return Ok(None);
    };
    let Some(offer) = ctx.offer(&link.offer_slug) else {
        return Ok(None);
    };
    let offer = offer_view(offer, &link);
    Ok(Some(Opened { link, lead, offer }))
}

/// The lead's link, if the lead was made for one (a resume link of it acts as the link).
pub async fn of_lead(ctx: &AppContext, lead_id: &str) -> Result<Option<Opened>, StoreError> {
    match payment_links::for_lead(&ctx.db, lead_id).await? {
        Some(link) => opened(ctx, link).await,
        None => Ok(None),
    }
}

/// A press on the link's pay button: its open checkout, or a fresh attempt bound to the
/// same deal; nothing once paid; `Expired` past its expiry.
pub async fn pay(ctx: &Arc<AppContext>, o: &Opened) -> Result<Paid, CheckoutError> {
    if ctx.clock.now_ms() >= o.link.expires_at {
        // A payment already on its way still shows as such.
        let prior = attempts::for_lead(&ctx.db, &o.lead.id).await?;
        if prior.iter().any(|a| a.status.is_paid()) {
            return Ok(Paid::Outcome(Outcome::AlreadyPaid));
        }
        return Ok(Paid::Expired);
    }
    let outcome = checkout::resume_at(ctx, &o.offer, &o.lead, o.link.amount, o.link.crm.as_ref()).await?;
    Ok(Paid::Outcome(outcome))
}

#[derive(Debug)]
pub enum Paid {
    Outcome(Outcome),
    Expired,
}
