//! A payment link, written onto the CRM deal it is bound to: its URL in the deal field
//! mapped to `payment_link` (`[crm.fields]`), and a note with the link, the amount and the
//! expiry in the offer's language, written once (keyed by the link).

use super::crm_sync::{labelled, note_once};
use super::link_texts::texts;
use super::JobError;
use crate::config::FieldRole;
use crate::context::AppContext;
use crate::crm::NoteInput;
use crate::domain::local_time;
use crate::links::payment_link_url;
use crate::store::payment_links;

pub async fn run(ctx: &AppContext, link_id: &str) -> Result<(), JobError> {
    let link = payment_links::get(&ctx.db, link_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("payment link {link_id} not found")))?;
    let Some(binding) = &link.crm else {
        return Ok(());
    };
    if binding.crm != ctx.crm.name() {
        return Err(JobError::Permanent(format!(
            "payment link {link_id} is bound to a deal in {}, not {}",
            binding.crm,
            ctx.crm.name()
        )));
    }
    let offer = ctx
        .offer(&link.offer_slug)
        .ok_or_else(|| JobError::Permanent(format!("offer {:?} is no longer configured", link.offer_slug)))?;
    let url = payment_link_url(ctx, &link.id);
    // Writing the same URL again is harmless: a retry after a lost answer just repeats it.
    ctx.crm
        .set_deal_fields(&binding.deal_id, &[(FieldRole::PaymentLink, url.clone())])
        .await?;
    let t = texts(offer.lang);
    let tz = offer.followup.hours.timezone();
    let expires = format!(
        "{} ({})",
        local_time::format(link.expires_at, offer.lang, tz),
        tz.name()
    );
    let body = format!(
        "{}\n{}",
        t.made,
        labelled(
            &[t.link, t.amount, t.expires],
            &[url, link.amount.format(offer.lang), expires]
        )
    );
    let key = format!("payment_link:{}", link.id);
    let note = NoteInput {
        key: &key,
        deal_id: &binding.deal_id,
        person_id: binding.person_id.as_deref().unwrap_or(""),
        body,
    };
    note_once(ctx, &link.lead_id, &note).await
}
