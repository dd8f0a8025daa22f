//! The `expire_checkout` job: a lead opened a new attempt for an offer while an older
//! one's hosted checkout could still take a payment. Where the gateway lets us (Stripe),
//! the old checkout is expired, so one purchase cannot be paid twice; what the gateway
//! answers is applied like any report (a checkout paid just before stays paid).

use super::settle::{self, Source};
use super::JobError;
use crate::context::AppContext;
use crate::domain::PaymentStatus;
use crate::store::attempts;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let attempt = attempts::get(&ctx.db, attempt_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("attempt {attempt_id} not found")))?;
    crate::telemetry::record_ids(&attempt.lead_id, &attempt.id);
    // Paid, declined or expired meanwhile: nothing left to close.
    if attempt.status != PaymentStatus::Redirected {
        return Ok(());
    }
    let Some(gateway) = ctx.gateways.get(attempt.gateway) else {
        return Err(JobError::Permanent(format!(
            "gateway {} is not configured",
            attempt.gateway.as_str()
        )));
    };
    match gateway.expire_checkout(&attempt).await? {
        Some(seen) => {
            let after = settle::apply(ctx, attempt, &seen, Source::Reconcile, None).await?;
            tracing::info!(status = %after.status, "older checkout closed");
        }
        None => tracing::info!("the gateway said nothing about the older checkout"),
    }
    Ok(())
}
