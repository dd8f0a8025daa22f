//! One step of an attempt's follow-up sequence (the offer's policy): a call or a task for
//! sales in the CRM, or a recovery email to the customer. Whether it is still needed is
//! decided when it runs, so a payment in the meantime cancels it without touching the
//! queue; each step creates its task or sends its email at most once.

use std::time::Duration;

use super::crm_sync::{self, Subject, FOLLOWUP_TASK};
use super::facts::Facts;
use super::{email, FollowUpReason, Job, JobError};
use crate::context::AppContext;
use crate::crm::TaskInput;
use crate::domain::event::{self, FollowupCreated, Payload};
use crate::domain::followup::{AfterLastStep, ConsentRule, OwnerRule, Policy, Step, StepKind, TaskKind};
use crate::domain::lead::Attempt;
use crate::domain::PaymentStatus;
use crate::store::{attempts, crm_records, followups, StoreResult, Tx};

pub async fn run(ctx: &AppContext, attempt_id: &str, reason: FollowUpReason) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    let policy = &s.offer.followup;
    let Some(step) = step_of(policy, reason) else {
        return skip(ctx, "step no longer configured");
    };
    let history = attempts::for_lead(&ctx.db, &s.lead.id).await?;
    if let Some(why) = skip_reason(&s, &history, policy, step, reason) {
        return skip(ctx, why);
    }
    match step.kind {
        StepKind::Email => send_recovery(ctx, &s, &history, step, reason).await?,
        StepKind::Call | StepKind::Task => open_task(ctx, &s, &history, step, reason).await?,
    }
    if let FollowUpReason::Abandoned { step: n } = reason {
        if n + 1 == policy.steps.len() {
            finish_sequence(ctx, &s).await?;
        }
    }
    Ok(())
}

fn skip(ctx: &AppContext, why: &'static str) -> Result<(), JobError> {
    tracing::info!(why, "no follow-up needed");
    ctx.metrics.followup("skipped", why);
    Ok(())
}

fn step_of(policy: &Policy, reason: FollowUpReason) -> Option<&Step> {
    match reason {
        FollowUpReason::Abandoned { step } => policy.steps.get(step),
        FollowUpReason::Declined => policy.declined.as_ref(),
    }
}

/// Why this step must not fire now, if it must not. Paid wins over everything: a
/// customer who paid is never chased.
fn skip_reason(
    s: &Subject<'_>,
    history: &[Attempt],
    policy: &Policy,
    step: &Step,
    reason: FollowUpReason,
) -> Option<&'static str> {
    let offer = s.attempt.offer_slug.as_str();
    let ours = history.iter().filter(|a| a.offer_slug == offer);
    if ours.clone().any(|a| a.status == PaymentStatus::Approved) {
        return Some("paid");
    }
    if ours
        .clone()
        .any(|a| a.created_at > s.attempt.created_at && a.id != s.attempt.id)
    {
        return Some("newer_attempt");
    }
    let declined_task = policy.declined.as_ref().is_some_and(|d| d.kind != StepKind::Email);
    match (reason, s.attempt.status) {
        // Delayed methods (bank transfer, cash voucher) are in progress, not abandoned.
        (FollowUpReason::Abandoned { .. }, PaymentStatus::Pending) => Some("pending"),
        // The decline opened a task at once; the first call would repeat it.
        (FollowUpReason::Abandoned { step: 0 }, PaymentStatus::Declined)
            if declined_task && step.kind != StepKind::Email =>
        {
            Some("decline_task_covers_it")
        }
        (FollowUpReason::Declined, st) if st != PaymentStatus::Declined => Some("no_longer_declined"),
        _ => None,
    }
}

fn key_of(attempt_id: &str, reason: FollowUpReason) -> String {
    match reason {
        FollowUpReason::Abandoned { step } => format!("{attempt_id}:abandoned:{step}"),
        FollowUpReason::Declined => format!("{attempt_id}:declined"),
    }
}

async fn open_task(
    ctx: &AppContext,
    s: &Subject<'_>,
    history: &[Attempt],
    step: &Step,
    reason: FollowUpReason,
) -> Result<(), JobError> {
    let key = key_of(&s.attempt.id, reason);
    if crm_records::find(&ctx.db, ctx.crm.name(), FOLLOWUP_TASK, &key)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (person, deal) = crm_sync::ensure_deal(ctx, s).await?;
    let now = ctx.clock.now_ms();
    let owner = match &step.owner {
        OwnerRule::DealOwner => None,
        OwnerRule::User(u) => Some(u.clone()),
        OwnerRule::RoundRobin(users) => Some(followups::round_robin_owner(&ctx.db, &key, users, now).await?),
    };
    let link = crate::links::resume_link(ctx, &s.lead).map_err(JobError::Permanent)?;
    let facts = Facts::new(s, history, &link, now);
    let lang = s.lead.lang;
    let task = TaskInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        subject: step.subject.get(lang).render(&|v| facts.value(v)),
        body: step.body.get(lang).render(&|v| facts.value(v)),
        // Created now, so sales see it; due when they are at work.
        due_at: s.offer.followup.hours.next_open(now),
        kind: match step.kind {
            StepKind::Call => TaskKind::Call,
            _ => TaskKind::Todo,
        },
        priority: step.priority,
        owner: owner.as_deref(),
    };
    let created = |task_id: &str| {
        let (reason, step) = match reason {
            FollowUpReason::Abandoned { step } => ("abandoned", Some(step)),
            FollowUpReason::Declined => ("declined", None),
        };
        Payload::FollowupCreated(FollowupCreated {
            subject: event::Subject::of(&s.attempt),
            reason: reason.to_owned(),
            step,
            crm: ctx.crm.name().to_owned(),
            task_id: task_id.to_owned(),
        })
    };
    let id = crm_sync::task_once_then(ctx, FOLLOWUP_TASK, &s.lead.id, &task, Some(&created)).await?;
    ctx.metrics.followup("task", "");
    tracing::info!(task_id = %id, "follow-up task created");
    Ok(())
}

async fn send_recovery(
    ctx: &AppContext,
    s: &Subject<'_>,
    history: &[Attempt],
    step: &Step,
    reason: FollowUpReason,
) -> Result<(), JobError> {
    let perms = followups::email_permissions(&ctx.db, &s.lead.id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("lead {} not found", s.lead.id)))?;
    if perms.unsubscribed {
        return skip(ctx, "unsubscribed");
    }
    if s.offer.followup.email_consent == ConsentRule::Required && !perms.consented {
        return skip(ctx, "no_consent");
    }
    let key = format!("{}:email", key_of(&s.attempt.id, reason));
    let link = crate::links::resume_link(ctx, &s.lead).map_err(JobError::Permanent)?;
    let facts = Facts::new(s, history, &link, ctx.clock.now_ms());
    let lang = s.lead.lang;
    let letter = email::Letter {
        key: &key,
        kind: "recovery",
        subject: step.subject.get(lang).render(&|v| facts.value(v)),
        text: step.body.get(lang).render(&|v| facts.value(v)),
        action: Some((
            crate::domain::followup::texts::labels(lang).resume_payment.to_owned(),
            link.clone(),
        )),
        unsubscribe: true,
    };
    email::send_once(ctx, &s.lead, &letter).await
}

/// After the last step of an unpaid attempt: remember it, and let the deal job move the
/// deal to the offer's "abandoned" stage if the policy has one (it moves to won instead if
/// the customer pays later, whichever job runs last).
async fn finish_sequence(ctx: &AppContext, s: &Subject<'_>) -> Result<(), JobError> {
    let mut tx = ctx.db.begin().await?;
    let first = followups::mark_abandoned(&mut tx, &s.attempt.id, ctx.clock.now_ms()).await?;
    if first && matches!(s.offer.followup.after_last_step, AfterLastStep::Stage(_)) {
        let job = Job::DealOutcome {
            attempt_id: s.attempt.id.clone(),
        };
        ctx.queue
            .enqueue(&mut tx, &job, Some(&s.lead.id), Duration::ZERO)
            .await?;
    }
    tx.commit().await?;
    ctx.queue.wake();
    Ok(())
}

/// Queues the offer's follow-up steps for a new attempt. Calls and tasks are created at
/// their delay (with a due time inside business hours); emails wait for business hours.
pub async fn schedule(ctx: &AppContext, tx: &mut Tx, attempt: &Attempt, policy: &Policy) -> StoreResult<()> {
    let now = ctx.clock.now_ms();
    for (n, step) in policy.steps.iter().enumerate() {
        let job = Job::FollowUp {
            attempt_id: attempt.id.clone(),
            reason: FollowUpReason::Abandoned { step: n },
        };
        let delay = delay_of(policy, step, step.after, now);
        ctx.queue.enqueue(tx, &job, Some(&attempt.lead_id), delay).await?;
    }
    Ok(())
}

/// Queues the first step now: the checkout expired, so the attempt counts as abandoned
/// at once. The step keeps its key, so its own turn later finds it done.
pub async fn abandoned_now(ctx: &AppContext, tx: &mut Tx, attempt: &Attempt, policy: &Policy) -> StoreResult<()> {
    let Some(step) = policy.steps.first() else {
        return Ok(());
    };
    let job = Job::FollowUp {
        attempt_id: attempt.id.clone(),
        reason: FollowUpReason::Abandoned { step: 0 },
    };
    let delay = delay_of(policy, step, Duration::ZERO, ctx.clock.now_ms());
    ctx.queue.enqueue(tx, &job, Some(&attempt.lead_id), delay).await?;
    Ok(())
}

fn delay_of(policy: &Policy, step: &Step, after: Duration, now: i64) -> Duration {
    if step.kind != StepKind::Email {
        return after;
    }
    let at = now.saturating_add(crate::clock::ms(after));
    let open = policy.hours.next_open(at);
    Duration::from_millis(u64::try_from(open.saturating_sub(now)).unwrap_or(0))
}
