//! Once a lead has paid, nobody may call them about that purchase: every follow-up task
//! leadgate opened for the lead is marked done (or deleted, per the offer's policy) in the
//! CRM, and the paying deal gets a note saying why. Dispute and second-payment tasks are
//! not follow-ups and stay open. Runs under the lead's lock, so no follow-up step of the
//! lead can create a task between our listing and our closing.

use super::crm_sync::{self, Subject, DEAL, FOLLOWUP_TASK};
use super::JobError;
use crate::context::AppContext;
use crate::crm::{NoteInput, TaskRef};
use crate::domain::followup::{texts, CloseTask};
use crate::domain::PaymentStatus;
use crate::store::crm_records::{self, CrmRecord};

pub async fn run(ctx: &AppContext, attempt_id: &str) -> Result<(), JobError> {
    let s = crm_sync::load(ctx, attempt_id).await?;
    if s.attempt.status != PaymentStatus::Approved {
        return Ok(());
    }
    let how = s.offer.followup.close_tasks;
    let records = crm_records::for_lead(&ctx.db, &s.lead.id).await?;
    let mut closed = 0;
    for (key, task_id) in open_tasks(ctx, &records).await? {
        let Some(deal) = deal_of(&records, &key) else {
            continue;
        };
        let task = TaskRef {
            task_id: &task_id,
            deal_id: &deal,
        };
        ctx.crm.close_task(&task, how).await?;
        let state = match how {
            CloseTask::Complete => "done",
            CloseTask::Delete => "deleted",
        };
        let crm = ctx.crm.name();
        crm_records::record(&ctx.db, crm, FOLLOWUP_TASK, &key, &s.lead.id, &task_id, Some(state)).await?;
        crm_records::set_state(&ctx.db, crm, FOLLOWUP_TASK, &key, state).await?;
        ctx.metrics.followup("closed", state);
        tracing::info!(task_id = %task_id, state, "follow-up task closed: the lead paid");
        closed += 1;
    }
    if closed > 0 {
        note(ctx, &s, closed).await?;
    }
    Ok(())
}

/// (key, task id) of every follow-up task of the lead still open, including one whose
/// creation a crash kept us from recording (found again in the CRM by its key).
async fn open_tasks(ctx: &AppContext, records: &[CrmRecord]) -> Result<Vec<(String, String)>, JobError> {
    let intent = format!("{FOLLOWUP_TASK}_intent");
    let mut open = Vec::new();
    for r in records {
        let done = records
            .iter()
            .any(|d| d.kind == FOLLOWUP_TASK && d.local_key == r.local_key);
        if r.kind == FOLLOWUP_TASK && r.state.as_deref() == Some("open") {
            open.push((r.local_key.clone(), r.remote_id.clone()));
        } else if r.kind == intent && !done {
            let Some(deal) = deal_of(records, &r.local_key) else {
                continue;
            };
            if let Some(id) = ctx.crm.find_task(&deal, &r.local_key).await? {
                open.push((r.local_key.clone(), id));
            }
        }
    }
    Ok(open)
}

/// The deal a follow-up task was made on: task keys start with their attempt's id.
fn deal_of(records: &[CrmRecord], task_key: &str) -> Option<String> {
    let attempt = task_key.split(':').next()?;
    records
        .iter()
        .find(|r| r.kind == DEAL && r.local_key == attempt)
        .map(|r| r.remote_id.clone())
}

async fn note(ctx: &AppContext, s: &Subject<'_>, closed: usize) -> Result<(), JobError> {
    let (person, deal) = crm_sync::ensure_deal(ctx, s).await?;
    let key = format!("{}:followups_closed", s.attempt.id);
    let facts = super::facts::Facts::new(s, &[], "", ctx.clock.now_ms());
    let note = texts::paid_close_note(s.lead.lang).render(&|v| facts.value(v));
    let body = format!("{note} ({closed})");
    let note = NoteInput {
        key: &key,
        deal_id: &deal,
        person_id: &person,
        body,
    };
    crm_sync::note_once(ctx, &s.lead.id, &note).await
}
