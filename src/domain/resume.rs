//! Signed, expiring "resume your checkout" links, so follow-up emails can
//! bring a customer back without a login and without a server-side table.
//!
//! Token: `b64url(payload) "." b64url(HMAC-SHA256(key, payload))` with
//! payload `v1|{lead_id}|{offer}|{expires_at}`. Verification demands exactly
//! four non-empty `|`-separated fields in canonical form, so a payload has
//! one reading only; claims whose ids contain `|` never verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Generous for our ids; refuses to spend effort on absurd inputs.
const MAX_TOKEN_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeClaims {
    pub lead_id: String,
    pub offer: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    #[error("malformed resume token")]
    Malformed,
    #[error("bad resume token signature")]
    BadSignature,
    #[error("resume token expired")]
    Expired,
}

pub fn sign(key: &[u8], claims: &ResumeClaims) -> String {
    let payload = format!("v1|{}|{}|{}", claims.lead_id, claims.offer, claims.expires_at);
    let mut mac = new_mac(key);
    mac.update(payload.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

pub fn verify(key: &[u8], token: &str, now_unix: i64) -> Result<ResumeClaims, ResumeError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ResumeError::Malformed);
    }
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(ResumeError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| ResumeError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| ResumeError::Malformed)?;

    // Authenticate before interpreting anything in the payload.
    let mut mac = new_mac(key);
    mac.update(&payload);
    mac.verify_slice(&tag).map_err(|_| ResumeError::BadSignature)?;

    let claims = parse_payload(&payload).ok_or(ResumeError::Malformed)?;
    if now_unix > claims.expires_at {
        return Err(ResumeError::Expired);
    }
    Ok(claims)
}

fn parse_payload(payload: &[u8]) -> Option<ResumeClaims> {
    let text = std::str::from_utf8(payload).ok()?;
    let fields: Vec<&str> = text.split('|').collect();
    let ["v1", lead_id, offer, exp] = fields.as_slice() else {
        return None;
    };
    let expires_at: i64 = exp.parse().ok()?;
    // Only the exact form `sign` writes (no "+5", "007") is accepted.
    if lead_id.is_empty() || offer.is_empty() || expires_at.to_string() != *exp {
        return None;
    }
    Some(ResumeClaims {
        lead_id: (*lead_id).to_owned(),
        offer: (*offer).to_owned(),
        expires_at,
    })
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    super::signing::mac(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test-key-0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    fn claims() -> ResumeClaims {
        ResumeClaims {
            lead_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
            offer: "curso-basico".to_owned(),
            expires_at: NOW + 3600,
        }
    }

    fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (p, t) = token.split_once('.').unwrap();
        (URL_SAFE_NO_PAD.decode(p).unwrap(), URL_SAFE_NO_PAD.decode(t).unwrap())
    }

    fn join(payload: &[u8], tag: &[u8]) -> String {
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    fn raw_mac(key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut m = new_mac(key);
        m.update(payload);
        m.finalize().into_bytes().to_vec()
    }

    #[test]
    fn roundtrip() {
        let t = sign(KEY, &claims());
        assert!(t.len() < MAX_TOKEN_LEN);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        assert_eq!(verify(KEY, &t, NOW), Ok(claims()));
    }

    #[test]
    fn payload_format_is_stable() {
        let (payload, tag) = parts(&sign(KEY, &claims()));
        assert_eq!(
            payload,
            format!("v1|01890a5d-ac96-774b-bcce-b302099a8057|curso-basico|{}", NOW + 3600).into_bytes()
        );
        assert_eq!(tag.len(), 32);
    }

    #[test]
    fn expiry_boundary() {
        let c = claims();
        let t = sign(KEY, &c);
        assert!(verify(KEY, &t, c.expires_at).is_ok());
        assert_eq!(verify(KEY, &t, c.expires_at + 1), Err(ResumeError::Expired));
        let old = ResumeClaims {
            expires_at: -5,
            ..claims()
        };
        assert_eq!(verify(KEY, &sign(KEY, &old), NOW), Err(ResumeError::Expired));
        assert_eq!(verify(KEY, &sign(KEY, &old), -6), Ok(old));
    }

    #[test]
    fn tampered_payload() {
        let (mut payload, tag) = parts(&sign(KEY, &claims()));
        let last = payload.len() - 1;
        payload[last] ^= 1; // change the expiry digit
        assert_eq!(verify(KEY, &join(&payload, &tag), NOW), Err(ResumeError::BadSignature));
        let longer = format!("v1|other|curso-basico|{}", NOW + 999_999);
        assert_eq!(
            verify(KEY, &join(longer.as_bytes(), &tag), NOW),
            Err(ResumeError::BadSignature)
        );
    }

    #[test]
    fn tampered_mac() {
        let (payload, mut tag) = parts(&sign(KEY, &claims()));
        tag[0] ^= 0x80;
        assert_eq!(verify(KEY, &join(&payload, &tag), NOW), Err(ResumeError::BadSignature));
        // Truncated or empty MACs are not accepted as prefixes.
        assert_eq!(
            verify(KEY, &join(&payload, &tag[..16]), NOW),
            Err(ResumeError::BadSignature)
        );
        assert_eq!(verify(KEY, &join(&payload, &[]), NOW), Err(ResumeError::BadSignature));
    }

    #[test]
    fn wrong_key() {
        let t = sign(KEY, &claims());
        assert_eq!(verify(b"other key", &t, NOW), Err(ResumeError::BadSignature));
        assert_eq!(verify(b"", &t, NOW), Err(ResumeError::BadSignature));
    }

    #[test]
    fn signature_checked_before_expiry_and_parsing() {
        let expired = ResumeClaims {
            expires_at: NOW - 1,
            ..claims()
        };
        let t = sign(KEY, &expired);
        assert_eq!(verify(b"nope", &t, NOW), Err(ResumeError::BadSignature));
        // Unsigned junk payload: signature error, not a parse error.
        assert_eq!(
            verify(KEY, &join(b"\xff\xfe junk", &[0; 32]), NOW),
            Err(ResumeError::BadSignature)
        );
    }

    #[test]
    fn garbage_empty_and_huge() {
        let good = sign(KEY, &claims());
        let huge = "A".repeat(10_000);
        let huge_dot = format!("{}.{}", "A".repeat(400), "B".repeat(200));
        let cases = [
            "",
            "..",
            "abc",
            "!!!.???",
            "a.b.c",
            "dGVzdA==.dGVzdA==",
            "dGVzdA.dGVzdA.",
            "ñ.ñ",
            huge.as_str(),
            huge_dot.as_str(),
        ];
        for t in cases {
            assert_eq!(verify(KEY, t, NOW), Err(ResumeError::Malformed), "{t:?}");
        }
        // Well-formed base64 but empty parts: decoding succeeds, the MAC fails.
        for t in [".", "abc.", ".abc"] {
            assert_eq!(verify(KEY, t, NOW), Err(ResumeError::BadSignature), "{t:?}");
        }
        // Extra characters around a valid token break the encoding.
        assert_eq!(verify(KEY, &format!("{good}.x"), NOW), Err(ResumeError::Malformed));
        assert_eq!(verify(KEY, &format!(" {good}"), NOW), Err(ResumeError::Malformed));
    }

    #[test]
    fn validly_signed_but_malformed_payloads() {
        // A leaked key is not the threat here; this checks the parser only
        // accepts what `sign` produces.
        for payload in [
            "v1|a|b",
            "v1|a|b|1|2",
            "v2|a|b|100",
            "v1||b|100",
            "v1|a||100",
            "v1|a|b|",
            "v1|a|b|+100",
            "v1|a|b|0100",
            "v1|a|b|1e3",
            "v1|a|b|99999999999999999999",
            "",
        ] {
            let t = join(payload.as_bytes(), &raw_mac(KEY, payload.as_bytes()));
            assert_eq!(verify(KEY, &t, NOW), Err(ResumeError::Malformed), "{payload}");
        }
        let bad_utf8 = b"v1|\xff|b|100";
        let t = join(bad_utf8, &raw_mac(KEY, bad_utf8));
        assert_eq!(verify(KEY, &t, NOW), Err(ResumeError::Malformed));
    }

    #[test]
    fn separator_in_ids_cannot_be_misparsed() {
        // These two claims would serialize to the same payload; neither may
        // verify, so one can never be passed off as the other.
        let a = ResumeClaims {
            lead_id: "lead|x".to_owned(),
            offer: "offer".to_owned(),
            expires_at: NOW + 10,
        };
        let b = ResumeClaims {
            lead_id: "lead".to_owned(),
            offer: "x|offer".to_owned(),
            expires_at: NOW + 10,
        };
        assert_eq!(sign(KEY, &a), sign(KEY, &b));
        assert_eq!(verify(KEY, &sign(KEY, &a), NOW), Err(ResumeError::Malformed));
        // Nor can an id smuggle in its own expiry.
        let c = ResumeClaims {
            lead_id: "lead".to_owned(),
            offer: format!("offer|{}", i64::MAX),
            expires_at: NOW - 10,
        };
        assert_eq!(verify(KEY, &sign(KEY, &c), NOW), Err(ResumeError::Malformed));
    }

    #[test]
    fn negative_and_extreme_expiry_roundtrip() {
        for exp in [i64::MIN, -1, 0, i64::MAX] {
            let c = ResumeClaims {
                expires_at: exp,
                ..claims()
            };
            assert_eq!(verify(KEY, &sign(KEY, &c), i64::MIN), Ok(c));
        }
    }

    #[test]
    fn error_messages() {
        for e in [ResumeError::Malformed, ResumeError::BadSignature, ResumeError::Expired] {
            assert!(!e.to_string().is_empty());
        }
    }
}
