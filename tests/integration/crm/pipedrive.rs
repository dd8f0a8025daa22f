//! Pipedrive: journeys and failure paths against a fake that behaves like Pipedrive.

use leadgate::domain::followup::{Priority, TaskKind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::submit;
use crate::both_backends;
use crate::support::{eventually, Backend, TestApp};

const TOKEN: &str = "pd_test_token_3f9a";
/// The 40-character key of the "Leadgate attempt" custom field in the fake's account.
const ATTEMPT_KEY: &str = "9d1c3b5a7e2f4d6b8a0c1e3f5a7b9c2d4e6f8a0b";
const PIPELINE_ID: i64 = 1;
const STAGE_ID: i64 = 11;
const OWNER_ID: i64 = 9;
/// The open stage an offer's `on_refund = "stage:Refunded"` puts a refunded deal in.
const REFUNDED_STAGE_ID: i64 = 12;
/// Keys of the "Payment status" (text) and "Amount refunded" (numeric) custom fields.
const STATUS_KEY: &str = "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f";
const REFUNDED_KEY: &str = "7a3c5e1f9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a";
/// Keys of the "Google click id" and "Referrer" custom fields (attribution).
const GCLID_KEY: &str = "1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d";
const REFERRER_KEY: &str = "2c4e6b8d0f1a3c5e7b9d0f2a4c6e8b1d3f5a7c9e";

/// The stage whose entry makes a payment link, and the "Payment link" custom field's key.
const LINK_STAGE_ID: i64 = 13;
const LINK_KEY: &str = "3d5f7a9c1e2b4d6f8a0c2e4b6d8f1a3c5e7b9d0f";

mod fake;
mod followups;
mod leases;
mod links;
mod refunds;
use fake::*;

/// The app on Pipedrive, `crm_extra` added to its `[crm]` table; jobs get `attempts` tries.
async fn app_on(backend: Backend, fake: &FakePipedrive, crm_extra: &str, attempts: i32) -> TestApp {
    let env = vec![("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN.to_string())];
    super::app_with_crm(backend, fake.toml(crm_extra), env, attempts).await
}

fn attempt_of(deal: &Value) -> String {
    deal["custom_fields"][ATTEMPT_KEY]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every request carried the token in its header and none in its URL.
fn token_only_in_headers(fake: &FakePipedrive) {
    let seen = fake.state().seen.clone();
    assert!(!seen.is_empty());
    for s in seen {
        assert_eq!(s.token.as_deref(), Some(TOKEN), "{} {}", s.method, s.url);
        assert!(!s.url.contains(TOKEN), "token in {}", s.url);
    }
}

async fn dead_jobs(app: &TestApp) -> Vec<leadgate::store::jobs::JobSummary> {
    leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap()
}

both_backends!(
    pipedrive_approved_journey,
    click_ids_and_referrer_reach_pipedrive_fields
);

/// Mapped like the UTMs; an unmapped role (fbclid here) writes nothing.
async fn click_ids_and_referrer_reach_pipedrive_fields(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let toml = format!(
        "{}gclid = \"Google click id\"\nreferrer = \"Referrer\"\n",
        fake.toml("")
    );
    let env = vec![("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN.to_string())];
    let app = super::app_with_crm(backend, toml, env, 4).await;
    let res = app.post_form("/c/demo", &super::CLICK_IDS_FORM).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let deals = fake.deals();
    assert_eq!(deals.len(), 1);
    let custom = &deals[0]["custom_fields"];
    assert_eq!(custom[GCLID_KEY], "Cj0KCQ-abc");
    assert_eq!(custom[REFERRER_KEY], "https://blog.example/post");
    assert!(!custom.to_string().contains("IwAR-xyz"), "{custom}");
}

async fn pipedrive_approved_journey(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let app = app_on(backend, &fake, "", 4).await;
    let checkout = submit(&app, "Ana María Pérez", "Ana.Perez@Example.com", "300 123 4567").await;
    assert!(checkout.starts_with(&app.url("/sandbox/pay/")), "{checkout}");

    // The person is looked up by email first, then by phone, then created.
    let searches = fake.seen("GET", "/api/v2/persons/search");
    assert!(searches[0].url.contains("fields=email"), "{}", searches[0].url);
    assert!(
        searches[0].url.contains("term=ana.perez%40example.com"),
        "{}",
        searches[0].url
    );
    let persons = fake.persons();
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0]["emails"][0]["value"], "ana.perez@example.com");
    assert_eq!(persons[0]["phones"][0]["value"], "+573001234567");

    let deals = fake.deals();
    assert_eq!(deals.len(), 1, "the deal exists before the redirect");
    assert_eq!(
        fake.seen("GET", "/api/v2/pipelines").len(),
        1,
        "the start-up check's catalog serves the first calls too"
    );
    let deal = &deals[0];
    assert_eq!(deal["person_id"], persons[0]["id"]);
    assert_eq!(
        (deal["pipeline_id"].as_i64(), deal["stage_id"].as_i64()),
        (Some(PIPELINE_ID), Some(STAGE_ID))
    );
    assert_eq!(deal["value"].as_f64(), Some(199_000.0));
    assert_eq!(deal["currency"], "COP");
    assert_eq!(deal["title"], "Curso de Marketing — Ana María Pérez");

    let back = app.press(&checkout, "approve").await;
    app.get(&back).await;
    eventually("the deal to be won and noted", || async {
        fake.deals()[0]["status"] == "won" && fake.state().notes.len() == 1
    })
    .await;
    app.settle().await;
    let attempt_id = crate::support::attempt_id_of(&back);
    assert_eq!(attempt_of(&fake.deals()[0]), attempt_id);
    let note = fake.state().notes[0].clone();
    assert_eq!(note["deal_id"], deal["id"]);
    assert_eq!(note["person_id"], persons[0]["id"]);
    assert!(note["content"].as_str().unwrap().contains("<br>"), "{note}");
    let lead = &app.leads().await[0];
    assert_eq!(lead["attempts"][0]["crm_deal_id"], deal["id"].to_string().as_str());
    assert!(
        fake.seen("GET", "/api/v2/deals/search").is_empty(),
        "no search on the happy path"
    );
    assert_eq!(
        fake.seen("PATCH", &format!("/api/v2/deals/{}", deal["id"]))[0].body,
        json!({ "status": "won" })
    );
    token_only_in_headers(&fake);
    assert!(dead_jobs(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_decline_loses_the_deal_and_schedules_a_call() {
    let fake = FakePipedrive::start().await;
    let app = app_on(Backend::Sqlite, &fake, "", 4).await;
    let checkout = submit(&app, "Bruno Souza", "bruno@example.com", "300 765 4321").await;
    app.get(&app.press(&checkout, "decline").await).await;
    eventually("the deal lost, a call scheduled and a note", || async {
        let s = fake.state();
        s.deals.first().is_some_and(|d| d["status"] == "lost") && s.activities.len() == 1 && s.notes.len() == 1
    })
    .await;
    let deal = fake.deals()[0].clone();
    assert!(
        deal["lost_reason"].as_str().unwrap().starts_with("Payment declined"),
        "{deal}"
    );
    let task = fake.state().activities[0].clone();
    assert_eq!(task["type"], "call");
    assert_eq!(task["deal_id"], deal["id"]);
    assert_eq!(
        task["participants"],
        json!([{ "person_id": deal["person_id"], "primary": true }])
    );
    assert_eq!(task["done"], false);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(task["due_date"], today.as_str());
    assert_eq!(task["due_time"].as_str().unwrap().len(), 5, "HH:MM");
    let note = task["note"].as_str().unwrap();
    assert!(note.contains("bruno@example.com") && note.contains("<br>"), "{note}");
    assert!(
        note.contains(&format!("[leadgate:{}:declined]", attempt_of(&deal))),
        "{note}"
    );
    app.settle().await;
    assert_eq!(fake.state().activities.len(), 1);
    token_only_in_headers(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_persons_are_reused_by_email_and_by_phone() {
    let fake = FakePipedrive::start().await;
    let app = app_on(Backend::Sqlite, &fake, "", 4).await;
    // Someone sales entered by hand, with the phone a new lead will type.
    fake.state().persons.push(json!({
        "id": 7, "name": "Carla (from an event)",
        "emails": [{ "value": "carla.old@example.com" }],
        "phones": [{ "value": "+573009998877" }],
    }));
    submit(&app, "Dora Vega", "dora@example.com", "300 111 2233").await;
    submit(&app, "Dora V.", "DORA@example.com", "300 111 2233").await;
    submit(&app, "Carla Gil", "carla@example.com", "300 999 8877").await;
    eventually("three deals", || async { fake.deals().len() == 3 }).await;
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(fake.seen("POST", "/api/v2/persons").len(), 1, "one new person: Dora");
    assert_eq!(deals[0]["person_id"], deals[1]["person_id"], "same email, same person");
    assert_eq!(deals[2]["person_id"], 7, "found by phone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_outage_then_recovery_syncs_every_lead_once() {
    let fake = FakePipedrive::start().await;
    let app = app_on(Backend::Sqlite, &fake, "", 10).await;
    fake.faults(|f| f.down = true);
    for (name, email, phone) in [
        ("Gala Ruiz", "gala@example.com", "300 123 4567"),
        ("Hugo Paz", "hugo@example.com", "300 222 3344"),
        ("Gala R.", "gala@example.com", "300 123 4567"),
    ] {
        submit(&app, name, email, phone).await;
    }
    eventually("the outage to be felt", || async {
        fake.state().seen.iter().filter(|s| s.status == 500).count() >= 3
    })
    .await;
    fake.faults(|f| f.down = false);
    eventually("every lead to be synced", || async { fake.deals().len() == 3 }).await;
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(deals.len(), 3, "no duplicate deals");
    let mut attempts: Vec<String> = deals.iter().map(attempt_of).collect();
    attempts.sort();
    attempts.dedup();
    assert_eq!(attempts.len(), 3);
    assert_eq!(fake.persons().len(), 2, "both leads of gala@ share a person");
    assert!(dead_jobs(&app).await.is_empty());
    for lead in app.leads().await {
        assert!(lead["attempts"][0]["crm_deal_id"].is_string(), "{lead}");
    }
}

both_backends!(pipedrive_429_pauses_every_call_until_the_reset);

async fn pipedrive_429_pauses_every_call_until_the_reset(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let app = app_on(backend, &fake, "", 6).await;
    fake.faults(|f| {
        f.rate_limited = 1;
        f.rate_headers = vec![("x-ratelimit-reset", "2".into()), ("x-ratelimit-remaining", "0".into())];
    });
    submit(&app, "Iris Rocha", "iris@example.com", "300 123 4567").await;
    eventually("the deal despite the rate limit", || async { fake.deals().len() == 1 }).await;
    let seen = fake.state().seen.clone();
    let limited = seen.iter().find(|s| s.status == 429).expect("a 429 was sent").at;
    let too_early: Vec<_> = seen
        .iter()
        .filter(|s| s.at > limited && s.at < limited + Duration::from_secs(2))
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(too_early.is_empty(), "called during the pause: {too_early:?}");
    assert_eq!(fake.persons().len(), 1);
    // On PostgreSQL the app paces through its database, so other instances pause too.
    let shared = leadgate::store::pacing::paused_until(&app.ctx.db, "Pipedrive")
        .await
        .unwrap();
    if let Some((_, until)) = shared {
        assert!(until > 0, "the 429's pause was not shared through the database");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_deal_created_but_unanswered_is_found_not_duplicated() {
    let fake = FakePipedrive::start().await;
    // Our client gives up after 500 ms; Pipedrive creates the deal and answers after 3 s.
    let app = app_on(Backend::Sqlite, &fake, "timeout = \"500ms\"", 6).await;
    fake.faults(|f| f.slow_deal_once = Some(Duration::from_secs(3)));
    submit(&app, "Fabio Lima", "fabio@example.com", "300 123 4567").await;
    eventually("the deal to be recorded", || async {
        app.leads().await[0]["attempts"][0]["crm_deal_id"].is_string()
    })
    .await;
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(deals.len(), 1, "the retry found the deal instead of creating another");
    assert_eq!(
        app.leads().await[0]["attempts"][0]["crm_deal_id"],
        deals[0]["id"].to_string().as_str()
    );
    let searched = fake.seen("GET", "/api/v2/deals/search");
    assert!(!searched.is_empty(), "the retry searched by attempt id");
    assert!(searched[0].url.contains("fields=custom_fields") && searched[0].url.contains("exact_match=true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_refusal_goes_dead_with_pipedrives_message() {
    let fake = FakePipedrive::start().await;
    let app = app_on(Backend::Sqlite, &fake, "", 4).await;
    fake.faults(|f| f.refuse_deals = Some((422, "Stage is not in the pipeline you gave")));
    submit(&app, "Inés Mora", "ines@example.com", "300 123 4567").await;
    eventually("the sync job to go dead", || async {
        !dead_jobs(&app).await.is_empty()
    })
    .await;
    let dead = dead_jobs(&app).await;
    assert_eq!(
        (dead[0].kind.as_str(), dead[0].attempts),
        ("crm_sync", 1),
        "no retry loop"
    );
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("422") && error.contains("Stage is not in the pipeline you gave"),
        "{error}"
    );

    // A revoked token is just as final.
    fake.faults(|f| f.refuse_deals = Some((401, "unauthorized access")));
    submit(&app, "Juan Mora", "juan@example.com", "300 123 4568").await;
    eventually("the second job to go dead", || async {
        dead_jobs(&app).await.len() == 2
    })
    .await;
    assert!(dead_jobs(&app).await[0]
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("unauthorized access"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_start_up_refuses_a_stage_it_does_not_have() {
    let fake = FakePipedrive::start().await;
    let toml = super::config_with_stage("Negotiation", &fake.toml(""));
    let err = super::start_up_error(&toml, ("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN)).await;
    assert!(
        err.contains("\"Negotiation\"") && err.contains("Checkout started"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_crm_check_lists_ids_and_names_what_is_missing() {
    let fake = FakePipedrive::start().await;
    super::assert_crm_check(&fake.toml(""), ("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN)).await;
}

/// Base URLs of Prism serving `tests/contracts/pipedrive/openapi-v{2,1}.yaml`.
const PRISM_V2_ENV: &str = "LEADGATE_TEST_PRISM_PIPEDRIVE_V2";
const PRISM_V1_ENV: &str = "LEADGATE_TEST_PRISM_PIPEDRIVE_V1";

/// Every call the adapter makes, against Pipedrive's own OpenAPI specs: Prism refuses a
/// request that breaks them (400/422) and answers the spec's examples otherwise.
#[tokio::test]
async fn pipedrive_requests_conform_to_pipedrives_openapi_specs() {
    use leadgate::config::FieldRole;
    use leadgate::crm::catalog::CrmNeeds;
    use leadgate::crm::pipedrive::PipedriveCrm;
    use leadgate::crm::{Crm, DealInput, DealRef, DealStatus, NoteInput, PersonInput, TaskInput};
    use leadgate::domain::lead::Utm;
    use leadgate::domain::{Currency, Email, Money, PersonName, Phone};

    let Some(v2) = crate::vendor_tools::tool(PRISM_V2_ENV) else {
        return;
    };
    let Some(v1) = crate::vendor_tools::tool(PRISM_V1_ENV) else {
        return;
    };
    let settings = leadgate::config::RemoteCrmSettings {
        api_base: url::Url::parse("https://acme.pipedrive.com").unwrap(),
        timeout: Duration::from_secs(20),
        token: secrecy::SecretString::from(TOKEN),
        owner: None,
        activity_type: "call".into(),
        fields: vec![],
        max_requests: 100,
        max_searches: 100,
    };
    // Names as the specs' examples have them.
    let needs = CrmNeeds {
        stages: vec![("Pipeline Name".into(), "Stage Name".into())],
        refund_stages: vec![("Pipeline Name".into(), "Stage Name".into())],
        abandoned_stages: vec![],
        // The specs' one custom field; no other role may share the attempt id's field.
        fields: vec![(FieldRole::AttemptId, "40characterhashforcustomfieldidentifier".into())],
        owner: Some("john@pipedrive.com".into()),
        activity_type: Some("Call".into()),
        outcome_stages: false,
        unique_attempt_field: false,
        ..CrmNeeds::default()
    };
    // The v1 spec's own example for /activityTypes breaks its schema (dates without the
    // `T`), so Prism answers 500 to any request there; our request itself is valid.
    let http = reqwest::Client::new();
    let listed = http
        .get(format!("{v1}/activityTypes"))
        .header("x-api-token", TOKEN)
        .send()
        .await
        .unwrap();
    if listed.status() != 200 {
        let report: Value = listed.json().await.unwrap();
        let at = report["validation"].as_array().cloned().unwrap_or_default();
        assert!(!at.is_empty(), "{report}");
        assert!(at.iter().all(|v| v["location"][0] == "response"), "{report}");
    }
    // So the catalog's two v1 listings come from a stand-in holding the specs' examples.
    let v1_listings = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/users"))
        .respond_with(
            ok(json!([{ "id": 1, "name": "John Doe", "email": "john@pipedrive.com", "active_flag": true }])).template(),
        )
        .mount(&v1_listings)
        .await;
    Mock::given(wiremock::matchers::path("/activityTypes"))
        .respond_with(ok(json!([{ "id": 5, "name": "Call", "key_string": "call", "active_flag": true }])).template())
        .mount(&v1_listings)
        .await;
    // Payment fields written by a configuration whose payment status has that field.
    let mut payment_needs = needs.clone();
    payment_needs.fields = vec![(FieldRole::PaymentStatus, "Priority".into())];
    let payments = PipedriveCrm::with_roots(&settings, payment_needs, http.clone(), &v1_listings.uri(), &v2);
    let crm = PipedriveCrm::with_roots(&settings, needs.clone(), http.clone(), &v1_listings.uri(), &v2);
    let notes = PipedriveCrm::with_roots(&settings, needs, http, &v1, &v2);

    let catalog = crm.catalog().await.expect("catalog");
    assert!(
        !catalog.pipelines.is_empty() && !catalog.owners.is_empty(),
        "{catalog:?}"
    );
    assert!(
        !catalog.deal_fields.is_empty() && !catalog.activity_types.is_empty(),
        "{catalog:?}"
    );

    let (name, email, phone) = (
        PersonName::parse("Ana Pérez").unwrap(),
        Email::parse("ana+pd@example.com").unwrap(),
        Phone::parse("300 123 4567", Some("CO")).unwrap(),
    );
    let person = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    let person_id = crm.upsert_person(&person).await.expect("upsert_person");
    let utm = Utm {
        campaign: Some("launch".into()),
        ..Utm::default()
    };
    let deal = DealInput {
        attempt_id: "01a20b9b-a193-731b-92a6-616de6a57c0e",
        person_id: &person_id,
        title: "Curso — Ana Pérez".into(),
        value: Money::new(19_990, Currency::BRL).unwrap(),
        pipeline: "Pipeline Name",
        stage: "Stage Name",
        offer_slug: "curso",
        utm: &utm,
    };
    let deal_id = crm.create_deal(&deal).await.expect("create_deal");
    crm.find_deal(deal.attempt_id).await.expect("find_deal");
    let at = DealRef {
        deal_id: &deal_id,
        pipeline: "Pipeline Name",
    };
    crm.set_deal_status(&at, &DealStatus::Won).await.expect("won");
    let lost = DealStatus::Lost {
        reason: "Payment declined".into(),
    };
    crm.set_deal_status(&at, &lost).await.expect("lost");
    let reopened = DealStatus::Open {
        stage: "Stage Name".into(),
    };
    crm.set_deal_status(&at, &reopened)
        .await
        .expect("open in the on_refund stage");
    let payment = [
        (FieldRole::PaymentStatus, "refunded".to_string()),
        (FieldRole::AmountRefunded, "199.90".to_string()),
    ];
    payments
        .set_deal_fields(&deal_id, &payment)
        .await
        .expect("payment fields");
    let task = TaskInput {
        key: "att-1:declined",
        deal_id: &deal_id,
        person_id: &person_id,
        subject: "Call Ana".into(),
        body: "Name: Ana\nPhone: +573001234567".into(),
        due_at: chrono::Utc::now().timestamp_millis(),
        kind: TaskKind::Todo,
        priority: Priority::High,
        owner: None,
    };
    let task_id = crm.create_task(&task).await.expect("create_task");
    crm.find_task(&deal_id, task.key).await.expect("find_task");
    let task_ref = leadgate::crm::TaskRef {
        task_id: &task_id,
        deal_id: &deal_id,
    };
    use leadgate::domain::followup::CloseTask;
    crm.close_task(&task_ref, CloseTask::Complete)
        .await
        .expect("complete the task");
    crm.close_task(&task_ref, CloseTask::Delete)
        .await
        .expect("delete the task");
    let note = NoteInput {
        key: "att-1:approved",
        deal_id: &deal_id,
        person_id: &person_id,
        body: "Payment: approved <ok>".into(),
    };
    notes.add_note(&note).await.expect("add_note");
}

/// The fake for tests outside this module, such as the real binary's fault tests. It
/// keeps every object it is asked to create: a second `POST /api/v2/deals` is a second
/// deal, so counting its requests shows any duplicate leadgate sends.
pub(crate) struct SharedPipedrive(FakePipedrive);

impl SharedPipedrive {
    /// The environment variable and value of the fake's API token.
    pub(crate) const TOKEN: (&'static str, &'static str) = ("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN);

    pub(crate) async fn start() -> Self {
        Self(FakePipedrive::start().await)
    }

    /// The `[crm]` table that points leadgate at the fake, its burst limits raised so that
    /// a flood of leads is not paced like a real account's.
    pub(crate) fn toml(&self) -> String {
        self.0.toml("max_requests = 10000\nmax_searches = 10000")
    }

    /// The bodies of the creates the fake accepted at `path` (e.g. `/api/v2/deals`).
    pub(crate) fn created(&self, path: &str) -> Vec<Value> {
        let seen = self.0.seen("POST", path);
        seen.into_iter().filter(|s| s.status == 200).map(|s| s.body).collect()
    }

    /// The fake's deals as they are now (status included).
    pub(crate) fn deals(&self) -> Vec<Value> {
        self.0.deals()
    }

    /// The attempt id a deal (as created or stored) carries in its custom field.
    pub(crate) fn attempt_of(deal: &Value) -> String {
        attempt_of(deal)
    }
}

/// The adapter itself on the fake, as the follow-up jobs use it.
fn adapter(fake: &FakePipedrive) -> leadgate::crm::pipedrive::PipedriveCrm {
    use leadgate::config::FieldRole;
    use leadgate::crm::catalog::CrmNeeds;
    let settings = leadgate::config::RemoteCrmSettings {
        api_base: url::Url::parse(&fake.server.uri()).unwrap(),
        timeout: Duration::from_secs(5),
        token: secrecy::SecretString::from(TOKEN),
        owner: Some("bot@example.com".into()),
        activity_type: "call".into(),
        fields: vec![],
        max_requests: 100,
        max_searches: 100,
    };
    let needs = CrmNeeds {
        stages: vec![("Sales".into(), "Checkout started".into())],
        fields: vec![(FieldRole::AttemptId, "Leadgate attempt".into())],
        owner: settings.owner.clone(),
        task_owners: vec!["bot@example.com".into()],
        activity_type: Some("call".into()),
        ..CrmNeeds::default()
    };
    leadgate::crm::pipedrive::PipedriveCrm::new(&settings, needs, reqwest::Client::new())
}

#[tokio::test]
async fn pipedrive_tasks_are_completed_or_deleted_and_closing_again_is_harmless() {
    use leadgate::crm::{Crm, TaskInput, TaskRef};
    use leadgate::domain::followup::CloseTask;
    let fake = FakePipedrive::start().await;
    let crm = adapter(&fake);
    let task = |key: &'static str, subject: &str, kind| TaskInput {
        key,
        deal_id: "501",
        person_id: "77",
        subject: subject.into(),
        body: "Ana".into(),
        due_at: 1_777_710_600_000,
        kind,
        priority: Priority::Normal,
        owner: None,
    };
    let call = crm.create_task(&task("a:1", "Call Ana", TaskKind::Call)).await.unwrap();
    let todo = crm
        .create_task(&task("a:2", "Send the link", TaskKind::Todo))
        .await
        .unwrap();
    let kept = crm
        .create_task(&task("a:3", "Still open", TaskKind::Call))
        .await
        .unwrap();
    let created: Vec<Value> = fake.state().activities.clone();
    assert_eq!(created[1]["type"], "task", "{created:?}");
    assert_eq!(created[1]["owner_id"], OWNER_ID);
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "501",
    };
    crm.close_task(&at(&call), CloseTask::Complete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Delete).await.unwrap();
    // A salesperson (or an earlier run) got there first: still done.
    crm.close_task(&at(&todo), CloseTask::Delete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Complete).await.unwrap();
    crm.close_task(&at(&call), CloseTask::Complete).await.unwrap();

    assert_eq!(fake.open_tasks(), [(kept, "Still open".to_string())]);
    assert_eq!(
        fake.closed_tasks(),
        [
            (call, "Call Ana".to_string(), CloseTask::Complete),
            (todo.clone(), "Send the link".to_string(), CloseTask::Delete),
        ]
    );
    assert_eq!(
        crm.find_task("501", "a:2").await.unwrap(),
        None,
        "a deleted task is not found again"
    );
    assert_eq!(fake.seen("DELETE", &format!("/api/v2/activities/{todo}")).len(), 2);
}

#[tokio::test]
async fn pipedrive_closing_a_task_under_a_429_is_transient_and_changes_nothing() {
    use leadgate::crm::{Crm, CrmError, TaskRef};
    use leadgate::domain::followup::CloseTask;
    let fake = FakePipedrive::start().await;
    let crm = adapter(&fake);
    let id = {
        let mut s = fake.state();
        let id = s.id();
        s.activities
            .push(json!({ "id": id, "subject": "Call Ana", "deal_id": 501, "done": false }));
        id.to_string()
    };
    fake.faults(|f| {
        f.rate_limited = 1;
        f.rate_headers = vec![("x-ratelimit-reset", "1".into())];
    });
    let at = TaskRef {
        task_id: &id,
        deal_id: "501",
    };
    match crm.close_task(&at, CloseTask::Complete).await {
        Err(CrmError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.open_tasks().len(), 1);
    crm.close_task(&at, CloseTask::Complete).await.unwrap();
    assert_eq!(fake.closed_tasks()[0].2, CloseTask::Complete);
}
