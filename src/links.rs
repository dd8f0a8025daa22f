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

/// A payment link's page: its id and a tag only we can make, so ids cannot be guessed
/// into links. It never expires by itself: the link's own expiry is in the database.
pub fn payment_link_url(ctx: &AppContext, link_id: &str) -> String {
    let tag = crate::domain::signing::tag(ctx.keys.payment_link.expose_secret(), &[link_id.as_bytes()]);
    ctx.url(&format!("/l/{link_id}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// The link id a payment-link token names, if we signed it.
pub fn verify_payment_link(ctx: &AppContext, token: &str) -> Option<String> {
    let (link_id, tag) = token.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let key = ctx.keys.payment_link.expose_secret();
    crate::domain::signing::verify(key, &[link_id.as_bytes()], &tag).then(|| link_id.to_owned())
}

/// The purchase parameters sent to an offer's `thank_you_url`, in the order they are signed.
pub fn thank_you_params(
    attempt: &crate::domain::lead::Attempt,
    lang: crate::domain::Lang,
) -> [(&'static str, String); 4] {
    [
        ("reference", attempt.id.clone()),
        ("amount", attempt.amount.decimal()),
        ("currency", attempt.amount.currency().as_str().to_owned()),
        ("lang", lang.code().to_owned()),
    ]
}

/// The string `sig` signs: `reference=…&amount=…&currency=…&lang=…`, the values as they
/// are (ids, digits, ISO codes: nothing to escape). The README's PHP snippet rebuilds it.
pub fn thank_you_canonical(params: &[(&'static str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `base` with the purchase parameters and `sig`, hex HMAC-SHA256 of their canonical
/// string under `LEADGATE_THANK_YOU_SECRET`, so the marketer's page fires its pixels only
/// for purchases we saw approved. Query parameters already on `base` are kept.
pub fn thank_you_url(
    secret: &secrecy::SecretString,
    base: &url::Url,
    attempt: &crate::domain::lead::Attempt,
    lang: crate::domain::Lang,
) -> String {
    let params = thank_you_params(attempt, lang);
    let canonical = thank_you_canonical(&params);
    let sig = hex::encode(crate::domain::signing::tag(
        secret.expose_secret().as_bytes(),
        &[canonical.as_bytes()],
    ));
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &params {
            q.append_pair(k, v);
        }
        q.append_pair("sig", &sig);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_canonical_string_is_the_parameters_in_order() {
        let p = [
            ("reference", "abc".to_owned()),
            ("amount", "199000.00".to_owned()),
            ("currency", "COP".to_owned()),
            ("lang", "pt-BR".to_owned()),
        ];
        assert_eq!(
            super::thank_you_canonical(&p),
            "reference=abc&amount=199000.00&currency=COP&lang=pt-BR"
        );
    }
}
