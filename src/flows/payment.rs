//! Applying what a gateway says about an attempt, from the return redirect, through the
//! one state machine in `domain::payment`. The applying itself is `jobs::settle`, shared
//! with the webhook and reconciliation jobs, and re-exported here for the web handlers.

pub use crate::jobs::settle::{apply, Source};

use crate::context::AppContext;
use crate::domain::PaymentStatus;
use crate::gateways::Observation;
use crate::store::{attempts, StoreError, StoreResult};

/// What marking an attempt paid by hand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedPaid {
    Done,
    /// It was approved already; nothing changed.
    AlreadyPaid,
    NotFound,
}

/// An operator's word that the customer paid through another channel (a bank transfer,
/// cash): the attempt becomes approved through the same state machine as a gateway's
/// report, so the deal is won, follow-ups stop and their tasks close, as for any payment.
pub async fn mark_paid(ctx: &AppContext, attempt_id: &str, note: &str) -> StoreResult<MarkedPaid> {
    let Some(attempt) = attempts::get(&ctx.db, attempt_id).await? else {
        return Ok(MarkedPaid::NotFound);
    };
    if attempt.status == PaymentStatus::Approved {
        return Ok(MarkedPaid::AlreadyPaid);
    }
    let mut seen = Observation::status(Some(attempt.id.clone()), None, PaymentStatus::Approved);
    seen.detail = Some(match note.trim() {
        "" => "marked paid by an operator".to_owned(),
        n => format!(
            "marked paid by an operator: {}",
            n.chars().take(200).collect::<String>()
        ),
    });
    let now = apply(ctx, attempt, &seen, Source::Operator, None).await?;
    match now.status {
        PaymentStatus::Approved => {
            ctx.queue.wake();
            Ok(MarkedPaid::Done)
        }
        other => Err(StoreError::Corrupt(format!(
            "attempt stayed {other} after being marked paid"
        ))),
    }
}
