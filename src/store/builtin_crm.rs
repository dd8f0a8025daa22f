//! Tables of the built-in CRM. Inserts are idempotent on the natural key (email for
//! persons, our external key for deals, tasks and notes), like a CRM searched by custom
//! field, and answer with the row's id in one round trip: on a conflict the no-op update
//! lets RETURNING give the existing row's id.

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, StoreResult, Tx};

pub struct NewDeal<'a> {
    pub person_id: &'a str,
    pub external_key: &'a str,
    pub title: &'a str,
    pub value_minor: i64,
    pub currency: &'a str,
    pub pipeline: &'a str,
    pub stage: &'a str,
}

pub struct NewTask<'a> {
    pub deal_id: Option<&'a str>,
    pub person_id: Option<&'a str>,
    pub external_key: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub due_at: i64,
    pub kind: &'a str,
    pub priority: &'a str,
    pub owner: Option<&'a str>,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct DealView {
    pub id: String,
    pub external_key: String,
    pub title: String,
    pub value_minor: i64,
    pub currency: String,
    pub pipeline: String,
    pub stage: String,
    pub status: String,
    pub lost_reason: Option<String>,
    pub person_name: String,
    pub person_email: String,
    pub person_phone: String,
    pub updated_at: i64,
    /// The payment's facts by role, as JSON (see `FieldRole::PAYMENT`).
    pub payment_fields: Option<String>,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TaskView {
    pub id: String,
    pub deal_id: Option<String>,
    pub external_key: String,
    pub subject: String,
    pub body: String,
    pub due_at: i64,
    /// `open`, or `done` once completed (deleted tasks are not listed).
    pub status: String,
    pub kind: Option<String>,
    pub priority: Option<String>,
    pub owner: Option<String>,
}

const UPSERT_PERSON: &str = "INSERT INTO builtin_persons (id, email, name, phone, created_at) \
                             VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (email) DO UPDATE SET email = excluded.email RETURNING id";

/// The person's row, for a pool or a transaction's connection.
macro_rules! upsert_person {
    ($exec:expr, $email:expr, $name:expr, $phone:expr) => {
        sqlx::query_scalar::<_, String>(UPSERT_PERSON)
            .bind(crate::clock::new_id())
            .bind($email)
            .bind($name)
            .bind($phone)
            .bind(crate::clock::now_ms())
            .fetch_one($exec)
            .await
    };
}

/// Finds the person by email or creates them; returns the id either way.
pub async fn upsert_person(db: &Db, email: &str, name: &str, phone: &str) -> StoreResult<String> {
    Ok(on_pool_write!(db, |p| upsert_person!(p, email, name, phone))?)
}

/// [`upsert_person`] in the caller's transaction.
pub async fn upsert_person_in(tx: &mut Tx, email: &str, name: &str, phone: &str) -> StoreResult<String> {
    Ok(on_tx!(tx, |c| upsert_person!(c, email, name, phone))?)
}

pub async fn find_deal(db: &Db, external_key: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT id FROM builtin_deals WHERE external_key = $1";
    let id = on_pool!(db, |p| sqlx::query_scalar(sql)
        .bind(external_key)
        .fetch_optional(p)
        .await)?;
    Ok(id)
}

const INSERT_DEAL: &str = "INSERT INTO builtin_deals (id, person_id, external_key, title, value_minor, currency, \
                           pipeline, stage, status, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $9) \
                           ON CONFLICT (external_key) DO UPDATE SET external_key = excluded.external_key RETURNING id";

/// The deal's row, for a pool or a transaction's connection.
macro_rules! insert_deal {
    ($exec:expr, $d:expr) => {
        sqlx::query_scalar::<_, String>(INSERT_DEAL)
            .bind(crate::clock::new_id())
            .bind($d.person_id)
            .bind($d.external_key)
            .bind($d.title)
            .bind($d.value_minor)
            .bind($d.currency)
            .bind($d.pipeline)
            .bind($d.stage)
            .bind(crate::clock::now_ms())
            .fetch_one($exec)
            .await
    };
}

/// Creates the deal for its external key, or finds the one made before; its id either way.
pub async fn insert_deal(db: &Db, d: &NewDeal<'_>) -> StoreResult<String> {
    Ok(on_pool_write!(db, |p| insert_deal!(p, d))?)
}

/// [`insert_deal`] in the caller's transaction.
pub async fn insert_deal_in(tx: &mut Tx, d: &NewDeal<'_>) -> StoreResult<String> {
    Ok(on_tx!(tx, |c| insert_deal!(c, d))?)
}

/// Sets open/won/lost; false when no such deal exists.
pub async fn set_deal_status(
    db: &Db,
    id: &str,
    status: &str,
    stage: Option<&str>,
    lost_reason: Option<&str>,
) -> StoreResult<bool> {
    let sql = "UPDATE builtin_deals SET status = $1, stage = COALESCE($2, stage), lost_reason = $3, \
               updated_at = $4 WHERE id = $5";
    let done = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(status)
        .bind(stage)
        .bind(lost_reason)
        .bind(crate::clock::now_ms())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Replaces the deal's payment fields (a JSON object by role); false when no such deal.
pub async fn set_payment_fields(db: &Db, id: &str, json: &str) -> StoreResult<bool> {
    let sql = "UPDATE builtin_deals SET payment_fields = $1, updated_at = $2 WHERE id = $3";
    let done = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(json)
        .bind(crate::clock::now_ms())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn insert_task(db: &Db, t: &NewTask<'_>) -> StoreResult<String> {
    let ins = "INSERT INTO builtin_tasks (id, deal_id, person_id, external_key, subject, body, due_at, status, \
               created_at, kind, priority, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11) \
               ON CONFLICT (external_key) DO UPDATE SET external_key = excluded.external_key RETURNING id";
    let id = crate::clock::new_id();
    let found: String = on_pool_write!(db, |p| sqlx::query_scalar(ins)
        .bind(&id)
        .bind(t.deal_id)
        .bind(t.person_id)
        .bind(t.external_key)
        .bind(t.subject)
        .bind(t.body)
        .bind(t.due_at)
        .bind(crate::clock::now_ms())
        .bind(t.kind)
        .bind(t.priority)
        .bind(t.owner)
        .fetch_one(p)
        .await)?;
    Ok(found)
}

pub async fn find_task(db: &Db, external_key: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT id FROM builtin_tasks WHERE external_key = $1";
    let id = on_pool!(db, |p| sqlx::query_scalar(sql)
        .bind(external_key)
        .fetch_optional(p)
        .await)?;
    Ok(id)
}

/// How a task was closed: kept as its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskClosed {
    Done,
    Deleted,
}

impl TaskClosed {
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskClosed::Done => "done",
            TaskClosed::Deleted => "deleted",
        }
    }
}

/// Closes an open task; false when there is none by that id still open (closed first,
/// or never there), which leaves a closed task as it was.
pub async fn close_task(db: &Db, id: &str, how: TaskClosed) -> StoreResult<bool> {
    let sql = "UPDATE builtin_tasks SET status = $1, closed_at = $2 WHERE id = $3 AND status = 'open'";
    let done = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(how.as_str())
        .bind(crate::clock::now_ms())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Adds the note unless one with this key exists; returns the note's id either way.
pub async fn insert_note(db: &Db, deal_id: &str, external_key: &str, body: &str) -> StoreResult<String> {
    let ins = "INSERT INTO builtin_notes (id, deal_id, external_key, body, created_at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (external_key) DO UPDATE SET external_key = excluded.external_key RETURNING id";
    let id = crate::clock::new_id();
    let found: String = on_pool_write!(db, |p| sqlx::query_scalar(ins)
        .bind(&id)
        .bind(deal_id)
        .bind(external_key)
        .bind(body)
        .bind(crate::clock::now_ms())
        .fetch_one(p)
        .await)?;
    Ok(found)
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct NoteView {
    pub deal_title: String,
    pub body: String,
    pub created_at: i64,
}

/// The newest notes with their deal's title.
pub async fn notes(db: &Db, limit: i64) -> StoreResult<Vec<NoteView>> {
    let sql = "SELECT d.title AS deal_title, n.body, n.created_at FROM builtin_notes n \
               JOIN builtin_deals d ON d.id = n.deal_id ORDER BY n.created_at DESC, n.id DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

pub async fn deals(db: &Db, limit: i64) -> StoreResult<Vec<DealView>> {
    let sql = "SELECT d.id, d.external_key, d.title, d.value_minor, d.currency, d.pipeline, d.stage, d.status, \
               d.lost_reason, p.name AS person_name, p.email AS person_email, p.phone AS person_phone, d.updated_at, \
               d.payment_fields FROM builtin_deals d JOIN builtin_persons p ON p.id = d.person_id \
               ORDER BY d.created_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// The newest tasks, open and done; a deleted task was withdrawn and is not shown.
pub async fn tasks(db: &Db, limit: i64) -> StoreResult<Vec<TaskView>> {
    let sql = "SELECT id, deal_id, external_key, subject, body, due_at, status, kind, priority, owner \
               FROM builtin_tasks WHERE status <> 'deleted' ORDER BY due_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

pub async fn count_persons(db: &Db, email: &str) -> StoreResult<i64> {
    let sql = "SELECT COUNT(*) FROM builtin_persons WHERE email = $1";
    let n = on_pool!(db, |p| sqlx::query_scalar(sql).bind(email).fetch_one(p).await)?;
    Ok(n)
}

/// A built-in deal with its person, for a payment link made from it.
#[derive(Debug, Clone, FromRow)]
pub struct DealSubject {
    pub id: String,
    pub person_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub value_minor: i64,
    pub currency: String,
    pub stage: String,
}

pub async fn deal_subject(db: &Db, id: &str) -> StoreResult<Option<DealSubject>> {
    let sql = "SELECT d.id, d.person_id, p.name, p.email, p.phone, d.value_minor, d.currency, d.stage \
               FROM builtin_deals d JOIN builtin_persons p ON p.id = d.person_id WHERE d.id = $1";
    let row = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    Ok(row)
}
