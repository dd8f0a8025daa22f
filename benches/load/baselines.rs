//! What leadgate's figures are divided by, measured in the same run: an actix-web
//! handler returning a fixed string, and single-row INSERT + commit loops on the same
//! database with leadgate's own pool and durability settings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use leadgate::store::Db;

/// Serves `GET /` → "ok" on `port` from a thread of its own until the process ends.
pub fn spawn_fixed_string_server(port: u16) {
    std::thread::spawn(move || {
        let sys = actix_web::rt::System::new();
        sys.block_on(async move {
            let server = HttpServer::new(|| {
                App::new().route(
                    "/",
                    web::get().to(|| async { HttpResponse::Ok().content_type("text/plain").body("ok") }),
                )
            })
            .bind(("127.0.0.1", port));
            if let Ok(s) = server {
                let _ = s.run().await;
            }
        });
    });
}

pub struct InsertRun {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `concurrency` tasks each committing one-row transactions for `duration`.
pub async fn insert_loop(db: &Db, concurrency: u32, duration: Duration) -> Result<InsertRun, String> {
    let create = "CREATE TABLE IF NOT EXISTS bench_baseline (id TEXT PRIMARY KEY, payload TEXT NOT NULL, \
                  created_at BIGINT NOT NULL)";
    match db {
        // leadgate's SQLite connection syncs the WAL once per group of commits (group
        // commit); the baseline is the plain loop, one fsync per commit on its own.
        Db::Sqlite(s) => {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(s.pool())
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(create).execute(s.pool()).await.map(|_| ())
        }
        Db::Postgres(p) => sqlx::query(create).execute(p).await.map(|_| ()),
    }
    .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (db, done) = (db.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                if insert_one(&db).await.is_ok() {
                    latencies.push(t.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())?);
    }
    let secs = started.elapsed().as_secs_f64().max(duration.as_secs_f64());
    all.sort();
    Ok(InsertRun {
        rps: done.load(Ordering::Relaxed) as f64 / secs,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}

async fn insert_one(db: &Db) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO bench_baseline (id, payload, created_at) VALUES ($1, $2, $3)";
    let id = uuid::Uuid::now_v7().to_string();
    let payload = "{\"id\":\"evt\",\"type\":\"payment.updated\",\"data\":{\"status\":\"APPROVED\"}}";
    let now = chrono::Utc::now().timestamp_millis();
    match db {
        Db::Sqlite(s) => {
            let mut tx = s.pool().begin().await?;
            sqlx::query(sql)
                .bind(id)
                .bind(payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            sqlx::query(sql)
                .bind(id)
                .bind(payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    }
}

pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
