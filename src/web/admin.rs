//! Password-protected admin pages: the built-in CRM's deals and tasks, and dead jobs.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::pages::{AdminLogin, AdminPage, DeadJobRow, DealRow, TaskRow};
use super::{render, see_other, PageError};
use crate::clock::rfc3339;
use crate::context::AppContext;
use crate::domain::Lang;
use crate::store::{builtin_crm, jobs};

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
    let dead = jobs::dead(&ctx.db, 50).await.map_err(fail)?;
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
        dead_jobs: dead
            .into_iter()
            .map(|j| DeadJobRow {
                kind: j.kind,
                attempts: j.attempts,
                error: j.last_error.unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(&page))
}
