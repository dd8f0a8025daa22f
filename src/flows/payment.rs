//! Applying what a gateway says about an attempt, from a webhook, the return redirect
//! or reconciliation, through the one state machine in `domain::payment`.

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::{PaymentStatus, Transition};
use crate::gateways::{EventFacts, GatewayError, Observation};
use crate::jobs::{FollowUpReason, Job, JobError};
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
        ctx.queue.enqueue(tx, &job, lead, std::time::Duration::ZERO).await?;
    }
    if to == PaymentStatus::Declined {
        let job = Job::FollowUp {
            attempt_id: attempt.id.clone(),
            reason: FollowUpReason::Declined,
        };
        ctx.queue.enqueue(tx, &job, lead, std::time::Duration::ZERO).await?;
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

/// The `apply_event` job: applies a stored, verified webhook event.
pub async fn apply_event(ctx: &AppContext, event_id: &str) -> Result<(), JobError> {
    let ev = inbox::get(&ctx.db, event_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("event {event_id} not found")))?;
    if ev.processed_at.is_some() {
        return Ok(());
    }
    let gateway = ev
        .gateway
        .parse()
        .map_err(|_| JobError::Permanent(format!("unknown gateway {}", ev.gateway)))?;
    let Some(gw) = ctx.gateways.get(gateway) else {
        return Err(JobError::Permanent(format!("gateway {} is not configured", ev.gateway)));
    };
    let parsed = gw
        .parse_event(&ev.query, &ev.body)
        .map_err(|e| JobError::Permanent(format!("stored event unreadable: {e}")))?;
    let seen = match parsed.facts {
        EventFacts::Observed(o) => o,
        EventFacts::Irrelevant => return Ok(mark(ctx, event_id, "no_status").await?),
        // The event only names the payment: its status comes from the gateway's API.
        EventFacts::Changed { gateway_ref } => match gw.lookup(&gateway_ref).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::warn!(%gateway_ref, gateway = %ev.gateway, "webhook names a payment the gateway does not know");
                return Ok(mark(ctx, event_id, "unknown_payment").await?);
            }
            Err(e) => return Err(gateway_failure(e)),
        },
    };
    let attempt = match seen.reference.as_deref() {
        Some(reference) => attempts::get(&ctx.db, reference).await?,
        None => None,
    };
    let Some(attempt) = attempt else {
        tracing::warn!(reference = ?seen.reference, gateway = %ev.gateway, "webhook for an unknown reference; kept in the inbox");
        ctx.metrics.unknown_reference(&ev.gateway);
        return Ok(mark(ctx, event_id, "unknown_reference").await?);
    };
    crate::telemetry::record_ids(&attempt.lead_id, &attempt.id);
    apply(ctx, attempt, &seen, Source::Webhook, Some(event_id)).await?;
    Ok(())
}

pub fn gateway_failure(e: GatewayError) -> JobError {
    match e {
        GatewayError::Unavailable(message) => JobError::Transient {
            message,
            retry_after: None,
        },
        GatewayError::Rejected(message) => JobError::Permanent(message),
        GatewayError::Store(e) => JobError::from(e),
    }
}

async fn mark(ctx: &AppContext, event_id: &str, outcome: &str) -> StoreResult<()> {
    let mut tx = ctx.db.begin().await?;
    inbox::mark_processed(&mut tx, event_id, outcome, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}
