//! One person per email, whatever races: several leads of one customer synced by two
//! workers at once reach the CRM's person lookup once, and reuse its answer.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use leadgate::config::{FieldRole, Settings};
use leadgate::crm::builtin::BuiltinCrm;
use leadgate::crm::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
use leadgate::startup::Overrides;

use crate::both_backends;
use crate::support::{eventually, spawn_with, Backend, Options};

both_backends!(
    two_workers_racing_on_one_email_make_one_person,
    a_failed_person_lookup_is_retried_without_waiting_for_its_own_claim,
);

/// The built-in CRM with a slow person lookup (a remote CRM's search) that counts calls,
/// and can fail the first one as an outage would.
struct SlowPersons {
    inner: BuiltinCrm,
    upserts: Arc<AtomicUsize>,
    fail_first: Arc<AtomicBool>,
}

#[async_trait]
impl Crm for SlowPersons {
    fn name(&self) -> &'static str {
        "builtin"
    }
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        self.upserts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if self.fail_first.swap(false, Ordering::SeqCst) {
            return Err(CrmError::transient("503 Service Unavailable"));
        }
        self.inner.upsert_person(p).await
    }
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        self.inner.find_deal(attempt_id).await
    }
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        self.inner.create_deal(d).await
    }
    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        self.inner.set_deal_status(deal, status).await
    }
    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        self.inner.find_task(deal_id, key).await
    }
    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        self.inner.create_task(t).await
    }
    async fn close_task(
        &self,
        t: &leadgate::crm::TaskRef<'_>,
        how: leadgate::domain::followup::CloseTask,
    ) -> Result<(), CrmError> {
        self.inner.close_task(t, how).await
    }
    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        self.inner.add_note(n).await
    }
    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        self.inner.set_deal_fields(deal_id, fields).await
    }
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        self.inner.catalog().await
    }
}

fn slow_persons(upserts: Arc<AtomicUsize>, fail_first: bool, tweak: Box<dyn FnOnce(&mut Settings)>) -> Options {
    let fail_first = Arc::new(AtomicBool::new(fail_first));
    Options {
        overrides: Overrides {
            crm: Some(Box::new(move |db| {
                Arc::new(SlowPersons {
                    inner: BuiltinCrm::new(db.clone()),
                    upserts,
                    fail_first,
                })
            })),
            ..Default::default()
        },
        tweak,
        ..Options::default()
    }
}

async fn two_workers_racing_on_one_email_make_one_person(backend: Backend) {
    let upserts = Arc::new(AtomicUsize::new(0));
    let opts = slow_persons(
        upserts.clone(),
        false,
        Box::new(|s| {
            s.worker.enabled = false;
            s.worker.max_attempts = 10;
            s.inline_crm_deadline = Duration::from_millis(1);
            // Four purchases by one person, not a double click.
            s.forms.duplicate_window = Duration::ZERO;
        }),
    );
    let app = spawn_with(backend, opts).await;
    for name in ["Rosa Díaz", "Rosa M. Díaz", "R. Díaz", "Rosa Diaz"] {
        let form = [("name", name), ("email", "Rosa@Example.com "), ("phone", "3001234567")];
        assert_eq!(app.post_form("/c/demo", &form).await.status(), 303);
    }
    // Two workers, as two processes would be, claiming from one database.
    let workers = [
        leadgate::jobs::worker::spawn(app.ctx.clone()),
        leadgate::jobs::worker::spawn(app.ctx.clone()),
    ];
    eventually("every lead to have its deal", || async { app.deals().await.len() == 4 }).await;
    let leads = app.leads().await;
    let persons: Vec<_> = leads.iter().map(|l| l["crm_person_id"].clone()).collect();
    assert!(persons.iter().all(|p| p.is_string() && *p == persons[0]), "{persons:?}");
    assert_eq!(
        upserts.load(Ordering::SeqCst),
        1,
        "the CRM was asked about the email once"
    );
    let n = leadgate::store::builtin_crm::count_persons(&app.ctx.db, "rosa@example.com").await;
    assert_eq!(n.unwrap(), 1);
    for w in workers {
        w.abort();
    }
}

/// The job that claimed an email and then met a CRM outage takes its claim back on its
/// retry at once, rather than waiting for the claim to go stale (a lease: 60 s here).
async fn a_failed_person_lookup_is_retried_without_waiting_for_its_own_claim(backend: Backend) {
    let upserts = Arc::new(AtomicUsize::new(0));
    let opts = slow_persons(
        upserts.clone(),
        true,
        Box::new(|s| {
            s.worker.lease = Duration::from_secs(60);
            s.inline_crm_deadline = Duration::from_millis(1);
        }),
    );
    let app = spawn_with(backend, opts).await;
    let form = [
        ("name", "Tomás Rey"),
        ("email", "tomas@example.com"),
        ("phone", "3001234567"),
    ];
    assert_eq!(app.post_form("/c/demo", &form).await.status(), 303);
    // `eventually` gives up after 30 s, well before the claim would go stale.
    eventually("the deal after one failed lookup", || async {
        app.deals().await.len() == 1
    })
    .await;
    assert_eq!(upserts.load(Ordering::SeqCst), 2, "one failure, one success");
}
