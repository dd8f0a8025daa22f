//! Applying what a gateway says about an attempt, from a webhook, the return redirect
//! or reconciliation, through the one state machine in `domain::payment`. It lives with
//! the jobs because job handlers (reconciliation, events) apply statuses themselves, and
//! a lower room must not call up into `flows`.

use std::time::Duration;

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::lead::Attempt;
use crate::domain::{PaymentStatus, Reversal, Transition};
use crate::gateways::Observation;
use crate::jobs::{FollowUpReason, Job};
use crate::store::attempts::StatusChange;
use crate::store::{attempts, inbox, leads, StoreError, StoreResult};

/// What told us about a payment; kept on the attempt and counted in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Return,
    Reconcile,
    /// An operator marked it paid on `/admin` (paid through another channel).
    Operator,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Return => "return",
            Source::Reconcile => "reconcile",
            Source::Operator => "operator",
        }
    }
}

/// Applies the observation to the attempt and returns the attempt as it now stands. A
/// status change, what the gateway says of an approved payment's money since (refunds, a
/// void, a dispute), the jobs they call for (deal outcome, reversal, decline follow-up,
/// second payment) and, for webhooks, the inbox row's processed mark commit together.
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
    // Compare-and-set: if another writer moved the attempt between our read and write,
    // read again and re-decide. Three rounds are plenty: each loss means real progress.
    for round in 0..3 {
        if round > 0 {
            attempt = attempts::get(&ctx.db, &attempt.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("attempt {} vanished", attempt.id)))?;
        }
        let transition = attempt.status.apply(seen.status);
        let status_now = match transition {
            Transition::Changed { to, .. } => to,
            _ => attempt.status,
        };
        let (reversal, refused) = reversal_of(ctx, &attempt, status_now, seen);
        let Some(plan) = Plan::new(transition, reversal) else {
            if let Some(ev) = event {
                mark(ctx, ev, refused.unwrap_or(outcome(&transition))).await?;
            }
            return Ok(attempt);
        };
        let now = now_ms();
        // Read before the transaction: the email names the purchase across leads.
        let buyer = match plan.approved() {
            true => leads::get(&ctx.db, &attempt.lead_id).await?.map(|l| l.contact.email),
            false => None,
        };
        let mut tx = ctx.db.begin().await?;
        if !write(&mut tx, &attempt, &plan, seen, source, now).await? {
            tx.rollback().await?;
            continue;
        }
        let duplicate_of = match &buyer {
            Some(email) => second_payment(&mut tx, &attempt, email.as_str()).await?,
            None => None,
        };
        enqueue_consequences(ctx, &mut tx, &attempt, &plan, duplicate_of.is_some()).await?;
        emit_events(ctx, &mut tx, &attempt, &plan, seen).await?;
        if let Some(ev) = event {
            inbox::mark_processed(&mut tx, ev, plan.outcome(), now).await?;
        }
        tx.commit().await?;
        ctx.queue.wake();
        if let Some(first) = &duplicate_of {
            tracing::error!(first_attempt = %first, "a second payment for one purchase; flagged for a refund");
            ctx.metrics.duplicate_payment(attempt.gateway.as_str());
        }
        // The row now holds what was written; mirror it instead of reading it back.
        if let Transition::Changed { from, to } = plan.status {
            ctx.metrics
                .status_changed(attempt.gateway.as_str(), source.as_str(), to.as_str());
            tracing::info!(%from, %to, source = source.as_str(), "payment status changed");
            attempt.status = to;
            attempt.gateway_ref = seen.gateway_ref.clone().or(attempt.gateway_ref);
            attempt.status_detail = seen.detail.clone().or(attempt.status_detail);
            attempt.settled_by = Some(source.as_str().to_owned());
            attempt.after.payment_method = seen.method.clone().or(attempt.after.payment_method);
        }
        if let Some(r) = plan.reversal {
            let standing = r.standing(&attempt.amount);
            tracing::info!(
                standing = standing.as_str(),
                refunded = r.refunded.amount_minor(),
                "payment reversed"
            );
            ctx.metrics.reversal(attempt.gateway.as_str(), standing.as_str());
            attempt.after.reversal = r;
            attempt.after.reversal_version += 1;
        }
        attempt.after.duplicate_of = duplicate_of.or(attempt.after.duplicate_of);
        attempt.updated_at = now;
        return Ok(attempt);
    }
    Err(StoreError::Corrupt(format!(
        "attempt {} kept changing under us",
        attempt.id
    )))
}

/// What one report changes: the status, the reversal, or both.
struct Plan {
    status: Transition,
    reversal: Option<Reversal>,
}

impl Plan {
    fn new(status: Transition, reversal: Option<Reversal>) -> Option<Plan> {
        let moves = matches!(status, Transition::Changed { .. });
        (moves || reversal.is_some()).then_some(Plan { status, reversal })
    }

    fn approved(&self) -> bool {
        matches!(
            self.status,
            Transition::Changed {
                to: PaymentStatus::Approved,
                ..
            }
        )
    }

    fn outcome(&self) -> &'static str {
        match (&self.status, &self.reversal) {
            (Transition::Changed { .. }, _) => "applied",
            (_, Some(_)) => "reversal_applied",
            (t, None) => outcome(t),
        }
    }
}

/// The reversal a paid attempt moves to, if the report changes it; and the inbox outcome
/// when the gateway's report had to be refused (more refunded than was paid).
fn reversal_of(
    ctx: &AppContext,
    attempt: &Attempt,
    status_now: PaymentStatus,
    seen: &Observation,
) -> (Option<Reversal>, Option<&'static str>) {
    let Some(report) = seen.after_sale.as_ref().filter(|_| status_now.is_paid()) else {
        return (None, None);
    };
    // Once paid, the attempt's money is that one payment's: a refund of another payment
    // under the same reference (a second one in the same checkout) is not this attempt's.
    if attempt.status.is_paid() {
        if let (Some(ours), Some(theirs)) = (&attempt.gateway_ref, &seen.gateway_ref) {
            if ours != theirs {
                tracing::warn!(payment = %theirs, "reversal reported for another payment of this attempt; left out");
                return (None, Some("other_payment"));
            }
        }
    }
    match attempt.after.reversal.apply(&attempt.amount, report) {
        Ok(next) => (next, None),
        Err(e) => {
            tracing::error!(error = %e, "gateway reports a reversal we cannot apply; left as it was");
            ctx.metrics.refused("reversal", "exceeds_paid");
            (None, Some("reversal_refused"))
        }
    }
}

/// Writes the plan's compare-and-sets; false when another writer got there first.
async fn write(
    tx: &mut crate::store::Tx,
    attempt: &Attempt,
    plan: &Plan,
    seen: &Observation,
    source: Source,
    now: i64,
) -> StoreResult<bool> {
    if let Transition::Changed { from, to } = plan.status {
        let change = StatusChange {
            from,
            to,
            gateway_ref: seen.gateway_ref.as_deref(),
            detail: seen.detail.as_deref(),
            source: source.as_str(),
            method: seen.method.as_deref(),
        };
        if !attempts::cas_status(tx, &attempt.id, &change, now).await? {
            return Ok(false);
        }
    }
    if let Some(r) = &plan.reversal {
        if !attempts::cas_reversal(tx, &attempt.id, attempt.after.reversal_version, r, now).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Flags a just-approved attempt when the same customer had paid this offer already.
/// Approvals of one customer take turns here, so two at once cannot both miss each other.
async fn second_payment(tx: &mut crate::store::Tx, attempt: &Attempt, email: &str) -> StoreResult<Option<String>> {
    tx.take_turn(&format!("paid|{}|{email}", attempt.offer_slug)).await?;
    let first = attempts::paid_before(tx, &attempt.id, &attempt.lead_id, &attempt.offer_slug).await?;
    if let Some(first) = &first {
        attempts::flag_duplicate(tx, &attempt.id, first).await?;
    }
    Ok(first)
}

/// Why a report cannot be about this attempt, if it cannot: it must name the attempt, come
/// through the checkout the attempt opened (where both are known), and a win must be for
/// the amount asked.
fn mismatch(attempt: &Attempt, seen: &Observation) -> Option<&'static str> {
    match seen.reference.as_deref() {
        None => return Some("no reference"),
        Some(r) if r != attempt.id => return Some("reference differs"),
        Some(_) => {}
    }
    if let (Some(ours), Some(theirs)) = (&attempt.after.checkout_ref, &seen.checkout_ref) {
        if ours != theirs {
            return Some("checkout differs");
        }
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
    plan: &Plan,
    duplicate: bool,
) -> StoreResult<()> {
    let lead = Some(attempt.lead_id.as_str());
    let attempt_id = attempt.id.clone();
    let mut jobs = Vec::new();
    if let Transition::Changed { to, .. } = plan.status {
        if to.is_final() {
            jobs.push(Job::DealOutcome {
                attempt_id: attempt_id.clone(),
            });
        }
        let offer = ctx.offer(&attempt.offer_slug);
        match to {
            PaymentStatus::Declined if offer.is_some_and(|o| o.followup.declined.is_some()) => {
                jobs.push(Job::FollowUp {
                    attempt_id: attempt_id.clone(),
                    reason: FollowUpReason::Declined,
                });
            }
            PaymentStatus::Expired => {
                if let Some(o) = offer {
                    crate::jobs::followup::abandoned_now(ctx, tx, attempt, &o.followup).await?;
                }
            }
            PaymentStatus::Approved => {
                jobs.push(Job::CloseFollowUps {
                    attempt_id: attempt_id.clone(),
                });
                if offer.is_some_and(|o| ctx.sends_receipt(o)) {
                    jobs.push(Job::Receipt {
                        attempt_id: attempt_id.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    if plan.reversal.is_some() {
        jobs.push(Job::Reversal {
            attempt_id: attempt_id.clone(),
        });
    }
    if duplicate {
        jobs.push(Job::DuplicatePayment { attempt_id });
    }
    for job in jobs {
        ctx.queue.enqueue(tx, &job, lead, Duration::ZERO).await?;
    }
    Ok(())
}

/// The outbound events of what this report changed, committed with the change.
async fn emit_events(
    ctx: &AppContext,
    tx: &mut crate::store::Tx,
    attempt: &Attempt,
    plan: &Plan,
    seen: &Observation,
) -> StoreResult<()> {
    use crate::jobs::events;
    let gateway_ref = seen.gateway_ref.as_deref();
    let mut payloads = Vec::new();
    if let Transition::Changed { to, .. } = plan.status {
        payloads.extend(events::payment_status(attempt, to, gateway_ref));
    }
    if let Some(r) = &plan.reversal {
        payloads.extend(events::reversal(attempt, r));
    }
    for p in payloads {
        events::emit(ctx, tx, p).await?;
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
