//! CRM adapters. Each translates our calls into one vendor's API and never decides
//! anything: what a payment means for a deal is decided in `flows/` and `jobs/`.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::followup::{CloseTask, Priority, TaskKind};
use crate::domain::lead::Utm;
use crate::domain::{Email, Money, PersonName, Phone};

pub mod builtin;
pub mod catalog;
pub mod http;
pub mod hubspot;
pub mod pace;
pub mod pipedrive;
pub mod text;
pub mod trigger;

pub use catalog::{Catalog, CrmNeeds, Resolved};
pub use trigger::{CrmDelivery, DealEvent, LinkSubject, StageMove};

use std::sync::Arc;

use crate::config::{CrmKind, FieldRole, Settings};
use crate::store::Db;

pub struct PersonInput<'a> {
    pub name: &'a PersonName,
    pub email: &'a Email,
    pub phone: &'a Phone,
}

pub struct DealInput<'a> {
    /// Our attempt id: the deal's idempotency tag in the CRM.
    pub attempt_id: &'a str,
    pub person_id: &'a str,
    pub title: String,
    pub value: Money,
    /// The offer's pipeline and stage as configured (names or ids; adapters resolve them).
    pub pipeline: &'a str,
    pub stage: &'a str,
    pub offer_slug: &'a str,
    pub utm: &'a Utm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealStatus {
    Won,
    Lost {
        reason: String,
    },
    /// Open again, in this stage of the offer's pipeline (a refunded sale kept apart from
    /// both wins and losses, by the offer's `on_refund = "stage:…"`).
    Open {
        stage: String,
    },
}

impl DealStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DealStatus::Won => "won",
            DealStatus::Lost { .. } => "lost",
            DealStatus::Open { .. } => "open",
        }
    }

    /// What we record once the CRM has it: the same key twice means nothing to send.
    pub fn key(&self) -> String {
        match self {
            DealStatus::Open { stage } => format!("open:{stage}"),
            other => other.as_str().to_owned(),
        }
    }
}

/// Where a deal stands in its pipeline, for moving it to won or lost.
pub struct DealRef<'a> {
    pub deal_id: &'a str,
    /// The offer's pipeline (name or id), for CRMs whose won/lost are stages of it.
    pub pipeline: &'a str,
}

pub struct TaskInput<'a> {
    /// Idempotency key: one task per attempt and reason. Adapters write it into the
    /// task so `find_task` can recognise a task whose creation we did not record.
    pub key: &'a str,
    pub deal_id: &'a str,
    pub person_id: &'a str,
    pub subject: String,
    /// Plain text; adapters escape it where the CRM renders HTML.
    pub body: String,
    pub due_at: i64,
    pub kind: TaskKind,
    pub priority: Priority,
    /// The user to assign, as the configuration names them (id or email; resolved to the
    /// CRM's id by the adapter); `None` leaves it to `crm.owner`, else to the CRM's
    /// default (the token's user, or nobody).
    pub owner: Option<&'a str>,
}

/// A task leadgate created, to close once the lead has paid.
pub struct TaskRef<'a> {
    pub task_id: &'a str,
    pub deal_id: &'a str,
}

pub struct NoteInput<'a> {
    /// Idempotency key: one note per attempt and event.
    pub key: &'a str,
    pub deal_id: &'a str,
    pub person_id: &'a str,
    /// Plain text; adapters escape it where the CRM renders HTML.
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Worth retrying later: outage, timeout, rate limit.
    #[error("CRM temporarily unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: the CRM refused the request as given.
    #[error("CRM refused the request: {0}")]
    Permanent(String),
}

impl CrmError {
    pub fn transient(message: impl Into<String>) -> Self {
        CrmError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

#[async_trait]
pub trait Crm: Send + Sync {
    fn name(&self) -> &'static str;
    /// Its objects are rows in leadgate's own database (the built-in CRM), so a sync can
    /// write them in our transaction instead of calling out (see `jobs::crm_sync`).
    fn in_our_database(&self) -> bool {
        false
    }
    /// Finds the person by email, else by phone, else creates them; returns the CRM's id.
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError>;
    /// Looks for a deal already tagged with this attempt id (a crash may have hidden it).
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError>;
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError>;
    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError>;
    /// Looks for a task of this deal created with this key (a crash may have hidden it).
    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError>;
    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError>;
    /// Marks the task done or deletes it. A task already closed, or gone, is not an error:
    /// a salesperson may have closed it first.
    async fn close_task(&self, t: &TaskRef<'_>, how: CloseTask) -> Result<(), CrmError>;
    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError>;
    /// Writes the payment's facts on the deal (`[crm.fields]` payment roles): every role
    /// given that the configuration maps to a CRM field; the others are left out.
    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError>;
    /// Pipelines, stages, owners and deal fields as the CRM holds them, for `crm check`
    /// and for resolving the names the configuration uses.
    async fn catalog(&self) -> Result<Catalog, CrmError>;
    /// The deal and its primary person, as the CRM holds them now, for a payment link.
    async fn link_subject(&self, _deal_id: &str) -> Result<LinkSubject, CrmError> {
        Err(CrmError::Permanent(format!(
            "{} cannot read deals for payment links",
            self.name()
        )))
    }
    /// The CRM's id of a configured stage (name or id) of a configured pipeline.
    async fn stage_id(&self, _pipeline: &str, stage: &str) -> Result<String, CrmError> {
        Ok(stage.to_owned())
    }
    /// Takes names resolved from a catalog read elsewhere (the start-up check), so the
    /// adapter does not read the same catalog again at its first call.
    fn adopt(&self, _resolved: Resolved) {}
}

/// The adapter the configuration names. The built-in CRM needs the database; a remote
/// one paces through it, shared with every instance on it. Built once per process (the
/// context holds it) so every caller of the CRM waits on one pacer and one pause.
pub fn from_settings(settings: &Settings, db: Option<&Db>, client: &reqwest::Client) -> Option<Arc<dyn Crm>> {
    let needs = CrmNeeds::from_settings(settings);
    match (settings.crm.kind, &settings.crm.remote) {
        (CrmKind::Pipedrive, Some(r)) => {
            let crm = pipedrive::PipedriveCrm::new(r, needs, client.clone());
            Some(Arc::new(match db {
                Some(db) => crm.shared_through(db),
                None => crm,
            }))
        }
        (CrmKind::Hubspot, Some(r)) => {
            let crm = hubspot::HubspotCrm::new(r, needs, client.clone());
            Some(Arc::new(match db {
                Some(db) => crm.shared_through(db),
                None => crm,
            }))
        }
        _ => db.map(|db| Arc::new(builtin::BuiltinCrm::new(db.clone())) as Arc<dyn Crm>),
    }
}

/// What `leadgate crm check` and start-up find: the CRM's listing and every name the
/// configuration uses that it does not have.
pub struct CheckReport {
    pub catalog: Catalog,
    pub problems: Vec<String>,
}

pub async fn check(crm: &dyn Crm, needs: &CrmNeeds) -> Result<CheckReport, CrmError> {
    let catalog = crm.catalog().await?;
    let problems = match Resolved::resolve(&catalog, needs) {
        Ok(resolved) => {
            crm.adopt(resolved);
            Vec::new()
        }
        Err(problems) => problems,
    };
    Ok(CheckReport { catalog, problems })
}
