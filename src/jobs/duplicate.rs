//! The `duplicate_payment` job: a customer paid twice for one purchase (two checkouts open
//! at once, or a new form after paying). The second payment's deal gets a note naming the
//! first one and one task for its owner to refund it. Nothing is refunded automatically:
//! a person decides which payment to keep.

use super::crm_sync;
use super::JobError;
use crate::clock::now_ms;
use crate::context::AppContext;
use crate::crm::{NoteInput, TaskInput};
use crate::domain::followup::{Priority, TaskKind};
use crate::domain::Lang;
use crate::store::attempts;

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    let Some(first_id) = s.attempt.after.duplicate_of.clone() else {
        return Ok(());
    };
    let first = attempts::get(&ctx.db, &first_id).await?;
    let first_ref = first.and_then(|f| f.gateway_ref).unwrap_or_else(|| "-".into());
    let (person, deal) = crm_sync::ensure_deal(ctx, &s).await?;
    let a = &s.attempt;
    let lang = s.lead.lang;
    let amount = a.amount.format(lang);
    let this_ref = a.gateway_ref.clone().unwrap_or_else(|| "-".into());
    let gateway = a.gateway.as_str();
    let body = match lang {
        Lang::Es => format!("Pago duplicado: este cliente ya había pagado esta oferta.\nPrimer pago: {first_id} ({gateway} {first_ref})\nEste pago: {} ({gateway} {this_ref}), {amount}\nReembolsar uno de los dos.", a.id),
        Lang::PtBr => format!("Pagamento duplicado: este cliente já tinha pago esta oferta.\nPrimeiro pagamento: {first_id} ({gateway} {first_ref})\nEste pagamento: {} ({gateway} {this_ref}), {amount}\nReembolsar um dos dois.", a.id),
        Lang::En => format!("Duplicate payment: this customer had already paid for this offer.\nFirst payment: {first_id} ({gateway} {first_ref})\nThis payment: {} ({gateway} {this_ref}), {amount}\nRefund one of the two.", a.id),
    };
    let key = format!("{attempt_id}:duplicate");
    let note = NoteInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        body: body.clone(),
    };
    crm_sync::note_once(ctx, &s.lead.id, &note).await?;
    let name = &s.lead.contact.name;
    let subject = match lang {
        Lang::Es => format!("Reembolsar pago duplicado de {name} ({})", s.offer.title.default_text()),
        Lang::PtBr => format!(
            "Reembolsar pagamento duplicado de {name} ({})",
            s.offer.title.default_text()
        ),
        Lang::En => format!(
            "Refund the duplicate payment of {name} ({})",
            s.offer.title.default_text()
        ),
    };
    let task = TaskInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        subject,
        body,
        due_at: now_ms(),
        kind: TaskKind::Todo,
        priority: Priority::High,
        owner: None,
    };
    let id = crm_sync::task_once(ctx, crm_sync::TASK, &s.lead.id, &task).await?;
    tracing::info!(task_id = %id, "duplicate payment task created");
    Ok(())
}
