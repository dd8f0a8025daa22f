//! `cargo bench --bench load` (or `tools/bench`): leadgate's cost per request against
//! baselines measured in the same run, on SQLite and PostgreSQL, at 1, 16 and 64
//! connections: the offer page, the lead submit through the form's guards, real-path
//! webhook ingest; the customer's wait behind slow vendor fakes; event-to-CRM latency
//! timed server-side; a growth check with 10 k and 1 M leads; peak memory, binary size
//! and start-up time. Prints the report and writes `BENCHMARKS.md`. Load comes from
//! Debian's `wrk`.

mod baselines;
mod customer_wait;
mod databases;
mod fakes;
mod growth;
mod ingest;
mod latency;
mod report;
mod seed;
mod server;
mod stamps;
mod submit;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use report::{Backend, Row};

const CONNECTIONS: [u32; 3] = [1, 16, 64];
const LATENCY_SAMPLES: usize = 200;
const GROWTH_LEADS: [u64; 2] = [10_000, 1_000_000];

struct Opts {
    duration: Duration,
    postgres: Option<String>,
    growth: bool,
    /// `LEADGATE_BENCH_ONLY=main,wait,growth`: some parts only (the report says which ran).
    only: Option<String>,
    out: PathBuf,
}

fn opts() -> Opts {
    let secs = std::env::var("LEADGATE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let postgres = match std::env::var("LEADGATE_BENCH_POSTGRES_URL") {
        Ok(v) if v.is_empty() || v == "off" => None,
        Ok(v) => Some(v),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    Opts {
        duration: Duration::from_secs(secs.max(1)),
        postgres,
        growth: std::env::var("LEADGATE_BENCH_GROWTH").map_or(true, |v| v != "off"),
        only: std::env::var("LEADGATE_BENCH_ONLY").ok().filter(|v| !v.is_empty()),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
    }
}

fn main() {
    // Before anything logs: the in-process app's `webhook stored` events are timestamped.
    stamps::install();
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(opts())) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// What every workload needs: the binary, a scratch directory, fresh databases.
pub struct Bench<'a> {
    binary: &'a Path,
    dir: &'a Path,
    admin_hash: &'a str,
    duration: Duration,
    dbs: databases::Databases,
    batch: u32,
}

impl Bench<'_> {
    /// A new namespace for seeded ids.
    fn next_batch(&mut self) -> u32 {
        self.batch += 1;
        self.batch
    }

    /// Live attempts seeded per webhook run: more than a run at 64 connections sends.
    fn live_per_run(&self) -> u64 {
        (self.duration.as_secs() * 4000).max(4000)
    }
}

async fn run(o: Opts) -> Result<(), String> {
    let started = Instant::now();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_leadgate"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let admin_hash = leadgate::startup::hash_password("bench admin password").map_err(|e| e.to_string())?;
    let mut report = report::Report::new(&binary, o.duration);

    let fixed_port = server::free_port()?;
    baselines::spawn_fixed_string_server(fixed_port);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in CONNECTIONS {
        let r = wrk::run(&format!("http://127.0.0.1:{fixed_port}/"), c, o.duration, None)?;
        eprintln!("baseline fixed string c={c}: {:.0} req/s", r.rps);
        report.fixed.push((c, r));
    }

    let mut backends = vec![Backend::Sqlite];
    if let Some(server) = &o.postgres {
        match sqlx::PgPool::connect(server).await {
            Ok(p) => {
                p.close().await;
                backends.push(Backend::Postgres);
            }
            Err(e) => report.notes.push(format!("PostgreSQL skipped: {e}")),
        }
    }
    let mut b = Bench {
        binary: &binary,
        dir: dir.path(),
        admin_hash: &admin_hash,
        duration: o.duration,
        dbs: databases::Databases::new(dir.path().to_path_buf(), o.postgres.clone()),
        batch: 0,
    };
    let part = |name: &str| {
        o.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|p| p.trim() == name))
    };
    let parts = Parts {
        main: part("main"),
        wait: part("wait"),
        growth: o.growth && part("growth"),
    };
    if let Some(only) = &o.only {
        report
            .notes
            .push(format!("Only these parts ran (LEADGATE_BENCH_ONLY): {only}."));
    }
    let result = measure_all(&mut report, &mut b, &backends, parts).await;
    b.dbs.drop_all().await;
    result?;
    report.total = started.elapsed();
    let text = report.render();
    println!("{text}");
    std::fs::write(&o.out, &text).map_err(|e| format!("cannot write {}: {e}", o.out.display()))?;
    eprintln!("wrote {}", o.out.display());
    Ok(())
}

struct Parts {
    main: bool,
    wait: bool,
    growth: bool,
}

async fn measure_all(
    report: &mut report::Report,
    b: &mut Bench<'_>,
    backends: &[Backend],
    parts: Parts,
) -> Result<(), String> {
    if parts.main {
        for backend in backends {
            measure_backend(report, b, *backend).await?;
        }
    }
    if parts.wait {
        let url = b.dbs.fresh(Backend::Sqlite).await?;
        let wait = customer_wait::measure(b.binary, b.dir, &url, b.admin_hash).await?;
        report.wait = Some(wait);
        eprintln!("customer wait done");
    }
    if parts.growth {
        for leads in GROWTH_LEADS {
            // Both backends seed at once (one core each); then each is measured alone.
            let mut seeding = Vec::new();
            for backend in backends {
                let url = b.dbs.fresh(*backend).await?;
                seeding.push(tokio::spawn(growth::seed(*backend, leads, url, b.next_batch())));
            }
            let mut seeded = Vec::new();
            for s in seeding {
                seeded.push(s.await.map_err(|e| e.to_string())??);
            }
            for s in seeded {
                let duration = b.duration;
                report.growth.push(growth::measure(b, s, duration).await?);
            }
        }
    } else {
        report.notes.push("Growth check skipped.".into());
    }
    Ok(())
}

async fn measure_backend(report: &mut report::Report, b: &mut Bench<'_>, backend: Backend) -> Result<(), String> {
    let duration = b.duration;
    let url = b.dbs.fresh(backend).await?;
    let db = leadgate::store::Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    for c in CONNECTIONS {
        let r = baselines::insert_loop(&db, c, duration).await?;
        eprintln!("{} baseline insert c={c}: {:.0} rows/s", backend.name(), r.rps);
        report.inserts.push((backend, c, r));
    }

    let port = server::free_port()?;
    let config = server::write_config(b.dir, &url, port, "")?;
    let log = b.dir.join(format!("leadgate-{}.log", backend.name()));
    let srv = server::Server::start(b.binary, &config, port, &log, b.admin_hash, &[]).await?;
    report.startup.push((backend, srv.startup));
    srv.warm("/c/demo").await?;
    for c in CONNECTIONS {
        let page = wrk::run(&format!("{}/c/demo", srv.base), c, duration, None)?;
        report.rows.push(Row::new(backend, "offer page", c, page));
    }
    for c in CONNECTIONS {
        let script = submit::write_lua(b.dir, "demo")?;
        let posts = wrk::run(&srv.base, c, duration, Some(&script))?;
        report.rows.push(Row::new(backend, "lead submit", c, posts));
    }
    eprintln!("{} page and submit done", backend.name());
    for c in CONNECTIONS {
        let target = ingest::Target {
            db: &db,
            base: &srv.base,
            dir: b.dir,
            batch: b.next_batch(),
            live: b.live_per_run(),
        };
        let i = ingest::run(&target, c, duration).await?;
        eprintln!(
            "{} ingest c={c}: {:.0} req/s, {} stored, {} applied at the end",
            backend.name(),
            i.run.rps,
            i.stored,
            i.applied_at_end
        );
        report
            .rows
            .push(Row::new(backend, "webhook ingest (real path)", c, i.run.clone()));
        report.ingest.push((backend, c, i));
    }
    report.peak_rss.push((backend, "main workloads", srv.peak_rss_mib()));
    srv.stop();
    db.close().await;

    let latency_url = b.dbs.fresh(backend).await?;
    let l = latency::event_to_crm(&latency_url, b.admin_hash, LATENCY_SAMPLES).await?;
    report.latency.push((backend, l));
    Ok(())
}
