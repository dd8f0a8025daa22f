//! Spins up the real app on a random port against a fresh database, and drives it over
//! HTTP like a browser (no automatic redirects, so every hop is asserted).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use leadgate::clock::ShiftedClock;
use leadgate::config::Settings;
use leadgate::context::AppContext;
use leadgate::startup::{Application, Overrides};
use reqwest::redirect::Policy;
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// Set to a server URL (any database) to also run every test on PostgreSQL.
pub const PG_ENV: &str = "LEADGATE_TEST_POSTGRES_URL";
/// Set by CI so a missing PostgreSQL fails instead of skipping.
pub const PG_REQUIRED_ENV: &str = "LEADGATE_TEST_REQUIRE_POSTGRES";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        match std::env::var(PG_ENV) {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ if std::env::var(PG_REQUIRED_ENV).is_ok_and(|v| v == "1") => {
                panic!("{PG_REQUIRED_ENV}=1 but {PG_ENV} is not set")
            }
            _ => {
                eprintln!("skipping the PostgreSQL run: {PG_ENV} is not set");
                None
            }
        }
    }
}

/// Runs a test body once per backend: `both_backends!(name, ...)` makes `name::sqlite`
/// and `name::postgres` from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = $crate::support::Backend::postgres() {
                    super::$name(b).await
                }
            }
        }
    )* };
}

const CONFIG: &str = r#"
bind = "127.0.0.1:0"
inline_crm_deadline = "2s"

[worker]
idle_poll = "100ms"
lease = "2s"
max_attempts = 4

[[offers]]
slug = "demo"
title = "Curso de Marketing"
description = "Doce módulos"
price_minor = 19900000
currency = "COP"
followup_delays = ["30m"]

[[offers]]
slug = "fast"
title = "Mentoría Express"
price_minor = 4990
currency = "USD"
followup_delays = ["1s"]
ask_tax_id = true
"#;

pub struct TestApp {
    pub base: String,
    pub ctx: Arc<AppContext>,
    pub http: reqwest::Client,
    /// The clock the app's follow-up rules read; `advance` moves it and the queue.
    pub clock: ShiftedClock,
    _dir: Option<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct Options {
    pub overrides: Overrides,
    pub tweak: Box<dyn FnOnce(&mut Settings)>,
    /// Appended to the test configuration (e.g. a `[gateways.*]` table and its offer).
    pub toml: String,
    /// Extra environment, e.g. a gateway's keys.
    pub env: Vec<(&'static str, String)>,
    /// The app's clock (default: the system's); share one to move several instances.
    pub clock: Option<ShiftedClock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            overrides: Overrides::default(),
            tweak: Box::new(|_| {}),
            toml: String::new(),
            env: Vec::new(),
            clock: None,
        }
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

pub async fn spawn_with(backend: Backend, opts: Options) -> TestApp {
    let (url, dir) = database(&backend).await;
    spawn_on(url, dir, opts).await
}

/// A second instance on `first`'s database, as behind a load balancer (its own worker,
/// reconciliation and HTTP port; `first` keeps a SQLite file alive).
pub async fn spawn_beside(first: &TestApp, opts: Options) -> TestApp {
    spawn_on(first.ctx.settings.database_url.clone(), None, opts).await
}

async fn spawn_on(url: String, dir: Option<tempfile::TempDir>, opts: Options) -> TestApp {
    leadgate::telemetry::init();
    let hash = leadgate::startup::hash_password(ADMIN_PASSWORD).unwrap();
    let extra = opts.env;
    let env = move |k: &str| match k {
        "LEADGATE_SECRET_KEY" => Some("test-secret-key-test-secret-key-0123456789".to_string()),
        "LEADGATE_ADMIN_PASSWORD_HASH" => Some(hash.clone()),
        "LEADGATE_DATABASE_URL" => Some(url.clone()),
        _ => extra.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()),
    };
    let mut settings = Settings::from_toml(&format!("{CONFIG}\n{}", opts.toml), &env).unwrap();
    // Tests submit fast and often from one address: the abuse guards stay out of their way
    // unless a test configures them (the guards' own tests do).
    if !opts.toml.contains("[limits]") {
        settings.limits.submit_per_ip = None;
        settings.limits.submit_per_offer = None;
        settings.limits.return_per_attempt = None;
    }
    if !opts.toml.contains("[forms]") {
        settings.forms.min_fill_time = Duration::ZERO;
    }
    (opts.tweak)(&mut settings);
    let clock = opts.clock.unwrap_or_default();
    let mut overrides = opts.overrides;
    overrides.clock = Some(Arc::new(clock.clone()));
    let app = Application::build_with(settings, overrides).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        base,
        ctx,
        http,
        clock,
        _dir: dir,
        server,
    }
}

pub async fn database(backend: &Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("leadgate.db").display());
            (url, Some(dir))
        }
        Backend::Postgres(server) => {
            use sqlx::Connection;
            let name = format!("leadgate_test_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let mut url = url::Url::parse(server).unwrap();
            url.set_path(&name);
            (url.to_string(), None)
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        self.http.get(url).send().await.unwrap()
    }

    /// GET as a browser whose preferred languages are `accept_language`.
    pub async fn get_in(&self, path: &str, accept_language: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header("Accept-Language", accept_language)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a form as a browser that loaded the page first: an offer form or a sandbox
    /// page gets the token that page served (see [`TestApp::form_token`]).
    pub async fn post_form_in(&self, path: &str, accept_language: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let token = self.form_token_for(path).await;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if let Some(t) = &token {
            if !fields.iter().any(|(k, _)| *k == "form_token") {
                fields.push(("form_token", t));
            }
        }
        let req = self
            .http
            .post(self.url(path))
            .header("Accept-Language", accept_language);
        req.form(&fields).send().await.unwrap()
    }

    /// The token the page at `path` serves with its form (and the cookie it sets).
    pub async fn form_token(&self, path: &str) -> String {
        let res = self.get(path).await;
        let html = res.text().await.unwrap();
        hidden_field(&html, "form_token").unwrap_or_else(|| panic!("no form token on {path}: {html}"))
    }

    async fn form_token_for(&self, path: &str) -> Option<String> {
        let page = path.split('?').next().unwrap_or(path);
        let guarded = page.starts_with("/c/") || page.contains("/sandbox/pay/") || page.starts_with("/r/");
        if !guarded {
            return None;
        }
        let res = self.get(page).await;
        if !res.status().is_success() {
            return None;
        }
        hidden_field(&res.text().await.unwrap(), "form_token")
    }

    /// POSTs exactly `form`, with no token: as a script or another site would.
    pub async fn post_form_bare(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// POSTs `body` as is, with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> reqwest::Response {
        let req = self.http.post(self.url(path)).header("content-type", content_type);
        req.body(body).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_in(path, "es", form).await
    }

    /// Submits the offer form with valid data; returns the sandbox checkout URL.
    pub async fn start_checkout(&self, offer: &str, name: &str, email: &str) -> String {
        let mut form = vec![("name", name), ("email", email), ("phone", "300 123 4567")];
        if offer == "fast" {
            form.push(("tax_id", "1.020.304.050"));
        }
        let res = self.post_form(&format!("/c/{offer}"), &form).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
        location(&res)
    }

    /// Presses a button on the sandbox page; returns where the browser is sent.
    pub async fn press(&self, sandbox_url: &str, outcome: &str) -> String {
        let token = self.form_token(sandbox_url).await;
        let res = self
            .http
            .post(sandbox_url)
            .form(&[("outcome", outcome), ("form_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        location(&res)
    }

    /// `leadgate leads --json`, as operators see it.
    pub async fn leads(&self) -> Vec<Value> {
        let leads = leadgate::cli::export_leads(&self.ctx.db, &self.ctx.settings)
            .await
            .unwrap();
        serde_json::from_value(serde_json::to_value(leads).unwrap()).unwrap()
    }

    pub async fn deals(&self) -> Vec<leadgate::store::builtin_crm::DealView> {
        leadgate::store::builtin_crm::deals(&self.ctx.db, 1000).await.unwrap()
    }

    pub async fn tasks(&self) -> Vec<leadgate::store::builtin_crm::TaskView> {
        leadgate::store::builtin_crm::tasks(&self.ctx.db, 1000).await.unwrap()
    }

    /// Time passes: the app's clock moves `by` forward and every queued job comes due
    /// that much earlier, as if the days had gone by.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        leadgate::store::jobs::bring_forward(&self.ctx.db, leadgate::clock::ms(by))
            .await
            .unwrap();
        self.ctx.queue.wake();
    }

    /// Waits until no job is running or due within the next 5 s.
    pub async fn settle(&self) {
        eventually("the job queue to drain", || async {
            leadgate::store::jobs::pending_within(&self.ctx.db, 5000).await.unwrap() == 0
        })
        .await
    }
}

/// The value of the hidden input `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_owned)
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no Location header on {}", res.status()))
}

/// Polls `check` every 50 ms for up to 30 s; the bound only turns a hang into a failure.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn attempt_id_of(return_url: &str) -> String {
    let url = url::Url::parse(return_url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "attempt")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}
