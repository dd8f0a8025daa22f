//! Follow-up tasks for sales: due when an attempt is abandoned (per the offer's delays)
//! or declined. Whether one is still needed is decided when the job runs, so a payment
//! that arrives in the meantime cancels it without touching the queue.

use super::crm_sync::{self, Subject, TASK};
use super::{FollowUpReason, JobError};
use crate::context::AppContext;
use crate::crm::TaskInput;
use crate::domain::followup::{Priority, TaskKind};
use crate::domain::{Lang, PaymentStatus};
use crate::store::{attempts, crm_records};

pub async fn run(ctx: &AppContext, attempt_id: &str, reason: FollowUpReason) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    if let Some(why) = skip_reason(ctx, &s, reason).await? {
        tracing::info!(why, "no follow-up needed");
        return Ok(());
    }
    let key = match reason {
        FollowUpReason::Abandoned { step } => format!("{attempt_id}:abandoned:{step}"),
        FollowUpReason::Declined => format!("{attempt_id}:declined"),
    };
    if crm_records::find(&ctx.db, ctx.crm.name(), TASK, &key).await?.is_some() {
        return Ok(());
    }
    let (person, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    let link = crate::links::resume_link(ctx, &s.lead).map_err(JobError::Permanent)?;
    let (subject, body) = task_text(&s, reason, &link);
    let task = TaskInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        subject,
        body,
        due_at: crate::clock::now_ms(),
        kind: TaskKind::Call,
        priority: if reason == FollowUpReason::Declined {
            Priority::High
        } else {
            Priority::Normal
        },
        owner: None,
    };
    let id = crm_sync::task_once(ctx, &s.lead.id, &task).await?;
    tracing::info!(task_id = %id, "follow-up task created");
    Ok(())
}

async fn skip_reason(
    ctx: &AppContext,
    s: &Subject<'_>,
    reason: FollowUpReason,
) -> Result<Option<&'static str>, JobError> {
    if attempts::lead_has_paid(&ctx.db, &s.lead.id, &s.attempt.offer_slug).await? {
        return Ok(Some("the lead has paid for this offer"));
    }
    Ok(match (reason, s.attempt.status) {
        // Delayed methods (bank transfer, cash voucher) are in progress, not abandoned.
        (FollowUpReason::Abandoned { .. }, PaymentStatus::Pending) => Some("payment still in progress"),
        // The decline already produced a task; later steps still remind sales.
        (FollowUpReason::Abandoned { step: 0 }, PaymentStatus::Declined) => Some("decline follow-up covers it"),
        (FollowUpReason::Declined, st) if st != PaymentStatus::Declined => Some("no longer declined"),
        _ => None,
    })
}

fn task_text(s: &Subject<'_>, reason: FollowUpReason, link: &str) -> (String, String) {
    let c = &s.lead.contact;
    let lang = s.lead.lang;
    let declined = reason == FollowUpReason::Declined;
    let subject = match (lang, declined) {
        (Lang::Es, false) => format!("Llamar a {}: pago no completado ({})", c.name, s.offer.title),
        (Lang::Es, true) => format!("Llamar a {}: pago rechazado ({})", c.name, s.offer.title),
        (Lang::PtBr, false) => format!("Ligar para {}: pagamento não concluído ({})", c.name, s.offer.title),
        (Lang::PtBr, true) => format!("Ligar para {}: pagamento recusado ({})", c.name, s.offer.title),
        (Lang::En, false) => format!("Call {}: payment not completed ({})", c.name, s.offer.title),
        (Lang::En, true) => format!("Call {}: payment declined ({})", c.name, s.offer.title),
    };
    let labels = match lang {
        Lang::Es => [
            "Nombre",
            "Correo",
            "Teléfono",
            "Oferta",
            "Monto",
            "Estado del pago",
            "Retomar el pago",
            "Campaña",
        ],
        Lang::PtBr => [
            "Nome",
            "E-mail",
            "Telefone",
            "Oferta",
            "Valor",
            "Status do pagamento",
            "Retomar o pagamento",
            "Campanha",
        ],
        Lang::En => [
            "Name",
            "Email",
            "Phone",
            "Offer",
            "Amount",
            "Payment status",
            "Resume payment",
            "Campaign",
        ],
    };
    let status = match &s.attempt.status_detail {
        Some(d) => format!("{} ({d})", s.attempt.status),
        None => s.attempt.status.to_string(),
    };
    let values = [
        c.name.to_string(),
        c.email.to_string(),
        c.phone.to_string(),
        s.offer.title.clone(),
        s.attempt.amount.format(lang),
        status,
        link.to_owned(),
        s.lead.utm.campaign.clone().unwrap_or_else(|| "-".into()),
    ];
    (subject, crm_sync::labelled(&labels, &values))
}
