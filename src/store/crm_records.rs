//! What leadgate created in the CRM, recorded against the lead so a retry finds it.

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, PerBackend, StoreResult, Tx};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct CrmRecord {
    pub crm: String,
    pub kind: String,
    pub local_key: String,
    pub remote_id: String,
    pub state: Option<String>,
}

pub async fn find(db: &Db, crm: &str, kind: &str, local_key: &str) -> StoreResult<Option<CrmRecord>> {
    let sql = "SELECT crm, kind, local_key, remote_id, state FROM crm_records \
               WHERE crm = $1 AND kind = $2 AND local_key = $3";
    let row = on_pool!(db, |p| sqlx::query_as(sql)
        .bind(crm)
        .bind(kind)
        .bind(local_key)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

const FIND_PAIR: &str = "SELECT crm, kind, local_key, remote_id, state FROM crm_records WHERE crm = $1 \
                         AND ((kind = $2 AND local_key = $3) OR (kind = $4 AND local_key = $5))";

/// [`find_pair`]'s one query, for a pool or a transaction's connection.
macro_rules! find_pair {
    ($exec:expr, $crm:expr, $a:expr, $b:expr) => {
        sqlx::query_as::<_, CrmRecord>(FIND_PAIR)
            .bind($crm)
            .bind($a.0)
            .bind($a.1)
            .bind($b.0)
            .bind($b.1)
            .fetch_all($exec)
            .await
    };
}

fn pick_pair(rows: &[CrmRecord], a: (&str, &str), b: (&str, &str)) -> (Option<CrmRecord>, Option<CrmRecord>) {
    let pick = |(kind, key): (&str, &str)| rows.iter().find(|r| r.kind == kind && r.local_key == key).cloned();
    (pick(a), pick(b))
}

/// Two lookups in one round trip: the records of (`kind`, `key`) for `a` and for `b`.
pub async fn find_pair(
    db: &Db,
    crm: &str,
    a: (&str, &str),
    b: (&str, &str),
) -> StoreResult<(Option<CrmRecord>, Option<CrmRecord>)> {
    let rows = on_pool!(db, |p| find_pair!(p, crm, a, b))?;
    Ok(pick_pair(&rows, a, b))
}

/// [`find_pair`] in the caller's transaction.
pub async fn find_pair_in(
    tx: &mut Tx,
    crm: &str,
    a: (&str, &str),
    b: (&str, &str),
) -> StoreResult<(Option<CrmRecord>, Option<CrmRecord>)> {
    let rows = on_tx!(tx, |c| find_pair!(c, crm, a, b))?;
    Ok(pick_pair(&rows, a, b))
}

const INSERT: &str =
    "INSERT INTO crm_records (crm, kind, local_key, lead_id, remote_id, state, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (crm, kind, local_key) DO NOTHING";

/// One `INSERT` for a pool or a transaction's connection; the rows it added.
macro_rules! insert {
    ($exec:expr, $crm:expr, $kind:expr, $key:expr, $lead:expr, $remote:expr, $state:expr) => {
        sqlx::query(INSERT)
            .bind($crm)
            .bind($kind)
            .bind($key)
            .bind($lead)
            .bind($remote)
            .bind($state)
            .bind(crate::clock::now_ms())
            .execute($exec)
            .await
            .map(|r| r.rows_affected())
    };
}

/// Records a created object; a second record of the same key keeps the first.
pub async fn record(
    db: &Db,
    crm: &str,
    kind: &str,
    local_key: &str,
    lead_id: &str,
    remote_id: &str,
    state: Option<&str>,
) -> StoreResult<()> {
    on_pool_write!(db, |p| insert!(p, crm, kind, local_key, lead_id, remote_id, state))?;
    Ok(())
}

/// [`record`] in the caller's transaction; false when the key was recorded before.
pub async fn record_in(
    tx: &mut Tx,
    crm: &str,
    kind: &str,
    local_key: &str,
    lead_id: &str,
    remote_id: &str,
    state: Option<&str>,
) -> StoreResult<bool> {
    let n = on_tx!(tx, |c| insert!(c, crm, kind, local_key, lead_id, remote_id, state))?;
    Ok(n == 1)
}

/// Takes `key` for this lead: inserts the row, takes it back when this lead holds it
/// already (its own retry), or takes it over when its holder last touched it more than
/// `stale_after_ms` ago (that holder died). False: another lead's job holds it now. Like a
/// lease, this is timed by the database's clock, so hosts whose clocks disagree agree here.
pub async fn claim(db: &Db, crm: &str, kind: &str, key: &str, lead_id: &str, stale_after_ms: i64) -> StoreResult<bool> {
    static SQL: PerBackend = PerBackend::new(|now| {
        format!(
            "INSERT INTO crm_records (crm, kind, local_key, lead_id, remote_id, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, '-', NULL, {now}, {now}) ON CONFLICT (crm, kind, local_key) DO UPDATE \
             SET lead_id = excluded.lead_id, updated_at = excluded.updated_at \
             WHERE crm_records.updated_at < {now} - $5 OR crm_records.lead_id = excluded.lead_id"
        )
    });
    let sql = SQL.get(db.now_sql());
    let n = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(crm)
        .bind(kind)
        .bind(key)
        .bind(lead_id)
        .bind(stale_after_ms)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn set_state(db: &Db, crm: &str, kind: &str, local_key: &str, state: &str) -> StoreResult<()> {
    let sql = "UPDATE crm_records SET state = $1, updated_at = $2 WHERE crm = $3 AND kind = $4 AND local_key = $5";
    on_pool_write!(db, |p| sqlx::query(sql)
        .bind(state)
        .bind(crate::clock::now_ms())
        .bind(crm)
        .bind(kind)
        .bind(local_key)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Vec<CrmRecord>> {
    let sql = "SELECT crm, kind, local_key, remote_id, state FROM crm_records WHERE lead_id = $1 \
               ORDER BY created_at, kind, local_key";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?;
    Ok(rows)
}
