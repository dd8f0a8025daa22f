//! Outbound events: stored with one delivery job per subscribed endpoint in the
//! transaction that commits what they report (so a committed change always has its
//! event), then POSTed signed per the Standard Webhooks specification. Every try of every
//! delivery carries the event's `webhook-id`, so receivers drop what they already have.

use std::sync::OnceLock;
use std::time::Duration;

use crate::clock::{new_id, now_ms, rfc3339};
use crate::config::EventEndpoint as Endpoint;
use crate::context::AppContext;
use crate::domain::event::{AttemptState, LeadCreated, Payload, Person, ReversalState, Subject};
use crate::domain::lead::Attempt;
use crate::domain::{PaymentStatus, Reversal};
use crate::store::outbound::{self, Delivery, DeliveryState, NewDelivery, NewEvent, Tried};
use crate::store::{jobs::Holder, leads, StoreError, StoreResult, Tx};

use super::{Job, JobError};

/// Stores `payload` and a delivery for each endpoint subscribed to its type, in `tx`;
/// nothing when none is. The caller wakes the queue after its commit, as for any job.
pub async fn emit(ctx: &AppContext, tx: &mut Tx, payload: Payload) -> StoreResult<()> {
    let kind = payload.kind();
    let endpoints: Vec<&Endpoint> = ctx.settings.events.endpoints.iter().filter(|e| e.wants(kind)).collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    // The person never goes into the events table; see `deliver`.
    let payload = payload.for_endpoint(None);
    let json = serde_json::to_string(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = format!("msg_{}", new_id());
    let now = now_ms();
    let event = NewEvent {
        id: &id,
        kind: kind.as_str(),
        payload: &json,
        lead_id: &payload.subject().lead_id,
        now,
    };
    outbound::insert_event(tx, &event).await?;
    for endpoint in endpoints {
        let delivery_id = new_id();
        let max_attempts = endpoint.max_attempts.unwrap_or(ctx.settings.worker.max_attempts);
        let job = Job::DeliverEvent {
            delivery_id: delivery_id.clone(),
        };
        // No lead: a slow receiver must not hold up the lead's CRM and payment jobs.
        let job_id = ctx
            .queue
            .enqueue_tries(tx, &job, None, Duration::ZERO, max_attempts)
            .await?;
        let d = NewDelivery {
            id: &delivery_id,
            event_id: &id,
            endpoint: endpoint.url.as_str(),
            job_id: &job_id,
            max_attempts,
            now,
        };
        outbound::insert_delivery(tx, &d).await?;
    }
    Ok(())
}

/// `lead.created` for a lead and its first attempt; `source` is `form` or `payment_link`.
pub fn lead_created(first: &Attempt, source: &str) -> Payload {
    Payload::LeadCreated(LeadCreated {
        subject: Subject::of(first),
        amount: first.amount.into(),
        source: source.to_owned(),
    })
}

/// `attempt.checkout_opened`: the attempt as it stands once the customer is sent off.
pub fn checkout_opened(a: &Attempt, gateway_ref: Option<&str>) -> Payload {
    let mut s = AttemptState::of(a);
    s.status = PaymentStatus::Redirected.as_str().to_owned();
    s.gateway_ref = gateway_ref.map(str::to_owned).or(s.gateway_ref);
    Payload::CheckoutOpened(s)
}

/// The event for a payment's new status, if subscribers can ask for it.
pub fn payment_status(a: &Attempt, to: PaymentStatus, gateway_ref: Option<&str>) -> Option<Payload> {
    let mut s = AttemptState::of(a);
    s.status = to.as_str().to_owned();
    s.gateway_ref = gateway_ref.map(str::to_owned).or(s.gateway_ref);
    match to {
        PaymentStatus::Approved => Some(Payload::PaymentApproved(s)),
        PaymentStatus::Declined => Some(Payload::PaymentDeclined(s)),
        PaymentStatus::Pending => Some(Payload::PaymentPending(s)),
        _ => None,
    }
}

/// `payment.refunded` when more money went back (or the payment was voided) and
/// `payment.disputed` when a dispute opened or changed stage, comparing `now` with the
/// attempt's reversal before it.
pub fn reversal(a: &Attempt, now: &Reversal) -> Vec<Payload> {
    let before = &a.after.reversal;
    let state = || ReversalState {
        payment: AttemptState::of(a),
        refunded: now.refunded.into(),
        voided: now.voided,
        dispute: now.dispute.as_ref().map(|d| d.stage.as_str().to_owned()),
        standing: now.standing(&a.amount).as_str().to_owned(),
    };
    let mut out = Vec::new();
    if now.refunded.amount_minor() > before.refunded.amount_minor() || (now.voided && !before.voided) {
        out.push(Payload::PaymentRefunded(state()));
    }
    let stage = |r: &Reversal| r.dispute.as_ref().map(|d| d.stage);
    if stage(now).is_some() && stage(now) != stage(before) {
        out.push(Payload::PaymentDisputed(state()));
    }
    out
}

/// One client for every delivery: receivers' redirects are not followed (an endpoint is
/// the URL the operator configured, nothing else).
fn client() -> Result<&'static reqwest::Client, JobError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| JobError::transient(format!("http client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// The `DeliverEvent` job: one signed POST. 2xx is delivered; anything else is retried by
/// the queue with backoff, and the delivery is dead when the job's tries run out.
pub async fn deliver(ctx: &AppContext, holder: Holder<'_>, delivery_id: &str) -> Result<(), JobError> {
    let Some(d) = outbound::delivery(&ctx.db, delivery_id).await? else {
        return Err(JobError::Permanent(format!("delivery {delivery_id} not found")));
    };
    // Delivered already, or handed to a newer job by a redelivery: nothing to do here.
    if d.state == DeliveryState::Delivered || d.job_id.as_deref() != Some(holder.id) {
        return Ok(());
    }
    let last_try = holder.try_no >= d.max_attempts;
    let record = |state, status, error: Option<String>| record(ctx, &d, holder.id, state, status, error);
    let Some(endpoint) = ctx.settings.events.endpoint(&d.endpoint) else {
        let why = format!("endpoint {} is no longer configured", d.endpoint);
        record(DeliveryState::Dead, None, Some(why.clone())).await?;
        return Err(JobError::Permanent(why));
    };
    let payload: Payload =
        serde_json::from_str(&d.payload).map_err(|e| JobError::Permanent(format!("stored event unreadable: {e}")))?;
    let person = match (&d.lead_id, endpoint.personal_data) {
        (Some(lead), true) => leads::get(&ctx.db, lead).await?.map(|l| Person::from(&l.contact)),
        _ => None,
    };
    let body = payload
        .for_endpoint(person)
        .body(&rfc3339(d.created_at))
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    let signer = crate::config::event_signer(endpoint).map_err(JobError::Permanent)?;
    // The time of this try, not of the event: receivers reject old timestamps (replays).
    let timestamp = now_ms() / 1000;
    let signature = signer
        .sign(&d.event_id, timestamp, &body)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    let sent = client()?
        .post(endpoint.url.clone())
        .timeout(ctx.settings.events.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(standardwebhooks::HEADER_WEBHOOK_ID, &d.event_id)
        .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
        .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(res) if res.status().is_success() => {
            record(DeliveryState::Delivered, Some(i32::from(res.status().as_u16())), None).await?;
            tracing::info!(event_id = %d.event_id, kind = %d.kind, "event delivered");
            return Ok(());
        }
        Ok(res) => {
            let status = res.status();
            let text = res.bytes().await.unwrap_or_default();
            let error = format!("HTTP {status}: {}", crate::outbound::excerpt(&text));
            (Some(i32::from(status.as_u16())), error)
        }
        Err(e) => (None, crate::outbound::describe(e)),
    };
    let state = if last_try {
        DeliveryState::Dead
    } else {
        DeliveryState::Pending
    };
    record(state, status, Some(error.clone())).await?;
    Err(JobError::transient(format!(
        "event {} to {}: {error}",
        d.event_id, endpoint.url
    )))
}

async fn record(
    ctx: &AppContext,
    d: &Delivery,
    job_id: &str,
    state: DeliveryState,
    status: Option<i32>,
    error: Option<String>,
) -> StoreResult<()> {
    let tried = Tried {
        state,
        status,
        error: error.as_deref(),
        now: now_ms(),
    };
    outbound::record_try(&ctx.db, &d.id, job_id, &tried).await
}

/// What an operator's redelivery did.
#[derive(Debug, PartialEq, Eq)]
pub enum Redelivered {
    Queued,
    /// Not dead (delivered, or still being tried) or not found: nothing was queued.
    NotDead,
}

/// Hands a dead delivery to a fresh job with a fresh set of tries; same event, same
/// `webhook-id`.
pub async fn redeliver(ctx: &AppContext, delivery_id: &str) -> StoreResult<Redelivered> {
    let Some(d) = outbound::delivery(&ctx.db, delivery_id).await? else {
        return Ok(Redelivered::NotDead);
    };
    let max_attempts = ctx
        .settings
        .events
        .endpoint(&d.endpoint)
        .and_then(|e| e.max_attempts)
        .unwrap_or(ctx.settings.worker.max_attempts);
    let job = Job::DeliverEvent {
        delivery_id: d.id.clone(),
    };
    let mut tx = ctx.db.begin_write().await?;
    let job_id = ctx
        .queue
        .enqueue_tries(&mut tx, &job, None, Duration::ZERO, max_attempts)
        .await?;
    if !outbound::redeliver(&mut tx, &d.id, &job_id, max_attempts, now_ms()).await? {
        tx.rollback().await?;
        return Ok(Redelivered::NotDead);
    }
    tx.commit().await?;
    ctx.queue.wake();
    Ok(Redelivered::Queued)
}
