//! A payment link as the API and `/admin` report it: the link, its person and where it
//! stands (derived from its attempts).

use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::payment_link::LinkState;
use crate::links;
use crate::store::payment_links::{self, PaymentLink};
use crate::store::{attempts, leads, StoreError};

pub struct LinkView {
    pub link: PaymentLink,
    pub lead: Option<Lead>,
    pub url: String,
    pub state: LinkState,
    /// Its newest attempt and that attempt's checkout.
    pub attempt_id: Option<String>,
    pub checkout_url: Option<String>,
}

pub async fn get(ctx: &AppContext, id: &str) -> Result<Option<LinkView>, StoreError> {
    match payment_links::get(&ctx.db, id).await? {
        Some(link) => Ok(Some(view(ctx, link).await?)),
        None => Ok(None),
    }
}

/// The newest links, for `/admin`.
pub async fn recent(ctx: &AppContext, limit: i64) -> Result<Vec<LinkView>, StoreError> {
    let mut out = Vec::new();
    for link in payment_links::recent(&ctx.db, limit).await? {
        out.push(view(ctx, link).await?);
    }
    Ok(out)
}

async fn view(ctx: &AppContext, link: PaymentLink) -> Result<LinkView, StoreError> {
    let tries = attempts::for_lead(&ctx.db, &link.lead_id).await?;
    let newest = tries.iter().max_by_key(|a| (a.created_at, a.id.as_str()));
    let statuses: Vec<_> = tries.iter().map(|a| a.status).collect();
    let state = LinkState::of(&statuses, ctx.clock.now_ms() >= link.expires_at);
    Ok(LinkView {
        url: links::payment_link_url(ctx, &link.id),
        attempt_id: newest.map(|a| a.id.clone()),
        checkout_url: newest.and_then(|a| a.checkout_url.clone()),
        lead: leads::get(&ctx.db, &link.lead_id).await?,
        state,
        link,
    })
}
