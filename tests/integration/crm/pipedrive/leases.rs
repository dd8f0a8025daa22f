//! Leases around slow Pipedrive calls: a lease lost mid-job stops the job, SIGTERM hands
//! running jobs back so a restart resumes them at once, and a host whose clock runs ahead
//! does not take live leases. Every claim of "once" counts creates on the fake, which
//! would store a duplicate as happily as the first.

use super::*;
use crate::process::{client, fault_tool_available, Instance, Launch};
use crate::support::database;
use leadgate::store::jobs::JobState;
use leadgate::store::Db;

both_backends!(
    a_lease_lost_mid_job_stops_the_job,
    sigterm_during_slow_crm_calls_resumes_at_once
);

/// Runs one statement against the app's database, as an operator (or another host) would.
async fn sql(db: &Db, statement: &str) -> u64 {
    match db {
        Db::Sqlite(p) => sqlx::query(statement).execute(p.pool()).await.unwrap().rows_affected(),
        Db::Postgres(p) => sqlx::query(statement).execute(p).await.unwrap().rows_affected(),
    }
}

fn creates(fake: &FakePipedrive, what: &str) -> usize {
    fake.seen("POST", &format!("/api/v2/{what}")).len()
}

async fn a_lease_lost_mid_job_stops_the_job(backend: Backend) {
    let fake = FakePipedrive::start().await;
    fake.faults(|f| f.slow_writes = Some(Duration::from_secs(3)));
    let app = app_on(backend, &fake, "", 4).await;
    submit(&app, "Lucía Pérez", "lucia@example.com", "3001234567").await;
    eventually("the person create to reach the CRM", || async {
        creates(&fake, "persons") == 1
    })
    .await;
    // Another worker takes the job while the slow call is out (a lease that looked expired).
    let stolen = sql(
        &app.ctx.db,
        "UPDATE jobs SET locked_by = 'thief', locked_until = 9000000000000 \
         WHERE kind = 'crm_sync' AND state = 'running'",
    )
    .await;
    assert_eq!(stolen, 1, "the CRM sync was running");
    // The person answer arrives after 3 s; a job that kept going would create the deal next.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(creates(&fake, "deals"), 0, "the job went on after losing its lease");

    // The thief dies: its lease runs out and the job runs again, creating each thing once.
    fake.faults(|f| f.slow_writes = None);
    sql(
        &app.ctx.db,
        "UPDATE jobs SET locked_until = 0 WHERE locked_by = 'thief'",
    )
    .await;
    eventually("the deal to be created", || async { creates(&fake, "deals") == 1 }).await;
    app.settle().await;
    assert_eq!(creates(&fake, "persons"), 1, "one person");
    assert_eq!(creates(&fake, "deals"), 1, "one deal");
}

fn binary_config(db_url: &str, fake: &FakePipedrive, lease: &str) -> String {
    format!(
        "database_url = \"{db_url}\"\ninline_crm_deadline = \"100ms\"\n\n[worker]\nidle_poll = \"200ms\"\n\
         lease = \"{lease}\"\nshutdown_grace = \"1s\"\n\n[reconcile]\nenabled = false\n\n[[offers]]\n\
         slug = \"demo\"\ntitle = \"Curso\"\nprice_minor = 19900000\ncurrency = \"COP\"\npipeline = \"Sales\"\n\
         stage = \"Checkout started\"\nfollowup_delays = [\"1h\"]\n\n{}",
        fake.toml("")
    )
}

fn launch(config: String) -> Launch {
    Launch {
        config,
        env: vec![("LEADGATE_PIPEDRIVE_API_TOKEN".into(), TOKEN.into())],
    }
}

/// The `i`-th customer: an email and a phone of their own, so each is a new person.
async fn submit_to(instance: &Instance, i: usize, tag: &str) {
    let (email, phone) = (format!("{tag}-{i}@example.com"), format!("300555{i:04}"));
    let status = crate::process::submit_contact(&client(), &instance.url("/c/demo"), &email, &phone).await;
    assert_eq!(status, Some(303), "{email}");
}

async fn sigterm_during_slow_crm_calls_resumes_at_once(backend: Backend) {
    let fake = FakePipedrive::start().await;
    fake.faults(|f| f.slow_writes = Some(Duration::from_secs(4)));
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _db_dir) = database(&backend).await;
    // A minute's lease: waiting it out would be plain to see.
    let mut server = Instance::start(dir.path(), "term", launch(binary_config(&db_url, &fake, "60s"))).await;
    for i in 0..3 {
        submit_to(&server, i, "term").await;
    }
    eventually("three person creates in flight", || async {
        creates(&fake, "persons") == 3
    })
    .await;
    server.terminate();
    let exited = server.exited_within(Duration::from_secs(8)).await;
    assert!(
        exited.is_some_and(|s| s.success()),
        "clean exit within the grace: {exited:?}"
    );
    let db = Db::connect(&db_url).await.unwrap();
    for lead in leadgate::store::leads::all(&db).await.unwrap() {
        for job in leadgate::store::jobs::for_lead(&db, &lead.id).await.unwrap() {
            assert_ne!(job.state, JobState::Running, "{} still held after shutdown", job.kind);
        }
    }

    fake.faults(|f| f.slow_writes = None);
    server.restart().await;
    let restarted = std::time::Instant::now();
    eventually("every deal after the restart", || async {
        creates(&fake, "deals") == 3
    })
    .await;
    assert!(
        restarted.elapsed() < Duration::from_secs(20),
        "resumed only after {:?}, as if waiting out the lease",
        restarted.elapsed()
    );
    assert_eq!(creates(&fake, "persons"), 3, "persons found again, not created twice");
    assert_eq!(fake.deals().len(), 3);
    db.close().await;
}

/// Two instances on one PostgreSQL database; one host's clock runs two minutes ahead.
/// With leases on host clocks, that host saw every lease the other wrote as expired
/// and ran the job a second time beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_clock_runs_ahead_never_runs_a_job_twice() {
    let Some(backend) = Backend::postgres() else { return };
    let libfaketime = libfaketime();
    if !fault_tool_available(libfaketime.is_some(), "libfaketime (Debian package faketime)") {
        return;
    }
    let fake = FakePipedrive::start().await;
    fake.faults(|f| f.slow_writes = Some(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _) = database(&backend).await;
    let config = binary_config(&db_url, &fake, "3s");
    let honest = Instance::start(dir.path(), "honest", launch(config.clone())).await;
    let mut ahead = launch(config);
    let preload = libfaketime.unwrap_or_default().to_string_lossy().into_owned();
    ahead.env.push(("LD_PRELOAD".into(), preload));
    ahead.env.push(("FAKETIME".into(), "+120s".into()));
    let ahead = Instance::start(dir.path(), "ahead", ahead).await;
    // The fault is really there: that host's own Date header runs two minutes ahead.
    let res = client().get(ahead.url("/healthz")).send().await.unwrap();
    let date = res.headers()["date"].to_str().unwrap().to_owned();
    let its_now = chrono::DateTime::parse_from_rfc2822(&date).unwrap();
    let skew = its_now.timestamp() - chrono::Utc::now().timestamp();
    assert!((100..=140).contains(&skew), "the skewed host is {skew} s off, not 120");
    for i in 0..8 {
        submit_to(&honest, i, "skew").await;
    }
    eventually("every deal", || async { creates(&fake, "deals") >= 8 }).await;
    let db = Db::connect(&db_url).await.unwrap();
    eventually("the CRM syncs to finish", || async {
        let mut done = true;
        for lead in leadgate::store::leads::all(&db).await.unwrap() {
            let jobs = leadgate::store::jobs::for_lead(&db, &lead.id).await.unwrap();
            done &= jobs
                .iter()
                .filter(|j| j.kind == "crm_sync")
                .all(|j| j.state == JobState::Done);
        }
        done
    })
    .await;
    assert_eq!(creates(&fake, "persons"), 8, "each person created once");
    assert_eq!(creates(&fake, "deals"), 8, "each deal created once");
    // The fake files a create on arrival, so a second run beside the first finds what the
    // first created; only the claims show it. Nothing failed here: one claim per job.
    for lead in leadgate::store::leads::all(&db).await.unwrap() {
        for job in leadgate::store::jobs::for_lead(&db, &lead.id).await.unwrap() {
            if job.kind == "crm_sync" {
                assert_eq!(job.attempts, 1, "a CRM sync was claimed twice: {:?}", job.last_error);
            }
        }
    }
    let searches = fake.seen("GET", "/api/v2/persons/search").len();
    assert!(searches <= 16, "{searches} person searches for 8 leads: jobs ran twice");
    db.close().await;
}

/// libfaketime's preload library, wherever the distribution keeps it.
fn libfaketime() -> Option<std::path::PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain([std::path::PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists())
}
