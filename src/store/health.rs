//! What `/healthz` asks of the database: not just "does it answer" but "does it commit".

use super::{on_tx, Db, StoreResult};

/// Commits one tiny write; fails when the database is down or refuses writes (disk full).
pub async fn probe_write(db: &Db) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO health_probe (id, checked_at) VALUES (1, {}) \
         ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        db.now_sql()
    );
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(&sql)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await
}
