//! Security headers on every response: a strict CSP (no inline script or style; the pages
//! have none), no framing except an offer's form by ourselves (the admin preview) and the
//! sites it names, HSTS over TLS.

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
    /// The admin page's: it frames our own forms as the embed's live preview.
    admin: HeaderValue,
    /// Each offer form's CSP and `X-Frame-Options`, by slug.
    offer_frames: HashMap<String, Framing>,
    hsts: Option<HeaderValue>,
}

/// How a page may be framed: its CSP, and the legacy header for browsers without
/// `frame-ancestors` (none when other sites may frame it, as it cannot name them).
#[derive(Clone)]
struct Framing {
    csp: HeaderValue,
    xfo: Option<HeaderValue>,
}

/// `form-action` also governs where a form's redirect may go: the hosted checkouts are
/// on the gateways' https origins.
fn csp(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self' https:; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// The admin page alone may hold frames, and only of our own pages.
fn admin_csp() -> String {
    format!("{}; frame-src 'self'", csp("'none'"))
}

impl SecurityHeaders {
    pub fn new(settings: &Settings, public_url: &str) -> Self {
        let value =
            |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let offer_frames = settings
            .offers
            .iter()
            .map(|o| {
                let ancestors = format!("'self' {}", o.embed_origins.join(" "));
                let xfo = o
                    .embed_origins
                    .is_empty()
                    .then(|| HeaderValue::from_static("SAMEORIGIN"));
                let framing = Framing {
                    csp: value(csp(ancestors.trim_end())),
                    xfo,
                };
                (o.slug.to_string(), framing)
            })
            .collect();
        Self {
            no_frames: value(csp("'none'")),
            admin: value(admin_csp()),
            offer_frames,
            // A year, the usual; no includeSubDomains: other hosts of the domain are not ours.
            hsts: public_url
                .starts_with("https://")
                .then(|| HeaderValue::from_static("max-age=31536000")),
        }
    }

    /// The CSP and `X-Frame-Options` for `path`.
    fn for_path(&self, path: &str) -> Framing {
        let deny = |csp: &HeaderValue| Framing {
            csp: csp.clone(),
            xfo: Some(HeaderValue::from_static("DENY")),
        };
        if path == "/admin" {
            return deny(&self.admin);
        }
        let slug = path.strip_prefix("/c/").filter(|s| !s.contains('/'));
        match slug.and_then(|s| self.offer_frames.get(s)) {
            Some(framing) => framing.clone(),
            None => deny(&self.no_frames),
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
    let chosen = req
        .app_data::<web::Data<SecurityHeaders>>()
        .map(|h| (h.for_path(req.path()), h.hsts.clone()));
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Some((framing, hsts)) = chosen {
        set_if_absent(headers, header::CONTENT_SECURITY_POLICY, framing.csp);
        if let Some(xfo) = framing.xfo {
            // For browsers that predate frame-ancestors.
            set_if_absent(headers, header::X_FRAME_OPTIONS, xfo);
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
    fn offer_forms_may_be_framed_by_us_and_the_sites_they_name_and_nothing_else_at_all() {
        let s = settings(
            "[[offers]]\nslug = \"a\"\ntitle = \"A\"\nprice_minor = 100\ncurrency = \"COP\"\nembed_origins = [\"https://shop.example.com/\"]\n\
             [[offers]]\nslug = \"b\"\ntitle = \"B\"\nprice_minor = 100\ncurrency = \"COP\"\n",
        );
        let h = SecurityHeaders::new(&s, "https://pay.example.com");
        let csp = |f: &Framing| f.csp.to_str().unwrap().to_owned();
        let a = h.for_path("/c/a");
        assert!(a.xfo.is_none());
        assert!(
            csp(&a).ends_with("frame-ancestors 'self' https://shop.example.com"),
            "{}",
            csp(&a)
        );
        let b = h.for_path("/c/b");
        assert_eq!(b.xfo.unwrap(), "SAMEORIGIN");
        assert!(csp(&h.for_path("/c/b")).ends_with("frame-ancestors 'self'"));
        for path in ["/c/nope", "/c/a/x", "/admin", "/admin/login", "/r/token", "/"] {
            let f = h.for_path(path);
            assert_eq!(f.xfo.as_ref().unwrap(), "DENY", "{path}");
            assert!(csp(&f).contains("frame-ancestors 'none'"), "{path}");
            assert_eq!(csp(&f).contains("frame-src 'self'"), path == "/admin", "{path}");
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
