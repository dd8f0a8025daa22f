//! A stored CRM webhook, acted on: when it is a deal entering the payment-link stage, the
//! deal and its person are read from the CRM and a payment link is made bound to them
//! (`payment_link::create`, which reuses the deal's open link, so a replayed or doubled
//! trigger makes no second one). A person or deal that cannot make a link gets a note on
//! the deal saying why, and the event is closed: retrying cannot fix the CRM's data.

use super::crm_sync::note_once;
use super::link_texts::{texts, LinkTexts};
use super::payment_link::{self, DealRef, LinkError, NewLink};
use super::JobError;
use crate::config::crm_links::LinkAmount;
use crate::config::CrmKind;
use crate::context::AppContext;
use crate::crm::{hubspot, pipedrive, LinkSubject, NoteInput, StageMove};
use crate::domain::lead::Contact;
use crate::domain::payment_link::LinkSource;
use crate::domain::{Email, Lang, PersonName, Phone};
use crate::store::crm_inbox;

/// What became of an event, as its inbox row records it.
enum Outcome {
    Ignored(&'static str),
    Made {
        link_id: String,
        replayed: bool,
    },
    /// The deal got a note saying why no link was made.
    NotMade(String),
}

pub async fn run(ctx: &AppContext, event_id: &str) -> Result<(), JobError> {
    let event = crm_inbox::get(&ctx.db, event_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("CRM event {event_id} not found")))?;
    if event.processed_at.is_some() {
        return Ok(());
    }
    let outcome = act(ctx, &event).await?;
    let text = match &outcome {
        Outcome::Ignored(why) => format!("ignored: {why}"),
        Outcome::Made {
            link_id,
            replayed: false,
        } => format!("link: {link_id}"),
        Outcome::Made {
            link_id,
            replayed: true,
        } => format!("link reused: {link_id}"),
        Outcome::NotMade(why) => format!("not made: {why}"),
    };
    tracing::info!(outcome = %text, "CRM trigger done");
    crm_inbox::mark_processed(&ctx.db, &event.id, &text, ctx.clock.now_ms()).await?;
    Ok(())
}

async fn act(ctx: &AppContext, event: &crm_inbox::CrmEvent) -> Result<Outcome, JobError> {
    let Some(links) = ctx.settings.crm.links.as_ref() else {
        return Ok(Outcome::Ignored("[crm.payment_links] is not configured"));
    };
    let (parsed, source) = match event.crm.as_str() {
        "pipedrive" => (pipedrive::webhook::parse(&event.body), LinkSource::Pipedrive),
        "hubspot" => (hubspot::webhook::parse(&event.body), LinkSource::Hubspot),
        _ => return Ok(Outcome::Ignored("not from a CRM that makes links")),
    };
    if ctx.crm.name() != event.crm || ctx.settings.crm.kind == CrmKind::Builtin {
        return Ok(Outcome::Ignored("from a CRM other than the configured one"));
    }
    let Some(deal) = parsed.map_err(JobError::Permanent)?.deal else {
        return Ok(Outcome::Ignored("not a deal change"));
    };
    let slug = links
        .offer
        .as_deref()
        .unwrap_or(&ctx.settings.payment_links.default_offer);
    let offer = ctx
        .offer(slug)
        .ok_or_else(|| JobError::Permanent(format!("offer {slug:?} is no longer configured")))?;
    let wanted = ctx.crm.stage_id(&offer.crm_pipeline, &links.stage).await?;
    match &deal.stage {
        StageMove::Entered(stage) if *stage == wanted => {}
        StageMove::Entered(_) | StageMove::Stayed => return Ok(Outcome::Ignored("not entering the link stage")),
        StageMove::Unknown => {}
    }
    let subject = ctx.crm.link_subject(&deal.deal_id).await?;
    // The deal may have moved on since (or a workflow sent a deal of another stage).
    if subject.stage.as_deref() != Some(wanted.as_str()) {
        return Ok(Outcome::Ignored("the deal is no longer in the link stage"));
    }
    let t = texts(links.lang);
    let contact = match contact(&subject, &offer.phone_region) {
        Ok(c) => c,
        Err(why) => return not_made(ctx, event, &subject, why.code(), why.text(t)).await,
    };
    let amount = match links.amount {
        LinkAmount::Offer => None,
        LinkAmount::Deal => match subject.value {
            Some(v) => Some(v),
            None => return not_made(ctx, event, &subject, "no_amount", t.bad_amount).await,
        },
    };
    let new = NewLink {
        contact,
        lang: links.lang,
        offer: Some(slug.to_owned()),
        amount,
        description: None,
        deal: Some(DealRef {
            deal_id: subject.deal_id.clone(),
            person_id: subject.person_id.clone(),
        }),
        expires_at: None,
        source,
        idempotency: None,
        email_link: false,
    };
    match payment_link::create(ctx, new).await {
        Ok(made) => Ok(Outcome::Made {
            link_id: made.link_id,
            replayed: made.replayed,
        }),
        Err(LinkError::Invalid(problems)) => {
            let why = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            let text = format!("{} ({why})", t.refused);
            not_made(ctx, event, &subject, &format!("refused: {why}"), &text).await
        }
        Err(LinkError::KeyReused) => Err(JobError::Permanent("idempotency key reused".into())),
        Err(LinkError::Store(e)) => Err(e.into()),
    }
}

/// Why a deal's person cannot receive a link.
#[derive(Debug, Clone, Copy)]
enum Unfit {
    NoPerson,
    Name,
    Email,
    Phone,
}

impl Unfit {
    fn code(self) -> &'static str {
        match self {
            Unfit::NoPerson => "no_person",
            Unfit::Name => "invalid_name",
            Unfit::Email => "invalid_email",
            Unfit::Phone => "invalid_phone",
        }
    }

    fn text(self, t: &LinkTexts) -> &'static str {
        match self {
            Unfit::NoPerson => t.no_person,
            Unfit::Name => t.bad_name,
            Unfit::Email => t.bad_email,
            Unfit::Phone => t.bad_phone,
        }
    }
}

/// The deal's person parsed like a form's customer (phones without a country code read
/// in the offer's region).
fn contact(s: &LinkSubject, region: &str) -> Result<Contact, Unfit> {
    if s.person_id.is_none() {
        return Err(Unfit::NoPerson);
    }
    let name = s
        .name
        .as_deref()
        .and_then(|n| PersonName::parse(n).ok())
        .ok_or(Unfit::Name)?;
    let email = s
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or(Unfit::Email)?;
    let phone = s
        .phone
        .as_deref()
        .and_then(|p| Phone::parse(p, Some(region)).ok())
        .ok_or(Unfit::Phone)?;
    Ok(Contact {
        name,
        email,
        phone,
        tax_id: None,
    })
}

/// Notes on the deal why no link was made (once per event) and closes the event.
async fn not_made(
    ctx: &AppContext,
    event: &crm_inbox::CrmEvent,
    subject: &LinkSubject,
    code: &str,
    reason: &str,
) -> Result<Outcome, JobError> {
    let t = texts(ctx.settings.crm.links.as_ref().map_or(Lang::Es, |l| l.lang));
    let key = format!("crm_event:{}", event.id);
    let note = NoteInput {
        key: &key,
        deal_id: &subject.deal_id,
        person_id: subject.person_id.as_deref().unwrap_or(""),
        body: format!("{}: {reason}.", t.not_made),
    };
    // Recorded under the event, not a lead: no lead was made.
    note_once(ctx, &key, &note).await?;
    Ok(Outcome::NotMade(code.to_owned()))
}
