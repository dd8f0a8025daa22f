//! Growth check: the offer page, the lead submit and real-path webhook ingest at 16
//! connections with 10 k and 1 M leads (and their attempts, CRM deal records,
//! webhook events and jobs) already in the database, seeded in bulk in one transaction.
//! A query missing its index shows as a ratio to the empty-database figure that falls
//! with size.

use std::time::{Duration, Instant};

use crate::ingest::{self, Ingest};
use crate::report::Backend;
use crate::seed::{self, Mix};
use crate::server::{self, Server};
use crate::wrk::{self, Run};
use crate::Bench;

pub const CONNECTIONS: u32 = 16;

pub struct Growth {
    pub backend: Backend,
    pub leads: u64,
    pub seeded_in: Duration,
    pub page: Run,
    pub submit: Run,
    pub ingest: Ingest,
    pub peak_rss: Option<f64>,
}

/// A database already holding `leads` leads of history, not yet served.
pub struct Seeded {
    backend: Backend,
    leads: u64,
    url: String,
    port: u16,
    seeded_in: Duration,
}

/// Seeds a fresh database; owns its arguments, so both backends can seed at once.
pub async fn seed(backend: Backend, leads: u64, url: String, batch: u32) -> Result<Seeded, String> {
    let db = leadgate::store::Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    let port = server::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    seed::seed(&db, batch, leads, Mix::History, &base).await?;
    let seeded_in = started.elapsed();
    db.close().await;
    eprintln!(
        "{} growth: {leads} leads seeded in {:.1} s",
        backend.name(),
        seeded_in.as_secs_f64()
    );
    Ok(Seeded {
        backend,
        leads,
        url,
        port,
        seeded_in,
    })
}

pub async fn measure(b: &mut Bench<'_>, s: Seeded, duration: Duration) -> Result<Growth, String> {
    let Seeded {
        backend,
        leads,
        url,
        port,
        seeded_in,
    } = s;
    let db = leadgate::store::Db::connect(&url).await.map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let config = server::write_config(b.dir, &url, port, "")?;
    let log = b.dir.join(format!("leadgate-{}-{leads}.log", backend.name()));
    let srv = Server::start(b.binary, &config, port, &log, b.admin_hash, &[]).await?;
    srv.warm("/c/demo").await?;
    let page = wrk::run(&format!("{base}/c/demo"), CONNECTIONS, duration, None)?;
    let submit = wrk::run(
        &base,
        CONNECTIONS,
        duration,
        Some(&crate::submit::write_lua(b.dir, "demo")?),
    )?;
    let target = ingest::Target {
        db: &db,
        base: &base,
        dir: b.dir,
        batch: b.next_batch(),
        live: b.live_per_run(),
    };
    let ingest = ingest::run(&target, CONNECTIONS, duration).await?;
    let peak_rss = srv.peak_rss_mib();
    srv.stop();
    db.close().await;
    Ok(Growth {
        backend,
        leads,
        seeded_in,
        page,
        submit,
        ingest,
        peak_rss,
    })
}
