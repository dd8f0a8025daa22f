//! `[events]` and `[[events.endpoints]]`: who hears what happened, signed per the
//! Standard Webhooks specification with a secret each endpoint's operator gave us.

use std::collections::BTreeSet;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::domain::event::EventType;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    /// How long one delivery waits for the receiver's answer.
    timeout: Option<String>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: String,
    /// The environment variable holding the endpoint's `whsec_…` secret.
    secret_env: String,
    types: Vec<String>,
    #[serde(default)]
    personal_data: bool,
    max_attempts: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct EventSettings {
    pub timeout: Duration,
    pub endpoints: Vec<Endpoint>,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            timeout: DEFAULT_TIMEOUT,
            endpoints: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    /// `whsec_<base64>`, checked at start-up to be a key the signer accepts.
    pub secret: SecretString,
    pub types: BTreeSet<EventType>,
    /// Whether payloads carry the person's name, email and phone.
    pub personal_data: bool,
    /// Tries before a delivery is dead; the worker's `max_attempts` when unset.
    pub max_attempts: Option<i32>,
}

impl Endpoint {
    pub fn wants(&self, t: EventType) -> bool {
        self.types.contains(&t)
    }
}

impl EventSettings {
    pub fn endpoint(&self, url: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.url.as_str() == url)
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The specification's key size range: shorter is guessable, longer is not supported everywhere.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

pub(super) fn build(raw: RawEvents, env: &dyn Fn(&str) -> Option<String>, errs: &mut Vec<String>) -> EventSettings {
    let timeout = match raw.timeout.map(|s| humantime::parse_duration(&s)) {
        None => DEFAULT_TIMEOUT,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(_) => {
            errs.push("events.timeout: a duration such as \"10s\"".into());
            DEFAULT_TIMEOUT
        }
    };
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (i, e) in raw.endpoints.into_iter().enumerate() {
        let at = format!("events.endpoints[{i}]");
        let before = errs.len();
        let url = endpoint_url(&e.url)
            .map_err(|why| errs.push(format!("{at}.url: {why}")))
            .ok();
        if url.as_ref().is_some_and(|u| endpoints.iter().any(|o| &o.url == u)) {
            errs.push(format!("{at}.url: listed twice"));
        }
        let secret = match env(&e.secret_env) {
            None => {
                errs.push(format!("{}: not set (the secret of {at})", e.secret_env));
                None
            }
            Some(s) => match check_secret(&s) {
                Ok(()) => Some(SecretString::from(s)),
                Err(why) => {
                    errs.push(format!("{}: {why}", e.secret_env));
                    None
                }
            },
        };
        let mut types = BTreeSet::new();
        for t in &e.types {
            match t.parse::<EventType>() {
                Ok(t) => {
                    types.insert(t);
                }
                Err(_) => errs.push(format!(
                    "{at}.types: unknown event type {t:?} (known: {})",
                    EventType::ALL.map(EventType::as_str).join(", ")
                )),
            }
        }
        if e.types.is_empty() {
            errs.push(format!("{at}.types: name at least one event type"));
        }
        if e.max_attempts.is_some_and(|n| n < 1) {
            errs.push(format!("{at}.max_attempts: must be at least 1"));
        }
        if let (Some(url), Some(secret), true) = (url, secret, errs.len() == before) {
            endpoints.push(Endpoint {
                url,
                secret,
                types,
                personal_data: e.personal_data,
                max_attempts: e.max_attempts,
            });
        }
    }
    EventSettings { timeout, endpoints }
}

/// https, or http to this machine (a local relay, the tests): event data must not cross
/// a network in clear text.
fn endpoint_url(raw: &str) -> Result<Url, String> {
    let u = Url::parse(raw.trim()).map_err(|e| format!("{e}"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials (sign with the secret instead)".into());
    }
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("needs a host".into()),
    };
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err("must be https (http only to a loopback address)".into()),
    }
}

/// The signer takes `whsec_` + base64 of the key; a typo here would sign with garbage.
fn check_secret(s: &str) -> Result<(), String> {
    use base64::Engine;
    let Some(b64) = s.strip_prefix("whsec_") else {
        return Err("must start with whsec_ (the Standard Webhooks secret format)".into());
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "after whsec_ must come base64".to_string())?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(format!("the key must be 24 to 64 bytes, not {}", key.len()));
    }
    standardwebhooks::Webhook::new(s).map_err(|e| e.to_string())?;
    Ok(())
}

/// For the delivery: the signer for this endpoint (its key was checked at start-up).
pub fn signer(e: &Endpoint) -> Result<standardwebhooks::Webhook, String> {
    standardwebhooks::Webhook::new(e.secret.expose_secret()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(toml: &str, secret: Option<&str>) -> Result<EventSettings, Vec<String>> {
        let raw: RawEvents = toml::from_str(toml).unwrap();
        let mut errs = Vec::new();
        let env = |k: &str| (k == "HOOK_SECRET").then(|| secret.map(str::to_owned)).flatten();
        let s = build(raw, &env, &mut errs);
        if errs.is_empty() {
            Ok(s)
        } else {
            Err(errs)
        }
    }

    #[test]
    fn a_good_endpoint_parses_with_defaults() {
        let s = parse(
            "[[endpoints]]\nurl = \"https://hooks.example.com/in\"\nsecret_env = \"HOOK_SECRET\"\ntypes = [\"lead.created\", \"payment.approved\"]\n",
            Some(SECRET),
        )
        .unwrap();
        let e = &s.endpoints[0];
        assert!(e.wants(EventType::LeadCreated) && !e.wants(EventType::DealSynced));
        assert!(!e.personal_data);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn each_mistake_is_named() {
        let one = |url: &str, types: &str, secret: Option<&str>| {
            parse(
                &format!("[[endpoints]]\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\ntypes = [{types}]\n"),
                secret,
            )
            .unwrap_err()
            .join("\n")
        };
        let ok_types = "\"lead.created\"";
        assert!(one("http://hooks.example.com/", ok_types, Some(SECRET)).contains("must be https"));
        assert!(parse(
            &format!(
                "[[endpoints]]\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"HOOK_SECRET\"\ntypes = [{ok_types}]\n"
            ),
            Some(SECRET)
        )
        .is_ok());
        assert!(one("https://h.example.com/", "\"payment.refund\"", Some(SECRET)).contains("unknown event type"));
        assert!(one("https://h.example.com/", ok_types, None).contains("HOOK_SECRET: not set"));
        assert!(one(
            "https://h.example.com/",
            ok_types,
            Some("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        )
        .contains("whsec_"));
        assert!(one("https://h.example.com/", ok_types, Some("whsec_c2hvcnQ=")).contains("24 to 64 bytes"));
        assert!(one("https://h.example.com/", ok_types, Some("whsec_not base64!")).contains("base64"));
    }
}
