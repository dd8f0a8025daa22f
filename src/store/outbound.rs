//! Outbound events and their deliveries, one per subscribed endpoint.

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, StoreResult, Tx};

/// Where a delivery is. Stored as text; parsed here, at the storage edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

impl TryFrom<String> for DeliveryState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "dead" => Ok(DeliveryState::Dead),
            other => Err(format!("unknown delivery state {other:?}")),
        }
    }
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub payload: &'a str,
    pub lead_id: &'a str,
    pub now: i64,
}

pub async fn insert_event(tx: &mut Tx, e: &NewEvent<'_>) -> StoreResult<()> {
    let sql = "INSERT INTO outbound_events (id, type, payload, lead_id, created_at) VALUES ($1, $2, $3, $4, $5)";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(e.id)
        .bind(e.kind)
        .bind(e.payload)
        .bind(e.lead_id)
        .bind(e.now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub event_id: &'a str,
    pub endpoint: &'a str,
    pub job_id: &'a str,
    pub max_attempts: i32,
    pub now: i64,
}

pub async fn insert_delivery(tx: &mut Tx, d: &NewDelivery<'_>) -> StoreResult<()> {
    let sql = "INSERT INTO event_deliveries (id, event_id, endpoint, state, job_id, attempts, max_attempts, \
               created_at, updated_at) VALUES ($1, $2, $3, 'pending', $4, 0, $5, $6, $6)";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(d.id)
        .bind(d.event_id)
        .bind(d.endpoint)
        .bind(d.job_id)
        .bind(d.max_attempts)
        .bind(d.now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A delivery with its event, as the delivery job needs it.
#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub endpoint: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub job_id: Option<String>,
    pub max_attempts: i32,
    pub kind: String,
    pub payload: String,
    pub lead_id: Option<String>,
    pub created_at: i64,
}

pub async fn delivery(db: &Db, id: &str) -> StoreResult<Option<Delivery>> {
    let sql = "SELECT d.id, d.event_id, d.endpoint, d.state, d.job_id, d.max_attempts, e.type AS kind, \
               e.payload, e.lead_id, e.created_at FROM event_deliveries d \
               JOIN outbound_events e ON e.id = d.event_id WHERE d.id = $1";
    let row = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    Ok(row)
}

/// What one try came to.
pub struct Tried<'a> {
    pub state: DeliveryState,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i32>,
    pub error: Option<&'a str>,
    pub now: i64,
}

/// Records a try of the delivery's current job `job_id` (a superseded job records nothing).
pub async fn record_try(db: &Db, id: &str, job_id: &str, t: &Tried<'_>) -> StoreResult<()> {
    let delivered = (t.state == DeliveryState::Delivered).then_some(t.now);
    let sql = "UPDATE event_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, \
               last_error = COALESCE($3, last_error), delivered_at = COALESCE($4, delivered_at), updated_at = $5 \
               WHERE id = $6 AND job_id = $7 AND state <> 'delivered'";
    on_pool_write!(db, |p| sqlx::query(sql)
        .bind(t.state.as_str())
        .bind(t.status)
        .bind(t.error)
        .bind(delivered)
        .bind(t.now)
        .bind(id)
        .bind(job_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A delivery as `/admin` lists it. `state` is dead too when its job died some other way
/// (a try that kept killing its worker).
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub endpoint: String,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

const VIEW_STATE: &str = "CASE WHEN d.state <> 'delivered' AND j.state = 'dead' THEN 'dead' ELSE d.state END";

/// Dead deliveries and pending ones that have failed at least once, newest first.
pub async fn failing(db: &Db, limit: i64) -> StoreResult<Vec<DeliveryView>> {
    let sql = format!(
        "SELECT d.id, d.event_id, d.endpoint, e.type AS kind, {VIEW_STATE} AS state, d.attempts, d.last_status, \
         d.last_error, d.updated_at FROM event_deliveries d JOIN outbound_events e ON e.id = d.event_id \
         LEFT JOIN jobs j ON j.id = d.job_id \
         WHERE d.state = 'dead' OR (d.state = 'pending' AND (d.attempts > 0 OR j.state = 'dead')) \
         ORDER BY d.updated_at DESC, d.id LIMIT $1"
    );
    let rows = on_pool!(db, |p| sqlx::query_as(&sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// Every delivery of `lead_id`'s events, oldest first (for tests and support).
pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Vec<DeliveryView>> {
    let sql = format!(
        "SELECT d.id, d.event_id, d.endpoint, e.type AS kind, {VIEW_STATE} AS state, d.attempts, d.last_status, \
         d.last_error, d.updated_at FROM event_deliveries d JOIN outbound_events e ON e.id = d.event_id \
         LEFT JOIN jobs j ON j.id = d.job_id WHERE e.lead_id = $1 ORDER BY e.created_at, e.id, d.endpoint"
    );
    let rows = on_pool!(db, |p| sqlx::query_as(&sql).bind(lead_id).fetch_all(p).await)?;
    Ok(rows)
}

/// Hands a dead delivery to a new job (`job_id`, enqueued in `tx`); false when it is not
/// dead (delivered, or still being tried), so a double press sends it once.
pub async fn redeliver(tx: &mut Tx, id: &str, job_id: &str, max_attempts: i32, now: i64) -> StoreResult<bool> {
    let sql = "UPDATE event_deliveries SET state = 'pending', job_id = $1, max_attempts = $2, updated_at = $3 \
               WHERE id = $4 AND state <> 'delivered' AND (state = 'dead' OR EXISTS \
               (SELECT 1 FROM jobs j WHERE j.id = event_deliveries.job_id AND j.state = 'dead'))";
    let n = on_tx!(tx, |c| sqlx::query(sql)
        .bind(job_id)
        .bind(max_attempts)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
