//! The guard on every public POST form: a signed double-submit token (CSRF, and how long
//! ago the form was served), a honeypot field, and a cross-site `Origin` check. A person
//! never notices it; what fails it gets the same form back to confirm, never a silent drop.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rand::RngCore;
use secrecy::ExposeSecret;

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::form_token::{self, FormTokenError, Nonce, Rules};

/// The cookie holding this browser's nonce.
pub const COOKIE: &str = "leadgate_form";
/// The hidden field holding the token.
pub const FIELD: &str = "form_token";
/// Invisible to people (and to screen readers); bots fill in every field they find.
pub const HONEYPOT: &str = "website";

/// Why a POST was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspect {
    /// Sent from another site's page.
    CrossSite,
    Token(FormTokenError),
    Honeypot,
}

impl Suspect {
    /// The metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Suspect::CrossSite => "cross_site",
            Suspect::Token(FormTokenError::TooFast { .. }) => "too_fast",
            Suspect::Token(FormTokenError::Expired) => "expired",
            Suspect::Token(_) => "csrf",
            Suspect::Honeypot => "honeypot",
        }
    }
}

/// A token for a form about to be served, and the cookie to set when the browser has none.
pub struct Issued {
    pub token: String,
    /// A `Set-Cookie` value, when the browser had no nonce yet.
    cookie: Option<String>,
}

impl Issued {
    /// Sets the nonce cookie on the page carrying the token.
    pub fn attach(&self, mut res: HttpResponse) -> HttpResponse {
        if let Some(c) = &self.cookie {
            if let Ok(v) = header::HeaderValue::from_str(c) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }
}

fn nonce_of(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|n| form_token::nonce_shaped(n))
}

/// A token for the form `purpose`, served now (or, to keep a person's time already spent,
/// at `issued_ms`).
pub fn issue(ctx: &AppContext, req: &HttpRequest, purpose: &str, issued_ms: Option<i64>) -> Issued {
    let (nonce, cookie) = match nonce_of(req) {
        Some(n) => (n, None),
        None => {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            let n = hex::encode(bytes);
            let cookie = cookie(ctx, req, &n);
            (n, Some(cookie))
        }
    };
    let token = form_token::sign(
        ctx.keys.forms.expose_secret(),
        purpose,
        &nonce,
        issued_ms.unwrap_or_else(now_ms),
    );
    Issued { token, cookie }
}

/// HttpOnly, so no script reads it. Over TLS it is `SameSite=None; Partitioned` so an
/// offer embedded in the marketing site's page still has it (partitioned per top-level
/// site, never shared across them); over plain HTTP browsers refuse `None`, so `Lax`.
/// (actix-web's cookie type predates `Partitioned`, so it is appended by hand.)
fn cookie(ctx: &AppContext, req: &HttpRequest, nonce: &str) -> String {
    let ttl = i64::try_from(ctx.settings.forms.token_ttl.as_secs()).unwrap_or(86_400);
    cookie_text(nonce, ctx.https(req), ttl)
}

/// The `Set-Cookie` value, written directly: it goes out on every first visit, and the
/// cookie crate's builder and formatter cost more than the rest of the header. The test
/// below holds it to the crate's rendering.
fn cookie_text(nonce: &str, secure: bool, ttl_secs: i64) -> String {
    if secure {
        format!("{COOKIE}={nonce}; HttpOnly; SameSite=None; Secure; Path=/; Max-Age={ttl_secs}; Partitioned")
    } else {
        format!("{COOKIE}={nonce}; HttpOnly; SameSite=Lax; Path=/; Max-Age={ttl_secs}")
    }
}

/// What the `Origin` header says of a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Absent or `null` (some privacy settings): left to the token and cookie.
    Unknown,
    Ours,
    /// Another site's page: browsers send `Origin` on every cross-site POST.
    Foreign,
}

fn origin(ctx: &AppContext, req: &HttpRequest) -> Origin {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Origin::Unknown;
    };
    if origin == "null" {
        return Origin::Unknown;
    }
    let Ok(url) = url::Url::parse(origin) else {
        return Origin::Foreign;
    };
    let ours = url::Url::parse(&ctx.public_url).is_ok_and(|u| u.origin() == url.origin());
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = url.host_str().map(|h| match url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_owned(),
    });
    if ours || (host.is_some() && authority.as_deref() == host) {
        Origin::Ours
    } else {
        Origin::Foreign
    }
}

/// Lets a POST of form `purpose` through, or says why not.
pub fn check(
    ctx: &AppContext,
    req: &HttpRequest,
    purpose: &str,
    token: Option<&str>,
    honeypot: Option<&str>,
    min_fill: std::time::Duration,
) -> Result<(), Suspect> {
    let origin = origin(ctx, req);
    if origin == Origin::Foreign {
        return Err(Suspect::CrossSite);
    }
    let rules = Rules {
        min_fill,
        ttl: ctx.settings.forms.token_ttl,
    };
    let nonce = nonce_of(req);
    let cookie = match (&nonce, origin) {
        (Some(n), _) => Nonce::Sent(n),
        // Safari keeps no cookie for a framed embed; the browser's Origin proves the POST
        // came from our page instead.
        (None, Origin::Ours) => Nonce::NoneButSameOrigin,
        (None, _) => Nonce::None,
    };
    form_token::verify(ctx.keys.forms.expose_secret(), purpose, token, cookie, now_ms(), rules)
        .map_err(Suspect::Token)?;
    if honeypot.is_some_and(|v| !v.trim().is_empty()) {
        return Err(Suspect::Honeypot);
    }
    Ok(())
}

/// When a refused form was served, if its token said so truthfully: a person sent back
/// to confirm keeps the time already spent.
pub fn served_at(s: Suspect) -> Option<i64> {
    match s {
        Suspect::Token(FormTokenError::TooFast { issued_ms }) => Some(issued_ms),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::cookie::{Cookie, SameSite};

    /// What the cookie crate makes of the same cookie (plus `Partitioned`, which it predates).
    fn by_the_crate(nonce: &str, secure: bool, ttl_secs: i64) -> String {
        let c = Cookie::build(COOKIE, nonce.to_owned())
            .path("/")
            .http_only(true)
            .secure(secure)
            .max_age(actix_web::cookie::time::Duration::seconds(ttl_secs))
            .same_site(if secure { SameSite::None } else { SameSite::Lax })
            .finish();
        if secure {
            format!("{c}; Partitioned")
        } else {
            c.to_string()
        }
    }

    #[test]
    fn the_nonce_cookie_is_what_the_cookie_crate_would_write() {
        let nonce = "00112233445566778899aabbccddeeff";
        for secure in [false, true] {
            for ttl in [0, 60, 86_400, 2_592_000] {
                assert_eq!(cookie_text(nonce, secure, ttl), by_the_crate(nonce, secure, ttl));
            }
        }
    }
}
