//! The `reversal` job: tells the CRM what became of an approved payment's money. Each
//! change of the attempt's reversal (a refund, a void, a dispute opening or closing) gets
//! one note; the deal moves as the offer's `on_refund` says once the money went back; an
//! open dispute gets one task for the owner, due when the evidence is. It reads the
//! attempt when it runs, so a late or repeated job writes what is true now, once.

use super::crm_sync::{self, Subject};
use super::deal_outcome::sync_deal;
use super::JobError;
use crate::clock::now_ms;
use crate::context::AppContext;
use crate::crm::{NoteInput, TaskInput};
use crate::domain::followup::{Priority, TaskKind};
use crate::domain::reversal::{DisputeStage, Standing};
use crate::domain::Lang;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    let after = &s.attempt.after;
    if !s.attempt.status.is_paid() || after.reversal_version == 0 {
        return Ok(());
    }
    let (person, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    sync_deal(ctx, &s, &deal).await?;
    let key = format!("{attempt_id}:reversal:{}", after.reversal_version);
    let note = NoteInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        body: note_text(&s),
    };
    crm_sync::note_once(ctx, &s.lead.id, &note).await?;
    let Some(dispute) = after
        .reversal
        .dispute
        .as_ref()
        .filter(|d| d.stage == DisputeStage::Open)
    else {
        return Ok(());
    };
    let key = format!("{attempt_id}:dispute");
    let (subject, body) = dispute_task(&s);
    let task = TaskInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        subject,
        body,
        due_at: dispute.due_at.unwrap_or_else(now_ms),
        kind: TaskKind::Todo,
        priority: Priority::High,
        owner: None,
    };
    let id = crm_sync::task_once(ctx, crm_sync::TASK, &s.lead.id, &task).await?;
    tracing::info!(task_id = %id, "dispute task created");
    Ok(())
}

fn standing_words(standing: Standing, lang: Lang) -> &'static str {
    match (standing, lang) {
        (Standing::Paid, Lang::Es) => "pagado",
        (Standing::Paid, Lang::PtBr) => "pago",
        (Standing::Paid, Lang::En) => "paid",
        (Standing::PartiallyRefunded, Lang::Es) => "reembolsado en parte",
        (Standing::PartiallyRefunded, Lang::PtBr) => "reembolsado em parte",
        (Standing::PartiallyRefunded, Lang::En) => "partially refunded",
        (Standing::Refunded, Lang::Es) => "reembolsado",
        (Standing::Refunded, Lang::PtBr) => "reembolsado",
        (Standing::Refunded, Lang::En) => "refunded",
        (Standing::Voided, Lang::Es) => "anulado",
        (Standing::Voided, Lang::PtBr) => "anulado",
        (Standing::Voided, Lang::En) => "voided",
        (Standing::Disputed, Lang::Es) => "en disputa (contracargo)",
        (Standing::Disputed, Lang::PtBr) => "em disputa (chargeback)",
        (Standing::Disputed, Lang::En) => "disputed (chargeback)",
        (Standing::DisputeWon, Lang::Es) => "disputa ganada",
        (Standing::DisputeWon, Lang::PtBr) => "disputa ganha",
        (Standing::DisputeWon, Lang::En) => "dispute won",
        (Standing::DisputeLost, Lang::Es) => "disputa perdida",
        (Standing::DisputeLost, Lang::PtBr) => "disputa perdida",
        (Standing::DisputeLost, Lang::En) => "dispute lost",
    }
}

/// A date sales can read: in the offer's business-hours zone, named, as the text's
/// language writes dates.
fn when(s: &Subject<'_>, unix_ms: Option<i64>) -> String {
    let tz = s.offer.followup.hours.timezone();
    unix_ms.map_or_else(
        || "-".into(),
        |ms| {
            format!(
                "{} ({})",
                crate::domain::local_time::format(ms, s.lead.lang, tz),
                tz.name()
            )
        },
    )
}

fn note_text(s: &Subject<'_>) -> String {
    let a = &s.attempt;
    let r = &a.after.reversal;
    let lang = s.lead.lang;
    let labels = match lang {
        Lang::Es => [
            "Pago",
            "Pagado",
            "Reembolsado",
            "Motivo del reembolso",
            "Disputa",
            "Motivo de la disputa",
            "Plazo para pruebas",
            "Pasarela",
            "Referencia de la pasarela",
        ],
        Lang::PtBr => [
            "Pagamento",
            "Pago",
            "Reembolsado",
            "Motivo do reembolso",
            "Disputa",
            "Motivo da disputa",
            "Prazo para provas",
            "Gateway",
            "Referência do gateway",
        ],
        Lang::En => [
            "Payment",
            "Paid",
            "Refunded",
            "Refund reason",
            "Dispute",
            "Dispute reason",
            "Evidence due",
            "Gateway",
            "Gateway reference",
        ],
    };
    let dispute = r.dispute.as_ref();
    let values = [
        standing_words(r.standing(&a.amount), lang).to_owned(),
        a.amount.format(lang),
        r.refunded.format(lang),
        r.refund_reason.clone().unwrap_or_else(|| "-".into()),
        dispute.map_or("-", |d| d.stage.as_str()).to_owned(),
        dispute.and_then(|d| d.reason.clone()).unwrap_or_else(|| "-".into()),
        when(s, dispute.and_then(|d| d.due_at)),
        a.gateway.as_str().to_owned(),
        a.gateway_ref.clone().unwrap_or_else(|| "-".into()),
    ];
    crm_sync::labelled(&labels, &values)
}

fn dispute_task(s: &Subject<'_>) -> (String, String) {
    let a = &s.attempt;
    let lang = s.lead.lang;
    let name = &s.lead.contact.name;
    let subject = match lang {
        Lang::Es => format!("Responder al contracargo de {name} ({})", s.offer.title.default_text()),
        Lang::PtBr => format!("Responder ao chargeback de {name} ({})", s.offer.title.default_text()),
        Lang::En => format!("Answer the chargeback of {name} ({})", s.offer.title.default_text()),
    };
    let dispute = a.after.reversal.dispute.as_ref();
    let due = when(s, dispute.and_then(|d| d.due_at));
    let reason = dispute.and_then(|d| d.reason.clone()).unwrap_or_else(|| "-".into());
    let amount = a.amount.format(lang);
    let gateway = a.gateway.as_str();
    let body = match lang {
        Lang::Es => format!("El cliente disputó el pago de {amount} en {gateway}.\nMotivo: {reason}\nEnviar pruebas antes de: {due}\nNo contactar para cobrar de nuevo."),
        Lang::PtBr => format!("O cliente contestou o pagamento de {amount} em {gateway}.\nMotivo: {reason}\nEnviar provas até: {due}\nNão contatar para cobrar de novo."),
        Lang::En => format!("The customer disputed the payment of {amount} at {gateway}.\nReason: {reason}\nSend evidence by: {due}\nDo not contact them to charge again."),
    };
    (subject, body)
}
