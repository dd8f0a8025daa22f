//! Checkout attempts: one per press of the pay button, each with its payment status.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::{corrupt, on_pool, on_pool_write, on_tx, Db, StoreResult, Tx};
use crate::domain::lead::{AfterApproval, Attempt};
use crate::domain::reversal::{Dispute, DisputeStage, Reversal};
use crate::domain::{Currency, Money, PaymentStatus};

#[derive(FromRow)]
struct AttemptRow {
    id: String,
    lead_id: String,
    offer_slug: String,
    gateway: String,
    amount_minor: i64,
    currency: String,
    status: String,
    gateway_ref: Option<String>,
    status_detail: Option<String>,
    checkout_url: Option<String>,
    settled_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    checkout_ref: Option<String>,
    refunded_minor: i64,
    voided: i64,
    refund_reason: Option<String>,
    dispute: Option<String>,
    dispute_due_at: Option<i64>,
    dispute_reason: Option<String>,
    reversal_version: i64,
    duplicate_of: Option<String>,
    payment_method: Option<String>,
    abandoned_at: Option<i64>,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = super::StoreError;
    fn try_from(r: AttemptRow) -> StoreResult<Attempt> {
        let bad = |what: &str| corrupt(format!("attempt {} {what}", r.id));
        let currency: Currency = r.currency.parse().map_err(|_| bad("currency"))?;
        let dispute = match r.dispute.as_deref() {
            None => None,
            Some(stage) => Some(Dispute {
                stage: DisputeStage::parse(stage).ok_or_else(|| bad("dispute"))?,
                due_at: r.dispute_due_at,
                reason: r.dispute_reason,
            }),
        };
        let after = AfterApproval {
            checkout_ref: r.checkout_ref,
            reversal: Reversal {
                refunded: Money::non_negative(r.refunded_minor, currency).map_err(|_| bad("refunded amount"))?,
                voided: r.voided != 0,
                dispute,
                refund_reason: r.refund_reason,
            },
            reversal_version: r.reversal_version,
            duplicate_of: r.duplicate_of,
            payment_method: r.payment_method,
        };
        Ok(Attempt {
            after,
            gateway: r.gateway.parse().map_err(|_| bad("gateway"))?,
            amount: Money::new(r.amount_minor, currency).map_err(|_| bad("amount"))?,
            status: r.status.parse().map_err(|_| bad("status"))?,
            id: r.id,
            lead_id: r.lead_id,
            offer_slug: r.offer_slug,
            gateway_ref: r.gateway_ref,
            status_detail: r.status_detail,
            checkout_url: r.checkout_url,
            settled_by: r.settled_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            abandoned_at: r.abandoned_at,
        })
    }
}

/// The columns a new attempt is inserted with; the rest start at their defaults.
const INSERTED: &str = "id, lead_id, offer_slug, gateway, amount_minor, currency, status, \
                        gateway_ref, status_detail, checkout_url, settled_by, created_at, updated_at";
const COLUMNS: &str = "id, lead_id, offer_slug, gateway, amount_minor, currency, status, \
                       gateway_ref, status_detail, checkout_url, settled_by, created_at, updated_at, \
                       checkout_ref, refunded_minor, voided, refund_reason, dispute, dispute_due_at, \
                       dispute_reason, reversal_version, duplicate_of, payment_method, abandoned_at";

/// A query text built once from the column lists (no SQL is formatted per call).
type Text = LazyLock<String>;

static INSERT: Text =
    Text::new(|| format!("INSERT INTO attempts ({INSERTED}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"));
static BY_ID: Text = Text::new(|| format!("SELECT {COLUMNS} FROM attempts WHERE id = $1"));

pub async fn insert(tx: &mut Tx, a: &Attempt) -> StoreResult<()> {
    let sql = INSERT.as_str();
    on_tx!(tx, |conn| sqlx::query(sql)
        .bind(&a.id)
        .bind(&a.lead_id)
        .bind(&a.offer_slug)
        .bind(a.gateway.as_str())
        .bind(a.amount.amount_minor())
        .bind(a.amount.currency().as_str())
        .bind(a.status.as_str())
        .bind(&a.gateway_ref)
        .bind(&a.status_detail)
        .bind(&a.checkout_url)
        .bind(&a.settled_by)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Attempt>> {
    let sql = BY_ID.as_str();
    let row: Option<AttemptRow> = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    row.map(Attempt::try_from).transpose()
}

/// The lead an attempt belongs to, read inside the caller's transaction.
pub async fn lead_of(tx: &mut Tx, id: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT lead_id FROM attempts WHERE id = $1";
    let lead = on_tx!(tx, |c| sqlx::query_scalar(sql).bind(id).fetch_optional(c).await)?;
    Ok(lead)
}

pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Vec<Attempt>> {
    let sql = format!("SELECT {COLUMNS} FROM attempts WHERE lead_id = $1 ORDER BY created_at, id");
    let rows: Vec<AttemptRow> = on_pool!(db, |p| sqlx::query_as(&sql).bind(lead_id).fetch_all(p).await)?;
    rows.into_iter().map(Attempt::try_from).collect()
}

/// Records the hosted checkout we sent the customer to (only while still `created`).
/// Created → redirected, in the caller's transaction (with its event); false when the
/// attempt had already moved on.
pub async fn mark_redirected(
    tx: &mut Tx,
    id: &str,
    gateway_ref: Option<&str>,
    url: &str,
    now: i64,
) -> StoreResult<bool> {
    let sql = "UPDATE attempts SET status = $1, gateway_ref = COALESCE($2, gateway_ref), \
               checkout_ref = COALESCE($2, checkout_ref), checkout_url = $3, updated_at = $4 \
               WHERE id = $5 AND status = $6";
    let n = on_tx!(tx, |c| sqlx::query(sql)
        .bind(PaymentStatus::Redirected.as_str())
        .bind(gateway_ref)
        .bind(url)
        .bind(now)
        .bind(id)
        .bind(PaymentStatus::Created.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// An earlier attempt, as the rule for reusing a checkout sees it.
#[derive(Debug, Clone)]
pub struct Prior {
    pub attempt: Attempt,
    /// Opening its checkout failed: no request is still working on it.
    pub checkout_failed: bool,
}

#[derive(FromRow)]
struct PriorRow {
    #[sqlx(flatten)]
    attempt: AttemptRow,
    checkout_failed_at: Option<i64>,
}

impl TryFrom<PriorRow> for Prior {
    type Error = super::StoreError;
    fn try_from(r: PriorRow) -> StoreResult<Prior> {
        Ok(Prior {
            attempt: r.attempt.try_into()?,
            checkout_failed: r.checkout_failed_at.is_some(),
        })
    }
}

/// The lead's attempts for `offer`, oldest first, read inside the caller's transaction.
pub async fn prior_for_lead(tx: &mut Tx, lead_id: &str, offer: &str) -> StoreResult<Vec<Prior>> {
    let sql = format!(
        "SELECT {COLUMNS}, checkout_failed_at FROM attempts WHERE lead_id = $1 AND offer_slug = $2 \
         ORDER BY created_at, id"
    );
    let rows: Vec<PriorRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(lead_id)
        .bind(offer)
        .fetch_all(c)
        .await)?;
    rows.into_iter().map(Prior::try_from).collect()
}

#[derive(FromRow)]
struct EmailPriorRow {
    #[sqlx(flatten)]
    prior: PriorRow,
    lead_created_at: i64,
}

/// The attempts for `offer` of leads with this (normalized) email created at or after
/// `since_ms`, oldest first, each with its lead's creation time, read inside the caller's
/// transaction.
pub async fn prior_for_email(tx: &mut Tx, offer: &str, email: &str, since_ms: i64) -> StoreResult<Vec<(Prior, i64)>> {
    static SQL: Text = Text::new(|| {
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("a.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {columns}, a.checkout_failed_at, l.created_at AS lead_created_at FROM attempts a \
             JOIN leads l ON l.id = a.lead_id WHERE a.offer_slug = $1 AND l.offer_slug = $1 \
             AND l.email = $2 AND l.created_at >= $3 ORDER BY a.created_at, a.id"
        )
    });
    let sql = SQL.as_str();
    let rows: Vec<EmailPriorRow> = on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(offer)
        .bind(email)
        .bind(since_ms)
        .fetch_all(c)
        .await)?;
    rows.into_iter()
        .map(|r| Ok((Prior::try_from(r.prior)?, r.lead_created_at)))
        .collect()
}

/// One attempt as `Prior`, read now (a request waiting for another one's checkout).
pub async fn prior(db: &Db, id: &str) -> StoreResult<Option<Prior>> {
    let sql = format!("SELECT {COLUMNS}, checkout_failed_at FROM attempts WHERE id = $1");
    let row: Option<PriorRow> = on_pool!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?;
    row.map(Prior::try_from).transpose()
}

/// Records that the attempt's checkout could not be opened (only while still `created`).
pub async fn mark_checkout_failed(db: &Db, id: &str, now: i64) -> StoreResult<()> {
    let sql = "UPDATE attempts SET checkout_failed_at = $1 WHERE id = $2 AND status = $3";
    on_pool_write!(db, |p| sqlx::query(sql)
        .bind(now)
        .bind(id)
        .bind(PaymentStatus::Created.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A status change as `cas_status` writes it.
pub struct StatusChange<'a> {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
    pub gateway_ref: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// What told us: webhook, return, reconcile.
    pub source: &'a str,
    /// How the customer paid, when the gateway says.
    pub method: Option<&'a str>,
}

/// Compare-and-set of the status: true when `from` was still current. Being the first
/// statement of its transaction, it also takes SQLite's write lock up front.
pub async fn cas_status(tx: &mut Tx, id: &str, c: &StatusChange<'_>, now: i64) -> StoreResult<bool> {
    let sql = "UPDATE attempts SET status = $1, gateway_ref = COALESCE($2, gateway_ref), \
               status_detail = COALESCE($3, status_detail), settled_by = $4, updated_at = $5, \
               payment_method = COALESCE($8, payment_method) WHERE id = $6 AND status = $7";
    let done = on_tx!(tx, |conn| sqlx::query(sql)
        .bind(c.to.as_str())
        .bind(c.gateway_ref)
        .bind(c.detail)
        .bind(c.source)
        .bind(now)
        .bind(id)
        .bind(c.from.as_str())
        .bind(c.method)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// True when the lead has an approved attempt for this offer (so follow-ups are moot).
pub async fn lead_has_paid(db: &Db, lead_id: &str, offer_slug: &str) -> StoreResult<bool> {
    let sql = "SELECT COUNT(*) FROM attempts WHERE lead_id = $1 AND offer_slug = $2 AND status = $3";
    let n: i64 = on_pool!(db, |p| sqlx::query_scalar(sql)
        .bind(lead_id)
        .bind(offer_slug)
        .bind(PaymentStatus::Approved.as_str())
        .fetch_one(p)
        .await)?;
    Ok(n > 0)
}

/// Attempts still waiting on the gateway, created between `max_age_ms` and `after_ms` ago,
/// that reconciliation has not claimed in the last `interval_ms` (all by the database's
/// clock); least recently asked first.
pub async fn due_for_reconcile(
    db: &Db,
    max_age_ms: i64,
    after_ms: i64,
    interval_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Attempt>> {
    let select = |now: &str| {
        format!(
            "SELECT {COLUMNS} FROM attempts WHERE status IN ($1, $2) AND created_at > {now} - $3 \
         AND created_at < {now} - $4 AND (checked_at IS NULL OR checked_at < {now} - $5) \
         ORDER BY COALESCE(checked_at, 0), created_at LIMIT $6"
        )
    };
    let sql = select(db.now_sql());
    let rows: Vec<AttemptRow> = on_pool!(db, |p| sqlx::query_as(&sql)
        .bind(PaymentStatus::Redirected.as_str())
        .bind(PaymentStatus::Pending.as_str())
        .bind(max_age_ms)
        .bind(after_ms)
        .bind(interval_ms)
        .bind(limit)
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(Attempt::try_from).collect()
}

/// Claims one attempt for this interval's reconciliation check, inside the caller's
/// transaction: true for exactly one of several instances racing for it (the others see
/// its fresh `checked_at` and update nothing; on PostgreSQL they wait for its commit and
/// re-read the row). False too when the attempt was settled meanwhile.
pub async fn claim_for_reconcile(tx: &mut Tx, id: &str, interval_ms: i64) -> StoreResult<bool> {
    let update = |now: &str| {
        format!(
            "UPDATE attempts SET checked_at = {now} WHERE id = $1 AND status IN ($2, $3) \
             AND (checked_at IS NULL OR checked_at < {now} - $4)"
        )
    };
    let sql = update(tx.now_sql());
    let done = on_tx!(tx, |c| sqlx::query(&sql)
        .bind(id)
        .bind(PaymentStatus::Redirected.as_str())
        .bind(PaymentStatus::Pending.as_str())
        .bind(interval_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Compare-and-set of what became of an approved payment's money: true when the attempt
/// still had `version` (no other writer moved it since we read it).
pub async fn cas_reversal(tx: &mut Tx, id: &str, version: i64, r: &Reversal, now: i64) -> StoreResult<bool> {
    let sql = "UPDATE attempts SET refunded_minor = $1, voided = $2, refund_reason = $3, dispute = $4, \
               dispute_due_at = $5, dispute_reason = $6, reversal_version = $7, updated_at = $8 \
               WHERE id = $9 AND reversal_version = $10 AND status = $11";
    let dispute = r.dispute.as_ref();
    let done = on_tx!(tx, |conn| sqlx::query(sql)
        .bind(r.refunded.amount_minor())
        .bind(i64::from(r.voided))
        .bind(&r.refund_reason)
        .bind(dispute.map(|d| d.stage.as_str()))
        .bind(dispute.and_then(|d| d.due_at))
        .bind(dispute.and_then(|d| d.reason.as_deref()))
        .bind(version + 1)
        .bind(now)
        .bind(id)
        .bind(version)
        .bind(PaymentStatus::Approved.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The oldest other approved attempt for this offer by a lead with the same email as
/// `lead_id`'s: one purchase paid twice (a new lead, a resubmit, a second checkout).
pub async fn paid_before(tx: &mut Tx, attempt_id: &str, lead_id: &str, offer: &str) -> StoreResult<Option<String>> {
    let sql = "SELECT a.id FROM attempts a JOIN leads l ON l.id = a.lead_id \
               WHERE a.offer_slug = $1 AND a.status = $2 AND a.id <> $3 \
               AND l.offer_slug = $1 AND l.email = (SELECT email FROM leads WHERE id = $4) \
               ORDER BY a.created_at, a.id LIMIT 1";
    let found = on_tx!(tx, |c| sqlx::query_scalar(sql)
        .bind(offer)
        .bind(PaymentStatus::Approved.as_str())
        .bind(attempt_id)
        .bind(lead_id)
        .fetch_optional(c)
        .await)?;
    Ok(found)
}

/// Marks the attempt as a second payment for the purchase `first` paid already.
pub async fn flag_duplicate(tx: &mut Tx, id: &str, first: &str) -> StoreResult<()> {
    let sql = "UPDATE attempts SET duplicate_of = $1 WHERE id = $2 AND duplicate_of IS NULL";
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(first)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Approved attempts whose money did not simply stay (refunded, voided, disputed) or that
/// paid a purchase a second time, most recently changed first, for `/admin`.
pub async fn after_approval(db: &Db, limit: i64) -> StoreResult<Vec<Attempt>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM attempts WHERE status = $1 AND (reversal_version > 0 OR duplicate_of IS NOT NULL) \
         ORDER BY updated_at DESC, id LIMIT $2"
    );
    let rows: Vec<AttemptRow> = on_pool!(db, |p| sqlx::query_as(&sql)
        .bind(PaymentStatus::Approved.as_str())
        .bind(limit)
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(Attempt::try_from).collect()
}

/// Approved attempts created within `max_age_ms` that reconciliation has not claimed in
/// the last `interval_ms` (by the database's clock): a refund or a dispute made in the
/// gateway's dashboard whose webhook was lost still reaches us. Least recently asked first.
/// An attempt an operator marked paid was paid outside the gateway, which has nothing to say.
pub async fn paid_due_for_reconcile(
    db: &Db,
    max_age_ms: i64,
    interval_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Attempt>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM attempts WHERE status = $1 AND created_at > {now} - $2 \
         AND (checked_at IS NULL OR checked_at < {now} - $3) AND COALESCE(settled_by, '') <> 'operator' \
         ORDER BY COALESCE(checked_at, 0), created_at LIMIT $4",
        now = db.now_sql()
    );
    let rows: Vec<AttemptRow> = on_pool!(db, |p| sqlx::query_as(&sql)
        .bind(PaymentStatus::Approved.as_str())
        .bind(max_age_ms)
        .bind(interval_ms)
        .bind(limit)
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(Attempt::try_from).collect()
}

/// As `claim_for_reconcile`, for an approved attempt's after-approval check.
pub async fn claim_paid_for_reconcile(tx: &mut Tx, id: &str, interval_ms: i64) -> StoreResult<bool> {
    let sql = format!(
        "UPDATE attempts SET checked_at = {now} WHERE id = $1 AND status = $2 \
         AND (checked_at IS NULL OR checked_at < {now} - $3)",
        now = tx.now_sql()
    );
    let done = on_tx!(tx, |c| sqlx::query(&sql)
        .bind(id)
        .bind(PaymentStatus::Approved.as_str())
        .bind(interval_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
