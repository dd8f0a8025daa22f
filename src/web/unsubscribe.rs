//! `/u/{token}`: a reminder email's unsubscribe link. GET shows a one-button page (mail
//! scanners follow links; they must not unsubscribe anyone); POST, from that button or
//! from a mail client's RFC 8058 one-click request, stops the lead's reminders at once.
//! The signed token is the only authority: forging a POST could only unsubscribe the
//! token's own lead, which is what its holder asked for.

use actix_web::{web, HttpRequest, HttpResponse};

use super::pages::{Message, UnsubscribePage};
use super::{i18n::texts, lang_of, render, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::store::{followups, leads};

pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lead = lead_of(&ctx, &req, &path).await?;
    let lang = lead.lang;
    // Which purchase the reminders are about, in the lead's language.
    let offer_title = ctx.offer(&lead.offer_slug).map_or("", |o| o.title.get(lang));
    Ok(render(&UnsubscribePage {
        lang: lang.code(),
        t: texts(lang),
        token: &path,
        offer_title,
    }))
}

pub async fn confirm(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lead = lead_of(&ctx, &req, &path).await?;
    let (lead_id, lang) = (lead.id, lead.lang);
    followups::unsubscribe(&ctx.db, &lead_id, ctx.clock.now_ms())
        .await
        .map_err(|e| PageError::unavailable(lang, e))?;
    tracing::info!(lead_id = %lead_id, "lead unsubscribed from reminders");
    ctx.metrics.followup("unsubscribed", "");
    let t = texts(lang);
    Ok(render(&Message::new(lang, t.unsubscribed_title, t.unsubscribed_body)))
}

async fn lead_of(ctx: &AppContext, req: &HttpRequest, token: &str) -> Result<Lead, PageError> {
    let lang = lang_of(req);
    let invalid = || PageError::new(lang, PageErrorKind::LinkInvalid);
    let lead_id = crate::links::verify_unsubscribe(ctx, token).ok_or_else(invalid)?;
    leads::get(&ctx.db, &lead_id)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?
        .ok_or_else(invalid)
}
