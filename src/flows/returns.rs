//! Settling an attempt from the customer's side: the return page and its status poll.
//! Both are unauthenticated GETs anyone can repeat, so each attempt is counted
//! (`limits.return_per_attempt`), and the gateway is asked about it at most once per
//! `limits.gateway_status_every`; in between, the database's view is the answer.

use std::time::Duration;

use crate::context::AppContext;
use crate::domain::edge::AttemptId;
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::PaymentStatus;
use crate::flows::payment::{self, Source};
use crate::store::{attempts, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReturnError {
    /// No such attempt, or not one of this gateway's.
    #[error("attempt not found")]
    NotFound,
    /// Viewed too often; `Retry-After` is this wait.
    #[error("too many views of this attempt; retry in {0:?}")]
    TooMany(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the customer is shown: three outcomes, whatever the gateway's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Approved,
    Declined,
}

impl Outcome {
    pub fn of(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Approved => Outcome::Approved,
            PaymentStatus::Declined | PaymentStatus::Expired => Outcome::Declined,
            PaymentStatus::Created | PaymentStatus::Redirected | PaymentStatus::Pending => Outcome::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Approved => "approved",
            Outcome::Declined => "declined",
        }
    }
}

/// The attempt as it now stands, after asking its gateway when the window allows.
/// `gateway` is the one the return URL names (None for the status poll, which names
/// none); `return_query` is the browser's return query, a hint for the gateway.
pub async fn settle(
    ctx: &AppContext,
    id: &AttemptId,
    gateway: Option<GatewayKind>,
    return_query: &str,
) -> Result<Attempt, ReturnError> {
    let key = id.as_str().to_owned();
    // Counted before the database is asked, so a flood costs neither it nor the gateway.
    ctx.limits
        .return_per_attempt
        .check(&key)
        .map_err(ReturnError::TooMany)?;
    let attempt = attempts::get(&ctx.db, id.as_str())
        .await?
        .filter(|a| gateway.is_none_or(|g| g == a.gateway))
        .ok_or(ReturnError::NotFound)?;
    if attempt.status.is_paid() {
        return Ok(attempt);
    }
    if ctx.limits.gateway_status.check(&key).is_err() {
        // Asked moments ago: the webhook or that answer is already in the database.
        return Ok(attempt);
    }
    let Some(g) = ctx.gateways.get(attempt.gateway) else {
        return Ok(attempt);
    };
    match g.fetch_status(&attempt, return_query).await {
        Ok(Some(seen)) => Ok(payment::apply(ctx, attempt, &seen, Source::Return, None).await?),
        Ok(None) => Ok(attempt),
        // The webhook or reconciliation will settle it; show what we know.
        Err(e) => {
            tracing::warn!(attempt_id = %attempt.id, error = %e, "gateway status lookup failed");
            Ok(attempt)
        }
    }
}
