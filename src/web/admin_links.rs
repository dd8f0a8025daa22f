//! `/admin`'s payment links and API tokens: the form that makes a link, the recent links
//! with where they stand, and the tokens the API accepts. Forms carry the session's
//! anti-forgery token like every admin POST.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::TimeZone;
use serde::Deserialize;

use super::admin::{csrf_token, refuse_post, CsrfForm};
use super::i18n_admin::{link_texts, LinkTexts};
use super::link_request::{parse, LinkRequest, Person};
use super::{lang_of, render, see_other, PageError};
use crate::context::AppContext;
use crate::domain::api_token::Scope;
use crate::domain::payment_link::{LinkSource, LinkState};
use crate::domain::{local_time, Lang};
use crate::flows::payment_link::{self, FieldProblem, LinkError};
use crate::flows::{api_tokens, link_view};
use crate::store::api_tokens as token_store;

/// What the admin page's links section shows.
pub struct Section {
    pub lt: &'static LinkTexts,
    pub offers: Vec<(String, String)>,
    pub langs: Vec<(&'static str, &'static str)>,
    pub email_available: bool,
    pub form: FormValues,
    pub problems: Vec<FieldProblem>,
    /// The link just made: its page's URL.
    pub created: Option<String>,
    pub recent: Vec<LinkRow>,
    pub tokens: Vec<TokenRow>,
    pub scopes: Vec<&'static str>,
    /// A token just made, shown this once.
    pub new_token: Option<String>,
}

impl Section {
    /// The message for `field`, if it is wrong (for the template).
    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.message.as_str())
    }
}

pub struct LinkRow {
    pub created: String,
    pub name: String,
    pub email: String,
    pub amount: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub expires: String,
    pub url: String,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

/// The admin's link form as sent; also what it shows again next to its errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FormValues {
    pub csrf: Option<String>,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub tax_id: String,
    pub offer: String,
    pub amount_minor: String,
    pub currency: String,
    pub description: String,
    pub crm_deal_id: String,
    pub expires_at: String,
    pub lang: String,
    pub send_email: Option<String>,
}

fn state_text(lt: &LinkTexts, s: LinkState) -> &'static str {
    match s {
        LinkState::Payable => lt.state_payable,
        LinkState::Pending => lt.state_pending,
        LinkState::Paid => lt.state_paid,
        LinkState::Expired => lt.state_expired,
    }
}

/// The section as `/admin` shows it, with `form` and `problems` from a refused POST.
pub async fn section(
    ctx: &AppContext,
    lang: Lang,
    form: FormValues,
    problems: Vec<FieldProblem>,
) -> Result<Section, crate::store::StoreError> {
    let lt = link_texts(lang);
    let tz = ctx.settings.admin.time_zone;
    let at = |ms: i64| local_time::format(ms, lang, tz);
    let recent = link_view::recent(ctx, 50).await?;
    let tokens = token_store::list(&ctx.db).await?;
    Ok(Section {
        lt,
        offers: ctx
            .settings
            .offers
            .iter()
            .map(|o| (o.slug.to_string(), o.title.get(lang).to_owned()))
            .collect(),
        langs: [Lang::Es, Lang::PtBr, Lang::En]
            .iter()
            .map(|l| (l.code(), l.code()))
            .collect(),
        email_available: ctx.mailer.is_some(),
        form,
        problems,
        created: None,
        recent: recent
            .into_iter()
            .map(|v| LinkRow {
                created: at(v.link.created_at),
                name: v.lead.as_ref().map(|l| l.contact.name.to_string()).unwrap_or_default(),
                email: v.lead.as_ref().map(|l| l.contact.email.to_string()).unwrap_or_default(),
                amount: v.link.amount.format(lang),
                state: state_text(lt, v.state),
                state_class: v.state.as_str(),
                expires: at(v.link.expires_at),
                url: v.url,
            })
            .collect(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                created: at(t.created_at),
                last_used: t.last_used_at.map_or_else(|| lt.never.to_owned(), at),
                revoked: t.revoked_at.map(at),
                scopes: t.scopes.to_string(),
                name: t.name,
                id: t.id,
            })
            .collect(),
        scopes: Scope::ALL.iter().map(Scope::as_str).collect(),
        new_token: None,
    })
}

/// A POST's answer: the section alone, with a way back to `/admin`.
#[derive(Template)]
#[template(path = "admin_links_page.html")]
struct LinksPage {
    lang: &'static str,
    csrf: String,
    links: Section,
}

fn page(lang: Lang, csrf: String, links: Section, status: StatusCode) -> HttpResponse {
    let mut res = render(&LinksPage {
        lang: lang.code(),
        csrf,
        links,
    });
    *res.status_mut() = status;
    res
}

/// `datetime-local` (no zone) read in `[admin] time_zone`; anything else is passed on for
/// the parser to refuse.
fn expiry(ctx: &AppContext, s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let local = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok();
    let zoned = local.and_then(|l| ctx.settings.admin.time_zone.from_local_datetime(&l).earliest());
    Some(zoned.map_or_else(|| s.to_owned(), |t| t.to_rfc3339()))
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /admin/payment-links`.
pub async fn create_link(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    session: Session,
    form: web::Form<FormValues>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if let Some(no) = refuse_post(&ctx.settings.admin, &session, &req, form.csrf.as_deref()) {
        return Ok(no);
    }
    let lang = lang_of(&req);
    let fail = |e| PageError::unavailable(lang, e);
    let csrf = csrf_token(&session).map_err(|e| PageError::unavailable(lang, e))?;
    let mut problems = Vec::new();
    let amount_minor = match opt(&form.amount_minor) {
        None => None,
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| {
                problems.push(FieldProblem {
                    field: "amount_minor",
                    message: "a whole number of cents".into(),
                })
            })
            .ok(),
    };
    let request = LinkRequest {
        person: Person {
            name: form.name.clone(),
            email: form.email.clone(),
            phone: form.phone.clone(),
            tax_id: opt(&form.tax_id),
        },
        lang: opt(&form.lang),
        offer: opt(&form.offer),
        amount_minor,
        // The currency select always sends one; it only counts with an amount.
        currency: amount_minor.and(opt(&form.currency)),
        description: opt(&form.description),
        crm_deal_id: opt(&form.crm_deal_id),
        crm_person_id: None,
        expires_at: expiry(&ctx, &form.expires_at),
        send_email: form.send_email.is_some(),
    };
    let made = match parse(&ctx, &request, LinkSource::Admin) {
        Ok(new) if problems.is_empty() => payment_link::create(&ctx, new).await,
        Ok(_) => Err(LinkError::Invalid(Vec::new())),
        Err(p) => Err(LinkError::Invalid(p)),
    };
    match made {
        Ok(link) => {
            tracing::info!(link_id = %link.link_id, "payment link made by an operator");
            let mut s = section(&ctx, lang, FormValues::default(), Vec::new())
                .await
                .map_err(fail)?;
            s.created = Some(link.url);
            Ok(page(lang, csrf, s, StatusCode::OK))
        }
        Err(LinkError::Invalid(p)) => {
            problems.extend(p);
            let s = section(&ctx, lang, form, problems).await.map_err(fail)?;
            Ok(page(lang, csrf, s, StatusCode::UNPROCESSABLE_ENTITY))
        }
        // Admin links carry no idempotency key.
        Err(LinkError::KeyReused) => Err(PageError::new(lang, super::PageErrorKind::BadRequest)),
        Err(LinkError::Store(e)) => Err(fail(e)),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    /// One per ticked box.
    #[serde(default)]
    scope: Vec<String>,
}

/// `POST /admin/api-tokens`: makes a token and shows it once.
pub async fn create_token(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let lang = lang_of(&req);
    // Repeated `scope` fields: serde_urlencoded reads no sequences, so read pairs by hand.
    let mut form = TokenForm {
        csrf: None,
        name: String::new(),
        scope: Vec::new(),
    };
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "csrf" => form.csrf = Some(v.into_owned()),
            "name" => form.name = v.into_owned(),
            "scope" => form.scope.push(v.into_owned()),
            _ => {}
        }
    }
    if let Some(no) = refuse_post(&ctx.settings.admin, &session, &req, form.csrf.as_deref()) {
        return Ok(no);
    }
    let fail = |e| PageError::unavailable(lang, e);
    let csrf = csrf_token(&session).map_err(|e| PageError::unavailable(lang, e))?;
    match api_tokens::make(&ctx.db, &form.name, &form.scope.join(" "), ctx.clock.now_ms()).await {
        Ok(made) => {
            let mut s = section(&ctx, lang, FormValues::default(), Vec::new())
                .await
                .map_err(fail)?;
            s.new_token = Some(made.token);
            Ok(page(lang, csrf, s, StatusCode::OK))
        }
        Err(api_tokens::MakeError::Invalid(e)) => {
            let problems = vec![FieldProblem {
                field: "token",
                message: e.to_string(),
            }];
            let s = section(&ctx, lang, FormValues::default(), problems)
                .await
                .map_err(fail)?;
            Ok(page(lang, csrf, s, StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(api_tokens::MakeError::Store(e)) => Err(fail(e)),
    }
}

/// `POST /admin/api-tokens/{id}/revoke`.
pub async fn revoke_token(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    form: Option<web::Form<CsrfForm>>,
) -> Result<HttpResponse, PageError> {
    if let Some(no) = refuse_post(
        &ctx.settings.admin,
        &session,
        &req,
        form.as_ref().and_then(|f| f.csrf.as_deref()),
    ) {
        return Ok(no);
    }
    let lang = lang_of(&req);
    api_tokens::revoke(&ctx.db, &path, ctx.clock.now_ms())
        .await
        .map_err(|e| PageError::unavailable(lang, e))?;
    Ok(see_other("/admin#api-tokens"))
}
