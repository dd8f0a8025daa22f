//! Logging. Request spans carry the method and path only: query strings can hold a
//! prefilled email or phone, which must not reach the logs at info level.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use std::io::IsTerminal;

use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a person at a terminal: files, journald and log
        // collectors get plain text. NO_COLOR (no-color.org) turns them off anywhere.
        .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .try_init();
}

pub struct RequestSpan;

/// Tags the current request or job span with the lead and attempt it concerns.
pub fn record_ids(lead_id: &str, attempt_id: &str) {
    let span = Span::current();
    span.record("lead_id", lead_id);
    span.record("attempt_id", attempt_id);
}

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // The id `TracingLogger` already made for this request (one random id, not two).
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| **id)
            .unwrap_or_else(uuid::Uuid::now_v7);
        tracing::info_span!(
            "http",
            method = %request.method(),
            path = %request.path(),
            request_id = %id,
            status = tracing::field::Empty,
            lead_id = tracing::field::Empty,
            attempt_id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let status = match outcome {
            Ok(res) => res.response().status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        if status.is_server_error() {
            let _guard = span.enter();
            tracing::warn!(status = status.as_u16(), "request failed");
        }
    }
}
