//! A CRM that keeps every object it is asked to create, duplicates included. The built-in
//! CRM cannot stand in for it: its inserts are upserts on our keys, so a second create
//! comes back as the first row and an "exactly one deal" count over its tables holds
//! whatever leadgate does. Counted here, a second create is a second object.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use leadgate::config::FieldRole;
use leadgate::crm::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Person,
    Deal,
    Task,
    Note,
}

/// One created object, under the key leadgate gave it: the email for a person, the
/// attempt id for a deal, the task's or note's key.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: String,
    pub kind: Kind,
    pub key: String,
    /// Deals: "open", then what `set_deal_status` last said.
    pub status: String,
}

#[derive(Default)]
struct Book {
    objects: Vec<Object>,
}

/// The CRM's records, shared by the adapter handed to the app and the test reading them.
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<Book>>);

impl Ledger {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap()
    }

    fn create(&self, kind: Kind, key: &str) -> String {
        let mut book = self.book();
        let id = format!("{}", 1000 + book.objects.len());
        book.objects.push(Object {
            id: id.clone(),
            kind,
            key: key.to_owned(),
            status: "open".into(),
        });
        id
    }

    fn find(&self, kind: Kind, key: &str) -> Option<String> {
        let book = self.book();
        book.objects
            .iter()
            .find(|o| o.kind == kind && o.key == key)
            .map(|o| o.id.clone())
    }

    pub fn objects(&self, kind: Kind) -> Vec<Object> {
        self.book().objects.iter().filter(|o| o.kind == kind).cloned().collect()
    }

    /// How many creates of `kind` were made under `key`.
    pub fn created(&self, kind: Kind, key: &str) -> usize {
        self.objects(kind).iter().filter(|o| o.key == key).count()
    }

    /// Every (kind, key) created more than once.
    pub fn duplicates(&self) -> Vec<(Kind, String, usize)> {
        let mut seen: Vec<(Kind, String, usize)> = Vec::new();
        for o in &self.book().objects {
            match seen.iter_mut().find(|(k, key, _)| *k == o.kind && *key == o.key) {
                Some(entry) => entry.2 += 1,
                None => seen.push((o.kind, o.key.clone(), 1)),
            }
        }
        seen.retain(|(_, _, n)| *n > 1);
        seen
    }

    pub fn crm(&self) -> LedgerCrm {
        LedgerCrm(self.clone())
    }
}

pub struct LedgerCrm(Ledger);

#[async_trait]
impl Crm for LedgerCrm {
    fn name(&self) -> &'static str {
        "ledger"
    }

    /// Always creates. It stands for a CRM whose person search has not yet indexed a person
    /// created a moment ago (remote CRMs' searches lag behind their writes), so one person
    /// per email is leadgate's own doing.
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        Ok(self.0.create(Kind::Person, p.email.as_str()))
    }

    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        Ok(self.0.find(Kind::Deal, attempt_id))
    }

    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        Ok(self.0.create(Kind::Deal, d.attempt_id))
    }

    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let mut book = self.0.book();
        let found = book
            .objects
            .iter_mut()
            .find(|o| o.kind == Kind::Deal && o.id == deal.deal_id);
        match found {
            Some(o) => {
                o.status = status.as_str().to_owned();
                Ok(())
            }
            None => Err(CrmError::Permanent(format!("deal {} not found", deal.deal_id))),
        }
    }

    async fn find_task(&self, _deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        Ok(self.0.find(Kind::Task, key))
    }

    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        Ok(self.0.create(Kind::Task, t.key))
    }

    async fn close_task(
        &self,
        t: &leadgate::crm::TaskRef<'_>,
        how: leadgate::domain::followup::CloseTask,
    ) -> Result<(), CrmError> {
        let _ = (t, how);
        Ok(())
    }
    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        Ok(self.0.create(Kind::Note, n.key))
    }

    /// Field writes overwrite and are not what this ledger counts.
    async fn set_deal_fields(&self, _deal_id: &str, _fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        Ok(())
    }

    /// Any pipeline and stage name is fine here, as in the built-in CRM.
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        Ok(Catalog::default())
    }
}
