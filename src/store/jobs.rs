//! The durable job queue's tables. A claim picks due jobs (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has a single writer), takes the job's lead in `lead_locks` and leases
//! the job, all in one transaction, so no two jobs of one lead ever run at once.

use sqlx::FromRow;

use super::{on_pool, on_pool_write, on_tx, Db, PerBackend, StoreResult, Tx};

/// Where a job is in its life. Stored as text; parsed here, at the storage edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "dead" => Ok(JobState::Dead),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

impl TryFrom<String> for JobState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub id: String,
    pub kind: &'a str,
    pub payload: String,
    pub lead_id: Option<&'a str>,
    /// Due this long after the database's now.
    pub delay_ms: i64,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub lead_id: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct JobSummary {
    pub id: String,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i32,
    pub run_at: i64,
    pub last_error: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, payload, lead_id, state, attempts, max_attempts, run_at, locked_until, \
                           locked_by, created_at, updated_at";

/// A queued job; on PostgreSQL it also notifies the workers at commit (see
/// `relay_wakeups`) in the same round trip.
static ENQUEUE: PerBackend = PerBackend::new(|now| {
    let insert = format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, 'queued', 0, $5, {now} + $6, NULL, NULL, \
         {now}, {now})"
    );
    if now == super::PG_NOW_MS {
        format!("WITH j AS ({insert} RETURNING 1) SELECT pg_notify('{JOBS_CHANNEL}', '') FROM j")
    } else {
        insert
    }
});

pub async fn enqueue(tx: &mut Tx, job: &NewJob<'_>) -> StoreResult<()> {
    let sql = ENQUEUE.for_tx(tx);
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(&job.id)
        .bind(job.kind)
        .bind(&job.payload)
        .bind(job.lead_id)
        .bind(job.max_attempts)
        .bind(job.delay_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A job inserted as running, leased to `$5` until `$6` ms after the database's now: its
/// first try has begun (`attempts` = 1).
static INSERT_LEASED: PerBackend = PerBackend::new(|now| {
    format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, 'running', 1, $7, {now}, {now} + $6, $5, \
         {now}, {now})"
    )
});

/// Stores `job` already leased to `worker` (its lead taken, its first try counted), in the
/// caller's transaction: the request that stores a job to run it at once saves a claim
/// of its own (one commit). The job is safe from the moment it commits, like a claimed
/// one: if the process dies, the lease runs out and a worker takes it. `None` when
/// another job holds the lead: then it goes in queued, due at once, for the worker.
pub async fn insert_leased(
    tx: &mut Tx,
    job: &NewJob<'_>,
    worker: &str,
    lease_ms: i64,
) -> StoreResult<Option<ClaimedJob>> {
    if let Some(lead) = job.lead_id {
        if !take_lead(tx, lead, &job.id, worker, lease_ms).await? {
            let queued = NewJob {
                delay_ms: 0,
                ..job.clone()
            };
            enqueue(tx, &queued).await?;
            return Ok(None);
        }
    }
    let sql = INSERT_LEASED.for_tx(tx);
    on_tx!(tx, |c| sqlx::query(sql)
        .bind(&job.id)
        .bind(job.kind)
        .bind(&job.payload)
        .bind(job.lead_id)
        .bind(worker)
        .bind(lease_ms)
        .bind(job.max_attempts)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(Some(ClaimedJob {
        id: job.id.clone(),
        kind: job.kind.to_owned(),
        payload: job.payload.clone(),
        lead_id: job.lead_id.map(str::to_owned),
        attempts: 1,
        max_attempts: job.max_attempts,
    }))
}

/// Puts a job leased by [`insert_leased`] back in the queue untried, due at once, and
/// frees its lead (the process began to stop before it could run it).
pub async fn hand_back(db: &Db, h: Holder<'_>) -> StoreResult<()> {
    let sql = HAND_BACK.get(db.now_sql());
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| sqlx::query(sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 1 {
        on_tx!(&mut tx, |c| sqlx::query(FREE_LEAD)
            .bind(h.id)
            .bind(h.worker)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(())
}

static HAND_BACK: PerBackend = PerBackend::new(|now| {
    format!(
        "UPDATE jobs SET state = 'queued', run_at = {now}, locked_until = NULL, locked_by = NULL, \
         attempts = attempts - 1, updated_at = {now} WHERE {HELD}"
    )
});

const FREE_LEAD: &str = "DELETE FROM lead_locks WHERE job_id = $1 AND locked_by = $2";

/// The PostgreSQL channel on which a committed enqueue wakes every instance's worker.
pub(super) const JOBS_CHANNEL: &str = "leadgate_jobs";

/// On PostgreSQL, calls `wake` whenever any instance commits a job (LISTEN/NOTIFY), so a
/// worker in another process starts at once instead of at its next poll; reconnects
/// after a lost connection. Returns at once on SQLite, where one process owns the file
/// and its enqueues wake its worker in-process.
pub async fn relay_wakeups(db: &Db, wake: impl Fn()) {
    let Db::Postgres(pool) = db else { return };
    loop {
        match listen(pool).await {
            Ok(mut listener) => loop {
                match listener.recv().await {
                    Ok(_) => wake(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications interrupted");
                        break;
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot listen for job notifications"),
        }
        // Polling covers the gap; try again shortly.
        wake();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(JOBS_CHANNEL).await?;
    Ok(listener)
}

/// No other job holds the job's lead.
macro_rules! lead_free {
    () => {
        "(j.lead_id IS NULL OR NOT EXISTS (SELECT 1 FROM lead_locks l WHERE l.lead_id = j.lead_id \
         AND l.locked_until >= {now} AND l.job_id <> j.id))"
    };
}
const LEAD_FREE: &str = lead_free!();
/// A job is due when queued and its time has come, or running under an expired lease
/// (its worker died), and its lead is not held by another job. `{now}` is the database's
/// clock, so hosts whose clocks disagree still agree on whose lease is live.
const DUE: &str = concat!(
    "((j.state = 'queued' AND j.run_at <= {now}) OR (j.state = 'running' AND j.locked_until < {now})) AND ",
    lead_free!()
);
const RETURNING: &str = "RETURNING id, kind, payload, lead_id, attempts, max_attempts";
/// How many due jobs one claim looks at before giving up on busy leads.
const CANDIDATES: i64 = 16;

fn with_now(template: &str, now: &str) -> String {
    template.replace("{now}", now)
}

/// Due means queued and due, or running under an expired lease: two walks of the
/// (state, run_at, id) index that each stop after `$1` rows, so a backlog of a million
/// due jobs costs a claim no more than a backlog of twenty. (One `OR` over both made
/// the planner gather and sort every due job on every claim.)
static CANDIDATES_DUE: PerBackend = PerBackend::new(|now| {
    let free = with_now(LEAD_FREE, now);
    format!(
        "SELECT id FROM ( \
           SELECT * FROM (SELECT j.id, j.run_at FROM jobs j WHERE j.state = 'queued' AND j.run_at <= {now} \
             AND {free} ORDER BY j.run_at, j.id LIMIT $1) q \
           UNION ALL \
           SELECT * FROM (SELECT j.id, j.run_at FROM jobs j WHERE j.state = 'running' AND j.locked_until < {now} \
             AND {free} ORDER BY j.run_at, j.id LIMIT $1) r \
         ) d ORDER BY run_at, id LIMIT $1"
    )
});

/// Leases the next due job to `worker` for `lease_ms` of the database's clock.
pub async fn claim(db: &Db, worker: &str, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let sql = CANDIDATES_DUE.get(db.now_sql());
    let candidates: Vec<String> = on_pool!(db, |p| sqlx::query_scalar(sql).bind(CANDIDATES).fetch_all(p).await)?;
    for id in candidates {
        if let Some(job) = lease(db, &id, Claimable::Due, worker, lease_ms).await? {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Leases one specific queued job (the inline CRM try during the form POST).
pub async fn claim_by_id(db: &Db, id: &str, worker: &str, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    lease(db, id, Claimable::Queued, worker, lease_ms).await
}

/// Which jobs a lease may take.
#[derive(Clone, Copy)]
enum Claimable {
    /// Due now (queued and due, or running under an expired lease).
    Due,
    /// Queued, whenever due: the request that stored it runs it first.
    Queued,
}

/// Leases the job, then takes its lead, in one transaction. The job's own conditional
/// update goes first: on PostgreSQL it locks the row and re-checks the condition after any
/// concurrent claimer commits, so exactly one claimer wins and only the winner ever writes
/// the lead lock (a loser that wrote it first could overwrite the winner's lock, which
/// then lapsed mid-run). A lead held by another job rolls the whole claim back.
fn lease_sql(now: &str, condition: &str) -> String {
    format!(
        "UPDATE jobs AS j SET state = 'running', locked_until = {now} + $1, locked_by = $2, \
         attempts = attempts + 1, updated_at = {now} WHERE j.id = $3 AND {condition} {RETURNING}"
    )
}

static LEASE_DUE: PerBackend = PerBackend::new(|now| lease_sql(now, &with_now(DUE, now)));
static LEASE_QUEUED: PerBackend = PerBackend::new(|now| lease_sql(now, "j.state = 'queued'"));

async fn lease(db: &Db, id: &str, which: Claimable, worker: &str, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let sql = match which {
        Claimable::Due => LEASE_DUE.get(db.now_sql()),
        Claimable::Queued => LEASE_QUEUED.get(db.now_sql()),
    };
    let mut tx = db.begin_write().await?;
    let job: Option<ClaimedJob> = on_tx!(&mut tx, |c| sqlx::query_as(sql)
        .bind(lease_ms)
        .bind(worker)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    let Some(job) = job else {
        tx.rollback().await?;
        return Ok(None);
    };
    if let Some(lead) = job.lead_id.as_deref() {
        if !take_lead(&mut tx, lead, id, worker, lease_ms).await? {
            tx.rollback().await?;
            return Ok(None);
        }
    }
    tx.commit().await?;
    Ok(Some(job))
}

/// Takes `lead` for job `id` unless another job holds a live lock on it. The unique key
/// makes the lead lock strict: on PostgreSQL a concurrent taker of the same lead waits
/// here for our commit, then sees our row and gets nothing. Our own job's stale lock is
/// ours to take: the caller holds the job itself.
static TAKE_LEAD: PerBackend = PerBackend::new(|now| {
    format!(
        "INSERT INTO lead_locks (lead_id, job_id, locked_by, locked_until) VALUES ($1, $2, $3, {now} + $4) \
         ON CONFLICT (lead_id) DO UPDATE SET job_id = excluded.job_id, locked_by = excluded.locked_by, \
         locked_until = excluded.locked_until \
         WHERE lead_locks.locked_until < {now} OR lead_locks.job_id = excluded.job_id"
    )
});

async fn take_lead(tx: &mut Tx, lead: &str, id: &str, worker: &str, lease_ms: i64) -> StoreResult<bool> {
    let take = TAKE_LEAD.for_tx(tx);
    let taken = on_tx!(tx, |c| sqlx::query(take)
        .bind(lead)
        .bind(id)
        .bind(worker)
        .bind(lease_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(taken == 1)
}

/// For a job enqueued before its lead was known (a webhook that names only the vendor's
/// payment): records the lead on the running job and takes its lock, so it is serialised
/// with that lead's other jobs from here on. False when another job holds the lead (or
/// the lease was lost): the caller must not act, and should retry shortly.
static ADOPT_LEAD: PerBackend = PerBackend::new(|now| {
    format!("UPDATE jobs SET lead_id = $4 WHERE {HELD} AND lead_id IS NULL AND locked_until >= {now}")
});

pub async fn adopt_lead(db: &Db, h: Holder<'_>, lead: &str, lease_ms: i64) -> StoreResult<bool> {
    let sql = ADOPT_LEAD.get(db.now_sql());
    let mut tx = db.begin_write().await?;
    let job = on_tx!(&mut tx, |c| sqlx::query(sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .bind(lead)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if job == 1 && take_lead(&mut tx, lead, h.id, h.worker, lease_ms).await? {
        tx.commit().await?;
        return Ok(true);
    }
    tx.rollback().await?;
    Ok(false)
}

/// Who holds a job: the worker and which try it is on. A worker can hold a job twice
/// (its own lease expired under a slow try), so the try number tells them apart.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub id: &'a str,
    pub worker: &'a str,
    pub try_no: i32,
    pub lead_id: Option<&'a str>,
}

const HELD: &str = "id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'";

/// How a held job ends.
#[derive(Debug, Clone, Copy)]
pub enum Release<'e> {
    Done,
    /// Queued again, due `delay_ms` after the database's now.
    Retry {
        delay_ms: i64,
        error: &'e str,
    },
    Dead {
        error: &'e str,
    },
}

static RELEASE: PerBackend = PerBackend::new(|now| {
    format!(
        "UPDATE jobs SET state = $4, run_at = COALESCE({now} + $5, run_at), last_error = COALESCE($6, last_error), \
         locked_until = NULL, locked_by = NULL, updated_at = {now} WHERE {HELD}"
    )
});

/// Ends a job we still hold and frees its lead; false when we no longer held it.
pub async fn release(db: &Db, h: Holder<'_>, how: Release<'_>) -> StoreResult<bool> {
    let (state, delay, error) = match how {
        Release::Done => (JobState::Done, None, None),
        Release::Retry { delay_ms, error } => (JobState::Queued, Some(delay_ms), Some(error)),
        Release::Dead { error } => (JobState::Dead, None, Some(error)),
    };
    let sql = RELEASE.get(db.now_sql());
    let mut tx = db.begin().await?;
    let done = on_tx!(&mut tx, |c| sqlx::query(sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .bind(state.as_str())
        .bind(delay)
        .bind(error)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if done == 1 {
        on_tx!(&mut tx, |c| sqlx::query(FREE_LEAD)
            .bind(h.id)
            .bind(h.worker)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(done == 1)
}

/// Extends a live lease, and its lead's, to `lease_ms` from the database's now. False when
/// the lease was lost: it expired (another job of the lead may have started since) or
/// another worker took the job. The caller must then stop the job.
static RENEW_JOB: PerBackend =
    PerBackend::new(|now| format!("UPDATE jobs SET locked_until = {now} + $4 WHERE {HELD} AND locked_until >= {now}"));
static RENEW_LOCK: PerBackend = PerBackend::new(|now| {
    format!(
        "UPDATE lead_locks SET locked_until = {now} + $1 WHERE job_id = $2 AND locked_by = $3 \
         AND locked_until >= {now}"
    )
});

pub async fn renew(db: &Db, h: Holder<'_>, lease_ms: i64) -> StoreResult<bool> {
    let sql = RENEW_JOB.get(db.now_sql());
    let mut tx = db.begin().await?;
    let job = on_tx!(&mut tx, |c| sqlx::query(sql)
        .bind(h.id)
        .bind(h.worker)
        .bind(h.try_no)
        .bind(lease_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let mut held = job == 1;
    if held {
        // The lock keeps its own copy of the lease on purpose: a racing claim re-reads
        // only the lock row, so the row alone must say whether it is held. A job that
        // adopted its lead mid-run (`adopt_lead`) has one too, though its holder says none.
        let sql = RENEW_LOCK.get(db.now_sql());
        let lock = on_tx!(&mut tx, |c| sqlx::query(sql)
            .bind(lease_ms)
            .bind(h.id)
            .bind(h.worker)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        held = h.lead_id.is_none() || lock == 1;
    }
    if held {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(held)
}

/// On shutdown: every job `worker` still holds goes back to the queue, due at once, and
/// its lead locks are freed, so a restart (or another instance) resumes them without
/// waiting out the lease. The interrupted try does not count against the job.
pub async fn release_all(db: &Db, worker: &str) -> StoreResult<u64> {
    let now = db.now_sql();
    let sql = format!(
        "UPDATE jobs SET state = 'queued', run_at = {now}, locked_until = NULL, locked_by = NULL, \
         attempts = attempts - 1, updated_at = {now} WHERE locked_by = $1 AND state = 'running'"
    );
    let mut tx = db.begin().await?;
    let jobs = on_tx!(&mut tx, |c| sqlx::query(&sql)
        .bind(worker)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM lead_locks WHERE locked_by = $1")
        .bind(worker)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(jobs)
}

/// How long until a queued job or an expired lease becomes due, by the database's clock,
/// for the worker's sleep.
pub async fn next_due_in(db: &Db) -> StoreResult<Option<i64>> {
    static SQL: PerBackend = PerBackend::new(|now| {
        format!(
            "SELECT MIN(t) - {now} FROM ( \
               SELECT MIN(run_at) AS t FROM jobs WHERE state = 'queued' \
               UNION ALL SELECT MIN(locked_until) AS t FROM jobs WHERE state = 'running') d"
        )
    });
    let sql = SQL.get(db.now_sql());
    let t: Option<i64> = on_pool!(db, |p| sqlx::query_scalar(sql).fetch_one(p).await)?;
    Ok(t)
}

pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Vec<JobSummary>> {
    let sql = "SELECT id, kind, state, attempts, run_at, last_error FROM jobs WHERE lead_id = $1 \
               ORDER BY created_at, id";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?;
    Ok(rows)
}

/// Jobs that gave up, newest first, for the operator.
pub async fn dead(db: &Db, limit: i64) -> StoreResult<Vec<JobSummary>> {
    let sql = "SELECT id, kind, state, attempts, run_at, last_error FROM jobs WHERE state = 'dead' \
               ORDER BY updated_at DESC LIMIT $1";
    let rows = on_pool!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await)?;
    Ok(rows)
}

/// Jobs running now or queued to run within `within_ms` (tests wait for this to reach 0).
pub async fn pending_within(db: &Db, within_ms: i64) -> StoreResult<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM jobs WHERE state = 'running' OR (state = 'queued' AND run_at <= {} + $1)",
        db.now_sql()
    );
    let n: i64 = on_pool!(db, |p| sqlx::query_scalar(&sql).bind(within_ms).fetch_one(p).await)?;
    Ok(n)
}

/// Moves every queued job `by_ms` earlier: what the queue sees when time jumps forward.
/// Tests use it with a shifted clock to run days of follow-ups in milliseconds.
pub async fn bring_forward(db: &Db, by_ms: i64) -> StoreResult<u64> {
    let sql = "UPDATE jobs SET run_at = run_at - $1 WHERE state = 'queued'";
    let n = on_pool_write!(db, |p| sqlx::query(sql)
        .bind(by_ms)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
