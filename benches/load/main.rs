//! `cargo bench --bench load` (or `tools/bench`): leadgate's cost per request against
//! baselines measured in the same run, on SQLite and PostgreSQL, at 1, 16 and 64
//! connections; event-to-CRM latency; peak memory, binary size and start-up time.
//! Prints a table and writes `BENCHMARKS.md`. Load comes from Debian's `wrk`.

mod baselines;
mod latency;
mod report;
mod server;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use report::{Backend, Row};

const CONNECTIONS: [u32; 3] = [1, 16, 64];
const WEBHOOKS_PER_RUN: usize = 100_000;
const LATENCY_SAMPLES: usize = 200;

struct Opts {
    duration: Duration,
    postgres: Option<String>,
    out: PathBuf,
}

fn opts() -> Opts {
    let secs = std::env::var("LEADGATE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5u64);
    let postgres = match std::env::var("LEADGATE_BENCH_POSTGRES_URL") {
        Ok(v) if v.is_empty() || v == "off" => None,
        Ok(v) => Some(v),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    Opts {
        duration: Duration::from_secs(secs),
        postgres,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
    }
}

fn main() {
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

    let mut backends = vec![(
        Backend::Sqlite,
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Some(server) = &o.postgres {
        match fresh_postgres(server).await {
            Ok(url) => backends.push((Backend::Postgres, url)),
            Err(e) => report.notes.push(format!("PostgreSQL skipped: {e}")),
        }
    }
    let mut extra_databases = Vec::new();
    for (backend, url) in &backends {
        // The latency run gets a database of its own, so it is not measured behind the
        // load runs' backlog of queued jobs.
        let latency_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("latency.db").display()),
            Backend::Postgres => {
                let server = o.postgres.as_deref().unwrap_or_default();
                let fresh = fresh_postgres(server).await?;
                extra_databases.push(fresh.clone());
                fresh
            }
        };
        let b = Bench {
            backend: *backend,
            url,
            latency_url: &latency_url,
            binary: &binary,
            dir: dir.path(),
            admin_hash: &admin_hash,
            duration: o.duration,
        };
        measure_backend(&mut report, &b).await?;
    }
    report.total = started.elapsed();
    let text = report.render();
    println!("{text}");
    std::fs::write(&o.out, &text).map_err(|e| format!("cannot write {}: {e}", o.out.display()))?;
    eprintln!("wrote {}", o.out.display());
    if let Some(server) = &o.postgres {
        let load = backends
            .iter()
            .filter(|(b, _)| *b == Backend::Postgres)
            .map(|(_, u)| u.clone());
        for url in load.chain(extra_databases) {
            drop_postgres(server, &url).await;
        }
    }
    Ok(())
}

struct Bench<'a> {
    backend: Backend,
    url: &'a str,
    latency_url: &'a str,
    binary: &'a Path,
    dir: &'a Path,
    admin_hash: &'a str,
    duration: Duration,
}

async fn measure_backend(report: &mut report::Report, b: &Bench<'_>) -> Result<(), String> {
    let (backend, url, dir, duration) = (b.backend, b.url, b.dir, b.duration);
    let db = leadgate::store::Db::connect(url).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    for c in CONNECTIONS {
        let r = baselines::insert_loop(&db, c, duration).await?;
        eprintln!("{} baseline insert c={c}: {:.0} rows/s", backend.name(), r.rps);
        report.inserts.push((backend, c, r));
    }
    db.close().await;

    let port = server::free_port()?;
    let config = server::write_config(dir, url, port)?;
    let log = dir.join(format!("leadgate-{}.log", backend.name()));
    let srv = server::Server::start(b.binary, &config, port, &log, b.admin_hash).await?;
    report.startup.push((backend, srv.startup));
    let submit = dir.join("submit.lua");
    std::fs::write(&submit, wrk::submit_lua()).map_err(|e| e.to_string())?;
    for c in CONNECTIONS {
        let page = wrk::run(&format!("{}/c/demo", srv.base), c, duration, None)?;
        report.rows.push(Row::new(backend, "offer page", c, page));
        let posts = wrk::run(&srv.base, c, duration, Some(&submit))?;
        report.rows.push(Row::new(backend, "lead submit", c, posts));
        let hooks = dir.join(format!("webhooks-{}-{c}.lua", backend.name()));
        let lines = dir.join(format!("webhooks-{}-{c}.txt", backend.name()));
        write_webhooks(&lines, c)?;
        std::fs::write(&hooks, wrk::webhook_lua(&lines)).map_err(|e| e.to_string())?;
        let ingest = wrk::run(&srv.base, c, duration, Some(&hooks))?;
        if ingest.requests as usize > WEBHOOKS_PER_RUN {
            report.notes.push(format!(
                "{} webhook ingest c={c}: {} requests for {WEBHOOKS_PER_RUN} distinct events; the rest were duplicates",
                backend.name(),
                ingest.requests
            ));
        }
        report.rows.push(Row::new(backend, "webhook ingest", c, ingest));
        eprintln!("{} c={c} done", backend.name());
    }
    report.peak_rss.push((backend, srv.peak_rss_mib()));
    srv.stop();

    let l = latency::event_to_crm(b.latency_url, b.admin_hash, LATENCY_SAMPLES).await?;
    report.latency.push((backend, l));
    Ok(())
}

/// Signed sandbox webhooks (`signature TAB body`), one distinct event per line.
fn write_webhooks(path: &Path, c: u32) -> Result<(), String> {
    use secrecy::{ExposeSecret, SecretString};
    let keys = leadgate::context::Keys::derive(&SecretString::from(server::SECRET_KEY));
    let key = keys.sandbox.expose_secret();
    let t = chrono::Utc::now().timestamp().to_string();
    let mut out = String::with_capacity(WEBHOOKS_PER_RUN * 260);
    for i in 0..WEBHOOKS_PER_RUN {
        let body = format!(
            "{{\"id\":\"evt_bench_{c}_{i}_{t}\",\"type\":\"payment.updated\",\"created\":{t},\"data\":{{\"payment_id\":\"sbx_bench_{i}\",\"reference\":\"bench-{c}-{i}\",\"status\":\"APPROVED\"}}}}"
        );
        let tag = leadgate::domain::signing::tag(key, &[t.as_bytes(), b".", body.as_bytes()]);
        out.push_str(&format!("t={t},v1={}\t{body}\n", hex::encode(tag)));
    }
    std::fs::write(path, out).map_err(|e| e.to_string())
}

async fn fresh_postgres(server: &str) -> Result<String, String> {
    use sqlx::Connection;
    let name = format!("leadgate_bench_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(server).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut url = url::Url::parse(server).map_err(|e| e.to_string())?;
    url.set_path(&name);
    Ok(url.to_string())
}

async fn drop_postgres(server: &str, url: &str) {
    use sqlx::Connection;
    let Some(name) = url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_owned())
    else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}
