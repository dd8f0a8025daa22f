//! `[seller]` and each offer's `[offers.seller]`, `[offers.consent]`, `thank_you_url` and
//! `continue_url`: what the form and result pages show about who sells, what the customer
//! agrees to, and where a paid customer goes next.
//!
//! ```toml
//! [seller]                              # the default of every offer
//! seller_name = "Academia Ejemplo"
//! logo = "branding/logo.png"            # a local file read at start-up (png, jpg, gif, webp, svg)
//! privacy_url = "https://example.com/privacidad"   # https only
//! terms_url = "https://example.com/terminos"
//!
//! [[offers]]
//! thank_you_url = "https://example.com/gracias"     # signed redirect once paid (README)
//! continue_url = "https://example.com/acceso"       # a "continue" link on the paid page
//! [offers.seller]                       # any key of [seller], for this offer
//! [offers.consent]                      # a checkbox on the form, its version kept per lead
//! required = true                       # default true
//! version = "2026-11"
//! text = { es = "...", "pt-BR" = "...", en = "..." }
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::trust::{Consent, Localized, Logo, Seller, Trust};

/// Larger than any sensible logo; keeps a wrong path (a video) out of memory.
const LOGO_MAX_BYTES: usize = 512 * 1024;
/// The thank-you signature's key, from the environment only.
pub const THANK_YOU_SECRET: &str = "LEADGATE_THANK_YOU_SECRET";

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeller {
    seller_name: Option<String>,
    logo: Option<String>,
    privacy_url: Option<String>,
    terms_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsent {
    required: Option<bool>,
    version: String,
    text: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    es: Option<String>,
    #[serde(rename = "pt-BR")]
    pt_br: Option<String>,
    en: Option<String>,
}

/// An offer's keys of this module, as read from its table.
pub(super) struct RawOfferPage {
    pub seller: Option<RawSeller>,
    pub consent: Option<RawConsent>,
    pub thank_you_url: Option<String>,
    pub continue_url: Option<String>,
}

/// `[seller]`, checked once (its logo read once) and shared by the offers that keep it.
#[derive(Debug, Default)]
pub(super) struct Base {
    seller: Seller,
}

pub(super) fn base(raw: Option<RawSeller>, errs: &mut Vec<String>) -> Base {
    let raw = raw.unwrap_or_default();
    let mut own = Vec::new();
    let seller = seller(&raw, &mut own);
    errs.extend(own.into_iter().map(|e| format!("seller.{e}")));
    Base { seller }
}

/// The offer's page settings; errors are pushed without the `offers[i].` prefix.
pub(super) fn trust(base: &Base, o: RawOfferPage, errs: &mut Vec<String>) -> Trust {
    let seller = match o.seller {
        None => base.seller.clone(),
        Some(over) => {
            // Only the keys the offer sets are its own: the rest (logo read once) stay shared.
            let mut own = Vec::new();
            let mine = seller(&over, &mut own);
            errs.extend(own.into_iter().map(|e| format!("seller.{e}")));
            let b = &base.seller;
            Seller {
                name: over.seller_name.as_ref().and(mine.name).or_else(|| b.name.clone()),
                logo: over.logo.as_ref().and(mine.logo).or_else(|| b.logo.clone()),
                privacy_url: over
                    .privacy_url
                    .as_ref()
                    .and(mine.privacy_url)
                    .or_else(|| b.privacy_url.clone()),
                terms_url: over
                    .terms_url
                    .as_ref()
                    .and(mine.terms_url)
                    .or_else(|| b.terms_url.clone()),
            }
        }
    };
    Trust {
        seller,
        consent: o.consent.and_then(|c| consent(c, errs)),
        thank_you_url: o.thank_you_url.and_then(|u| https("thank_you_url", &u, errs)),
        continue_url: o.continue_url.and_then(|u| https("continue_url", &u, errs)),
    }
}

/// A thank-you URL is only worth its signature: the key must be there, and long.
pub(super) fn check_secret(any_thank_you: bool, secret: Option<&str>, errs: &mut Vec<String>) {
    match secret {
        Some(s) if s.len() < 32 => errs.push(format!("{THANK_YOU_SECRET}: must be at least 32 characters")),
        None if any_thank_you => errs.push(format!(
            "{THANK_YOU_SECRET}: required by an offer's thank_you_url (it signs the purchase parameters; generate one with `openssl rand -hex 32`)"
        )),
        _ => {}
    }
}

fn seller(raw: &RawSeller, errs: &mut Vec<String>) -> Seller {
    let name = raw.seller_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if raw.seller_name.is_some() && name.is_none() {
        errs.push("seller_name: must not be empty".into());
    }
    Seller {
        name: name.map(str::to_owned),
        logo: raw.logo.as_deref().and_then(|p| match logo(Path::new(p)) {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                errs.push(format!("logo: {p:?}: {e}"));
                None
            }
        }),
        privacy_url: raw.privacy_url.as_deref().and_then(|u| https("privacy_url", u, errs)),
        terms_url: raw.terms_url.as_deref().and_then(|u| https("terms_url", u, errs)),
    }
}

fn https(key: &str, raw: &str, errs: &mut Vec<String>) -> Option<Url> {
    match Url::parse(raw.trim()) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() && u.username().is_empty() => Some(u),
        _ => {
            errs.push(format!("{key}: {raw:?} is not an https URL"));
            None
        }
    }
}

fn logo(path: &Path) -> Result<Logo, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let content_type = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ => return Err("must be a .png, .jpg, .gif, .webp or .svg file".into()),
    };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.is_empty() || bytes.len() > LOGO_MAX_BYTES {
        return Err(format!("must be 1 byte to {} KiB", LOGO_MAX_BYTES / 1024));
    }
    let hash = hex::encode(&Sha256::digest(&bytes)[..8]);
    Ok(Logo {
        path: format!("/logo/{hash}.{ext}"),
        bytes,
        content_type,
    })
}

fn consent(c: RawConsent, errs: &mut Vec<String>) -> Option<Consent> {
    let version = c.version.trim();
    let ok_version = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok_version {
        errs.push(format!(
            "consent.version: {:?} must be 1-64 letters, digits, '-', '.' or '_' (e.g. \"2026-11\")",
            c.version
        ));
    }
    let mut text = |lang: &str, t: Option<String>| {
        let t = t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        if t.is_none() {
            errs.push(format!(
                "consent.text.{lang}: required (the form is shown in es, pt-BR and en)"
            ));
        }
        t.unwrap_or_default()
    };
    let text = Localized {
        es: text("es", c.text.es),
        pt_br: text("pt-BR", c.text.pt_br),
        en: text("en", c.text.en),
    };
    ok_version.then(|| Consent {
        required: c.required.unwrap_or(true),
        version: version.to_owned(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seller: Option<RawSeller>) -> RawOfferPage {
        RawOfferPage {
            seller,
            consent: None,
            thank_you_url: None,
            continue_url: None,
        }
    }

    #[test]
    fn an_offer_overrides_only_the_keys_it_sets() {
        let mut errs = Vec::new();
        let base = base(
            Some(RawSeller {
                seller_name: Some("Academia".into()),
                privacy_url: Some("https://a.example/privacy".into()),
                ..RawSeller::default()
            }),
            &mut errs,
        );
        let over = RawSeller {
            seller_name: Some("Otra".into()),
            ..RawSeller::default()
        };
        let t = trust(&base, page(Some(over)), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(t.seller.name.as_deref(), Some("Otra"));
        assert_eq!(t.seller.privacy_url.unwrap().as_str(), "https://a.example/privacy");
        assert_eq!(
            trust(&base, page(None), &mut errs).seller.name.as_deref(),
            Some("Academia")
        );
    }

    #[test]
    fn links_must_be_https_and_logos_readable_images() {
        let mut errs = Vec::new();
        let raw = RawSeller {
            seller_name: Some(" ".into()),
            logo: Some("logo.exe".into()),
            privacy_url: Some("http://a.example/privacy".into()),
            terms_url: Some("javascript:alert(1)".into()),
        };
        base(Some(raw), &mut errs);
        for key in [
            "seller.seller_name:",
            "seller.logo:",
            "seller.privacy_url:",
            "seller.terms_url:",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(key)), "{key} missing in {errs:?}");
        }
    }

    #[test]
    fn consent_needs_a_version_and_every_language() {
        let mut errs = Vec::new();
        let raw = RawConsent {
            required: None,
            version: "2026 11".into(),
            text: RawText {
                es: Some("Acepto".into()),
                pt_br: None,
                en: Some("I agree".into()),
            },
        };
        assert!(consent(raw, &mut errs).is_none());
        assert!(errs.iter().any(|e| e.starts_with("consent.version:")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("consent.text.pt-BR:")), "{errs:?}");
    }

    #[test]
    fn settings_refuse_a_thank_you_url_without_its_secret() {
        let toml = "[[offers]]\nslug = \"t\"\ntitle = \"T\"\nprice_minor = 100\ncurrency = \"USD\"\n\
                    thank_you_url = \"https://shop.example/gracias\"";
        let errs = crate::config::Settings::from_toml(toml, &|_| None).unwrap_err().0;
        assert!(errs.iter().any(|e| e.starts_with(THANK_YOU_SECRET)), "{errs:?}");
        let secret = |k: &str| (k == THANK_YOU_SECRET).then(|| "s".repeat(32));
        let s = crate::config::Settings::from_toml(toml, &secret).unwrap();
        let url = s.offer("t").unwrap().trust.thank_you_url.as_ref().unwrap();
        assert_eq!(url.as_str(), "https://shop.example/gracias");
    }

    #[test]
    fn a_thank_you_url_needs_a_long_secret() {
        let mut errs = Vec::new();
        check_secret(true, None, &mut errs);
        check_secret(false, Some("short"), &mut errs);
        check_secret(true, Some(&"k".repeat(32)), &mut errs);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
