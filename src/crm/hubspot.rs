//! PLACEHOLDER: replaced by the real Hubspot adapter.

use async_trait::async_trait;

use super::catalog::CrmNeeds;
use super::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
use crate::config::RemoteCrmSettings;

pub struct HubspotCrm;

impl HubspotCrm {
    pub fn new(_settings: &RemoteCrmSettings, _needs: CrmNeeds, _client: reqwest::Client) -> Self {
        HubspotCrm
    }
}

fn missing() -> CrmError {
    CrmError::Permanent("not built".into())
}

#[async_trait]
impl Crm for HubspotCrm {
    fn name(&self) -> &'static str {
        "hubspot"
    }
    async fn upsert_person(&self, _p: &PersonInput<'_>) -> Result<String, CrmError> {
        Err(missing())
    }
    async fn find_deal(&self, _attempt_id: &str) -> Result<Option<String>, CrmError> {
        Err(missing())
    }
    async fn create_deal(&self, _d: &DealInput<'_>) -> Result<String, CrmError> {
        Err(missing())
    }
    async fn set_deal_status(&self, _deal: &DealRef<'_>, _status: &DealStatus) -> Result<(), CrmError> {
        Err(missing())
    }
    async fn find_task(&self, _deal_id: &str, _key: &str) -> Result<Option<String>, CrmError> {
        Err(missing())
    }
    async fn create_task(&self, _t: &TaskInput<'_>) -> Result<String, CrmError> {
        Err(missing())
    }
    async fn add_note(&self, _n: &NoteInput<'_>) -> Result<String, CrmError> {
        Err(missing())
    }
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        Err(missing())
    }
}
