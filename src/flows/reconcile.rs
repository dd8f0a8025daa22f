//! Reconciliation: asks each gateway about attempts that are still redirected or pending
//! some time after the customer left, and applies what it says. This is what settles a
//! payment whose webhook never came (Wompi retries only three times in 24 h). Approved
//! attempts are asked about too, less often (`paid_interval`), so a refund or dispute
//! whose webhook was lost still reaches the CRM.
//!
//! Every instance runs the pass. The pass only claims due attempts and enqueues one
//! `reconcile` job per claim; the job (`jobs::reconcile`) asks the gateway under the
//! attempt's lead lock, one at a time with that lead's webhook events.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ms;
use crate::context::AppContext;
use crate::jobs::Job;
use crate::store::{attempts, StoreResult};

/// What one pass did, for logs and tests. The checks' outcomes (fixed, unchanged,
/// no_payment, failed) are counted by the jobs, in the `reconcile_checks` metric.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Attempts found due.
    pub due: usize,
    /// Of those, the ones this instance claimed and enqueued a check for; the rest were
    /// claimed by another instance (or settled) in between.
    pub claimed: usize,
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
                Ok(p) if p.due > 0 => {
                    tracing::info!(due = p.due, claimed = p.claimed, "reconciliation pass")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciliation pass failed"),
            }
        }
    })
}

/// One pass over the attempts that are due: each is claimed for this interval and its
/// check enqueued in one transaction, so exactly one instance asks the gateway about it
/// per interval, and a crash after the claim still leaves the check queued.
pub async fn pass(ctx: &AppContext) -> StoreResult<Pass> {
    let s = &ctx.settings.reconcile;
    let interval = ms(s.interval);
    let due = attempts::due_for_reconcile(&ctx.db, ms(s.max_age), ms(s.after), interval, s.batch).await?;
    let paid_interval = ms(s.paid_interval);
    let paid = attempts::paid_due_for_reconcile(&ctx.db, ms(s.paid_max_age), paid_interval, s.batch).await?;
    let mut report = Pass {
        due: due.len() + paid.len(),
        claimed: 0,
    };
    let unsettled = due.into_iter().map(|a| (a, false));
    for (attempt, was_paid) in unsettled.chain(paid.into_iter().map(|a| (a, true))) {
        let mut tx = ctx.db.begin_write().await?;
        let claimed = match was_paid {
            false => attempts::claim_for_reconcile(&mut tx, &attempt.id, interval).await?,
            true => attempts::claim_paid_for_reconcile(&mut tx, &attempt.id, paid_interval).await?,
        };
        if !claimed {
            tx.rollback().await?;
            continue;
        }
        let job = Job::Reconcile {
            attempt_id: attempt.id.clone(),
        };
        ctx.queue
            .enqueue(&mut tx, &job, Some(&attempt.lead_id), Duration::ZERO)
            .await?;
        tx.commit().await?;
        ctx.queue.wake();
        report.claimed += 1;
    }
    Ok(report)
}
