//! `GET /return/{gateway}`: where the gateway sends the browser back, and
//! `GET /status/{attempt}`: what the pending page's script polls. The query string is not
//! proof of anything: `flows::returns` asks the gateway (at most once per window) and
//! applies what it says; these handlers parse, call it and render.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::i18n::texts;
use super::pages::{ResultPage, TrustView};
use super::{lang_of, render, see_other, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::edge::AttemptId;
use crate::domain::lead::Attempt;
use crate::domain::offer::GatewayKind;
use crate::domain::Lang;
use crate::flows::returns::{self, Outcome, ReturnError};
use crate::links::resume_token;
use crate::store::leads;

/// Read by hand rather than as a struct: gateways append their own parameters to our
/// return URL, sometimes one we set too (a second `lang`), and a struct refuses
/// duplicates. The last value wins, except that two different attempts name none.
#[derive(Default)]
pub struct ReturnQuery {
    attempt: Option<String>,
    lang: Option<String>,
    /// `1`: show the paid page itself, not the offer's thank-you redirect.
    stay: Option<String>,
}

impl ReturnQuery {
    fn parse(query: &str) -> Self {
        let mut q = ReturnQuery::default();
        let mut attempts_differ = false;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "attempt" => {
                    attempts_differ |= q.attempt.as_deref().is_some_and(|a| a != v);
                    q.attempt = Some(v.into_owned());
                }
                "lang" => q.lang = Some(v.into_owned()),
                "stay" => q.stay = Some(v.into_owned()),
                _ => {}
            }
        }
        if attempts_differ {
            q.attempt = None;
        }
        q
    }
}

pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let query = ReturnQuery::parse(req.query_string());
    let lang = lang_of(&req);
    let not_found = || PageError::new(lang, PageErrorKind::NotFound);
    let kind: GatewayKind = path.parse().map_err(|_| not_found())?;
    ctx.gateways.get(kind).ok_or_else(not_found)?;
    // Only an id we minted can name an attempt: anything else is not found before the
    // database is asked (PostgreSQL would refuse a NUL in it with an error, not a miss).
    let id = query
        .attempt
        .as_deref()
        .and_then(AttemptId::parse)
        .ok_or_else(not_found)?;
    let attempt = returns::settle(&ctx, &id, Some(kind), req.query_string())
        .await
        .map_err(|e| match e {
            ReturnError::NotFound => not_found(),
            ReturnError::TooMany(wait) => PageError::too_many(lang, wait),
            ReturnError::Store(e) => PageError::unavailable(lang, e),
        })?;
    let lead = leads::get(&ctx.db, &attempt.lead_id)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?
        .ok_or_else(not_found)?;
    crate::telemetry::record_ids(&lead.id, &attempt.id);
    let explicit = query.lang.as_deref().and_then(Lang::from_code);
    let lang = explicit.unwrap_or(lead.lang);
    let stay = query.stay.as_deref() == Some("1");
    if let Some(url) = thank_you(&ctx, &attempt, lang).filter(|_| !stay) {
        // What settled the attempt is committed by now; the redirect only reports it.
        return Ok(see_other(&url));
    }
    let retry_url = resume_token(&ctx, &lead.id, &lead.offer_slug)
        .ok()
        .map(|t| format!("/r/{t}?lang={}", lang.code()));
    let here = Links {
        // The same return page again, in the language shown: the no-script way to check.
        check: format!("/return/{}?attempt={}&lang={}", kind.as_str(), attempt.id, lang.code()),
        status: format!("/status/{}", attempt.id),
        retry: retry_url,
    };
    Ok(render(&result_page(&ctx, lang, &attempt, here)))
}

/// The approved attempt's signed thank-you URL, where its offer has one. The pending
/// page's script reloads this same return page once paid, so it lands there too.
fn thank_you(ctx: &AppContext, a: &Attempt, lang: Lang) -> Option<String> {
    if Outcome::of(a.status) != Outcome::Approved {
        return None;
    }
    let base = ctx.offer(&a.offer_slug)?.trust.thank_you_url.as_ref()?;
    let secret = ctx.settings.secrets.thank_you_secret.as_ref()?;
    Some(crate::links::thank_you_url(secret, base, a, lang))
}

/// `{"status": "pending" | "approved" | "declined"}`, never cached. Same limits and same
/// settling as the page, so polling cannot ask the gateway more often than viewing it.
pub async fn status(ctx: web::Data<AppContext>, path: web::Path<String>) -> HttpResponse {
    let reply = |code: StatusCode, body: serde_json::Value| {
        HttpResponse::build(code)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body)
    };
    let Some(id) = AttemptId::parse(&path) else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    };
    match returns::settle(&ctx, &id, None, "").await {
        Ok(attempt) => reply(StatusCode::OK, json!({"status": Outcome::of(attempt.status).as_str()})),
        Err(ReturnError::NotFound) => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
        Err(ReturnError::TooMany(wait)) => {
            let mut res = reply(StatusCode::TOO_MANY_REQUESTS, json!({"error": "too many requests"}));
            let secs = crate::limits::retry_after_secs(wait);
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            res
        }
        Err(ReturnError::Store(e)) => {
            tracing::error!(error = %e, "status lookup failed");
            let mut res = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily unavailable"}),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(5));
            res
        }
    }
}

/// Where the result page's buttons and script point.
struct Links {
    check: String,
    status: String,
    retry: Option<String>,
}

fn result_page<'a>(ctx: &'a AppContext, lang: Lang, a: &'a Attempt, links: Links) -> ResultPage<'a> {
    let t = texts(lang);
    let outcome = Outcome::of(a.status);
    let receipt = ctx.offer(&a.offer_slug).is_some_and(|o| ctx.sends_receipt(o));
    let (title, body) = match outcome {
        // Promise an email only when one is on its way.
        Outcome::Approved if receipt => (t.paid_title, t.paid_body),
        Outcome::Approved => (t.paid_title, t.paid_body_no_email),
        Outcome::Declined => (t.declined_title, t.declined_body),
        Outcome::Pending => (t.pending_title, t.pending_body),
    };
    let pending = outcome == Outcome::Pending;
    let offer = ctx.offer(&a.offer_slug);
    let offer_title = offer.map_or(a.offer_slug.as_str(), |o| o.title.get(lang));
    let continue_url = offer
        .and_then(|o| o.trust.continue_url.as_ref())
        .filter(|_| outcome == Outcome::Approved)
        .map(|u| u.as_str());
    ResultPage {
        lang: lang.code(),
        kind: outcome.as_str(),
        title,
        body,
        status_url: pending.then_some(links.status),
        check_url: pending.then_some(links.check),
        check_label: t.check_again,
        offer_label: t.product,
        offer_title,
        amount_label: t.amount,
        amount: a.amount.format(lang),
        reference_label: t.reference,
        reference: &a.id,
        retry_url: (outcome == Outcome::Declined).then_some(links.retry).flatten(),
        retry_label: t.retry,
        trust: offer.map_or_else(|| TrustView::none(lang), |o| TrustView::new(o, lang)),
        continue_url,
        continue_label: t.continue_label,
    }
}

#[cfg(test)]
mod tests {
    use super::ReturnQuery;

    #[test]
    fn the_last_lang_wins_and_disagreeing_attempts_name_none() {
        let q = ReturnQuery::parse("attempt=a1&lang=en&id=123&lang=pt-BR&stay=1");
        assert_eq!(q.attempt.as_deref(), Some("a1"));
        assert_eq!(q.lang.as_deref(), Some("pt-BR"));
        assert_eq!(q.stay.as_deref(), Some("1"));
        assert_eq!(
            ReturnQuery::parse("attempt=a1&attempt=a1").attempt.as_deref(),
            Some("a1")
        );
        assert_eq!(ReturnQuery::parse("attempt=a1&attempt=a2").attempt, None);
        assert_eq!(ReturnQuery::parse("%ZZ&&=&attempt").attempt.as_deref(), Some(""));
    }
}
