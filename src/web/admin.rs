//! Password-protected admin pages: the built-in CRM's deals and tasks, dead jobs, webhooks
//! that matched nothing, and the metrics.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::pages::{AdminLogin, AdminPage, DeadJobRow, DealRow, NoteRow, TaskRow, UnappliedRow};
use super::{render, see_other, PageError};
use crate::clock::rfc3339;
use crate::context::AppContext;
use crate::domain::Lang;
use crate::store::{builtin_crm, inbox, jobs};

const SESSION_FLAG: &str = "admin";

fn signed_in(session: &Session) -> bool {
    matches!(session.get::<bool>(SESSION_FLAG), Ok(Some(true)))
}

pub async fn login_form() -> HttpResponse {
    render(&AdminLogin {
        lang: "en",
        failed: false,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    password: String,
}

pub async fn login(ctx: web::Data<AppContext>, session: Session, form: web::Form<LoginForm>) -> HttpResponse {
    // Without a hash (worker-only contexts) nobody can sign in.
    let hash = ctx
        .settings
        .secrets
        .admin_password_hash
        .as_ref()
        .map(|h| h.expose_secret().to_owned())
        .unwrap_or_default();
    let password = form.into_inner().password;
    // Argon2 is deliberately slow: keep it off the async workers.
    let ok = web::block(move || {
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false);
    if !ok {
        tracing::warn!("admin sign-in failed");
        let mut res = render(&AdminLogin {
            lang: "en",
            failed: true,
        });
        *res.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
        return res;
    }
    session.renew();
    if session.insert(SESSION_FLAG, true).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    see_other("/admin")
}

pub async fn logout(session: Session) -> HttpResponse {
    session.purge();
    see_other("/admin/login")
}

pub async fn index(ctx: web::Data<AppContext>, session: Session) -> Result<HttpResponse, PageError> {
    if !signed_in(&session) {
        return Ok(see_other("/admin/login"));
    }
    let fail = |e| PageError::unavailable(Lang::En, e);
    let deals = builtin_crm::deals(&ctx.db, 200).await.map_err(fail)?;
    let tasks = builtin_crm::tasks(&ctx.db, 200).await.map_err(fail)?;
    let notes = builtin_crm::notes(&ctx.db, 100).await.map_err(fail)?;
    let dead = jobs::dead(&ctx.db, 50).await.map_err(fail)?;
    let unapplied = inbox::unapplied(&ctx.db, 50).await.map_err(fail)?;
    let page = AdminPage {
        lang: "en",
        deals: deals
            .into_iter()
            .map(|d| DealRow {
                value: super::money_text(d.value_minor, &d.currency, Lang::En),
                title: d.title,
                person_name: d.person_name,
                person_email: d.person_email,
                person_phone: d.person_phone,
                stage: d.stage,
                status: d.status,
                lost_reason: d.lost_reason,
                updated: rfc3339(d.updated_at),
            })
            .collect(),
        tasks: tasks
            .into_iter()
            .map(|t| TaskRow {
                due: rfc3339(t.due_at),
                subject: t.subject,
                body: t.body,
            })
            .collect(),
        notes: notes
            .into_iter()
            .map(|n| NoteRow {
                at: rfc3339(n.created_at),
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
                received: rfc3339(e.received_at),
            })
            .collect(),
    };
    Ok(render(&page))
}

/// `GET /metrics`: OpenMetrics text for a scraper holding `LEADGATE_METRICS_TOKEN` as a
/// bearer token, or for a signed-in admin. Counts say how much business flows through,
/// so they are not public.
pub async fn metrics(ctx: web::Data<AppContext>, req: actix_web::HttpRequest, session: Session) -> HttpResponse {
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&ctx.settings.secrets.metrics_token, bearer) {
        (Some(t), Some(given)) => {
            use subtle::ConstantTimeEq;
            bool::from(t.expose_secret().as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    };
    if !token_ok && !signed_in(&session) {
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
