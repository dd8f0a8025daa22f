//! Secrets generated for the zero-config run, shared by every instance on the database.

use super::{on_pool_write, Db, StoreResult};

/// Returns the stored value for `name`, storing `fresh` first if there is none.
pub async fn get_or_insert(db: &Db, name: &str, fresh: &str) -> StoreResult<String> {
    let ins = "INSERT INTO app_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
    let sel = "SELECT value FROM app_secrets WHERE name = $1";
    let value: String = on_pool_write!(db, |p| {
        sqlx::query(ins)
            .bind(name)
            .bind(fresh)
            .bind(crate::clock::now_ms())
            .execute(p)
            .await?;
        sqlx::query_scalar(sel).bind(name).fetch_one(p).await
    })?;
    Ok(value)
}

/// Forgets a stored secret; `true` if there was one.
pub async fn remove(db: &Db, name: &str) -> StoreResult<bool> {
    let del = "DELETE FROM app_secrets WHERE name = $1";
    let removed = on_pool_write!(db, |p| sqlx::query(del)
        .bind(name)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(removed > 0)
}
