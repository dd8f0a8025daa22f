//! Customer emails, each sent at most once per key: the intent is recorded before the
//! mail server sees a byte. A refusal (a 4xx or 5xx reply, no connection) is known not to
//! have delivered it and may be retried; a try that ended after the message was handed
//! over without the server's answer (a crash, a dropped connection) may have delivered
//! it, so it is never sent again. That window, between handing it over and recording the
//! answer, is the one SMTP gives no way to close; it is counted and shown on `/admin`.

use sha2::{Digest, Sha256};

use super::crm_sync;
use super::JobError;
use crate::context::AppContext;
use crate::domain::followup::texts;
use crate::domain::lead::Lead;
use crate::domain::PaymentStatus;
use crate::email::{Action, EmailError, Outgoing};
use crate::store::followups::{self, EmailClaim};

/// One email to a lead, before it is dressed for the wire.
pub struct Letter<'a> {
    /// Idempotency key: one email per key, ever.
    pub key: &'a str,
    /// `recovery` or `receipt`, for the metrics and `/admin`.
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    /// A button: (label, URL).
    pub action: Option<(String, String)>,
    /// Marketing emails carry a one-click unsubscribe link; a receipt does not.
    pub unsubscribe: bool,
}

pub async fn send_once(ctx: &AppContext, lead: &Lead, letter: &Letter<'_>) -> Result<(), JobError> {
    let Some(mailer) = &ctx.mailer else {
        return Err(JobError::Permanent("no [email] server is configured".into()));
    };
    let message_id = message_id(ctx, letter.key);
    let now = ctx.clock.now_ms();
    match followups::claim_email(&ctx.db, letter.key, &lead.id, letter.kind, &message_id, now).await? {
        EmailClaim::Send => {}
        EmailClaim::AlreadySent => return Ok(()),
        EmailClaim::Unknown => {
            tracing::warn!(
                key = letter.key,
                "an earlier try may have sent this email; not sending it again"
            );
            ctx.metrics.email(letter.kind, "unknown");
            return Ok(());
        }
    }
    let out = Outgoing {
        message_id,
        to_name: lead.contact.name.to_string(),
        to_email: lead.contact.email.to_string(),
        lang: lead.lang,
        subject: letter.subject.clone(),
        text: letter.text.clone(),
        action: letter.action.as_ref().map(|(label, url)| Action {
            label: label.clone(),
            url: url.clone(),
        }),
        unsubscribe: letter
            .unsubscribe
            .then(|| crate::links::unsubscribe_link(ctx, &lead.id)),
    };
    let result = mailer.send(&out).await;
    let now = ctx.clock.now_ms();
    let (state, error) = match &result {
        Ok(()) => ("sent", None),
        Err(EmailError::Transient(e) | EmailError::Permanent(e)) => ("failed", Some(e.as_str())),
        Err(EmailError::Unknown(e)) => ("unknown", Some(e.as_str())),
    };
    followups::email_ended(&ctx.db, letter.key, state, error, now).await?;
    ctx.metrics.email(letter.kind, state);
    match result {
        Ok(()) => {
            tracing::info!(key = letter.key, "email sent");
            Ok(())
        }
        Err(EmailError::Transient(e)) => Err(JobError::transient(e)),
        Err(EmailError::Permanent(e)) => Err(JobError::Permanent(e)),
        Err(EmailError::Unknown(e)) => {
            tracing::warn!(key = letter.key, error = %e, "email may or may not have been delivered; not sending it again");
            Ok(())
        }
    }
}

/// The same key always gives the same Message-ID, so a copy is recognisable as one.
fn message_id(ctx: &AppContext, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let host = url::Url::parse(&ctx.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "leadgate.invalid".into());
    format!("<lg.{}@{host}>", hex::encode(&digest[..16]))
}

/// The payment confirmation, once per approved attempt, where the offer sends one.
pub async fn receipt(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    if s.attempt.status != PaymentStatus::Approved || !s.offer.followup.receipt_email {
        return Ok(());
    }
    let lang = s.lead.lang;
    let facts = super::facts::Facts::new(&s, &[], "", ctx.clock.now_ms());
    let subject = texts::receipt_subject(lang).render(&|v| facts.value(v));
    let text = texts::receipt_body(lang).render(&|v| facts.value(v));
    let key = format!("{attempt_id}:receipt");
    let letter = Letter {
        key: &key,
        kind: "receipt",
        subject,
        text,
        action: None,
        unsubscribe: false,
    };
    send_once(ctx, &s.lead, &letter).await
}

/// A payment link to the person it was made for, once per link, in the lead's language.
/// A link paid or expired before the job ran is not sent.
pub async fn payment_link(ctx: &AppContext, link_id: &str) -> Result<(), JobError> {
    use crate::domain::payment_link::LinkState;
    use crate::store::{attempts, leads, payment_links};

    let link = payment_links::get(&ctx.db, link_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("payment link {link_id} is gone")))?;
    let lead = leads::get(&ctx.db, &link.lead_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("lead of payment link {link_id} is gone")))?;
    let offer = ctx
        .offer(&link.offer_slug)
        .ok_or_else(|| JobError::Permanent(format!("offer {} is no longer configured", link.offer_slug)))?;
    let now = ctx.clock.now_ms();
    let tries = attempts::for_lead(&ctx.db, &link.lead_id).await?;
    let statuses: Vec<_> = tries.iter().map(|a| a.status).collect();
    let state = LinkState::of(&statuses, now >= link.expires_at);
    if matches!(state, LinkState::Paid | LinkState::Expired) {
        tracing::info!(
            link_id,
            state = state.as_str(),
            "payment link not emailed: nothing left to pay"
        );
        return Ok(());
    }
    let lang = lead.lang;
    let view = crate::jobs::payment_link::offer_view(offer, &link);
    let tz = offer.followup.hours.timezone();
    let (first, _) = lead.contact.name.first_and_last();
    let fill = |s: &str| {
        s.replace("{first}", &first)
            .replace("{what}", view.title.get(lang))
            .replace("{amount}", &link.amount.format(lang))
            .replace(
                "{expires}",
                &format!(
                    "{} ({})",
                    crate::domain::local_time::format(link.expires_at, lang, tz),
                    tz.name()
                ),
            )
            .replace("{seller}", offer.trust.seller.name.as_deref().unwrap_or_default())
    };
    let t = crate::email::texts::link_texts(lang);
    let key = format!("{link_id}:link");
    let letter = Letter {
        key: &key,
        kind: "payment_link",
        subject: fill(t.subject),
        text: fill(t.body).trim_end().to_owned(),
        action: Some((fill(t.button), crate::links::payment_link_url(ctx, link_id))),
        unsubscribe: false,
    };
    send_once(ctx, &lead, &letter).await
}
