//! The durable job queue's table. Claiming is one UPDATE ... RETURNING statement, so it is
//! atomic on SQLite (single writer) and uses `FOR UPDATE SKIP LOCKED` on PostgreSQL.

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
    Ok(())
}

/// A job is due when queued and its time has come, or running under an expired lease
/// (its worker died). Jobs of a lead with another job under a live lease wait, so one
/// lead's CRM writes do not interleave.
const DUE: &str = "((j.state = 'queued' AND j.run_at <= $3) OR (j.state = 'running' AND j.locked_until < $3)) \
    AND (j.lead_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r WHERE r.lead_id = j.lead_id \
    AND r.state = 'running' AND r.locked_until >= $3 AND r.id <> j.id))";
const SET_LEASE: &str = "UPDATE jobs SET state = 'running', locked_until = $1, locked_by = $2, \
    attempts = attempts + 1, updated_at = $3";
const RETURNING: &str = "RETURNING id, kind, payload, lead_id, attempts, max_attempts";

/// Leases the next due job to `worker` until `now + lease_ms`.
pub async fn claim(db: &Db, worker: &str, now: i64, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    // SQLite serialises writers, so the plain subquery is already exclusive there.
    let lock = match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "{SET_LEASE} WHERE id = (SELECT j.id FROM jobs j WHERE {DUE} ORDER BY j.run_at LIMIT 1{lock}) {RETURNING}"
    );
    let job: Option<ClaimedJob> = on_pool!(db, |p| sqlx::query_as(&sql)
        .bind(now + lease_ms)
        .bind(worker)
        .bind(now)
        .fetch_optional(p)
        .await)?;
    Ok(job)
}

/// Leases one specific queued job (the inline CRM try during the form POST).
pub async fn claim_by_id(db: &Db, id: &str, worker: &str, now: i64, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let sql = format!("{SET_LEASE} WHERE id = $4 AND state = 'queued' {RETURNING}");
    let job: Option<ClaimedJob> = on_pool!(db, |p| sqlx::query_as(&sql)
        .bind(now + lease_ms)
        .bind(worker)
        .bind(now)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(job)
}

/// Ends a job we still hold the lease of in `state` (`done`, `queued` for a retry, `dead`).
pub async fn release(
    db: &Db,
    id: &str,
    worker: &str,
    state: &str,
    run_at: Option<i64>,
    error: Option<&str>,
) -> StoreResult<bool> {
    let sql = "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error), \
               locked_until = NULL, locked_by = NULL, updated_at = $4 \
               WHERE id = $5 AND locked_by = $6 AND state = 'running'";
    let done = on_pool!(db, |p| sqlx::query(sql)
        .bind(state)
        .bind(run_at)
        .bind(error)
        .bind(crate::clock::now_ms())
        .bind(id)
        .bind(worker)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
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
