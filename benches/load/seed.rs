//! Bulk rows shaped like what the app writes (the schema is `migrations/`), in one
//! transaction per call: a recursive CTE on SQLite, `generate_series` on PostgreSQL.
//!
//! `Mix::Live`: leads whose sandbox checkout is open (attempt redirected, sandbox payment
//! created, person and deal in the built-in CRM, CRM sync done, follow-ups queued), ready
//! for the webhook workload to approve. `Mix::History`: what months of traffic leave, a
//! realistic mix of open, paid, declined and expired attempts with their webhook events
//! and finished jobs, the newest follow-ups still queued.

use leadgate::store::Db;

/// Id namespaces, so the rows of one table never collide with another's.
const LEAD: u32 = 1;
const ATTEMPT: u32 = 2;
const PAYMENT: u32 = 3;
const PERSON: u32 = 4;
const DEAL: u32 = 5;
const EVENT: u32 = 6;
const JOB: u32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    Live,
    History,
}

/// An open checkout a webhook can approve.
#[derive(Debug, Clone)]
pub struct Live {
    pub attempt: String,
    pub payment: String,
}

/// A UUIDv7-shaped id (the app's own ids are UUIDv7; references are checked for it),
/// older than any the app mints now.
pub fn id(batch: u32, kind: u32, i: u64) -> String {
    format!("0190{batch:04}-0000-7{kind:03}-8000-{i:012}")
}

/// The attempts and payments `seed(.., Mix::Live)` made for `batch`.
pub fn live(batch: u32, n: u64) -> Vec<Live> {
    (0..n)
        .map(|i| Live {
            attempt: id(batch, ATTEMPT, i),
            payment: format!("sbx_{}", id(batch, PAYMENT, i)),
        })
        .collect()
}

struct Dialect {
    pg: bool,
}

impl Dialect {
    /// `i` from 0 to n-1, as the first CTE of a statement.
    fn series(&self, n: u64) -> String {
        if self.pg {
            format!(
                "WITH g(i) AS (SELECT CAST(s AS BIGINT) FROM generate_series(0, {}) AS s)",
                n.saturating_sub(1)
            )
        } else {
            format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {})",
                n.saturating_sub(1)
            )
        }
    }

    fn pad(&self, expr: &str, width: usize) -> String {
        if self.pg {
            format!("lpad(CAST({expr} AS TEXT), {width}, '0')")
        } else {
            format!("substr('{}' || ({expr}), -{width}, {width})", "0".repeat(width))
        }
    }

    /// The SQL of [`id`] for row `i`.
    fn id(&self, batch: u32, kind: u32) -> String {
        format!("'0190{batch:04}-0000-7{kind:03}-8000-' || {}", self.pad("i", 12))
    }

    fn bytes(&self, expr: &str) -> String {
        if self.pg {
            format!("convert_to({expr}, 'UTF8')")
        } else {
            format!("CAST({expr} AS BLOB)")
        }
    }
}

/// The attempt status of row `i`: 60 % open, 25 % paid, 10 % declined, 5 % expired.
const STATUS: &str = "CASE WHEN i % 20 < 12 THEN 'redirected' WHEN i % 20 < 17 THEN 'approved' \
                      WHEN i % 20 < 19 THEN 'declined' ELSE 'expired' END";
const SETTLED: &str = "i % 20 >= 12 AND i % 20 < 19";

/// Inserts `n` leads of `batch` with their attempts and everything around them.
pub async fn seed(db: &Db, batch: u32, n: u64, mix: Mix, base_url: &str) -> Result<(), String> {
    let d = Dialect {
        pg: matches!(db, Db::Postgres(_)),
    };
    let now = leadgate::clock::now_ms();
    // Live rows were made just now; history spreads over the last ~90 days, oldest first.
    let created = match mix {
        Mix::Live => format!("({now} - 60000 + i)"),
        Mix::History => format!("({now} - 7776000000 + i * {})", 7_776_000_000 / n.max(1) as i64),
    };
    let status = match mix {
        Mix::Live => "'redirected'".to_owned(),
        Mix::History => STATUS.to_owned(),
    };
    let settled = match mix {
        Mix::Live => "FALSE".to_owned(),
        Mix::History => SETTLED.to_owned(),
    };
    let (lead, attempt, payment, person, deal) = (
        d.id(batch, LEAD),
        d.id(batch, ATTEMPT),
        d.id(batch, PAYMENT),
        d.id(batch, PERSON),
        d.id(batch, DEAL),
    );
    let email = format!("'seed-{batch}-' || i || '@example.com'");
    let g = d.series(n);
    let mut sql = vec![
        format!(
            "INSERT INTO leads (id, offer_slug, name, email, phone, lang, utm_source, utm_campaign, created_at) \
             {g} SELECT {lead}, 'demo', 'Seed Customer ' || i, {email}, '+573001234567', 'es', \
             CASE WHEN i % 3 = 0 THEN 'google' END, CASE WHEN i % 3 = 0 THEN 'launch' END, {created} FROM g"
        ),
        format!(
            "INSERT INTO attempts (id, lead_id, offer_slug, gateway, amount_minor, currency, status, gateway_ref, \
             checkout_ref, status_detail, checkout_url, settled_by, created_at, updated_at) \
             {g} SELECT {attempt}, {lead}, 'demo', 'sandbox', 19900000, 'COP', {status}, 'sbx_' || {payment}, \
             'sbx_' || {payment}, CASE WHEN {settled} THEN upper({status}) END, \
             '{base_url}/sandbox/pay/sbx_' || {payment}, CASE WHEN {settled} THEN 'webhook' END, {created}, {created} FROM g"
        ),
    ];
    // What the submit path and the worker look up of an open checkout: its sandbox payment,
    // built-in CRM person and deal. History leaves them out (the workloads never read old
    // ones back, and seeding a million of each would not fit the bench's time budget).
    let mut records = vec![("deal", attempt.clone(), deal.clone())];
    if mix == Mix::Live {
        sql.extend([
            format!(
                "INSERT INTO sandbox_payments (id, reference, description, amount_minor, currency, customer_name, \
                 customer_email, customer_phone, lang, redirect_url, cancel_url, webhook_url, status, created_at, updated_at) \
                 {g} SELECT 'sbx_' || {payment}, {attempt}, 'Curso de Marketing', 19900000, 'COP', 'Seed Customer ' || i, \
                 {email}, '+573001234567', 'es', '{base_url}/return/sandbox?attempt=' || {attempt} || '&lang=es', \
                 '{base_url}/r/seed?lang=es', '{base_url}/webhooks/sandbox', \
                 CASE WHEN {settled} THEN upper({status}) ELSE 'CREATED' END, {created}, {created} FROM g"
            ),
            format!(
                "INSERT INTO builtin_persons (id, email, name, phone, created_at) \
                 {g} SELECT {person}, {email}, 'Seed Customer ' || i, '+573001234567', {created} FROM g"
            ),
            format!(
                "INSERT INTO builtin_deals (id, person_id, external_key, title, value_minor, currency, pipeline, stage, \
                 status, created_at, updated_at) \
                 {g} SELECT {deal}, {person}, {attempt}, 'Curso de Marketing — Seed Customer ' || i, 19900000, 'COP', \
                 'Sales', 'Checkout started', CASE {status} WHEN 'approved' THEN 'won' WHEN 'declined' THEN 'lost' \
                 ELSE 'open' END, {created}, {created} FROM g"
            ),
        ]);
        records.push(("person", lead.clone(), person.clone()));
        records.push(("person_email", email.clone(), person.clone()));
    }
    for (kind, key, remote) in records {
        sql.push(format!(
            "INSERT INTO crm_records (crm, kind, local_key, lead_id, remote_id, state, created_at, updated_at) \
             {g} SELECT 'builtin', '{kind}', {key}, {lead}, {remote}, {state}, {created}, {created} FROM g",
            state = if kind == "deal" { "'open'" } else { "NULL" },
        ));
    }
    // Jobs: the CRM sync of every attempt, finished; follow-ups queued for open checkouts
    // (due in the future), finished for settled ones; for history, the applied events.
    let job = |n: u32| d.id(batch, JOB * 10 + n);
    let payload =
        |kind: &str, extra: &str| format!("'{{\"kind\":\"{kind}\",\"attempt_id\":\"' || {attempt} || '\"{extra}}}'");
    let followup_state = match mix {
        Mix::Live => "'queued'".to_owned(),
        Mix::History => format!(
            "CASE WHEN i >= {} AND {status} = 'redirected' THEN 'queued' ELSE 'done' END",
            n - n / 50
        ),
    };
    let jobs = [
        (
            job(0),
            "crm_sync",
            payload("crm_sync", ""),
            "'done'".to_owned(),
            created.clone(),
        ),
        (
            job(1),
            "follow_up",
            payload("follow_up", ",\"reason\":{\"type\":\"abandoned\",\"step\":0}"),
            followup_state,
            format!("({created} + 1800000)"),
        ),
    ];
    for (id, kind, payload, state, run_at) in jobs {
        sql.push(format!(
            "INSERT INTO jobs (id, kind, payload, lead_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
             {g} SELECT {id}, '{kind}', {payload}, {lead}, {state}, CASE WHEN {state} = 'done' THEN 1 ELSE 0 END, 8, \
             {run_at}, {created}, {created} FROM g"
        ));
    }
    if mix == Mix::History {
        let event = d.id(batch, EVENT);
        let body = d.bytes(&format!(
            "'{{\"id\":\"evt_seed_' || i || '\",\"type\":\"payment.updated\",\"created\":0,\"data\":{{\"payment_id\":\"sbx_' || {payment} || '\",\"reference\":\"' || {attempt} || '\",\"status\":\"' || upper({status}) || '\"}}}}'"
        ));
        sql.push(format!(
            "INSERT INTO webhook_events (id, gateway, event_id, reference, status, body, received_at, processed_at, outcome) \
             {g} SELECT {event}, 'sandbox', 'evt_seed_{batch}_' || i, {attempt}, {status}, {body}, {created}, \
             {created} + 5, 'applied' FROM g WHERE {settled}"
        ));
        sql.push(format!(
            "INSERT INTO jobs (id, kind, payload, lead_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
             {g} SELECT {id}, 'apply_event', '{{\"kind\":\"apply_event\",\"event_id\":\"' || {event} || '\"}}', {lead}, \
             'done', 1, 8, {created}, {created}, {created} FROM g WHERE {settled}",
            id = job(2)
        ));
    }
    match (db, mix) {
        (Db::Sqlite(_), Mix::History) => bulk_sqlite(db, &sql).await,
        _ => run_all(db, &sql).await,
    }
}

/// History goes into a database no server has open yet: one connection of its own, no
/// rollback journal or fsync for the one big transaction (nothing of it needs to survive
/// a crash of the bench), then back to WAL as the app expects.
async fn bulk_sqlite(db: &Db, statements: &[String]) -> Result<(), String> {
    use sqlx::{Connection, Executor};
    let Db::Sqlite(sqlite) = db else {
        return Err("not SQLite".into());
    };
    let pool = sqlite.pool();
    let options = pool.connect_options();
    pool.close().await;
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| e.to_string())?;
    let e = |e: sqlx::Error| e.to_string();
    conn.execute("PRAGMA journal_mode = OFF").await.map_err(e)?;
    conn.execute("PRAGMA synchronous = OFF").await.map_err(e)?;
    conn.execute("PRAGMA cache_size = -262144").await.map_err(e)?;
    let mut tx = conn.begin().await.map_err(e)?;
    for s in statements {
        sqlx::query(s)
            .execute(&mut *tx)
            .await
            .map_err(|err| format!("seeding failed: {err}\n{s}"))?;
    }
    tx.commit().await.map_err(e)?;
    conn.execute("PRAGMA journal_mode = WAL").await.map_err(e)?;
    conn.close().await.map_err(e)
}

async fn run_all(db: &Db, statements: &[String]) -> Result<(), String> {
    let err = |s: &str, e: sqlx::Error| format!("seeding failed: {e}\n{s}");
    match db {
        Db::Sqlite(s) => {
            let p = s.pool();
            let mut tx = p.begin().await.map_err(|e| e.to_string())?;
            // A million rows' index pages stay in memory instead of thrashing a 2 MB cache.
            sqlx::query("PRAGMA cache_size = -262144")
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
            for s in statements {
                sqlx::query(s).execute(&mut *tx).await.map_err(|e| err(s, e))?;
            }
            tx.commit().await.map_err(|e| e.to_string())
        }
        Db::Postgres(p) => {
            let mut tx = p.begin().await.map_err(|e| e.to_string())?;
            for s in statements {
                sqlx::query(s).execute(&mut *tx).await.map_err(|e| err(s, e))?;
            }
            tx.commit().await.map_err(|e| e.to_string())?;
            // Fresh statistics, as autovacuum would have them after months of traffic.
            sqlx::query("ANALYZE")
                .execute(p)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// The open checkouts in the database (redirected attempts), with their payments.
pub async fn redirected_attempts(db: &Db) -> Result<Vec<Live>, String> {
    let sql = "SELECT id, gateway_ref FROM attempts WHERE status = 'redirected' ORDER BY created_at, id";
    let rows: Vec<(String, Option<String>)> = match db {
        Db::Sqlite(s) => sqlx::query_as(sql).fetch_all(s.pool()).await,
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|(attempt, payment)| Live {
            attempt,
            payment: payment.unwrap_or_default(),
        })
        .collect())
}

/// (events stored, events applied) by the sandbox webhook since `since_ms`, and deals won.
pub async fn ingest_counts(db: &Db, since_ms: i64) -> Result<(i64, i64, i64), String> {
    let events = "SELECT COUNT(*), COUNT(processed_at) FROM webhook_events WHERE received_at >= $1";
    let won = "SELECT COUNT(*) FROM builtin_deals WHERE status = 'won' AND updated_at >= $1";
    let q = async {
        match db {
            Db::Sqlite(s) => {
                let p = s.pool();
                let (s, a): (i64, i64) = sqlx::query_as(events).bind(since_ms).fetch_one(p).await?;
                let w: i64 = sqlx::query_scalar(won).bind(since_ms).fetch_one(p).await?;
                Ok::<_, sqlx::Error>((s, a, w))
            }
            Db::Postgres(p) => {
                let (s, a): (i64, i64) = sqlx::query_as(events).bind(since_ms).fetch_one(p).await?;
                let w: i64 = sqlx::query_scalar(won).bind(since_ms).fetch_one(p).await?;
                Ok((s, a, w))
            }
        }
    };
    q.await.map_err(|e| e.to_string())
}
