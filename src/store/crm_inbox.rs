//! CRM inbox: every authenticated CRM webhook as received, once per (crm, event id).

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, StoreResult, Tx};

pub struct NewCrmEvent<'a> {
    pub id: String,
    pub crm: &'a str,
    pub event_id: &'a str,
    pub body: &'a [u8],
    pub received_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct CrmEvent {
    pub id: String,
    pub crm: String,
    pub event_id: String,
    pub body: Vec<u8>,
    pub processed_at: Option<i64>,
    pub outcome: Option<String>,
}

/// Stores the event; `false` when the CRM already sent one with this id.
pub async fn insert(tx: &mut Tx, e: &NewCrmEvent<'_>) -> StoreResult<bool> {
    let sql = "INSERT INTO crm_events (id, crm, event_id, body, received_at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (crm, event_id) DO NOTHING";
    let done = on_tx!(tx, |c| sqlx::query(sql)
        .bind(&e.id)
        .bind(e.crm)
        .bind(e.event_id)
        .bind(e.body)
        .bind(e.received_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<CrmEvent>> {
    let sql = "SELECT id, crm, event_id, body, processed_at, outcome FROM crm_events WHERE id = $1";
    let row = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    Ok(row)
}

pub async fn mark_processed(db: &Db, id: &str, outcome: &str, now: i64) -> StoreResult<()> {
    let sql = "UPDATE crm_events SET processed_at = $1, outcome = $2 WHERE id = $3";
    on_pool_write!(db, |p| sqlx::query(sql)
        .bind(now)
        .bind(outcome)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every stored CRM event, newest first (operators and tests).
pub async fn recent(db: &Db, limit: i64) -> StoreResult<Vec<CrmEvent>> {
    let sql = "SELECT id, crm, event_id, body, processed_at, outcome FROM crm_events \
               ORDER BY received_at DESC, id DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// A stored CRM event as `/admin` lists it (no body).
#[derive(Debug, Clone, FromRow)]
pub struct CrmEventView {
    pub crm: String,
    pub event_id: String,
    pub received_at: i64,
    pub outcome: Option<String>,
}

/// The newest CRM events with what became of them, for `/admin`.
pub async fn recent_views(db: &Db, limit: i64) -> StoreResult<Vec<CrmEventView>> {
    let sql = "SELECT crm, event_id, received_at, outcome FROM crm_events \
               ORDER BY received_at DESC, id DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}
