//! What the follow-up sequence keeps besides the queue: the owner each task got from a
//! round-robin list, the customer emails sent or tried, a lead's email permissions and
//! the attempts whose sequence ran out unpaid.

use super::{on_pool, on_tx, Db, StoreError, StoreResult, Tx};

/// The owner of follow-up task `task_key`: the one it got before, else the next in
/// `users`' turn. The turn is a counter per list in the database, so instances and
/// restarts share it and each user gets every n-th task.
pub async fn round_robin_owner(db: &Db, task_key: &str, users: &[String], now: i64) -> StoreResult<String> {
    if users.is_empty() {
        return Err(StoreError::Corrupt("round-robin list is empty".into()));
    }
    let mut tx = db.begin_write().await?;
    if let Some(owner) = picked(&mut tx, task_key).await? {
        tx.rollback().await?;
        return Ok(owner);
    }
    let pool = users.join("\n");
    let bump = "INSERT INTO round_robin (pool, turns) VALUES ($1, 1) \
                ON CONFLICT (pool) DO UPDATE SET turns = round_robin.turns + 1 RETURNING turns";
    let turns: i64 = on_tx!(&mut tx, |c| sqlx::query_scalar(bump).bind(&pool).fetch_one(c).await)?;
    let n = i64::try_from(users.len()).unwrap_or(i64::MAX);
    let index = usize::try_from((turns - 1).rem_euclid(n)).unwrap_or(0);
    let owner = users[index].clone();
    let keep = "INSERT INTO followup_owners (task_key, owner, created_at) VALUES ($1, $2, $3) \
                ON CONFLICT (task_key) DO NOTHING";
    on_tx!(&mut tx, |c| sqlx::query(keep)
        .bind(task_key)
        .bind(&owner)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    // Another instance may have picked first: its pick stands.
    let owner = picked(&mut tx, task_key).await?.unwrap_or(owner);
    tx.commit().await?;
    Ok(owner)
}

async fn picked(tx: &mut Tx, task_key: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT owner FROM followup_owners WHERE task_key = $1";
    let owner = on_tx!(tx, |c| sqlx::query_scalar(sql).bind(task_key).fetch_optional(c).await)?;
    Ok(owner)
}

/// What a try to send email `key` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailClaim {
    /// Nothing was handed to the mail server yet (or it refused): send now.
    Send,
    /// It went out before.
    AlreadySent,
    /// An earlier try may have handed it over (it ended without the server's answer):
    /// sending again could deliver it twice, so it is not sent again.
    Unknown,
}

/// Records the intent to send `key` before any byte goes to the mail server, and tells
/// this try what it may do (see `EmailClaim`).
pub async fn claim_email(
    db: &Db,
    key: &str,
    lead_id: &str,
    kind: &str,
    message_id: &str,
    now: i64,
) -> StoreResult<EmailClaim> {
    let mut tx = db.begin_write().await?;
    let sql = "SELECT state FROM emails WHERE key = $1";
    let state: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(sql).bind(key).fetch_optional(c).await)?;
    let claim = match state.as_deref() {
        None => {
            let ins = "INSERT INTO emails (key, lead_id, kind, state, message_id, created_at, updated_at) \
                       VALUES ($1, $2, $3, 'sending', $4, $5, $5)";
            on_tx!(&mut tx, |c| sqlx::query(ins)
                .bind(key)
                .bind(lead_id)
                .bind(kind)
                .bind(message_id)
                .bind(now)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            EmailClaim::Send
        }
        Some("failed") => {
            set_state(&mut tx, key, "sending", None, now).await?;
            EmailClaim::Send
        }
        Some("sent") => EmailClaim::AlreadySent,
        // `sending` left over: the process stopped between handing it over and the answer.
        Some("sending") => {
            set_state(
                &mut tx,
                key,
                "unknown",
                Some("interrupted before the server answered"),
                now,
            )
            .await?;
            EmailClaim::Unknown
        }
        Some(_) => EmailClaim::Unknown,
    };
    tx.commit().await?;
    Ok(claim)
}

/// How a send ended: `sent`, `failed` (refused, may be tried again) or `unknown`.
pub async fn email_ended(db: &Db, key: &str, state: &str, error: Option<&str>, now: i64) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    set_state(&mut tx, key, state, error, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn set_state(tx: &mut Tx, key: &str, state: &str, error: Option<&str>, now: i64) -> StoreResult<()> {
    let sql = "UPDATE emails SET state = $2, last_error = COALESCE($3, last_error), updated_at = $4 WHERE key = $1";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(key)
        .bind(state)
        .bind(error)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EmailRow {
    pub key: String,
    pub lead_id: String,
    pub kind: String,
    pub state: String,
    pub message_id: String,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// The newest emails, for `/admin`.
pub async fn emails(db: &Db, limit: i64) -> StoreResult<Vec<EmailRow>> {
    let sql = "SELECT key, lead_id, kind, state, message_id, last_error, updated_at FROM emails \
               ORDER BY updated_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// Whether the lead stopped reminder emails, and whether they agreed to receive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailPermissions {
    pub unsubscribed: bool,
    pub consented: bool,
}

pub async fn email_permissions(db: &Db, lead_id: &str) -> StoreResult<Option<EmailPermissions>> {
    let sql = "SELECT unsubscribed_at, email_consent FROM leads WHERE id = $1";
    let row: Option<(Option<i64>, i64)> = on_pool!(db, |p| sqlx::query_as(sql).bind(lead_id).fetch_optional(p).await)?;
    Ok(row.map(|(unsubscribed, consent)| EmailPermissions {
        unsubscribed: unsubscribed.is_some(),
        consented: consent != 0,
    }))
}

/// Stops the lead's reminder emails from now on; true if the lead exists.
pub async fn unsubscribe(db: &Db, lead_id: &str, now: i64) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    let sql = "UPDATE leads SET unsubscribed_at = COALESCE(unsubscribed_at, $2) WHERE id = $1";
    let n = on_tx!(&mut tx, |c| sqlx::query(sql)
        .bind(lead_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Records that the attempt's last follow-up step fired unpaid (first time only).
pub async fn mark_abandoned(tx: &mut Tx, attempt_id: &str, now: i64) -> StoreResult<bool> {
    let sql = "UPDATE attempts SET abandoned_at = $2 WHERE id = $1 AND abandoned_at IS NULL";
    let n = on_tx!(tx, |c| sqlx::query(sql)
        .bind(attempt_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnpaidRow {
    pub attempt_id: String,
    pub offer_slug: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub name: String,
    pub email: String,
    pub created_at: i64,
}

/// The newest attempts not paid (yet), with their lead, for an operator who may know
/// better (a bank transfer, cash): newest first.
pub async fn unpaid(db: &Db, limit: i64) -> StoreResult<Vec<UnpaidRow>> {
    let sql = "SELECT a.id AS attempt_id, a.offer_slug, a.status, a.amount_minor, a.currency, l.name, l.email, \
               a.created_at FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE a.status <> 'approved' \
               ORDER BY a.created_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// The lead agreed to reminder emails, shown the text of `version` (in the transaction
/// that stores the lead).
pub async fn record_consent(tx: &mut Tx, lead_id: &str, version: &str) -> StoreResult<()> {
    let sql = "UPDATE leads SET email_consent = 1, email_consent_version = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(lead_id)
        .bind(version)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
