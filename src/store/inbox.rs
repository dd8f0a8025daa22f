//! Webhook inbox: every verified event as received, once per (gateway, event id).

use sqlx::FromRow;

use super::jobs::NewJob;
use super::{on_pool, on_tx, Db, StoreResult, Tx};

pub struct NewEvent<'a> {
    pub id: String,
    pub gateway: &'a str,
    pub event_id: &'a str,
    pub reference: Option<&'a str>,
    pub status: Option<&'a str>,
    pub query: &'a str,
    pub body: &'a [u8],
    pub received_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredEvent {
    pub id: String,
    pub gateway: String,
    pub event_id: String,
    pub reference: Option<String>,
    pub query: String,
    pub body: Vec<u8>,
    pub processed_at: Option<i64>,
}

/// Stores the event and, when it is new, its `job`, tagged with the lead of the attempt the
/// event names (so one payment's events are applied one at a time, in arrival order, and a
/// stale decline cannot race the approval), all or nothing; `false` when the gateway
/// already sent one with this id. On PostgreSQL one statement does it all (one round trip,
/// one commit); on SQLite one transaction.
pub async fn insert_with_job(db: &Db, e: &NewEvent<'_>, job: &NewJob<'_>) -> StoreResult<bool> {
    match db {
        Db::Postgres(p) => {
            let fresh: i64 = sqlx::query_scalar(&INSERT_WITH_JOB_PG)
                .bind(&e.id)
                .bind(e.gateway)
                .bind(e.event_id)
                .bind(e.reference)
                .bind(e.status)
                .bind(e.query)
                .bind(e.body)
                .bind(e.received_at)
                .bind(&job.id)
                .bind(job.kind)
                .bind(&job.payload)
                .bind(job.max_attempts)
                .bind(job.delay_ms)
                .bind(super::jobs::JOBS_CHANNEL)
                .fetch_one(p)
                .await?;
            Ok(fresh == 1)
        }
        Db::Sqlite(_) => {
            let mut tx = db.begin_write().await?;
            let fresh = insert(&mut tx, e).await?;
            if fresh {
                let lead = match e.reference {
                    Some(reference) => super::attempts::lead_of(&mut tx, reference).await?,
                    None => None,
                };
                let job = NewJob {
                    lead_id: lead.as_deref(),
                    ..job.clone()
                };
                super::jobs::enqueue(&mut tx, &job).await?;
            }
            tx.commit().await?;
            Ok(fresh)
        }
    }
}

/// The event, its job and the workers' wake-up (delivered at commit) in one statement.
static INSERT_WITH_JOB_PG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH e AS ( \
           INSERT INTO webhook_events (id, gateway, event_id, reference, status, query, body, received_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (gateway, event_id) DO NOTHING RETURNING id), \
         j AS ( \
           INSERT INTO jobs (id, kind, payload, lead_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
           SELECT $9, $10, $11, (SELECT lead_id FROM attempts WHERE id = $4), 'queued', 0, $12, \
                  {now} + $13, {now}, {now} FROM e RETURNING id) \
         SELECT (SELECT COUNT(*) FROM j) AS fresh, (SELECT pg_notify($14, '') IS NULL) AS woke",
        now = super::PG_NOW_MS
    )
});

/// Stores the event; `false` when the gateway already sent one with this id.
pub async fn insert(tx: &mut Tx, e: &NewEvent<'_>) -> StoreResult<bool> {
    insert_as(tx, e, None).await
}

/// Keeps a verified delivery its gateway's parser could not read, already marked
/// `unreadable` (no job applies it); `false` when the same one was kept before.
pub async fn insert_unreadable(tx: &mut Tx, e: &NewEvent<'_>) -> StoreResult<bool> {
    insert_as(tx, e, Some("unreadable")).await
}

/// With an `outcome`, the row is stored already processed.
async fn insert_as(tx: &mut Tx, e: &NewEvent<'_>, outcome: Option<&str>) -> StoreResult<bool> {
    let sql = "INSERT INTO webhook_events \
               (id, gateway, event_id, reference, status, query, body, received_at, processed_at, outcome) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 IS NULL THEN NULL ELSE $8 END, $9) \
               ON CONFLICT (gateway, event_id) DO NOTHING";
    let done = on_tx!(tx, |c| sqlx::query(sql)
        .bind(&e.id)
        .bind(e.gateway)
        .bind(e.event_id)
        .bind(e.reference)
        .bind(e.status)
        .bind(e.query)
        .bind(e.body)
        .bind(e.received_at)
        .bind(outcome)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<StoredEvent>> {
    let sql = "SELECT id, gateway, event_id, reference, query, body, processed_at FROM webhook_events WHERE id = $1";
    let row = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    Ok(row)
}

/// The stored event a gateway sent under this id (as stored: see `domain::edge::storable`).
pub async fn by_event_id(db: &Db, gateway: &str, event_id: &str) -> StoreResult<Option<StoredEvent>> {
    let sql = "SELECT id, gateway, event_id, reference, query, body, processed_at FROM webhook_events \
               WHERE gateway = $1 AND event_id = $2";
    let row = on_pool!(db, |p| sqlx::query_as(sql)
        .bind(gateway)
        .bind(event_id)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

pub async fn mark_processed(tx: &mut Tx, id: &str, outcome: &str, now: i64) -> StoreResult<()> {
    let sql = "UPDATE webhook_events SET processed_at = $1, outcome = $2 WHERE id = $3";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(now)
        .bind(outcome)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn count_for_reference(db: &Db, gateway: &str, reference: &str) -> StoreResult<i64> {
    let sql = "SELECT COUNT(*) FROM webhook_events WHERE gateway = $1 AND reference = $2";
    let n = on_pool!(db, |p| sqlx::query_scalar(sql)
        .bind(gateway)
        .bind(reference)
        .fetch_one(p)
        .await)?;
    Ok(n)
}

/// Every stored event, of every gateway.
pub async fn count(db: &Db) -> StoreResult<i64> {
    let n = on_pool!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
        .fetch_one(p)
        .await)?;
    Ok(n)
}

/// A verified event leadgate could not apply, for the operator to look at.
#[derive(Debug, Clone, FromRow)]
pub struct UnappliedEvent {
    pub gateway: String,
    pub event_id: String,
    pub reference: Option<String>,
    pub outcome: String,
    pub received_at: i64,
}

/// Stored events whose reference, payment or amount matched nothing of ours, or that could
/// not be read at all; newest first.
pub async fn unapplied(db: &Db, limit: i64) -> StoreResult<Vec<UnappliedEvent>> {
    let sql = "SELECT gateway, event_id, reference, outcome, received_at FROM webhook_events \
               WHERE outcome IN ('unknown_reference', 'unknown_payment', 'mismatch', 'unreadable', 'reversal_refused', 'other_payment') \
               ORDER BY received_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}
