//! From a submitted form (or a resume link) to the gateway's hosted checkout.

use std::sync::Arc;

use crate::clock::{ms, new_id, now_ms};
use crate::context::AppContext;
use crate::domain::lead::{Attempt, Contact, Lead, Utm};
use crate::domain::offer::Offer;
use crate::domain::{Lang, PaymentStatus};
use crate::gateways::{CheckoutRequest, GatewayError};
use crate::jobs::{FollowUpReason, Job};
use crate::links;
use crate::store::{attempts, leads, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lead and attempt are saved; opening their checkout failed. The customer can retry.
    #[error("{cause}")]
    NotOpened {
        attempt_id: String,
        lead_id: String,
        offer: String,
        cause: NotOpened,
    },
    #[error("gateway {0} is not configured")]
    GatewayMissing(&'static str),
}

/// Why a stored attempt's checkout was not opened.
#[derive(Debug, thiserror::Error)]
pub enum NotOpened {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The database failed after the lead was committed (it went down, or the disk filled).
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Submission {
    pub contact: Contact,
    pub lang: Lang,
    pub utm: Utm,
}

/// Commits the lead, its attempt and their jobs in one transaction, then tries the CRM
/// inline under the configured deadline, then opens the gateway's checkout.
pub async fn submit(ctx: &Arc<AppContext>, offer: &Offer, sub: Submission) -> Result<String, CheckoutError> {
    let now = now_ms();
    let lead = Lead {
        id: new_id(),
        offer_slug: offer.slug.to_string(),
        contact: sub.contact,
        lang: sub.lang,
        utm: sub.utm,
        created_at: now,
    };
    let attempt = new_attempt(&lead, offer, now);
    let mut tx = ctx.db.begin().await?;
    leads::insert(&mut tx, &lead).await?;
    let crm_job = insert_attempt(ctx, &mut tx, &attempt, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!(offer = %offer.slug, "lead stored");
    proceed(ctx, offer, &lead, attempt, &crm_job).await
}

/// A new attempt for a lead that already exists (resume link, retry button).
pub async fn retry(ctx: &Arc<AppContext>, offer: &Offer, lead: &Lead) -> Result<String, CheckoutError> {
    let attempt = new_attempt(lead, offer, now_ms());
    let mut tx = ctx.db.begin().await?;
    let crm_job = insert_attempt(ctx, &mut tx, &attempt, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!("attempt resumed");
    proceed(ctx, offer, lead, attempt, &crm_job).await
}

fn new_attempt(lead: &Lead, offer: &Offer, now: i64) -> Attempt {
    Attempt {
        id: new_id(),
        lead_id: lead.id.clone(),
        offer_slug: offer.slug.to_string(),
        gateway: offer.gateway,
        // The amount always comes from the offer on the server, never from the form.
        amount: offer.price,
        status: PaymentStatus::Created,
        gateway_ref: None,
        status_detail: None,
        checkout_url: None,
        settled_by: None,
        created_at: now,
        updated_at: now,
    }
}

/// Stores the attempt with its CRM sync and follow-up checks; returns the sync job's id.
async fn insert_attempt(
    ctx: &AppContext,
    tx: &mut crate::store::Tx,
    attempt: &Attempt,
    offer: &Offer,
) -> Result<String, StoreError> {
    attempts::insert(tx, attempt).await?;
    let lead = Some(attempt.lead_id.as_str());
    let sync = Job::CrmSync {
        attempt_id: attempt.id.clone(),
    };
    // Due for the worker only once the inline try's deadline has passed, so the request
    // that just stored it gets to run it first; after a crash the worker still will.
    let crm_job = ctx
        .queue
        .enqueue(tx, &sync, lead, ctx.settings.inline_crm_deadline)
        .await?;
    for (step, delay) in offer.followup_delays.iter().enumerate() {
        let check = Job::FollowUp {
            attempt_id: attempt.id.clone(),
            reason: FollowUpReason::Abandoned { step },
        };
        ctx.queue.enqueue(tx, &check, lead, *delay).await?;
    }
    Ok(crm_job)
}

async fn proceed(
    ctx: &Arc<AppContext>,
    offer: &Offer,
    lead: &Lead,
    attempt: Attempt,
    crm_job: &str,
) -> Result<String, CheckoutError> {
    // The CRM sync runs now so the deal usually exists before the redirect. If the CRM is
    // slow the job keeps running in the background past the deadline; if it fails, the
    // worker retries it. Either way the customer only waits the deadline.
    ctx.queue.run_now(ctx, crm_job, ctx.settings.inline_crm_deadline).await;
    open_checkout(ctx, offer, lead, &attempt).await
}

pub async fn open_checkout(
    ctx: &AppContext,
    offer: &Offer,
    lead: &Lead,
    attempt: &Attempt,
) -> Result<String, CheckoutError> {
    let gateway = ctx
        .gateways
        .get(offer.gateway)
        .ok_or(CheckoutError::GatewayMissing(offer.gateway.as_str()))?;
    let resume = links::resume_token(ctx, &lead.id, &lead.offer_slug).map_err(StoreError::Corrupt)?;
    let req = CheckoutRequest {
        attempt,
        offer,
        lead,
        return_url: ctx.url(&format!("/return/{}?attempt={}", offer.gateway.as_str(), attempt.id)),
        cancel_url: ctx.url(&format!("/c/{}?resume={resume}", offer.slug)),
        webhook_url: ctx.url(&format!("/webhooks/{}", offer.gateway.as_str())),
        expires_at: attempt.created_at + ms(ctx.settings.checkout_ttl),
    };
    let not_opened = |cause: NotOpened| CheckoutError::NotOpened {
        attempt_id: attempt.id.clone(),
        lead_id: lead.id.clone(),
        offer: offer.slug.to_string(),
        cause,
    };
    let checkout = gateway.create_checkout(&req).await.map_err(|e| {
        not_opened(match e {
            GatewayError::Store(e) => NotOpened::Store(e),
            e => NotOpened::Gateway(e),
        })
    })?;
    attempts::mark_redirected(
        &ctx.db,
        &attempt.id,
        checkout.gateway_ref.as_deref(),
        &checkout.url,
        now_ms(),
    )
    .await
    .map_err(|e| not_opened(e.into()))?;
    Ok(checkout.url)
}
