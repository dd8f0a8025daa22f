//! The lead-submit workload as a browser sends it: the nonce cookie and the form token
//! the offer page served, the form loaded well over `[forms] min_fill_time` before the
//! submit, a new email every time. Nothing in the server is switched off for it.

use std::path::Path;

/// How long before the benchmark's submits "the browser loaded the form": past the
/// default minimum fill time (2 s), far inside the token's lifetime (24 h).
const LOADED_AGO_MS: i64 = 10_000;

/// The nonce cookie and form token a browser would hold after loading `/c/{offer}`.
pub fn form_guard(offer: &str) -> (String, String) {
    use secrecy::{ExposeSecret, SecretString};
    let nonce = "00112233445566778899aabbccddeeff";
    let keys = leadgate::context::Keys::derive(&SecretString::from(crate::server::SECRET_KEY));
    let token = leadgate::domain::form_token::sign(
        keys.forms.expose_secret(),
        &format!("c/{offer}"),
        nonce,
        leadgate::clock::now_ms() - LOADED_AGO_MS,
    );
    (format!("leadgate_form={nonce}"), token)
}

/// POSTs the offer form with a new email on every request, so each one is a new lead.
pub fn lua(offer: &str) -> String {
    let (cookie, token) = form_guard(offer);
    let request = r#"
local counter = 0
request = function()
  counter = counter + 1
  local body = "name=Bench+Customer&phone=3001234567&form_token=TOKEN&email=bench-" .. RUN .. "-" .. tostring(tid) .. "-" ..
    tostring(counter) .. "%40example.com"
  return wrk.format("POST", "/c/OFFER", {["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "COOKIE"}, body)
end
"#;
    // Emails differ between runs too, so no submit is a duplicate of an earlier run's.
    let run = format!("\"{}\"", uuid::Uuid::now_v7().simple());
    // The token last: its base64 could contain the other placeholders' letters.
    let request = request
        .replace("RUN", &run)
        .replace("OFFER", offer)
        .replace("COOKIE", &cookie)
        .replace("TOKEN", &token);
    format!("{}{request}", crate::wrk::THREAD_IDS)
}

pub fn write_lua(dir: &Path, offer: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join(format!("submit-{offer}-{}.lua", uuid::Uuid::now_v7().simple()));
    std::fs::write(&path, lua(offer)).map_err(|e| e.to_string())?;
    Ok(path)
}
