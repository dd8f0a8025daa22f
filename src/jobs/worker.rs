//! The worker: claims due jobs under a lease, runs them concurrently, and records the
//! outcome. Killing it at any point is safe: an unfinished job's lease expires and the
//! job runs again, and every handler is idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::Instrument;

use super::{backoff, crm_sync, deal_outcome, followup, Job, JobError};
use crate::clock::{ms, now_ms};
use crate::context::AppContext;
use crate::flows;
use crate::store::jobs::{self as table, ClaimedJob, Holder};

/// Runs the worker loop until the returned task is aborted.
pub fn spawn(ctx: Arc<AppContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(ctx, format!("worker-{}", crate::clock::new_id())))
}

pub async fn run(ctx: Arc<AppContext>, worker: String) {
    let cfg = ctx.settings.worker.clone();
    let mut inflight = JoinSet::new();
    // Jobs committed by other instances wake this worker too; stops with the worker.
    let relay = ctx.clone();
    let _relay = AbortOnDrop(tokio::spawn(async move {
        table::relay_wakeups(&relay.db, || relay.queue.wake()).await
    }));
    tracing::info!(%worker, concurrency = cfg.concurrency, "worker started");
    loop {
        while inflight.len() < cfg.concurrency {
            match table::claim(&ctx.db, &worker, now_ms(), ms(cfg.lease)).await {
                Ok(Some(job)) => {
                    inflight.spawn(execute(ctx.clone(), worker.clone(), job));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs");
                    break;
                }
            }
        }
        let nap = if inflight.len() >= cfg.concurrency {
            cfg.idle_poll
        } else {
            match table::next_due(&ctx.db).await {
                Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(cfg.idle_poll),
                _ => cfg.idle_poll,
            }
        };
        tokio::select! {
            _ = ctx.queue.woken() => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// Aborts the task when the owner (the worker loop) is dropped or aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one claimed job and records done / retry / dead. Also used for the inline CRM try.
pub async fn execute(ctx: Arc<AppContext>, worker: String, job: ClaimedJob) {
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        kind = %job.kind,
        // Recorded once the handler has loaded the attempt (see telemetry::record_ids).
        lead_id = tracing::field::Empty,
        try_no = job.attempts,
        attempt_id = tracing::field::Empty,
    );
    let holder = Holder {
        id: &job.id,
        worker: &worker,
        try_no: job.attempts,
    };
    async move {
        let outcome = if job.attempts > job.max_attempts {
            // Only reachable through leases that kept expiring: the job keeps killing its worker.
            Err(JobError::Permanent("lease expired on every attempt".into()))
        } else {
            match serde_json::from_str::<Job>(&job.payload) {
                Ok(parsed) => keep_lease(&ctx, holder, dispatch(&ctx, &parsed)).await,
                Err(e) => Err(JobError::Permanent(format!("unreadable payload: {e}"))),
            }
        };
        let released = match &outcome {
            Ok(()) => table::release(&ctx.db, holder, "done", None, None).await,
            Err(JobError::Transient { message, retry_after }) if job.attempts < job.max_attempts => {
                let at = now_ms() + ms(backoff(job.attempts, *retry_after));
                tracing::warn!(error = %message, "job failed, will retry");
                table::release(&ctx.db, holder, "queued", Some(at), Some(message)).await
            }
            Err(e) => {
                tracing::error!(error = %e, "job dead");
                table::release(&ctx.db, holder, "dead", None, Some(&e.to_string())).await
            }
        };
        match released {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease was lost before the job finished; another worker owns it"),
            Err(e) => tracing::warn!(error = %e, "could not record job outcome; it will run again"),
        }
    }
    .instrument(span)
    .await
}

/// Runs `work` while renewing the job's lease every third of it, so a slow but live
/// handler (a CRM taking its time) is not run a second time beside itself. Only a
/// worker that died stops renewing, and then the lease runs out as designed.
async fn keep_lease<F>(ctx: &AppContext, holder: Holder<'_>, work: F) -> Result<(), JobError>
where
    F: std::future::Future<Output = Result<(), JobError>>,
{
    let lease = ctx.settings.worker.lease;
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(100)));
    tick.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = tick.tick() => match table::renew(&ctx.db, holder, now_ms() + ms(lease)).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!("job lease lost while running"),
                Err(e) => tracing::warn!(error = %e, "could not renew a job lease"),
            },
        }
    }
}

async fn dispatch(ctx: &AppContext, job: &Job) -> Result<(), JobError> {
    match job {
        Job::CrmSync { attempt_id } => crm_sync::run(ctx, attempt_id).await,
        Job::ApplyEvent { event_id } => flows::payment::apply_event(ctx, event_id).await,
        Job::DealOutcome { attempt_id } => deal_outcome::run(ctx, attempt_id).await,
        Job::FollowUp { attempt_id, reason } => followup::run(ctx, attempt_id, *reason).await,
        Job::Reconcile { attempt_id } => super::reconcile::run(ctx, attempt_id).await,
    }
}
