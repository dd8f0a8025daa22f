//! The `apply_event` job: applies a stored, verified webhook event to its attempt.

use std::time::Duration;

use super::settle::{apply, mark, Source};
use super::JobError;
use crate::context::AppContext;
use crate::gateways::EventFacts;
use crate::store::jobs::{self, Holder};
use crate::store::{attempts, inbox};

pub async fn run(ctx: &AppContext, holder: Holder<'_>, event_id: &str) -> Result<(), JobError> {
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
        .parse_event(&ev.query, &ev.body)
        .map_err(|e| JobError::Permanent(format!("stored event unreadable: {e}")))?;
    let seen = match parsed.facts {
        EventFacts::Observed(o) => o,
        EventFacts::Irrelevant => return Ok(mark(ctx, event_id, "no_status").await?),
        // The event only names the payment: its status comes from the gateway's API.
        EventFacts::Changed { gateway_ref } => match gw.lookup(&gateway_ref).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::warn!(%gateway_ref, gateway = %ev.gateway, "webhook names a payment the gateway does not know");
                return Ok(mark(ctx, event_id, "unknown_payment").await?);
            }
            Err(e) => return Err(e.into()),
        },
    };
    let attempt = match seen.reference.as_deref() {
        Some(reference) => attempts::get(&ctx.db, reference).await?,
        None => None,
    };
    let Some(attempt) = attempt else {
        tracing::warn!(reference = ?seen.reference, gateway = %ev.gateway, "webhook for an unknown reference; kept in the inbox");
        ctx.metrics.unknown_reference(&ev.gateway);
        return Ok(mark(ctx, event_id, "unknown_reference").await?);
    };
    crate::telemetry::record_ids(&attempt.lead_id, &attempt.id);
    if holder.lead_id.is_none() {
        // Queued before we knew whose payment it was (the event named only the vendor's
        // id): join the lead's line now, before touching the attempt.
        let lease = crate::clock::ms(ctx.settings.worker.lease);
        if !jobs::adopt_lead(&ctx.db, holder, &attempt.lead_id, lease).await? {
            return Err(JobError::Transient {
                message: "another job of this lead is running; applying the event after it".into(),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
    }
    apply(ctx, attempt, &seen, Source::Webhook, Some(event_id)).await?;
    Ok(())
}
