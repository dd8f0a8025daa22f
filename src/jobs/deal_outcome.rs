//! Moves the attempt's deal to won or lost and leaves a note with the payment's details.
//! It reads the attempt's status when it runs, so jobs that run late or twice still
//! converge on the current truth.

use super::crm_sync::{self, Subject, DEAL, NOTE};
use super::JobError;
use crate::context::AppContext;
use crate::crm::{DealRef, DealStatus, NoteInput};
use crate::domain::{Lang, PaymentStatus};
use crate::store::crm_records;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    let status = match s.attempt.status {
        PaymentStatus::Approved => DealStatus::Won,
        PaymentStatus::Declined => DealStatus::Lost {
            reason: match &s.attempt.status_detail {
                Some(d) => format!("Payment declined ({d})"),
                None => "Payment declined".into(),
            },
        },
        // Each attempt has its own deal; a later attempt (resume link) gets a new one.
        PaymentStatus::Expired => DealStatus::Lost {
            reason: "Checkout expired without payment".into(),
        },
        _ => return Ok(()),
    };
    let (person, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    let crm = ctx.crm.name();
    let recorded = crm_records::find(&ctx.db, crm, DEAL, attempt_id).await?;
    if recorded.and_then(|r| r.state).as_deref() != Some(status.as_str()) {
        let at = DealRef {
            deal_id: &deal,
            pipeline: &s.offer.crm_pipeline,
        };
        ctx.crm.set_deal_status(&at, &status).await?;
        crm_records::set_state(&ctx.db, crm, DEAL, attempt_id, status.as_str()).await?;
        tracing::info!(deal_id = %deal, status = status.as_str(), "deal updated");
    }
    let key = format!("{attempt_id}:{}", s.attempt.status);
    if crm_records::find(&ctx.db, crm, NOTE, &key).await?.is_none() {
        let note = NoteInput {
            key: &key,
            deal_id: &deal,
            person_id: &person,
            body: note_text(&s),
        };
        let id = ctx.crm.add_note(&note).await?;
        crm_records::record(&ctx.db, crm, NOTE, &key, &s.lead.id, &id, None).await?;
    }
    Ok(())
}

/// What sales needs to know about the payment, in the lead's language.
fn note_text(s: &Subject<'_>) -> String {
    let a = &s.attempt;
    let lang = s.lead.lang;
    let labels = match lang {
        Lang::Es => [
            "Pago",
            "Pasarela",
            "Referencia",
            "Referencia de la pasarela",
            "Monto",
            "Detalle",
            "Confirmado por",
        ],
        Lang::PtBr => [
            "Pagamento",
            "Gateway",
            "Referência",
            "Referência do gateway",
            "Valor",
            "Detalhe",
            "Confirmado por",
        ],
        Lang::En => [
            "Payment",
            "Gateway",
            "Reference",
            "Gateway reference",
            "Amount",
            "Detail",
            "Settled by",
        ],
    };
    let settled = match a.settled_by.as_deref() {
        Some("reconcile") => match lang {
            Lang::Es => "conciliación con la pasarela (no llegó webhook)",
            Lang::PtBr => "conciliação com o gateway (nenhum webhook chegou)",
            Lang::En => "reconciliation with the gateway (no webhook arrived)",
        },
        Some("return") => "return page",
        Some("webhook") => "webhook",
        _ => "-",
    };
    let values = [
        a.status.to_string(),
        a.gateway.as_str().to_owned(),
        a.id.clone(),
        a.gateway_ref.clone().unwrap_or_else(|| "-".into()),
        a.amount.format(lang),
        a.status_detail.clone().unwrap_or_else(|| "-".into()),
        settled.to_owned(),
    ];
    labels
        .iter()
        .zip(values.iter())
        .map(|(l, v)| format!("{l}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
