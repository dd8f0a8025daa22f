//! What both real CRMs write the same way: our plain text as the HTML they render, the
//! marker that finds a task again, and the deal fields the configuration maps.

use super::catalog::Resolved;
use super::{CrmError, DealInput, TaskInput};
use crate::config::FieldRole;

/// Plain text as HTML for notes and task bodies: escaped, line breaks as `<br>`.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.replace("\r\n", "\n").chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// What a task carries so `find_task` can recognise it: brackets end it, so the key of
/// step 1 never matches inside the key of step 10.
pub fn task_marker(key: &str) -> String {
    format!("[leadgate:{}]", html(key))
}

/// A task's HTML: the text, then the marker on a line of its own.
pub fn task_html(text: &str, key: &str) -> String {
    format!("{}<br><br>{}", html(text), task_marker(key))
}

/// (field key, value) for every deal field we fill: our attempt id always (without it a
/// crash between the CRM's answer and our commit would duplicate the deal), the offer
/// and attribution values (UTMs, click ids, referrer) where the configuration maps a field
/// and there is a value.
pub fn deal_tags(d: &DealInput<'_>, r: &Resolved) -> Result<Vec<(String, String)>, CrmError> {
    if r.field(FieldRole::AttemptId).is_none() {
        return Err(CrmError::Permanent(
            "crm.fields.attempt_id is not resolved; deals could not be found again".into(),
        ));
    }
    let u = d.utm;
    let values = [
        (FieldRole::AttemptId, Some(d.attempt_id)),
        (FieldRole::Offer, Some(d.offer_slug)),
        (FieldRole::UtmSource, u.source.as_deref()),
        (FieldRole::UtmMedium, u.medium.as_deref()),
        (FieldRole::UtmCampaign, u.campaign.as_deref()),
        (FieldRole::UtmTerm, u.term.as_deref()),
        (FieldRole::UtmContent, u.content.as_deref()),
        (FieldRole::Gclid, u.gclid.as_deref()),
        (FieldRole::Fbclid, u.fbclid.as_deref()),
        (FieldRole::Referrer, u.referrer.as_deref()),
    ];
    Ok(values
        .into_iter()
        .filter_map(|(role, v)| {
            let v = v.filter(|v| !v.trim().is_empty())?;
            Some((r.field(role)?.to_owned(), v.to_owned()))
        })
        .collect())
}

/// The CRM user a task goes to: the step's owner (an id or email the configuration names,
/// resolved at the catalog check), else `crm.owner`, else the CRM's default.
pub fn task_owner<'a>(t: &'a TaskInput<'_>, r: &'a Resolved) -> Result<Option<&'a str>, CrmError> {
    match t.owner {
        Some(wanted) => r
            .user(wanted)
            .map(Some)
            .ok_or_else(|| CrmError::Permanent(format!("follow-up owner {wanted:?} is not a user of this CRM"))),
        None => Ok(r.owner()),
    }
}
