//! API tokens as the operator makes them (admin, CLI) and as a request presents them.

use crate::clock::new_id;
use crate::domain::api_token::{self, Scope, Scopes, TokenError};
use crate::store::api_tokens::{self, ApiToken};
use crate::store::{Db, StoreError};

/// A token just made: `token` is shown this once and never again.
pub struct Made {
    pub token: String,
    pub row: ApiToken,
}

#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error(transparent)]
    Invalid(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn make(db: &Db, name: &str, scopes: &str, now: i64) -> Result<Made, MakeError> {
    let name = api_token::parse_name(name)?;
    let scopes = Scopes::parse(scopes)?;
    let id = new_id();
    let fresh = api_token::generate(&id);
    let row = ApiToken {
        id,
        name,
        scopes,
        hash: fresh.hash,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    api_tokens::insert(db, &row).await?;
    tracing::info!(token_id = %row.id, scopes = %row.scopes, "API token made");
    Ok(Made {
        token: fresh.token,
        row,
    })
}

pub async fn revoke(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    let done = api_tokens::revoke(db, id, now).await?;
    if done {
        tracing::info!(token_id = %id, "API token revoked");
    }
    Ok(done)
}

/// Why a request's token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    /// Not one of ours, a wrong secret, or revoked: told apart only in the log.
    #[error("invalid or revoked token")]
    Refused(&'static str),
    #[error("the token lacks the scope {0}")]
    Scope(Scope),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The token in an `Authorization` header's value, if it is valid, unrevoked and has `need`.
pub async fn authenticate(db: &Db, authorization: Option<&str>, need: Scope, now: i64) -> Result<ApiToken, AuthError> {
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let (id, secret) = api_token::split(given).ok_or(AuthError::Refused("malformed"))?;
    let row = api_tokens::get(db, id).await?.ok_or(AuthError::Refused("unknown id"))?;
    // The secret is checked before the revocation, so a guess learns nothing about the id.
    if !api_token::matches(secret, &row.hash) {
        return Err(AuthError::Refused("wrong secret"));
    }
    if row.revoked_at.is_some() {
        return Err(AuthError::Refused("revoked"));
    }
    if !row.scopes.allows(need) {
        return Err(AuthError::Scope(need));
    }
    if let Err(e) = api_tokens::touch(db, &row.id, now).await {
        // Bookkeeping only: the request goes on.
        tracing::warn!(error = %e, "could not record the API token's use");
    }
    Ok(row)
}
