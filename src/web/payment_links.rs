//! `/l/{token}`: a payment link's page. GET shows what it pays (it creates nothing: mail
//! scanners and chat previews fetch links); POST opens its checkout, or a fresh one once
//! the last expired, until the link is paid or expires.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::checkout::{checkout_response, ResumeForm};
use super::i18n::texts;
use super::pages::{LinkPage, Message, TrustView};
use super::{explicit_lang, forms, lang_of, render, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::edge;
use crate::domain::payment_link::LinkState;
use crate::domain::Lang;
use crate::flows::payment_link::{self as flow, Opened, Paid};

async fn opened(ctx: &AppContext, req: &HttpRequest, token: &str) -> Result<Opened, PageError> {
    let lang = lang_of(req);
    if !edge::resume_token_shaped(token) {
        return Err(PageError::new(lang, PageErrorKind::NotFound));
    }
    flow::open(ctx, token)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?
        .ok_or_else(|| PageError::new(lang, PageErrorKind::LinkInvalid))
}

/// A link followed says which language; else the language it was made in.
fn link_lang(req: &HttpRequest, o: &Opened) -> Lang {
    explicit_lang(req).unwrap_or(o.lead.lang)
}

fn purpose(o: &Opened) -> String {
    format!("l/{}", o.link.id)
}

async fn page(
    ctx: &AppContext,
    req: &HttpRequest,
    token: &str,
    o: &Opened,
    notice: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    let lang = link_lang(req, o);
    let state = flow::state(ctx, &o.link)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?;
    let status_url = match state {
        LinkState::Pending => flow::pending_return_path(ctx, &o.link)
            .await
            .map_err(|e| PageError::unavailable(lang, e))?,
        _ => None,
    };
    let issued = forms::issue(ctx, req, &purpose(o), None);
    let view = LinkPage {
        lang: lang.code(),
        t: texts(lang),
        token,
        offer_title: o.offer.title.get(lang),
        offer_description: o.offer.description.get(lang),
        price: o.link.amount.format(lang),
        valid_until: crate::domain::local_time::format(o.link.expires_at, lang, ctx.settings.admin.time_zone),
        first_name: o.lead.contact.name.as_str().split_whitespace().next(),
        state,
        status_url,
        form_token: issued.token.clone(),
        notice,
        trust: TrustView::new(&o.offer, lang),
    };
    let mut res = issued.attach(render(&view));
    if state == LinkState::Expired {
        *res.status_mut() = StatusCode::GONE;
    }
    Ok(res)
}

/// `GET /l/{token}`.
pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let o = opened(&ctx, &req, &path).await?;
    page(&ctx, &req, &path, &o, None).await
}

/// `POST /l/{token}`: the pay button.
pub async fn pay(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ResumeForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = ctx.into_inner();
    let o = opened(&ctx, &req, &path).await?;
    let lang = link_lang(&req, &o);
    // Past its expiry nothing can be made, so no token is needed to be told so.
    if let Ok(Some(Paid::Expired)) = flow::expired(&ctx, &o).await {
        return Ok(expired(lang));
    }
    if !form.pressed(&ctx, &req, &purpose(&o), "payment_link") {
        let mut res = page(&ctx, &req, &path, &o, Some(texts(lang).confirm_again)).await?;
        *res.status_mut() = StatusCode::FORBIDDEN;
        return Ok(res);
    }
    match flow::pay(&ctx, &o).await {
        Ok(Paid::Expired) => Ok(expired(lang)),
        Ok(Paid::Outcome(outcome)) => checkout_response(&ctx, lang, ctx.sends_receipt(&o.offer), Ok(outcome)),
        Err(e) => checkout_response(&ctx, lang, false, Err(e)),
    }
}

fn expired(lang: Lang) -> HttpResponse {
    let t = texts(lang);
    let mut res = render(&Message::new(lang, t.link_expired_title, t.link_expired_body));
    *res.status_mut() = StatusCode::GONE;
    res
}
