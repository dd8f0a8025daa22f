//! The durable job queue's tables. A claim picks due jobs (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has a single writer), takes the job's lead in `lead_locks` and leases
//! the job, all in one transaction, so no two jobs of one lead ever run at once.

use sqlx::FromRow;

use super::{on_pool, on_tx, Db, StoreResult, Tx};

pub struct NewJob<'a> {
    pub id: String,
    pub kind: &'a str,
    pub payload: String,
    pub lead_id: Option<&'a str>,
    pub run_at: i64,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub lead_id: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct JobSummary {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub run_at: i64,
    pub last_error: Option<String>,
}

pub async fn enqueue(tx: &mut Tx, job: &NewJob<'_>) -> StoreResult<()> {
    let sql = "INSERT INTO jobs (id, kind, payload, lead_id, state, attempts, max_attempts, run_at, \
               created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(&job.id)
        .bind(job.kind)
        .bind(&job.payload)
        .bind(job.lead_id)
        .bind(job.max_attempts)
        .bind(job.run_at)
        .bind(crate::clock::now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if let Tx::Postgres(t) = tx {
        // Delivered at commit (and only then) to every instance's worker: see `relay_wakeups`.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// The PostgreSQL channel on which a committed enqueue wakes every instance's worker.
const JOBS_CHANNEL: &str = "leadgate_jobs";

/// On PostgreSQL, calls `wake` whenever any instance commits a job (LISTEN/NOTIFY), so a
/// worker in another process starts at once instead of at its next poll; reconnects
/// after a lost connection. Returns at once on SQLite, where one process owns the file
/// and its enqueues wake its worker in-process.
pub async fn relay_wakeups(db: &Db, wake: impl Fn()) {
    let Db::Postgres(pool) = db else { return };
    loop {
        match listen(pool).await {
            Ok(mut listener) => loop {
                match listener.recv().await {
                    Ok(_) => wake(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications interrupted");
                        break;
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot listen for job notifications"),
        }
        // Polling covers the gap; try again shortly.
        wake();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(JOBS_CHANNEL).await?;
    Ok(listener)
}

/// A job is due when queued and its time has come, or running under an expired lease
/// (its worker died), and its lead is not held by another job. `$1` is now.
const DUE: &str = "((j.state = 'queued' AND j.run_at <= $1) OR (j.state = 'running' AND j.locked_until < $1)) \
    AND (j.lead_id IS NULL OR NOT EXISTS (SELECT 1 FROM lead_locks l WHERE l.lead_id = j.lead_id \
    AND l.locked_until >= $1 AND l.job_id <> j.id))";
const RETURNING: &str = "RETURNING id, kind, payload, lead_id, attempts, max_attempts";
/// How many due jobs one claim looks at before giving up on busy leads.
const CANDIDATES: i64 = 16;

/// Leases the next due job to `worker` until `now + lease_ms`.
pub async fn claim(db: &Db, worker: &str, now: i64, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let lock = match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => " FOR UPDATE OF j SKIP LOCKED",
    };
    let sql = format!("SELECT j.id, j.lead_id FROM jobs j WHERE {DUE} ORDER BY j.run_at, j.id LIMIT $2{lock}");
    let mut tx = db.begin_write().await?;
    let candidates: Vec<(String, Option<String>)> = on_tx!(&mut tx, |c| sqlx::query_as(&sql)
        .bind(now)
        .bind(CANDIDATES)
        .fetch_all(c)
        .await)?;
    for (id, lead_id) in candidates {
        if let Some(job) = lease(&mut tx, &id, lead_id.as_deref(), worker, now, now + lease_ms).await? {
            tx.commit().await?;
            return Ok(Some(job));
        }
    }
    tx.commit().await?;
    Ok(None)
}

/// Leases one specific queued job (the inline CRM try during the form POST).
pub async fn claim_by_id(db: &Db, id: &str, worker: &str, now: i64, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let mut tx = db.begin_write().await?;
    let sql = "SELECT lead_id FROM jobs WHERE id = $1 AND state = 'queued'";
    let found: Option<Option<String>> = on_tx!(&mut tx, |c| sqlx::query_scalar(sql).bind(id).fetch_optional(c).await)?;
    let job = match found {
        Some(lead_id) => lease(&mut tx, id, lead_id.as_deref(), worker, now, now + lease_ms).await?,
        None => None,
    };
    tx.commit().await?;
    Ok(job)
}

/// Takes the job's lead (unless another job holds it) and leases the job.
async fn lease(
    tx: &mut Tx,
    id: &str,
    lead_id: Option<&str>,
    worker: &str,
    now: i64,
    until: i64,
) -> StoreResult<Option<ClaimedJob>> {
    if let Some(lead) = lead_id {
        // On PostgreSQL a concurrent taker of the same lead waits here for our commit, then
        // sees our row and gets nothing: the unique key makes the lead lock strict.
        let take = "INSERT INTO lead_locks (lead_id, job_id, locked_by, locked_until) VALUES ($1, $2, $3, $4) \
                    ON CONFLICT (lead_id) DO UPDATE SET job_id = excluded.job_id, locked_by = excluded.locked_by, \
                    locked_until = excluded.locked_until \
                    WHERE lead_locks.locked_until < $5 OR lead_locks.job_id = excluded.job_id";
        let taken = on_tx!(tx, |c| sqlx::query(take)
            .bind(lead)
            .bind(id)
            .bind(worker)
            .bind(until)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        if taken == 0 {
            return Ok(None);
        }
    }
    let sql = format!(
        "UPDATE jobs SET state = 'running', locked_until = $1, locked_by = $2, attempts = attempts + 1, \
         updated_at = $3 WHERE id = $4 AND (state = 'queued' OR (state = 'running' AND locked_until < $3)) {RETURNING}"
    );
    let job: Option<ClaimedJob> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(until)
        .bind(worker)
        .bind(now)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(job)
}

/// Who holds a job: the worker and which try it is on. A worker can hold a job twice
/// (its own lease expired under a slow try), so the try number tells them apart.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub id: &'a str,
    pub worker: &'a str,
    pub try_no: i32,
}

const HELD: &str = "id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'";

/// Ends a job we still hold in `state` (`done`, `queued` for a retry, `dead`).
pub async fn release(
    db: &Db,
    h: Holder<'_>,
    state: &str,
    run_at: Option<i64>,
    error: Option<&str>,
) -> StoreResult<bool> {
    let sql = format!(
        "UPDATE jobs SET state = $4, run_at = COALESCE($5, run_at), last_error = COALESCE($6, last_error), \
         locked_until = NULL, locked_by = NULL, updated_at = $7 WHERE {HELD}"
    );
    let mut tx = db.begin().await?;
    let done = on_tx!(&mut tx, |c| sqlx::query(&sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .bind(state)
        .bind(run_at)
        .bind(error)
        .bind(crate::clock::now_ms())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    // A lead lock whose lease is in the past is free.
    follow_on_lead(tx, h, done == 1, 0).await
}

/// Extends the lease of a job still running, and its lead's; false when it was lost.
pub async fn renew(db: &Db, h: Holder<'_>, until: i64) -> StoreResult<bool> {
    let sql = format!("UPDATE jobs SET locked_until = $4 WHERE {HELD}");
    let mut tx = db.begin().await?;
    let done = on_tx!(&mut tx, |c| sqlx::query(&sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .bind(until)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    follow_on_lead(tx, h, done == 1, until).await
}

/// When the job's own update applied (`held`), gives its lead lock the same lease end,
/// then commits both. The lock keeps its own copy of the lease on purpose: a racing
/// claim re-reads only the lock row, so the row alone must say whether it is held.
async fn follow_on_lead(mut tx: Tx, h: Holder<'_>, held: bool, until: i64) -> StoreResult<bool> {
    if held {
        let sql = "UPDATE lead_locks SET locked_until = $1 WHERE job_id = $2 AND locked_by = $3";
        on_tx!(&mut tx, |c| sqlx::query(sql)
            .bind(until)
            .bind(h.id)
            .bind(h.worker)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(held)
}

/// The earliest time a queued job or an expired lease becomes due, for the worker's sleep.
pub async fn next_due(db: &Db) -> StoreResult<Option<i64>> {
    let sql = "SELECT MIN(CASE WHEN state = 'queued' THEN run_at ELSE locked_until END) FROM jobs \
               WHERE state IN ('queued', 'running')";
    let t: Option<i64> = on_pool!(db, |p| sqlx::query_scalar(sql).fetch_one(p).await)?;
    Ok(t)
}

pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Vec<JobSummary>> {
    let sql = "SELECT id, kind, state, attempts, run_at, last_error FROM jobs WHERE lead_id = $1 \
               ORDER BY created_at, id";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?;
    Ok(rows)
}

/// Jobs that gave up, newest first, for the operator.
pub async fn dead(db: &Db, limit: i64) -> StoreResult<Vec<JobSummary>> {
    let sql = "SELECT id, kind, state, attempts, run_at, last_error FROM jobs WHERE state = 'dead' \
               ORDER BY updated_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// Jobs running now or queued to run before `until` (tests and health reporting).
pub async fn pending_until(db: &Db, until: i64) -> StoreResult<i64> {
    let sql = "SELECT COUNT(*) FROM jobs WHERE state = 'running' OR (state = 'queued' AND run_at <= $1)";
    let n: i64 = on_pool!(db, |p| sqlx::query_scalar(sql).bind(until).fetch_one(p).await)?;
    Ok(n)
}
