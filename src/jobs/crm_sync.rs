//! Person and deal in the CRM for an attempt, created at most once: each object is
//! recorded against the lead as soon as the CRM returns it, and before creating a deal
//! we ask the CRM for one tagged with our attempt id (a crash may have hidden it).

use crate::context::AppContext;
use crate::crm::{DealInput, PersonInput};
use crate::domain::lead::{Attempt, Lead};
use crate::domain::offer::Offer;
use crate::store::{attempts, crm_records, leads};

use super::JobError;

pub const PERSON: &str = "person";
pub const DEAL: &str = "deal";
pub const TASK: &str = "task";

/// The attempt with its lead and offer, or a permanent error if any is gone.
pub struct Subject<'a> {
    pub lead: Lead,
    pub attempt: Attempt,
    pub offer: &'a Offer,
}

pub async fn load<'a>(ctx: &'a AppContext, attempt_id: &str) -> Result<Subject<'a>, JobError> {
    let attempt = attempts::get(&ctx.db, attempt_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("attempt {attempt_id} not found")))?;
    let lead = leads::get(&ctx.db, &attempt.lead_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("lead {} not found", attempt.lead_id)))?;
    crate::telemetry::record_ids(&lead.id, attempt_id);
    let offer = ctx
        .offer(&attempt.offer_slug)
        .ok_or_else(|| JobError::Permanent(format!("offer {:?} is no longer configured", attempt.offer_slug)))?;
    Ok(Subject { lead, attempt, offer })
}

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = load(ctx, attempt_id).await?;
    ensure_deal(ctx, &s).await?;
    Ok(())
}

pub async fn ensure_person(ctx: &AppContext, lead: &Lead) -> Result<String, JobError> {
    let crm = ctx.crm.name();
    if let Some(r) = crm_records::find(&ctx.db, crm, PERSON, &lead.id).await? {
        return Ok(r.remote_id);
    }
    let c = &lead.contact;
    let input = PersonInput {
        name: &c.name,
        email: &c.email,
        phone: &c.phone,
    };
    let id = ctx.crm.upsert_person(&input).await?;
    crm_records::record(&ctx.db, crm, PERSON, &lead.id, &lead.id, &id, None).await?;
    Ok(id)
}

/// Returns (person id, deal id), creating whichever does not exist yet.
pub async fn ensure_deal(ctx: &AppContext, s: &Subject<'_>) -> Result<(String, String), JobError> {
    let crm = ctx.crm.name();
    let person = ensure_person(ctx, &s.lead).await?;
    if let Some(r) = crm_records::find(&ctx.db, crm, DEAL, &s.attempt.id).await? {
        return Ok((person, r.remote_id));
    }
    let deal = match ctx.crm.find_deal(&s.attempt.id).await? {
        Some(id) => id,
        None => {
            let input = DealInput {
                attempt_id: &s.attempt.id,
                person_id: &person,
                title: format!("{} — {}", s.offer.title, s.lead.contact.name),
                value: s.attempt.amount,
                pipeline: &s.offer.crm_pipeline,
                stage: &s.offer.crm_stage,
                offer_slug: s.offer.slug.as_str(),
                utm: &s.lead.utm,
            };
            ctx.crm.create_deal(&input).await?
        }
    };
    crm_records::record(&ctx.db, crm, DEAL, &s.attempt.id, &s.lead.id, &deal, Some("open")).await?;
    tracing::info!(deal_id = %deal, "deal recorded");
    Ok((person, deal))
}
