//! `GET /return/{gateway}`: where the gateway sends the browser back. The query string is
//! not proof of anything: we ask the gateway for the attempt's true status and apply it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::i18n::texts;
use super::pages::ResultPage;
use super::{lang_of, render, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::edge::AttemptId;
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::{Lang, PaymentStatus};
use crate::flows::payment::{self, Source};
use crate::gateways::Gateway;
use crate::links::resume_token;
use crate::store::{attempts, leads, StoreError};

#[derive(Deserialize)]
pub struct ReturnQuery {
    attempt: Option<String>,
    lang: Option<String>,
}

pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    query: Option<web::Query<ReturnQuery>>,
) -> Result<HttpResponse, PageError> {
    let lang = lang_of(&req);
    let not_found = || PageError::new(lang, PageErrorKind::NotFound);
    let kind: GatewayKind = path.parse().map_err(|_| not_found())?;
    let gateway = ctx.gateways.get(kind).ok_or_else(not_found)?;
    // Only an id we minted can name an attempt: anything else is not found before the
    // database is asked (PostgreSQL would refuse a NUL in it with an error, not a miss).
    let id = query
        .as_ref()
        .and_then(|q| q.attempt.as_deref())
        .and_then(AttemptId::parse)
        .ok_or_else(not_found)?;
    let unavailable = |e| PageError::unavailable(lang, e);
    let attempt = attempts::get(&ctx.db, id.as_str())
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)?;
    if attempt.gateway != kind {
        return Err(not_found());
    }
    let lead = leads::get(&ctx.db, &attempt.lead_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)?;
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    let explicit = query.as_ref().and_then(|q| q.lang.as_deref()).and_then(Lang::from_code);
    let lang = explicit.unwrap_or(lead.lang);
    let attempt = settle(&ctx, gateway.as_ref(), attempt, req.query_string())
        .await
        .map_err(|e| PageError::unavailable(lang, e))?;
    let retry_url = resume_token(&ctx, &lead.id, &lead.offer_slug)
        .ok()
        .map(|t| format!("/r/{t}"));
    Ok(render(&result_page(&ctx, lang, &attempt, retry_url)))
}

/// Applies the gateway's view of an unpaid attempt and returns the attempt as it now stands.
async fn settle(ctx: &AppContext, gateway: &dyn Gateway, attempt: Attempt, query: &str) -> Result<Attempt, StoreError> {
    if attempt.status.is_paid() {
        return Ok(attempt);
    }
    match gateway.fetch_status(&attempt, query).await {
        Ok(Some(seen)) => payment::apply(ctx, attempt, &seen, Source::Return, None).await,
        Ok(None) => Ok(attempt),
        // The webhook or reconciliation will settle it; show what we know.
        Err(e) => {
            tracing::warn!(attempt_id = %attempt.id, error = %e, "gateway status lookup failed");
            Ok(attempt)
        }
    }
}

fn result_page<'a>(ctx: &'a AppContext, lang: Lang, a: &'a Attempt, retry_url: Option<String>) -> ResultPage<'a> {
    let t = texts(lang);
    let (kind, title, body, refresh) = match a.status {
        PaymentStatus::Approved => ("approved", t.paid_title, t.paid_body, false),
        PaymentStatus::Declined | PaymentStatus::Expired => ("declined", t.declined_title, t.declined_body, false),
        PaymentStatus::Created | PaymentStatus::Redirected | PaymentStatus::Pending => {
            ("pending", t.pending_title, t.pending_body, true)
        }
    };
    let offer_title = ctx
        .offer(&a.offer_slug)
        .map_or(a.offer_slug.as_str(), |o| o.title.as_str());
    ResultPage {
        lang: lang.code(),
        kind,
        title,
        body,
        refresh,
        offer_label: t.product,
        offer_title,
        amount_label: t.amount,
        amount: a.amount.format(lang),
        reference_label: t.reference,
        reference: &a.id,
        retry_url: (kind == "declined").then_some(retry_url).flatten(),
        retry_label: t.retry,
    }
}
