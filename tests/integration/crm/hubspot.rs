//! HubSpot: journeys and failure paths against a fake that behaves like HubSpot.
//!
//! The fake keeps contacts, deals, tasks and notes with their associations, answers the
//! calls our adapter makes the way HubSpot does (409 with the existing id, 404 on reads
//! by `idProperty`, v4 association listings), logs every request with its arrival time,
//! and can be told to fail: 5xx, 429 with HubSpot's bodies, slow answers, a revoked token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::submit;
use crate::both_backends;
use crate::support::{attempt_id_of, eventually, Backend, TestApp};

const TOKEN: &str = "pat-na1-test-7f3c";
const ATTEMPT_PROPERTY: &str = "leadgate_attempt_id";
const OWNER_ID: &str = "910901";
const PIPELINE_ID: &str = "default";
const STAGE_ID: &str = "appointmentscheduled";
const WON_ID: &str = "closedwon";
const LOST_ID: &str = "closedlost";
/// The open stage an offer's `on_refund = "stage:Refunded"` puts a refunded deal in.
const REFUNDED_ID: &str = "90210377";

mod fake;
mod followups;
mod links;
mod refunds;
use fake::*;

// ---------------------------------------------------------------- the app

async fn app(backend: Backend, fake: &FakeHubspot, max_attempts: i32) -> TestApp {
    let env = vec![("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string())];
    super::app_with_crm(backend, fake.toml(), env, max_attempts).await
}

async fn jobs(app: &TestApp) -> Vec<leadgate::store::jobs::JobSummary> {
    let mut all = Vec::new();
    for lead in leadgate::store::leads::all(&app.ctx.db).await.unwrap() {
        all.extend(leadgate::store::jobs::for_lead(&app.ctx.db, &lead.id).await.unwrap());
    }
    all
}

async fn recorded_deal(app: &TestApp, attempt_id: &str) -> Option<String> {
    let leads = app.leads().await;
    leads
        .iter()
        .flat_map(|l| l["attempts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["id"] == attempt_id)
        .and_then(|a| a["crm_deal_id"].as_str().map(str::to_owned))
}

fn has_association(o: &Object, to: &str, type_id: u64) -> bool {
    o.associations.iter().any(|(id, ty)| id == to && *ty == type_id)
}

// ---------------------------------------------------------------- journeys

both_backends!(hubspot_approve_journey, click_ids_reach_hubspot_properties);

/// Mapped like the UTMs; an unmapped role (referrer here) writes nothing.
async fn click_ids_reach_hubspot_properties(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let toml = format!(
        "{}gclid = \"Google click id\"\nfbclid = \"Meta click id\"\n",
        fake.toml()
    );
    let env = vec![("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string())];
    let app = super::app_with_crm(backend, toml, env, 4).await;
    let res = app.post_form("/c/demo", &super::CLICK_IDS_FORM).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let deals = fake.deals();
    assert_eq!(deals.len(), 1);
    let p = &deals[0].properties;
    assert_eq!(p["gclid"], "Cj0KCQ-abc");
    assert_eq!(p["fbclid"], "IwAR-xyz");
    assert!(!serde_json::to_string(p).unwrap().contains("blog.example"), "{p:?}");
}

async fn hubspot_approve_journey(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let app = app(backend, &fake, 4).await;
    let checkout = submit(&app, "Ana María Pérez", "Ana.Perez+vip@Example.com", "300 123 4567").await;
    let back = app.press(&checkout, "approve").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("the deal to be won in HubSpot", || async {
        fake.deals()
            .first()
            .and_then(|d| d.properties.get("dealstage").cloned())
            .as_deref()
            == Some(WON_ID)
            && fake.notes().len() == 1
    })
    .await;
    app.settle().await;

    // Contact: read by email (encoded as one segment), not found by phone, then created.
    let email_path = "/crm/v3/objects/contacts/ana.perez%2Bvip@example.com";
    let read = fake.calls("GET", email_path);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].query.as_deref(), Some("idProperty=email"));
    let search = fake.calls("POST", "/crm/v3/objects/contacts/search");
    assert_eq!(
        search[0].body["filterGroups"][0]["filters"][0]["value"],
        "+573001234567"
    );
    let created = fake.calls("POST", "/crm/v3/objects/contacts");
    assert_eq!(created.len(), 1);
    assert!(read[0].at < search[0].at && search[0].at < created[0].at);
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!(c.properties["email"], "ana.perez+vip@example.com");
    assert_eq!(
        (c.properties["firstname"].as_str(), c.properties["lastname"].as_str()),
        ("Ana", "María Pérez")
    );
    assert_eq!(c.properties["hubspot_owner_id"], OWNER_ID);

    // Deal: ids, amount in major units, our attempt id, UTM, inline association.
    let deals = fake.deals();
    assert_eq!(deals.len(), 1);
    let d = &deals[0];
    assert_eq!(d.properties["dealname"], "Curso de Marketing — Ana María Pérez");
    assert_eq!(d.properties["amount"], "199000.00");
    assert_eq!(d.properties["deal_currency_code"], "COP");
    assert_eq!(d.properties["pipeline"], PIPELINE_ID);
    assert_eq!(d.properties[ATTEMPT_PROPERTY], attempt);
    assert_eq!(d.properties["utm_campaign"], "launch");
    assert_eq!(d.properties["hubspot_owner_id"], OWNER_ID);
    assert_eq!(d.associations, vec![(c.id.clone(), 3)]);
    let posted = &fake.calls("POST", "/crm/v3/objects/deals")[0];
    assert_eq!(
        posted.body["properties"]["dealstage"], STAGE_ID,
        "created in the offer's stage"
    );
    assert_eq!(recorded_deal(&app, &attempt).await.as_deref(), Some(d.id.as_str()));

    // Won: PATCH to the closed-won stage, then a note on deal and contact.
    let patches = fake.calls("PATCH", &format!("/crm/v3/objects/deals/{}", d.id));
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body, json!({"properties": {"dealstage": WON_ID}}));
    let notes = fake.notes();
    let n = &notes[0];
    assert!(
        has_association(n, &d.id, 214) && has_association(n, &c.id, 202),
        "{n:?}"
    );
    assert!(n.properties["hs_note_body"].contains("approved"), "{n:?}");
    assert!(n.properties["hs_note_body"].contains("<br>"), "{n:?}");
    assert!(fake.tasks().is_empty());
    assert_eq!(app.leads().await[0]["attempts"][0]["deal_status"], "won");

    // Every call carried the token; the happy path never looked for a hidden deal.
    let log = fake.log();
    assert!(log
        .iter()
        .all(|l| l.auth.as_deref() == Some(&*format!("Bearer {TOKEN}"))));
    assert!(log.iter().all(|l| l.status < 400 || l.path == email_path), "{log:?}");
    assert!(fake
        .calls("GET", &format!("/crm/v3/objects/deals/{attempt}"))
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_decline_loses_the_deal_and_opens_an_urgent_task() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let checkout = submit(&app, "Bruno Souza", "bruno@example.com", "300 123 4567").await;
    let back = app.press(&checkout, "decline").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("a lost deal, a task and a note", || async {
        let lost = fake
            .deals()
            .first()
            .and_then(|d| d.properties.get("dealstage").cloned())
            .as_deref()
            == Some(LOST_ID);
        lost && fake.tasks().len() == 1 && fake.notes().len() == 1
    })
    .await;
    app.settle().await;
    let (c, d) = (&fake.contacts()[0], &fake.deals()[0]);
    assert!(
        d.properties["closed_lost_reason"].starts_with("Payment declined"),
        "{:?}",
        d.properties
    );
    let tasks = fake.tasks();
    let t = &tasks[0];
    assert_eq!(t.properties["hs_task_priority"], "HIGH");
    assert_eq!(t.properties["hs_task_status"], "NOT_STARTED");
    assert_eq!(t.properties["hs_task_type"], "CALL");
    assert_eq!(t.properties["hubspot_owner_id"], OWNER_ID);
    assert!(t.properties["hs_task_subject"].contains("Bruno Souza"));
    let body = &t.properties["hs_task_body"];
    assert!(body.contains("bruno@example.com") && body.contains("<br>"), "{body}");
    assert!(body.ends_with(&format!("[leadgate:{attempt}:declined]")), "{body}");
    assert!(
        has_association(t, &c.id, 204) && has_association(t, &d.id, 216),
        "{t:?}"
    );
    let n = &fake.notes()[0];
    assert!(has_association(n, &d.id, 214) && has_association(n, &c.id, 202));
    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(fake.deals().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_existing_contacts_are_reused_and_a_409_gives_the_id() {
    let fake = FakeHubspot::start().await;
    let known = fake.add_contact("carla@example.com", "+573001112233", false);
    // Created by someone else a moment ago: our read misses it, the create gets a 409.
    let racing = fake.add_contact("dario@example.com", "+573009998877", true);
    let app = app(Backend::Sqlite, &fake, 4).await;

    submit(&app, "Carla Gómez", "carla@example.com", "300 555 0000").await;
    submit(&app, "Darío Paz", "dario@example.com", "300 555 0001").await;
    eventually("both deals", || async { fake.deals().len() == 2 }).await;
    app.settle().await;

    assert_eq!(fake.contacts().len(), 2, "no contact was added");
    let creates = fake.calls("POST", "/crm/v3/objects/contacts");
    assert_eq!(
        creates.len(),
        1,
        "carla was found by email; only dario's create was tried"
    );
    assert_eq!(creates[0].status, 409);
    let deals = fake.deals();
    assert!(has_association(&deals[0], &known, 3), "{deals:?}");
    assert!(has_association(&deals[1], &racing, 3), "{deals:?}");
}

// ---------------------------------------------------------------- failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_outage_then_recovery_syncs_every_lead_once() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 12).await;
    // An outage: a stretch of 502s, then deal creates answered after our 700 ms timeout
    // (HubSpot did the work; we never saw the 201).
    let down = Fault::Status {
        status: 502,
        body: json!({"message": "Bad gateway"}),
        retry_after: None,
    };
    fake.inject("ANY", "/crm/", down, 3);
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Slow(Duration::from_millis(1500)),
        2,
    );
    for (name, email, phone) in [
        ("Gala Ruiz", "gala@example.com", "300 123 0001"),
        ("Hugo Paz", "hugo@example.com", "300 123 0002"),
        ("Gala R.", "gala@example.com", "300 123 0001"),
    ] {
        let started = Instant::now();
        let checkout = submit(&app, name, email, phone).await;
        assert!(checkout.contains("/sandbox/pay/"), "the customer still goes to pay");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the redirect did not wait for HubSpot"
        );
    }

    eventually("every attempt to have its deal", || async {
        let leads = app.leads().await;
        leads
            .iter()
            .flat_map(|l| l["attempts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["crm_deal_id"].is_string())
            .count()
            == 3
    })
    .await;
    app.settle().await;

    assert_eq!(
        fake.log().iter().filter(|l| l.status == 502).count(),
        3,
        "the outage happened"
    );
    let lookups = fake
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.query.as_deref() == Some("idProperty=leadgate_attempt_id"))
        .count();
    assert!(lookups >= 2, "timed-out creates were looked up, not repeated");
    assert_eq!(fake.contacts().len(), 2, "one contact per email");
    let deals = fake.deals();
    assert_eq!(deals.len(), 3, "one deal per attempt: {deals:?}");
    let mut attempts: Vec<&str> = deals.iter().map(|d| d.properties[ATTEMPT_PROPERTY].as_str()).collect();
    attempts.dedup();
    assert_eq!(attempts.len(), 3);
    for d in &deals {
        let mine = recorded_deal(&app, &d.properties[ATTEMPT_PROPERTY]).await;
        assert_eq!(mine.as_deref(), Some(d.id.as_str()));
    }
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_deal_created_but_unrecorded_is_found_not_duplicated() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    // HubSpot creates the deal, and the answer is lost (as if we crashed before commit).
    fake.inject("POST", "/crm/v3/objects/deals", Fault::WorkThen(500), 1);
    let checkout = submit(&app, "Fabio Lima", "fabio@example.com", "300 123 4567").await;
    let back = app.press(&checkout, "approve").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("the deal to be recorded and won", || async {
        recorded_deal(&app, &attempt).await.is_some()
            && fake
                .deals()
                .first()
                .and_then(|d| d.properties.get("dealstage").cloned())
                .as_deref()
                == Some(WON_ID)
    })
    .await;
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(deals.len(), 1, "the retry found the deal instead of creating another");
    assert_eq!(
        recorded_deal(&app, &attempt).await.as_deref(),
        Some(deals[0].id.as_str())
    );
    let lookups = fake.calls("GET", &format!("/crm/v3/objects/deals/{attempt}"));
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].query.as_deref(), Some("idProperty=leadgate_attempt_id"));
    assert_eq!(lookups[0].status, 200);
    assert_eq!(fake.calls("POST", "/crm/v3/objects/deals").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_429_pauses_every_call_for_the_time_given() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 6).await;
    let body = rate_limited(
        "TEN_SECONDLY_ROLLING",
        "You have reached your ten_secondly_rolling limit.",
    );
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 429,
            body,
            retry_after: Some(1),
        },
        1,
    );
    submit(&app, "Irene Vega", "irene@example.com", "300 123 0003").await;
    submit(&app, "Jorge Rey", "jorge@example.com", "300 123 0004").await;
    eventually("both deals", || async { fake.deals().len() == 2 }).await;
    app.settle().await;

    let log = fake.log();
    let hit = log.iter().position(|l| l.status == 429).expect("the 429 was sent");
    let resume_at = log[hit].at + Duration::from_secs(1);
    let early: Vec<_> = log[hit + 1..].iter().filter(|l| l.at < resume_at).collect();
    assert!(early.is_empty(), "called HubSpot during the pause: {early:?}");
    assert_eq!(fake.contacts().len(), 2);
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_daily_429_waits_for_the_next_day() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let body = rate_limited("DAILY", "You have reached your daily limit.");
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 429,
            body,
            retry_after: None,
        },
        1,
    );
    submit(&app, "Karla Ortiz", "karla@example.com", "300 123 0005").await;

    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    eventually("the sync to be queued for tomorrow", || async {
        jobs(&app)
            .await
            .iter()
            .any(|j| j.kind == "crm_sync" && j.state == leadgate::store::jobs::JobState::Queued && j.run_at >= tomorrow)
    })
    .await;
    let sent = fake.log().len();
    // Another lead meanwhile: stored and redirected, and HubSpot is not called at all.
    let checkout = submit(&app, "Luis Mar", "luis@example.com", "300 123 0006").await;
    assert!(checkout.contains("/sandbox/pay/"));
    eventually("the second sync to wait for tomorrow too", || async {
        jobs(&app)
            .await
            .iter()
            .filter(|j| {
                j.kind == "crm_sync" && j.state == leadgate::store::jobs::JobState::Queued && j.run_at >= tomorrow
            })
            .count()
            == 2
    })
    .await;
    assert_eq!(fake.log().len(), sent, "no call during the daily pause");
    assert!(fake.deals().is_empty());
}

async fn dead_errors(app: &TestApp) -> Vec<String> {
    leadgate::store::jobs::dead(&app.ctx.db, 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|j| j.last_error)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_refusals_go_dead_with_hubspots_message() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let refusal = json!({"status": "error", "message": "Property values were not valid: [amount]",
                         "category": "VALIDATION_ERROR", "correlationId": "2dea5219-07f2"});
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 400,
            body: refusal,
            retry_after: None,
        },
        1,
    );
    submit(&app, "Marta Gil", "marta@example.com", "300 123 0007").await;
    eventually("the sync to go dead", || async { !dead_errors(&app).await.is_empty() }).await;
    let errors = dead_errors(&app).await;
    assert!(
        errors[0].contains(
            "400 Bad Request: VALIDATION_ERROR: Property values were not valid: [amount] (correlationId 2dea5219-07f2)"
        ),
        "{errors:?}"
    );
    let sync: Vec<_> = jobs(&app).await.into_iter().filter(|j| j.kind == "crm_sync").collect();
    assert_eq!((sync[0].state.as_str(), sync[0].attempts), ("dead", 1), "no retry loop");

    // The token is revoked: the next lead's sync stops at once with HubSpot's reason.
    fake.set_revoked(true);
    submit(&app, "Nora Paz", "nora@example.com", "300 123 0008").await;
    eventually("the second sync to go dead", || async {
        dead_errors(&app).await.len() == 2
    })
    .await;
    let errors = dead_errors(&app).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("401 Unauthorized: INVALID_AUTHENTICATION: Authentication credentials not found")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains(TOKEN)), "the token is never echoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_start_up_refuses_a_stage_it_does_not_have() {
    let fake = FakeHubspot::start().await;
    let toml = super::config_with_stage("Negotiation", &fake.toml());
    let err = super::start_up_error(&toml, ("LEADGATE_HUBSPOT_TOKEN", TOKEN)).await;
    assert!(
        err.contains("stage \"Negotiation\" not found in pipeline \"Sales\""),
        "{err}"
    );
    assert!(err.contains("\"Checkout started\""), "it names what HubSpot has: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_crm_check_lists_ids_and_names_what_is_missing() {
    let fake = FakeHubspot::start().await;
    super::assert_crm_check(&fake.toml(), ("LEADGATE_HUBSPOT_TOKEN", TOKEN)).await;
}

// Keeps the fake's decoder honest: the path decoding above is hand-written.
#[test]
fn fake_decodes_percent_escapes() {
    assert_eq!(decode("ana%2Bx%2Fy@example.com"), "ana+x/y@example.com");
    assert_eq!(decode("plain"), "plain");
    assert_eq!(decode("bad%2"), "bad%2");
}

/// The adapter itself on the fake, as the follow-up jobs use it.
fn adapter(fake: &FakeHubspot) -> leadgate::crm::hubspot::HubspotCrm {
    use leadgate::crm::catalog::CrmNeeds;
    let settings = leadgate::config::RemoteCrmSettings {
        api_base: url::Url::parse(&fake.server.uri()).unwrap(),
        timeout: Duration::from_secs(5),
        token: secrecy::SecretString::from(TOKEN),
        owner: Some("sales@acme.test".into()),
        activity_type: "CALL".into(),
        fields: vec![],
        max_requests: 100,
        max_searches: 5,
    };
    let needs = CrmNeeds {
        stages: vec![("Sales".into(), "Checkout started".into())],
        owner: settings.owner.clone(),
        task_owners: vec!["BOSS@acme.test".into()],
        activity_type: Some("CALL".into()),
        outcome_stages: true,
        ..CrmNeeds::default()
    };
    leadgate::crm::hubspot::HubspotCrm::new(&settings, needs, reqwest::Client::new())
}

#[tokio::test]
async fn hubspot_tasks_are_completed_or_archived_and_closing_again_is_harmless() {
    use leadgate::crm::{Crm, Resolved, TaskInput, TaskRef};
    use leadgate::domain::followup::{CloseTask, Priority, TaskKind};
    let fake = FakeHubspot::start().await;
    let crm = adapter(&fake);
    // The follow-up's owner, named by email in the policy, as the CRM's id.
    let catalog = crm.catalog().await.unwrap();
    let needs = leadgate::crm::catalog::CrmNeeds {
        task_owners: vec!["BOSS@acme.test".into()],
        ..Default::default()
    };
    let resolved = Resolved::resolve(&catalog, &needs).unwrap();
    let boss = resolved.user("boss@acme.test").map(str::to_owned);
    assert_eq!(boss.as_deref(), Some("1"));
    let task = |key: &'static str, subject: &str, kind, owner| TaskInput {
        key,
        deal_id: "5001",
        person_id: "5002",
        subject: subject.into(),
        body: "Ana".into(),
        due_at: 1_777_710_600_000,
        kind,
        priority: Priority::High,
        owner,
    };
    let call = crm
        .create_task(&task("a:1", "Call Ana", TaskKind::Call, Some("boss@acme.test")))
        .await
        .unwrap();
    let todo = crm
        .create_task(&task("a:2", "Send the link", TaskKind::Todo, None))
        .await
        .unwrap();
    let kept = crm
        .create_task(&task("a:3", "Still open", TaskKind::Call, None))
        .await
        .unwrap();
    let tasks = fake.tasks();
    assert_eq!(tasks[0].properties["hubspot_owner_id"], "1");
    assert_eq!(tasks[1].properties["hubspot_owner_id"], OWNER_ID);
    assert_eq!(tasks[1].properties["hs_task_type"], "TODO");
    assert_eq!(tasks[0].properties["hs_task_priority"], "HIGH");
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "5001",
    };
    crm.close_task(&at(&call), CloseTask::Complete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Delete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Delete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Complete).await.unwrap();
    crm.close_task(&at(&call), CloseTask::Complete).await.unwrap();

    assert_eq!(fake.open_tasks(), [(kept, "Still open".to_string())]);
    assert_eq!(
        fake.closed_tasks(),
        [
            (call.clone(), "Call Ana".to_string(), CloseTask::Complete),
            (todo.clone(), "Send the link".to_string(), CloseTask::Delete),
        ]
    );
    assert_eq!(
        crm.find_task("5001", "a:2").await.unwrap(),
        None,
        "an archived task is not found again"
    );
    assert_eq!(crm.find_task("5001", "a:1").await.unwrap(), Some(call));
    let patches = fake.calls("PATCH", &format!("/crm/v3/objects/tasks/{todo}"));
    assert_eq!(patches[0].status, 404);
}

#[tokio::test]
async fn hubspot_searches_are_not_held_by_the_ten_secondly_limit() {
    use leadgate::crm::{Crm, PersonInput};
    use leadgate::domain::{Email, PersonName, Phone};
    let fake = FakeHubspot::start().await;
    let settings = leadgate::config::RemoteCrmSettings {
        api_base: url::Url::parse(&fake.server.uri()).unwrap(),
        timeout: Duration::from_secs(5),
        token: secrecy::SecretString::from(TOKEN),
        owner: None,
        activity_type: "CALL".into(),
        fields: vec![],
        // Two requests per 10 s: the catalog spends them (and queues behind them).
        max_requests: 2,
        max_searches: 5,
    };
    let crm = leadgate::crm::hubspot::HubspotCrm::new(&settings, Default::default(), reqwest::Client::new());
    crm.adopt(leadgate::crm::Resolved::default());
    let (name, email, phone) = (
        PersonName::from_trusted("Ana".into()),
        Email::from_trusted("ana.search@example.com".into()),
        Phone::from_trusted("+573009998877".into()),
    );
    let p = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    // One request slot per 5 s (2 per 10 s, half as burst): the email read takes it.
    let started = Instant::now();
    fake.add_contact("other@example.com", "+573009998877", false);
    assert_eq!(crm.upsert_person(&p).await.unwrap(), "5001");
    let search = fake.calls("POST", "/crm/v3/objects/contacts/search");
    assert_eq!(search.len(), 1);
    let read = fake
        .log()
        .into_iter()
        .find(|l| l.method == "GET" && l.path.contains("ana.search"))
        .unwrap();
    // The search left right after the read; a search counted as a request would have
    // waited for the next request slot (5 s at 2 per 10 s).
    assert!(
        search[0].at.duration_since(read.at) < Duration::from_secs(2),
        "{:?} after the read ({:?} in all)",
        search[0].at.duration_since(read.at),
        started.elapsed()
    );
    assert_eq!(search[0].body["after"], "0");
    assert_eq!(search[0].body["sorts"], json!([]));
}

/// The wait a DAILY 429 on the contact read asks for, with the account in `zone`.
async fn daily_wait(zone: Option<&str>) -> Duration {
    use leadgate::crm::{Crm, CrmError, PersonInput};
    use leadgate::domain::{Email, PersonName, Phone};
    let fake = FakeHubspot::start().await;
    fake.set_time_zone(zone);
    let crm = adapter(&fake);
    fake.inject(
        "GET",
        "/crm/v3/objects/contacts/",
        Fault::Status {
            status: 429,
            body: rate_limited("DAILY", "You have reached your daily limit."),
            retry_after: None,
        },
        1,
    );
    let (name, email, phone) = (
        PersonName::from_trusted("Ana".into()),
        Email::from_trusted("ana.daily@example.com".into()),
        Phone::from_trusted("+573009998866".into()),
    );
    let p = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    match crm.upsert_person(&p).await {
        Err(CrmError::Transient {
            retry_after: Some(wait),
            ..
        }) => wait,
        other => panic!("{other:?}"),
    }
}

/// How long from now until a minute past the next midnight at this fixed offset.
fn until_midnight_at(offset_hours: i32) -> Duration {
    let zone = chrono::FixedOffset::east_opt(offset_hours * 3600).unwrap();
    let now = chrono::Utc::now();
    let next = (now.with_timezone(&zone).date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 1, 0)
        .unwrap()
        .and_local_timezone(zone)
        .unwrap();
    (next.with_timezone(&chrono::Utc) - now).to_std().unwrap()
}

#[tokio::test]
async fn hubspot_daily_limit_resets_at_the_accounts_midnight_else_at_utcs() {
    let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_secs(10);
    // Kiritimati is UTC+14 all year: its midnight is never the UTC one.
    let wait = daily_wait(Some("Pacific/Kiritimati")).await;
    assert!(
        close(wait, until_midnight_at(14)),
        "{wait:?} vs {:?}",
        until_midnight_at(14)
    );
    // The token may not read the account's details (403): UTC midnight.
    let wait = daily_wait(None).await;
    assert!(
        close(wait, until_midnight_at(0)),
        "{wait:?} vs {:?}",
        until_midnight_at(0)
    );
}
