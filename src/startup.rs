//! Builds the database pool, the adapters and the HTTP server, and spawns the worker.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::SameSite;
use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use tracing_actix_web::TracingLogger;

use crate::config::{CrmKind, Settings};
use crate::context::{AppContext, Keys};
use crate::crm::{Crm, CrmError, CrmNeeds};
use crate::gateways::mercadopago::MercadoPagoGateway;
use crate::gateways::sandbox::SandboxGateway;
use crate::gateways::stripe::StripeGateway;
use crate::gateways::wompi::WompiGateway;
use crate::gateways::Gateways;
use crate::jobs::{worker, Queue};
use crate::metrics::Metrics;
use crate::store::{secrets, Db, DbOptions, StoreError};
use crate::telemetry::RequestSpan;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Other(String),
}

const MASTER_KEY: &str = "master_key";

/// Makes a CRM adapter once the database is open.
pub type CrmFactory = Box<dyn FnOnce(&Db) -> Arc<dyn Crm> + Send>;

/// Replacements for tests (e.g. a CRM that fails on purpose).
#[derive(Default)]
pub struct Overrides {
    pub crm: Option<CrmFactory>,
    /// The clock the follow-up rules read (tests move it forward).
    pub clock: Option<Arc<dyn crate::clock::Clock>>,
}

pub struct Application {
    port: u16,
    server: Server,
    ctx: Arc<AppContext>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Overrides::default()).await
    }

    pub async fn build_with(mut settings: Settings, overrides: Overrides) -> Result<Self, StartupError> {
        if settings.secrets.admin_password_hash.is_none() {
            settings.secrets.admin_password_hash = Some(one_time_admin_password(&settings.database_url)?);
        }
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?;
        let public_url = match &settings.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{addr}"),
        };
        let ctx = Arc::new(context(settings, public_url, overrides).await?);
        let server = http_server(ctx.clone(), listener)?;
        let background = if ctx.settings.worker.enabled {
            spawn_background(ctx.clone())
        } else {
            Vec::new()
        };
        Ok(Self {
            port: addr.port(),
            server,
            ctx,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn context(&self) -> Arc<AppContext> {
        self.ctx.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, then stops cleanly: requests in flight and running
    /// jobs drain side by side, each within `worker.shutdown_grace` (see [`shut_down`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let served = tokio::select! {
            served = &mut server => {
                shut_down(&self.ctx, self.background).await;
                served
            }
            () = stop_signal() => {
                tracing::info!("stop signal received; finishing in-flight work");
                let requests = async {
                    handle.stop(true).await;
                    (&mut server).await
                };
                let (served, ()) = tokio::join!(requests, shut_down(&self.ctx, self.background));
                served
            }
        };
        self.ctx.db.close().await;
        served.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// SIGTERM (systemd, containers) or Ctrl-C.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await
    }
}

/// Stops the background tasks: the worker stops claiming, finishes or hands back its jobs
/// within `worker.shutdown_grace`, and frees their leads. The caller closes the pool.
pub async fn shut_down(ctx: &AppContext, background: Vec<tokio::task::JoinHandle<()>>) {
    ctx.queue.stop_claiming();
    for task in background {
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "background task ended badly");
        }
    }
    if !ctx.settings.worker.enabled {
        // No worker here to drain, but inline tries of this process may hold jobs.
        crate::jobs::worker::hand_back(ctx).await;
    }
}

/// The worker and, unless switched off, the reconciliation loop.
pub fn spawn_background(ctx: Arc<AppContext>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![worker::spawn(ctx.clone())];
    if ctx.settings.reconcile.enabled {
        let stopping = ctx.queue.stopping().clone();
        let passes = crate::flows::reconcile::spawn(ctx);
        tasks.push(tokio::spawn(async move {
            stopping.cancelled().await;
            passes.abort();
        }));
    }
    tasks
}

/// Connects, migrates and wires every adapter. Also used by the worker-only command.
pub async fn context(settings: Settings, public_url: String, overrides: Overrides) -> Result<AppContext, StartupError> {
    let options = DbOptions {
        acquire_timeout: settings.database.acquire_timeout,
        power_loss_may_undo_commits: settings.database.power_loss_may_undo_commits,
    };
    if options.power_loss_may_undo_commits {
        tracing::warn!("database.power_loss_may_undo_commits is on: a power cut may undo acknowledged writes");
    }
    let db = Db::connect_with(&settings.database_url, &options).await?;
    db.migrate().await?;
    let master = match &settings.secrets.secret_key {
        Some(k) => {
            // A key the zero-config run kept in plaintext signs nothing any more; whoever
            // reads a backup must not find one.
            if secrets::remove(&db, MASTER_KEY).await? {
                tracing::warn!("removed the master key an earlier run kept in the database: LEADGATE_SECRET_KEY replaces it (older resume links and admin sessions no longer verify)");
            }
            k.clone()
        }
        // Only the sandbox run gets here: configuration refuses a run with the sandbox off
        // and no LEADGATE_SECRET_KEY.
        None => {
            tracing::warn!("LEADGATE_SECRET_KEY is not set: using a key generated once and kept in the database (fine for trying leadgate, not for production)");
            SecretString::from(secrets::get_or_insert(&db, MASTER_KEY, &random_hex(32)).await?)
        }
    };
    let keys = Keys::derive(&master);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let sandbox_key = SecretSlice::from(keys.sandbox.expose_secret().to_vec());
    let sandbox = Arc::new(SandboxGateway::new(db.clone(), sandbox_key, &public_url, http.clone()));
    let gateways = real_gateways(&settings, sandbox.clone(), &http);
    let crm: Arc<dyn Crm> = match overrides.crm {
        Some(make) => make(&db),
        None => {
            let crm = crate::crm::from_settings(&settings, Some(&db), &http)
                .ok_or_else(|| StartupError::Other("no CRM could be built".into()))?;
            check_crm(&settings, crm.as_ref()).await?;
            crm
        }
    };
    let mailer = match &settings.email {
        Some(s) => Some(crate::email::Mailer::new(s).map_err(|e| StartupError::Other(format!("[email]: {e}")))?),
        None => None,
    };
    Ok(AppContext {
        mailer,
        queue: Queue::new(settings.worker.max_attempts),
        limits: crate::limits::Limits::from_settings(&settings),
        settings,
        public_url,
        db,
        crm,
        gateways,
        sandbox,
        keys,
        metrics: Metrics::default(),
        clock: overrides.clock.unwrap_or_else(|| Arc::new(crate::clock::SystemClock)),
    })
}

/// A configured name the CRM does not have (stage, field, owner) stops start-up with a
/// message naming it; a CRM that cannot be reached only delays the check to first use.
async fn check_crm(settings: &Settings, crm: &dyn Crm) -> Result<(), StartupError> {
    if settings.crm.kind == CrmKind::Builtin {
        return Ok(());
    }
    let needs = CrmNeeds::from_settings(settings);
    match crate::crm::check(crm, &needs).await {
        Ok(report) if report.problems.is_empty() => {
            tracing::info!(crm = crm.name(), "CRM configuration verified");
            Ok(())
        }
        Ok(report) => Err(StartupError::Other(format!(
            "the {} CRM does not have what the configuration names (see `leadgate crm check`):\n{}",
            crm.name(),
            report.problems.join("\n")
        ))),
        Err(e @ CrmError::Permanent(_)) => Err(StartupError::Other(format!("{} CRM: {e}", crm.name()))),
        Err(e) => {
            tracing::warn!(crm = crm.name(), error = %e, "CRM unreachable at start-up; its names are checked at first use");
            Ok(())
        }
    }
}

/// The sandbox (when on) plus every real gateway with a `[gateways.*]` table. Each real adapter's
/// client carries that vendor's own timeout.
fn real_gateways(settings: &Settings, sandbox: Arc<SandboxGateway>, http: &reqwest::Client) -> Gateways {
    let mut gateways = Gateways::default();
    if settings.sandbox.enabled {
        tracing::warn!(
            "the sandbox gateway is on: anyone can mark its payments approved (sandbox.enabled = false turns it off)"
        );
        gateways.insert(sandbox);
    }
    let g = &settings.gateways;
    if let Some(s) = &g.wompi {
        gateways.insert(Arc::new(WompiGateway::new(s.clone(), http.clone())));
    }
    if let Some(s) = &g.stripe {
        gateways.insert(Arc::new(StripeGateway::new(s.clone(), http.clone())));
    }
    if let Some(s) = &g.mercadopago {
        gateways.insert(Arc::new(MercadoPagoGateway::new(s.clone(), http.clone())));
    }
    for (name, env) in g.environments() {
        tracing::info!(gateway = name, environment = env.as_str(), "gateway configured");
    }
    gateways
}

fn http_server(ctx: Arc<AppContext>, listener: TcpListener) -> Result<Server, StartupError> {
    let data = actix_web::web::Data::from(ctx.clone());
    let key = ctx.keys.session.clone();
    let secure = ctx.public_url.starts_with("https://");
    let security = actix_web::web::Data::new(crate::web::headers::SecurityHeaders::new(
        &ctx.settings,
        &ctx.public_url,
    ));
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name("leadgate_admin".into())
            .cookie_secure(secure)
            .cookie_same_site(SameSite::Strict)
            // Gone when the browser closes; its contents are encrypted and authenticated, and
            // scripts cannot read it. Age and idle limits are enforced by the admin pages.
            .session_lifecycle(actix_session::config::BrowserSession::default())
            .cookie_content_security(actix_session::config::CookieContentSecurity::Private)
            .cookie_http_only(true)
            .build();
        App::new()
            .wrap(actix_web::middleware::from_fn(crate::web::headers::add))
            // The admin session cookie is SameSite=Strict and form tokens change per response,
            // so no other site can make a browser fetch pages whose compressed size leaks a
            // secret (BREACH).
            .wrap(actix_web::middleware::Compress::default())
            .wrap(sessions)
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(data.clone())
            .app_data(security.clone())
            .configure(crate::web::routes)
    })
    // Signals are ours (`run_until_stopped`), so jobs and requests stop together.
    .disable_signals()
    .shutdown_timeout(ctx.settings.worker.shutdown_grace.as_secs().max(1))
    .listen(listener)
    .map_err(|e| StartupError::Other(e.to_string()))?
    .run();
    Ok(server)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Without a configured hash the admin pages get a fresh password for this run only. It is
/// written to a file only this user can read, never to the terminal or the logs, which are
/// often kept and shared; the terminal says where the file is.
fn one_time_admin_password(database_url: &str) -> Result<SecretString, StartupError> {
    let password = random_hex(12);
    let hash = hash_password(&password)?;
    let path = admin_password_file(database_url);
    write_private(&path, &password).map_err(|e| {
        StartupError::Other(format!(
            "cannot write the one-time admin password to {}: {e} (or set LEADGATE_ADMIN_PASSWORD_HASH from `leadgate hash-password`)",
            path.display()
        ))
    })?;
    println!(
        "Admin pages: the one-time password for this run is in {} (set LEADGATE_ADMIN_PASSWORD_HASH from `leadgate hash-password` to keep one)",
        path.display()
    );
    Ok(SecretString::from(hash))
}

/// Next to the SQLite file (a directory leadgate can surely write, and where the operator
/// looks for its data), else in the working directory.
fn admin_password_file(database_url: &str) -> std::path::PathBuf {
    const NAME: &str = "leadgate-admin-password";
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|f| !f.is_empty() && !f.starts_with(':'));
    let dir = file
        .and_then(|f| std::path::Path::new(f).parent())
        .filter(|d| !d.as_os_str().is_empty());
    dir.map_or_else(|| std::path::PathBuf::from(NAME), |d| d.join(NAME))
}

/// Replaces `path` with a new file readable by this user only. Removing first means an
/// existing file (or a planted link) is never written through, and `create_new` refuses one
/// that appears in between.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")?;
    file.sync_all()
}

pub fn hash_password(password: &str) -> Result<String, StartupError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StartupError::Other(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StartupError::Other(e.to_string()))
}

#[cfg(test)]
mod admin_password_tests {
    use super::*;

    #[test]
    fn the_file_sits_next_to_the_sqlite_database_else_in_the_working_directory() {
        let f = |url: &str| admin_password_file(url).display().to_string();
        assert_eq!(
            f("sqlite:///var/lib/leadgate/leadgate.db"),
            "/var/lib/leadgate/leadgate-admin-password"
        );
        assert_eq!(f("sqlite://data/leadgate.db?mode=rwc"), "data/leadgate-admin-password");
        assert_eq!(f("sqlite://leadgate.db"), "leadgate-admin-password");
        assert_eq!(f("sqlite::memory:"), "leadgate-admin-password");
        assert_eq!(f("postgres://db.internal/leadgate"), "leadgate-admin-password");
    }
}
