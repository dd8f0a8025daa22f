//! Accepting a webhook delivery: verify the signature on the raw bytes, read the event
//! through the gateway's edge, and commit it to the inbox with its processing job. Only a
//! committed event is acknowledged; a duplicate is acknowledged and changes nothing. A
//! signed delivery we cannot read is refused, but its raw bytes are kept first.

use crate::clock::{new_id, now_ms};
use crate::context::AppContext;
use crate::gateways::{Gateway, WebhookError, WebhookRequest};
use crate::jobs::Job;
use crate::store::inbox::{self, NewEvent};
use crate::store::StoreError;

/// What became of a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Committed with its job: the gateway may stop retrying.
    Stored,
    /// The same event id was stored before; nothing changed.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Not signed by the gateway (missing, wrong or stale signature): nothing is trusted.
    #[error(transparent)]
    Unsigned(WebhookError),
    /// Signed, but not an event we can apply: unreadable (its raw bytes are kept, marked
    /// `unreadable`), or an id no vendor makes that long (not stored). Retrying the same
    /// bytes cannot help.
    #[error(transparent)]
    Unusable(WebhookError),
    /// Not committed: the gateway must retry.
    #[error("event not stored: {0}")]
    Store(#[from] StoreError),
}

pub async fn accept(
    ctx: &AppContext,
    gateway: &dyn Gateway,
    delivery: &WebhookRequest<'_>,
) -> Result<Accepted, AcceptError> {
    let verified = gateway.verify_webhook(delivery).map_err(|e| match e {
        // Signed, but a key no vendor makes that long: not stored (see `domain::edge`).
        e @ WebhookError::TooLong { .. } => AcceptError::Unusable(e),
        e => AcceptError::Unsigned(e),
    })?;
    let event = match gateway.parse_event(delivery.query, delivery.body) {
        Ok(event) => event,
        // Signed, so the gateway really sent it: keep the raw bytes for the operator (and a
        // fixed parser) before refusing it. Only a failed commit answers 5xx.
        Err(e @ WebhookError::Malformed(_)) => {
            keep_unreadable(ctx, gateway, delivery, verified.event_id.as_deref()).await?;
            tracing::warn!(error = %e, "signed webhook unreadable; kept in the inbox");
            return Err(AcceptError::Unusable(e));
        }
        // An id no vendor makes: not a real event, nothing to keep (see `domain::edge`).
        Err(e @ WebhookError::TooLong { .. }) => return Err(AcceptError::Unusable(e)),
        Err(other) => return Err(AcceptError::Unsigned(other)),
    };
    // Where the signature does not cover the body, only its signed key dedupes: otherwise
    // one captured delivery replayed with N bodies would be N events and N vendor calls.
    let event_id = verified.event_id.unwrap_or_else(|| event.event_id.clone());
    let row = NewEvent {
        id: new_id(),
        gateway: gateway.kind().as_str(),
        event_id: &event_id,
        reference: event.reference(),
        status: event.status().map(|s| s.as_str()),
        query: delivery.query,
        // The raw bytes as signed, never re-encoded: the job reads them again later.
        body: delivery.body,
        received_at: now_ms(),
    };
    if !store(ctx, &row).await? {
        return Ok(Accepted::Duplicate);
    }
    ctx.queue.wake();
    tracing::info!(%event_id, "webhook stored");
    Ok(Accepted::Stored)
}

/// Keyed by the signed key when the gateway gives one (so unsigned parts cannot make it
/// many), else by a digest of the delivery, so the gateway's retries of it are kept once.
async fn keep_unreadable(
    ctx: &AppContext,
    gateway: &dyn Gateway,
    delivery: &WebhookRequest<'_>,
    signed_key: Option<&str>,
) -> Result<(), StoreError> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match signed_key {
        Some(key) => h.update(key.as_bytes()),
        None => {
            h.update(delivery.query.as_bytes());
            h.update([0u8]);
            h.update(delivery.body);
        }
    }
    let event_id = format!("unreadable:{}", hex::encode(h.finalize()));
    let row = NewEvent {
        id: new_id(),
        gateway: gateway.kind().as_str(),
        event_id: &event_id,
        reference: None,
        status: None,
        query: delivery.query,
        body: delivery.body,
        received_at: now_ms(),
    };
    let mut tx = ctx.db.begin().await?;
    inbox::insert_unreadable(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(())
}

/// The event and its job, all or nothing; `false` for a duplicate.
async fn store(ctx: &AppContext, row: &NewEvent<'_>) -> Result<bool, StoreError> {
    let job = Job::ApplyEvent {
        event_id: row.id.clone(),
    };
    let job = ctx.queue.new_job(&job, None, std::time::Duration::ZERO)?;
    inbox::insert_with_job(&ctx.db, row, &job).await
}
