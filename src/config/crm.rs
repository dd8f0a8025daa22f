//! The `[crm]` table: which CRM, where it is, and which of its fields and users leadgate
//! writes to. The token comes from the environment only.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// The deal fields leadgate can fill, each mapped in the configuration to a CRM field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldRole {
    /// Our attempt id: how a deal whose creation we did not record is found again.
    AttemptId,
    Offer,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    /// Google Ads' click id, Meta's click id, and the page the visitor came from.
    Gclid,
    Fbclid,
    Referrer,
    /// The gateway's id for the payment (transaction, Checkout Session, payment).
    TransactionId,
    /// The payment status (`declined`, `expired`…), or for an approved payment its standing:
    /// `paid`, `partially_refunded`, `refunded`, `voided`, `disputed`… (see README).
    PaymentStatus,
    /// What was paid, in major units with a `.` decimal point (`199000.00`).
    AmountPaid,
    /// What was refunded so far, in the same form.
    AmountRefunded,
    Gateway,
    /// How the customer paid, in the gateway's words (`card`, `pse`, `nequi`, `pix`…).
    PaymentMethod,
    /// The payment link made for the deal (`[crm.payment_links]`, the admin or the API).
    PaymentLink,
}

impl FieldRole {
    pub const ALL: [FieldRole; 17] = [
        FieldRole::AttemptId,
        FieldRole::Offer,
        FieldRole::UtmSource,
        FieldRole::UtmMedium,
        FieldRole::UtmCampaign,
        FieldRole::UtmTerm,
        FieldRole::UtmContent,
        FieldRole::Gclid,
        FieldRole::Fbclid,
        FieldRole::Referrer,
        FieldRole::TransactionId,
        FieldRole::PaymentStatus,
        FieldRole::AmountPaid,
        FieldRole::AmountRefunded,
        FieldRole::Gateway,
        FieldRole::PaymentMethod,
        FieldRole::PaymentLink,
    ];

    /// The roles written on every payment change, as opposed to once at deal creation.
    pub const PAYMENT: [FieldRole; 6] = [
        FieldRole::TransactionId,
        FieldRole::PaymentStatus,
        FieldRole::AmountPaid,
        FieldRole::AmountRefunded,
        FieldRole::Gateway,
        FieldRole::PaymentMethod,
    ];

    /// The key under `[crm.fields]`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldRole::AttemptId => "attempt_id",
            FieldRole::Offer => "offer",
            FieldRole::UtmSource => "utm_source",
            FieldRole::UtmMedium => "utm_medium",
            FieldRole::UtmCampaign => "utm_campaign",
            FieldRole::UtmTerm => "utm_term",
            FieldRole::UtmContent => "utm_content",
            FieldRole::Gclid => "gclid",
            FieldRole::Fbclid => "fbclid",
            FieldRole::Referrer => "referrer",
            FieldRole::TransactionId => "transaction_id",
            FieldRole::PaymentStatus => "payment_status",
            FieldRole::AmountPaid => "amount_paid",
            FieldRole::AmountRefunded => "amount_refunded",
            FieldRole::Gateway => "gateway",
            FieldRole::PaymentMethod => "payment_method",
            FieldRole::PaymentLink => "payment_link",
        }
    }

    pub fn parse(s: &str) -> Option<FieldRole> {
        FieldRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmKind {
    Builtin,
    Pipedrive,
    Hubspot,
}

impl CrmKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CrmKind::Builtin => "builtin",
            CrmKind::Pipedrive => "pipedrive",
            CrmKind::Hubspot => "hubspot",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CrmSettings {
    pub kind: CrmKind,
    /// Set for Pipedrive and HubSpot.
    pub remote: Option<RemoteCrmSettings>,
    /// `[crm.payment_links]`: deals entering a stage get a payment link.
    pub links: Option<super::crm_links::CrmLinkSettings>,
}

#[derive(Debug, Clone)]
pub struct RemoteCrmSettings {
    /// Pipedrive: the company domain (`https://acme.pipedrive.com`); HubSpot: its API host.
    pub api_base: Url,
    pub timeout: Duration,
    pub token: SecretString,
    /// Id or email of the user who owns the persons, deals and tasks leadgate creates.
    pub owner: Option<String>,
    /// Pipedrive activity type key, or HubSpot task type, for to-do follow-ups (calls are
    /// always the call type; while this is the call type, to-dos get the to-do type).
    pub activity_type: String,
    /// Deal fields leadgate fills (name or key in the CRM); `attempt_id` is always there.
    pub fields: Vec<(FieldRole, String)>,
    /// Most requests sent per rate window (Pipedrive: 2 s, HubSpot: 10 s).
    pub max_requests: u32,
    /// Most searches sent per search window (Pipedrive: 2 s, HubSpot: 1 s).
    pub max_searches: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrm {
    kind: CrmKind,
    api_base: Option<String>,
    timeout: Option<String>,
    owner: Option<String>,
    activity_type: Option<String>,
    max_requests: Option<u32>,
    max_searches: Option<u32>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    payment_links: Option<super::crm_links::RawCrmLinks>,
}

impl Default for RawCrm {
    fn default() -> Self {
        Self {
            kind: CrmKind::Builtin,
            api_base: None,
            timeout: None,
            owner: None,
            activity_type: None,
            max_requests: None,
            max_searches: None,
            fields: BTreeMap::new(),
            payment_links: None,
        }
    }
}

pub const PIPEDRIVE_TOKEN: &str = "LEADGATE_PIPEDRIVE_API_TOKEN";
pub const HUBSPOT_TOKEN: &str = "LEADGATE_HUBSPOT_TOKEN";

struct Vendor {
    token_var: &'static str,
    api_base: Option<&'static str>,
    activity_type: &'static str,
    attempt_field: &'static str,
    max_requests: u32,
    max_searches: u32,
}

fn vendor(kind: CrmKind) -> Option<Vendor> {
    match kind {
        CrmKind::Builtin => None,
        // The lowest plan's burst limits: 20 requests and 10 searches per 2 s per token.
        CrmKind::Pipedrive => Some(Vendor {
            token_var: PIPEDRIVE_TOKEN,
            api_base: None,
            activity_type: "call",
            attempt_field: "leadgate attempt",
            max_requests: 20,
            max_searches: 10,
        }),
        // 100 requests per 10 s (Free/Starter), search 5 per second.
        CrmKind::Hubspot => Some(Vendor {
            token_var: HUBSPOT_TOKEN,
            api_base: Some("https://api.hubapi.com"),
            activity_type: "CALL",
            attempt_field: "leadgate_attempt_id",
            max_requests: 100,
            max_searches: 5,
        }),
    }
}

/// Every problem lands in `errs` as `setting: message`.
pub(super) fn build(mut raw: RawCrm, env: &dyn Fn(&str) -> Option<String>, errs: &mut Vec<String>) -> CrmSettings {
    let kind = raw.kind;
    let links = raw
        .payment_links
        .take()
        .and_then(|l| super::crm_links::build(l, kind, env, errs));
    let Some(v) = vendor(kind) else {
        if raw.api_base.is_some() || !raw.fields.is_empty() || raw.owner.is_some() {
            errs.push("crm: api_base, owner and fields are for kind = \"pipedrive\" or \"hubspot\"".into());
        }
        return CrmSettings {
            kind,
            remote: None,
            links,
        };
    };
    let remote = remote(raw, &v, env, errs);
    CrmSettings { kind, remote, links }
}

fn remote(
    raw: RawCrm,
    v: &Vendor,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<String>,
) -> Option<RemoteCrmSettings> {
    let before = errs.len();
    let api_base = match raw.api_base.as_deref().or(v.api_base) {
        None => {
            errs.push(
                "crm.api_base: required for Pipedrive: your company domain, e.g. \"https://acme.pipedrive.com\"".into(),
            );
            None
        }
        Some(text) => match Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                errs.push(format!("crm.api_base: {text:?} is not an http(s) URL"));
                None
            }
        },
    };
    let timeout = match raw.timeout.as_deref().map(humantime::parse_duration) {
        None => Duration::from_secs(10),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            errs.push(format!("crm.timeout: {e}"));
            Duration::from_secs(10)
        }
    };
    let token = env(v.token_var).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if token.is_none() {
        errs.push(format!("{}: required by [crm] and not set (or empty)", v.token_var));
    }
    let mut fields = vec![(FieldRole::AttemptId, v.attempt_field.to_owned())];
    for (name, value) in raw.fields {
        match FieldRole::parse(&name) {
            Some(FieldRole::AttemptId) => fields[0].1 = value,
            Some(role) => fields.push((role, value)),
            None => errs.push(format!(
                "crm.fields.{name}: unknown (use {})",
                FieldRole::ALL.map(|r| r.as_str()).join(", ")
            )),
        }
    }
    for (key, n) in [("max_requests", raw.max_requests), ("max_searches", raw.max_searches)] {
        if n == Some(0) {
            errs.push(format!("crm.{key}: must be at least 1"));
        }
    }
    if errs.len() > before {
        return None;
    }
    Some(RemoteCrmSettings {
        api_base: api_base?,
        timeout,
        token: SecretString::from(token?),
        owner: raw.owner.filter(|o| !o.trim().is_empty()),
        activity_type: raw.activity_type.unwrap_or_else(|| v.activity_type.to_owned()),
        fields,
        max_requests: raw.max_requests.unwrap_or(v.max_requests),
        max_searches: raw.max_searches.unwrap_or(v.max_searches),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::FieldRole;
    use crate::config::{CrmKind, Settings};
    use secrecy::ExposeSecret;

    fn errors(toml: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        Settings::from_toml(toml, env).err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn pipedrive_needs_its_domain_and_token_and_names_both() {
        let errs = errors("[crm]\nkind = \"pipedrive\"", &|_| None);
        assert!(errs.iter().any(|e| e.starts_with("crm.api_base: required")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("LEADGATE_PIPEDRIVE_API_TOKEN:")),
            "{errs:?}"
        );
    }

    #[test]
    fn hubspot_defaults_and_field_mapping() {
        let toml = "[crm]\nkind = \"hubspot\"\nowner = \"ana@example.com\"\n[crm.fields]\nutm_campaign = \"campaign\"";
        let env = |k: &str| (k == "LEADGATE_HUBSPOT_TOKEN").then(|| " pat-na1-abc ".to_string());
        let s = Settings::from_toml(toml, &env).unwrap();
        assert_eq!(s.crm.kind, CrmKind::Hubspot);
        let r = s.crm.remote.unwrap();
        assert_eq!(r.api_base.as_str(), "https://api.hubapi.com/");
        assert_eq!(r.token.expose_secret(), "pat-na1-abc");
        assert_eq!(r.activity_type, "CALL");
        assert_eq!((r.max_requests, r.max_searches), (100, 5));
        assert_eq!(
            r.fields,
            vec![
                (FieldRole::AttemptId, "leadgate_attempt_id".to_string()),
                (FieldRole::UtmCampaign, "campaign".to_string())
            ]
        );
    }

    #[test]
    fn unknown_fields_zero_pacing_and_remote_keys_on_builtin_are_errors() {
        let env = |k: &str| (k == "LEADGATE_HUBSPOT_TOKEN").then(|| "t".to_string());
        let errs = errors(
            "[crm]\nkind = \"hubspot\"\nmax_requests = 0\n[crm.fields]\ncolour = \"x\"",
            &env,
        );
        assert!(
            errs.iter().any(|e| e.starts_with("crm.fields.colour: unknown")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e == "crm.max_requests: must be at least 1"),
            "{errs:?}"
        );
        let errs = errors("[crm]\nkind = \"builtin\"\nowner = \"x\"", &|_| None);
        assert_eq!(errs.len(), 1, "{errs:?}");
    }
}
