//! The token every POST form carries: a signed double-submit CSRF token that also says
//! when the form was served, so a submit can be judged too fast for a person.
//!
//! The browser holds a random nonce in a cookie; the form holds
//! `v1.{issued_ms}.{nonce}.{b64url(HMAC(key, "v1|{purpose}|{nonce}|{issued_ms}"))}`. A
//! site that cannot read our cookie cannot send a field whose nonce matches it, and a
//! field made for one form (`purpose`: an offer, a resume link, a sandbox payment) is
//! refused by every other. A browser that keeps no cookie for us (Safari in a framed
//! embed, cookies off) is let through only when the caller has proven the POST came from
//! our own origin.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use subtle::ConstantTimeEq;

use super::signing;

/// The nonce is 16 random bytes, hex: 32 characters.
pub const NONCE_LEN: usize = 32;
const MAX_TOKEN_LEN: usize = 160;

/// What a form's token proves, or why it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormTokenError {
    #[error("no form token, or no form cookie")]
    Missing,
    #[error("form token does not match its cookie or form")]
    Forged,
    #[error("form token expired")]
    Expired,
    /// Authentic, but sent sooner after the form was served than a person types.
    #[error("form sent too fast")]
    TooFast { issued_ms: i64 },
}

/// A cookie value we could have minted: exactly 32 lowercase hex digits.
pub fn nonce_shaped(nonce: &str) -> bool {
    nonce.len() == NONCE_LEN && nonce.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// HMAC keyed with `key`. Keying hashes the key into HMAC's two pads, as much work as the
/// token itself and the same for every token, so each thread keeps the last keyed state
/// and clones it. The key copy is held as a secret (wiped when replaced).
fn keyed(key: &[u8]) -> signing::HmacSha256 {
    use secrecy::{ExposeSecret, SecretSlice};
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<Option<(SecretSlice<u8>, signing::HmacSha256)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((k, m)) if k.expose_secret() == key => m.clone(),
            _ => {
                let m = signing::mac(key);
                *last = Some((SecretSlice::from(key.to_vec()), m.clone()));
                m
            }
        }
    })
}

fn mac_of(key: &[u8], purpose: &str, nonce: &str, issued: &str) -> signing::HmacSha256 {
    use hmac::Mac as _;
    let mut m = keyed(key);
    for p in [
        b"v1|",
        purpose.as_bytes(),
        b"|",
        nonce.as_bytes(),
        b"|",
        issued.as_bytes(),
    ] {
        m.update(p);
    }
    m
}

fn mac(key: &[u8], purpose: &str, nonce: &str, issued_ms: i64) -> [u8; 32] {
    use hmac::Mac as _;
    mac_of(key, purpose, nonce, &issued_ms.to_string())
        .finalize()
        .into_bytes()
        .into()
}

pub fn sign(key: &[u8], purpose: &str, nonce: &str, issued_ms: i64) -> String {
    let tag = mac(key, purpose, nonce, issued_ms);
    format!("v1.{issued_ms}.{nonce}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The rules a token is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub min_fill: Duration,
    pub ttl: Duration,
}

/// Where the browser's nonce is, for [`verify`].
#[derive(Debug, Clone, Copy)]
pub enum Nonce<'a> {
    /// The nonce cookie the request carried.
    Sent(&'a str),
    /// No cookie, and the request proved it came from our own origin.
    NoneButSameOrigin,
    /// No cookie and no proof.
    None,
}

/// Checks `token` from the form against the browser's `cookie`; returns when the form
/// was served.
pub fn verify(
    key: &[u8],
    purpose: &str,
    token: Option<&str>,
    cookie: Nonce<'_>,
    now_ms: i64,
    rules: Rules,
) -> Result<i64, FormTokenError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(FormTokenError::Missing);
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(FormTokenError::Forged);
    }
    let mut parts = token.split('.');
    let (Some("v1"), Some(issued), Some(nonce), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FormTokenError::Forged);
    };
    let issued_ms: i64 = issued
        .parse()
        .ok()
        .filter(|n: &i64| n.to_string() == issued)
        .ok_or(FormTokenError::Forged)?;
    if !nonce_shaped(nonce) {
        return Err(FormTokenError::Forged);
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| FormTokenError::Forged)?;
    // Constant time (`verify_slice`).
    if hmac::Mac::verify_slice(mac_of(key, purpose, nonce, issued), &tag).is_err() {
        return Err(FormTokenError::Forged);
    }
    match cookie {
        Nonce::Sent(c) if c.as_bytes().ct_eq(nonce.as_bytes()).into() => {}
        Nonce::Sent(_) => return Err(FormTokenError::Forged),
        Nonce::NoneButSameOrigin => {}
        Nonce::None => return Err(FormTokenError::Missing),
    }
    let age = now_ms.saturating_sub(issued_ms);
    // A token from the future is a skewed clock between instances, not an attack: judge
    // it as just served.
    let age = Duration::from_millis(u64::try_from(age).unwrap_or(0));
    if age > rules.ttl {
        return Err(FormTokenError::Expired);
    }
    if age < rules.min_fill {
        return Err(FormTokenError::TooFast { issued_ms });
    }
    Ok(issued_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"form-key-0123456789abcdef0123456789";
    const NONCE: &str = "0123456789abcdef0123456789abcdef";
    const T0: i64 = 1_700_000_000_000;
    const RULES: Rules = Rules {
        min_fill: Duration::from_secs(2),
        ttl: Duration::from_secs(3600),
    };

    fn check(purpose: &str, token: &str, nonce: &str, now: i64) -> Result<i64, FormTokenError> {
        verify(KEY, purpose, Some(token), Nonce::Sent(nonce), now, RULES)
    }

    #[test]
    fn a_token_verifies_for_its_cookie_and_form_once_a_person_could_have_typed() {
        let t = sign(KEY, "c/demo", NONCE, T0);
        assert_eq!(check("c/demo", &t, NONCE, T0 + 5_000), Ok(T0));
        assert_eq!(
            check("c/demo", &t, NONCE, T0 + 500),
            Err(FormTokenError::TooFast { issued_ms: T0 })
        );
        assert_eq!(check("c/demo", &t, NONCE, T0 + 3_600_001), Err(FormTokenError::Expired));
        // From a skewed peer's future: fresh, so too fast rather than refused outright.
        assert!(matches!(
            check("c/demo", &t, NONCE, T0 - 10_000),
            Err(FormTokenError::TooFast { .. })
        ));
    }

    /// The thread's cached keyed state never signs with a key other than the one given:
    /// alternating keys on one thread gives each key's own HMAC every time.
    #[test]
    fn the_cached_key_state_follows_the_key_given() {
        let reference = |key: &[u8]| {
            let tag = signing::tag(
                key,
                &[
                    b"v1|",
                    b"c/demo",
                    b"|",
                    NONCE.as_bytes(),
                    b"|",
                    T0.to_string().as_bytes(),
                ],
            );
            format!("v1.{T0}.{NONCE}.{}", URL_SAFE_NO_PAD.encode(tag))
        };
        for key in [KEY, b"another key".as_slice(), KEY, b"".as_slice(), KEY] {
            assert_eq!(sign(key, "c/demo", NONCE, T0), reference(key));
            let t = reference(key);
            assert_eq!(
                verify(key, "c/demo", Some(&t), Nonce::Sent(NONCE), T0 + 5_000, RULES),
                Ok(T0)
            );
        }
        let t = sign(KEY, "c/demo", NONCE, T0);
        assert_eq!(
            verify(
                b"another key",
                "c/demo",
                Some(&t),
                Nonce::Sent(NONCE),
                T0 + 5_000,
                RULES
            ),
            Err(FormTokenError::Forged)
        );
    }

    #[test]
    fn another_cookie_form_key_or_time_is_forged() {
        let t = sign(KEY, "c/demo", NONCE, T0);
        let now = T0 + 5_000;
        let other_nonce = "ffffffffffffffffffffffffffffffff";
        assert_eq!(check("c/demo", &t, other_nonce, now), Err(FormTokenError::Forged));
        assert_eq!(check("c/other", &t, NONCE, now), Err(FormTokenError::Forged));
        let other_key = verify(b"another key", "c/demo", Some(&t), Nonce::Sent(NONCE), now, RULES);
        assert_eq!(other_key, Err(FormTokenError::Forged));
        // Backdating the issue time to skip the wait breaks the signature.
        let backdated = t.replacen(&T0.to_string(), &(T0 - 60_000).to_string(), 1);
        assert_eq!(
            check("c/demo", &backdated, NONCE, T0 + 100),
            Err(FormTokenError::Forged)
        );
        for bad in ["", "v1", "v1.x.y", "v2.1.AAAA", "v1.+5.AAAA", &format!("{t}.x")] {
            assert!(check("c/demo", bad, NONCE, now).is_err(), "{bad:?}");
        }
        assert_eq!(check("c/demo", &t, "ABC", now), Err(FormTokenError::Forged));
        // Swapping in another nonce (the attacker's own cookie) breaks the signature.
        let swapped = t.replacen(NONCE, other_nonce, 1);
        assert_eq!(check("c/demo", &swapped, other_nonce, now), Err(FormTokenError::Forged));
    }

    #[test]
    fn without_a_cookie_only_a_proven_same_origin_post_passes() {
        let t = sign(KEY, "c/demo", NONCE, T0);
        let now = T0 + 5_000;
        assert_eq!(
            verify(KEY, "c/demo", Some(&t), Nonce::None, now, RULES),
            Err(FormTokenError::Missing)
        );
        assert_eq!(
            verify(KEY, "c/demo", Some(&t), Nonce::NoneButSameOrigin, now, RULES),
            Ok(T0)
        );
        assert_eq!(
            verify(KEY, "c/demo", None, Nonce::NoneButSameOrigin, now, RULES),
            Err(FormTokenError::Missing)
        );
    }

    proptest! {
        #[test]
        fn nothing_but_our_own_token_verifies(token in "\\PC{0,140}", nonce in "[0-9a-f]{32}") {
            prop_assert!(check("c/demo", &token, &nonce, T0).is_err());
        }

        #[test]
        fn every_token_we_sign_verifies(nonce in "[0-9a-f]{32}", issued in 0i64..4_000_000_000_000, purpose in "[a-z/-]{1,40}") {
            let t = sign(KEY, &purpose, &nonce, issued);
            prop_assert_eq!(verify(KEY, &purpose, Some(&t), Nonce::Sent(&nonce), issued + 3_000, RULES), Ok(issued));
        }
    }
}
