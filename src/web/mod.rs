//! HTTP layer: parse the request, call a flow, render the answer. Errors are mapped to
//! HTTP here, once: customers get a page in their language, machines a precise status.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::domain::Lang;

pub mod admin;
pub mod admin_links;
pub mod api;
mod api_doc;
mod assets;
pub mod checkout;
pub mod crm_webhooks;
pub mod embed;
pub mod forms;
pub mod headers;
pub mod i18n;
pub mod i18n_admin;
pub mod link_request;
pub mod pages;
pub mod payment_links;
pub mod phone_field;
pub mod returns;
pub mod sandbox;
pub mod unsubscribe;
pub mod webhooks;

/// Form bodies are a few hundred bytes; anything near this limit is not a customer.
pub const FORM_LIMIT: usize = 16 * 1024;
/// Gateways' webhook bodies are a few KB.
pub const WEBHOOK_LIMIT: usize = 256 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .configure(api::routes)
        .app_data(form_config())
        .route("/", web::get().to(index))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(admin::metrics))
        .route("/c/{offer}", web::get().to(checkout::show))
        .route("/c/{offer}", web::post().to(checkout::submit))
        .route("/r/{token}", web::get().to(checkout::resume_page))
        .route("/r/{token}", web::post().to(checkout::resume))
        .route("/l/{token}", web::get().to(payment_links::show))
        .route("/l/{token}", web::post().to(payment_links::pay))
        .route("/u/{token}", web::get().to(unsubscribe::show))
        .route("/u/{token}", web::post().to(unsubscribe::confirm))
        .route("/return/{gateway}", web::get().to(returns::show))
        .route("/status/{attempt}", web::get().to(returns::status))
        .route("/logo/{file}", web::get().to(logo))
        .service(
            web::resource("/webhooks/{gateway}")
                .app_data(web::PayloadConfig::new(WEBHOOK_LIMIT))
                .route(web::post().to(webhooks::receive)),
        )
        .service(
            web::resource("/crm/pipedrive/webhook")
                .app_data(web::PayloadConfig::new(WEBHOOK_LIMIT))
                .route(web::post().to(crm_webhooks::pipedrive)),
        )
        .service(
            web::resource("/crm/hubspot/webhook")
                .app_data(web::PayloadConfig::new(WEBHOOK_LIMIT))
                .route(web::post().to(crm_webhooks::hubspot)),
        )
        .route("/sandbox/pay/{id}", web::get().to(sandbox::show))
        .route("/sandbox/pay/{id}", web::post().to(sandbox::complete))
        .route("/admin", web::get().to(admin::index))
        .route("/admin/login", web::get().to(admin::login_form))
        .route("/admin/login", web::post().to(admin::login))
        .route("/admin/logout", web::post().to(admin::logout))
        .route("/admin/attempts/{id}/paid", web::post().to(admin::mark_paid))
        .route("/admin/payment-links", web::post().to(admin_links::create_link))
        .route("/admin/api-tokens", web::post().to(admin_links::create_token))
        .route(
            "/admin/api-tokens/{id}/revoke",
            web::post().to(admin_links::revoke_token),
        )
        .route("/admin/deliveries/{id}/redeliver", web::post().to(admin::redeliver))
        .default_service(web::to(not_found));
}

fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(FORM_LIMIT).error_handler(|err, req| {
        use actix_web::error::UrlencodedError;
        let lang = lang_of(req);
        let kind = match err {
            UrlencodedError::Overflow { .. } => PageErrorKind::TooLarge,
            _ => PageErrorKind::BadRequest,
        };
        PageError { lang, kind }.into()
    })
}

/// The visitor's language: `?lang=` wins, then Accept-Language, then Spanish.
pub fn lang_of(req: &HttpRequest) -> Lang {
    explicit_lang(req).unwrap_or_else(|| {
        let header = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Lang::negotiate(header)
    })
}

/// Only a `?lang=` in the URL: what our own links carry from page to page. The last one
/// wins: a link that had one and got another appended (a gateway, a marketer) still works.
pub fn explicit_lang(req: &HttpRequest) -> Option<Lang> {
    query_value(req.query_string(), "lang").and_then(|v| Lang::from_code(&v))
}

/// The last value of `name` in a query string. Read by hand: our links get parameters
/// appended (by gateways, marketers, the embed), sometimes one they already had, and a
/// struct read refuses a duplicate outright.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .last()
        .map(|(_, v)| v.into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageErrorKind {
    NotFound,
    BadRequest,
    TooLarge,
    Unavailable,
    LinkInvalid,
    /// A form not sent from our own page (see `web::forms`).
    Forbidden,
    /// Rate limited; `Retry-After` says when to come back.
    TooMany {
        retry_after_secs: u64,
    },
}

/// An error answered with a page in the customer's language.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?}")]
pub struct PageError {
    pub lang: Lang,
    pub kind: PageErrorKind,
}

impl PageError {
    pub fn new(lang: Lang, kind: PageErrorKind) -> Self {
        Self { lang, kind }
    }

    /// A rate limit said no; `wait` is how long until it would say yes.
    pub fn too_many(lang: Lang, wait: std::time::Duration) -> Self {
        let retry_after_secs = crate::limits::retry_after_secs(wait);
        Self::new(lang, PageErrorKind::TooMany { retry_after_secs })
    }

    /// Infrastructure failures: logged in full, shown to the customer as "try again".
    pub fn unavailable(lang: Lang, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(lang, PageErrorKind::Unavailable)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            PageErrorKind::NotFound => StatusCode::NOT_FOUND,
            PageErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            PageErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PageErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageErrorKind::LinkInvalid => StatusCode::GONE,
            PageErrorKind::Forbidden => StatusCode::FORBIDDEN,
            PageErrorKind::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let t = i18n::texts(self.lang);
        let (title, body) = match self.kind {
            PageErrorKind::NotFound => (t.not_found_title, t.not_found_body),
            PageErrorKind::BadRequest => (t.bad_request_title, t.unavailable_body),
            PageErrorKind::TooLarge => (t.bad_request_title, t.too_large_body),
            PageErrorKind::Unavailable => (t.unavailable_title, t.unavailable_body),
            PageErrorKind::LinkInvalid => (t.link_invalid_title, t.link_invalid_body),
            PageErrorKind::Forbidden => (t.bad_request_title, t.forbidden_body),
            PageErrorKind::TooMany { .. } => (t.too_many_title, t.too_many_body),
        };
        let page = pages::Message::new(self.lang, title, body);
        let mut res = render(&page);
        *res.status_mut() = self.status_code();
        // Browsers ignore it, but proxies, crawlers and scripts come back later instead of
        // hammering.
        let retry_after = match self.kind {
            PageErrorKind::Unavailable => Some(5),
            PageErrorKind::TooMany { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        res
    }
}

/// Renders a template as an HTML response; a rendering failure is a 500 with no details.
pub fn render(t: &impl Template) -> HttpResponse {
    match t.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type(ContentType::html())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn index(ctx: web::Data<crate::context::AppContext>) -> HttpResponse {
    match ctx.settings.offers.first() {
        Some(o) => see_other(&format!("/c/{}", o.slug)),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Healthy means the database commits a write, so a full disk takes the instance out of
/// the load balancer instead of letting it answer 503 to every lead.
async fn healthz(ctx: web::Data<crate::context::AppContext>) -> HttpResponse {
    match crate::store::health::probe_write(&ctx.db).await {
        Ok(()) => HttpResponse::Ok().content_type(ContentType::plaintext()).body("ok"),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            let body = if e.is_disk_full() {
                "database disk full: writes refused"
            } else {
                "database unavailable"
            };
            HttpResponse::ServiceUnavailable()
                .content_type(ContentType::plaintext())
                .insert_header((header::RETRY_AFTER, "5"))
                .body(body)
        }
    }
}

/// A seller logo read at start-up. Its path names a hash of its bytes, so it is cached
/// for good; `nosniff` (on every response) keeps browsers to its content type.
async fn logo(ctx: web::Data<crate::context::AppContext>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let path = req.path();
    let found = ctx
        .settings
        .offers
        .iter()
        .filter_map(|o| o.trust.seller.logo.as_ref())
        .find(|l| l.path == path);
    match found {
        Some(l) => Ok(HttpResponse::Ok()
            .content_type(l.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(l.bytes.clone())),
        None => Err(PageError::new(lang_of(&req), PageErrorKind::NotFound)),
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, PageError> {
    Err(PageError::new(lang_of(&req), PageErrorKind::NotFound))
}

/// Displays an amount read back from a table; falls back to the raw figures.
pub fn money_text(minor: i64, currency: &str, lang: crate::domain::Lang) -> String {
    currency
        .parse::<crate::domain::Currency>()
        .ok()
        .and_then(|c| crate::domain::Money::new(minor, c).ok())
        .map_or_else(|| format!("{minor} {currency}"), |m| m.format(lang))
}
