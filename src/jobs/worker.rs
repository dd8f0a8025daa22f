//! The worker: claims due jobs under a lease, runs them concurrently, and records the
//! outcome. Killing it at any point is safe: an unfinished job's lease expires and the
//! job runs again, and every handler is idempotent. Stopping it cleanly is faster still:
//! it stops claiming, lets running jobs finish within the grace, and hands back the rest.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::{apply_event, backoff, crm_sync, deal_outcome, followup, Job, JobError};
use crate::clock::ms;
use crate::context::AppContext;
use crate::store::jobs::{self as table, ClaimedJob, Holder, Release};

/// Longest nap after the database refused a claim, so an outage is not a busy loop.
const MAX_ERROR_NAP: Duration = Duration::from_secs(5);

/// Runs the worker loop until the queue is told to stop, then drains (see [`drain`]).
pub fn spawn(ctx: Arc<AppContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(ctx))
}

pub async fn run(ctx: Arc<AppContext>) {
    let cfg = ctx.settings.worker.clone();
    let stopping = ctx.queue.stopping().clone();
    let mut inflight = JoinSet::new();
    // Jobs committed by other instances wake this worker too; stops with the worker.
    let relay = ctx.clone();
    let relay = AbortOnDrop(tokio::spawn(async move {
        table::relay_wakeups(&relay.db, || relay.queue.wake()).await
    }));
    let worker = ctx.queue.holder().to_owned();
    tracing::info!(%worker, concurrency = cfg.concurrency, "worker started");
    let mut errors = 0u32;
    while !stopping.is_cancelled() {
        let mut failed = false;
        while inflight.len() < cfg.concurrency && !stopping.is_cancelled() {
            match table::claim(&ctx.db, &worker, ms(cfg.lease)).await {
                Ok(Some(job)) => {
                    inflight.spawn(execute(ctx.clone(), job));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs");
                    failed = true;
                    break;
                }
            }
        }
        errors = if failed { errors.saturating_add(1) } else { 0 };
        let nap = if errors > 0 {
            // Doubling from 100 ms: the database is down or full; retry, but calmly.
            (Duration::from_millis(100) * 2u32.saturating_pow(errors.min(6))).min(MAX_ERROR_NAP)
        } else if inflight.len() >= cfg.concurrency {
            cfg.idle_poll
        } else {
            match table::next_due_in(&ctx.db).await {
                Ok(Some(left)) => Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(cfg.idle_poll),
                _ => cfg.idle_poll,
            }
        };
        tokio::select! {
            _ = ctx.queue.woken(), if errors == 0 => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stopping.cancelled() => {}
        }
    }
    drop(relay);
    drain(&ctx, inflight).await;
}

/// Tries at handing jobs back on the way out.
const HAND_BACK_TRIES: u32 = 3;

/// The end of a clean shutdown: waits up to the grace for running jobs (the worker's and
/// the inline tries), drops whatever is still running, then hands every job this process
/// holds back to the queue and frees their leads, so a restart resumes them at once.
async fn drain(ctx: &AppContext, mut inflight: JoinSet<()>) {
    let grace = ctx.settings.worker.shutdown_grace;
    let inline = ctx.queue.inline_tasks();
    inline.close();
    let running = inflight.len();
    tracing::info!(running, ?grace, "worker stopping");
    let all_done = async {
        while inflight.join_next().await.is_some() {}
        inline.wait().await;
    };
    if tokio::time::timeout(grace, all_done).await.is_err() {
        tracing::warn!("shutdown grace passed with jobs still running; handing them back");
        ctx.queue.aborting().cancel();
        inflight.shutdown().await;
        inline.wait().await;
    }
    // A busy database may refuse one try (a connection not free within the acquire
    // timeout while aborted jobs give theirs back): a few more, briefly, before leaving the
    // jobs to wait out their leases.
    for try_no in 1..=HAND_BACK_TRIES {
        match table::release_all(&ctx.db, ctx.queue.holder()).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(jobs = n, "unfinished jobs handed back to the queue");
                break;
            }
            Err(e) if try_no < HAND_BACK_TRIES => {
                tracing::warn!(error = %e, try_no, "could not hand jobs back yet; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not hand jobs back; they resume when their lease ends"),
        }
    }
    tracing::info!("worker stopped");
}

/// For a process without a worker loop: hands back what its inline tries hold.
pub async fn hand_back(ctx: &AppContext) {
    drain(ctx, JoinSet::new()).await
}

/// Aborts the task when the owner (the worker loop) is dropped or aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one claimed job and records done / retry / dead. Also used for the inline try.
pub(crate) async fn execute(ctx: Arc<AppContext>, job: ClaimedJob) {
    let worker = ctx.queue.holder().to_owned();
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
        lead_id: job.lead_id.as_deref(),
    };
    async move {
        let outcome = if job.attempts > job.max_attempts {
            // Only reachable through leases that kept expiring: the job keeps killing its worker.
            Err(Stopped::Failed(JobError::Permanent(
                "lease expired on every attempt".into(),
            )))
        } else {
            match serde_json::from_str::<Job>(&job.payload) {
                Ok(parsed) => keep_lease(&ctx, holder, dispatch(&ctx, holder, &parsed)).await,
                Err(e) => Err(Stopped::Failed(JobError::Permanent(format!("unreadable payload: {e}")))),
            }
        };
        let released = match &outcome {
            Ok(()) => table::release(&ctx.db, holder, Release::Done).await,
            Err(Stopped::LeaseLost) => {
                // Not ours any more: whoever holds it now records the outcome.
                tracing::warn!("job lease lost; stopped the job before it could act again");
                return;
            }
            Err(Stopped::Failed(JobError::Transient { message, retry_after })) if job.attempts < job.max_attempts => {
                let delay_ms = ms(backoff(job.attempts, *retry_after));
                tracing::warn!(error = %message, "job failed, will retry");
                table::release(
                    &ctx.db,
                    holder,
                    Release::Retry {
                        delay_ms,
                        error: message,
                    },
                )
                .await
            }
            Err(Stopped::Failed(e)) => {
                tracing::error!(error = %e, "job dead");
                let error = e.to_string();
                table::release(&ctx.db, holder, Release::Dead { error: &error }).await
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

/// Why a job ended without success.
enum Stopped {
    Failed(JobError),
    /// Its lease could not be renewed before it ran out; the job was cancelled.
    LeaseLost,
}

/// Runs `work` while renewing the job's lease every third of it, so a slow but live
/// handler (a CRM taking its time) is not run a second time beside itself. When the
/// lease is lost, or cannot be renewed before it runs out (the database is unreachable),
/// `work` is dropped at once: from then on another worker may run the same job, and two
/// runs side by side could both create in the CRM.
async fn keep_lease<F>(ctx: &AppContext, holder: Holder<'_>, work: F) -> Result<(), Stopped>
where
    F: std::future::Future<Output = Result<(), JobError>>,
{
    let lease = ctx.settings.worker.lease;
    // Measured on this host's monotonic clock from before each renewal was sent, so it
    // ends no later than the lease the database granted; the margin covers clock rates.
    let margin = (lease / 10).min(Duration::from_secs(2));
    let mut valid_until = Instant::now() + lease - margin;
    let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(100)));
    tick.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome.map_err(Stopped::Failed),
            _ = tokio::time::sleep_until(valid_until) => return Err(Stopped::LeaseLost),
            _ = tick.tick() => {
                let asked = Instant::now();
                match tokio::time::timeout_at(valid_until, table::renew(&ctx.db, holder, ms(lease))).await {
                    Ok(Ok(true)) => valid_until = asked + lease - margin,
                    Ok(Ok(false)) | Err(_) => return Err(Stopped::LeaseLost),
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not renew a job lease"),
                }
            }
        }
    }
}

async fn dispatch(ctx: &AppContext, holder: Holder<'_>, job: &Job) -> Result<(), JobError> {
    match job {
        Job::CrmSync { attempt_id } => crm_sync::run(ctx, attempt_id).await,
        Job::ApplyEvent { event_id } => apply_event::run(ctx, holder, event_id).await,
        Job::DealOutcome { attempt_id } => deal_outcome::run(ctx, attempt_id).await,
        Job::FollowUp { attempt_id, reason } => followup::run(ctx, attempt_id, *reason).await,
        Job::Reconcile { attempt_id } => super::reconcile::run(ctx, attempt_id).await,
        Job::Reversal { attempt_id } => super::reversal::run(ctx, attempt_id).await,
        Job::DuplicatePayment { attempt_id } => super::duplicate::run(ctx, attempt_id).await,
        Job::ExpireCheckout { attempt_id } => super::expire::run(ctx, attempt_id).await,
        Job::CloseFollowUps { attempt_id } => super::close_followups::run(ctx, attempt_id).await,
        Job::Receipt { attempt_id } => super::email::receipt(ctx, attempt_id).await,
        Job::LinkToDeal { link_id } => super::link_to_deal::run(ctx, link_id).await,
        Job::CrmTrigger { event_id } => super::crm_trigger::run(ctx, event_id).await,
        Job::LinkEmail { link_id } => super::email::payment_link(ctx, link_id).await,
        Job::DeliverEvent { delivery_id } => super::events::deliver(ctx, holder, delivery_id).await,
    }
}
