//! Payment links from Pipedrive: a deal moved to the link stage gets one link, bound to
//! it, written back once; replays and forgeries change nothing; paying wins that deal.

use base64::Engine;
use serde_json::json;

use super::*;
use crate::crm::links::{deal_of, inbox, links_and_attempts, links_toml, post_webhook, status_of};

const USER: &str = "pd-hook";
const PASSWORD: &str = "hook-pass-9c1e";
const DEAL_ID: i64 = 301;
const PERSON_ID: i64 = 201;

both_backends!(a_deal_entering_the_link_stage_gets_one_link_and_paying_it_wins_that_deal);

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A v2 `change.deal` webhook: the deal now in `stage`, before in `previous`.
fn moved(event_id: &str, stage: i64, previous: i64) -> String {
    json!({
        "meta": {"id": event_id, "action": "change", "entity": "deal", "entity_id": DEAL_ID.to_string(),
                 "version": "2.0", "attempt": 1, "host": "acme.pipedrive.com"},
        "data": {"id": DEAL_ID, "stage_id": stage, "pipeline_id": PIPELINE_ID, "person_id": PERSON_ID,
                 "value": 150000, "currency": "COP", "status": "open"},
        "previous": {"stage_id": previous},
    })
    .to_string()
}

async fn app_with_links(backend: Backend, fake: &FakePipedrive) -> TestApp {
    let toml = format!(
        "{}payment_link = \"Payment link\"\n{}",
        fake.toml(""),
        links_toml("Send payment link", "")
    );
    let env = vec![
        ("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN.to_string()),
        ("LEADGATE_PIPEDRIVE_WEBHOOK_USER", USER.to_string()),
        ("LEADGATE_PIPEDRIVE_WEBHOOK_PASSWORD", PASSWORD.to_string()),
    ];
    crate::crm::app_with_crm(backend, toml, env, 4).await
}

/// The deal and its person, as a salesperson made them in Pipedrive.
fn seed(fake: &FakePipedrive) {
    let mut s = fake.state();
    s.persons.push(json!({"id": PERSON_ID, "name": "Carla Gómez",
        "emails": [{"value": "carla@example.com", "primary": true, "label": "work"}],
        "phones": [{"value": "+57 300 111 2233", "primary": true, "label": "mobile"}]}));
    s.deals.push(
        json!({"id": DEAL_ID, "title": "Carla — Curso", "person_id": PERSON_ID, "value": 150000,
        "currency": "COP", "pipeline_id": PIPELINE_ID, "stage_id": LINK_STAGE_ID, "status": "open",
        "custom_fields": {}}),
    );
}

/// PATCHes of the deal that carry the link, and notes on it.
fn write_backs(fake: &FakePipedrive) -> (usize, usize) {
    let path = format!("/api/v2/deals/{DEAL_ID}");
    let patches = fake
        .seen("PATCH", &path)
        .iter()
        .filter(|s| {
            s.body["custom_fields"][LINK_KEY]
                .as_str()
                .is_some_and(|u| u.contains("/l/"))
        })
        .count();
    (patches, fake.seen("POST", "/api/v1/notes").len())
}

async fn a_deal_entering_the_link_stage_gets_one_link_and_paying_it_wins_that_deal(backend: Backend) {
    let fake = FakePipedrive::start().await;
    seed(&fake);
    let app = app_with_links(backend, &fake).await;
    let hook = "/crm/pipedrive/webhook";
    let auth = [("authorization", basic(USER, PASSWORD))];

    // Forged: no auth, a wrong password, a wrong user. Nothing is stored.
    let body = moved("evt-1", LINK_STAGE_ID, STAGE_ID);
    for headers in [
        vec![],
        vec![("authorization", basic(USER, "guess"))],
        vec![("authorization", basic("admin", PASSWORD))],
    ] {
        let (status, _) = status_of(post_webhook(&app, hook, &headers, &body).await).await;
        assert_eq!(status, 401);
    }
    assert!(inbox(&app).await.is_empty());
    assert!(links_and_attempts(&app).await.0.is_empty());

    // A change that is not a stage move makes nothing.
    let other = moved("evt-0", LINK_STAGE_ID, LINK_STAGE_ID);
    assert_eq!(status_of(post_webhook(&app, hook, &auth, &other).await).await.0, 200);

    let (status, answer) = status_of(post_webhook(&app, hook, &auth, &body).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    app.settle().await;

    let (links, attempts) = links_and_attempts(&app).await;
    assert_eq!(links.len(), 1, "one link");
    let binding = links[0].crm.clone().expect("bound to the deal");
    assert_eq!(
        (binding.deal_id.as_str(), binding.person_id.as_deref()),
        ("301", Some("201"))
    );
    assert_eq!(links[0].amount.amount_minor(), 15_000_000, "the deal's value");
    assert_eq!(attempts.len(), 1, "one attempt");
    assert_eq!(deal_of(&app, &attempts[0].id).await.as_deref(), Some("301"));
    let checkout = attempts[0].checkout_url.clone().expect("one checkout opened");
    assert_eq!(write_backs(&fake), (1, 1), "the link written back once");
    let note = fake.seen("POST", "/api/v1/notes")[0].body.clone();
    assert_eq!(note["deal_id"], DEAL_ID);
    assert!(note["content"].as_str().unwrap().contains("/l/"), "{note}");
    let outcomes = inbox(&app).await;
    assert!(
        outcomes
            .iter()
            .any(|(id, o)| id == "evt-0" && o.as_deref() == Some("ignored: not entering the link stage")),
        "{outcomes:?}"
    );

    // Replayed: the same event again is a duplicate; a second trigger reuses the link.
    let (status, answer) = status_of(post_webhook(&app, hook, &auth, &body).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")));
    let again = moved("evt-2", LINK_STAGE_ID, STAGE_ID);
    assert_eq!(status_of(post_webhook(&app, hook, &auth, &again).await).await.0, 200);
    app.settle().await;
    let (links, attempts) = links_and_attempts(&app).await;
    assert_eq!((links.len(), attempts.len()), (1, 1));
    assert_eq!(write_backs(&fake), (1, 1), "nothing written twice");
    assert_eq!(inbox(&app).await.len(), 3);

    // Paid: that deal is won; no deal and no person was ever created.
    let back = app.press(&checkout, "approve").await;
    app.get(&back).await;
    eventually("the bound deal to be won", || async {
        fake.deals().iter().any(|d| d["id"] == DEAL_ID && d["status"] == "won")
    })
    .await;
    app.settle().await;
    assert!(fake.seen("POST", "/api/v2/deals").is_empty(), "no deal created");
    assert!(fake.seen("POST", "/api/v2/persons").is_empty(), "no person created");
    assert_eq!(fake.deals().len(), 1);

    // A person with no usable email: no link, a note saying why, no retries.
    {
        let mut s = fake.state();
        s.persons.push(
            json!({"id": 202, "name": "Dario", "emails": [{"value": "dario-at-example", "primary": true}],
            "phones": [{"value": "+57 300 111 4455", "primary": true}]}),
        );
        s.deals
            .push(json!({"id": 302, "person_id": 202, "value": 150000, "currency": "COP",
            "pipeline_id": PIPELINE_ID, "stage_id": LINK_STAGE_ID, "status": "open", "custom_fields": {}}));
    }
    let bad = moved("evt-3", LINK_STAGE_ID, STAGE_ID)
        .replace("301", "302")
        .replace(":201", ":202");
    assert_eq!(status_of(post_webhook(&app, hook, &auth, &bad).await).await.0, 200);
    app.settle().await;
    assert_eq!(links_and_attempts(&app).await.0.len(), 1, "no link for deal 302");
    let notes: Vec<Value> = fake.seen("POST", "/api/v1/notes").into_iter().map(|s| s.body).collect();
    let why: Vec<&Value> = notes.iter().filter(|n| n["deal_id"] == 302).collect();
    assert_eq!(why.len(), 1, "{notes:?}");
    assert!(why[0]["content"].as_str().unwrap().contains("email válido"), "{why:?}");
    let outcomes = inbox(&app).await;
    assert!(
        outcomes
            .iter()
            .any(|(id, o)| id == "evt-3" && o.as_deref() == Some("not made: invalid_email")),
        "{outcomes:?}"
    );
    assert!(dead_jobs(&app).await.is_empty());
    // The operator sees the webhook and why it made no link.
    let password = crate::support::ADMIN_PASSWORD;
    assert_eq!(crate::admin::sign_in(&app, password).await.status(), 303);
    let admin = app.get("/admin").await.text().await.unwrap();
    let row = admin.split("<tr class=\"crm-event\">").find(|r| r.contains("evt-3"));
    assert!(row.is_some_and(|r| r.contains("not made: invalid_email")), "{admin}");
}
