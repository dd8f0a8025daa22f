//! Applying what a gateway says about an attempt, from a webhook, the return redirect
//! or reconciliation, through the one state machine in `domain::payment`. It lives with
//! the jobs because job handlers (reconciliation, events) apply statuses themselves, and
//! a lower room must not call up into `flows`.

use std::time::Duration;

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::{PaymentStatus, Transition};
use crate::gateways::Observation;
use crate::jobs::{FollowUpReason, Job};
use crate::store::attempts::StatusChange;
use crate::store::{attempts, inbox, StoreError, StoreResult};

/// What told us about a payment; kept on the attempt and counted in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Return,
    Reconcile,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Return => "return",
            Source::Reconcile => "reconcile",
        }
    }
}

/// Applies the observation to the attempt and returns the attempt as it now stands. A
/// status change, the jobs it calls for (deal outcome, decline follow-up) and, for
/// webhooks, the inbox row's processed mark commit together.
pub async fn apply(
    ctx: &AppContext,
    mut attempt: Attempt,
    seen: &Observation,
    source: Source,
    event: Option<&str>,
) -> StoreResult<Attempt> {
    if let Some(problem) = mismatch(&attempt, seen) {
        // Never a win for a payment that is not the one we asked for: leave the attempt
        // alone and tell the operator.
        tracing::error!(problem, gateway_ref = ?seen.gateway_ref, "gateway report does not match the attempt");
        ctx.metrics.mismatch(attempt.gateway.as_str());
        if let Some(ev) = event {
            mark(ctx, ev, "mismatch").await?;
        }
        return Ok(attempt);
    }
    // Compare-and-set: if another writer moved the status between our read and write,
    // read again and re-decide. Three rounds are plenty: each loss means real progress.
    for round in 0..3 {
        if round > 0 {
            attempt = attempts::get(&ctx.db, &attempt.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("attempt {} vanished", attempt.id)))?;
        }
        let transition = attempt.status.apply(seen.status);
        let Transition::Changed { from, to } = transition else {
            if let Some(ev) = event {
                mark(ctx, ev, outcome(&transition)).await?;
            }
            return Ok(attempt);
        };
        let change = StatusChange {
            from,
            to,
            gateway_ref: seen.gateway_ref.as_deref(),
            detail: seen.detail.as_deref(),
            source: source.as_str(),
        };
        let now = now_ms();
        let mut tx = ctx.db.begin().await?;
        if !attempts::cas_status(&mut tx, &attempt.id, &change, now).await? {
            tx.rollback().await?;
            continue;
        }
        enqueue_consequences(ctx, &mut tx, &attempt, to).await?;
        if let Some(ev) = event {
            inbox::mark_processed(&mut tx, ev, outcome(&transition), now).await?;
        }
        tx.commit().await?;
        ctx.queue.wake();
        ctx.metrics
            .status_changed(attempt.gateway.as_str(), source.as_str(), to.as_str());
        tracing::info!(%from, %to, source = source.as_str(), "payment status changed");
        // The row now holds what `cas_status` wrote; mirror it instead of reading it back.
        attempt.status = to;
        attempt.gateway_ref = seen.gateway_ref.clone().or(attempt.gateway_ref);
        attempt.status_detail = seen.detail.clone().or(attempt.status_detail);
        attempt.settled_by = Some(source.as_str().to_owned());
        attempt.updated_at = now;
        return Ok(attempt);
    }
    Err(StoreError::Corrupt(format!(
        "attempt {} kept changing under us",
        attempt.id
    )))
}

/// Why a report cannot be about this attempt, if it cannot.
fn mismatch(attempt: &Attempt, seen: &Observation) -> Option<&'static str> {
    if seen.reference.as_deref().is_some_and(|r| r != attempt.id) {
        return Some("reference differs");
    }
    match &seen.charged {
        Some(c) if seen.status == PaymentStatus::Approved && !c.matches(&attempt.amount) => {
            Some("amount or currency differs")
        }
        _ => None,
    }
}

async fn enqueue_consequences(
    ctx: &AppContext,
    tx: &mut crate::store::Tx,
    attempt: &Attempt,
    to: PaymentStatus,
) -> StoreResult<()> {
    let lead = Some(attempt.lead_id.as_str());
    if to.is_final() {
        let job = Job::DealOutcome {
            attempt_id: attempt.id.clone(),
        };
        ctx.queue.enqueue(tx, &job, lead, Duration::ZERO).await?;
    }
    if to == PaymentStatus::Declined {
        let job = Job::FollowUp {
            attempt_id: attempt.id.clone(),
            reason: FollowUpReason::Declined,
        };
        ctx.queue.enqueue(tx, &job, lead, Duration::ZERO).await?;
    }
    Ok(())
}

fn outcome(t: &Transition) -> &'static str {
    match t {
        Transition::Changed { .. } => "applied",
        Transition::Unchanged => "unchanged",
        Transition::Ignored { .. } => "ignored_stale",
    }
}

/// Records what became of a stored webhook event.
pub async fn mark(ctx: &AppContext, event_id: &str, outcome: &str) -> StoreResult<()> {
    let mut tx = ctx.db.begin().await?;
    inbox::mark_processed(&mut tx, event_id, outcome, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}
