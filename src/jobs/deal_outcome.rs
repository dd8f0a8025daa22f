//! Moves the attempt's deal to won or lost. It reads the attempt's status when it runs,
//! so jobs that run late or twice still converge on the current truth.

use super::crm_sync::{self, DEAL};
use super::JobError;
use crate::context::AppContext;
use crate::crm::DealStatus;
use crate::domain::PaymentStatus;
use crate::store::crm_records;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    let status = match s.attempt.status {
        PaymentStatus::Approved => DealStatus::Won,
        PaymentStatus::Declined => DealStatus::Lost {
            reason: match &s.attempt.status_detail {
                Some(d) => format!("Payment declined ({d})"),
                None => "Payment declined".into(),
            },
        },
        // Each attempt has its own deal; a later attempt (resume link) gets a new one.
        PaymentStatus::Expired => DealStatus::Lost {
            reason: "Checkout expired without payment".into(),
        },
        _ => return Ok(()),
    };
    let (_, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    let recorded = crm_records::find(&ctx.db, ctx.crm.name(), DEAL, attempt_id).await?;
    if recorded.and_then(|r| r.state).as_deref() == Some(status.as_str()) {
        return Ok(());
    }
    ctx.crm.set_deal_status(&deal, &status).await?;
    crm_records::set_state(&ctx.db, ctx.crm.name(), DEAL, attempt_id, status.as_str()).await?;
    tracing::info!(deal_id = %deal, status = status.as_str(), "deal updated");
    Ok(())
}
