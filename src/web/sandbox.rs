//! The sandbox gateway's hosted checkout page.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::pages::SandboxPage;
use std::time::Duration;

use super::i18n::texts;
use super::{forms, lang_of, render, see_other, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::Lang;
use crate::gateways::sandbox::{Outcome, PaymentId, SandboxError};

fn page_error(req: &HttpRequest, e: SandboxError) -> PageError {
    match e {
        SandboxError::NotFound => PageError::new(lang_of(req), PageErrorKind::NotFound),
        SandboxError::Store(e) => PageError::unavailable(lang_of(req), e),
    }
}

/// Only a payment id the sandbox minted is looked up; anything else is not found, and
/// nothing is when the sandbox is off.
fn payment_id(ctx: &AppContext, req: &HttpRequest, raw: &str) -> Result<PaymentId, PageError> {
    PaymentId::parse(raw)
        .filter(|_| ctx.settings.sandbox.enabled)
        .ok_or_else(|| page_error(req, SandboxError::NotFound))
}

pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = payment_id(&ctx, &req, &id)?;
    let p = ctx
        .sandbox
        .payment(id.as_str())
        .await
        .map_err(|e| page_error(&req, e))?;
    // The lead's language, as a hosted checkout takes it from the request that opened it.
    let lang = Lang::from_code(&p.lang).unwrap_or_default();
    let amount = super::money_text(p.amount_minor, &p.currency, lang);
    let issued = forms::issue(&ctx, &req, &purpose(&id), None);
    let t = texts(lang);
    Ok(issued.attach(render(&SandboxPage {
        form_token: issued.token.clone(),
        lang: lang.code(),
        t,
        closed: t.sandbox_closed(&p.status),
        open: p.status == "CREATED",
        id: p.id,
        description: p.description,
        amount,
        reference: p.reference,
        name: p.customer_name,
        email: p.customer_email,
        phone: p.customer_phone,
    })))
}

fn purpose(id: &PaymentId) -> String {
    format!("sandbox/{}", id.as_str())
}

#[derive(Deserialize)]
pub struct OutcomeForm {
    outcome: Outcome,
    form_token: Option<String>,
}

pub async fn complete(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<OutcomeForm>,
) -> Result<HttpResponse, PageError> {
    let id = payment_id(&ctx, &req, &id)?;
    // Even test money is pressed only from the page we served, never from another site.
    let guard = forms::check(
        &ctx,
        &req,
        &purpose(&id),
        form.form_token.as_deref(),
        None,
        Duration::ZERO,
    );
    if let Err(suspect) = guard {
        ctx.metrics.refused("sandbox", suspect.reason());
        return Err(PageError::new(lang_of(&req), PageErrorKind::Forbidden));
    }
    let next = ctx
        .sandbox
        .complete(id.as_str(), form.outcome)
        .await
        .map_err(|e| page_error(&req, e))?;
    Ok(see_other(&next))
}
