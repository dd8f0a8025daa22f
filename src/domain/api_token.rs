//! API bearer tokens: `lg_<id>_<secret>`, the id finding the row, the secret 256 random
//! bits kept only as a SHA-256 digest. A slow hash buys nothing for a secret nobody chose;
//! the digest is compared in constant time all the same. No I/O.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "lg_";
/// Bytes of randomness in a secret (hex-encoded in the token).
const SECRET_BYTES: usize = 32;
/// The longest token we read; anything longer is not ours and is not hashed.
pub const TOKEN_MAX_LEN: usize = 128;
/// A token's name, as the operator reads it on `/admin`.
pub const NAME_MAX_CHARS: usize = 80;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    PaymentLinksWrite,
    PaymentLinksRead,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::PaymentLinksWrite, Scope::PaymentLinksRead];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::PaymentLinksWrite => "payment_links:write",
            Scope::PaymentLinksRead => "payment_links:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown scope {0:?} (known: payment_links:write, payment_links:read)")]
    UnknownScope(String),
    #[error("a token needs at least one scope")]
    NoScope,
    #[error("a token's name is 1 to {NAME_MAX_CHARS} characters on one line")]
    BadName,
}

impl FromStr for Scope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Scope, TokenError> {
        Scope::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| TokenError::UnknownScope(s.trim().to_owned()))
    }
}

/// A token's scopes: a non-empty set, stored space-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses scopes separated by spaces or commas.
    pub fn parse(s: &str) -> Result<Scopes, TokenError> {
        let mut v = s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(TokenError::NoScope);
        }
        Ok(Scopes(v))
    }

    pub fn from_list(list: &[Scope]) -> Result<Scopes, TokenError> {
        let joined: Vec<&str> = list.iter().map(Scope::as_str).collect();
        Scopes::parse(&joined.join(" "))
    }

    pub fn allows(&self, s: Scope) -> bool {
        self.0.contains(&s)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.0.iter().map(Scope::as_str).collect();
        f.write_str(&v.join(" "))
    }
}

/// A token's name: one line the operator recognises it by.
pub fn parse_name(s: &str) -> Result<String, TokenError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > NAME_MAX_CHARS || s.chars().any(char::is_control) {
        return Err(TokenError::BadName);
    }
    Ok(s.to_owned())
}

/// A freshly made token: `token` is shown once, `hash` is what is stored.
pub struct NewToken {
    pub token: String,
    pub hash: String,
}

/// Makes the token of the row `id`.
pub fn generate(id: &str) -> NewToken {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        hash: digest(&secret),
    }
}

/// A presented token split into the row id and the secret; `None` when it is not shaped
/// like one of ours (so it cannot be ours).
pub fn split(token: &str) -> Option<(&str, &str)> {
    if token.len() > TOKEN_MAX_LEN {
        return None;
    }
    let (id, secret) = token.strip_prefix(PREFIX)?.rsplit_once('_')?;
    let hexish = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    (!id.is_empty() && secret.len() == SECRET_BYTES * 2 && hexish(id) && hexish(secret)).then_some((id, secret))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The secret matches the stored digest.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    bool::from(digest(secret).as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_splits_back_and_matches_only_its_hash() {
        let t = generate("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        let (id, secret) = split(&t.token).unwrap();
        assert_eq!(id, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert!(matches(secret, &t.hash));
        assert!(!matches(secret, &generate(id).hash));
        assert!(!t.token.contains(&t.hash));
    }

    #[test]
    fn foreign_shapes_are_not_tokens() {
        for s in [
            "",
            "lg_",
            "lg_x_y",
            "Bearer lg_a_b",
            &format!("lg_a_{}", "z".repeat(64)),
        ] {
            assert_eq!(split(s), None, "{s}");
        }
    }

    #[test]
    fn scopes_parse_to_a_set() {
        let s = Scopes::parse("payment_links:read, payment_links:write payment_links:read").unwrap();
        assert_eq!(s.to_string(), "payment_links:write payment_links:read");
        assert!(s.allows(Scope::PaymentLinksRead));
        assert_eq!(Scopes::parse(" "), Err(TokenError::NoScope));
        assert!(matches!(Scopes::parse("admin"), Err(TokenError::UnknownScope(_))));
        let read = Scopes::parse("payment_links:read").unwrap();
        assert!(!read.allows(Scope::PaymentLinksWrite));
    }
}
