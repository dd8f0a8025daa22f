//! Failure paths: a worker killed mid-job, a crash after the CRM created a deal, CRM
//! outages and refusals, and a CRM too slow to wait for. The CRM is a ledger that keeps
//! every create (see `crm::ledger`), so a duplicate shows as a second object.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use leadgate::config::FieldRole;
use leadgate::crm::{Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
use leadgate::startup::Overrides;
use tokio::sync::Notify;

use crate::both_backends;
use crate::crm::ledger::{Kind, Ledger, LedgerCrm};
use crate::support::{eventually, location, spawn_with, Backend, Options, TestApp};

both_backends!(
    worker_killed_mid_job_resumes_on_restart,
    crash_after_crm_created_the_deal_does_not_duplicate_it,
    crm_outage_is_retried_until_every_lead_is_synced_once,
    permanent_crm_refusal_goes_dead_with_its_message,
    slow_crm_does_not_hold_the_customer,
    job_slower_than_its_lease_runs_once,
);

/// Switches that make the CRM misbehave the way remote CRMs do.
#[derive(Default)]
struct Faults {
    down: AtomicBool,
    hang_person: AtomicBool,
    die_after_deal_created_once: AtomicBool,
    hang_deal_status_once: AtomicBool,
    /// Answer deal updates this late (slower than the worker's lease).
    slow_deal_status: AtomicBool,
    refuse_deals: AtomicBool,
    /// The next deal is created, but its answer is lost (a 504 after the write).
    lose_deal_answer_once: AtomicBool,
    entered_hang: Notify,
    calls: AtomicUsize,
}

struct FaultyCrm {
    inner: LedgerCrm,
    f: Arc<Faults>,
}

impl FaultyCrm {
    async fn gate(&self) -> Result<(), CrmError> {
        self.f.calls.fetch_add(1, Ordering::SeqCst);
        if self.f.down.load(Ordering::SeqCst) {
            return Err(CrmError::Transient {
                message: "503 Service Unavailable".into(),
                retry_after: None,
            });
        }
        Ok(())
    }

    async fn hang(&self) {
        self.f.entered_hang.notify_one();
        std::future::pending::<()>().await
    }
}

#[async_trait]
impl Crm for FaultyCrm {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        self.gate().await?;
        if self.f.hang_person.load(Ordering::SeqCst) {
            self.hang().await;
        }
        self.inner.upsert_person(p).await
    }
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        self.gate().await?;
        self.inner.find_deal(attempt_id).await
    }
    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        self.gate().await?;
        if self.f.refuse_deals.load(Ordering::SeqCst) {
            return Err(CrmError::Permanent(
                "422: stage \"Nope\" does not exist in pipeline \"Sales\"".into(),
            ));
        }
        let id = self.inner.create_deal(d).await?;
        if self.f.die_after_deal_created_once.swap(false, Ordering::SeqCst) {
            // The CRM answered 201, and we die before recording it: the task ends here
            // without releasing or renewing its lease, as a killed process would.
            panic!("simulated crash after the CRM created the deal");
        }
        if self.f.lose_deal_answer_once.swap(false, Ordering::SeqCst) {
            return Err(CrmError::transient("504 Gateway Timeout"));
        }
        Ok(id)
    }
    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        self.gate().await?;
        if self.f.hang_deal_status_once.swap(false, Ordering::SeqCst) {
            self.hang().await;
        }
        if self.f.slow_deal_status.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        self.inner.set_deal_status(deal, status).await
    }
    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        self.gate().await?;
        self.inner.find_task(deal_id, key).await
    }
    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        self.gate().await?;
        self.inner.create_task(t).await
    }
    async fn close_task(
        &self,
        t: &leadgate::crm::TaskRef<'_>,
        how: leadgate::domain::followup::CloseTask,
    ) -> Result<(), CrmError> {
        self.gate().await?;
        self.inner.close_task(t, how).await
    }
    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        self.gate().await?;
        self.inner.add_note(n).await
    }
    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        self.gate().await?;
        self.inner.set_deal_fields(deal_id, fields).await
    }
    async fn catalog(&self) -> Result<Catalog, CrmError> {
        self.inner.catalog().await
    }
}

async fn faulty_app(backend: Backend, faults: Arc<Faults>, worker: bool, deadline_ms: u64) -> (TestApp, Ledger) {
    let f = faults.clone();
    let ledger = Ledger::default();
    let crm = ledger.crm();
    let opts = Options {
        overrides: Overrides {
            crm: Some(Box::new(move |_db| Arc::new(FaultyCrm { inner: crm, f }))),
            ..Default::default()
        },
        tweak: Box::new(move |s| {
            s.worker.enabled = worker;
            s.inline_crm_deadline = Duration::from_millis(deadline_ms);
            // A repeat of one email here is a second purchase, not a double click.
            s.forms.duplicate_window = Duration::ZERO;
        }),
        ..Options::default()
    };
    (spawn_with(backend, opts).await, ledger)
}

/// The one deal in the CRM and its status.
fn only_deal(ledger: &Ledger) -> (String, String) {
    let deals = ledger.objects(Kind::Deal);
    assert_eq!(deals.len(), 1, "{deals:?}");
    (deals[0].key.clone(), deals[0].status.clone())
}

async fn job_attempts(app: &TestApp, lead_id: &str, kind: &str) -> Vec<(String, i32)> {
    leadgate::store::jobs::for_lead(&app.ctx.db, lead_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == kind)
        .map(|j| (j.state.to_string(), j.attempts))
        .collect()
}

async fn worker_killed_mid_job_resumes_on_restart(backend: Backend) {
    let faults = Arc::new(Faults::default());
    let (app, ledger) = faulty_app(backend, faults.clone(), false, 2000).await;
    let checkout = app.start_checkout("demo", "Elena Torres", "elena@example.com").await;
    faults.hang_deal_status_once.store(true, Ordering::SeqCst);
    app.get(&app.press(&checkout, "approve").await).await;

    // Worker A takes the deal update and dies in the middle of the CRM call.
    let entered = faults.entered_hang.notified();
    let worker_a = leadgate::jobs::worker::spawn(app.ctx.clone());
    entered.await;
    worker_a.abort();
    let _ = worker_a.await;
    assert_eq!(only_deal(&ledger).1, "open");

    // Worker B starts after the "crash"; the lease runs out and the job runs again.
    let worker_b = leadgate::jobs::worker::spawn(app.ctx.clone());
    eventually("the deal to be won", || async {
        ledger.objects(Kind::Deal).iter().any(|d| d.status == "won")
    })
    .await;
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    // The rerun found the deal the first run had recorded instead of making another.
    let (attempt_id, status) = only_deal(&ledger);
    assert_eq!(status, "won");
    assert_eq!(ledger.created(Kind::Deal, &attempt_id), 1);
    assert_eq!(ledger.created(Kind::Person, "elena@example.com"), 1);
    assert_eq!(ledger.duplicates(), vec![]);
    assert_eq!(
        job_attempts(&app, &lead_id, "deal_outcome").await,
        vec![("done".to_string(), 2)]
    );
    worker_b.abort();
}

async fn crash_after_crm_created_the_deal_does_not_duplicate_it(backend: Backend) {
    let faults = Arc::new(Faults::default());
    faults.die_after_deal_created_once.store(true, Ordering::SeqCst);
    let (app, ledger) = faulty_app(backend, faults.clone(), true, 300).await;
    let res = app
        .post_form(
            "/c/demo",
            &[
                ("name", "Fabio Lima"),
                ("email", "fabio@example.com"),
                ("phone", "3001234567"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        303,
        "the customer is redirected even though the sync hung"
    );
    assert!(location(&res).contains("/sandbox/pay/"));

    eventually("the deal to be recorded", || async {
        app.leads().await[0]["attempts"][0]["crm_deal_id"].is_string()
    })
    .await;
    app.settle().await;
    let deals = ledger.objects(Kind::Deal);
    assert_eq!(
        deals.len(),
        1,
        "the retry found the deal instead of creating another: {deals:?}"
    );
    assert_eq!(ledger.created(Kind::Deal, &deals[0].key), 1);
    assert_eq!(app.leads().await[0]["attempts"][0]["crm_deal_id"], deals[0].id.as_str());
}

async fn crm_outage_is_retried_until_every_lead_is_synced_once(backend: Backend) {
    let faults = Arc::new(Faults::default());
    faults.down.store(true, Ordering::SeqCst);
    let (app, ledger) = faulty_app(backend, faults.clone(), true, 500).await;
    for (name, email) in [
        ("Gala Ruiz", "gala@example.com"),
        ("Hugo Paz", "hugo@example.com"),
        ("Gala R.", "gala@example.com"),
    ] {
        let res = app
            .post_form("/c/demo", &[("name", name), ("email", email), ("phone", "3001234567")])
            .await;
        assert_eq!(res.status(), 303);
    }
    assert!(ledger.objects(Kind::Deal).is_empty());
    eventually("the outage to be noticed", || async {
        faults.calls.load(Ordering::SeqCst) >= 3
    })
    .await;
    // The CRM comes back, but the first deal it writes is answered by a timeout.
    faults.lose_deal_answer_once.store(true, Ordering::SeqCst);
    faults.down.store(false, Ordering::SeqCst);

    eventually("every lead to be synced", || async {
        let leads = app.leads().await;
        leads.iter().all(|l| l["attempts"][0]["crm_deal_id"].is_string())
    })
    .await;
    app.settle().await;
    assert!(
        !faults.lose_deal_answer_once.load(Ordering::SeqCst),
        "a deal's answer was lost"
    );
    let deals = ledger.objects(Kind::Deal);
    assert_eq!(deals.len(), 3, "one deal per attempt: {deals:?}");
    for lead in app.leads().await {
        let attempt = &lead["attempts"][0];
        let key = attempt["id"].as_str().unwrap();
        assert_eq!(ledger.created(Kind::Deal, key), 1, "{lead}");
        let deal = deals.iter().find(|d| d.key == key).unwrap();
        assert_eq!(attempt["crm_deal_id"], deal.id.as_str());
    }
    assert_eq!(
        ledger.created(Kind::Person, "gala@example.com"),
        1,
        "same email, same person"
    );
    assert_eq!(ledger.created(Kind::Person, "hugo@example.com"), 1);
    assert_eq!(ledger.duplicates(), vec![]);
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

async fn permanent_crm_refusal_goes_dead_with_its_message(backend: Backend) {
    let faults = Arc::new(Faults::default());
    faults.refuse_deals.store(true, Ordering::SeqCst);
    let (app, _ledger) = faulty_app(backend, faults, true, 2000).await;
    app.start_checkout("demo", "Inés Mora", "ines@example.com").await;
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        job_attempts(&app, &lead_id, "crm_sync").await,
        vec![("dead".to_string(), 1)],
        "no retry loop"
    );
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("stage \"Nope\" does not exist"));
}

async fn slow_crm_does_not_hold_the_customer(backend: Backend) {
    let faults = Arc::new(Faults::default());
    faults.hang_person.store(true, Ordering::SeqCst);
    let (app, _ledger) = faulty_app(backend, faults, true, 200).await;
    // The CRM never answers; the client would time out if the redirect waited for it.
    let token = app.form_token("/c/demo").await;
    let res = app
        .http
        .post(app.url("/c/demo"))
        .timeout(Duration::from_secs(10))
        .form(&[
            ("name", "Julia Paz"),
            ("email", "julia@example.com"),
            ("phone", "3001234567"),
            ("form_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let lead = &app.leads().await[0];
    assert_eq!(
        lead["attempts"][0]["status"], "redirected",
        "the lead was stored and the checkout opened"
    );
}

async fn job_slower_than_its_lease_runs_once(backend: Backend) {
    let faults = Arc::new(Faults::default());
    let (app, ledger) = faulty_app(backend, faults.clone(), true, 2000).await;
    let checkout = app.start_checkout("demo", "Iris Rocha", "iris@example.com").await;
    // The deal update takes 5 s against a 2 s lease: the running worker renews its lease
    // instead of letting the job start a second time beside itself.
    faults.slow_deal_status.store(true, Ordering::SeqCst);
    app.get(&app.press(&checkout, "approve").await).await;
    eventually("the deal to be won", || async {
        ledger.objects(Kind::Deal).iter().any(|d| d.status == "won")
    })
    .await;
    app.settle().await;
    assert_eq!(ledger.duplicates(), vec![]);
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        job_attempts(&app, &lead_id, "deal_outcome").await,
        vec![("done".to_string(), 1)]
    );
}
