//! Person and deal in the CRM for an attempt, created at most once: each object is
//! recorded against the lead as soon as the CRM returns it. Before the first create we
//! record the intent; a retry that finds an intent but no object asks the CRM for one
//! tagged with our key (a crash between the CRM's 201 and our commit hid it) before
//! creating again. The happy path thus costs no search, which the CRMs limit hardest.

use std::future::Future;
use std::time::Duration;

use crate::clock::ms;
use crate::context::AppContext;
use crate::crm::{builtin, CrmError, DealInput, NoteInput, PersonInput, TaskInput};
use crate::domain::event::{self, DealSynced, Payload};
use crate::domain::lead::{Attempt, Lead};
use crate::domain::offer::Offer;
use crate::store::{attempts, crm_records, leads, StoreError, Tx};

use super::JobError;

pub const PERSON: &str = "person";
pub const DEAL: &str = "deal";
pub const TASK: &str = "task";
/// A follow-up task (abandoned or declined), closed once the lead pays; other tasks
/// (disputes, second payments) are `TASK`.
pub const FOLLOWUP_TASK: &str = "followup_task";
pub const NOTE: &str = "note";
/// The payment fields last written on the attempt's deal (their fingerprint as state).
pub const FIELDS: &str = "deal_fields";
/// Normalised email → the CRM's person, shared by every lead with that email.
const PERSON_BY_EMAIL: &str = "person_email";
/// Held while one job finds or creates the person of an email.
const PERSON_CLAIM: &str = "person_email_claim";

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

/// The lead's person in the CRM. One person per email across leads: the first job to
/// claim an email creates (or finds) the person, others wait for it and reuse its id.
pub async fn ensure_person(ctx: &AppContext, lead: &Lead) -> Result<String, JobError> {
    let crm = ctx.crm.name();
    let email = lead.contact.email.as_str();
    let (mine, by_email) = crm_records::find_pair(&ctx.db, crm, (PERSON, &lead.id), (PERSON_BY_EMAIL, email)).await?;
    if let Some(r) = mine {
        return Ok(r.remote_id);
    }
    if let Some(r) = by_email {
        crm_records::record(&ctx.db, crm, PERSON, &lead.id, &lead.id, &r.remote_id, None).await?;
        return Ok(r.remote_id);
    }
    let stale_after = ms(ctx.settings.worker.lease);
    if !crm_records::claim(&ctx.db, crm, PERSON_CLAIM, email, &lead.id, stale_after).await? {
        return Err(JobError::Transient {
            message: "another job is creating this person in the CRM".into(),
            retry_after: Some(Duration::from_secs(2)),
        });
    }
    let c = &lead.contact;
    let input = PersonInput {
        name: &c.name,
        email: &c.email,
        phone: &c.phone,
    };
    let id = ctx.crm.upsert_person(&input).await?;
    crm_records::record(&ctx.db, crm, PERSON_BY_EMAIL, email, &lead.id, &id, None).await?;
    crm_records::record(&ctx.db, crm, PERSON, &lead.id, &lead.id, &id, None).await?;
    Ok(id)
}

/// The attempt with its lead and offer, borrowed: what a request that stored them holds.
#[derive(Clone, Copy)]
pub struct Held<'a> {
    pub lead: &'a Lead,
    pub attempt: &'a Attempt,
    pub offer: &'a Offer,
}

impl Subject<'_> {
    fn held(&self) -> Held<'_> {
        Held {
            lead: &self.lead,
            attempt: &self.attempt,
            offer: self.offer,
        }
    }
}

/// Returns (person id, deal id), creating whichever does not exist yet.
pub async fn ensure_deal(ctx: &AppContext, s: &Subject<'_>) -> Result<(String, String), JobError> {
    if is_here(ctx) {
        let mut tx = ctx.db.begin_write().await?;
        let found = ensure_deal_in(ctx, &mut tx, s.held()).await?;
        tx.commit().await?;
        ctx.queue.wake();
        return Ok(found);
    }
    let person = ensure_person(ctx, &s.lead).await?;
    let input = deal_input(s.held(), &person);
    let synced = |deal_id: &str| synced(ctx, &s.attempt, deal_id);
    let deal = create_once_then(
        ctx,
        (DEAL, &s.attempt.id, &s.lead.id),
        ctx.crm.find_deal(&s.attempt.id),
        ctx.crm.create_deal(&input),
        Some(&synced),
    )
    .await?;
    Ok((person, deal))
}

/// The CRM is the built-in one, whose tables are in our database (see [`ensure_deal_in`]).
pub fn is_here(ctx: &AppContext) -> bool {
    ctx.crm.in_our_database()
}

fn deal_input<'a>(s: Held<'a>, person: &'a str) -> DealInput<'a> {
    DealInput {
        attempt_id: &s.attempt.id,
        person_id: person,
        title: format!("{} — {}", s.offer.title.default_text(), s.lead.contact.name),
        value: s.attempt.amount,
        pipeline: &s.offer.crm_pipeline,
        stage: &s.offer.crm_stage,
        offer_slug: s.offer.slug.as_str(),
        utm: &s.lead.utm,
    }
}

fn synced(ctx: &AppContext, attempt: &Attempt, deal_id: &str) -> Payload {
    Payload::DealSynced(DealSynced {
        subject: event::Subject::of(attempt),
        crm: ctx.crm.name().to_owned(),
        deal_id: deal_id.to_owned(),
    })
}

/// [`ensure_deal`] on the built-in CRM ([`is_here`]), in the caller's transaction: the
/// person, the deal, their records and the deal's event commit with whatever else `tx`
/// holds (a submit's lead and attempt, so the deal needs no job of its own). There is no
/// window between a create and its record for a crash to fall into, so no intent or
/// person claim is needed; the built-in rows are unique by email and by attempt, so two
/// writers racing for one email or one attempt end up with the same row.
pub async fn ensure_deal_in(ctx: &AppContext, tx: &mut Tx, s: Held<'_>) -> Result<(String, String), StoreError> {
    let crm = ctx.crm.name();
    let (lead, attempt) = (s.lead, s.attempt);
    let (person, deal) = crm_records::find_pair_in(tx, crm, (PERSON, &lead.id), (DEAL, &attempt.id)).await?;
    let person = match person {
        Some(r) => r.remote_id,
        None => {
            let c = &lead.contact;
            let input = PersonInput {
                name: &c.name,
                email: &c.email,
                phone: &c.phone,
            };
            let id = builtin::person_in(tx, &input).await?;
            let email = c.email.as_str();
            crm_records::record_in(tx, crm, PERSON_BY_EMAIL, email, &lead.id, &id, None).await?;
            crm_records::record_in(tx, crm, PERSON, &lead.id, &lead.id, &id, None).await?;
            id
        }
    };
    let deal = match deal {
        Some(r) => r.remote_id,
        None => {
            let id = builtin::deal_in(tx, &deal_input(s, &person)).await?;
            if crm_records::record_in(tx, crm, DEAL, &attempt.id, &lead.id, &id, Some("open")).await? {
                super::events::emit(ctx, tx, synced(ctx, attempt, &id)).await?;
                // Counted before the commit: a rolled-back one is the rare failed request.
                ctx.metrics.crm_created(crm, DEAL);
                tracing::info!(kind = DEAL, remote_id = %id, "CRM object recorded");
            }
            id
        }
    };
    Ok((person, deal))
}

/// Creates one CRM object per `key`, at most once (see the module's note). `find` and
/// `create` are only polled when needed.
pub async fn create_once<F, C>(
    ctx: &AppContext,
    kind: &str,
    key: &str,
    lead_id: &str,
    find: F,
    create: C,
) -> Result<String, JobError>
where
    F: Future<Output = Result<Option<String>, CrmError>>,
    C: Future<Output = Result<String, CrmError>>,
{
    create_once_then(ctx, (kind, key, lead_id), find, create, None).await
}

/// Builds an object's outbound event from its CRM id.
pub type EventOf<'a> = &'a (dyn Fn(&str) -> Payload + Sync);

/// [`create_once`], and `event` of the object committed with its record, once.
pub async fn create_once_then<F, C>(
    ctx: &AppContext,
    (kind, key, lead_id): (&str, &str, &str),
    find: F,
    create: C,
    event: Option<EventOf<'_>>,
) -> Result<String, JobError>
where
    F: Future<Output = Result<Option<String>, CrmError>>,
    C: Future<Output = Result<String, CrmError>>,
{
    let crm = ctx.crm.name();
    let intent = format!("{kind}_intent");
    let (done, tried) = crm_records::find_pair(&ctx.db, crm, (kind, key), (&intent, key)).await?;
    if let Some(r) = done {
        return Ok(r.remote_id);
    }
    let tried = tried.is_some();
    let found = if tried { find.await? } else { None };
    let id = match found {
        Some(id) => {
            tracing::info!(kind, remote_id = %id, "found a CRM object an earlier try created");
            ctx.metrics.crm_found_again(crm, kind);
            id
        }
        None => {
            if !tried {
                crm_records::record(&ctx.db, crm, &intent, key, lead_id, "-", None).await?;
            }
            let id = create.await?;
            ctx.metrics.crm_created(crm, kind);
            id
        }
    };
    let mut tx = ctx.db.begin().await?;
    let fresh = crm_records::record_in(&mut tx, crm, kind, key, lead_id, &id, Some("open")).await?;
    if let (true, Some(make)) = (fresh, event) {
        super::events::emit(ctx, &mut tx, make(&id)).await?;
    }
    tx.commit().await?;
    ctx.queue.wake();
    tracing::info!(kind, remote_id = %id, "CRM object recorded");
    Ok(id)
}

/// Adds the note `n.key` to its deal unless we recorded it before.
pub async fn note_once(ctx: &AppContext, lead_id: &str, n: &NoteInput<'_>) -> Result<(), JobError> {
    let crm = ctx.crm.name();
    if crm_records::find(&ctx.db, crm, NOTE, n.key).await?.is_some() {
        return Ok(());
    }
    let id = ctx.crm.add_note(n).await?;
    crm_records::record(&ctx.db, crm, NOTE, n.key, lead_id, &id, None).await?;
    Ok(())
}

/// Creates the task `t.key` at most once (see `create_once`), recorded as `kind` (`TASK`
/// or `FOLLOWUP_TASK`); returns its CRM id.
pub async fn task_once(ctx: &AppContext, kind: &str, lead_id: &str, t: &TaskInput<'_>) -> Result<String, JobError> {
    task_once_then(ctx, kind, lead_id, t, None).await
}

/// [`task_once`] with the task's outbound event (see [`create_once_then`]).
pub async fn task_once_then(
    ctx: &AppContext,
    kind: &str,
    lead_id: &str,
    t: &TaskInput<'_>,
    event: Option<EventOf<'_>>,
) -> Result<String, JobError> {
    create_once_then(
        ctx,
        (kind, t.key, lead_id),
        ctx.crm.find_task(t.deal_id, t.key),
        ctx.crm.create_task(t),
        event,
    )
    .await
}

/// `Label: value` lines, the shape of every note and task body leadgate writes.
pub fn labelled(labels: &[&str], values: &[String]) -> String {
    labels
        .iter()
        .zip(values)
        .map(|(l, v)| format!("{l}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
