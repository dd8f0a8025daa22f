//! From a submitted form (or a resume link) to the gateway's hosted checkout.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{ms, new_id, now_ms};
use crate::context::AppContext;
use crate::domain::lead::{AfterApproval, Attempt, ConsentGiven, Contact, Lead, Utm};
use crate::domain::offer::Offer;
use crate::domain::{Lang, Money, PaymentStatus};
use crate::gateways::{CheckoutRequest, GatewayError};
use crate::jobs::Job;
use crate::links;
use crate::store::attempts::{self, Prior};
use crate::store::payment_links::CrmBinding;
use crate::store::{crm_records, leads, StoreError, Tx};

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
    /// The offer's consent, when ticked.
    pub consent: Option<ConsentGiven>,
    /// Agreed to reminder emails (only asked where the offer's policy requires it).
    pub email_consent: bool,
}

/// Where a submit or a resume press leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// To this hosted checkout: a new one, or the lead's one still open.
    Checkout(String),
    /// The lead has paid for this offer already; nothing was created.
    AlreadyPaid,
    /// The gateway is still confirming a payment: to its return page (a path of ours).
    Pending { return_path: String },
    /// Another request (a double click) is opening this lead's checkout and has not
    /// finished in the time we wait; the customer can press again.
    StillOpening { lead_id: String, offer: String },
}

/// How long a request waits for another one to open the checkout it is already opening.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
/// Beyond the inline CRM deadline, how long opening a checkout can take (the gateways'
/// default request timeout and some): a `created` attempt younger than that may still be
/// being opened by another request; an older one was left behind (a crash).
const OPENING_BOUND: Duration = Duration::from_secs(15);

/// What the earlier attempts of a lead (or of an email, just now) hold for a new press.
#[derive(Debug)]
enum Existing {
    Paid,
    Pending(String),
    Open(String),
    /// Another request is opening this attempt's checkout right now.
    Opening(Box<Attempt>),
}

/// `None`: nothing to reuse, open a new attempt. Paid wins over everything; otherwise
/// only the newest attempt counts (an older open checkout was given up by the customer
/// pressing again).
fn existing(prior: &[Prior], now: i64, checkout_ttl_ms: i64, opening_ms: i64) -> Option<Existing> {
    if prior.iter().any(|p| p.attempt.status.is_paid()) {
        return Some(Existing::Paid);
    }
    let last = prior
        .iter()
        .max_by_key(|p| (p.attempt.created_at, p.attempt.id.as_str()))?;
    let a = &last.attempt;
    match (a.status, &a.checkout_url) {
        (PaymentStatus::Pending, _) => Some(Existing::Pending(return_path(a))),
        (PaymentStatus::Redirected, Some(url)) if now < a.created_at + checkout_ttl_ms => {
            Some(Existing::Open(url.clone()))
        }
        (PaymentStatus::Created, None) if !last.checkout_failed && now < a.created_at + opening_ms => {
            Some(Existing::Opening(Box::new(a.clone())))
        }
        _ => None,
    }
}

fn return_path(a: &Attempt) -> String {
    format!("/return/{}?attempt={}", a.gateway.as_str(), a.id)
}

/// Commits the lead, its attempt and their jobs in one transaction, then tries the CRM
/// inline under the configured deadline, then opens the gateway's checkout. The same
/// email for the same offer within `forms.duplicate_window` reuses what it opened before.
pub async fn submit(ctx: &Arc<AppContext>, offer: &Offer, sub: Submission) -> Result<Outcome, CheckoutError> {
    let now = ctx.clock.now_ms();
    let lead = Lead {
        id: new_id(),
        offer_slug: offer.slug.to_string(),
        contact: sub.contact,
        lang: sub.lang,
        utm: sub.utm,
        consent: sub.consent,
        created_at: now,
    };
    let attempt = new_attempt(&lead, offer, offer.price, now);
    // Reads before it writes: on SQLite this takes the one write lock up front.
    let mut tx = ctx.db.begin_write().await?;
    let window = ctx.settings.forms.duplicate_window;
    let email = lead.contact.email.as_str();
    if !window.is_zero() {
        // A double click sends two of these at once: they take turns here, so the second
        // one sees the first one's lead (the email is already normalized by `Email::parse`).
        tx.take_turn(&format!("submit|{}|{email}", offer.slug)).await?;
    }
    // One read serves both rules: reuse looks at the leads of the window, closing older
    // checkouts at every lead whose checkout may still be open.
    let ttl = ms(ctx.settings.checkout_ttl);
    let since = now - ms(window).max(ttl);
    let prior = attempts::prior_for_email(&mut tx, offer.slug.as_str(), email, since).await?;
    let since_lead = |from: i64| -> Vec<Prior> {
        prior
            .iter()
            .filter(|(_, lead_created)| *lead_created >= from)
            .map(|(p, _)| p.clone())
            .collect()
    };
    if !window.is_zero() {
        if let Some(found) = existing(&since_lead(now - ms(window)), now, ttl, opening_ms(ctx)) {
            tx.rollback().await?;
            tracing::info!(offer = %offer.slug, "offer form sent again: reusing the earlier checkout");
            return reuse(ctx, found).await;
        }
    }
    leads::insert(&mut tx, &lead).await?;
    if sub.email_consent {
        let version = crate::domain::lead::EMAIL_CONSENT_VERSION;
        crate::store::followups::record_consent(&mut tx, &lead.id, version).await?;
    }
    let crm_job = insert_attempt(ctx, &mut tx, &attempt, offer).await?;
    let open = since_lead(now - ttl);
    expire_replaced(ctx, &mut tx, &open, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!(offer = %offer.slug, "lead stored");
    proceed(ctx, offer, &lead, attempt, &crm_job)
        .await
        .map(Outcome::Checkout)
}

/// A press on a resume link or a retry button: the lead's open checkout, or a new attempt
/// for the lead when there is none; nothing new for a lead who paid.
pub async fn resume(ctx: &Arc<AppContext>, offer: &Offer, lead: &Lead) -> Result<Outcome, CheckoutError> {
    resume_at(ctx, offer, lead, offer.price, None).await
}

/// [`resume`] charging `amount`, with a new attempt bound to `deal` when given (a payment
/// link's lead: the link's amount, its deal).
pub async fn resume_at(
    ctx: &Arc<AppContext>,
    offer: &Offer,
    lead: &Lead,
    amount: Money,
    deal: Option<&CrmBinding>,
) -> Result<Outcome, CheckoutError> {
    let now = ctx.clock.now_ms();
    let attempt = new_attempt(lead, offer, amount, now);
    let mut tx = ctx.db.begin_write().await?;
    // Two presses at once take turns here, so the second one sees the first one's attempt.
    tx.take_turn(&format!("resume|{}", lead.id)).await?;
    let prior = attempts::prior_for_lead(&mut tx, &lead.id, offer.slug.as_str()).await?;
    if let Some(found) = existing(&prior, now, ms(ctx.settings.checkout_ttl), opening_ms(ctx)) {
        tx.rollback().await?;
        tracing::info!("resume pressed again: reusing the earlier checkout");
        return reuse(ctx, found).await;
    }
    if let Some(b) = deal {
        bind_deal(&mut tx, b, &lead.id, &attempt.id).await?;
    }
    let crm_job = insert_attempt(ctx, &mut tx, &attempt, offer).await?;
    expire_replaced(ctx, &mut tx, &prior, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!("attempt resumed");
    proceed(ctx, offer, lead, attempt, &crm_job)
        .await
        .map(Outcome::Checkout)
}

/// Queues the closing of every earlier checkout that could still take a payment, in the
/// transaction that stores the attempt replacing them (one purchase, one payment).
async fn expire_replaced(
    ctx: &AppContext,
    tx: &mut Tx,
    earlier: &[Prior],
    offer: &Offer,
) -> Result<(), StoreError> {
    let Some(gateway) = ctx.gateways.get(offer.gateway) else {
        return Ok(());
    };
    if !gateway.can_expire() {
        return Ok(());
    }
    for p in earlier.iter().filter(|p| p.attempt.status == PaymentStatus::Redirected) {
        let job = Job::ExpireCheckout {
            attempt_id: p.attempt.id.clone(),
        };
        ctx.queue
            .enqueue(tx, &job, Some(&p.attempt.lead_id), Duration::ZERO)
            .await?;
    }
    Ok(())
}

fn opening_ms(ctx: &AppContext) -> i64 {
    ms(ctx.settings.inline_crm_deadline + OPENING_BOUND)
}

async fn reuse(ctx: &AppContext, found: Existing) -> Result<Outcome, CheckoutError> {
    Ok(match found {
        Existing::Paid => Outcome::AlreadyPaid,
        Existing::Pending(return_path) => Outcome::Pending { return_path },
        Existing::Open(url) => Outcome::Checkout(url),
        Existing::Opening(attempt) => wait_for_checkout(ctx, *attempt).await?,
    })
}

/// Polls (bounded) for the checkout another request is opening for `attempt`. No
/// transaction is held meanwhile, so that request can write it.
async fn wait_for_checkout(ctx: &AppContext, attempt: Attempt) -> Result<Outcome, CheckoutError> {
    let until = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(POLL).await;
        let Some(now) = attempts::prior(&ctx.db, &attempt.id).await? else {
            break;
        };
        if let Some(url) = now.attempt.checkout_url {
            return Ok(Outcome::Checkout(url));
        }
        // It failed or was settled without a checkout: waiting longer brings nothing.
        if now.checkout_failed || now.attempt.status != PaymentStatus::Created {
            break;
        }
    }
    Ok(Outcome::StillOpening {
        lead_id: attempt.lead_id,
        offer: attempt.offer_slug,
    })
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
pub(crate) async fn insert_attempt(
    ctx: &AppContext,
    tx: &mut Tx,
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
    crate::jobs::followup::schedule(ctx, tx, attempt, &offer.followup).await?;
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
    let checkout = match gateway.create_checkout(&req).await {
        Ok(c) => c,
        Err(e) => {
            // So a second press does not wait for a checkout that will never come.
            if let Err(mark) = attempts::mark_checkout_failed(&ctx.db, &attempt.id, now_ms()).await {
                tracing::warn!(error = %mark, "failed checkout not marked");
            }
            return Err(not_opened(match e {
                GatewayError::Store(e) => NotOpened::Store(e),
                e => NotOpened::Gateway(e),
            }));
        }
    };
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
