//! HubSpot's JSON as far as we use it, and the pure translations between it and our
//! types: request bodies, the catalog, the 409's id, the 429's wait, HTML bodies.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crm::catalog::{Field, Named, Owner, Pipeline, Stage, StageOutcome};
use crate::crm::http::{retry_after, Reply};
use crate::domain::followup::TaskKind;
use crate::domain::Money;
use crate::outbound::excerpt;

/// HubSpot's own association type ids (category HUBSPOT_DEFINED, unlabeled, directional).
pub const DEAL_TO_CONTACT: u32 = 3;
pub const TASK_TO_CONTACT: u32 = 204;
pub const TASK_TO_DEAL: u32 = 216;
pub const NOTE_TO_CONTACT: u32 = 202;
pub const NOTE_TO_DEAL: u32 = 214;

/// HubSpot's task types are fixed (no listing endpoint), so the catalog names them.
pub const TASK_TYPES: [(&str, &str); 3] = [("CALL", "Call"), ("EMAIL", "Email"), ("TODO", "To-do")];
const CALL: &str = "CALL";
const TODO: &str = "TODO";

/// A call is a CALL. A to-do takes the configured type, unless that is CALL (the default
/// `crm.activity_type`, from when every follow-up was a call): then it is a TODO.
pub fn task_type(kind: TaskKind, configured: Option<&str>) -> &str {
    match kind {
        TaskKind::Call => CALL,
        TaskKind::Todo => configured.filter(|t| !t.eq_ignore_ascii_case(CALL)).unwrap_or(TODO),
    }
}

/// Every property value travels as a string.
pub type Properties = BTreeMap<String, String>;

/// A create: properties plus associations made in the same call. HubSpot's spec requires
/// `associations` on every create, so an empty list is sent rather than left out.
#[derive(Debug, Serialize)]
pub struct NewObject {
    pub properties: Properties,
    pub associations: Vec<Association>,
}

#[derive(Debug, Serialize)]
pub struct Association {
    pub to: ObjectId,
    pub types: [AssociationType; 1],
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ObjectId {
    pub id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    pub association_category: &'static str,
    pub association_type_id: u32,
}

impl Association {
    pub fn to(id: &str, type_id: u32) -> Self {
        Self {
            to: ObjectId { id: id.to_owned() },
            types: [AssociationType {
                association_category: "HUBSPOT_DEFINED",
                association_type_id: type_id,
            }],
        }
    }
}

/// `PATCH` body: only properties.
#[derive(Debug, Serialize)]
pub struct Update {
    pub properties: Properties,
}

/// Any object as HubSpot returns it; we only need its id and, for tasks, the body.
#[derive(Debug, Deserialize)]
pub struct Object {
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
}

/// `GET /crm/v3/objects/deals/{id}?associations=contacts`: the deal's properties and
/// `associations.contacts.results[].id`.
#[derive(Debug, Deserialize)]
pub struct DealWithContacts {
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub associations: Option<DealAssociations>,
}

#[derive(Debug, Deserialize)]
pub struct DealAssociations {
    #[serde(default)]
    pub contacts: Option<Results<ObjectId>>,
}

impl DealWithContacts {
    pub fn first_contact(&self) -> Option<String> {
        let contacts = self.associations.as_ref()?.contacts.as_ref()?;
        contacts.results.first().map(|c| c.id.clone())
    }
}

#[derive(Debug, Deserialize)]
pub struct Results<T> {
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    pub paging: Option<Paging>,
}

impl<T> Results<T> {
    /// The cursor of the next page, if HubSpot says there is one.
    pub fn next_after(&self) -> Option<String> {
        self.paging.as_ref()?.next.as_ref()?.after.clone()
    }
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    pub next: Option<NextPage>,
}

#[derive(Debug, Deserialize)]
pub struct NextPage {
    pub after: Option<String>,
}

/// `POST /crm/v3/objects/contacts/search` for one exact phone number. The spec requires
/// `after` and `sorts` too: the first page, in HubSpot's own order.
pub fn phone_search(e164: &str) -> Value {
    serde_json::json!({
        "filterGroups": [{ "filters": [{ "propertyName": "phone", "operator": "EQ", "value": e164 }] }],
        "properties": ["email"],
        "limit": 1,
        "after": "0",
        "sorts": [],
    })
}

/// `POST /crm/v3/objects/tasks/batch/read` of these ids, with their bodies (and, as the
/// spec requires the list, no property histories).
pub fn tasks_batch_read(ids: &[String]) -> Value {
    let inputs: Vec<Value> = ids.iter().map(|id| serde_json::json!({ "id": id })).collect();
    serde_json::json!({ "properties": ["hs_task_body"], "propertiesWithHistory": [], "inputs": inputs })
}

/// `PATCH /crm/v3/objects/tasks/{id}` marking the task done.
pub fn task_completed() -> Update {
    let mut properties = Properties::new();
    properties.insert("hs_task_status".into(), "COMPLETED".into());
    Update { properties }
}

/// `GET /account-info/v3/details`, as far as the daily limit's reset needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    pub time_zone: Option<String>,
    pub utc_offset_milliseconds: Option<i64>,
}

impl AccountDetails {
    /// The named zone (its offset changes with daylight saving time), else the offset
    /// the account has today; None when HubSpot sent neither in a form we read.
    pub fn zone(&self) -> Option<Zone> {
        if let Some(tz) = self.time_zone.as_deref().and_then(|z| z.trim().parse::<Tz>().ok()) {
            return Some(Zone::Named(tz));
        }
        let ms = self.utc_offset_milliseconds?;
        FixedOffset::east_opt(i32::try_from(ms / 1000).ok()?).map(Zone::Offset)
    }
}

/// The time zone HubSpot's daily limit resets in: the account's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Named(Tz),
    Offset(FixedOffset),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Named(Tz::UTC)
    }
}

/// The account's zone once read (`HubspotCrm::catalog`); UTC until then, or for good if
/// the token may not read it.
#[derive(Debug, Default)]
pub struct AccountZone(RwLock<Zone>);

impl AccountZone {
    pub fn get(&self) -> Zone {
        self.0.read().map(|z| *z).unwrap_or_default()
    }

    pub fn set(&self, zone: Zone) {
        if let Ok(mut z) = self.0.write() {
            *z = zone;
        }
    }
}

/// A v4 association listing: the other side's id is a number there, a string in v3.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedId {
    pub to_object_id: Value,
}

impl AssociatedId {
    pub fn id(&self) -> Option<String> {
        match &self.to_object_id {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VendorPipeline {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub stages: Vec<VendorStage>,
}

#[derive(Debug, Deserialize)]
pub struct VendorStage {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorOwner {
    pub id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VendorProperty {
    pub name: String,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "hasUniqueValue", default)]
    pub has_unique_value: bool,
}

impl From<VendorPipeline> for Pipeline {
    fn from(p: VendorPipeline) -> Self {
        Pipeline {
            id: p.id,
            name: p.label,
            stages: p.stages.into_iter().map(Stage::from).collect(),
        }
    }
}

impl From<VendorStage> for Stage {
    fn from(s: VendorStage) -> Self {
        let outcome = stage_outcome(&s.metadata);
        Stage {
            id: s.id,
            name: s.label,
            outcome,
        }
    }
}

impl From<VendorOwner> for Owner {
    fn from(o: VendorOwner) -> Self {
        let name = [o.first_name, o.last_name]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Owner {
            id: o.id,
            name,
            email: o.email.unwrap_or_default(),
        }
    }
}

impl From<VendorProperty> for Field {
    fn from(p: VendorProperty) -> Self {
        Field {
            name: p.label.unwrap_or_else(|| p.name.clone()),
            key: p.name,
            kind: p.kind.unwrap_or_default(),
            unique: p.has_unique_value,
        }
    }
}

pub fn task_types() -> Vec<Named> {
    TASK_TYPES
        .iter()
        .map(|(id, name)| Named {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
        })
        .collect()
}

/// HubSpot marks closed stages with `isClosed`; probability 1 means won, 0 lost. The
/// values are strings in its answers, but numbers and booleans are read too.
fn stage_outcome(metadata: &BTreeMap<String, Value>) -> Option<StageOutcome> {
    let closed = match metadata.get("isClosed")? {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let probability = match metadata.get("probability")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    match (closed, probability) {
        (true, p) if p >= 1.0 => Some(StageOutcome::Won),
        (true, p) if p <= 0.0 => Some(StageOutcome::Lost),
        _ => None,
    }
}

/// HubSpot's error body: its message, plus what its support asks for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VendorError {
    message: Option<String>,
    category: Option<String>,
    correlation_id: Option<String>,
}

/// "HubSpot answered 400 Bad Request: VALIDATION_ERROR: Property values were not valid
/// (correlationId …)", or the raw body's start when it is not HubSpot's error shape.
pub fn refusal_text(vendor: &str, reply: &Reply) -> String {
    let parsed = serde_json::from_slice::<VendorError>(&reply.body).ok();
    let Some(VendorError {
        message: Some(message),
        category,
        correlation_id,
    }) = parsed
    else {
        return format!("{vendor} answered {}: {}", reply.status, excerpt(&reply.body));
    };
    let mut text = format!("{vendor} answered {}: ", reply.status);
    if let Some(c) = category {
        text.push_str(&c);
        text.push_str(": ");
    }
    text.push_str(&excerpt(message.as_bytes()));
    if let Some(id) = correlation_id {
        text.push_str(&format!(" (correlationId {id})"));
    }
    text
}

/// The id in a 409's "Contact already exists. Existing ID: 37765128953".
pub fn existing_id(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let (_, rest) = text.split_once("Existing ID:")?;
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimited {
    policy_name: Option<String>,
    message: Option<String>,
}

/// How long a 429 asks us to stop: `Retry-After` when sent (HubSpot does not promise
/// it), else by the limit its body names.
pub fn wait_hint(reply: &Reply, zone: Zone) -> Option<Duration> {
    retry_after(&reply.headers).or_else(|| policy_wait(&reply.body, Utc::now(), zone))
}

pub fn policy_wait(body: &[u8], now: DateTime<Utc>, zone: Zone) -> Option<Duration> {
    let r: RateLimited = serde_json::from_slice(body).ok()?;
    let policy = r.policy_name.unwrap_or_default().to_ascii_uppercase();
    let secondly = r
        .message
        .is_some_and(|m| m.to_ascii_lowercase().contains("secondly limit"));
    match policy.as_str() {
        "DAILY" => Some(until_after_midnight(now, zone)),
        "TEN_SECONDLY_ROLLING" => Some(Duration::from_secs(10)),
        "SECONDLY" => Some(Duration::from_secs(1)),
        _ if secondly => Some(Duration::from_secs(1)),
        _ => None,
    }
}

/// The daily limit resets at midnight in the account's time zone: we wait until a minute
/// past the next one there. With the zone unknown (UTC) an account west of UTC is retried
/// early, meets another DAILY 429 and waits again (one wasted call per retry, not a hot
/// loop); one east of UTC waits longer than needed by at most its offset.
pub fn until_after_midnight(now: DateTime<Utc>, zone: Zone) -> Duration {
    let next = match zone {
        Zone::Named(tz) => next_minute_past_midnight(now, &tz),
        Zone::Offset(off) => next_minute_past_midnight(now, &off),
    };
    next.and_then(|t| (t - now).to_std().ok())
        .unwrap_or(Duration::from_secs(86_400))
}

fn next_minute_past_midnight<Z: TimeZone>(now: DateTime<Utc>, zone: &Z) -> Option<DateTime<Utc>> {
    let local: NaiveDateTime = now
        .with_timezone(zone)
        .date_naive()
        .checked_add_days(Days::new(1))?
        .and_hms_opt(0, 1, 0)?;
    // Where daylight saving time starts at midnight (e.g. America/Santiago) 00:01 does
    // not exist that day; the first hour after the gap is the reset then.
    let at = zone.from_local_datetime(&local).earliest().or_else(|| {
        zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(at.with_timezone(&Utc))
}

pub use crate::crm::text::{html, task_html as task_body, task_marker};

/// Major units as a decimal string, e.g. 19900000 COP minor → "199000.00".
pub fn major_units(m: &Money) -> String {
    let exp = m.currency().exponent();
    let scale = 10u64.pow(exp);
    let minor = m.amount_minor();
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let width = exp as usize;
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
}

/// Epoch milliseconds as HubSpot's ISO UTC form; the number itself if out of range.
pub fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
