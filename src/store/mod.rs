//! The only place with SQL. One schema, two backends: SQLite (embedded default) and
//! PostgreSQL (several instances). Queries are written once with `$N` placeholders,
//! which both drivers accept, and expanded per backend by `on_pool!`/`on_tx!` so each
//! arm is type-checked against its own driver (no `Any` driver).

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

pub mod api_tokens;
pub mod attempts;
pub mod builtin_crm;
pub mod crm_inbox;
pub mod crm_records;
pub mod followups;
pub mod health;
pub mod inbox;
pub mod jobs;
pub mod leads;
pub mod outbound;
pub mod pacing;
pub mod payment_links;
pub mod sandbox;
pub mod secrets;
pub mod wal_sync;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (use sqlite://FILE or postgres://...)")]
    UnsupportedUrl,
    #[error("stored row is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database refused a write for want of space: SQLite's SQLITE_FULL (any extended
    /// code), PostgreSQL's `disk_full` (53100).
    pub fn is_disk_full(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        match e.code().as_deref() {
            Some("53100") => true,
            Some(code) => code.parse::<i32>().is_ok_and(|c| c & 0xff == SQLITE_FULL),
            None => false,
        }
    }
}

/// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL: i32 = 13;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// The SQLite pool and, unless durability was traded away, the group fsync every commit
/// waits for (see `wal_sync`).
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pool: SqlitePool,
    sync: Option<wal_sync::WalSync>,
}

impl SqliteDb {
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// How the pool trades speed for safety; see `[database]` in the README.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Longest a caller waits for a connection: requests answer 503 after this, not 10 s later.
    pub acquire_timeout: Duration,
    /// Opt-in: SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`. A power cut or
    /// kernel crash may then undo commits that were already acknowledged.
    pub power_loss_may_undo_commits: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            acquire_timeout: Duration::from_secs(1),
            power_loss_may_undo_commits: false,
        }
    }
}

/// An open transaction on either backend. It owns its pooled connection outright (not
/// sqlx's `Transaction`, whose depth counter a failed COMMIT or ROLLBACK leaves wrong, so
/// the next BEGIN became a savepoint inside a transaction nobody would ever commit).
/// A COMMIT or ROLLBACK that fails closes the connection instead of returning it: closing
/// rolls back, and the pool opens a fresh one. Dropped unfinished (an early return, an
/// error, a cancelled future), it is rolled back in the background before anyone else
/// can have the connection, and closed if that ROLLBACK fails. No connection in an
/// unknown state is ever reused.
pub struct Tx {
    conn: Option<TxConn>,
    /// SQLite: what a COMMIT waits for before it counts as done.
    sync: Option<wal_sync::WalSync>,
}

pub enum TxConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$p` bound to the backend's pool; the body is compiled once per backend.
macro_rules! on_pool {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(s) => {
                let $p = s.pool();
                $body
            }
            $crate::store::Db::Postgres($p) => $body,
        }
    };
}

/// [`on_pool!`] for statements that write: the result comes back only once the write is
/// durable (SQLite autocommits do not sync on their own; see `wal_sync`).
macro_rules! on_pool_write {
    ($db:expr, |$p:ident| $body:expr) => {{
        let db: &$crate::store::Db = $db;
        match $crate::store::on_pool!(db, |$p| $body) {
            Ok(v) => db.durable().await.map(|()| v),
            Err(e) => Err(e),
        }
    }};
}

/// Runs `$body` with `$c` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $crate::store::Tx::conn($tx) {
            $crate::store::TxConn::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxConn::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use {on_pool, on_pool_write, on_tx};

/// The database's own clock in epoch milliseconds, per backend. Leases and due times are
/// compared against this, never against a host's clock: hosts disagree, the database is one.
const SQLITE_NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
pub(crate) const PG_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

impl Db {
    /// Connects with the safe defaults (every acknowledged commit on disk).
    pub async fn connect(url: &str) -> StoreResult<Db> {
        Self::connect_with(url, &DbOptions::default()).await
    }

    pub async fn connect_with(url: &str, o: &DbOptions) -> StoreResult<Db> {
        if url.starts_with("sqlite:") {
            // WAL lets readers run beside the single writer. NORMAL writes a commit to the
            // WAL without syncing it; unless durability was traded away, every commit then
            // waits for a shared fdatasync of the WAL (group commit, `wal_sync`), so a
            // commit that returned survives a power cut as it did with FULL, for one fsync
            // per batch of concurrent commits instead of one each.
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            // SQLite has one writer at a time. With one connection, writers queue in the
            // pool (in order, woken the moment it is free) instead of colliding on the
            // file lock and sleeping in SQLite's busy handler, which at 16+ concurrent
            // requests put tens of milliseconds on p99. Reads are microseconds here.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(o.acquire_timeout)
                .connect_with(opts.clone())
                .await?;
            let file = opts.get_filename();
            let in_memory = file.as_os_str().is_empty() || file.as_os_str() == ":memory:";
            let sync = (!o.power_loss_may_undo_commits && !in_memory).then(|| wal_sync::WalSync::new(file));
            Ok(Db::Sqlite(SqliteDb { pool, sync }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Set per connection so a server default of `off` cannot weaken what a 200 means.
            let commit = if o.power_loss_may_undo_commits { "off" } else { "on" };
            let opts = PgConnectOptions::from_str(url)?.options([("synchronous_commit", commit)]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(o.acquire_timeout)
                .connect_with(opts)
                .await?;
            warn_if_server_skips_fsync(&pool).await;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(s) => sqlx::migrate!("./migrations/sqlite").run(s.pool()).await?,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// A transaction that only writes (or whose reads cannot be invalidated by a writer).
    pub async fn begin(&self) -> StoreResult<Tx> {
        self.open("BEGIN").await
    }

    /// A transaction that reads before it writes: on SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`), since upgrading a read lock later can fail at once
    /// under WAL when another writer got in between.
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        match self {
            Db::Sqlite(_) => self.open("BEGIN IMMEDIATE").await,
            Db::Postgres(_) => self.open("BEGIN").await,
        }
    }

    async fn open(&self, begin: &'static str) -> StoreResult<Tx> {
        // From here on, dropping `tx` closes the connection, so a cancelled BEGIN is safe too.
        let mut tx = match self {
            Db::Sqlite(s) => Tx {
                conn: Some(TxConn::Sqlite(s.pool.acquire().await?)),
                sync: s.sync.clone(),
            },
            Db::Postgres(p) => Tx {
                conn: Some(TxConn::Postgres(p.acquire().await?)),
                sync: None,
            },
        };
        tx.execute_raw(begin).await?;
        Ok(tx)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// This backend's SQL for the database's clock, in epoch milliseconds.
    pub(crate) fn now_sql(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => SQLITE_NOW_MS,
            Db::Postgres(_) => PG_NOW_MS,
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    /// Returns once every write this task made before the call is on disk. PostgreSQL:
    /// a commit already waited for its WAL flush (`synchronous_commit = on`).
    pub async fn durable(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(SqliteDb { sync: Some(s), .. }) => s.durable().await.map_err(sqlx::Error::Io),
            _ => Ok(()),
        }
    }
}

/// One query text per backend, built on first use: the texts differ only in the
/// database's clock, so no call formats SQL and each connection's statement cache holds
/// one entry per query.
pub(crate) struct PerBackend {
    texts: [OnceLock<String>; 2],
    make: fn(&str) -> String,
}

impl PerBackend {
    /// `make` gets the backend's SQL for the database's clock in epoch milliseconds.
    pub(crate) const fn new(make: fn(&str) -> String) -> Self {
        Self {
            texts: [OnceLock::new(), OnceLock::new()],
            make,
        }
    }

    /// The text for the backend whose clock SQL is `now` (`Db::now_sql`).
    pub(crate) fn get(&self, now: &'static str) -> &str {
        let slot = usize::from(now == PG_NOW_MS);
        self.texts[slot].get_or_init(|| (self.make)(now))
    }

    /// The text for the transaction's backend.
    pub(crate) fn for_tx(&self, tx: &Tx) -> &str {
        let slot = usize::from(tx.is_postgres());
        self.texts[slot].get_or_init(|| (self.make)(tx.now_sql()))
    }
}

/// A server running with `fsync = off` acknowledges commits it may lose; say so loudly.
async fn warn_if_server_skips_fsync(pool: &PgPool) {
    match sqlx::query_scalar::<_, String>("SHOW fsync").fetch_one(pool).await {
        Ok(v) if v == "off" => tracing::error!(
            "PostgreSQL runs with fsync = off: a power cut can lose payments leadgate already acknowledged"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read PostgreSQL's fsync setting"),
    }
}

impl Tx {
    /// The open connection; only `on_tx!` calls this.
    #[doc(hidden)]
    pub fn conn(&mut self) -> &mut TxConn {
        // `conn` is only taken by `finish`, which consumes the transaction.
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("transaction used after it ended"))
    }

    pub(crate) fn now_sql(&self) -> &'static str {
        match self.conn.as_ref() {
            Some(TxConn::Postgres(_)) => PG_NOW_MS,
            _ => SQLITE_NOW_MS,
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.conn, Some(TxConn::Postgres(_)))
    }

    /// Holds `key` until the transaction ends, so requests about the same thing (a lead,
    /// an email for an offer) take turns: the second reads what the first committed.
    /// PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the key (a
    /// collision only makes two unrelated requests wait for each other). SQLite: nothing
    /// to do when the transaction came from `Db::begin_write`, which holds the one write lock.
    pub async fn take_turn(&mut self, key: &str) -> StoreResult<()> {
        if let Some(TxConn::Postgres(c)) = self.conn.as_mut() {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut **c)
                .await?;
        }
        Ok(())
    }

    async fn execute_raw(&mut self, sql: &'static str) -> StoreResult<()> {
        on_tx!(self, |c| sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Commits and returns once the commit is on disk; on SQLite the connection goes back
    /// to the pool first, so the next writer runs while this one waits for the shared
    /// fsync. On an error nothing may be acknowledged: a failed COMMIT did not happen (its
    /// connection is closed), a failed sync may not survive a power cut.
    pub async fn commit(mut self) -> StoreResult<()> {
        let sync = self.sync.take();
        self.finish("COMMIT").await?;
        if let Some(s) = sync {
            s.durable().await.map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        self.finish("ROLLBACK").await
    }

    async fn finish(mut self, sql: &'static str) -> StoreResult<()> {
        let ended = self.execute_raw(sql).await;
        match self.conn.take() {
            // Ended cleanly: the connection goes back to the pool.
            Some(conn) if ended.is_ok() => drop(conn),
            Some(conn) => conn.close(),
            None => {}
        }
        ended
    }
}

impl TxConn {
    /// Closes instead of returning to the pool (the pool opens a replacement).
    fn close(self) {
        match self {
            TxConn::Sqlite(mut c) => c.close_on_drop(),
            TxConn::Postgres(mut c) => c.close_on_drop(),
        }
    }

    async fn rollback_or_close(mut self) {
        let rolled_back = match &mut self {
            TxConn::Sqlite(c) => sqlx::query("ROLLBACK").execute(&mut **c).await.is_ok(),
            TxConn::Postgres(c) => sqlx::query("ROLLBACK").execute(&mut **c).await.is_ok(),
        };
        if !rolled_back {
            self.close();
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // The task owns the connection until it is clean, so the pool cannot hand it out
        // with our transaction still open.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(conn.rollback_or_close())),
            Err(_) => conn.close(),
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit and a pool write each return only after an fdatasync round that began
    /// after them; with the trade-off on, there is none to wait for.
    #[tokio::test]
    async fn sqlite_commits_and_pool_writes_return_after_a_sync_of_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(SqliteDb { sync: Some(sync), .. }) = &db else {
            panic!("no group sync on a SQLite file");
        };
        let before = sync.rounds_finished();
        let mut tx = db.begin().await.unwrap();
        on_tx!(&mut tx, |c| sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
        tx.commit().await.unwrap();
        let after_commit = sync.rounds_finished();
        assert!(after_commit > before, "a commit returned without a sync of the WAL");
        secrets::get_or_insert(&db, "k", "v").await.unwrap();
        assert!(
            sync.rounds_finished() > after_commit,
            "a pool write returned without a sync"
        );
        assert!(dir.path().join("t.db-wal").exists());

        let o = DbOptions {
            power_loss_may_undo_commits: true,
            ..DbOptions::default()
        };
        let fast = Db::connect_with(&url, &o).await.unwrap();
        assert!(matches!(fast, Db::Sqlite(SqliteDb { sync: None, .. })));
    }
    /// SQLite autocommits do not sync (`wal_sync`): a store function that writes through the
    /// pool must go through `on_pool_write!`, or its caller could acknowledge a write a power
    /// cut takes back. Reads the store's own source, function by function.
    #[test]
    fn every_pool_write_waits_for_the_disk() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store");
        let sql_writes = ["\"INSERT ", "\"UPDATE ", "\"DELETE "];
        let writes_sql = |text: &str| sql_writes.iter().any(|w| text.contains(w));
        let sources: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
            .collect();
        // Constants holding a write's SQL, and the store's macros that expand to a write
        // (`insert!` and the like), by name.
        let mut writers: Vec<String> = Vec::new();
        for (_, src) in &sources {
            for item in src.split("\nconst ").chain(src.split("\nstatic ")).skip(1) {
                let text = item.split(";\n").next().unwrap_or(item);
                if writes_sql(text) {
                    writers.push(text.split(':').next().unwrap_or("?").trim().to_owned());
                }
            }
        }
        for (_, src) in &sources {
            for m in src.split("macro_rules! ").skip(1) {
                let body = m.split("\n}\n").next().unwrap_or(m);
                if writes_sql(body) || writers.iter().any(|w| body.contains(w.as_str())) {
                    writers.push(format!("{}!(", body.split_whitespace().next().unwrap_or("?")));
                }
            }
        }
        let mut offenders = Vec::new();
        for (path, src) in &sources {
            for f in src.split("async fn ").skip(1) {
                let body = f.split("\n}\n").next().unwrap_or(f);
                let writes = writes_sql(body) || writers.iter().any(|w| body.contains(w.as_str()));
                if body.contains("on_pool!(") && writes {
                    let name = body.split('(').next().unwrap_or("?");
                    offenders.push(format!("{}: {name}", path.display()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "pool writes that do not wait for the disk: {offenders:#?}"
        );
    }
}
