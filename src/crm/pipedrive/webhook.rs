//! Pipedrive's webhooks (v2), as far as payment links read them. Documented shape:
//! `{"meta": {"id", "action": "create"|"change"|"delete", "entity": "deal", "entity_id",
//! "version": "2.0", …}, "data": {…the deal now…}, "previous": {…only the fields that
//! changed…} | null}`. `meta.id` names the event: Pipedrive sends it again on a retry
//! (`meta.attempt` grows), so it is the inbox's dedupe key. A stage move is a `change`
//! whose `previous` holds the old `stage_id`. Authentication is the webhook's HTTP basic
//! auth (`http_auth_user` / `http_auth_password` when it is created), checked before this.

use serde::Deserialize;
use serde_json::Value;

use super::wire::Id;
use crate::crm::{CrmDelivery, DealEvent, StageMove};

#[derive(Deserialize)]
struct Envelope {
    meta: Meta,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    previous: Option<Value>,
}

#[derive(Deserialize)]
struct Meta {
    id: Id,
    #[serde(default)]
    action: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    entity_id: Option<Id>,
}

/// The id a JSON value holds, number or text.
fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Reads a webhook body; `Err` when it is not a Pipedrive v2 webhook at all.
pub fn parse(body: &[u8]) -> Result<CrmDelivery, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| format!("not a Pipedrive v2 webhook: {e}"))?;
    let event_id = env.meta.id.text();
    if event_id.is_empty() {
        return Err("meta.id is empty".into());
    }
    if env.meta.entity != "deal" || !matches!(env.meta.action.as_str(), "change" | "create") {
        return Ok(CrmDelivery { event_id, deal: None });
    }
    let data = env.data.unwrap_or(Value::Null);
    let Some(deal_id) = id_of(data.get("id")).or_else(|| env.meta.entity_id.map(|i| i.text())) else {
        return Ok(CrmDelivery { event_id, deal: None });
    };
    let now = id_of(data.get("stage_id"));
    let before = env.previous.as_ref().and_then(|p| p.get("stage_id"));
    let stage = match (env.meta.action.as_str(), now, before) {
        // Created straight in a stage: it entered it.
        ("create", Some(now), _) => StageMove::Entered(now),
        (_, Some(now), Some(before)) if id_of(Some(before)).as_deref() != Some(now.as_str()) => StageMove::Entered(now),
        _ => StageMove::Stayed,
    };
    Ok(CrmDelivery {
        event_id,
        deal: Some(DealEvent { deal_id, stage }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(action: &str, previous: &str) -> Vec<u8> {
        format!(
            r#"{{"meta":{{"id":"e-1","action":"{action}","entity":"deal","entity_id":"7","version":"2.0"}},
               "data":{{"id":7,"stage_id":3,"person_id":5}},"previous":{previous}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_stage_move_is_an_entry_and_other_changes_are_not() {
        let d = parse(&body("change", r#"{"stage_id":2}"#)).unwrap();
        assert_eq!(d.event_id, "e-1");
        assert_eq!(d.deal.unwrap().stage, StageMove::Entered("3".into()));
        let d = parse(&body("change", r#"{"title":"x"}"#)).unwrap();
        assert_eq!(d.deal.unwrap().stage, StageMove::Stayed);
        let d = parse(&body("change", "null")).unwrap();
        assert_eq!(d.deal.unwrap().stage, StageMove::Stayed);
        let d = parse(&body("create", "null")).unwrap();
        assert_eq!(d.deal.unwrap().stage, StageMove::Entered("3".into()));
        assert_eq!(parse(&body("delete", "null")).unwrap().deal, None);
        assert!(parse(b"{}").is_err());
    }
}
