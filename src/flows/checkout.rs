//! From a submitted form (or a resume link) to the gateway's hosted checkout.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{ms, new_id};
use crate::context::AppContext;
use crate::domain::lead::{Attempt, ConsentGiven, Contact, Lead, Utm};
use crate::domain::offer::Offer;
use crate::domain::{Lang, Money, PaymentStatus};
use crate::jobs::attempt::{bind_deal, insert_attempt_inline, new_attempt};
pub use crate::jobs::attempt::{open_checkout, CheckoutError, NotOpened};
use crate::jobs::Job;
use crate::store::attempts::{self, Prior};
use crate::store::jobs::ClaimedJob;
use crate::store::payment_links::CrmBinding;
use crate::store::{leads, StoreError, Tx};

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
    let crm_job = insert_attempt_inline(ctx, &mut tx, &lead, &attempt, offer).await?;
    crate::jobs::events::emit(ctx, &mut tx, crate::jobs::events::lead_created(&attempt, "form")).await?;
    let open = since_lead(now - ttl);
    expire_replaced(ctx, &mut tx, &open, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!(offer = %offer.slug, "lead stored");
    proceed(ctx, offer, &lead, attempt, crm_job)
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
    let crm_job = insert_attempt_inline(ctx, &mut tx, lead, &attempt, offer).await?;
    expire_replaced(ctx, &mut tx, &prior, offer).await?;
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!("attempt resumed");
    proceed(ctx, offer, lead, attempt, crm_job).await.map(Outcome::Checkout)
}

/// Queues the closing of every earlier checkout that could still take a payment, in the
/// transaction that stores the attempt replacing them (one purchase, one payment).
async fn expire_replaced(ctx: &AppContext, tx: &mut Tx, earlier: &[Prior], offer: &Offer) -> Result<(), StoreError> {
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

/// Runs the CRM sync and opens the gateway's checkout at the same time, so the customer
/// waits for the slower of the two, not for both in turn. The answer waits for the sync
/// too (so the deal usually exists before the redirect), but only up to the inline
/// deadline: a slow CRM's job keeps running in the background under its lease, and a
/// failed one is retried by the worker. A checkout that cannot be opened is answered at
/// once; the sync goes on in the background all the same.
async fn proceed(
    ctx: &Arc<AppContext>,
    offer: &Offer,
    lead: &Lead,
    attempt: Attempt,
    crm_job: Option<ClaimedJob>,
) -> Result<String, CheckoutError> {
    // Started before the checkout is asked for, so it runs whatever becomes of that.
    let started = crm_job.map(|job| ctx.queue.run_now(ctx, job));
    let crm = async {
        if let Some(started) = started {
            started.wait(ctx.settings.inline_crm_deadline).await;
        }
    };
    let checkout = open_checkout(ctx, offer, lead, &attempt);
    tokio::pin!(crm, checkout);
    let mut crm_done = false;
    let url = loop {
        tokio::select! {
            opened = &mut checkout => break opened?,
            () = &mut crm, if !crm_done => crm_done = true,
        }
    };
    if !crm_done {
        crm.await;
    }
    Ok(url)
}
