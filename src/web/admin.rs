//! Password-protected admin pages: the built-in CRM's deals and tasks, dead jobs, webhooks
//! that matched nothing, and the metrics.

use std::time::{Duration, Instant};

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::i18n_admin::admin_texts;
use super::pages::{
    AdminLogin, AdminPage, AfterApprovalRow, CrmEventRow, DeadJobRow, DealRow, EmailRow, EventDeliveryRow, NoteRow,
    TaskRow, UnappliedRow, UnpaidRow,
};
use super::{lang_of, render, see_other, PageError};
use crate::clock::{ms, now_ms};
use crate::config::AdminSettings;
use crate::context::AppContext;
use crate::domain::lead::{Attempt, Lead, Utm};
use crate::domain::{local_time, DisputeStage, Lang};
use crate::flows::payment::MarkedPaid;
use crate::jobs::events::Redelivered;
use crate::limits::retry_after_secs;
use crate::store::outbound::DeliveryState;
use crate::store::{attempts, builtin_crm, crm_inbox, followups, inbox, jobs, leads, outbound};

const SESSION_FLAG: &str = "admin";
/// When the password was given (ms since the epoch): the session's absolute age.
const SESSION_SINCE: &str = "admin_since";
/// The last request of the session (ms since the epoch): its idle time.
const SESSION_SEEN: &str = "admin_seen";
/// The anti-forgery token every admin form carries back.
const SESSION_CSRF: &str = "csrf";
/// How long a sign-in waits for a free password check before it is turned away.
const CHECK_WAIT: Duration = Duration::from_secs(1);

/// Signed in, and neither too old nor idle too long; each use counts as activity. The cookie
/// is encrypted and authenticated by the session middleware, so its times can be believed.
pub(super) fn signed_in(admin: &AdminSettings, session: &Session) -> bool {
    if !matches!(session.get::<bool>(SESSION_FLAG), Ok(Some(true))) {
        return false;
    }
    let now = now_ms();
    let since = session.get::<i64>(SESSION_SINCE).ok().flatten();
    let seen = session.get::<i64>(SESSION_SEEN).ok().flatten();
    let fresh = match (since, seen) {
        (Some(since), Some(seen)) => {
            now.saturating_sub(since) < ms(admin.session_max_age)
                && now.saturating_sub(seen) < ms(admin.session_idle_timeout)
        }
        // A cookie from before these times were kept: sign in again.
        _ => false,
    };
    if !fresh {
        session.purge();
        return false;
    }
    session.insert(SESSION_SEEN, now).is_ok()
}

/// The session's anti-forgery token, made on first need.
pub(super) fn csrf_token(session: &Session) -> Result<String, Refused> {
    if let Ok(Some(t)) = session.get::<String>(SESSION_CSRF) {
        if !t.is_empty() {
            return Ok(t);
        }
    }
    new_csrf_token(session)
}

fn new_csrf_token(session: &Session) -> Result<String, Refused> {
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    let token = hex::encode(buf);
    session
        .insert(SESSION_CSRF, &token)
        .map_err(|e| Refused::Session(e.to_string()))?;
    Ok(token)
}

/// The form's token matches the session's. SameSite=Strict alone leaves login forgery and
/// browsers that ignore SameSite open.
/// The answer to an admin POST that may not act: not signed in (to the login page), or
/// not sent from our own page (a forged request). `None`: go ahead.
pub(super) fn refuse_post(
    settings: &crate::config::AdminSettings,
    session: &Session,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Option<HttpResponse> {
    if !signed_in(settings, session) {
        return Some(see_other("/admin/login"));
    }
    if !csrf_ok(session, csrf) {
        return Some(Refused::Forged.page(session, lang_of(req)));
    }
    None
}

pub(super) fn csrf_ok(session: &Session, given: Option<&str>) -> bool {
    let stored = session.get::<String>(SESSION_CSRF).ok().flatten().unwrap_or_default();
    let given = given.unwrap_or_default();
    !stored.is_empty() && bool::from(stored.as_bytes().ct_eq(given.as_bytes()))
}

/// Why a sign-in or sign-out did not happen; each is answered with the login page.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("the form's anti-forgery token is missing or wrong")]
    Forged,
    #[error("wrong password")]
    WrongPassword,
    #[error("too many sign-in tries")]
    TooMany(Duration),
    #[error("every password check is busy")]
    Busy,
    #[error("session: {0}")]
    Session(String),
}

impl Refused {
    pub(super) fn page(&self, session: &Session, lang: Lang) -> HttpResponse {
        let t = admin_texts(lang);
        let (status, alert, retry_after) = match self {
            Refused::Forged => (StatusCode::FORBIDDEN, t.alert_forged.to_owned(), None),
            Refused::WrongPassword => (StatusCode::UNAUTHORIZED, t.alert_wrong_password.to_owned(), None),
            Refused::TooMany(wait) => {
                let secs = retry_after_secs(*wait);
                let alert = t.alert_too_many.replace("{secs}", &secs.to_string());
                (StatusCode::TOO_MANY_REQUESTS, alert, Some(secs))
            }
            Refused::Busy => (StatusCode::SERVICE_UNAVAILABLE, t.alert_busy.to_owned(), Some(1)),
            Refused::Session(e) => {
                tracing::error!(error = %e, "admin session could not be written");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let Ok(csrf) = csrf_token(session) else {
            return HttpResponse::InternalServerError().finish();
        };
        let mut res = render(&AdminLogin {
            lang: lang.code(),
            t,
            alert: Some(alert),
            csrf,
        });
        *res.status_mut() = status;
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        res
    }
}

pub async fn login_form(req: HttpRequest, session: Session) -> HttpResponse {
    let Ok(csrf) = csrf_token(&session) else {
        return HttpResponse::InternalServerError().finish();
    };
    let lang = lang_of(&req);
    render(&AdminLogin {
        lang: lang.code(),
        t: admin_texts(lang),
        alert: None,
        csrf,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    // Defaults, so a form without a token is answered 403 rather than 400.
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: Option<String>,
}

pub async fn login(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    session: Session,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    match sign_in(&ctx, &req, &session, form.into_inner()).await {
        // A language chosen on the sign-in page stays chosen.
        Ok(()) => match super::explicit_lang(&req) {
            Some(lang) => see_other(&format!("/admin?lang={}", lang.code())),
            None => see_other("/admin"),
        },
        Err(refused) => {
            if matches!(refused, Refused::WrongPassword) {
                tracing::warn!("admin sign-in failed");
            }
            refused.page(&session, lang_of(&req))
        }
    }
}

/// Every refusal that costs nothing comes before Argon2, which is slow and memory-hungry on
/// purpose.
async fn sign_in(ctx: &AppContext, req: &HttpRequest, session: &Session, form: LoginForm) -> Result<(), Refused> {
    if !csrf_ok(session, form.csrf.as_deref()) {
        return Err(Refused::Forged);
    }
    let ip = ctx.client_ip(req);
    let limits = &ctx.limits;
    if let Some(wait) = limits.login_backoff.wait(&ip, Instant::now()) {
        return Err(Refused::TooMany(wait));
    }
    limits.login_per_ip.check(&ip).map_err(Refused::TooMany)?;
    limits.login_global.check(&()).map_err(Refused::TooMany)?;
    let permit = tokio::time::timeout(CHECK_WAIT, limits.password_checks.clone().acquire_owned())
        .await
        .map_err(|_| Refused::Busy)?
        .map_err(|_| Refused::Busy)?;
    // Without a hash (worker-only contexts) nobody can sign in.
    let hash = ctx
        .settings
        .secrets
        .admin_password_hash
        .as_ref()
        .map(|h| h.expose_secret().to_owned())
        .unwrap_or_default();
    let password = form.password;
    // Off the async workers; the permit goes with the work, so a client that hangs up does
    // not free it while Argon2 still runs.
    let ok = web::block(move || {
        let _permit = permit;
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false);
    if !ok {
        limits.login_backoff.failed(&ip, Instant::now());
        return Err(Refused::WrongPassword);
    }
    limits.login_backoff.succeeded(&ip);
    // A new session id and a new token: nothing planted before the sign-in carries over.
    session.renew();
    let now = now_ms();
    let write = |r: Result<(), actix_session::SessionInsertError>| r.map_err(|e| Refused::Session(e.to_string()));
    write(session.insert(SESSION_FLAG, true))?;
    write(session.insert(SESSION_SINCE, now))?;
    write(session.insert(SESSION_SEEN, now))?;
    new_csrf_token(session)?;
    Ok(())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// A forged sign-out is harmless but still refused, so the token is checked on every POST.
pub async fn logout(req: HttpRequest, session: Session, form: Option<web::Form<LogoutForm>>) -> HttpResponse {
    let given = form.as_ref().and_then(|f| f.csrf.as_deref());
    if !csrf_ok(&session, given) {
        return Refused::Forged.page(&session, lang_of(&req));
    }
    session.purge();
    see_other("/admin/login")
}

#[derive(Deserialize)]
pub struct MarkPaidForm {
    csrf: Option<String>,
    /// How the customer paid, for the deal's note (a transfer's reference, "cash"…).
    note: Option<String>,
}

/// `POST /admin/attempts/{id}/paid`: the customer paid through another channel. The
/// attempt is approved through the payment state machine, so the deal is won, follow-ups
/// stop and their open tasks are closed, as for a gateway's payment.
pub async fn mark_paid(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    form: Option<web::Form<MarkPaidForm>>,
) -> Result<HttpResponse, PageError> {
    let form = form.map(web::Form::into_inner);
    if let Some(no) = refuse_post(
        &ctx.settings.admin,
        &session,
        &req,
        form.as_ref().and_then(|f| f.csrf.as_deref()),
    ) {
        return Ok(no);
    }
    let note = form.and_then(|f| f.note).unwrap_or_default();
    let lang = lang_of(&req);
    let fail = |e| PageError::unavailable(lang, e);
    match crate::flows::payment::mark_paid(&ctx, &path, &note)
        .await
        .map_err(fail)?
    {
        MarkedPaid::NotFound => Err(PageError::new(lang, super::PageErrorKind::NotFound)),
        MarkedPaid::Done | MarkedPaid::AlreadyPaid => {
            tracing::info!(attempt_id = %path, "attempt marked paid by an operator");
            Ok(see_other("/admin"))
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub(super) csrf: Option<String>,
}

/// `POST /admin/deliveries/{id}/redeliver`: a dead event delivery gets a fresh set of
/// tries, with the event's own `webhook-id` so the receiver can drop it if it has it.
pub async fn redeliver(
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
    match crate::jobs::events::redeliver(&ctx, &path)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?
    {
        Redelivered::Queued => tracing::info!(delivery_id = %path, "event redelivery queued by an operator"),
        // Already delivered or being retried (a second press): the page shows where it is.
        Redelivered::NotDead => {}
    }
    Ok(see_other("/admin"))
}

/// `utm_source=wp · gclid=…`: the lead's attribution as the deals table shows it.
fn attribution_text(u: &Utm) -> String {
    let pairs: Vec<String> = u.named().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" · ")
}

/// `2026-11 (es), 1 dic 2026, 14:30`: which consent text the lead agreed to, in which
/// language, when (`at` writes the time as the rest of the page does).
fn consent_text(l: &Lead, at: impl Fn(i64) -> String) -> String {
    l.consent
        .as_ref()
        .map(|c| format!("{} ({}), {}", c.version, c.lang.code(), at(c.at)))
        .unwrap_or_default()
}

/// Rendered in the operator's language (`?lang=`, else Accept-Language), with money and
/// times as that language writes them and times in `[admin] time_zone`.
pub async fn index(ctx: web::Data<AppContext>, req: HttpRequest, session: Session) -> Result<HttpResponse, PageError> {
    if !signed_in(&ctx.settings.admin, &session) {
        return Ok(see_other("/admin/login"));
    }
    let Ok(csrf) = csrf_token(&session) else {
        return Ok(HttpResponse::InternalServerError().finish());
    };
    let lang = lang_of(&req);
    let tz = ctx.settings.admin.time_zone;
    let at = |ms: i64| local_time::format(ms, lang, tz);
    let t = admin_texts(lang);
    let fail = |e| PageError::unavailable(lang, e);
    let deals = builtin_crm::deals(&ctx.db, 200).await.map_err(fail)?;
    let keys: Vec<String> = deals.iter().map(|d| d.external_key.clone()).collect();
    let deal_leads = leads::by_attempt(&ctx.db, &keys).await.map_err(fail)?;
    let tasks = builtin_crm::tasks(&ctx.db, 200).await.map_err(fail)?;
    let notes = builtin_crm::notes(&ctx.db, 100).await.map_err(fail)?;
    let dead = jobs::dead(&ctx.db, 50).await.map_err(fail)?;
    let unapplied = inbox::unapplied(&ctx.db, 50).await.map_err(fail)?;
    let after_approval = attempts::after_approval(&ctx.db, 100).await.map_err(fail)?;
    let unpaid = followups::unpaid(&ctx.db, 50).await.map_err(fail)?;
    let emails = followups::emails(&ctx.db, 50).await.map_err(fail)?;
    let links = super::admin_links::section(&ctx, lang, Default::default(), Vec::new())
        .await
        .map_err(fail)?;
    let deliveries = outbound::failing(&ctx.db, 50).await.map_err(fail)?;
    let crm_events = crm_inbox::recent_views(&ctx.db, 20).await.map_err(fail)?;
    let page = AdminPage {
        lang: lang.code(),
        t,
        time_zone: tz.name(),
        csrf,
        embeds: super::embed::rows(&ctx),
        links,
        deals: deals
            .into_iter()
            .map(|d| DealRow {
                attribution: deal_leads
                    .get(&d.external_key)
                    .map(|l| attribution_text(&l.utm))
                    .unwrap_or_default(),
                consent: deal_leads
                    .get(&d.external_key)
                    .map(|l| consent_text(l, at))
                    .unwrap_or_default(),
                value: super::money_text(d.value_minor, &d.currency, lang),
                title: d.title,
                person_name: d.person_name,
                person_email: d.person_email,
                person_phone: d.person_phone,
                stage: d.stage,
                status: d.status,
                lost_reason: d.lost_reason,
                updated: at(d.updated_at),
            })
            .collect(),
        tasks: tasks
            .into_iter()
            .map(|t| TaskRow {
                due: at(t.due_at),
                subject: t.subject,
                body: t.body,
                kind: t.kind.unwrap_or_default(),
                priority: t.priority.unwrap_or_default(),
                owner: t.owner.unwrap_or_default(),
                status: t.status,
            })
            .collect(),
        notes: notes
            .into_iter()
            .map(|n| NoteRow {
                at: at(n.created_at),
                deal: n.deal_title,
                body: n.body,
            })
            .collect(),
        dead_jobs: dead
            .into_iter()
            .map(|j| DeadJobRow {
                kind: j.kind,
                attempts: j.attempts,
                error: j.last_error.unwrap_or_default(),
            })
            .collect(),
        unapplied: unapplied
            .into_iter()
            .map(|e| UnappliedRow {
                gateway: e.gateway,
                event_id: e.event_id,
                reference: e.reference.unwrap_or_default(),
                outcome: e.outcome,
                received: at(e.received_at),
            })
            .collect(),
        after_approval: after_approval
            .into_iter()
            .map(|a| after_approval_row(a, lang, tz))
            .collect(),
        unpaid: unpaid
            .into_iter()
            .map(|u| UnpaidRow {
                amount: super::money_text(u.amount_minor, &u.currency, lang),
                started: at(u.created_at),
                attempt_id: u.attempt_id,
                offer: u.offer_slug,
                status: u.status,
                name: u.name,
                email: u.email,
            })
            .collect(),
        emails: emails
            .into_iter()
            .map(|e| EmailRow {
                at: at(e.updated_at),
                kind: e.kind,
                state: e.state,
                key: e.key,
                error: e.last_error.unwrap_or_default(),
            })
            .collect(),
        deliveries: deliveries
            .into_iter()
            .map(|d| EventDeliveryRow {
                at: at(d.updated_at),
                dead: d.state == DeliveryState::Dead,
                state: d.state.as_str().to_owned(),
                error: d.last_error.unwrap_or_default(),
                id: d.id,
                endpoint: d.endpoint,
                kind: d.kind,
                event_id: d.event_id,
                attempts: d.attempts,
            })
            .collect(),
        crm_events: crm_events
            .into_iter()
            .map(|e| CrmEventRow {
                at: at(e.received_at),
                crm: e.crm,
                event_id: e.event_id,
                outcome: e.outcome.unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(&page))
}

fn after_approval_row(a: Attempt, lang: Lang, tz: chrono_tz::Tz) -> AfterApprovalRow {
    let at = |ms: i64| local_time::format(ms, lang, tz);
    let r = &a.after.reversal;
    let dispute = match &r.dispute {
        None => String::new(),
        Some(d) => match d.due_at {
            Some(due) if d.stage == DisputeStage::Open => format!("{} {}", admin_texts(lang).dispute_due, at(due)),
            _ => d.stage.as_str().to_owned(),
        },
    };
    AfterApprovalRow {
        paid: a.amount.format(lang),
        standing: r.standing(&a.amount).as_str().to_owned(),
        refunded: r.refunded.format(lang),
        dispute,
        duplicate_of: a.after.duplicate_of.clone(),
        updated: at(a.updated_at),
        gateway: a.gateway.as_str().to_owned(),
        gateway_ref: a.gateway_ref.clone().unwrap_or_default(),
        attempt_id: a.id,
    }
}

/// `GET /metrics`: OpenMetrics text for a scraper holding `LEADGATE_METRICS_TOKEN` as a
/// bearer token, or for a signed-in admin. Counts say how much business flows through,
/// so they are not public.
pub async fn metrics(ctx: web::Data<AppContext>, req: HttpRequest, session: Session) -> HttpResponse {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&ctx.settings.secrets.metrics_token, bearer) {
        (Some(t), Some(given)) => bool::from(t.expose_secret().as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    };
    if !token_ok && !signed_in(&ctx.settings.admin, &session) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .finish();
    }
    match ctx.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}
