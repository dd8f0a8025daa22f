//! Pipedrive's JSON as far as the adapter reads it. Everything is optional or defaulted
//! where the API may leave it out, so a sparse answer is read rather than refused.

use serde::Deserialize;

/// `{"success": true, "data": ..., "additional_data": {...}}`, every answer's envelope.
#[derive(Deserialize)]
pub(super) struct Envelope<T> {
    #[serde(default = "Option::default")]
    pub data: Option<T>,
    #[serde(default)]
    pub additional_data: Option<AdditionalData>,
}

#[derive(Deserialize, Default)]
pub(super) struct AdditionalData {
    /// v2 pagination: the next page's cursor, null at the end.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Pipedrive ids are integers; a string is accepted too rather than failing a sync.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub(super) enum Id {
    Number(i64),
    Text(String),
}

impl Id {
    pub fn text(&self) -> String {
        match self {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s.clone(),
        }
    }

    /// Orders numerically where both are numbers, so "lowest id" means the oldest object.
    pub fn sort_key(&self) -> (i64, String) {
        match self {
            Id::Number(n) => (*n, String::new()),
            Id::Text(s) => s.parse().map_or((i64::MAX, s.clone()), |n| (n, String::new())),
        }
    }
}

/// Any created object: only its id matters to us.
#[derive(Deserialize)]
pub(super) struct Created {
    pub id: Id,
}

/// `data` of `/persons/search` and `/deals/search`.
#[derive(Deserialize, Default)]
pub(super) struct SearchData {
    #[serde(default)]
    pub items: Vec<SearchItem>,
}

#[derive(Deserialize)]
pub(super) struct SearchItem {
    pub item: Created,
}

#[derive(Deserialize)]
pub(super) struct Pipeline {
    pub id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_deleted: bool,
}

#[derive(Deserialize)]
pub(super) struct Stage {
    pub id: Id,
    #[serde(default)]
    pub name: String,
    pub pipeline_id: Option<Id>,
    #[serde(default)]
    pub order_nr: i64,
    #[serde(default)]
    pub is_deleted: bool,
}

/// v1 `/users`.
#[derive(Deserialize)]
pub(super) struct User {
    pub id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    /// Deactivated users cannot own new objects.
    #[serde(default = "yes")]
    pub active_flag: bool,
}

/// v2 `/dealFields`.
#[derive(Deserialize)]
pub(super) struct DealField {
    pub field_code: String,
    #[serde(default)]
    pub field_name: String,
    #[serde(default)]
    pub field_type: String,
    #[serde(default)]
    pub is_custom_field: bool,
}

/// v1 `/activityTypes`.
#[derive(Deserialize)]
pub(super) struct ActivityType {
    #[serde(default)]
    pub key_string: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub active_flag: bool,
}

/// v2 `/activities`, as far as finding ours goes.
#[derive(Deserialize)]
pub(super) struct Activity {
    pub id: Id,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub is_deleted: bool,
}

fn yes() -> bool {
    true
}

/// v2 `GET /deals/{id}`, as far as a payment link reads it.
#[derive(Deserialize)]
pub(super) struct Deal {
    pub id: Id,
    #[serde(default)]
    pub person_id: Option<Id>,
    /// Major units, as a JSON number.
    #[serde(default)]
    pub value: Option<serde_json::Number>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub stage_id: Option<Id>,
}

/// v2 `GET /persons/{id}`: `emails` and `phones` are lists of `{value, primary, label}`.
#[derive(Deserialize)]
pub(super) struct Person {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub emails: Vec<Channel>,
    #[serde(default)]
    pub phones: Vec<Channel>,
}

#[derive(Deserialize)]
pub(super) struct Channel {
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub primary: bool,
}

impl Person {
    /// The primary value of a list, else its first non-empty one.
    pub fn primary(list: &[Channel]) -> Option<String> {
        let live = || list.iter().filter(|c| !c.value.trim().is_empty());
        live()
            .find(|c| c.primary)
            .or_else(|| live().next())
            .map(|c| c.value.trim().to_owned())
    }
}
