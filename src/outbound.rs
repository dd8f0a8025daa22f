//! What every outbound HTTP client (gateways, CRMs) reports about a failure, the same way.

/// reqwest's messages include the URL, which may carry query data (an email in a search).
pub fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{kind}: {}", e.without_url())
}

/// The start of a vendor's error body, enough for an operator to see why.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s.replace(['\n', '\r'], " ")
}
