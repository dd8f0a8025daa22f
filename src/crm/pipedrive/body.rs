//! The JSON bodies the adapter sends, and the formats Pipedrive wants in them.

use serde_json::{json, Map, Value};

use crate::config::FieldRole;
use crate::crm::catalog::Resolved;
use crate::crm::{CrmError, DealInput, DealStatus, NoteInput, PersonInput, TaskInput};
use crate::domain::followup::TaskKind;
use crate::domain::Money;

/// Pipedrive's default activity types (`GET /v1/activityTypes` key strings).
const CALL: &str = "call";
const TASK: &str = "task";

/// Our ids are Pipedrive's integers as text; v2 refuses numbers sent as strings.
pub(super) fn pd_id(id: &str) -> Result<i64, CrmError> {
    id.trim()
        .parse()
        .map_err(|_| CrmError::Permanent(format!("{id:?} is not a Pipedrive id")))
}

/// Pipedrive takes deal values in major units (199000.5), as a JSON number.
pub(super) fn major_units(m: &Money) -> f64 {
    // Exact for any amount below 2^53 minor units: the division is correctly rounded.
    m.amount_minor() as f64 / 10f64.powi(m.currency().exponent() as i32)
}

/// Activities take their due date and time apart, in UTC: (`YYYY-MM-DD`, `HH:MM`).
pub(super) fn due(at_ms: i64) -> Result<(String, String), CrmError> {
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .ok_or_else(|| CrmError::Permanent(format!("due time {at_ms} ms is out of range")))?;
    Ok((at.format("%Y-%m-%d").to_string(), at.format("%H:%M").to_string()))
}

pub(super) use crate::crm::text::{html, task_marker, task_owner};

pub(super) fn person_body(p: &PersonInput<'_>, owner: Option<i64>) -> Value {
    let mut body = json!({
        "name": p.name.as_str(),
        "emails": [{ "value": p.email.as_str(), "primary": true, "label": "work" }],
        "phones": [{ "value": p.phone.as_str(), "primary": true, "label": "mobile" }],
    });
    if let Some(o) = owner {
        body["owner_id"] = json!(o);
    }
    body
}

/// Our tags on the deal, as Pipedrive's `custom_fields` map.
fn custom_fields(d: &DealInput<'_>, r: &Resolved) -> Result<Map<String, Value>, CrmError> {
    let tags = crate::crm::text::deal_tags(d, r)?;
    Ok(tags.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

pub(super) fn deal_body(d: &DealInput<'_>, r: &Resolved) -> Result<Value, CrmError> {
    let (pipeline, stage) = r.stage(d.pipeline, d.stage)?;
    let mut body = json!({
        "title": d.title,
        "value": major_units(&d.value),
        "currency": d.value.currency().as_str(),
        "person_id": pd_id(d.person_id)?,
        "pipeline_id": pd_id(pipeline)?,
        "stage_id": pd_id(stage)?,
        "custom_fields": custom_fields(d, r)?,
    });
    if let Some(o) = r.owner() {
        body["owner_id"] = json!(pd_id(o)?);
    }
    Ok(body)
}

/// Won and lost are a deal's status in Pipedrive; a refunded deal reopens in a stage of
/// the offer's pipeline (resolved with the offer's stages, so `crm check` vouches for it).
/// `resolved` is only read for `Open`.
pub(super) fn status_body(status: &DealStatus, pipeline: &str, resolved: Option<&Resolved>) -> Result<Value, CrmError> {
    Ok(match status {
        DealStatus::Won => json!({ "status": "won" }),
        DealStatus::Lost { reason } => json!({ "status": "lost", "lost_reason": reason }),
        DealStatus::Open { stage } => {
            let r = resolved.ok_or_else(|| CrmError::Permanent("stages are not resolved".into()))?;
            let (_, stage_id) = r.stage(pipeline, stage)?;
            json!({ "status": "open", "stage_id": pd_id(stage_id)? })
        }
    })
}

/// The payment's facts as the deal's `custom_fields`: only roles the configuration maps,
/// `None` when it maps none of them (nothing to send). Numeric fields get a JSON number,
/// since v2 refuses numbers sent as strings; every other field takes the text.
pub(super) fn fields_body(fields: &[(FieldRole, String)], r: &Resolved) -> Result<Option<Value>, CrmError> {
    let mut custom = Map::new();
    for (role, value) in fields {
        let Some(key) = r.field(*role) else { continue };
        let v = match r.field_kind(*role) {
            Some("double") if value.is_empty() => Value::Null,
            Some("double") => {
                let n: f64 = value.parse().map_err(|_| {
                    CrmError::Permanent(format!("crm.fields.{}: {value:?} is not a number", role.as_str()))
                })?;
                json!(n)
            }
            _ => Value::from(value.as_str()),
        };
        custom.insert(key.to_owned(), v);
    }
    Ok((!custom.is_empty()).then(|| json!({ "custom_fields": custom })))
}

/// A call is a `call`. A to-do takes the configured type, unless that is `call` (the
/// default `crm.activity_type`, from when every follow-up was a call): then a `task`.
pub(super) fn activity_type(kind: TaskKind, configured: Option<&str>) -> &str {
    match kind {
        TaskKind::Call => CALL,
        TaskKind::Todo => configured.filter(|t| !t.eq_ignore_ascii_case(CALL)).unwrap_or(TASK),
    }
}

/// The activity's priority is left out: v2 takes it as the id of an option of the
/// account's `priority` activity field (`GET /api/v2/activityFields`), not a fixed value.
pub(super) fn task_body(t: &TaskInput<'_>, r: &Resolved) -> Result<Value, CrmError> {
    let (due_date, due_time) = due(t.due_at)?;
    let note = crate::crm::text::task_html(&t.body, t.key);
    let mut body = json!({
        "subject": t.subject,
        "type": activity_type(t.kind, r.activity_type()),
        "deal_id": pd_id(t.deal_id)?,
        "participants": [{ "person_id": pd_id(t.person_id)?, "primary": true }],
        "due_date": due_date,
        "due_time": due_time,
        "done": false,
        "note": note,
    });
    if let Some(o) = task_owner(t, r)? {
        body["owner_id"] = json!(pd_id(o)?);
    }
    Ok(body)
}

/// `PATCH /api/v2/activities/{id}` marking it done.
pub(super) fn done_body() -> Value {
    json!({ "done": true })
}

/// A note on a deal with no person (a payment link that could not be made) has none.
pub(super) fn note_body(n: &NoteInput<'_>) -> Result<Value, CrmError> {
    let mut body = json!({
        "content": html(&n.body),
        "deal_id": pd_id(n.deal_id)?,
        "pinned_to_deal_flag": 1,
    });
    if !n.person_id.is_empty() {
        body["person_id"] = json!(pd_id(n.person_id)?);
    }
    Ok(body)
}
