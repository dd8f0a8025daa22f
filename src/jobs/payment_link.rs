//! Making a payment link: from a CRM deal entering the link stage (a job), the admin form
//! or the API (flows). A link has its own lead (the person it was made for) and is bound to that
//! person's CRM deal when there is one, so its attempts create no second deal or person.
//! Its first checkout is opened at once; its page reopens that checkout, or a fresh one
//! once it expired, until the link is paid or expires.

use std::time::Duration;

use super::Job;
use crate::clock::{ms, new_id};
use crate::context::AppContext;
use crate::domain::lead::{Contact, Lead, Utm};
use crate::domain::offer::Offer;
use crate::domain::payment_link::{AmountError, LinkSource};
use crate::domain::{Lang, LocalizedText, Money};
use crate::links;
use crate::store::payment_links::{self, CrmBinding, PaymentLink};
use crate::store::{attempts, leads, StoreError};

use super::attempt::{bind_deal, insert_attempt, new_attempt, open_checkout};

/// The longest description a link may show instead of the offer's title.
pub const DESCRIPTION_MAX_CHARS: usize = 200;

/// What a link is made from; the caller has parsed the person already.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub contact: Contact,
    pub lang: Lang,
    /// The offer whose gateway, pipeline, seller and follow-ups the link uses; `None`:
    /// `[payment_links] offer`.
    pub offer: Option<String>,
    /// What to charge instead of the offer's price (checked against the limits).
    pub amount: Option<Money>,
    /// Shown (and sent to the gateway) instead of the offer's title.
    pub description: Option<String>,
    /// The CRM deal (and person) its attempts are bound to; `None`: one is created as for
    /// a form lead.
    pub deal: Option<DealRef>,
    /// Epoch ms; `None`: `[payment_links] expires_in` from now.
    pub expires_at: Option<i64>,
    pub source: LinkSource,
    pub idempotency: Option<Idempotency>,
    /// Email the link to the person (through `[email]`, when configured).
    pub email_link: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRef {
    pub deal_id: String,
    pub person_id: Option<String>,
}

/// A retry of the same request returns the same link; the key is scoped by the caller
/// (`api:<token id>:<key>`), the fingerprint a digest of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedLink {
    pub link_id: String,
    pub url: String,
    /// The attempt the link's first checkout belongs to (its newest, for a replay).
    pub attempt_id: String,
    pub lead_id: String,
    pub expires_at: i64,
    /// The gateway's hosted checkout, when it opened (a failed gateway call leaves the link
    /// valid: its page opens a fresh checkout).
    pub checkout_url: Option<String>,
    /// An earlier request made this link (same idempotency key, or the deal's open link).
    pub replayed: bool,
}

/// A field of the request and what is wrong with it, for a 422 or the admin form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid payment link request")]
    Invalid(Vec<FieldProblem>),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key reused with a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

/// The offer a link charges through, as its customer sees it: the link's description
/// replaces the title (and goes to the gateway), the link's amount the price.
pub fn offer_view(offer: &Offer, link: &PaymentLink) -> Offer {
    let mut o = offer.clone();
    if let Some(d) = &link.description {
        o.title = LocalizedText::plain(o.lang, d.clone());
        o.description = LocalizedText::plain(o.lang, String::new());
        o.price_note = LocalizedText::plain(o.lang, String::new());
    }
    o.price = link.amount;
    o
}

/// Checks the request against the offer, the limits and the gateway's rules.
fn check(ctx: &AppContext, new: &NewLink, now: i64) -> Result<(Offer, Money, i64), LinkError> {
    let cfg = &ctx.settings.payment_links;
    let mut problems = Vec::new();
    let slug = new.offer.as_deref().unwrap_or(&cfg.default_offer);
    let Some(offer) = ctx.offer(slug) else {
        return Err(LinkError::Invalid(vec![problem(
            "offer",
            format!("no offer has the slug {slug:?}"),
        )]));
    };
    let amount = new.amount.unwrap_or(offer.price);
    match cfg.limits.check(offer.gateway, &amount, &offer.price) {
        Ok(()) => {}
        Err(AmountError::Currency(m)) => problems.push(problem("currency", m)),
        Err(AmountError::Amount(m)) => problems.push(problem("amount_minor", m)),
    }
    if let Some(d) = &new.description {
        if d.trim().is_empty() || d.chars().count() > DESCRIPTION_MAX_CHARS || d.chars().any(char::is_control) {
            problems.push(problem(
                "description",
                format!("one line of 1 to {DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
    }
    let expires_at = new.expires_at.unwrap_or(now + ms(cfg.default_ttl));
    if expires_at <= now {
        problems.push(problem("expires_at", "must be in the future"));
    } else if expires_at > now + ms(cfg.max_ttl) {
        problems.push(problem(
            "expires_at",
            format!("at most {} from now", humantime::format_duration(cfg.max_ttl)),
        ));
    }
    if !problems.is_empty() {
        return Err(LinkError::Invalid(problems));
    }
    Ok((offer.clone(), amount, expires_at))
}

/// Makes the link, its lead and first attempt (bound to the deal when given) and the jobs
/// that follow in one transaction, then opens its checkout. A replay (same idempotency
/// key and request, or a deal whose link is still open) returns the link made before.
pub async fn create(ctx: &AppContext, new: NewLink) -> Result<CreatedLink, LinkError> {
    let now = ctx.clock.now_ms();
    let (offer, amount, expires_at) = check(ctx, &new, now)?;
    let crm = ctx.crm.name();
    let mut tx = ctx.db.begin_write().await?;
    if let Some(idem) = &new.idempotency {
        tx.take_turn(&format!("link|{}", idem.key)).await?;
        if let Some(link) = payment_links::by_idempotency_key(&mut tx, &idem.key).await? {
            tx.rollback().await?;
            if link.fingerprint.as_deref() != Some(idem.fingerprint.as_str()) {
                return Err(LinkError::KeyReused);
            }
            return replayed(ctx, link).await;
        }
    }
    if let Some(deal) = &new.deal {
        // A deal moved out of the stage and back, or two automations firing: one link.
        tx.take_turn(&format!("link|deal|{crm}|{}", deal.deal_id)).await?;
        if let Some(link) = payment_links::open_for_deal(&mut tx, crm, &deal.deal_id, now).await? {
            tx.rollback().await?;
            tracing::info!(link_id = %link.id, "the deal has an open payment link: reusing it");
            return replayed(ctx, link).await;
        }
    }
    let lead = Lead {
        id: new_id(),
        offer_slug: offer.slug.to_string(),
        contact: new.contact,
        lang: new.lang,
        utm: Utm::default(),
        consent: None,
        created_at: now,
    };
    let link = PaymentLink {
        id: new_id(),
        lead_id: lead.id.clone(),
        offer_slug: offer.slug.to_string(),
        amount,
        description: new.description.map(|d| d.trim().to_owned()),
        crm: new.deal.map(|d| CrmBinding {
            crm: crm.to_owned(),
            deal_id: d.deal_id,
            person_id: d.person_id,
        }),
        source: new.source,
        idempotency_key: new.idempotency.as_ref().map(|i| i.key.clone()),
        fingerprint: new.idempotency.map(|i| i.fingerprint),
        email_link: new.email_link,
        expires_at,
        created_at: now,
    };
    leads::insert(&mut tx, &lead).await?;
    payment_links::insert(&mut tx, &link).await?;
    let attempt = new_attempt(&lead, &offer, amount, now);
    if let Some(b) = &link.crm {
        bind_deal(&mut tx, b, &lead.id, &attempt.id).await?;
    }
    insert_attempt(ctx, &mut tx, &attempt, &offer).await?;
    super::events::emit(ctx, &mut tx, super::events::lead_created(&attempt, "payment_link")).await?;
    let jobs = [
        link.crm.is_some().then(|| Job::LinkToDeal {
            link_id: link.id.clone(),
        }),
        link.email_link.then(|| Job::LinkEmail {
            link_id: link.id.clone(),
        }),
    ];
    for job in jobs.iter().flatten() {
        ctx.queue.enqueue(&mut tx, job, Some(&lead.id), Duration::ZERO).await?;
    }
    tx.commit().await?;
    ctx.queue.wake();
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    tracing::info!(link_id = %link.id, source = link.source.as_str(), "payment link made");
    // No inline CRM try: a bound deal needs none, and the worker was woken for the rest.
    let view = offer_view(&offer, &link);
    let checkout_url = match open_checkout(ctx, &view, &lead, &attempt).await {
        Ok(url) => Some(url),
        Err(e) => {
            // The link stands: its page opens a fresh checkout when pressed.
            tracing::warn!(error = %e, link_id = %link.id, "payment link's first checkout not opened");
            None
        }
    };
    Ok(CreatedLink {
        url: links::payment_link_url(ctx, &link.id),
        link_id: link.id,
        attempt_id: attempt.id,
        lead_id: lead.id,
        expires_at,
        checkout_url,
        replayed: false,
    })
}

async fn replayed(ctx: &AppContext, link: PaymentLink) -> Result<CreatedLink, LinkError> {
    let attempts = attempts::for_lead(&ctx.db, &link.lead_id).await?;
    let newest = attempts
        .iter()
        .max_by_key(|a| (a.created_at, a.id.as_str()))
        .ok_or_else(|| StoreError::Corrupt(format!("payment link {} has no attempt", link.id)))?;
    Ok(CreatedLink {
        url: links::payment_link_url(ctx, &link.id),
        attempt_id: newest.id.clone(),
        checkout_url: newest.checkout_url.clone(),
        lead_id: link.lead_id,
        expires_at: link.expires_at,
        link_id: link.id,
        replayed: true,
    })
}
