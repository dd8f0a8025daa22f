//! What the database itself does wrong: a disk that fills up, a server that stops. The
//! real binary, loopback only, every loop bounded. Both need tools a plain `cargo test`
//! may lack (root for a tmpfs; PostgreSQL's initdb): they skip without them, unless
//! `LEADGATE_TEST_REQUIRE_FAULT_TOOLS=1` (CI) makes that a failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::{client, fault_tool_available, post_event, sandbox_event, submit, Instance, Launch};
use crate::support::eventually;

const CONFIG: &str = r#"
[worker]
idle_poll = "200ms"
lease = "2s"

[reconcile]
enabled = false

[[offers]]
slug = "demo"
title = "Curso"
price_minor = 19900000
currency = "COP"
followup_delays = ["1h"]
"#;

/// The email of every lead in the database.
async fn stored_emails(db: &leadgate::store::Db) -> HashSet<String> {
    leadgate::store::leads::all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.contact.email.to_string())
        .collect()
}

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.path().to_path_buf(), dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system with 128 KiB files until it refuses more; returns them.
fn fill(dir: &Path) -> Vec<PathBuf> {
    let chunk = vec![0xA5u8; 128 * 1024];
    let mut files = Vec::new();
    for i in 0..10_000 {
        let p = dir.join(format!("ballast-{i}"));
        if std::fs::write(&p, &chunk).is_err() {
            let _ = std::fs::remove_file(&p);
            break;
        }
        files.push(p);
    }
    files
}

/// The Spanish "your details are safe" title (i18n `saved_title`).
const SAVED: &str = "Tus datos están a salvo";

#[derive(Default)]
struct Flood {
    leads_303: Vec<String>,
    /// Refused with the page that tells the customer their details are saved.
    leads_saved: Vec<String>,
    events_200: Vec<String>,
    unavailable: usize,
    other: Vec<u16>,
    slowest_refusal: Duration,
}

/// Leads and webhooks from several clients until enough 503s were seen (or 40 s passed).
async fn flood(server: &Instance) -> Flood {
    let out = Arc::new(Mutex::new(Flood::default()));
    let http = client();
    let until = Instant::now() + Duration::from_secs(40);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (out, http) = (out.clone(), http.clone());
            let (form, hook) = (server.url("/c/demo"), server.url("/webhooks/sandbox"));
            tokio::spawn(async move {
                for i in 0.. {
                    if Instant::now() > until || out.lock().unwrap().unavailable >= 60 {
                        break;
                    }
                    let started = Instant::now();
                    let (status, what) = if w % 4 == 3 {
                        let reference = uuid::Uuid::now_v7().to_string();
                        let (body, sig) = sandbox_event(&format!("evt_full_{w}_{i}"), &reference);
                        (post_event(&http, &hook, &body, &sig).await, reference)
                    } else {
                        let email = format!("full-{w}-{i}@example.com");
                        let fields = [("name", "Fault Customer"), ("email", &email), ("phone", "3001234567")];
                        match crate::process::guarded_post(&http, &form, &fields).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                // The page that says the details are safe is an acknowledgement too.
                                if status == 503 && r.text().await.unwrap_or_default().contains(SAVED) {
                                    out.lock().unwrap().leads_saved.push(email);
                                    continue;
                                }
                                (Some(status), email)
                            }
                            Err(_) => (None, email),
                        }
                    };
                    let mut o = out.lock().unwrap();
                    match status {
                        Some(303) => o.leads_303.push(what),
                        Some(200) => o.events_200.push(what),
                        Some(503) => {
                            o.unavailable += 1;
                            o.slowest_refusal = o.slowest_refusal.max(started.elapsed());
                        }
                        Some(s) => o.other.push(s),
                        None => o.other.push(0),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_sqlite_loses_nothing_acknowledged_and_recovers() {
    let mounted = Tmpfs::mount("24m");
    if !fault_tool_available(mounted.is_some(), "mounting a tmpfs (needs root)") {
        return;
    }
    let fs = mounted.unwrap();
    let logs = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/leadgate.db", fs.0.display());
    let launch = Launch {
        config: format!("database_url = \"{db_url}\"\n{CONFIG}"),
        ..Launch::default()
    };
    let mut server = Instance::start(logs.path(), "full", launch).await;
    let http = client();

    // The disk fills up, then a little is freed: the flood fills the rest.
    let mut ballast = fill(&fs.0);
    assert!(ballast.len() > 8, "the tmpfs took only {} ballast files", ballast.len());
    for p in ballast.drain(..40) {
        std::fs::remove_file(p).unwrap();
    }
    let got = flood(&server).await;
    assert!(
        got.other.is_empty(),
        "only 303/200 or 503 while the disk is full: {:?}",
        got.other
    );
    assert!(
        got.unavailable >= 60,
        "the disk never filled: {} refusals",
        got.unavailable
    );
    assert!(
        !got.leads_303.is_empty() && !got.events_200.is_empty(),
        "some writes were acknowledged first: {} leads, {} events\n{}",
        got.leads_303.len(),
        got.events_200.len(),
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        got.slowest_refusal < Duration::from_secs(3),
        "a refusal took {:?}",
        got.slowest_refusal
    );

    // Full and idle: the health check says why, and nothing spins.
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("disk full"));
    let cpu_before = server.cpu_time();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let spent = server.cpu_time() - cpu_before;
    assert!(
        spent < Duration::from_millis(600),
        "busy while the disk is full: {spent:?} CPU in 4 s"
    );

    // Space comes back: writes resume without a restart.
    for p in ballast.drain(..) {
        std::fs::remove_file(p).unwrap();
    }
    let mut after = Vec::new();
    eventually("leads to be taken again once space is free", || {
        let (http, url) = (http.clone(), server.url("/c/demo"));
        let email = format!("after-{}@example.com", after.len());
        after.push(email.clone());
        async move { submit(&http, &url, &email).await == Some(303) }
    })
    .await;
    let accepted_after = after.pop().unwrap();
    assert_eq!(http.get(server.url("/healthz")).send().await.unwrap().status(), 200);

    // A hard stop, then every acknowledged lead and event is there.
    server.kill();
    server.restart().await;
    let db = leadgate::store::Db::connect(&db_url).await.unwrap();
    let stored = stored_emails(&db).await;
    let lost: Vec<_> = got
        .leads_303
        .iter()
        .chain(&got.leads_saved)
        .chain([&accepted_after])
        .filter(|e| !stored.contains(*e))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged leads lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    for reference in &got.events_200 {
        let n = leadgate::store::inbox::count_for_reference(&db, "sandbox", reference)
            .await
            .unwrap();
        assert_eq!(n, 1, "acknowledged event for {reference} lost");
    }
    db.close().await;
    eprintln!(
        "disk full: {} leads redirected, {} told they were saved, {} events acknowledged, {} refused with 503, \
         slowest refusal {:?}",
        got.leads_303.len(),
        got.leads_saved.len(),
        got.events_200.len(),
        got.unavailable,
        got.slowest_refusal
    );
}

/// A PostgreSQL cluster of the test's own, on its own port, to stop and start at will.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn bindir() -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        found.sort();
        found.pop()
    }

    /// As root, PostgreSQL's tools must run as the `postgres` user.
    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn create() -> Option<Cluster> {
        let bin = Self::bindir()?;
        let dir = tempfile::Builder::new().prefix("leadgate-pg-").tempdir().ok()?;
        let data = dir.path().join("data");
        if is_root() {
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !owned {
                return None;
            }
        }
        let c = Cluster {
            bin,
            data,
            port: crate::process::free_port(),
            _dir: dir,
        };
        let data = c.data.to_string_lossy().into_owned();
        c.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres"])
            .then_some(c)
    }

    fn start(&self) -> bool {
        let data = self.data.to_string_lossy().into_owned();
        let sock = self.data.to_string_lossy().into_owned();
        let opts = format!("-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=on", self.port);
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"])
    }

    /// Immediate stop: no checkpoint, clients cut off, as in a crash.
    fn stop(&self) {
        let data = self.data.to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_answers_within_a_second_and_loses_nothing() {
    let cluster = Cluster::create();
    if !fault_tool_available(cluster.is_some(), "PostgreSQL's initdb") {
        return;
    }
    let cluster = cluster.unwrap();
    assert!(cluster.start(), "the test's own PostgreSQL did not start");
    let logs = tempfile::tempdir().unwrap();
    let launch = Launch {
        config: format!("database_url = \"{}\"\n{CONFIG}", cluster.url()),
        ..Launch::default()
    };
    let server = Instance::start(logs.path(), "pg-down", launch).await;
    let http = client();
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let email = format!("before-stop-{i}@example.com");
        assert_eq!(submit(&http, &server.url("/c/demo"), &email).await, Some(303));
        acknowledged.push(email);
    }

    cluster.stop();
    // A customer, a gateway and a load balancer each get a prompt, honest answer.
    let started = Instant::now();
    let form = [
        ("name", "Ana Gómez"),
        ("email", "down@example.com"),
        ("phone", "3001234567"),
    ];
    let page = crate::process::guarded_post(&http, &server.url("/c/demo"), &form)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let page_took = started.elapsed();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Service unavailable"));
    let started = Instant::now();
    let (body, sig) = sandbox_event("evt_while_down", &uuid::Uuid::now_v7().to_string());
    assert_eq!(
        post_event(&http, &server.url("/webhooks/sandbox"), &body, &sig).await,
        Some(503)
    );
    let hook_took = started.elapsed();
    let started = Instant::now();
    assert_eq!(http.get(server.url("/healthz")).send().await.unwrap().status(), 503);
    let health_took = started.elapsed();
    for (what, took) in [("form", page_took), ("webhook", hook_took), ("healthz", health_took)] {
        assert!(took < Duration::from_millis(2500), "{what} took {took:?} to refuse");
    }

    // Back up: the same process takes writes again, and nothing acknowledged is missing.
    assert!(cluster.start(), "the test's own PostgreSQL did not restart");
    eventually("writes to resume after the database is back", || {
        let (http, url) = (http.clone(), server.url("/c/demo"));
        async move { submit(&http, &url, "after-restart@example.com").await == Some(303) }
    })
    .await;
    acknowledged.push("after-restart@example.com".into());
    let db = leadgate::store::Db::connect(&cluster.url()).await.unwrap();
    let stored = stored_emails(&db).await;
    for email in &acknowledged {
        assert!(stored.contains(email), "acknowledged lead {email} lost");
    }
    db.close().await;
}
