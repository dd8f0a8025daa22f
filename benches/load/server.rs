//! The real `leadgate` binary as a child process: its configuration, start-up time,
//! and peak memory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET_KEY: &str = "bench-secret-key-bench-secret-key-0123456789";

pub struct Server {
    child: Child,
    pub base: String,
    /// From spawn to the first 200 on `/healthz`.
    pub startup: Duration,
}

/// The abuse guards stay at their defaults (form token, fill time, honeypot); the load
/// comes from one address at machine speed, so that address's submit rate is raised by
/// `[[limits.raised]]`, and the offer's rate (all clients together) is raised too.
pub const BENCH_LIMITS: &str = "[limits]\nsubmit_per_offer = \"1000000/1s\"\n\
    [[limits.raised]]\naddresses = [\"127.0.0.1\"]\nsubmit_per_ip = \"1000000/1s\"\n";

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Writes the configuration: the demo offer on the sandbox gateway and built-in CRM
/// (both in-process, so no vendor latency is measured), the worker on.
pub fn write_config(dir: &Path, database_url: &str, port: u16, extra: &str) -> Result<PathBuf, String> {
    let path = dir.join(format!("leadgate-{port}.toml"));
    let text = format!(
        "bind = \"127.0.0.1:{port}\"\ndatabase_url = \"{database_url}\"\n\n[reconcile]\nenabled = false\n{BENCH_LIMITS}{extra}"
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

impl Server {
    pub async fn start(
        binary: &Path,
        config: &Path,
        port: u16,
        log: &Path,
        admin_hash: &str,
        env: &[(&str, String)],
    ) -> Result<Server, String> {
        let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("LEADGATE_SECRET_KEY", SECRET_KEY)
            .env("LEADGATE_ADMIN_PASSWORD_HASH", admin_hash)
            .env_remove("LEADGATE_CONFIG")
            .env_remove("LEADGATE_DATABASE_URL")
            .env_remove("LEADGATE_BIND")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            base,
            startup: Duration::ZERO,
        };
        let client = reqwest::Client::new();
        let health = format!("{}/healthz", server.base);
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = server.child.try_wait() {
                let said = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!("leadgate exited with {status}:\n{}", tail.join("\n")));
            }
            if client.get(&health).send().await.is_ok_and(|r| r.status() == 200) {
                server.startup = started.elapsed();
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(format!(
            "leadgate did not answer /healthz within 60 s; see {}",
            log.display()
        ))
    }

    /// One GET of `path` before any measurement, as a server in service has had: the first
    /// page render initializes what it needs once.
    pub async fn warm(&self, path: &str) -> Result<(), String> {
        let res = reqwest::get(format!("{}{path}", self.base))
            .await
            .map_err(|e| format!("warm-up GET {path}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("warm-up GET {path} answered {}", res.status()));
        }
        Ok(())
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
