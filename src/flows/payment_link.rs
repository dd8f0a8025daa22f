//! Payment links as customers meet them: the page a link opens and its pay button. Making
//! one is in `jobs::payment_link` (a CRM's webhook makes them from a job too).

use std::sync::Arc;

use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::offer::Offer;
use crate::domain::payment_link::LinkState;
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

/// A press on the link's pay button: its open checkout, or a fresh attempt bound to the
/// same deal; nothing once paid; `Expired` past its expiry.
pub async fn pay(ctx: &Arc<AppContext>, o: &Opened) -> Result<Paid, CheckoutError> {
    if let Some(done) = expired(ctx, o).await? {
        return Ok(done);
    }
    let outcome = checkout::resume_at(ctx, &o.offer, &o.lead, o.link.amount, o.link.crm.as_ref()).await?;
    Ok(Paid::Outcome(outcome))
}

/// Past its expiry: `Expired`, or already paid; `None` while it can be pressed (or while a
/// payment of it is pending, which its press shows).
pub async fn expired(ctx: &AppContext, o: &Opened) -> Result<Option<Paid>, StoreError> {
    if ctx.clock.now_ms() < o.link.expires_at {
        return Ok(None);
    }
    Ok(match state(ctx, &o.link).await? {
        LinkState::Paid => Some(Paid::Outcome(Outcome::AlreadyPaid)),
        LinkState::Pending => None,
        LinkState::Payable | LinkState::Expired => Some(Paid::Expired),
    })
}

#[derive(Debug)]
pub enum Paid {
    Outcome(Outcome),
    Expired,
}

/// Where a link stands now (its attempts, its expiry).
pub async fn state(ctx: &AppContext, link: &PaymentLink) -> Result<LinkState, StoreError> {
    let attempts = attempts::for_lead(&ctx.db, &link.lead_id).await?;
    let statuses: Vec<_> = attempts.iter().map(|a| a.status).collect();
    Ok(LinkState::of(&statuses, ctx.clock.now_ms() >= link.expires_at))
}

/// The return page of the link's newest attempt, while a payment of it is pending.
pub async fn pending_return_path(ctx: &AppContext, link: &PaymentLink) -> Result<Option<String>, StoreError> {
    let attempts = attempts::for_lead(&ctx.db, &link.lead_id).await?;
    Ok(attempts
        .iter()
        .max_by_key(|a| (a.created_at, a.id.as_str()))
        .filter(|a| a.status == crate::domain::PaymentStatus::Pending)
        .map(|a| format!("/return/{}?attempt={}", a.gateway.as_str(), a.id)))
}

/// The page of the link `lead_id` was made for, if it was: its resume links (a cancelled
/// checkout, a follow-up task) lead there, so they charge the link's amount on its deal.
pub async fn page_of_lead(ctx: &AppContext, lead_id: &str) -> Result<Option<String>, StoreError> {
    Ok(payment_links::for_lead(&ctx.db, lead_id)
        .await?
        .map(|l| links::payment_link_url(ctx, &l.id)))
}
