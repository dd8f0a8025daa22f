//! Durable background work: what must happen after a lead or an event is committed.
//! Jobs are enqueued in the same transaction as the data they follow from, claimed under
//! a lease, retried with backoff and jitter, and parked as `dead` with their last error.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::crm::CrmError;
use crate::store::jobs::NewJob;
use crate::store::{StoreError, StoreResult, Tx};

pub mod crm_sync;
pub mod deal_outcome;
pub mod followup;
pub mod reconcile;
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FollowUpReason {
    /// The n-th configured delay after creation passed without payment.
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

/// Enqueues jobs inside the caller's transaction and wakes this process's worker.
#[derive(Clone)]
pub struct Queue {
    wake: Arc<Notify>,
    max_attempts: i32,
}

impl Queue {
    pub fn new(max_attempts: i32) -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            max_attempts,
        }
    }

    /// Adds `job` to `tx`; call [`Queue::wake`] after the commit.
    pub async fn enqueue(&self, tx: &mut Tx, job: &Job, lead_id: Option<&str>, run_at: i64) -> StoreResult<String> {
        let id = crate::clock::new_id();
        let payload = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let new = NewJob {
            id: id.clone(),
            kind: job.kind(),
            payload,
            lead_id,
            run_at,
            max_attempts: self.max_attempts,
        };
        crate::store::jobs::enqueue(tx, &new).await?;
        Ok(id)
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await
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
