//! Signed, expiring resume links: minted for customers (retry buttons, cancel URLs) and for
//! sales (follow-up tasks), verified on `/r/{token}` (GET shows, POST acts), and the
//! unsubscribe links of reminder emails (`/u/{token}`). Here, below both the flows and the
//! jobs that hand them out, so neither has to import the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;

use crate::clock::now_ms;
use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::{resume, ResumeClaims};

/// A signed, expiring token naming the lead and its offer.
pub fn resume_token(ctx: &AppContext, lead_id: &str, offer: &str) -> Result<String, String> {
    let ttl = i64::try_from(ctx.settings.resume_link_ttl.as_secs()).map_err(|e| e.to_string())?;
    let claims = ResumeClaims {
        lead_id: lead_id.to_owned(),
        offer: offer.to_owned(),
        expires_at: now_ms() / 1000 + ttl,
    };
    Ok(resume::sign(ctx.keys.resume.expose_secret(), &claims))
}

/// The full resume URL handed to sales in follow-up tasks.
pub fn resume_link(ctx: &AppContext, lead: &Lead) -> Result<String, String> {
    let token = resume_token(ctx, &lead.id, &lead.offer_slug)?;
    Ok(ctx.url(&format!("/r/{token}")))
}

pub fn verify_resume(ctx: &AppContext, token: &str) -> Result<ResumeClaims, resume::ResumeError> {
    resume::verify(ctx.keys.resume.expose_secret(), token, now_ms() / 1000)
}

/// A lead's one-click unsubscribe link, for every reminder email. It never expires: an
/// old email's link must still work.
pub fn unsubscribe_link(ctx: &AppContext, lead_id: &str) -> String {
    let tag = crate::domain::signing::tag(ctx.keys.unsubscribe.expose_secret(), &[lead_id.as_bytes()]);
    ctx.url(&format!("/u/{lead_id}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// The lead an unsubscribe token names, if we signed it.
pub fn verify_unsubscribe(ctx: &AppContext, token: &str) -> Option<String> {
    let (lead_id, tag) = token.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let key = ctx.keys.unsubscribe.expose_secret();
    crate::domain::signing::verify(key, &[lead_id.as_bytes()], &tag).then(|| lead_id.to_owned())
}
