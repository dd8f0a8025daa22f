//! Applying what a gateway says about an attempt, from a webhook, the return redirect
//! or reconciliation, through the one state machine in `domain::payment`.

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::{PaymentStatus, Transition};
use crate::jobs::{FollowUpReason, Job, JobError};
use crate::store::{attempts, inbox, StoreError, StoreResult};

pub struct Report<'a> {
    pub status: PaymentStatus,
    pub gateway_ref: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub source: &'static str,
}

/// Applies `report` to the attempt and returns the attempt as it now stands. A status change, the jobs it calls for (deal outcome,
/// decline follow-up) and, for webhooks, the inbox row's processed mark commit together.
pub async fn apply(
    ctx: &AppContext,
    mut attempt: Attempt,
    report: &Report<'_>,
    event: Option<&str>,
) -> StoreResult<Attempt> {
    // Compare-and-set: if another writer moved the status between our read and write,
    // read again and re-decide. Three rounds are plenty: each loss means real progress.
    for round in 0..3 {
        if round > 0 {
            attempt = attempts::get(&ctx.db, &attempt.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("attempt {} vanished", attempt.id)))?;
        }
        let transition = attempt.status.apply(report.status);
        let Transition::Changed { from, to } = transition else {
            if let Some(ev) = event {
                let mut tx = ctx.db.begin().await?;
                inbox::mark_processed(&mut tx, ev, outcome(&transition), now_ms()).await?;
                tx.commit().await?;
            }
            return Ok(attempt);
        };
        let now = now_ms();
        let mut tx = ctx.db.begin().await?;
        let (gateway_ref, detail) = (report.gateway_ref, report.detail);
        if !attempts::cas_status(&mut tx, &attempt.id, from, to, gateway_ref, detail, now).await? {
            continue;
        }
        let lead = Some(attempt.lead_id.as_str());
        if to.is_final() {
            let job = Job::DealOutcome {
                attempt_id: attempt.id.clone(),
            };
            ctx.queue.enqueue(&mut tx, &job, lead, now).await?;
        }
        if to == PaymentStatus::Declined {
            let job = Job::FollowUp {
                attempt_id: attempt.id.clone(),
                reason: FollowUpReason::Declined,
            };
            ctx.queue.enqueue(&mut tx, &job, lead, now).await?;
        }
        if let Some(ev) = event {
            inbox::mark_processed(&mut tx, ev, outcome(&transition), now).await?;
        }
        tx.commit().await?;
        ctx.queue.wake();
        tracing::info!(%from, %to, source = report.source, "payment status changed");
        // The row now holds what `cas_status` wrote; mirror it instead of reading it back.
        attempt.status = to;
        attempt.gateway_ref = gateway_ref.map(str::to_owned).or(attempt.gateway_ref);
        attempt.status_detail = detail.map(str::to_owned).or(attempt.status_detail);
        attempt.updated_at = now;
        return Ok(attempt);
    }
    Err(StoreError::Corrupt(format!(
        "attempt {} kept changing under us",
        attempt.id
    )))
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
        .parse_event(&ev.body)
        .map_err(|e| JobError::Permanent(format!("stored event unreadable: {e}")))?;
    let (Some(reference), Some(status)) = (parsed.reference.as_deref(), parsed.status) else {
        return mark(ctx, event_id, "no_status").await;
    };
    let Some(attempt) = attempts::get(&ctx.db, reference).await? else {
        tracing::warn!(reference, gateway = %ev.gateway, "webhook for an unknown reference; kept in the inbox");
        return mark(ctx, event_id, "unknown_reference").await;
    };
    crate::telemetry::record_ids(&attempt.lead_id, &attempt.id);
    let report = Report {
        status,
        gateway_ref: parsed.gateway_ref.as_deref(),
        detail: parsed.detail.as_deref(),
        source: "webhook",
    };
    apply(ctx, attempt, &report, Some(event_id)).await?;
    Ok(())
}

async fn mark(ctx: &AppContext, event_id: &str, outcome: &str) -> Result<(), JobError> {
    let mut tx = ctx.db.begin().await?;
    inbox::mark_processed(&mut tx, event_id, outcome, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}
