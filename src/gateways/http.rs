//! The HTTP plumbing every real gateway adapter shares: send, classify the failure the
//! way the retry logic needs it, and decode the vendor's JSON.

use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::GatewayError;
use crate::outbound::{describe, excerpt};

/// Sends the request and decodes a 2xx JSON answer. 404 gives `Ok(None)` so callers can
/// tell "no such payment" from a failure; 408/429/5xx, timeouts and connection errors are
/// `Unavailable`; any other 4xx is `Rejected` with the vendor's own message.
pub async fn fetch_json<T: DeserializeOwned>(vendor: &str, req: RequestBuilder) -> Result<Option<T>, GatewayError> {
    let resp = req
        .send()
        .await
        .map_err(|e| GatewayError::Unavailable(format!("{vendor}: {}", describe(e))))?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| GatewayError::Unavailable(format!("{vendor}: {}", describe(e))))?;
    if !status.is_success() {
        let message = format!("{vendor} answered {status}: {}", excerpt(&body));
        return Err(if is_transient(status) {
            GatewayError::Unavailable(message)
        } else {
            GatewayError::Rejected(message)
        });
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| GatewayError::Unavailable(format!("{vendor} sent an unreadable answer: {e}")))
}

/// Like `fetch_json`, for calls where a 404 is itself a refusal: creating a checkout,
/// reading a payment or session by an id we hold, and searches (which answer an empty
/// list, never a 404, when nothing matches). A 404 there is a wrong `api_base` or
/// environment, and must not read as "no payment", which would expire paid attempts.
pub async fn send_json<T: DeserializeOwned>(vendor: &str, req: RequestBuilder) -> Result<T, GatewayError> {
    fetch_json(vendor, req)
        .await?
        .ok_or_else(|| GatewayError::Rejected(format!("{vendor} answered 404 Not Found")))
}

/// `base` with `segments` appended, each percent-encoded as one path segment (ids come
/// from browsers and webhooks, so `a/b?c` must stay one segment), any query dropped.
pub fn endpoint(vendor: &str, base: &Url, segments: &[&str]) -> Result<Url, GatewayError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| GatewayError::Rejected(format!("{vendor}: api_base {base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}
