//! Settings of the real gateways. A gateway is on when its `[gateways.<name>]` table is
//! present; its keys come from the environment only. Each table names an environment
//! (sandbox or production) and every key and URL must belong to it, so a test key never
//! meets a production API (or the reverse) after start-up.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    pub wompi: Option<WompiSettings>,
    pub stripe: Option<StripeSettings>,
    pub mercadopago: Option<MercadoPagoSettings>,
}

#[derive(Debug, Clone)]
pub struct WompiSettings {
    pub environment: Environment,
    /// API base including `/v1`.
    pub api_base: Url,
    /// The Web Checkout form action.
    pub checkout_url: Url,
    pub timeout: Duration,
    pub public_key: String,
    pub private_key: SecretString,
    pub events_secret: SecretString,
    pub integrity_secret: SecretString,
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub environment: Environment,
    pub api_base: Url,
    pub timeout: Duration,
    pub secret_key: SecretString,
    /// The endpoint's signing secret, then the previous one while a rotation is under way.
    pub webhook_secrets: Vec<SecretString>,
    pub signature_tolerance: Duration,
}

#[derive(Debug, Clone)]
pub struct MercadoPagoSettings {
    pub environment: Environment,
    pub api_base: Url,
    pub timeout: Duration,
    pub access_token: SecretString,
    pub webhook_secret: SecretString,
    /// How far `ts` in `x-signature` may be from our clock (default 5 min, never off).
    /// Mercado Pago's docs make the check optional and name no window; without one a
    /// captured notification could be replayed for ever. A notification refused as stale
    /// is not lost: reconciliation asks Mercado Pago about the attempt anyway.
    pub signature_tolerance: Duration,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateways {
    wompi: Option<RawGateway>,
    stripe: Option<RawGateway>,
    mercadopago: Option<RawGateway>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    environment: Environment,
    api_base: Option<String>,
    checkout_url: Option<String>,
    timeout: Option<String>,
    public_key: Option<String>,
    signature_tolerance: Option<String>,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Collects every problem as `setting: message` instead of stopping at the first.
struct Check<'a> {
    section: &'static str,
    env: Env<'a>,
    errs: &'a mut Vec<String>,
}

impl Check<'_> {
    fn fail(&mut self, what: &str, msg: impl std::fmt::Display) {
        self.errs.push(format!("{what}: {msg}"));
    }

    fn duration(&mut self, key: &str, v: &Option<String>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => humantime::parse_duration(s).unwrap_or_else(|e| {
                self.fail(&format!("{}.{key}", self.section), e);
                default
            }),
        }
    }

    fn url(&mut self, key: &str, v: &Option<String>, default: &str) -> Option<Url> {
        let text = v.as_deref().unwrap_or(default);
        match Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                self.fail(
                    &format!("{}.{key}", self.section),
                    format!("{text:?} is not an http(s) URL"),
                );
                None
            }
        }
    }

    /// A key from the environment that must start with the environment's prefix.
    fn key(&mut self, var: &str, prefixes: &[&str], env_name: Environment) -> Option<SecretString> {
        match (self.env)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            None => {
                self.fail(var, format!("required by [{}] and not set (or empty)", self.section));
                None
            }
            Some(v) => {
                if !prefixes.iter().any(|p| v.starts_with(p)) {
                    self.fail(
                        var,
                        format!(
                            "[{}] is set to {} but this key does not start with {}: test and live keys must not be mixed",
                            self.section,
                            env_name.as_str(),
                            prefixes.join(" or ")
                        ),
                    );
                    return None;
                }
                Some(SecretString::from(v))
            }
        }
    }

    /// Settings the shared table shape allows but only Wompi uses.
    fn no_wompi_only_keys(&mut self, r: &RawGateway) {
        if r.checkout_url.is_some() || r.public_key.is_some() {
            let section = self.section;
            self.fail(section, "checkout_url and public_key are Wompi settings");
        }
    }

    /// Refuses a vendor URL that belongs to the other environment.
    fn host_matches(&mut self, key: &str, url: Option<&Url>, env_name: Environment, other_hosts: &[&str]) {
        if let Some(host) = url.and_then(Url::host_str) {
            if other_hosts.contains(&host) {
                self.fail(
                    &format!("{}.{key}", self.section),
                    format!("{host} is not a {} host", env_name.as_str()),
                );
            }
        }
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How far a signed timestamp may be from our clock: Stripe's own default, and Mercado
/// Pago's when none is set.
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Every problem lands in `errs`; a gateway that had one comes back as `None`.
pub(super) fn build(raw: RawGateways, env: Env<'_>, errs: &mut Vec<String>) -> GatewaySettings {
    GatewaySettings {
        wompi: raw.wompi.and_then(|r| wompi(r, env, errs)),
        stripe: raw.stripe.and_then(|r| stripe(r, env, errs)),
        mercadopago: raw.mercadopago.and_then(|r| mercadopago(r, env, errs)),
    }
}

fn wompi(r: RawGateway, env: Env<'_>, errs: &mut Vec<String>) -> Option<WompiSettings> {
    let mut c = Check {
        section: "gateways.wompi",
        env,
        errs,
    };
    let e = r.environment;
    let (tag, api, other) = match e {
        Environment::Sandbox => ("test", "https://sandbox.wompi.co/v1", "production.wompi.co"),
        Environment::Production => ("prod", "https://production.wompi.co/v1", "sandbox.wompi.co"),
    };
    let api_base = c.url("api_base", &r.api_base, api);
    c.host_matches("api_base", api_base.as_ref(), e, &[other]);
    let public_key = match r.public_key.or_else(|| env("LEADGATE_WOMPI_PUBLIC_KEY")) {
        Some(k) if k.starts_with(&format!("pub_{tag}_")) => Some(k),
        Some(_) => {
            c.fail(
                "gateways.wompi.public_key",
                format!("must start with pub_{tag}_ for {}", e.as_str()),
            );
            None
        }
        None => {
            c.fail(
                "gateways.wompi.public_key",
                "required (or set LEADGATE_WOMPI_PUBLIC_KEY)",
            );
            None
        }
    };
    let checkout_url = c.url("checkout_url", &r.checkout_url, "https://checkout.wompi.co/p/");
    let timeout = c.duration("timeout", &r.timeout, DEFAULT_TIMEOUT);
    let private_key = c.key("LEADGATE_WOMPI_PRIVATE_KEY", &[&format!("prv_{tag}_")], e);
    let events_secret = c.key("LEADGATE_WOMPI_EVENTS_SECRET", &[&format!("{tag}_events_")], e);
    let integrity_secret = c.key("LEADGATE_WOMPI_INTEGRITY_SECRET", &[&format!("{tag}_integrity_")], e);
    Some(WompiSettings {
        environment: e,
        api_base: api_base?,
        checkout_url: checkout_url?,
        timeout,
        public_key: public_key?,
        private_key: private_key?,
        events_secret: events_secret?,
        integrity_secret: integrity_secret?,
    })
}

fn stripe(r: RawGateway, env: Env<'_>, errs: &mut Vec<String>) -> Option<StripeSettings> {
    let mut c = Check {
        section: "gateways.stripe",
        env,
        errs,
    };
    let e = r.environment;
    let mode = match e {
        Environment::Sandbox => "test",
        Environment::Production => "live",
    };
    let secret_key = c.key(
        "LEADGATE_STRIPE_SECRET_KEY",
        &[&format!("sk_{mode}_"), &format!("rk_{mode}_")],
        e,
    );
    let current = c.key("LEADGATE_STRIPE_WEBHOOK_SECRET", &["whsec_"], e);
    let previous = env("LEADGATE_STRIPE_WEBHOOK_SECRET_PREVIOUS")
        .filter(|v| !v.trim().is_empty())
        .map(|_| c.key("LEADGATE_STRIPE_WEBHOOK_SECRET_PREVIOUS", &["whsec_"], e));
    let signature_tolerance = c.duration("signature_tolerance", &r.signature_tolerance, DEFAULT_TOLERANCE);
    if signature_tolerance.is_zero() {
        c.fail(
            "gateways.stripe.signature_tolerance",
            "must be above zero (zero would accept replays forever)",
        );
    }
    c.no_wompi_only_keys(&r);
    let api_base = c.url("api_base", &r.api_base, "https://api.stripe.com");
    let timeout = c.duration("timeout", &r.timeout, DEFAULT_TIMEOUT);
    let mut webhook_secrets = vec![current?];
    if let Some(previous) = previous {
        webhook_secrets.push(previous?);
    }
    Some(StripeSettings {
        environment: e,
        api_base: api_base?,
        timeout,
        secret_key: secret_key?,
        webhook_secrets,
        signature_tolerance,
    })
}

fn mercadopago(r: RawGateway, env: Env<'_>, errs: &mut Vec<String>) -> Option<MercadoPagoSettings> {
    let mut c = Check {
        section: "gateways.mercadopago",
        env,
        errs,
    };
    let e = r.environment;
    let prefix = match e {
        Environment::Sandbox => "TEST-",
        Environment::Production => "APP_USR-",
    };
    let signature_tolerance = c.duration("signature_tolerance", &r.signature_tolerance, DEFAULT_TOLERANCE);
    if signature_tolerance.is_zero() {
        c.fail(
            "gateways.mercadopago.signature_tolerance",
            "must be above zero (there is no off: zero would accept replays for ever)",
        );
    }
    c.no_wompi_only_keys(&r);
    let api_base = c.url("api_base", &r.api_base, "https://api.mercadopago.com");
    let timeout = c.duration("timeout", &r.timeout, DEFAULT_TIMEOUT);
    let access_token = c.key("LEADGATE_MERCADOPAGO_ACCESS_TOKEN", &[prefix], e);
    let webhook_secret = c.key("LEADGATE_MERCADOPAGO_WEBHOOK_SECRET", &[""], e);
    Some(MercadoPagoSettings {
        environment: e,
        api_base: api_base?,
        timeout,
        access_token: access_token?,
        webhook_secret: webhook_secret?,
        signature_tolerance,
    })
}

impl GatewaySettings {
    /// Offers may only name gateways that are configured and can take their currency.
    pub(super) fn check_offer(&self, offer: &crate::domain::offer::Offer) -> Result<(), String> {
        use crate::domain::offer::GatewayKind as G;
        let (configured, name) = match offer.gateway {
            G::Sandbox => (true, "sandbox"),
            G::Wompi => (self.wompi.is_some(), "wompi"),
            G::Stripe => (self.stripe.is_some(), "stripe"),
            G::MercadoPago => (self.mercadopago.is_some(), "mercadopago"),
        };
        if !configured {
            return Err(format!(
                "gateway: {name} is not configured (add a [gateways.{name}] table)"
            ));
        }
        offer.gateway.takes(&offer.price).map_err(|e| match e {
            crate::domain::offer::Refused::Currency(m) => format!("currency: {m}"),
            crate::domain::offer::Refused::Amount(m) => format!("price_minor: {m}"),
        })
    }

    /// The environment each configured real gateway runs in, for start-up and check-config.
    pub fn environments(&self) -> Vec<(&'static str, Environment)> {
        let mut v = Vec::new();
        if let Some(w) = &self.wompi {
            v.push(("wompi", w.environment));
        }
        if let Some(s) = &self.stripe {
            v.push(("stripe", s.environment));
        }
        if let Some(m) = &self.mercadopago {
            v.push(("mercadopago", m.environment));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Settings, Vec<String>> {
        let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        Settings::from_toml(toml, &env).map_err(|e| e.0)
    }

    const WOMPI_TEST_KEYS: [(&str, &str); 4] = [
        ("LEADGATE_WOMPI_PUBLIC_KEY", "pub_test_a"),
        ("LEADGATE_WOMPI_PRIVATE_KEY", "prv_test_b"),
        ("LEADGATE_WOMPI_EVENTS_SECRET", "test_events_c"),
        ("LEADGATE_WOMPI_INTEGRITY_SECRET", "test_integrity_d"),
    ];

    #[test]
    fn sandbox_keys_load_for_a_sandbox_gateway() {
        let s = load("[gateways.wompi]\nenvironment = \"sandbox\"", &WOMPI_TEST_KEYS).unwrap();
        let w = s.gateways.wompi.unwrap();
        assert_eq!(w.api_base.as_str(), "https://sandbox.wompi.co/v1");
        assert_eq!(w.public_key, "pub_test_a");
    }

    #[test]
    fn test_keys_are_refused_in_production_and_named() {
        let errs = load("[gateways.wompi]\nenvironment = \"production\"", &WOMPI_TEST_KEYS).unwrap_err();
        for name in [
            "gateways.wompi.public_key",
            "LEADGATE_WOMPI_PRIVATE_KEY",
            "LEADGATE_WOMPI_EVENTS_SECRET",
            "LEADGATE_WOMPI_INTEGRITY_SECRET",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(name)), "{name} not in {errs:?}");
        }
    }

    #[test]
    fn a_production_url_with_sandbox_keys_is_refused() {
        let toml = "[gateways.wompi]\nenvironment = \"sandbox\"\napi_base = \"https://production.wompi.co/v1\"";
        let errs = load(toml, &WOMPI_TEST_KEYS).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with("gateways.wompi.api_base")),
            "{errs:?}"
        );
    }

    #[test]
    fn stripe_live_key_in_sandbox_and_missing_secret_are_refused() {
        let errs = load(
            "[gateways.stripe]\nenvironment = \"sandbox\"",
            &[("LEADGATE_STRIPE_SECRET_KEY", "sk_live_x")],
        )
        .unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with("LEADGATE_STRIPE_SECRET_KEY")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("LEADGATE_STRIPE_WEBHOOK_SECRET")),
            "{errs:?}"
        );
    }

    #[test]
    fn mercadopago_test_token_in_production_is_refused() {
        let errs = load(
            "[gateways.mercadopago]\nenvironment = \"production\"",
            &[
                ("LEADGATE_MERCADOPAGO_ACCESS_TOKEN", "TEST-123"),
                ("LEADGATE_MERCADOPAGO_WEBHOOK_SECRET", "s"),
            ],
        )
        .unwrap_err();
        assert!(errs.iter().any(|e| e.contains("APP_USR-")), "{errs:?}");
    }

    #[test]
    fn mercadopago_signature_window_is_on_by_default_and_cannot_be_turned_off() {
        let keys = [
            ("LEADGATE_MERCADOPAGO_ACCESS_TOKEN", "TEST-123"),
            ("LEADGATE_MERCADOPAGO_WEBHOOK_SECRET", "s"),
        ];
        let table = "[gateways.mercadopago]\nenvironment = \"sandbox\"";
        let tolerance = |extra: &str| {
            load(&format!("{table}\n{extra}"), &keys).map(|s| s.gateways.mercadopago.map(|m| m.signature_tolerance))
        };
        assert_eq!(tolerance(""), Ok(Some(std::time::Duration::from_secs(300))));
        assert_eq!(
            tolerance("signature_tolerance = \"30m\""),
            Ok(Some(std::time::Duration::from_secs(1800)))
        );
        for off in ["0s", "off"] {
            let errs = tolerance(&format!("signature_tolerance = \"{off}\"")).unwrap_err();
            assert!(
                errs.iter()
                    .any(|e| e.starts_with("gateways.mercadopago.signature_tolerance")),
                "{off}: {errs:?}"
            );
        }
    }

    #[test]
    fn offers_need_a_configured_gateway_that_takes_their_currency() {
        let offer = |gateway: &str, currency: &str, price: i64| {
            format!(
                "[[offers]]\nslug = \"x\"\ntitle = \"X\"\nprice_minor = {price}\ncurrency = \"{currency}\"\ngateway = \"{gateway}\"\n"
            )
        };
        let errs = load(&offer("stripe", "USD", 100), &[]).unwrap_err();
        assert!(
            errs[0].starts_with("offers[0].gateway: stripe is not configured"),
            "{errs:?}"
        );
        let wompi = format!(
            "[gateways.wompi]\nenvironment = \"sandbox\"\n{}",
            offer("wompi", "USD", 100)
        );
        let errs = load(&wompi, &WOMPI_TEST_KEYS).unwrap_err();
        assert!(errs[0].starts_with("offers[0].currency"), "{errs:?}");
    }
}
