//! HubSpot workflow webhooks ("Send a webhook" action of a deal-based workflow), as far
//! as payment links read them, and HubSpot's request signature v3.
//!
//! Body: the action sends either the properties it was told to include, each under the
//! key given in the action (`{"hs_object_id": "123", "dealstage": "…", …}`), or, in its
//! older form, the whole enrolled object (`{"objectId": 123, "properties": {…}}`). Either
//! way the enrolled deal's id is there. HubSpot gives no event id, so the event is keyed
//! by a digest of its body: a retry of one delivery is the same event, and a deal entering
//! the stage again later is a new one as long as the workflow includes a property that
//! changes with it (the README says `hs_lastmodifieddate`).
//!
//! Signature v3 (documented): `X-HubSpot-Signature-v3` is base64(HMAC-SHA256(client
//! secret, method + URI + body + timestamp)), where the URI is the full URL HubSpot called
//! and the timestamp is `X-HubSpot-Request-Timestamp` (epoch ms); a timestamp more than
//! 5 minutes old is refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crm::{CrmDelivery, DealEvent, StageMove};
use crate::domain::signing;

pub const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
/// HubSpot's documented window for the request timestamp.
pub const MAX_AGE_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("X-HubSpot-Request-Timestamp is not epoch milliseconds")]
    BadTimestamp,
    #[error("request timestamp outside the 5-minute window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks the v3 signature of a request, in order: headers present, timestamp fresh,
/// HMAC compared in constant time. `uri` is the full URL HubSpot was given.
pub fn verify_v3(
    secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing("X-HubSpot-Signature-v3"))?;
    let ts_text = timestamp.ok_or(SignatureError::Missing("X-HubSpot-Request-Timestamp"))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    // Also refuses a timestamp far in the future: it would stay "fresh" for good.
    if (now_ms - ts).abs() > MAX_AGE_MS {
        return Err(SignatureError::Stale);
    }
    let given = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    // An empty key is a known key: it never makes a signature valid.
    let parts: [&[u8]; 4] = [method.as_bytes(), uri.as_bytes(), body, ts_text.as_bytes()];
    if secret.is_empty() || !signing::verify(secret, &parts, &given) {
        return Err(SignatureError::Mismatch);
    }
    Ok(())
}

/// The v3 signature HubSpot would send (tests and the README's example).
pub fn sign_v3(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    STANDARD.encode(signing::tag(
        secret,
        &[method.as_bytes(), uri.as_bytes(), body, timestamp.as_bytes()],
    ))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Reads a workflow webhook body; `Err` when it names no deal.
pub fn parse(body: &[u8]) -> Result<CrmDelivery, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let deal_id = text(v.get("hs_object_id"))
        .or_else(|| text(v.get("objectId")))
        .or_else(|| text(v.get("properties").and_then(|p| p.get("hs_object_id"))))
        .ok_or("no hs_object_id (include the deal's Record ID in the webhook)")?;
    if !deal_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("hs_object_id {deal_id:?} is not a HubSpot id"));
    }
    Ok(CrmDelivery {
        event_id: format!("sha256:{}", hex::encode(Sha256::digest(body))),
        deal: Some(DealEvent {
            deal_id,
            stage: StageMove::Unknown,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://pay.example/crm/hubspot/webhook";

    #[test]
    fn v3_checks_headers_window_and_mac() {
        let (body, now) = (br#"{"hs_object_id":"42"}"#.as_slice(), 1_700_000_000_000i64);
        let ts = now.to_string();
        let sig = sign_v3(b"secret", "POST", URI, body, &ts);
        let check = |sig: Option<&str>, ts: Option<&str>, at: i64, body: &[u8]| {
            verify_v3(b"secret", "POST", URI, body, sig, ts, at)
        };
        assert_eq!(check(Some(&sig), Some(&ts), now, body), Ok(()));
        assert_eq!(check(Some(&sig), Some(&ts), now + MAX_AGE_MS, body), Ok(()));
        assert_eq!(
            check(Some(&sig), Some(&ts), now + MAX_AGE_MS + 1, body),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(Some(&sig), Some(&ts), now, b"{}"), Err(SignatureError::Mismatch));
        assert!(matches!(
            check(None, Some(&ts), now, body),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            check(Some(&sig), None, now, body),
            Err(SignatureError::Missing(_))
        ));
        assert_eq!(
            check(Some(&sig), Some("x"), now, body),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify_v3(
                b"",
                "POST",
                URI,
                body,
                Some(&sign_v3(b"", "POST", URI, body, &ts)),
                Some(&ts),
                now
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn both_body_shapes_name_the_deal() {
        let d = parse(br#"{"hs_object_id":"42","dealstage":"x"}"#).unwrap();
        assert_eq!(d.deal.unwrap().deal_id, "42");
        let d = parse(br#"{"objectId":42,"properties":{}}"#).unwrap();
        assert_eq!(d.deal.unwrap().deal_id, "42");
        assert!(parse(br#"{"dealstage":"x"}"#).is_err());
        assert!(parse(br#"{"hs_object_id":"../x"}"#).is_err());
        assert_ne!(
            parse(br#"{"hs_object_id":1}"#).unwrap().event_id,
            parse(br#"{"hs_object_id":2}"#).unwrap().event_id
        );
    }
}
