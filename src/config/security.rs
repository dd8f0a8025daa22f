//! What stands between leadgate and the public internet: the sandbox switch, form abuse
//! guards, rate limits and the proxies whose `X-Forwarded-For` is believed.

use std::time::Duration;

use serde::Deserialize;

/// `N/DURATION`, e.g. `"10/1m"`: up to N at once, refilled evenly over DURATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn new(count: u32, per: Duration) -> Self {
        Self { count, per }
    }

    /// `"off"` is `None`: no limit.
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let s = s.trim();
        if s == "off" {
            return Ok(None);
        }
        let (n, per) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not N/DURATION (examples: \"10/1m\", \"5/15m\", \"off\")"))?;
        let count: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{n:?} is not a count of at least 1"))?;
        let per = humantime::parse_duration(per.trim()).map_err(|e| format!("{per:?}: {e}"))?;
        if per.is_zero() {
            return Err("the duration must not be zero".into());
        }
        Ok(Some(Rate { count, per }))
    }
}

/// `[limits]`: per-process rate limits (each instance behind a load balancer counts alone).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Offer form submits per client IP.
    pub submit_per_ip: Option<Rate>,
    /// Offer form submits per offer, all clients together: caps what reaches the CRM.
    pub submit_per_offer: Option<Rate>,
    /// Admin sign-in tries per client IP.
    pub login_per_ip: Rate,
    /// Admin sign-in tries from everywhere together.
    pub login_global: Rate,
    /// Return-page and status views per attempt.
    pub return_per_attempt: Option<Rate>,
    /// The gateway is asked about one attempt at most this often from the return page.
    pub gateway_status_every: Duration,
    /// `[[limits.raised]]`: addresses whose submits count against a rate of their own.
    pub raised: Vec<RaisedLimit>,
}

/// One `[[limits.raised]]` entry: an office NAT or a monitoring host sends more submits
/// than one person, and is counted per address against this rate instead of
/// `submit_per_ip` (the first entry naming an address wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedLimit {
    pub addresses: Vec<ipnet::IpNet>,
    /// `None` (`"off"`): never limited.
    pub submit_per_ip: Option<Rate>,
}

/// `[forms]`: the offer form's guards against bots, invisible to a person.
#[derive(Debug, Clone)]
pub struct FormSettings {
    /// A submit sooner than this after the form was served is asked to confirm.
    pub min_fill_time: Duration,
    /// How long a served form's token stays good.
    pub token_ttl: Duration,
    /// The same email for the same offer within this window reuses the open checkout.
    pub duplicate_window: Duration,
}

/// `[proxy]`: the load balancers or reverse proxies in front of leadgate.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted: Vec<ipnet::IpNet>,
}

/// `[sandbox]`: leadgate's own test checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxSettings {
    pub enabled: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    submit_per_ip: Option<String>,
    submit_per_offer: Option<String>,
    login_per_ip: Option<String>,
    login_global: Option<String>,
    return_per_attempt: Option<String>,
    gateway_status_every: Option<String>,
    #[serde(default)]
    raised: Vec<RawRaised>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRaised {
    #[serde(default)]
    addresses: Vec<String>,
    submit_per_ip: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForms {
    min_fill_time: Option<String>,
    token_ttl: Option<String>,
    duplicate_window: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    #[serde(default)]
    trusted: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
    enabled: Option<bool>,
}

const MINUTE: Duration = Duration::from_secs(60);

fn rate(name: &str, v: Option<String>, default: Option<Rate>, errs: &mut Vec<String>) -> Option<Rate> {
    match v {
        None => default,
        Some(s) => Rate::parse(&s).unwrap_or_else(|e| {
            errs.push(format!("limits.{name}: {e}"));
            default
        }),
    }
}

fn duration(name: &str, v: Option<String>, default: Duration, errs: &mut Vec<String>) -> Duration {
    match v {
        None => default,
        Some(s) => humantime::parse_duration(&s).unwrap_or_else(|e| {
            errs.push(format!("{name}: {e} (examples: \"2s\", \"30m\", \"24h\")"));
            default
        }),
    }
}

pub(super) fn limits(raw: RawLimits, errs: &mut Vec<String>) -> Limits {
    // Generous enough for a family or an office behind one address (and mobile carriers'
    // shared NAT), far below what a script sends.
    let submit_per_ip = rate("submit_per_ip", raw.submit_per_ip, Some(Rate::new(10, MINUTE)), errs);
    let submit_per_offer = rate(
        "submit_per_offer",
        raw.submit_per_offer,
        Some(Rate::new(300, MINUTE)),
        errs,
    );
    let mut always = |name: &str, v: Option<String>, default: Rate| match rate(name, v, Some(default), errs) {
        Some(r) => r,
        None => {
            errs.push(format!("limits.{name}: cannot be off"));
            default
        }
    };
    let login_per_ip = always("login_per_ip", raw.login_per_ip, Rate::new(5, 15 * MINUTE));
    let login_global = always("login_global", raw.login_global, Rate::new(30, MINUTE));
    let return_per_attempt = rate(
        "return_per_attempt",
        raw.return_per_attempt,
        Some(Rate::new(30, MINUTE)),
        errs,
    );
    let gateway_status_every = duration(
        "limits.gateway_status_every",
        raw.gateway_status_every,
        Duration::from_secs(10),
        errs,
    );
    let raised = raw
        .raised
        .into_iter()
        .enumerate()
        .map(|(i, r)| raised_limit(i, r, errs))
        .collect();
    Limits {
        submit_per_ip,
        submit_per_offer,
        login_per_ip,
        login_global,
        return_per_attempt,
        gateway_status_every,
        raised,
    }
}

fn raised_limit(i: usize, raw: RawRaised, errs: &mut Vec<String>) -> RaisedLimit {
    let at = format!("limits.raised[{i}]");
    if raw.addresses.is_empty() {
        errs.push(format!(
            "{at}.addresses: list at least one IP address or CIDR range (e.g. [\"10.1.0.0/16\"])"
        ));
    }
    let mut addresses = Vec::new();
    for (j, s) in raw.addresses.iter().enumerate() {
        match parse_net(s) {
            Some(n) => addresses.push(n),
            None => errs.push(format!(
                "{at}.addresses[{j}]: {s:?} is not an IP address or CIDR range (e.g. \"10.1.0.0/16\")"
            )),
        }
    }
    let submit_per_ip = match raw.submit_per_ip.as_deref().map(Rate::parse) {
        Some(Ok(rate)) => rate,
        Some(Err(e)) => {
            errs.push(format!("{at}.submit_per_ip: {e}"));
            None
        }
        None => {
            errs.push(format!(
                "{at}.submit_per_ip: missing (the rate these addresses get, e.g. \"100/1m\", or \"off\")"
            ));
            None
        }
    };
    RaisedLimit {
        addresses,
        submit_per_ip,
    }
}

pub(super) fn forms(raw: RawForms, errs: &mut Vec<String>) -> FormSettings {
    let f = FormSettings {
        // People take several seconds for three fields; autofill makes it ~2 s at best.
        min_fill_time: duration("forms.min_fill_time", raw.min_fill_time, Duration::from_secs(2), errs),
        token_ttl: duration("forms.token_ttl", raw.token_ttl, Duration::from_secs(86_400), errs),
        duplicate_window: duration(
            "forms.duplicate_window",
            raw.duplicate_window,
            Duration::from_secs(15 * 60),
            errs,
        ),
    };
    if f.token_ttl <= f.min_fill_time {
        errs.push("forms.token_ttl: must be longer than forms.min_fill_time".into());
    }
    f
}

pub(super) fn proxy(raw: RawProxy, errs: &mut Vec<String>) -> ProxySettings {
    let mut trusted = Vec::new();
    for (i, s) in raw.trusted.iter().enumerate() {
        match parse_net(s) {
            Some(n) => trusted.push(n),
            None => errs.push(format!(
                "proxy.trusted[{i}]: {s:?} is not an IP address or CIDR range (e.g. \"10.0.0.0/8\")"
            )),
        }
    }
    ProxySettings { trusted }
}

/// An address alone is a one-address range.
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
}

/// On unless a gateway is in production; refused next to one when switched on explicitly.
pub(super) fn sandbox(raw: RawSandbox, production: &[&str], errs: &mut Vec<String>) -> SandboxSettings {
    match raw.enabled {
        Some(true) if !production.is_empty() => {
            errs.push(format!(
                "sandbox.enabled: the sandbox gateway cannot run next to a production gateway ({})",
                production.join(", ")
            ));
            SandboxSettings { enabled: false }
        }
        Some(enabled) => SandboxSettings { enabled },
        None => SandboxSettings {
            enabled: production.is_empty(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!(Rate::parse("10/1m"), Ok(Some(Rate::new(10, MINUTE))));
        assert_eq!(Rate::parse(" 5 / 15m "), Ok(Some(Rate::new(5, 15 * MINUTE))));
        assert_eq!(Rate::parse("off"), Ok(None));
        for bad in ["", "10", "0/1m", "-1/1m", "10/0s", "10/soon", "x/1m", "10/1m/2"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn proxies_are_addresses_or_ranges() {
        let mut errs = Vec::new();
        let p = proxy(
            RawProxy {
                trusted: vec![
                    "10.0.0.0/8".into(),
                    "127.0.0.1".into(),
                    "::1".into(),
                    "10.1.2.3/8".into(),
                ],
            },
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.trusted.len(), 4);
        assert_eq!(p.trusted[3].to_string(), "10.0.0.0/8");
        proxy(
            RawProxy {
                trusted: vec!["example.com".into(), "10.0.0.0/33".into()],
            },
            &mut errs,
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    fn raised(toml: &str) -> (Limits, Vec<String>) {
        let raw: RawLimits = toml::from_str(toml).unwrap();
        let mut errs = Vec::new();
        (limits(raw, &mut errs), errs)
    }

    #[test]
    fn raised_limits_name_addresses_or_ranges_and_a_rate() {
        let (l, errs) = raised(
            "[[raised]]\naddresses = [\"127.0.0.1\", \"10.1.2.3/16\", \"::1\"]\nsubmit_per_ip = \"100000/1s\"\n\
             [[raised]]\naddresses = [\"192.0.2.0/24\"]\nsubmit_per_ip = \"off\"\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(l.raised.len(), 2);
        let nets: Vec<String> = l.raised[0].addresses.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]);
        assert_eq!(
            l.raised[0].submit_per_ip,
            Some(Rate::new(100_000, Duration::from_secs(1)))
        );
        assert_eq!(l.raised[1].submit_per_ip, None);
        assert_eq!(l.submit_per_ip, Some(Rate::new(10, MINUTE)), "the default is untouched");
        assert!(raised("").0.raised.is_empty());
    }

    #[test]
    fn a_bad_raised_limit_is_one_error_naming_the_setting() {
        let cases = [
            (
                "addresses = [\"10.0.0.0/33\"]\nsubmit_per_ip = \"5/1m\"",
                "limits.raised[0].addresses[0]:",
            ),
            (
                "addresses = [\"office\"]\nsubmit_per_ip = \"5/1m\"",
                "limits.raised[0].addresses[0]:",
            ),
            (
                "addresses = []\nsubmit_per_ip = \"5/1m\"",
                "limits.raised[0].addresses:",
            ),
            (
                "addresses = [\"10.0.0.1\"]\nsubmit_per_ip = \"lots\"",
                "limits.raised[0].submit_per_ip:",
            ),
            (
                "addresses = [\"10.0.0.1\"]\nsubmit_per_ip = \"0/1s\"",
                "limits.raised[0].submit_per_ip:",
            ),
            ("addresses = [\"10.0.0.1\"]", "limits.raised[0].submit_per_ip: missing"),
        ];
        for (entry, setting) in cases {
            let (_, errs) = raised(&format!("[[raised]]\n{entry}\n"));
            assert_eq!(errs.len(), 1, "{entry}: {errs:?}");
            assert!(errs[0].starts_with(setting), "{entry}: {errs:?}");
        }
        assert!(toml::from_str::<RawLimits>("[[raised]]\naddress = [\"10.0.0.1\"]\n").is_err());
    }

    #[test]
    fn sandbox_is_on_by_default_only_without_production() {
        let mut errs = Vec::new();
        assert!(sandbox(RawSandbox::default(), &[], &mut errs).enabled);
        assert!(!sandbox(RawSandbox::default(), &["stripe"], &mut errs).enabled);
        assert!(!sandbox(RawSandbox { enabled: Some(false) }, &[], &mut errs).enabled);
        assert!(errs.is_empty());
        sandbox(RawSandbox { enabled: Some(true) }, &["stripe"], &mut errs);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("sandbox.enabled:") && errs[0].contains("stripe"));
    }

    proptest! {
        #[test]
        fn rate_parser_never_panics(s in "\\PC{0,40}") {
            let _ = Rate::parse(&s);
        }

        #[test]
        fn rate_round_trips(count in 1u32..100_000, secs in 1u64..86_400) {
            let text = format!("{count}/{}", humantime::format_duration(Duration::from_secs(secs)));
            prop_assert_eq!(Rate::parse(&text), Ok(Some(Rate::new(count, Duration::from_secs(secs)))));
        }
    }
}
