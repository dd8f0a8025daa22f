//! `/api/v1`: payment links for other tools, authenticated by bearer tokens the operator
//! makes (`flows::api_tokens`). JSON in, JSON out; every refusal is a JSON body with a
//! precise status. The OpenAPI document is derived from these types (`api_doc`).

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::link_request::{parse, LinkRequest};
use crate::context::AppContext;
use crate::domain::api_token::Scope;
use crate::domain::payment_link::LinkSource;
use crate::flows::api_tokens::{self, AuthError};
use crate::flows::link_view::{self, LinkView};
use crate::flows::payment_link::{self, FieldProblem, Idempotency, LinkError};

/// A link request is a few hundred bytes.
pub const BODY_LIMIT: usize = 16 * 1024;
/// The IETF draft leaves the length to the server; a UUID is 36.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            // Larger bodies are cut off by the payload reader and answered 413.
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .route("/openapi.json", web::get().to(super::api_doc::serve))
            .route("/payment-links", web::post().to(create))
            .route("/payment-links/{id}", web::get().to(show))
            .default_service(web::to(|| async { ApiError::NotFound.error_response() })),
    );
}

/// A link as the API answers it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkOut {
    pub id: String,
    /// leadgate's page for the link: send this to the customer.
    pub url: String,
    /// The link's newest checkout attempt.
    pub attempt_id: Option<String>,
    /// RFC 3339, UTC.
    pub expires_at: String,
    /// The gateway's hosted checkout of that attempt, when it opened.
    pub checkout_url: Option<String>,
    /// `payable`, `pending`, `paid` or `expired`.
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub offer: String,
    pub description: Option<String>,
    pub crm_deal_id: Option<String>,
    /// `true` when an earlier request with the same `Idempotency-Key` made this link.
    pub replayed: bool,
}

/// One problem of the request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorItem {
    /// The request's field (`person.email`, `amount_minor`…); absent for the whole request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// Every refusal carries this body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("the token lacks the scope {0}")]
    Forbidden(Scope),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("the body must be application/json")]
    UnsupportedType,
    #[error("invalid request")]
    Invalid(Vec<FieldProblem>),
    #[error("{0}")]
    Unprocessable(String),
    #[error("too many failed authentications")]
    TooMany(u64),
    #[error("temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    fn unavailable(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let errors = match self {
            ApiError::Invalid(problems) => problems
                .iter()
                .map(|p| ErrorItem {
                    field: Some(p.field.to_owned()),
                    message: p.message.clone(),
                })
                .collect(),
            other => vec![ErrorItem {
                field: None,
                message: other.to_string(),
            }],
        };
        let mut res = HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ErrorBody { errors });
        let h = res.headers_mut();
        match self {
            ApiError::Unauthorized => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Forbidden(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
                );
            }
            ApiError::TooMany(secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            ApiError::Unavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

/// The token, checked before anything of the request is read. Failures from one address
/// back off like wrong admin passwords, so tokens cannot be guessed at speed.
async fn authenticate(ctx: &AppContext, req: &HttpRequest, need: Scope) -> Result<String, ApiError> {
    let ip = ctx.client_ip(req);
    let backoff = &ctx.limits.api_auth_backoff;
    if let Some(wait) = backoff.wait(&ip, Instant::now()) {
        return Err(ApiError::TooMany(crate::limits::retry_after_secs(wait)));
    }
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match api_tokens::authenticate(&ctx.db, authorization, need, ctx.clock.now_ms()).await {
        Ok(token) => Ok(token.id),
        Err(AuthError::Missing) => Err(ApiError::Unauthorized),
        Err(AuthError::Refused(why)) => {
            tracing::warn!(why, "API token refused");
            backoff.failed(&ip, Instant::now());
            Err(ApiError::Unauthorized)
        }
        Err(AuthError::Scope(s)) => Err(ApiError::Forbidden(s)),
        Err(AuthError::Store(e)) => Err(ApiError::unavailable(e)),
    }
}

/// `Idempotency-Key`: a structured-field string per the IETF draft (quoted), or bare.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadRequest(format!(
            "Idempotency-Key: 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters"
        ))
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s);
    if s.is_empty() || s.len() > IDEMPOTENCY_KEY_MAX || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

fn is_json(req: &HttpRequest) -> bool {
    use actix_web::HttpMessage;
    // `application/json`, or a `+json` type such as `application/merge-patch+json`.
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_().as_str() == "application"
            && (m.subtype().as_str() == "json" || m.suffix().is_some_and(|s| s.as_str() == "json"))
    })
}

/// Create a payment link.
#[utoipa::path(
    post,
    path = "/api/v1/payment-links",
    tag = "payment links",
    request_body(content = LinkRequest, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body answer the same link (200, `replayed: true`); the same key with another body is refused with 422.")),
    responses(
        (status = 201, description = "Link made", body = LinkOut),
        (status = 200, description = "Replay of an earlier request with the same Idempotency-Key", body = LinkOut),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks payment_links:write", body = ErrorBody),
        (status = 413, description = "Body larger than 16 KiB"),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields (each listed), or an Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 503, description = "Try again", body = ErrorBody),
    ),
    security(("bearer" = ["payment_links:write"]))
)]
pub async fn create(ctx: web::Data<AppContext>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let token_id = authenticate(&ctx, &req, Scope::PaymentLinksWrite).await?;
    let key = idempotency_key(&req)?;
    if !is_json(&req) {
        return Err(ApiError::UnsupportedType);
    }
    let request: LinkRequest = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(e.to_string()),
        _ => ApiError::BadRequest(format!("malformed JSON: {e}")),
    })?;
    let mut new = parse(&ctx, &request, LinkSource::Api).map_err(ApiError::Invalid)?;
    new.idempotency = key.map(|k| Idempotency {
        key: format!("api:{token_id}:{k}"),
        // The parsed request re-serialized: whitespace and key order do not make it "another body".
        fingerprint: hex::encode(Sha256::digest(serde_json::to_vec(&request).unwrap_or_default())),
    });
    let made = payment_link::create(&ctx, new).await.map_err(|e| match e {
        LinkError::Invalid(p) => ApiError::Invalid(p),
        LinkError::KeyReused => {
            ApiError::Unprocessable("this Idempotency-Key was used with a different request body".into())
        }
        LinkError::Store(e) => ApiError::unavailable(e),
    })?;
    let view = link_view::get(&ctx, &made.link_id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| ApiError::unavailable("a link just made is gone"))?;
    let status = if made.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status)
        .insert_header((
            header::LOCATION,
            ctx.url(&format!("/api/v1/payment-links/{}", made.link_id)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(out(view, made.replayed)))
}

/// A payment link and where it stands.
#[utoipa::path(
    get,
    path = "/api/v1/payment-links/{id}",
    tag = "payment links",
    params(("id" = String, Path, description = "The link's id")),
    responses(
        (status = 200, description = "The link", body = LinkOut),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "The token lacks payment_links:read", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 503, description = "Try again", body = ErrorBody),
    ),
    security(("bearer" = ["payment_links:read"]))
)]
pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authenticate(&ctx, &req, Scope::PaymentLinksRead).await?;
    let view = link_view::get(&ctx, &id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(out(view, false)))
}

fn out(v: LinkView, replayed: bool) -> LinkOut {
    LinkOut {
        expires_at: crate::clock::rfc3339(v.link.expires_at),
        status: v.state.as_str().to_owned(),
        amount_minor: v.link.amount.amount_minor(),
        currency: v.link.amount.currency().as_str().to_owned(),
        offer: v.link.offer_slug,
        description: v.link.description,
        crm_deal_id: v.link.crm.map(|c| c.deal_id),
        id: v.link.id,
        url: v.url,
        attempt_id: v.attempt_id,
        checkout_url: v.checkout_url,
        replayed,
    }
}
