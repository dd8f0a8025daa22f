//! Accepting a CRM webhook for payment links: authenticate it the way its vendor
//! documents, read its event id through the adapter, and commit it to the CRM inbox with
//! its job in one transaction. Only a committed event is acknowledged; a duplicate is
//! acknowledged and changes nothing; anything unauthenticated stores nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::{new_id, now_ms};
use crate::config::crm_links::WebhookAuth;
use crate::config::CrmKind;
use crate::context::AppContext;
use crate::crm::{hubspot, pipedrive};
use crate::jobs::Job;
use crate::store::crm_inbox::{self, NewCrmEvent};
use crate::store::StoreError;

/// A CRM's request as received. Header names are lower case.
pub struct CrmRequest<'a> {
    pub method: &'a str,
    /// The full URL the CRM called (our public URL, path and query), as HubSpot signs it.
    pub uri: String,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl CrmRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Stored,
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// `[crm.payment_links]` is not set up for this CRM: nothing listens here.
    #[error("payment links from this CRM are not configured")]
    NotConfigured,
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// Authenticated, but not a webhook we can read; retrying the same bytes cannot help.
    #[error("unreadable webhook: {0}")]
    Unreadable(String),
    #[error("event not stored: {0}")]
    Store(#[from] StoreError),
}

/// Equal in constant time, whatever the lengths (both sides are hashed first).
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    !expected.is_empty() && bool::from(a.ct_eq(&b))
}

/// `Authorization: Basic base64(user:password)`, both compared in constant time.
fn basic_auth_ok(header: Option<&str>, user: &str, password: &str) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic "))) else {
        return false;
    };
    let Some(decoded) = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
    else {
        return false;
    };
    let Some((u, p)) = decoded.split_once(':') else {
        return false;
    };
    // Both checked, so the time taken says nothing about which one was wrong.
    same_secret(u, user) & same_secret(p, password)
}

fn authenticate(auth: &WebhookAuth, req: &CrmRequest<'_>) -> Result<(), AcceptError> {
    let refused = |m: &str| Err(AcceptError::Unauthenticated(m.to_owned()));
    match auth {
        WebhookAuth::Basic { user, password } => {
            if basic_auth_ok(
                req.header("authorization"),
                user.expose_secret(),
                password.expose_secret(),
            ) {
                Ok(())
            } else {
                refused("HTTP basic auth missing or wrong")
            }
        }
        WebhookAuth::HubspotSignature { client_secret } => hubspot::webhook::verify_v3(
            client_secret.expose_secret().as_bytes(),
            req.method,
            &req.uri,
            req.body,
            req.header(hubspot::webhook::SIGNATURE_HEADER),
            req.header(hubspot::webhook::TIMESTAMP_HEADER),
            now_ms(),
        )
        .map_err(|e| AcceptError::Unauthenticated(e.to_string())),
        WebhookAuth::Header { name, value } => match req.header(&name.to_ascii_lowercase()) {
            Some(given) if same_secret(given, value.expose_secret()) => Ok(()),
            _ => refused("secret header missing or wrong"),
        },
    }
}

pub async fn accept(ctx: &AppContext, crm: CrmKind, req: &CrmRequest<'_>) -> Result<Accepted, AcceptError> {
    let links = ctx.settings.crm.links.as_ref();
    let Some(links) = links.filter(|_| ctx.settings.crm.kind == crm && ctx.crm.name() == crm.as_str()) else {
        return Err(AcceptError::NotConfigured);
    };
    authenticate(&links.auth, req)?;
    let delivery = match crm {
        CrmKind::Pipedrive => pipedrive::webhook::parse(req.body),
        CrmKind::Hubspot => hubspot::webhook::parse(req.body),
        CrmKind::Builtin => return Err(AcceptError::NotConfigured),
    }
    .map_err(AcceptError::Unreadable)?;
    if delivery.event_id.len() > 200 {
        return Err(AcceptError::Unreadable("event id too long".into()));
    }
    let row = NewCrmEvent {
        id: new_id(),
        crm: crm.as_str(),
        event_id: &delivery.event_id,
        body: req.body,
        received_at: now_ms(),
    };
    let mut tx = ctx.db.begin().await?;
    if !crm_inbox::insert(&mut tx, &row).await? {
        tx.rollback().await?;
        return Ok(Accepted::Duplicate);
    }
    let job = Job::CrmTrigger {
        event_id: row.id.clone(),
    };
    ctx.queue
        .enqueue(&mut tx, &job, None, std::time::Duration::ZERO)
        .await?;
    tx.commit().await?;
    ctx.queue.wake();
    tracing::info!(crm = crm.as_str(), event_id = %delivery.event_id, "CRM webhook stored");
    Ok(Accepted::Stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_needs_both_parts_right() {
        let h = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert!(basic_auth_ok(Some(&h("pd", "s3cret")), "pd", "s3cret"));
        assert!(!basic_auth_ok(Some(&h("pd", "s3cre")), "pd", "s3cret"));
        assert!(!basic_auth_ok(Some(&h("px", "s3cret")), "pd", "s3cret"));
        assert!(!basic_auth_ok(Some("Bearer x"), "pd", "s3cret"));
        assert!(!basic_auth_ok(None, "pd", "s3cret"));
        assert!(!basic_auth_ok(Some(&h("", "")), "", ""));
    }
}
