//! Moves the attempt's deal to won or lost, writes the payment's fields on it and leaves
//! a note with the payment's details.
//! It reads the attempt's status when it runs, so jobs that run late or twice still
//! converge on the current truth.

use super::crm_sync::{self, Subject, DEAL, FIELDS};
use super::JobError;
use crate::config::FieldRole;
use crate::context::AppContext;
use crate::crm::{DealRef, DealStatus, NoteInput};
use crate::domain::followup::AfterLastStep;
use crate::domain::lead::Attempt;
use crate::domain::offer::DealOnRefund;
use crate::domain::{Lang, Money, PaymentStatus, Standing};
use crate::store::crm_records;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    if deal_target(&s).is_none() {
        return Ok(());
    }
    let (person, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    sync_deal(ctx, &s, &deal).await?;
    let (key, body) = match abandoned_stage(&s) {
        Some(_) => {
            let facts = super::facts::Facts::new(&s, &[], "", ctx.clock.now_ms());
            let note = crate::domain::followup::texts::abandoned_stage_note(s.lead.lang);
            (format!("{attempt_id}:abandoned"), note.render(&|v| facts.value(v)))
        }
        None => (format!("{attempt_id}:{}", s.attempt.status), note_text(&s)),
    };
    let note = NoteInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        body,
    };
    crm_sync::note_once(ctx, &s.lead.id, &note).await
}

/// Where the attempt's deal belongs now: won, lost, or where the offer puts a sale whose
/// money went back. Both this job and the reversal job push it, whichever runs last, so a
/// late retry of one cannot undo what the other wrote.
pub fn deal_target(s: &Subject<'_>) -> Option<DealStatus> {
    let a = &s.attempt;
    if let Some(stage) = abandoned_stage(s) {
        return Some(DealStatus::Open {
            stage: stage.to_owned(),
        });
    }
    Some(match a.status {
        PaymentStatus::Approved => match a.after.reversal.standing(&a.amount) {
            standing if standing.is_reversed() => match &s.offer.on_refund {
                DealOnRefund::KeepWon => DealStatus::Won,
                DealOnRefund::Lost => DealStatus::Lost {
                    reason: reversed_reason(standing).into(),
                },
                DealOnRefund::Stage(stage) => DealStatus::Open { stage: stage.clone() },
            },
            _ => DealStatus::Won,
        },
        PaymentStatus::Declined => DealStatus::Lost {
            reason: match &a.status_detail {
                Some(d) => format!("Payment declined ({d})"),
                None => "Payment declined".into(),
            },
        },
        // Each attempt has its own deal; a later attempt (resume link) gets a new one.
        PaymentStatus::Expired => DealStatus::Lost {
            reason: "Checkout expired without payment".into(),
        },
        _ => return None,
    })
}

/// The offer's "abandoned" stage, once the attempt's follow-up sequence ran out unpaid.
fn abandoned_stage<'a>(s: &Subject<'a>) -> Option<&'a str> {
    match &s.offer.followup.after_last_step {
        AfterLastStep::Stage(stage)
            if s.attempt.abandoned_at.is_some() && s.attempt.status != PaymentStatus::Approved =>
        {
            Some(stage)
        }
        _ => None,
    }
}

fn reversed_reason(standing: Standing) -> &'static str {
    match standing {
        Standing::Voided => "Payment voided",
        Standing::DisputeLost => "Chargeback lost",
        _ => "Refunded",
    }
}

/// Moves the deal to `deal_target` unless the CRM has it there already, and writes the
/// payment's fields on it.
pub async fn sync_deal(ctx: &AppContext, s: &Subject<'_>, deal: &str) -> Result<(), JobError> {
    let Some(status) = deal_target(s) else {
        return Ok(());
    };
    let crm = ctx.crm.name();
    let attempt_id = s.attempt.id.as_str();
    let recorded = crm_records::find(&ctx.db, crm, DEAL, attempt_id).await?;
    let key = status.key();
    if recorded.and_then(|r| r.state).as_deref() != Some(key.as_str()) {
        let at = DealRef {
            deal_id: deal,
            pipeline: &s.offer.crm_pipeline,
        };
        ctx.crm.set_deal_status(&at, &status).await?;
        crm_records::set_state(&ctx.db, crm, DEAL, attempt_id, &key).await?;
        tracing::info!(deal_id = %deal, status = %key, "deal updated");
    }
    sync_fields(ctx, s, deal).await
}

/// The payment's facts on the deal, for CRMs that have fields for them; sent again only
/// when they changed since the last write the CRM acknowledged.
async fn sync_fields(ctx: &AppContext, s: &Subject<'_>, deal: &str) -> Result<(), JobError> {
    let wanted = match &ctx.settings.crm.remote {
        Some(remote) => remote.fields.iter().any(|(role, _)| FieldRole::PAYMENT.contains(role)),
        None => true,
    };
    if !wanted {
        return Ok(());
    }
    let fields = payment_fields(&s.attempt);
    let fingerprint = fields
        .iter()
        .map(|(r, v)| format!("{}={v}", r.as_str()))
        .collect::<Vec<_>>()
        .join("&");
    let crm = ctx.crm.name();
    let attempt_id = s.attempt.id.as_str();
    let recorded = crm_records::find(&ctx.db, crm, FIELDS, attempt_id).await?;
    if recorded.as_ref().and_then(|r| r.state.as_deref()) == Some(fingerprint.as_str()) {
        return Ok(());
    }
    ctx.crm.set_deal_fields(deal, &fields).await?;
    if recorded.is_none() {
        crm_records::record(&ctx.db, crm, FIELDS, attempt_id, &s.lead.id, deal, None).await?;
    }
    crm_records::set_state(&ctx.db, crm, FIELDS, attempt_id, &fingerprint).await?;
    Ok(())
}

/// Every payment role's value as it stands (see `FieldRole::PAYMENT` and the README).
pub fn payment_fields(a: &Attempt) -> Vec<(FieldRole, String)> {
    let status = match a.status {
        PaymentStatus::Approved => a.after.reversal.standing(&a.amount).as_str(),
        other => other.as_str(),
    };
    let paid = match a.status {
        PaymentStatus::Approved => a.amount.decimal(),
        _ => Money::zero(a.amount.currency()).decimal(),
    };
    vec![
        (FieldRole::TransactionId, a.gateway_ref.clone().unwrap_or_default()),
        (FieldRole::PaymentStatus, status.to_owned()),
        (FieldRole::AmountPaid, paid),
        (FieldRole::AmountRefunded, a.after.reversal.refunded.decimal()),
        (FieldRole::Gateway, a.gateway.as_str().to_owned()),
        (
            FieldRole::PaymentMethod,
            a.after.payment_method.clone().unwrap_or_default(),
        ),
    ]
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
        Some("operator") => match lang {
            Lang::Es => "marcado como pagado por un operador",
            Lang::PtBr => "marcado como pago por um operador",
            Lang::En => "marked paid by an operator",
        },
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
    let mut text = crm_sync::labelled(&labels, &values);
    // Which consent text the lead agreed to, for whoever answers a data-protection request.
    if let Some(c) = &s.lead.consent {
        let label = match lang {
            Lang::Es => "Consentimiento",
            Lang::PtBr => "Consentimento",
            Lang::En => "Consent",
        };
        let at = crate::clock::rfc3339(c.at);
        text.push_str(&format!("\n{label}: {} ({}, {at})", c.version, c.lang.code()));
    }
    text
}
