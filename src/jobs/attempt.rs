//! An attempt's life from its insert to its hosted checkout, shared by the form, resume
//! links and payment links (the last made by jobs too, from a CRM's webhook).

use crate::clock::{ms, new_id, now_ms};
use crate::context::AppContext;
use crate::domain::lead::{AfterApproval, Attempt, Lead};
use crate::domain::offer::GatewayKind;
use crate::domain::offer::Offer;
use crate::domain::{Money, PaymentStatus};
use crate::gateways::{Checkout, CheckoutRequest, GatewayError};
use crate::jobs::{crm_sync, Job};
use crate::links;
use crate::store::jobs::ClaimedJob;
use crate::store::payment_links::CrmBinding;
use crate::store::{attempts, crm_records, StoreError, Tx};

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

/// Records a CRM deal (and person) made elsewhere as this attempt's, in its transaction,
/// so the CRM sync finds them instead of creating new ones.
pub(crate) async fn bind_deal(tx: &mut Tx, b: &CrmBinding, lead_id: &str, attempt_id: &str) -> Result<(), StoreError> {
    use crate::jobs::crm_sync::{DEAL, PERSON};
    crm_records::record_in(tx, &b.crm, DEAL, attempt_id, lead_id, &b.deal_id, Some("open")).await?;
    if let Some(person) = &b.person_id {
        crm_records::record_in(tx, &b.crm, PERSON, lead_id, lead_id, person, None).await?;
    }
    Ok(())
}

pub(crate) fn new_attempt(lead: &Lead, offer: &Offer, amount: Money, now: i64) -> Attempt {
    Attempt {
        id: new_id(),
        lead_id: lead.id.clone(),
        offer_slug: offer.slug.to_string(),
        gateway: offer.gateway,
        // The amount always comes from the server (the offer, or a link sales made), never
        // from the form.
        amount,
        status: PaymentStatus::Created,
        gateway_ref: None,
        status_detail: None,
        checkout_url: None,
        settled_by: None,
        created_at: now,
        updated_at: now,
        after: AfterApproval::new(&amount),
        abandoned_at: None,
    }
}

/// Stores the attempt with its CRM sync and follow-up checks; returns the sync job's id.
/// The sync is left to the worker (due once the inline deadline has passed).
pub(crate) async fn insert_attempt(
    ctx: &AppContext,
    tx: &mut Tx,
    attempt: &Attempt,
    offer: &Offer,
) -> Result<String, StoreError> {
    attempts::insert(tx, attempt).await?;
    let lead = Some(attempt.lead_id.as_str());
    // Due once the inline deadline has passed, as a request's own try would leave it.
    let crm_job = ctx
        .queue
        .enqueue(tx, &crm_sync_of(attempt), lead, ctx.settings.inline_crm_deadline)
        .await?;
    crate::jobs::followup::schedule(ctx, tx, attempt, &offer.followup).await?;
    Ok(crm_job)
}

/// [`insert_attempt`] for a request that runs the CRM sync itself at once: the sync job is
/// stored already leased to this process (see `Queue::enqueue_leased`), so no claim of its
/// own follows the commit. On the built-in CRM the sync is done in `tx` itself and needs
/// no job. `None`: nothing is left for the request to run (done here, or queued for the
/// worker).
pub(crate) async fn insert_attempt_inline(
    ctx: &AppContext,
    tx: &mut Tx,
    lead: &Lead,
    attempt: &Attempt,
    offer: &Offer,
) -> Result<Option<ClaimedJob>, StoreError> {
    attempts::insert(tx, attempt).await?;
    let crm_job = if crm_sync::is_here(ctx) {
        crm_sync::ensure_deal_in(ctx, tx, crm_sync::Held { lead, attempt, offer }).await?;
        None
    } else {
        let lead = Some(attempt.lead_id.as_str());
        ctx.queue
            .enqueue_leased(tx, &crm_sync_of(attempt), lead, ctx.settings.worker.lease)
            .await?
    };
    crate::jobs::followup::schedule(ctx, tx, attempt, &offer.followup).await?;
    Ok(crm_job)
}

fn crm_sync_of(attempt: &Attempt) -> Job {
    Job::CrmSync {
        attempt_id: attempt.id.clone(),
    }
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
    // The confirm page, not the form: no personal data in a URL that leaves leadgate, and
    // a gateway's or a scanner's GET of it creates nothing.
    let req = CheckoutRequest {
        attempt,
        offer,
        lead,
        // Both carry the lead's language: the browser coming back may ask for another.
        return_url: ctx.url(&format!(
            "/return/{}?attempt={}&lang={}",
            offer.gateway.as_str(),
            attempt.id,
            lead.lang.code()
        )),
        cancel_url: ctx.url(&format!("/r/{resume}?lang={}", lead.lang.code())),
        webhook_url: ctx.url(&format!("/webhooks/{}", offer.gateway.as_str())),
        expires_at: attempt.created_at + ms(ctx.settings.checkout_ttl),
    };
    let not_opened = |cause: NotOpened| CheckoutError::NotOpened {
        attempt_id: attempt.id.clone(),
        lead_id: lead.id.clone(),
        offer: offer.slug.to_string(),
        cause,
    };
    if gateway.kind() == GatewayKind::Sandbox {
        // The sandbox's ledger is in our database: its payment and the redirect commit
        // together, one commit for the whole checkout.
        let opened = async {
            let mut tx = ctx.db.begin().await?;
            let checkout = ctx.sandbox.create_checkout_in(&mut tx, &req).await?;
            redirect(ctx, &mut tx, attempt, &checkout).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(checkout)
        };
        return match opened.await {
            Ok(checkout) => {
                ctx.queue.wake();
                Ok(checkout.url)
            }
            Err(e) => {
                mark_failed(ctx, attempt).await;
                Err(not_opened(NotOpened::Store(e)))
            }
        };
    }
    let checkout = match gateway.create_checkout(&req).await {
        Ok(c) => c,
        Err(e) => {
            mark_failed(ctx, attempt).await;
            return Err(not_opened(match e {
                GatewayError::Store(e) => NotOpened::Store(e),
                e => NotOpened::Gateway(e),
            }));
        }
    };
    // The redirect and its event commit together.
    let redirected = async {
        let mut tx = ctx.db.begin().await?;
        redirect(ctx, &mut tx, attempt, &checkout).await?;
        tx.commit().await?;
        ctx.queue.wake();
        Ok::<_, StoreError>(())
    };
    redirected.await.map_err(|e| not_opened(e.into()))?;
    Ok(checkout.url)
}

/// So a second press does not wait for a checkout that will never come.
async fn mark_failed(ctx: &AppContext, attempt: &Attempt) {
    if let Err(mark) = attempts::mark_checkout_failed(&ctx.db, &attempt.id, now_ms()).await {
        tracing::warn!(error = %mark, "failed checkout not marked");
    }
}

/// Created → redirected to `checkout`, with its event, in `tx`.
async fn redirect(ctx: &AppContext, tx: &mut Tx, attempt: &Attempt, checkout: &Checkout) -> Result<(), StoreError> {
    let gateway_ref = checkout.gateway_ref.as_deref();
    if attempts::mark_redirected(tx, &attempt.id, gateway_ref, &checkout.url, now_ms()).await? {
        crate::jobs::events::emit(ctx, tx, crate::jobs::events::checkout_opened(attempt, gateway_ref)).await?;
    }
    Ok(())
}
