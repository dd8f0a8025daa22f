//! CRM adapters. Each translates our calls into one vendor's API and never decides
//! anything: what a payment means for a deal is decided in `flows/` and `jobs/`.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::lead::Utm;
use crate::domain::{Email, Money, PersonName, Phone};

pub mod builtin;

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
    pub pipeline: &'a str,
    pub stage: &'a str,
    pub offer_slug: &'a str,
    pub utm: &'a Utm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealStatus {
    Won,
    Lost { reason: String },
}

impl DealStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DealStatus::Won => "won",
            DealStatus::Lost { .. } => "lost",
        }
    }
}

pub struct TaskInput<'a> {
    /// Idempotency key: one task per attempt and reason.
    pub key: &'a str,
    pub deal_id: &'a str,
    pub person_id: &'a str,
    pub subject: String,
    pub body: String,
    pub due_at: i64,
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

#[async_trait]
pub trait Crm: Send + Sync {
    fn name(&self) -> &'static str;
    /// Finds the person by email (else creates them) and returns the CRM's id.
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError>;
    /// Looks for a deal already tagged with this attempt id (a crash may have hidden it).
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError>;
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError>;
    async fn set_deal_status(&self, deal_id: &str, status: &DealStatus) -> Result<(), CrmError>;
    /// Creates the follow-up task; a second call with the same key returns the first task.
    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError>;
}
