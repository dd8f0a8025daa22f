//! `POST /crm/pipedrive/webhook` and `POST /crm/hubspot/webhook`: hand the raw request to
//! `flows::crm_trigger` and say what became of it. 200 only once the event is committed
//! (duplicates too), 401 for anything unauthenticated, 404 where nothing is configured.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::config::CrmKind;
use crate::context::AppContext;
use crate::flows::crm_trigger::{self, AcceptError, Accepted, CrmRequest};

fn reply(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

pub async fn pipedrive(ctx: web::Data<AppContext>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    receive(&ctx, CrmKind::Pipedrive, &req, &body).await
}

pub async fn hubspot(ctx: web::Data<AppContext>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    receive(&ctx, CrmKind::Hubspot, &req, &body).await
}

async fn receive(ctx: &AppContext, crm: CrmKind, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    let path = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    let request = CrmRequest {
        method: req.method().as_str(),
        uri: ctx.url(&path),
        headers: &headers,
        body,
    };
    match crm_trigger::accept(ctx, crm, &request).await {
        Ok(Accepted::Stored) => reply(StatusCode::OK, json!({"status": "accepted"})),
        Ok(Accepted::Duplicate) => reply(StatusCode::OK, json!({"status": "duplicate"})),
        Err(AcceptError::NotConfigured) => reply(StatusCode::NOT_FOUND, json!({"error": "not configured"})),
        Err(e @ AcceptError::Unauthenticated(_)) => {
            tracing::warn!(crm = crm.as_str(), error = %e, "CRM webhook rejected");
            reply(StatusCode::UNAUTHORIZED, json!({"error": "not authenticated"}))
        }
        Err(e @ AcceptError::Unreadable(_)) => {
            tracing::warn!(crm = crm.as_str(), error = %e, "CRM webhook unreadable");
            reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}))
        }
        Err(e @ AcceptError::Store(_)) => {
            tracing::error!(error = %e, "CRM webhook not stored");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily unavailable"}),
            )
        }
    }
}
