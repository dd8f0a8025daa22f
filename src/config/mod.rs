//! Typed settings: an optional `leadgate.toml`, embedded defaults, `LEADGATE_*` overrides.
//! Secrets come from the environment only and are held as `SecretString` so they never
//! reach a log line through `Debug`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::domain::offer::{DealOnRefund, GatewayKind, Offer, OfferSlug};
use crate::domain::{Currency, Lang, LocalizedText, Money};
use text::RawText;

mod admin;
mod crm;
pub mod crm_links;
pub mod email;
mod events;
mod followup;
mod gateways;
mod offer_page;
mod payment_links;
mod security;
mod text;
pub use admin::AdminSettings;
pub use crm::{CrmKind, CrmSettings, FieldRole, RemoteCrmSettings, HUBSPOT_TOKEN, PIPEDRIVE_TOKEN};
pub use events::{signer as event_signer, Endpoint as EventEndpoint, EventSettings};
pub use gateways::{Environment, GatewaySettings, MercadoPagoSettings, StripeSettings, WompiSettings};
pub use payment_links::PaymentLinkSettings;
pub use security::{FormSettings, Limits, ProxySettings, Rate, SandboxSettings};

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    pub database: DatabaseSettings,
    /// Base URL customers and gateways reach us at; derived from the bound address when unset.
    pub public_url: Option<Url>,
    pub inline_crm_deadline: Duration,
    pub resume_link_ttl: Duration,
    /// How long a hosted checkout stays payable (Stripe accepts 30 min to 24 h).
    pub checkout_ttl: Duration,
    pub worker: WorkerSettings,
    pub reconcile: ReconcileSettings,
    pub gateways: GatewaySettings,
    pub crm: CrmSettings,
    pub offers: Vec<Offer>,
    pub secrets: Secrets,
    pub sandbox: SandboxSettings,
    pub limits: Limits,
    pub forms: FormSettings,
    pub proxy: ProxySettings,
    pub admin: AdminSettings,
    /// The mail server for customer emails; none configured, none sent.
    pub email: Option<email::EmailSettings>,
    pub payment_links: PaymentLinkSettings,
    /// `[[events.endpoints]]`: where outbound events go.
    pub events: EventSettings,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub enabled: bool,
    pub concurrency: usize,
    pub max_attempts: i32,
    pub lease: Duration,
    /// Longest sleep between queue polls; enqueues in this process wake the worker at once.
    pub idle_poll: Duration,
    /// On SIGTERM, how long running jobs get to finish before they are handed back.
    pub shutdown_grace: Duration,
}

/// `[database]`: how long requests wait for it, and what a commit promises.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Longest a request (or job) waits for a connection before answering 503.
    pub acquire_timeout: Duration,
    /// Opt-in speed at the cost of durability: see `DbOptions`.
    pub power_loss_may_undo_commits: bool,
}

/// The periodic pass that asks gateways about attempts no webhook has settled.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    pub enabled: bool,
    /// Time between passes.
    pub interval: Duration,
    /// An attempt is asked about once it has been redirected or pending this long.
    pub after: Duration,
    /// Attempts older than this are left alone.
    pub max_age: Duration,
    /// Most attempts asked about per pass.
    pub batch: i64,
    /// How often an approved attempt is asked about again, for refunds and disputes made
    /// in the gateway's dashboard whose webhook was lost.
    pub paid_interval: Duration,
    /// Approved attempts older than this are no longer asked about (card networks allow
    /// chargebacks for about 120 days).
    pub paid_max_age: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Master key: signs resume links, session cookies and sandbox webhooks.
    pub secret_key: Option<SecretString>,
    /// Argon2 PHC string for the admin pages.
    pub admin_password_hash: Option<SecretString>,
    /// Bearer token a metrics scraper presents at `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// Signs the purchase parameters sent to offers' `thank_you_url`.
    pub thank_you_secret: Option<SecretString>,
}

/// One line per problem, each naming the setting it is about.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

pub const ENV_CONFIG: &str = "LEADGATE_CONFIG";
const DEFAULT_FILE: &str = "leadgate.toml";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    bind: Option<String>,
    database_url: Option<String>,
    #[serde(default)]
    database: RawDatabase,
    public_url: Option<String>,
    inline_crm_deadline: Option<String>,
    resume_link_ttl: Option<String>,
    checkout_ttl: Option<String>,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    gateways: gateways::RawGateways,
    #[serde(default)]
    crm: crm::RawCrm,
    #[serde(default)]
    offers: Vec<RawOffer>,
    followup: Option<followup::RawFollowup>,
    #[serde(default)]
    sandbox: security::RawSandbox,
    #[serde(default)]
    limits: security::RawLimits,
    #[serde(default)]
    forms: security::RawForms,
    #[serde(default)]
    proxy: security::RawProxy,
    #[serde(default)]
    admin: admin::RawAdmin,
    email: Option<email::RawEmail>,
    seller: Option<offer_page::RawSeller>,
    #[serde(default)]
    payment_links: payment_links::RawPaymentLinks,
    #[serde(default)]
    events: events::RawEvents,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    acquire_timeout: Option<String>,
    power_loss_may_undo_commits: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    enabled: Option<bool>,
    concurrency: Option<usize>,
    max_attempts: Option<i32>,
    lease: Option<String>,
    idle_poll: Option<String>,
    shutdown_grace: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    enabled: Option<bool>,
    interval: Option<String>,
    after: Option<String>,
    max_age: Option<String>,
    batch: Option<i64>,
    paid_interval: Option<String>,
    paid_max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    slug: String,
    title: RawText,
    #[serde(default)]
    description: RawText,
    /// Shown under the price on the form.
    #[serde(default)]
    price_note: RawText,
    /// The language the texts are written in and fall back to: es (default), pt-BR or en.
    lang: Option<String>,
    price_minor: i64,
    currency: String,
    #[serde(default = "default_gateway")]
    gateway: String,
    #[serde(default = "default_pipeline")]
    pipeline: String,
    #[serde(default = "default_stage")]
    stage: String,
    /// Legacy shorthand for call steps at these delays.
    followup_delays: Option<Vec<String>>,
    followup: Option<followup::RawFollowup>,
    #[serde(default)]
    ask_tax_id: bool,
    tax_id_type: Option<String>,
    #[serde(default = "default_region")]
    phone_region: String,
    /// Sites allowed to show this offer's form in a frame, e.g. `"https://shop.example.com"`.
    #[serde(default)]
    embed_origins: Vec<String>,
    /// `lost` (default), `keep_won` or `stage:<name>`: the deal of a refunded payment.
    on_refund: Option<String>,
    /// Seller identity, consent and the paid page's links (see `offer_page`).
    seller: Option<offer_page::RawSeller>,
    consent: Option<offer_page::RawConsent>,
    thank_you_url: Option<String>,
    continue_url: Option<String>,
}

fn default_gateway() -> String {
    "sandbox".into()
}
fn default_pipeline() -> String {
    "Sales".into()
}
fn default_stage() -> String {
    "Checkout started".into()
}
fn default_region() -> String {
    "CO".into()
}
/// The usual personal tax id of a country, as the gateways name it.
fn default_tax_id_type(region: &str) -> &'static str {
    match region {
        "CO" => "CC",
        "BR" => "CPF",
        "AR" | "PE" => "DNI",
        "CL" => "RUT",
        "MX" => "RFC",
        _ => "OTHER",
    }
}

/// Its follow-ups are a call after 30 minutes and another after a day, unless `[followup]`
/// sets steps: someone trying those out on the demo should see them.
fn demo_offer(followup_steps_set: bool) -> RawOffer {
    RawOffer {
        slug: "demo".into(),
        title: RawText::PerLang(
            [
                ("es", "Curso de Marketing Digital"),
                ("pt-BR", "Curso de Marketing Digital"),
                ("en", "Digital Marketing Course"),
            ]
            .map(|(l, t)| (l.to_owned(), t.to_owned()))
            .into(),
        ),
        description: RawText::PerLang(
            [
                ("es", "Acceso de por vida, 12 módulos y certificado."),
                ("pt-BR", "Acesso vitalício, 12 módulos e certificado."),
                ("en", "Lifetime access, 12 modules and a certificate."),
            ]
            .map(|(l, t)| (l.to_owned(), t.to_owned()))
            .into(),
        ),
        price_note: RawText::default(),
        lang: None,
        price_minor: 19_900_000,
        currency: "COP".into(),
        gateway: default_gateway(),
        pipeline: default_pipeline(),
        stage: default_stage(),
        followup_delays: (!followup_steps_set).then(|| vec!["30m".into(), "24h".into()]),
        followup: None,
        ask_tax_id: false,
        tax_id_type: None,
        phone_region: default_region(),
        embed_origins: Vec::new(),
        on_refund: None,
        seller: None,
        consent: None,
        thank_you_url: None,
        continue_url: None,
    }
}

impl Settings {
    /// Reads `path`, else `$LEADGATE_CONFIG`, else `./leadgate.toml` if present, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigErrors> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let chosen: Option<PathBuf> = path
            .map(Path::to_path_buf)
            .or_else(|| env(ENV_CONFIG).map(PathBuf::from))
            .or_else(|| Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()));
        let text = match &chosen {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigErrors(vec![format!("{}: cannot read: {e}", p.display())]))?,
            None => String::new(),
        };
        Self::from_toml(&text, &env)
    }

    /// Parses a TOML document and applies environment overrides read through `env`.
    pub fn from_toml(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            let at = e
                .span()
                .map(|s| format!("line {}: ", text[..s.start].lines().count().max(1)))
                .unwrap_or_default();
            ConfigErrors(vec![format!("{at}{msg}")])
        })?;
        build(raw, env)
    }

    pub fn offer(&self, slug: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.slug.as_str() == slug)
    }
}

fn build(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigErrors> {
    let mut errs = Vec::new();
    let mut dur = |name: &str, v: Option<String>, default: Duration| match v {
        None => default,
        Some(s) => humantime::parse_duration(&s).unwrap_or_else(|e| {
            errs.push(format!("{name}: {e} (examples: \"2s\", \"30m\", \"24h\")"));
            default
        }),
    };
    let inline_crm_deadline = dur("inline_crm_deadline", raw.inline_crm_deadline, Duration::from_secs(2));
    let resume_link_ttl = dur("resume_link_ttl", raw.resume_link_ttl, Duration::from_secs(7 * 86_400));
    let lease = dur("worker.lease", raw.worker.lease, Duration::from_secs(60));
    let idle_poll = dur("worker.idle_poll", raw.worker.idle_poll, Duration::from_secs(1));
    // Under the 10 s that container runtimes and most init systems wait before SIGKILL.
    let shutdown_grace = dur(
        "worker.shutdown_grace",
        raw.worker.shutdown_grace,
        Duration::from_secs(8),
    );
    let database = DatabaseSettings {
        acquire_timeout: dur(
            "database.acquire_timeout",
            raw.database.acquire_timeout,
            Duration::from_secs(1),
        ),
        power_loss_may_undo_commits: raw.database.power_loss_may_undo_commits.unwrap_or(false),
    };
    let checkout_ttl = dur("checkout_ttl", raw.checkout_ttl, Duration::from_secs(3600));
    let reconcile = ReconcileSettings {
        enabled: raw.reconcile.enabled.unwrap_or(true),
        interval: dur("reconcile.interval", raw.reconcile.interval, Duration::from_secs(300)),
        after: dur("reconcile.after", raw.reconcile.after, Duration::from_secs(900)),
        max_age: dur(
            "reconcile.max_age",
            raw.reconcile.max_age,
            Duration::from_secs(7 * 86_400),
        ),
        batch: raw.reconcile.batch.unwrap_or(100),
        paid_interval: dur(
            "reconcile.paid_interval",
            raw.reconcile.paid_interval,
            Duration::from_secs(6 * 3600),
        ),
        paid_max_age: dur(
            "reconcile.paid_max_age",
            raw.reconcile.paid_max_age,
            Duration::from_secs(120 * 86_400),
        ),
    };
    if reconcile.batch < 1 {
        errs.push("reconcile.batch: must be at least 1".into());
    }
    let gateways = gateways::build(raw.gateways, env, &mut errs);
    let production: Vec<&str> = gateways
        .environments()
        .into_iter()
        .filter(|(_, e)| *e == Environment::Production)
        .map(|(name, _)| name)
        .collect();
    let sandbox = security::sandbox(raw.sandbox, &production, &mut errs);
    let limits = security::limits(raw.limits, &mut errs);
    let forms = security::forms(raw.forms, &mut errs);
    let proxy = security::proxy(raw.proxy, &mut errs);
    let email = email::build(raw.email, env).unwrap_or_else(|e| {
        errs.extend(e);
        None
    });
    let crm = crm::build(raw.crm, env, &mut errs);
    if gateways.stripe.is_some() && !(1800..=86_400).contains(&checkout_ttl.as_secs()) {
        errs.push("checkout_ttl: Stripe accepts 30m to 24h".into());
    }

    let public_url = env("LEADGATE_PUBLIC_URL")
        .or(raw.public_url)
        .and_then(|s| match Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                errs.push(format!("public_url: {s:?} is not an http(s) URL"));
                None
            }
        });

    let followup_steps_set = raw.followup.as_ref().is_some_and(|f| f.has_steps());
    let followup_base = followup::base(raw.followup, &mut errs);
    let seller_base = offer_page::base(raw.seller, &mut errs);
    let admin = admin::admin(raw.admin, followup_base.tz(), &mut errs);
    // The demo offer pays through the sandbox, so it exists only where the sandbox does.
    let raw_offers = if !raw.offers.is_empty() {
        raw.offers
    } else if sandbox.enabled {
        vec![demo_offer(followup_steps_set)]
    } else {
        errs.push("offers: none configured (add an [[offers]] table; the demo offer needs the sandbox)".into());
        Vec::new()
    };
    let mut offers: Vec<Offer> = Vec::new();
    for (i, o) in raw_offers.into_iter().enumerate() {
        match offer(o, &followup_base, &seller_base) {
            Ok(o) if offers.iter().any(|x| x.slug == o.slug) => errs.push(format!(
                "offers[{i}].slug: {:?} is used by another offer",
                o.slug.as_str()
            )),
            Ok(o) if o.gateway == GatewayKind::Sandbox && !sandbox.enabled => errs.push(format!(
                "offers[{i}].gateway: the sandbox is off ({}); name a real gateway",
                if production.is_empty() {
                    "sandbox.enabled = false".to_owned()
                } else {
                    format!("{} in production", production.join(", "))
                }
            )),
            Ok(o) if email.is_none() && o.followup.sends_email() => errs.push(format!(
                "offers[{i}].followup: an email step or receipt_email needs an [email] server to send through"
            )),
            Ok(o) => match gateways.check_offer(&o) {
                Ok(()) => offers.push(o),
                Err(e) => errs.push(format!("offers[{i}].{e}")),
            },
            Err(e) => errs.extend(e.into_iter().map(|e| format!("offers[{i}].{e}"))),
        }
    }

    let payment_links = payment_links::payment_links(raw.payment_links, &offers, &mut errs);
    crm_links::check_offer(crm.links.as_ref(), &offers, &mut errs);
    let events = events::build(raw.events, env, &mut errs);
    let concurrency = raw.worker.concurrency.unwrap_or(8);
    if concurrency == 0 {
        errs.push("worker.concurrency: must be at least 1".into());
    }
    // 25 tries, backoff doubling from 2 s and capped at an hour (with jitter), span 7 to
    // 14 hours: a CRM outage of an afternoon parks nothing.
    let max_attempts = raw.worker.max_attempts.unwrap_or(25);
    if max_attempts < 1 {
        errs.push("worker.max_attempts: must be at least 1".into());
    }
    let secrets = Secrets {
        secret_key: env("LEADGATE_SECRET_KEY").map(SecretString::from),
        admin_password_hash: env("LEADGATE_ADMIN_PASSWORD_HASH").map(SecretString::from),
        metrics_token: env("LEADGATE_METRICS_TOKEN").map(SecretString::from),
        thank_you_secret: env(offer_page::THANK_YOU_SECRET).map(SecretString::from),
    };
    {
        use secrecy::ExposeSecret;
        let any = offers.iter().any(|o| o.trust.thank_you_url.is_some());
        let secret = secrets.thank_you_secret.as_ref().map(|s| s.expose_secret());
        offer_page::check_secret(any, secret, &mut errs);
    }
    if let Some(k) = &secrets.secret_key {
        use secrecy::ExposeSecret;
        if k.expose_secret().len() < 32 {
            errs.push("LEADGATE_SECRET_KEY: must be at least 32 characters".into());
        }
    }
    if secrets.secret_key.is_none() && !sandbox.enabled {
        errs.push(
            "LEADGATE_SECRET_KEY: required once the sandbox is off (it signs resume links and admin sessions; generate one with `openssl rand -hex 32`)"
                .into(),
        );
    }
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    Ok(Settings {
        bind: env("LEADGATE_BIND")
            .or(raw.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        database_url: env("LEADGATE_DATABASE_URL")
            .or(raw.database_url)
            .unwrap_or_else(|| "sqlite://leadgate.db".into()),
        database,
        public_url,
        inline_crm_deadline,
        resume_link_ttl,
        checkout_ttl,
        reconcile,
        gateways,
        worker: WorkerSettings {
            enabled: raw.worker.enabled.unwrap_or(true),
            concurrency: concurrency.max(1),
            max_attempts,
            lease,
            idle_poll,
            shutdown_grace,
        },
        crm,
        offers,
        secrets,
        sandbox,
        limits,
        forms,
        proxy,
        admin,
        email,
        payment_links,
        events,
    })
}

fn offer(o: RawOffer, followup_base: &followup::Base, seller_base: &offer_page::Base) -> Result<Offer, Vec<String>> {
    let mut errs = Vec::new();
    let slug = OfferSlug::parse(&o.slug)
        .map_err(|e| errs.push(format!("slug: {e}")))
        .ok();
    let lang = match o.lang.as_deref() {
        None => Lang::Es,
        Some(code) => Lang::ALL.into_iter().find(|l| l.code() == code).unwrap_or_else(|| {
            errs.push(format!("lang: {code:?} is not es, pt-BR or en"));
            Lang::Es
        }),
    };
    let mut text = |name: &str, raw: RawText| {
        raw.parse(lang).unwrap_or_else(|e| {
            errs.push(format!("{name}: {e}"));
            LocalizedText::plain(lang, "")
        })
    };
    let title = text("title", o.title);
    let description = text("description", o.description);
    let price_note = text("price_note", o.price_note);
    if Lang::ALL.into_iter().any(|l| title.get(l).trim().is_empty()) {
        errs.push("title: must not be empty".into());
    }
    let price = o
        .currency
        .parse::<Currency>()
        .map_err(|e| errs.push(format!("currency: {e} (use an ISO code such as COP, BRL, MXN, USD)")))
        .ok()
        .and_then(|c| {
            Money::new(o.price_minor, c)
                .map_err(|e| errs.push(format!("price_minor: {e}")))
                .ok()
        });
    let gateway = o
        .gateway
        .parse::<GatewayKind>()
        .map_err(|e| errs.push(format!("gateway: {e} (available: sandbox, wompi, stripe, mercadopago)")))
        .ok();
    let followup = followup::policy(followup_base, o.followup, o.followup_delays, &mut errs);
    if o.phone_region.len() != 2 || !o.phone_region.bytes().all(|b| b.is_ascii_uppercase()) {
        errs.push(format!(
            "phone_region: {:?} is not an ISO 3166 code such as \"CO\"",
            o.phone_region
        ));
    }
    let mut embed_origins = Vec::new();
    for (j, raw) in o.embed_origins.iter().enumerate() {
        match embed_origin(raw) {
            Some(origin) => embed_origins.push(origin),
            None => errs.push(format!(
                "embed_origins[{j}]: {raw:?} is not an origin such as \"https://shop.example.com\""
            )),
        }
    }
    let on_refund = match o.on_refund.as_deref() {
        None => DealOnRefund::Lost,
        Some(raw) => DealOnRefund::parse(raw).unwrap_or_else(|| {
            errs.push(format!(
                "on_refund: {raw:?} is not \"lost\", \"keep_won\" or \"stage:<stage name>\""
            ));
            DealOnRefund::Lost
        }),
    };
    let page = offer_page::RawOfferPage {
        seller: o.seller,
        consent: o.consent,
        thank_you_url: o.thank_you_url,
        continue_url: o.continue_url,
    };
    let trust = std::sync::Arc::new(offer_page::trust(seller_base, page, &mut errs));
    match (slug, price, gateway) {
        (Some(slug), Some(price), Some(gateway)) if errs.is_empty() => Ok(Offer {
            on_refund,
            trust,
            slug,
            title,
            description,
            price_note,
            lang,
            price,
            gateway,
            crm_pipeline: o.pipeline,
            crm_stage: o.stage,
            followup: std::sync::Arc::new(followup),
            ask_tax_id: o.ask_tax_id,
            tax_id_type: o
                .tax_id_type
                .unwrap_or_else(|| default_tax_id_type(&o.phone_region).into()),
            phone_region: o.phone_region,
            embed_origins,
        }),
        _ => Err(errs),
    }
}

/// `scheme://host[:port]` and nothing else, as a CSP source and an `Origin` header name it.
fn embed_origin(raw: &str) -> Option<String> {
    let u = Url::parse(raw.trim()).ok()?;
    let bare = matches!(u.path(), "" | "/") && u.query().is_none() && u.fragment().is_none();
    let ok = matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.username().is_empty() && bare;
    ok.then(|| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_file_gives_demo_defaults() {
        let s = Settings::from_toml("", &no_env).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://leadgate.db");
        assert_eq!(s.inline_crm_deadline, Duration::from_secs(2));
        let demo = s.offer("demo").unwrap();
        assert_eq!(demo.gateway, GatewayKind::Sandbox);
        let afters: Vec<Duration> = demo.followup.steps.iter().map(|s| s.after).collect();
        assert_eq!(afters, [Duration::from_secs(1800), Duration::from_secs(86_400)]);
    }

    #[test]
    fn env_overrides_file() {
        let env = |k: &str| match k {
            "LEADGATE_BIND" => Some("0.0.0.0:9000".to_string()),
            "LEADGATE_DATABASE_URL" => Some("postgres://x/y".to_string()),
            "LEADGATE_PUBLIC_URL" => Some("https://pay.example.com".to_string()),
            _ => None,
        };
        let s = Settings::from_toml("bind = \"127.0.0.1:1\"", &env).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.database_url, "postgres://x/y");
        assert_eq!(s.public_url.unwrap().as_str(), "https://pay.example.com/");
    }

    #[test]
    fn every_error_is_one_line_naming_its_setting() {
        let toml = r#"
            inline_crm_deadline = "soon"
            [[offers]]
            slug = "Bad Slug"
            title = ""
            price_minor = -5
            currency = "XYZ"
            gateway = "paypal"
            followup_delays = ["30 parsecs"]
        "#;
        let errs = Settings::from_toml(toml, &no_env).unwrap_err().0;
        for prefix in [
            "inline_crm_deadline:",
            "offers[0].slug:",
            "offers[0].title:",
            "offers[0].currency:",
            "offers[0].gateway:",
            "offers[0].followup_delays[0]:",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(prefix)),
                "{prefix} missing in {errs:?}"
            );
        }
        assert!(errs.iter().all(|e| !e.contains('\n')));
    }

    #[test]
    fn offer_texts_are_plain_or_per_language_with_the_offers_language_as_fallback() {
        let toml = r#"
            [[offers]]
            slug = "a"
            title = { "pt-BR" = "Curso", en = "Course" }
            description = "Doze módulos"
            price_note = { "pt-BR" = "Pagamento único" }
            lang = "pt-BR"
            price_minor = 100
            currency = "BRL"
        "#;
        let s = Settings::from_toml(toml, &no_env).unwrap();
        let o = &s.offers[0];
        assert_eq!(o.lang, Lang::PtBr);
        assert_eq!(o.title.get(Lang::En), "Course");
        assert_eq!(o.title.get(Lang::Es), "Curso");
        assert_eq!(o.description.get(Lang::En), "Doze módulos");
        assert_eq!(o.price_note.get(Lang::En), "Pagamento único");
        let plain = Settings::from_toml(
            &toml
                .replace("lang = \"pt-BR\"", "")
                .replace("{ \"pt-BR\" = \"Pagamento único\" }", "\"x\"")
                .replace("\"pt-BR\" = \"Curso\"", "es = \"Curso\""),
            &no_env,
        )
        .unwrap();
        assert_eq!(plain.offers[0].lang, Lang::Es, "es unless the offer says otherwise");
    }

    #[test]
    fn an_offer_text_without_its_default_language_or_with_an_unknown_one_is_refused() {
        let base = "[[offers]]\nslug = \"a\"\nprice_minor = 100\ncurrency = \"COP\"\n";
        for (line, prefix) in [
            (
                "title = { en = \"Course\" }",
                "offers[0].title: no text in the offer's language es",
            ),
            (
                "title = { es = \"Curso\", pt = \"Curso\" }",
                "offers[0].title: unknown language \"pt\"",
            ),
            (
                "title = \"Curso\"\ndescription = { fr = \"x\" }",
                "offers[0].description: unknown language",
            ),
            ("title = \"Curso\"\nlang = \"english\"", "offers[0].lang:"),
            (
                "title = { es = \"Curso\", en = \" \" }",
                "offers[0].title: must not be empty",
            ),
        ] {
            let errs = Settings::from_toml(&format!("{base}{line}\n"), &no_env).unwrap_err().0;
            assert!(errs.iter().any(|e| e.starts_with(prefix)), "{line}: {errs:?}");
        }
    }

    #[test]
    fn an_email_step_needs_a_mail_server() {
        let toml = r#"
            [[offers]]
            slug = "mail"
            title = "Taller"
            price_minor = 100
            currency = "USD"
            [offers.followup]
            receipt_email = true
        "#;
        let errs = Settings::from_toml(toml, &no_env).unwrap_err().0;
        assert!(errs.iter().any(|e| e.starts_with("offers[0].followup: ")), "{errs:?}");
        let with_server = format!("{toml}\n[email]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@b.test\"");
        assert!(Settings::from_toml(&with_server, &no_env).is_ok());
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_reported_with_a_line() {
        let errs = Settings::from_toml("bnid = 1", &no_env).unwrap_err().0;
        assert!(errs[0].contains("line 1") && errs[0].contains("bnid"), "{errs:?}");
    }

    #[test]
    fn short_secret_key_is_refused() {
        let env = |k: &str| (k == "LEADGATE_SECRET_KEY").then(|| "short".to_string());
        assert!(Settings::from_toml("", &env).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let env = |k: &str| (k == "LEADGATE_SECRET_KEY").then(|| "k".repeat(40));
        let s = Settings::from_toml("", &env).unwrap();
        assert!(!format!("{s:?}").contains("kkkk"));
    }
}
