//! The built-in CRM: persons, deals and tasks in leadgate's own database, shown on the
//! admin pages. Used by teams without a CRM and by the zero-config run.

use async_trait::async_trait;

use super::{
    Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, LinkSubject, NoteInput, PersonInput, TaskInput, TaskRef,
};
use crate::config::FieldRole;
use crate::domain::followup::{CloseTask, Priority, TaskKind};
use crate::store::builtin_crm::TaskClosed;
use crate::store::{builtin_crm, Db, StoreError, Tx};

/// The built-in CRM's name, as its records are kept under.
pub const NAME: &str = "builtin";

pub struct BuiltinCrm {
    db: Db,
}

/// The person, found by email or created, in the caller's transaction: the built-in CRM
/// lives in our database, so its writes can commit with the records that name them.
pub async fn person_in(tx: &mut Tx, p: &PersonInput<'_>) -> Result<String, StoreError> {
    builtin_crm::upsert_person_in(tx, p.email.as_str(), p.name.as_str(), p.phone.as_str()).await
}

/// The attempt's deal, found or created, in the caller's transaction (see [`person_in`]).
pub async fn deal_in(tx: &mut Tx, d: &DealInput<'_>) -> Result<String, StoreError> {
    builtin_crm::insert_deal_in(tx, &new_deal(d)).await
}

fn new_deal<'a>(d: &'a DealInput<'_>) -> builtin_crm::NewDeal<'a> {
    builtin_crm::NewDeal {
        person_id: d.person_id,
        external_key: d.attempt_id,
        title: &d.title,
        value_minor: d.value.amount_minor(),
        currency: d.value.currency().as_str(),
        pipeline: d.pipeline,
        stage: d.stage,
    }
}

impl BuiltinCrm {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl From<StoreError> for CrmError {
    fn from(e: StoreError) -> Self {
        CrmError::Transient {
            message: e.to_string(),
            retry_after: None,
        }
    }
}

/// The task's kind and priority as the admin page shows them.
fn kind_text(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Call => "call",
        TaskKind::Todo => "to-do",
    }
}

fn priority_text(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
    }
}

#[async_trait]
impl Crm for BuiltinCrm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn in_our_database(&self) -> bool {
        true
    }

    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        Ok(builtin_crm::upsert_person(&self.db, p.email.as_str(), p.name.as_str(), p.phone.as_str()).await?)
    }

    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        Ok(builtin_crm::find_deal(&self.db, attempt_id).await?)
    }

    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        Ok(builtin_crm::insert_deal(&self.db, &new_deal(d)).await?)
    }

    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let deal_id = deal.deal_id;
        let (stage, reason) = match status {
            DealStatus::Won => (Some("Won"), None),
            DealStatus::Lost { reason } => (Some("Lost"), Some(reason.as_str())),
            DealStatus::Open { stage } => (Some(stage.as_str()), None),
        };
        if builtin_crm::set_deal_status(&self.db, deal_id, status.as_str(), stage, reason).await? {
            Ok(())
        } else {
            Err(CrmError::Permanent(format!("deal {deal_id} not found")))
        }
    }

    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        let task = builtin_crm::NewTask {
            deal_id: Some(t.deal_id),
            person_id: Some(t.person_id),
            external_key: t.key,
            subject: &t.subject,
            body: &t.body,
            due_at: t.due_at,
            kind: kind_text(t.kind),
            priority: priority_text(t.priority),
            owner: t.owner,
        };
        Ok(builtin_crm::insert_task(&self.db, &task).await?)
    }

    async fn find_task(&self, _deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        Ok(builtin_crm::find_task(&self.db, key).await?)
    }

    /// A task closed already, or not there, stays as it is: closing is done either way.
    async fn close_task(&self, t: &TaskRef<'_>, how: CloseTask) -> Result<(), CrmError> {
        let how = match how {
            CloseTask::Complete => TaskClosed::Done,
            CloseTask::Delete => TaskClosed::Deleted,
        };
        builtin_crm::close_task(&self.db, t.task_id, how).await?;
        Ok(())
    }

    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        Ok(builtin_crm::insert_note(&self.db, n.deal_id, n.key, &n.body).await?)
    }

    /// Every role is kept: the built-in CRM has a column for each, not a mapping.
    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(role, value)| (role.as_str().to_owned(), value.clone().into()))
            .collect();
        let json = serde_json::Value::Object(map).to_string();
        if builtin_crm::set_payment_fields(&self.db, deal_id, &json).await? {
            Ok(())
        } else {
            Err(CrmError::Permanent(format!("deal {deal_id} not found")))
        }
    }

    async fn link_subject(&self, deal_id: &str) -> Result<LinkSubject, CrmError> {
        let d = builtin_crm::deal_subject(&self.db, deal_id)
            .await?
            .ok_or_else(|| CrmError::Permanent(format!("deal {deal_id} not found")))?;
        let value = d
            .currency
            .parse()
            .ok()
            .and_then(|c| crate::domain::Money::new(d.value_minor, c).ok());
        Ok(LinkSubject {
            deal_id: d.id,
            person_id: Some(d.person_id),
            name: Some(d.name),
            email: Some(d.email),
            phone: Some(d.phone),
            value,
            stage: Some(d.stage),
        })
    }

    /// Any pipeline and stage name is fine here: the built-in CRM stores them as given.
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        Ok(Catalog::default())
    }
}
