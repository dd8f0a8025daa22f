//! `[crm.payment_links]`: which deal stage makes a payment link, what it charges, and how
//! the CRM's webhooks prove they come from it. Secrets come from the environment only.

use secrecy::SecretString;
use serde::Deserialize;

use super::crm::CrmKind;
use crate::domain::offer::Offer;
use crate::domain::Lang;

pub const PIPEDRIVE_WEBHOOK_USER: &str = "LEADGATE_PIPEDRIVE_WEBHOOK_USER";
pub const PIPEDRIVE_WEBHOOK_PASSWORD: &str = "LEADGATE_PIPEDRIVE_WEBHOOK_PASSWORD";
/// The client secret of the HubSpot app whose workflow action signs the request (v3).
pub const HUBSPOT_CLIENT_SECRET: &str = "LEADGATE_HUBSPOT_CLIENT_SECRET";
/// The value of the secret header a HubSpot workflow's "Send a webhook" action adds.
pub const HUBSPOT_WEBHOOK_SECRET: &str = "LEADGATE_HUBSPOT_WEBHOOK_SECRET";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrmLinks {
    stage: String,
    #[serde(default)]
    amount: LinkAmount,
    offer: Option<String>,
    lang: Option<String>,
    /// HubSpot only: `"signature"` (request signature v3) or `"header"`.
    hubspot_auth: Option<String>,
    /// HubSpot with `hubspot_auth = "header"`: the header's name.
    header: Option<String>,
}

/// What a link made from a deal charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkAmount {
    /// The deal's value and currency, checked against `[payment_links.limits]`.
    #[default]
    Deal,
    /// The offer's own price.
    Offer,
}

/// How a CRM webhook proves it is the CRM's.
#[derive(Debug, Clone)]
pub enum WebhookAuth {
    /// Pipedrive's webhook HTTP basic auth (`http_auth_user` / `http_auth_password`).
    Basic { user: SecretString, password: SecretString },
    /// HubSpot's `X-HubSpot-Signature-v3`, keyed by the app's client secret.
    HubspotSignature { client_secret: SecretString },
    /// A header whose value only the workflow knows.
    Header { name: String, value: SecretString },
}

#[derive(Debug, Clone)]
pub struct CrmLinkSettings {
    /// The stage (name or id) whose entry makes a link, in the link offer's pipeline.
    pub stage: String,
    pub amount: LinkAmount,
    /// The offer links use; `None`: `[payment_links] offer`.
    pub offer: Option<String>,
    pub lang: Lang,
    pub auth: WebhookAuth,
}

fn secret(env: &dyn Fn(&str) -> Option<String>, var: &str, errs: &mut Vec<String>) -> Option<SecretString> {
    match env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) => Some(SecretString::from(v)),
        None => {
            errs.push(format!("{var}: required by [crm.payment_links] and not set (or empty)"));
            None
        }
    }
}

pub(super) fn build(
    raw: RawCrmLinks,
    kind: CrmKind,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<String>,
) -> Option<CrmLinkSettings> {
    let before = errs.len();
    if raw.stage.trim().is_empty() {
        errs.push("crm.payment_links.stage: required (a stage name or id)".into());
    }
    let lang = match raw.lang.as_deref() {
        None => Lang::Es,
        Some(code) => Lang::from_code(code).unwrap_or_else(|| {
            errs.push(format!(
                "crm.payment_links.lang: {code:?} is not a language leadgate speaks"
            ));
            Lang::Es
        }),
    };
    let auth = match (kind, raw.hubspot_auth.as_deref()) {
        (CrmKind::Pipedrive, None) => {
            let user = secret(env, PIPEDRIVE_WEBHOOK_USER, errs);
            let password = secret(env, PIPEDRIVE_WEBHOOK_PASSWORD, errs);
            user.zip(password)
                .map(|(user, password)| WebhookAuth::Basic { user, password })
        }
        (CrmKind::Hubspot, None | Some("signature")) => secret(env, HUBSPOT_CLIENT_SECRET, errs)
            .map(|client_secret| WebhookAuth::HubspotSignature { client_secret }),
        (CrmKind::Hubspot, Some("header")) => {
            let name = raw
                .header
                .clone()
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            if name.is_none() {
                errs.push("crm.payment_links.header: required with hubspot_auth = \"header\" (a header name)".into());
            }
            let value = secret(env, HUBSPOT_WEBHOOK_SECRET, errs);
            name.zip(value).map(|(name, value)| WebhookAuth::Header { name, value })
        }
        (CrmKind::Hubspot, Some(other)) => {
            errs.push(format!(
                "crm.payment_links.hubspot_auth: {other:?} (use \"signature\" or \"header\")"
            ));
            None
        }
        (CrmKind::Pipedrive, Some(_)) => {
            errs.push("crm.payment_links.hubspot_auth: for kind = \"hubspot\" only".into());
            None
        }
        (CrmKind::Builtin, _) => {
            errs.push("crm.payment_links: for kind = \"pipedrive\" or \"hubspot\"".into());
            None
        }
    };
    if errs.len() > before {
        return None;
    }
    Some(CrmLinkSettings {
        stage: raw.stage.trim().to_owned(),
        amount: raw.amount,
        offer: raw.offer,
        lang,
        auth: auth?,
    })
}

/// The offer a link from the CRM uses must exist (offers are read after `[crm]`).
pub(super) fn check_offer(links: Option<&CrmLinkSettings>, offers: &[Offer], errs: &mut Vec<String>) {
    if let Some(slug) = links.and_then(|l| l.offer.as_deref()) {
        if !offers.iter().any(|o| o.slug.as_str() == slug) {
            errs.push(format!("crm.payment_links.offer: no offer has the slug {slug:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    const PD: &str = "[crm]\nkind = \"pipedrive\"\napi_base = \"https://acme.pipedrive.com\"\n";

    fn errors(toml: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        Settings::from_toml(toml, env).err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn pipedrive_needs_both_basic_auth_variables() {
        let toml = format!("{PD}[crm.payment_links]\nstage = \"Send link\"\n");
        let env = |k: &str| (k == "LEADGATE_PIPEDRIVE_API_TOKEN").then(|| "t".to_string());
        let errs = errors(&toml, &env);
        assert!(errs.iter().any(|e| e.starts_with(PIPEDRIVE_WEBHOOK_USER)), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with(PIPEDRIVE_WEBHOOK_PASSWORD)),
            "{errs:?}"
        );
        let env = |k: &str| match k {
            "LEADGATE_PIPEDRIVE_API_TOKEN" | PIPEDRIVE_WEBHOOK_USER | PIPEDRIVE_WEBHOOK_PASSWORD => {
                Some("x".to_string())
            }
            _ => None,
        };
        let s = Settings::from_toml(&toml, &env).unwrap();
        let links = s.crm.links.unwrap();
        assert_eq!((links.stage.as_str(), links.amount), ("Send link", LinkAmount::Deal));
        assert!(matches!(links.auth, WebhookAuth::Basic { .. }));
    }

    #[test]
    fn hubspot_header_auth_offer_and_lang_are_checked() {
        let env = |k: &str| match k {
            "LEADGATE_HUBSPOT_TOKEN" | HUBSPOT_WEBHOOK_SECRET => Some("x".to_string()),
            _ => None,
        };
        let base = "[crm]\nkind = \"hubspot\"\n[crm.payment_links]\nstage = \"s\"\n";
        let errs = errors(&format!("{base}hubspot_auth = \"header\"\n"), &env);
        assert!(
            errs.iter().any(|e| e.starts_with("crm.payment_links.header")),
            "{errs:?}"
        );
        let errs = errors(
            &format!("{base}hubspot_auth = \"header\"\nheader = \"X-Secret\"\noffer = \"nope\"\n"),
            &env,
        );
        assert!(
            errs.iter().any(|e| e.starts_with("crm.payment_links.offer")),
            "{errs:?}"
        );
        let errs = errors(&format!("{base}lang = \"fr\"\n"), &env);
        assert!(errs.iter().any(|e| e.starts_with("crm.payment_links.lang")), "{errs:?}");
        let errs = errors(&format!("{base}hubspot_auth = \"signature\"\n"), &env);
        assert!(errs.iter().any(|e| e.starts_with(HUBSPOT_CLIENT_SECRET)), "{errs:?}");
        let errs = errors(
            "[crm]\nkind = \"builtin\"\n[crm.payment_links]\nstage = \"s\"\n",
            &|_| None,
        );
        assert!(errs.iter().any(|e| e.starts_with("crm.payment_links:")), "{errs:?}");
    }
}
