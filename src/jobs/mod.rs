//! Durable background work: what must happen after a lead or an event is committed.
//! Jobs are enqueued in the same transaction as the data they follow from, claimed under
//! a lease, retried with backoff and jitter, and parked as `dead` with their last error.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::AppContext;

use crate::crm::CrmError;
use crate::gateways::GatewayError;
use crate::store::jobs::{ClaimedJob, NewJob};
use crate::store::{StoreError, StoreResult, Tx};

pub mod apply_event;
pub mod attempt;
pub mod close_followups;
pub mod crm_sync;
pub mod crm_trigger;
pub mod deal_outcome;
pub mod duplicate;
pub mod email;
pub mod events;
pub mod expire;
pub mod facts;
pub mod followup;
pub mod link_texts;
pub mod link_to_deal;
pub mod payment_link;
pub mod reconcile;
pub mod reversal;
pub mod settle;
pub mod worker;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Create (or find) the person and the deal for an attempt.
    CrmSync { attempt_id: String },
    /// Apply a stored webhook event to its attempt.
    ApplyEvent { event_id: String },
    /// Push the attempt's won/lost outcome to its deal.
    DealOutcome { attempt_id: String },
    /// Give sales a follow-up task for an unpaid attempt.
    FollowUp { attempt_id: String, reason: FollowUpReason },
    /// Ask the gateway about an attempt no webhook has settled (claimed by one instance).
    Reconcile { attempt_id: String },
    /// Tell the CRM what became of an approved payment's money (refund, void, dispute).
    Reversal { attempt_id: String },
    /// Flag a second payment for one purchase on its deal, with a task to refund it.
    DuplicatePayment { attempt_id: String },
    /// Stop an older attempt's hosted checkout from taking a payment (a newer one replaced it).
    ExpireCheckout { attempt_id: String },
    /// The lead paid: mark their open follow-up tasks done (or delete them) in the CRM.
    CloseFollowUps { attempt_id: String },
    /// Email the customer their payment confirmation.
    Receipt { attempt_id: String },
    /// Write a payment link onto its CRM deal (the configured field, and a note).
    LinkToDeal { link_id: String },
    /// Email a payment link to the person it was made for.
    LinkEmail { link_id: String },
    /// Act on a CRM webhook stored in the CRM inbox (a deal entering the link stage).
    CrmTrigger { event_id: String },
    /// Deliver one outbound event to one subscribed endpoint.
    DeliverEvent { delivery_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FollowUpReason {
    /// The n-th step of the offer's follow-up policy is due (or the checkout expired,
    /// which makes step 0 due at once).
    Abandoned {
        step: usize,
    },
    Declined,
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::CrmSync { .. } => "crm_sync",
            Job::ApplyEvent { .. } => "apply_event",
            Job::DealOutcome { .. } => "deal_outcome",
            Job::FollowUp { .. } => "follow_up",
            Job::Reconcile { .. } => "reconcile",
            Job::Reversal { .. } => "reversal",
            Job::DuplicatePayment { .. } => "duplicate_payment",
            Job::ExpireCheckout { .. } => "expire_checkout",
            Job::CloseFollowUps { .. } => "close_followups",
            Job::Receipt { .. } => "receipt",
            Job::LinkToDeal { .. } => "link_to_deal",
            Job::LinkEmail { .. } => "link_email",
            Job::CrmTrigger { .. } => "crm_trigger",
            Job::DeliverEvent { .. } => "deliver_event",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn transient(message: impl Into<String>) -> Self {
        JobError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::transient(e.to_string())
    }
}

impl From<GatewayError> for JobError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Unavailable(message) => JobError::Transient {
                message,
                retry_after: None,
            },
            GatewayError::Rejected(message) => JobError::Permanent(message),
            GatewayError::Store(e) => JobError::from(e),
        }
    }
}

impl From<CrmError> for JobError {
    fn from(e: CrmError) -> Self {
        match e {
            CrmError::Transient { retry_after, .. } => JobError::Transient {
                message: e.to_string(),
                retry_after,
            },
            CrmError::Permanent(_) => JobError::Permanent(e.to_string()),
        }
    }
}

/// The durable queue as the rest of the app sees it: enqueue inside the caller's
/// transaction, wake the worker, run one job now. It also owns this process's name as a
/// lease holder and its shutdown signals, so whoever holds a job releases it on the way out.
#[derive(Clone)]
pub struct Queue {
    wake: Arc<Notify>,
    max_attempts: i32,
    /// The lease holder's name for every job this process runs (worker and inline tries).
    holder: Arc<str>,
    /// Cancelled when the process starts to stop: no new claims from here on.
    stopping: CancellationToken,
    /// Cancelled when the shutdown grace has passed: running jobs are dropped.
    aborting: CancellationToken,
    /// Inline tries run outside the worker loop; shutdown waits for them too.
    inline: TaskTracker,
}

impl Queue {
    pub fn new(max_attempts: i32) -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            max_attempts,
            holder: Arc::from(format!("leadgate-{}", crate::clock::new_id())),
            stopping: CancellationToken::new(),
            aborting: CancellationToken::new(),
            inline: TaskTracker::new(),
        }
    }

    /// Adds `job` to `tx`, due `delay` after the database's now; call [`Queue::wake`] after
    /// the commit.
    pub async fn enqueue(&self, tx: &mut Tx, job: &Job, lead_id: Option<&str>, delay: Duration) -> StoreResult<String> {
        self.enqueue_tries(tx, job, lead_id, delay, self.max_attempts).await
    }

    /// [`Queue::enqueue`] with its own number of tries (an event endpoint's `max_attempts`).
    pub async fn enqueue_tries(
        &self,
        tx: &mut Tx,
        job: &Job,
        lead_id: Option<&str>,
        delay: Duration,
        max_attempts: i32,
    ) -> StoreResult<String> {
        let new = Self::row(job, lead_id, delay, max_attempts)?;
        crate::store::jobs::enqueue(tx, &new).await?;
        Ok(new.id)
    }

    /// Adds `job` to `tx` already leased to this process (its lead taken), to run with
    /// [`Queue::run_now`] once `tx` commits: the request saves the claim's own commit. A
    /// crash after the commit leaves it to the worker when the lease runs out, as for any
    /// claimed job. `None` when it went in queued for the worker instead, due at once: the
    /// process is stopping, or another job holds the lead. Wake the queue after the commit.
    pub async fn enqueue_leased(
        &self,
        tx: &mut Tx,
        job: &Job,
        lead_id: Option<&str>,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedJob>> {
        let new = Self::row(job, lead_id, Duration::ZERO, self.max_attempts)?;
        if self.stopping.is_cancelled() {
            crate::store::jobs::enqueue(tx, &new).await?;
            return Ok(None);
        }
        crate::store::jobs::insert_leased(tx, &new, &self.holder, crate::clock::ms(lease)).await
    }

    /// The row [`Queue::enqueue`] would insert, for a store function that inserts it in a
    /// statement of its own making.
    pub fn new_job<'a>(&self, job: &Job, lead_id: Option<&'a str>, delay: Duration) -> StoreResult<NewJob<'a>> {
        Self::row(job, lead_id, delay, self.max_attempts)
    }

    fn row<'a>(job: &Job, lead_id: Option<&'a str>, delay: Duration, max_attempts: i32) -> StoreResult<NewJob<'a>> {
        let payload = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(NewJob {
            id: crate::clock::new_id(),
            kind: job.kind(),
            payload,
            lead_id,
            delay_ms: crate::clock::ms(delay),
            max_attempts,
        })
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Starts `claimed`, leased to this process by [`Queue::enqueue_leased`], at once, in
    /// the background under its lease; the caller waits on it as long as it likes (see
    /// [`Started::wait`]). When the process began to stop since, the job goes back to the
    /// queue untried instead. Starting does not await, so a caller that gives up on the
    /// wait (or never waits) still leaves the job running.
    pub fn run_now(&self, ctx: &Arc<AppContext>, claimed: ClaimedJob) -> Started {
        let ctx = ctx.clone();
        if self.stopping.is_cancelled() {
            let worker = self.holder.clone();
            return Started(self.inline.spawn(async move {
                let holder = crate::store::jobs::Holder {
                    id: &claimed.id,
                    worker: &worker,
                    try_no: claimed.attempts,
                    lead_id: claimed.lead_id.as_deref(),
                };
                if let Err(e) = crate::store::jobs::hand_back(&ctx.db, holder).await {
                    tracing::warn!(error = %e, "job not handed back; it resumes when its lease ends");
                }
            }));
        }
        let aborting = self.aborting.clone();
        let run = worker::execute(ctx, claimed);
        Started(self.inline.spawn(async move {
            tokio::select! {
                _ = run => {}
                // Shutdown's grace is over: drop the work; `release_all` requeues the job.
                _ = aborting.cancelled() => {}
            }
        }))
    }

    /// Starts the shutdown: no job is claimed from now on.
    pub fn stop_claiming(&self) {
        self.stopping.cancel();
    }

    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    pub(crate) fn aborting(&self) -> &CancellationToken {
        &self.aborting
    }

    pub(crate) fn inline_tasks(&self) -> &TaskTracker {
        &self.inline
    }
}

/// A job [`Queue::run_now`] started.
pub struct Started(tokio::task::JoinHandle<()>);

impl Started {
    /// Waits for the job at most `deadline`; past that it goes on in the background.
    pub async fn wait(self, deadline: Duration) {
        if tokio::time::timeout(deadline, self.0).await.is_err() {
            tracing::info!(
                ?deadline,
                "job slower than the inline deadline; it goes on in the background"
            );
        }
    }
}

/// Exponential backoff from 2 s, capped at an hour, with "equal jitter" (half fixed,
/// half random) so a burst of failures does not retry in lockstep.
pub fn backoff(attempt: i32, retry_after: Option<Duration>) -> Duration {
    let exp = 2u64.saturating_pow(attempt.clamp(1, 20) as u32).min(3600);
    let half = exp * 1000 / 2;
    let jittered = Duration::from_millis(half + rand::random_range(0..=half));
    retry_after.map_or(jittered, |ra| ra.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        for attempt in 1..30 {
            let d = backoff(attempt, None);
            let cap = 2u64.saturating_pow(attempt.clamp(1, 20) as u32).min(3600);
            assert!(
                d >= Duration::from_millis(cap * 500) && d <= Duration::from_secs(cap),
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(1, Some(Duration::from_secs(90))) >= Duration::from_secs(90));
    }

    #[test]
    fn job_payload_roundtrips() {
        let job = Job::FollowUp {
            attempt_id: "a".into(),
            reason: FollowUpReason::Abandoned { step: 1 },
        };
        let s = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&s).unwrap(), job);
        assert!(s.contains("\"kind\":\"follow_up\""));
    }
}
