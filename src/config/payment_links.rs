//! `[payment_links]`: the links sales send from the CRM, the admin or the API.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::offer::Offer;
use crate::domain::payment_link::{AmountLimits, AmountRange};
use crate::domain::Currency;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaymentLinks {
    /// The offer a link uses when it names none (its gateway, pipeline, seller, follow-ups).
    offer: Option<String>,
    /// How long a link stays payable when its maker gives no expiry.
    expires_in: Option<String>,
    /// The longest expiry anyone may ask for.
    max_expires_in: Option<String>,
    #[serde(default)]
    limits: BTreeMap<String, RawRange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    min_minor: i64,
    max_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLinkSettings {
    /// The slug of the offer links use by default (the first offer when unset).
    pub default_offer: String,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    pub limits: AmountLimits,
}

const DAY: u64 = 24 * 3600;

pub(super) fn payment_links(raw: RawPaymentLinks, offers: &[Offer], errs: &mut Vec<String>) -> PaymentLinkSettings {
    let mut dur = |name: &str, v: Option<String>, default: Duration| match v.map(|s| humantime::parse_duration(&s)) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            errs.push(format!("payment_links.{name}: must not be zero"));
            default
        }
        Some(Err(e)) => {
            errs.push(format!("payment_links.{name}: {e} (examples: \"7d\", \"48h\")"));
            default
        }
    };
    let default_ttl = dur("expires_in", raw.expires_in, Duration::from_secs(7 * DAY));
    let max_ttl = dur("max_expires_in", raw.max_expires_in, Duration::from_secs(90 * DAY));
    if default_ttl > max_ttl {
        errs.push("payment_links.expires_in: longer than max_expires_in".into());
    }
    let default_offer = match raw.offer {
        Some(slug) if offers.iter().any(|o| o.slug.as_str() == slug) => slug,
        Some(slug) => {
            errs.push(format!("payment_links.offer: no offer has the slug {slug:?}"));
            slug
        }
        None => offers.first().map(|o| o.slug.to_string()).unwrap_or_default(),
    };
    let mut limits = BTreeMap::new();
    for (code, r) in raw.limits {
        let Ok(currency) = code.parse::<Currency>() else {
            errs.push(format!("payment_links.limits.{code}: not a currency leadgate sells in"));
            continue;
        };
        if r.min_minor < 1 || r.max_minor < r.min_minor {
            errs.push(format!(
                "payment_links.limits.{code}: needs 1 <= min_minor <= max_minor"
            ));
            continue;
        }
        limits.insert(
            currency,
            AmountRange {
                min_minor: r.min_minor,
                max_minor: r.max_minor,
            },
        );
    }
    PaymentLinkSettings {
        default_offer,
        default_ttl,
        max_ttl,
        limits: AmountLimits(limits),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use crate::domain::Currency;

    fn errors(toml: &str) -> Vec<String> {
        Settings::from_toml(toml, &|_| None)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    #[test]
    fn defaults_use_the_first_offer_for_a_week() {
        let s = Settings::from_toml("", &|_| None).unwrap();
        assert_eq!(s.payment_links.default_offer, "demo");
        assert_eq!(s.payment_links.default_ttl.as_secs(), 7 * 24 * 3600);
        assert!(s.payment_links.limits.0.is_empty());
    }

    #[test]
    fn limits_are_read_per_currency_and_bad_ones_named() {
        let s = Settings::from_toml(
            "[payment_links.limits.COP]\nmin_minor = 100\nmax_minor = 900\n",
            &|_| None,
        )
        .unwrap();
        let cop = s.payment_links.limits.0[&Currency::COP];
        assert_eq!((cop.min_minor, cop.max_minor), (100, 900));
        let errs = errors(
            "[payment_links]\noffer = \"nope\"\nexpires_in = \"0s\"\n\
             [payment_links.limits.XYZ]\nmin_minor = 1\nmax_minor = 2\n\
             [payment_links.limits.USD]\nmin_minor = 5\nmax_minor = 4\n",
        );
        for want in [
            "payment_links.offer:",
            "payment_links.expires_in:",
            "payment_links.limits.XYZ:",
            "payment_links.limits.USD:",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(want)), "{want} in {errs:?}");
        }
    }
}
