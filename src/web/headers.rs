//! Security headers on every response: a strict CSP (no inline script or style; the pages
//! have none), no framing except an offer's form by the sites it names, HSTS over TLS.

use std::collections::HashMap;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::config::Settings;

/// Built once at start-up from the offers and the public URL.
pub struct SecurityHeaders {
    /// The CSP of every page that may not be framed.
    no_frames: HeaderValue,
    /// The CSP of each offer page that names embed origins, by slug.
    offer_frames: HashMap<String, HeaderValue>,
    hsts: Option<HeaderValue>,
}

/// `form-action` also governs where a form's redirect may go: the hosted checkouts are
/// on the gateways' https origins.
fn csp(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self' https:; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )
}

impl SecurityHeaders {
    pub fn new(settings: &Settings, public_url: &str) -> Self {
        let value =
            |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let offer_frames = settings
            .offers
            .iter()
            .filter(|o| !o.embed_origins.is_empty())
            .map(|o| {
                let ancestors = format!("'self' {}", o.embed_origins.join(" "));
                (o.slug.to_string(), value(csp(&ancestors)))
            })
            .collect();
        Self {
            no_frames: value(csp("'none'")),
            offer_frames,
            // A year, the usual; no includeSubDomains: other hosts of the domain are not ours.
            hsts: public_url
                .starts_with("https://")
                .then(|| HeaderValue::from_static("max-age=31536000")),
        }
    }

    /// The CSP for `path`, and whether framing is refused outright.
    fn for_path(&self, path: &str) -> (&HeaderValue, bool) {
        let slug = path.strip_prefix("/c/").filter(|s| !s.contains('/'));
        match slug.and_then(|s| self.offer_frames.get(s)) {
            Some(csp) => (csp, false),
            None => (&self.no_frames, true),
        }
    }
}

fn set_if_absent(headers: &mut header::HeaderMap, name: HeaderName, value: HeaderValue) {
    if !headers.contains_key(&name) {
        headers.insert(name, value);
    }
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let chosen = req.app_data::<web::Data<SecurityHeaders>>().map(|h| {
        let (csp, deny) = h.for_path(req.path());
        (csp.clone(), deny, h.hsts.clone())
    });
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Some((csp, deny, hsts)) = chosen {
        set_if_absent(headers, header::CONTENT_SECURITY_POLICY, csp);
        if deny {
            // For browsers that predate frame-ancestors.
            set_if_absent(headers, header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        if let Some(v) = hsts {
            set_if_absent(headers, header::STRICT_TRANSPORT_SECURITY, v);
        }
    }
    set_if_absent(
        headers,
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set_if_absent(
        headers,
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Settings {
        Settings::from_toml(toml, &|_| None).unwrap()
    }

    #[test]
    fn only_offers_naming_origins_may_be_framed_and_only_by_them() {
        let s = settings(
            "[[offers]]\nslug = \"a\"\ntitle = \"A\"\nprice_minor = 100\ncurrency = \"COP\"\nembed_origins = [\"https://shop.example.com/\"]\n\
             [[offers]]\nslug = \"b\"\ntitle = \"B\"\nprice_minor = 100\ncurrency = \"COP\"\n",
        );
        let h = SecurityHeaders::new(&s, "https://pay.example.com");
        let (csp, deny) = h.for_path("/c/a");
        assert!(!deny);
        assert!(
            csp.to_str()
                .unwrap()
                .ends_with("frame-ancestors 'self' https://shop.example.com"),
            "{csp:?}"
        );
        for path in ["/c/b", "/c/a/x", "/admin", "/r/token", "/"] {
            let (csp, deny) = h.for_path(path);
            assert!(deny, "{path}");
            assert!(csp.to_str().unwrap().ends_with("frame-ancestors 'none'"), "{path}");
        }
        assert!(h.hsts.is_some());
        assert!(SecurityHeaders::new(&s, "http://127.0.0.1:8080").hsts.is_none());
    }

    #[test]
    fn the_policy_allows_no_inline_script_or_style() {
        let csp = csp("'none'");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    }
}
