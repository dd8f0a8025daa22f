//! Payment links from HubSpot: a workflow's "Send a webhook" for a deal in the link stage
//! gets one link, bound to that deal, written back once; replays and forgeries (a bad or
//! stale signature) change nothing; paying wins that deal.

use leadgate::crm::hubspot::webhook::sign_v3;

use super::*;
use crate::crm::links::{deal_of, inbox, links_and_attempts, links_toml, post_webhook, status_of};

const SECRET: &str = "hs-client-secret-4b2e";
const DEAL_ID: &str = "8001";
const CONTACT_ID: &str = "7001";
const LINK_STAGE: &str = "qualifiedtobuy";

both_backends!(a_workflow_webhook_gets_one_link_and_paying_it_wins_that_deal);

fn seed(fake: &FakeHubspot) {
    let mut s = fake.state.lock().unwrap();
    let props = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    s.contacts.push(Object {
        id: CONTACT_ID.into(),
        properties: props(&[
            ("email", "Bruno@Example.com"),
            ("firstname", "Bruno"),
            ("lastname", "Souza"),
            ("phone", "+55 11 91234 5678"),
        ]),
        associations: vec![],
        hidden: false,
        archived: false,
    });
    s.deals.push(Object {
        id: DEAL_ID.into(),
        properties: props(&[
            ("dealname", "Bruno — Curso"),
            ("pipeline", PIPELINE_ID),
            ("dealstage", LINK_STAGE),
            ("amount", "150000"),
            ("deal_currency_code", "COP"),
        ]),
        associations: vec![(CONTACT_ID.into(), 3)],
        hidden: false,
        archived: false,
    });
}

fn signed(app: &TestApp, body: &str, ts: i64) -> Vec<(&'static str, String)> {
    let uri = app.ctx.url("/crm/hubspot/webhook");
    let ts = ts.to_string();
    vec![
        (
            "x-hubspot-signature-v3",
            sign_v3(SECRET.as_bytes(), "POST", &uri, body.as_bytes(), &ts),
        ),
        ("x-hubspot-request-timestamp", ts),
    ]
}

fn count(fake: &FakeHubspot, method: &str, path: &str, has: &str) -> usize {
    let s = fake.state.lock().unwrap();
    s.log
        .iter()
        .filter(|l| l.method == method && l.path == path && l.body.to_string().contains(has))
        .count()
}

async fn a_workflow_webhook_gets_one_link_and_paying_it_wins_that_deal(backend: Backend) {
    let fake = FakeHubspot::start().await;
    seed(&fake);
    let toml = format!(
        "{}payment_link = \"Payment link\"\n{}",
        fake.toml(),
        links_toml("Qualified To Buy", "hubspot_auth = \"signature\"")
    );
    let env = vec![
        ("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string()),
        ("LEADGATE_HUBSPOT_CLIENT_SECRET", SECRET.to_string()),
    ];
    let app = crate::crm::app_with_crm(backend, toml, env, 4).await;
    let hook = "/crm/hubspot/webhook";
    let body =
        format!(r#"{{"hs_object_id":"{DEAL_ID}","dealstage":"{LINK_STAGE}","hs_lastmodifieddate":"1764600000000"}}"#);
    let now = leadgate::clock::now_ms();

    // Forged: unsigned, signed with another secret, signed over another body, stale.
    let mut wrong_key = signed(&app, &body, now);
    wrong_key[0].1 = sign_v3(b"guess", "POST", &app.ctx.url(hook), body.as_bytes(), &now.to_string());
    let other_body = signed(&app, r#"{"hs_object_id":"1"}"#, now);
    let stale = signed(&app, &body, now - 6 * 60 * 1000);
    for headers in [vec![], wrong_key, other_body, stale] {
        assert_eq!(status_of(post_webhook(&app, hook, &headers, &body).await).await.0, 401);
    }
    assert!(inbox(&app).await.is_empty(), "nothing stored");

    let headers = signed(&app, &body, now);
    let (status, answer) = status_of(post_webhook(&app, hook, &headers, &body).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    app.settle().await;

    let (links, attempts) = links_and_attempts(&app).await;
    assert_eq!((links.len(), attempts.len()), (1, 1));
    let binding = links[0].crm.clone().expect("bound to the deal");
    assert_eq!(
        (binding.deal_id.as_str(), binding.person_id.as_deref()),
        (DEAL_ID, Some(CONTACT_ID))
    );
    assert_eq!(deal_of(&app, &attempts[0].id).await.as_deref(), Some(DEAL_ID));
    let checkout = attempts[0].checkout_url.clone().expect("one checkout opened");
    let deal_path = format!("/crm/v3/objects/deals/{DEAL_ID}");
    let written = || count(&fake, "PATCH", &deal_path, "leadgate_payment_link");
    let notes = || count(&fake, "POST", "/crm/v3/objects/notes", "/l/");
    assert_eq!((written(), notes()), (1, 1), "the link written back once");

    // Replayed within the window: a duplicate, nothing new.
    let (status, answer) = status_of(post_webhook(&app, hook, &headers, &body).await).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")));
    app.settle().await;
    assert_eq!(inbox(&app).await.len(), 1);
    let (links, attempts) = links_and_attempts(&app).await;
    assert_eq!((links.len(), attempts.len()), (1, 1));
    assert_eq!((written(), notes()), (1, 1));

    // Paid: that deal is won; no deal and no contact was ever created.
    let back = app.press(&checkout, "approve").await;
    app.get(&back).await;
    eventually("the bound deal to be won", || async {
        count(&fake, "PATCH", &deal_path, WON_ID) == 1
    })
    .await;
    app.settle().await;
    assert_eq!(count(&fake, "POST", "/crm/v3/objects/deals", ""), 0, "no deal created");
    assert_eq!(
        count(&fake, "POST", "/crm/v3/objects/contacts", ""),
        0,
        "no contact created"
    );
}
