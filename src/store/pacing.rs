//! Send slots and 429 pauses of the remote CRMs, shared by every instance on one
//! PostgreSQL database (`crm_pacing`). Times are the database's clock in ms, so hosts
//! whose clocks disagree still agree on when a slot starts. On SQLite one process owns
//! the file and paces in memory: these functions answer `None` there and touch nothing.

use super::{Db, StoreResult};

/// What a reservation left in the lane's row, and the database's clock when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneRow {
    pub now: i64,
    /// The lane's theoretical arrival time after the reservation (unchanged when the
    /// lane is paused for longer than the caller would wait).
    pub tat: i64,
    pub paused_until: i64,
}

/// The database clock, ms since the epoch; `clock_timestamp()` and not `now()`, which
/// is the start of the transaction.
const DB_NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Takes the next send slot of (`vendor`, `lane`) in one statement: the lane's arrival
/// time moves to `max(tat, paused_until, now) + interval_ms`. When the lane is paused
/// for more than `max_hold_ms` from now the row is left as it is, so calls refused
/// during a long block do not pile up slots that would delay everyone after it.
pub async fn reserve(
    db: &Db,
    vendor: &str,
    lane: &str,
    interval_ms: i64,
    max_hold_ms: i64,
) -> StoreResult<Option<LaneRow>> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    // `excluded.tat` carries `now + interval` into the update, so the clock is read once.
    let sql = format!(
        "WITH clock AS MATERIALIZED (SELECT {DB_NOW} AS ms) \
         INSERT INTO crm_pacing AS p (vendor, lane, tat, paused_until) \
         SELECT $1, $2, clock.ms + $3, 0 FROM clock \
         ON CONFLICT (vendor, lane) DO UPDATE SET tat = CASE \
             WHEN p.paused_until - (excluded.tat - $3) > $4 THEN p.tat \
             ELSE GREATEST(p.tat, p.paused_until, excluded.tat - $3) + $3 END \
         RETURNING (SELECT ms FROM clock), p.tat, p.paused_until"
    );
    let (now, tat, paused_until): (i64, i64, i64) = sqlx::query_as(&sql)
        .bind(vendor)
        .bind(lane)
        .bind(interval_ms)
        .bind(max_hold_ms)
        .fetch_one(pool)
        .await?;
    Ok(Some(LaneRow { now, tat, paused_until }))
}

/// Pauses every one of `lanes` of `vendor` until `wait_ms` from now on the database's
/// clock; a pause already reaching further is kept.
pub async fn pause(db: &Db, vendor: &str, lanes: &[&str], wait_ms: i64) -> StoreResult<Option<()>> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    let sql = format!(
        "WITH clock AS MATERIALIZED (SELECT {DB_NOW} AS ms) \
         INSERT INTO crm_pacing AS p (vendor, lane, tat, paused_until) \
         SELECT $1, lane, 0, clock.ms + $3 FROM clock, unnest($2::text[]) AS lane \
         ON CONFLICT (vendor, lane) DO UPDATE \
         SET paused_until = GREATEST(p.paused_until, excluded.paused_until)"
    );
    let lanes: Vec<String> = lanes.iter().map(|l| (*l).to_owned()).collect();
    sqlx::query(&sql)
        .bind(vendor)
        .bind(lanes)
        .bind(wait_ms)
        .execute(pool)
        .await?;
    Ok(Some(()))
}

/// (database clock, the latest pause of any lane of `vendor`; 0 when none).
pub async fn paused_until(db: &Db, vendor: &str) -> StoreResult<Option<(i64, i64)>> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    let sql = format!("SELECT {DB_NOW}, COALESCE(MAX(paused_until), 0)::bigint FROM crm_pacing WHERE vendor = $1");
    let row: (i64, i64) = sqlx::query_as(&sql).bind(vendor).fetch_one(pool).await?;
    Ok(Some(row))
}
