//! Reconciliation: asks each gateway about attempts that are still redirected or pending
//! some time after the customer left, and applies what it says. This is what settles a
//! payment whose webhook never came (Wompi retries only three times in 24 h).

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::clock::{ms, now_ms};
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::PaymentStatus;
use crate::flows::payment::{self, Source};
use crate::gateways::Observation;
use crate::store::{attempts, StoreResult};

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub checked: usize,
    /// Attempts whose status changed because reconciliation asked.
    pub fixed: usize,
    pub failed: usize,
}

/// Runs passes forever, one every `reconcile.interval`.
pub fn spawn(ctx: Arc<AppContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = ctx.settings.reconcile.interval.max(Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match pass(&ctx).await {
                Ok(p) if p.checked > 0 => {
                    tracing::info!(
                        checked = p.checked,
                        fixed = p.fixed,
                        failed = p.failed,
                        "reconciliation pass"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciliation pass failed"),
            }
        }
    })
}

/// One pass over the attempts that are due. Attempts are marked as checked before the
/// gateway is asked, so one that keeps failing does not starve the others.
pub async fn pass(ctx: &AppContext) -> StoreResult<Pass> {
    let s = &ctx.settings.reconcile;
    let now = now_ms();
    let due = attempts::due_for_reconcile(
        &ctx.db,
        now - ms(s.max_age),
        now - ms(s.after),
        now - ms(s.interval),
        s.batch,
    )
    .await?;
    let mut report = Pass::default();
    for attempt in due {
        attempts::mark_checked(&ctx.db, &attempt.id, now).await?;
        report.checked += 1;
        let span = tracing::info_span!("reconcile", lead_id = %attempt.lead_id, attempt_id = %attempt.id);
        match check(ctx, attempt, now).instrument(span).await? {
            Some(true) => report.fixed += 1,
            Some(false) => {}
            None => report.failed += 1,
        }
    }
    Ok(report)
}

/// Some(changed) when the gateway answered, None when it could not be asked.
async fn check(ctx: &AppContext, attempt: Attempt, now: i64) -> StoreResult<Option<bool>> {
    let gateway_name = attempt.gateway.as_str();
    let Some(gateway) = ctx.gateways.get(attempt.gateway) else {
        return Ok(None);
    };
    let seen = match gateway.fetch_status(&attempt, "").await {
        Ok(Some(seen)) => seen,
        Ok(None) if checkout_closed(ctx, &attempt, now) => Observation {
            reference: Some(attempt.id.clone()),
            gateway_ref: None,
            status: PaymentStatus::Expired,
            detail: Some("no payment before the checkout expired".into()),
            charged: None,
        },
        Ok(None) => {
            ctx.metrics.reconcile_check(gateway_name, "no_payment");
            return Ok(Some(false));
        }
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation could not ask the gateway");
            ctx.metrics.reconcile_check(gateway_name, "failed");
            return Ok(None);
        }
    };
    let before = attempt.status;
    let after = payment::apply(ctx, attempt, &seen, Source::Reconcile, None).await?;
    let changed = after.status != before;
    if changed {
        tracing::info!(from = %before, to = %after.status, "reconciliation fixed an attempt no webhook had settled");
    }
    ctx.metrics
        .reconcile_check(gateway_name, if changed { "fixed" } else { "unchanged" });
    Ok(Some(changed))
}

/// The hosted checkout stopped taking payments a while ago (the grace covers a payment
/// started just before the end that the gateway is still recording).
fn checkout_closed(ctx: &AppContext, attempt: &Attempt, now: i64) -> bool {
    let s = &ctx.settings;
    now > attempt.created_at + ms(s.checkout_ttl) + ms(s.reconcile.after)
}
