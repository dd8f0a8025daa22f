//! `POST /webhooks/{gateway}`: verify the signature on the raw bytes, commit the event to
//! the inbox with its processing job, and only then answer 200. Duplicates get 200 too.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::clock::{new_id, now_ms};
use crate::context::AppContext;
use crate::domain::offer::GatewayKind;
use crate::gateways::{WebhookError, WebhookHeaders, WebhookRequest};
use crate::jobs::Job;
use crate::store::attempts;
use crate::store::inbox::{self, NewEvent};
use crate::store::StoreResult;

fn reply(status: actix_web::http::StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

pub async fn receive(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    use actix_web::http::StatusCode as S;
    let Some(gateway) = path.parse::<GatewayKind>().ok().and_then(|k| ctx.gateways.get(k)) else {
        return reply(S::NOT_FOUND, json!({"error": "unknown gateway"}));
    };
    let headers = WebhookHeaders::new(
        req.headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))),
    );
    let query = req.query_string();
    let delivery = WebhookRequest {
        headers: &headers,
        query,
        body: &body,
    };
    if let Err(e) = gateway.verify_webhook(&delivery) {
        tracing::warn!(gateway = %path, error = %e, "webhook rejected");
        return reply(S::UNAUTHORIZED, json!({"error": e.to_string()}));
    }
    let event = match gateway.parse_event(query, &body) {
        Ok(ev) => ev,
        Err(e @ WebhookError::Malformed(_)) => return reply(S::BAD_REQUEST, json!({"error": e.to_string()})),
        Err(e) => return reply(S::UNAUTHORIZED, json!({"error": e.to_string()})),
    };
    let row = NewEvent {
        id: new_id(),
        gateway: gateway.kind().as_str(),
        event_id: &event.event_id,
        reference: event.reference(),
        status: event.status().map(|s| s.as_str()),
        query,
        body: &body,
        received_at: now_ms(),
    };
    match store(&ctx, &row).await {
        Ok(true) => {
            ctx.queue.wake();
            tracing::info!(event_id = %event.event_id, "webhook stored");
            reply(S::OK, json!({"status": "accepted"}))
        }
        Ok(false) => reply(S::OK, json!({"status": "duplicate"})),
        // Not committed, so the gateway must retry: answer non-2xx.
        Err(e) => {
            tracing::error!(error = %e, "webhook not stored");
            reply(S::SERVICE_UNAVAILABLE, json!({"error": "temporarily unavailable"}))
        }
    }
}

async fn store(ctx: &AppContext, row: &NewEvent<'_>) -> StoreResult<bool> {
    let mut tx = ctx.db.begin().await?;
    let fresh = inbox::insert(&mut tx, row).await?;
    if fresh {
        // Tagged with its lead when the event names one of our attempts, so the events of
        // one payment are applied one at a time, in arrival order, and never race each
        // other (a stale decline must not open a follow-up beside the approval).
        let lead = match row.reference {
            Some(reference) => attempts::lead_of(&mut tx, reference).await?,
            None => None,
        };
        let job = Job::ApplyEvent {
            event_id: row.id.clone(),
        };
        ctx.queue
            .enqueue(&mut tx, &job, lead.as_deref(), std::time::Duration::ZERO)
            .await?;
    }
    tx.commit().await?;
    Ok(fresh)
}
