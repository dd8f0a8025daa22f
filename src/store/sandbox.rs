//! The sandbox gateway's ledger (see the migration's comment).

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, StoreResult, Tx};

#[derive(Debug, Clone, FromRow)]
pub struct SandboxPayment {
    pub id: String,
    pub reference: String,
    pub description: String,
    pub amount_minor: i64,
    pub currency: String,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_phone: String,
    pub lang: String,
    pub redirect_url: String,
    pub cancel_url: String,
    pub webhook_url: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, reference, description, amount_minor, currency, customer_name, customer_email, \
                       customer_phone, lang, redirect_url, cancel_url, webhook_url, status, created_at, updated_at";

/// Inserts the payment unless its reference has one; answers with the row either way (on a
/// conflict the no-op update lets RETURNING give the existing row), in one round trip.
static CREATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO sandbox_payments ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
         ON CONFLICT (reference) DO UPDATE SET reference = excluded.reference RETURNING {COLUMNS}"
    )
});

/// [`create`]'s one statement, for a pool or a transaction's connection.
macro_rules! create {
    ($exec:expr, $p:expr) => {
        sqlx::query_as::<_, SandboxPayment>(CREATE.as_str())
            .bind(&$p.id)
            .bind(&$p.reference)
            .bind(&$p.description)
            .bind($p.amount_minor)
            .bind(&$p.currency)
            .bind(&$p.customer_name)
            .bind(&$p.customer_email)
            .bind(&$p.customer_phone)
            .bind(&$p.lang)
            .bind(&$p.redirect_url)
            .bind(&$p.cancel_url)
            .bind(&$p.webhook_url)
            .bind(&$p.status)
            .bind($p.created_at)
            .bind($p.updated_at)
            .fetch_one($exec)
            .await
    };
}

/// Creates the payment for a reference, or returns the one already made for it.
pub async fn create(db: &Db, p: &SandboxPayment) -> StoreResult<SandboxPayment> {
    Ok(on_pool_write!(db, |pool| create!(pool, p))?)
}

/// [`create`] in the caller's transaction.
pub async fn create_in(tx: &mut Tx, p: &SandboxPayment) -> StoreResult<SandboxPayment> {
    Ok(on_tx!(tx, |c| create!(c, p))?)
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<SandboxPayment>> {
    let sql = format!("SELECT {COLUMNS} FROM sandbox_payments WHERE id = $1");
    let row = on_pool!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?;
    Ok(row)
}

pub async fn by_reference(db: &Db, reference: &str) -> StoreResult<Option<SandboxPayment>> {
    let sql = format!("SELECT {COLUMNS} FROM sandbox_payments WHERE reference = $1");
    let row = on_pool!(db, |p| sqlx::query_as(&sql).bind(reference).fetch_optional(p).await)?;
    Ok(row)
}

/// Moves a payment out of `from`; false when it had already left that state.
pub async fn transition(db: &Db, id: &str, from: &str, to: &str) -> StoreResult<bool> {
    let sql = "UPDATE sandbox_payments SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4";
    let done = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(to)
        .bind(crate::clock::now_ms())
        .bind(id)
        .bind(from)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
