//! API tokens (`api_tokens`): their digests, scopes and when they were last used.

use sqlx::FromRow;

use super::{corrupt, on_pool, on_pool_write, Db, StoreResult};
use crate::domain::api_token::Scopes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(FromRow)]
struct Row {
    id: String,
    name: String,
    scopes: String,
    hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, scopes, hash, created_at, last_used_at, revoked_at";

impl TryFrom<Row> for ApiToken {
    type Error = super::StoreError;
    fn try_from(r: Row) -> StoreResult<ApiToken> {
        let scopes = Scopes::parse(&r.scopes).map_err(|e| corrupt(format!("api token {} scopes: {e}", r.id)))?;
        Ok(ApiToken {
            id: r.id,
            name: r.name,
            scopes,
            hash: r.hash,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

pub async fn insert(db: &Db, t: &ApiToken) -> StoreResult<()> {
    let sql = format!("INSERT INTO api_tokens ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7)");
    on_pool_write!(db, |p| sqlx::query(&sql)
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.scopes.to_string())
        .bind(&t.hash)
        .bind(t.created_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<ApiToken>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
    let row: Option<Row> = on_pool!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?;
    row.map(ApiToken::try_from).transpose()
}

/// Every token, newest first, revoked ones included (the admin shows when).
pub async fn list(db: &Db) -> StoreResult<Vec<ApiToken>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, id DESC");
    let rows: Vec<Row> = on_pool!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(ApiToken::try_from).collect()
}

/// Revokes a token; `false` when there is no such token or it was revoked before.
pub async fn revoke(db: &Db, id: &str, now: i64) -> StoreResult<bool> {
    let sql = "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    let n = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Records a use, at most once a minute per token so busy clients do not turn every
/// request into a write.
pub async fn touch(db: &Db, id: &str, now: i64) -> StoreResult<()> {
    let sql = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 \
               AND (last_used_at IS NULL OR last_used_at < $2 - 60000)";
    on_pool_write!(db, |p| sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
