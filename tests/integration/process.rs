//! The real `leadgate` binary as a child process, for faults no in-process test can make:
//! SIGKILL, SIGTERM, a skewed host clock, a full disk. Loopback only; every wait bounded.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SECRET_KEY: &str = "fault-secret-key-fault-secret-key-0123456789";
/// Set by CI: fault tests that need root (tmpfs), faketime or initdb fail instead of skipping.
pub const FAULT_TOOLS_REQUIRED_ENV: &str = "LEADGATE_TEST_REQUIRE_FAULT_TOOLS";

/// Skips (returns false) when a fault tool is missing, unless CI requires it.
pub fn fault_tool_available(ok: bool, what: &str) -> bool {
    if !ok {
        if std::env::var(FAULT_TOOLS_REQUIRED_ENV).is_ok_and(|v| v == "1") {
            panic!("{FAULT_TOOLS_REQUIRED_ENV}=1 but {what} is not available");
        }
        eprintln!("skipping: {what} is not available");
    }
    ok
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to start one process.
#[derive(Clone, Default)]
pub struct Launch {
    /// Everything but `bind`, which the harness sets.
    pub config: String,
    /// Extra environment, e.g. a CRM token, or `LD_PRELOAD` of libfaketime.
    pub env: Vec<(String, String)>,
}

/// One `leadgate serve` process on a port of its own.
pub struct Instance {
    child: Child,
    pub port: u16,
    config: PathBuf,
    pub log: PathBuf,
    launch: Launch,
}

impl Instance {
    pub async fn start(dir: &Path, name: &str, launch: Launch) -> Instance {
        let mut i = Self::spawn_only(dir, name, launch);
        i.wait_healthy().await;
        i
    }

    /// Starts without waiting for `/healthz` (e.g. when the database is meant to be down).
    pub fn spawn_only(dir: &Path, name: &str, launch: Launch) -> Instance {
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "bind = \"127.0.0.1:{port}\"\n{}{}",
                launch.config,
                guards_off(&launch.config)
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = spawn(&config, &log, &launch);
        Instance {
            child,
            port,
            config,
            log,
            launch,
        }
    }

    pub async fn wait_healthy(&mut self) {
        let url = self.url("/healthz");
        for _ in 0..800 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("leadgate exited with {status}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("leadgate did not become healthy:\n{}", self.log_text());
    }

    /// SIGKILL: no shutdown code runs, as in a power cut or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as systemd or a container runtime sends on stop.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit on its own; None if it is still running after `within`.
    pub async fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub async fn restart(&mut self) {
        self.child = spawn(&self.config, &self.log, &self.launch);
        self.wait_healthy().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU time (user + system) the process has used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path, log: &Path, launch: &Launch) -> Child {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    // The binary itself is the child (no wrapper process), so a kill reaches it.
    Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        // What it writes beside itself (a one-time admin password on PostgreSQL) stays in
        // the test's directory.
        .current_dir(config.parent().unwrap_or(Path::new(".")))
        .env("LEADGATE_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn,leadgate=info")
        .env_remove("LEADGATE_CONFIG")
        .env_remove("LEADGATE_DATABASE_URL")
        .env_remove("LEADGATE_BIND")
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Fault tests flood one address with instant submits: the abuse guards (tested on their
/// own) are switched off unless the test's configuration names them.
fn guards_off(config: &str) -> String {
    let mut extra = String::new();
    if !config.contains("[limits]") {
        extra.push_str("\n[limits]\nsubmit_per_ip = \"off\"\nsubmit_per_offer = \"off\"\n");
    }
    if !config.contains("[forms]") {
        extra.push_str("\n[forms]\nmin_fill_time = \"0s\"\n");
    }
    extra
}

/// The browser nonce and form token a page of `/c/{offer}` would have served, signed
/// with the instances' key (a flood of submits need not load the page each time).
pub fn form_guard(form_url: &str) -> (String, String) {
    use secrecy::{ExposeSecret, SecretString};
    let slug = form_url.rsplit('/').next().unwrap_or_default();
    let nonce = "00112233445566778899aabbccddeeff";
    let keys = leadgate::context::Keys::derive(&SecretString::from(SECRET_KEY));
    let now = chrono::Utc::now().timestamp_millis();
    let token = leadgate::domain::form_token::sign(keys.forms.expose_secret(), &format!("c/{slug}"), nonce, now);
    (format!("leadgate_form={nonce}"), token)
}

/// Submits the form; the status the customer got (None: no HTTP answer).
pub async fn submit(http: &reqwest::Client, url: &str, email: &str) -> Option<u16> {
    submit_contact(http, url, email, "3001234567").await
}

/// As [`submit`], with a phone of its own (CRMs match persons by phone too).
pub async fn submit_contact(http: &reqwest::Client, url: &str, email: &str, phone: &str) -> Option<u16> {
    guarded_post(
        http,
        url,
        &[("name", "Fault Customer"), ("email", email), ("phone", phone)],
    )
    .send()
    .await
    .ok()
    .map(|r| r.status().as_u16())
}

/// A POST of `fields` to the offer form at `url`, carrying the guard's cookie and token.
pub fn guarded_post(http: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let (cookie, token) = form_guard(url);
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("form_token", &token));
    http.post(url).header("cookie", cookie).form(&form)
}

/// A signed sandbox webhook: its body and `Sandbox-Signature` header.
pub fn sandbox_event(event_id: &str, reference: &str) -> (Vec<u8>, String) {
    use secrecy::{ExposeSecret, SecretString};
    let body = serde_json::to_vec(&serde_json::json!({
        "id": event_id, "type": "payment.updated", "created": 0,
        "data": {"payment_id": "sbx_fault", "reference": reference, "status": "APPROVED"}
    }))
    .unwrap();
    let keys = leadgate::context::Keys::derive(&SecretString::from(SECRET_KEY));
    let t = chrono::Utc::now().timestamp().to_string();
    let tag = leadgate::domain::signing::tag(keys.sandbox.expose_secret(), &[t.as_bytes(), b".", &body]);
    (body, format!("t={t},v1={}", hex::encode(tag)))
}

/// Posts one signed sandbox webhook once; the status (None: no HTTP answer).
pub async fn post_event(http: &reqwest::Client, url: &str, body: &[u8], sig: &str) -> Option<u16> {
    http.post(url)
        .header("Sandbox-Signature", sig)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}
