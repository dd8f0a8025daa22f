//! `POST /webhooks/{gateway}`: hand the raw delivery to `flows::webhook` and say what
//! became of it. 200 only once the event is committed (duplicates too), 401 for anything
//! unsigned, a precise 4xx for a signed but unusable event, 503 when it was not stored.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::context::AppContext;
use crate::domain::offer::GatewayKind;
use crate::flows::webhook::{self, AcceptError, Accepted};
use crate::gateways::{WebhookError, WebhookHeaders, WebhookRequest};

fn reply(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

pub async fn receive(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(gateway) = path.parse::<GatewayKind>().ok().and_then(|k| ctx.gateways.get(k)) else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "unknown gateway"}));
    };
    let headers = WebhookHeaders::new(
        req.headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))),
    );
    let delivery = WebhookRequest {
        headers: &headers,
        query: req.query_string(),
        body: &body,
    };
    match webhook::accept(&ctx, gateway.as_ref(), &delivery).await {
        Ok(Accepted::Stored) => reply(StatusCode::OK, json!({"status": "accepted"})),
        Ok(Accepted::Duplicate) => reply(StatusCode::OK, json!({"status": "duplicate"})),
        Err(AcceptError::Unsigned(e)) => {
            tracing::warn!(gateway = %gateway.kind().as_str(), error = %e, "webhook rejected");
            reply(StatusCode::UNAUTHORIZED, json!({"error": e.to_string()}))
        }
        Err(AcceptError::Unusable(e)) => {
            tracing::warn!(gateway = %gateway.kind().as_str(), error = %e, "signed webhook unusable");
            let status = match e {
                WebhookError::TooLong { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            reply(status, json!({"error": e.to_string()}))
        }
        // Not committed, so the gateway must retry: answer non-2xx.
        Err(e @ AcceptError::Store(_)) => {
            tracing::error!(error = %e, "webhook not stored");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily unavailable"}),
            )
        }
    }
}
