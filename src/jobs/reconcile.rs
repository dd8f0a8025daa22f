//! The `reconcile` job: asks the gateway about one attempt still redirected or pending
//! and applies what it says. Enqueued by the periodic pass (`flows::reconcile`) with the
//! attempt's lead, so it runs under the same lead lock as that lead's webhook events.

use crate::clock::{ms, now_ms};
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::PaymentStatus;
use crate::gateways::{GatewayError, Observation};
use crate::jobs::settle::{self, Source};
use crate::jobs::JobError;
use crate::store::attempts;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let attempt = attempts::get(&ctx.db, attempt_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("attempt {attempt_id} not found")))?;
    crate::telemetry::record_ids(&attempt.lead_id, &attempt.id);
    // A webhook (or the return page) may have settled it while this job waited. An
    // approved one is asked what became of its money since.
    if !matches!(
        attempt.status,
        PaymentStatus::Redirected | PaymentStatus::Pending | PaymentStatus::Approved
    ) {
        return Ok(());
    }
    let gateway_name = attempt.gateway.as_str();
    let Some(gateway) = ctx.gateways.get(attempt.gateway) else {
        ctx.metrics.reconcile_check(gateway_name, "failed");
        return Err(JobError::Permanent(format!("gateway {gateway_name} is not configured")));
    };
    let now = now_ms();
    let seen = match gateway.fetch_status(&attempt, "").await {
        Ok(Some(seen)) => seen,
        Ok(None) if attempt.status.is_paid() => {
            tracing::error!("the gateway no longer reports a payment it approved");
            ctx.metrics.reconcile_check(gateway_name, "failed");
            return Ok(());
        }
        Ok(None) if checkout_closed(ctx, &attempt, now) => Observation {
            reference: Some(attempt.id.clone()),
            gateway_ref: None,
            status: PaymentStatus::Expired,
            detail: Some("no payment before the checkout expired".into()),
            charged: None,
            checkout_ref: None,
            after_sale: None,
            method: None,
        },
        Ok(None) => {
            ctx.metrics.reconcile_check(gateway_name, "no_payment");
            return Ok(());
        }
        Err(e) => {
            ctx.metrics.reconcile_check(gateway_name, "failed");
            return failed(e);
        }
    };
    let before = (attempt.status, attempt.after.reversal_version);
    let after = settle::apply(ctx, attempt, &seen, Source::Reconcile, None).await?;
    let changed = (after.status, after.after.reversal_version) != before;
    if changed {
        tracing::info!(from = %before.0, to = %after.status, "reconciliation fixed an attempt no webhook had settled");
    }
    ctx.metrics
        .reconcile_check(gateway_name, if changed { "fixed" } else { "unchanged" });
    Ok(())
}

/// The attempt is left as it is either way. The queue does not retry an outage: the next
/// pass asks again one interval later, and a retry now would ask twice per interval. A
/// refusal (a 404 for a payment we know, a bad key) needs a person, so the job is parked
/// as dead with the gateway's words for the operator.
fn failed(e: GatewayError) -> Result<(), JobError> {
    match e {
        GatewayError::Unavailable(_) => {
            tracing::warn!(error = %e, "reconciliation could not ask the gateway; the next pass asks again");
            Ok(())
        }
        GatewayError::Rejected(_) => Err(JobError::Permanent(format!("reconciliation: {e}"))),
        GatewayError::Store(e) => Err(JobError::from(e)),
    }
}

/// The hosted checkout stopped taking payments a while ago (the grace covers a payment
/// started just before the end that the gateway is still recording).
fn checkout_closed(ctx: &AppContext, attempt: &Attempt, now: i64) -> bool {
    let s = &ctx.settings;
    now > attempt.created_at + ms(s.checkout_ttl) + ms(s.reconcile.after)
}
