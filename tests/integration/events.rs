//! Outbound events: a receiving server (wiremock) hears what it subscribed to and nothing
//! else, each request signed so the Standard Webhooks reference package (npm
//! `standardwebhooks`, when `LEADGATE_TEST_VENDOR_SDKS` has it) accepts it, retried through
//! an outage with the same `webhook-id`, and redelivered from `/admin` once dead.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::admin::{csrf_of, sign_in};
use crate::both_backends;
use crate::support::{eventually, location, spawn_with, Backend, Options, TestApp, ADMIN_PASSWORD};
use crate::vendor_tools::tool;

const SECRET_A: &str = "whsec_bGVhZGdhdGUgZXZlbnRzIHRlc3Qga2V5LCAzMiBiIQ==";
const SECRET_B: &str = "whsec_YW5vdGhlciBlbmRwb2ludCBrZXkgb2YgMzIgYnl0ZQ==";

/// `[[events.endpoints]]` for a receiver; `extra` is more of its keys.
fn endpoint(server: &MockServer, secret_env: &str, types: &[&str], extra: &str) -> String {
    let types: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "[[events.endpoints]]\nurl = \"{}/hooks\"\nsecret_env = \"{secret_env}\"\ntypes = [{}]\n{extra}\n",
        server.uri(),
        types.join(", ")
    )
}

async fn app_with(backend: Backend, toml: String) -> TestApp {
    let opts = Options {
        toml,
        env: vec![("HOOK_A", SECRET_A.into()), ("HOOK_B", SECRET_B.into())],
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn header<'a>(r: &'a Request, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// Event type → how many requests carried it.
async fn types_at(server: &MockServer) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in received(server).await {
        *seen
            .entry(body(&r)["type"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    seen
}

/// Whether the reference package accepts the request as signed with `secret`; None when
/// the package is not available (the test then says so and checks the rest).
fn reference_verifies(secret: &str, r: &Request, body: &[u8]) -> Option<bool> {
    let sdks = tool("LEADGATE_TEST_VENDOR_SDKS")?;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(body).unwrap();
    let out = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/vendor-sdk.cjs"))
        .args([
            "swh-verify",
            secret,
            header(r, "webhook-id"),
            header(r, "webhook-timestamp"),
            header(r, "webhook-signature"),
            file.path().to_str().unwrap(),
        ])
        .env("NODE_PATH", sdks)
        .output()
        .expect("node runs");
    Some(out.status.success())
}

async fn pay(app: &TestApp, email: &str) {
    let checkout = app.start_checkout("demo", "Ana Gómez", email).await;
    let back = app.press(&checkout, "approve").await;
    assert_eq!(app.get(&back).await.status(), 200);
}

const SUBSCRIBED: [&str; 4] = [
    "lead.created",
    "attempt.checkout_opened",
    "payment.approved",
    "deal.synced",
];

async fn a_form_lead_and_a_payment_reach_the_subscribers_signed(backend: Backend) {
    let a = receiver(200).await;
    let b = receiver(200).await;
    let toml = endpoint(&a, "HOOK_A", &SUBSCRIBED, "") + &endpoint(&b, "HOOK_B", &["payment.refunded"], "");
    let app = app_with(backend, toml).await;
    pay(&app, "ana@example.com").await;
    eventually("the four events at the subscribed endpoint", || async {
        types_at(&a).await.len() == SUBSCRIBED.len()
    })
    .await;
    app.settle().await;
    let want: BTreeMap<String, usize> = SUBSCRIBED.iter().map(|t| (t.to_string(), 1)).collect();
    assert_eq!(types_at(&a).await, want, "each event once");
    assert!(
        received(&b).await.is_empty(),
        "an endpoint not subscribed hears nothing"
    );

    let requests = received(&a).await;
    let ids: std::collections::BTreeSet<&str> = requests.iter().map(|r| header(r, "webhook-id")).collect();
    assert_eq!(ids.len(), requests.len(), "one webhook-id per event");
    for r in &requests {
        assert!(header(r, "webhook-id").starts_with("msg_"), "{:?}", r.headers);
        assert!(header(r, "webhook-signature").starts_with("v1,"));
        let text = String::from_utf8_lossy(&r.body);
        // No personal data unless the subscription asks for it.
        assert!(
            !text.contains("ana@example.com") && !text.contains("Ana") && !text.contains("person"),
            "{text}"
        );
        let b = body(r);
        assert!(
            b["data"]["lead_id"].is_string() && b["data"]["offer"] == "demo" && b["timestamp"].is_string(),
            "{b}"
        );
        match reference_verifies(SECRET_A, r, &r.body) {
            None => {}
            Some(ok) => {
                assert!(ok, "the reference package refused our signature on {text}");
                let tampered = text.replace("\"demo\"", "\"dem0\"");
                assert_eq!(
                    reference_verifies(SECRET_A, r, tampered.as_bytes()),
                    Some(false),
                    "tampered body"
                );
                assert_eq!(
                    reference_verifies(SECRET_B, r, &r.body),
                    Some(false),
                    "another endpoint's secret"
                );
            }
        }
    }
    let approved = requests
        .iter()
        .map(body)
        .find(|b| b["type"] == "payment.approved")
        .unwrap();
    assert_eq!(approved["data"]["status"], "approved");
    assert_eq!(approved["data"]["amount"]["minor"], 19_900_000);
    assert_eq!(approved["data"]["amount"]["currency"], "COP");
}

async fn personal_data_only_where_asked(backend: Backend) {
    let bare = receiver(200).await;
    let full = receiver(200).await;
    let toml = endpoint(&bare, "HOOK_A", &["lead.created"], "")
        + &endpoint(&full, "HOOK_B", &["lead.created"], "personal_data = true");
    let app = app_with(backend, toml).await;
    app.start_checkout("demo", "Bruno Souza", "bruno@example.com").await;
    eventually("both deliveries", || async {
        received(&bare).await.len() == 1 && received(&full).await.len() == 1
    })
    .await;
    let (b, f) = (&received(&bare).await[0], &received(&full).await[0]);
    let text = String::from_utf8_lossy(&b.body);
    assert!(
        !text.contains("bruno") && !text.contains("Bruno") && !text.contains("+57"),
        "{text}"
    );
    let person = &body(f)["data"]["person"];
    assert_eq!(person["email"], "bruno@example.com");
    assert_eq!(person["name"], "Bruno Souza");
    assert!(
        person["phone"].as_str().is_some_and(|p| p.starts_with("+57")),
        "{person}"
    );
    assert_eq!(header(b, "webhook-id"), header(f, "webhook-id"), "one event, one id");
    if let Some(ok) = reference_verifies(SECRET_B, f, &f.body) {
        assert!(ok);
    }
}

async fn an_outage_is_retried_until_delivered_with_the_same_id(backend: Backend) {
    let server = MockServer::start().await;
    // Two failures, then the receiver is back.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&server)
        .await;
    let app = app_with(backend, endpoint(&server, "HOOK_A", &["lead.created"], "")).await;
    app.start_checkout("demo", "Carla Dias", "carla@example.com").await;
    eventually("the third try", || async { received(&server).await.len() >= 3 }).await;
    app.settle().await;
    let tries = received(&server).await;
    assert_eq!(tries.len(), 3, "delivered once it answered 2xx, then no more");
    let id = header(&tries[0], "webhook-id");
    assert!(
        tries.iter().all(|r| header(r, "webhook-id") == id),
        "same webhook-id on every try"
    );
    assert!(tries.iter().all(|r| r.body == tries[0].body), "same body on every try");
    let lead = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    let d = leadgate::store::outbound::for_lead(&app.ctx.db, &lead).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state.as_str(), "delivered");
    assert_eq!(d[0].attempts, 3);
    assert_eq!(d[0].last_status, Some(204));
}

async fn a_dead_delivery_shows_on_admin_and_redelivers(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("receiver down"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let toml = endpoint(&server, "HOOK_A", &["lead.created"], "max_attempts = 1");
    let app = app_with(backend, toml).await;
    app.start_checkout("demo", "Dora Lima", "dora@example.com").await;
    eventually("the one try", || async { received(&server).await.len() == 1 }).await;
    app.settle().await;
    assert_eq!(received(&server).await.len(), 1, "no retry past max_attempts");
    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let html = app.get("/admin").await.text().await.unwrap();
    let row = html
        .split("<tr class=\"delivery dead\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no dead delivery on {html}"));
    assert!(
        row.contains("lead.created") && row.contains(&server.uri()) && row.contains("receiver down"),
        "{row}"
    );
    let action = row
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(action.ends_with("/redeliver"), "{action}");

    // A forged press does nothing.
    let forged = app.post_form(&action, &[("csrf", "not-the-token")]).await;
    assert_eq!(forged.status(), 403);
    app.settle().await;
    assert_eq!(received(&server).await.len(), 1);

    let res = app.post_form(&action, &[("csrf", &csrf_of(&html))]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin");
    eventually("the redelivery", || async { received(&server).await.len() == 2 }).await;
    app.settle().await;
    let tries = received(&server).await;
    assert_eq!(tries.len(), 2);
    assert_eq!(header(&tries[0], "webhook-id"), header(&tries[1], "webhook-id"));
    let html = app.get("/admin").await.text().await.unwrap();
    assert!(!html.contains("<tr class=\"delivery"), "delivered: off the list");
    // Pressing again (a stale page) sends nothing more.
    let again = app.post_form(&action, &[("csrf", &csrf_of(&html))]).await;
    assert_eq!(again.status(), 303);
    app.settle().await;
    assert_eq!(received(&server).await.len(), 2);
}

async fn a_follow_up_task_and_a_decline_are_events(backend: Backend) {
    let server = receiver(200).await;
    let toml = endpoint(&server, "HOOK_A", &["followup.created", "payment.declined"], "");
    let app = app_with(backend, toml).await;
    // `fast` follows up 1 s after an unpaid checkout, and at once after a decline.
    let checkout = app.start_checkout("fast", "Eva Rocha", "eva@example.com").await;
    eventually("the follow-up event", || async {
        types_at(&server).await.contains_key("followup.created")
    })
    .await;
    app.press(&checkout, "decline").await;
    eventually("the decline event", || async {
        types_at(&server).await.contains_key("payment.declined")
    })
    .await;
    app.settle().await;
    let bodies: Vec<Value> = received(&server).await.iter().map(body).collect();
    let mut followups: Vec<(Option<&str>, Option<u64>, Option<&str>)> = bodies
        .iter()
        .filter(|b| b["type"] == "followup.created")
        .map(|b| {
            (
                b["data"]["reason"].as_str(),
                b["data"]["step"].as_u64(),
                b["data"]["crm"].as_str(),
            )
        })
        .collect();
    followups.sort();
    // The abandoned checkout's task, then the decline's: one event per task.
    let want = vec![
        (Some("abandoned"), Some(0), Some("builtin")),
        (Some("declined"), None, Some("builtin")),
    ];
    assert_eq!(followups, want, "{bodies:?}");
    assert_eq!(app.tasks().await.len(), 2);
    let declined: Vec<&Value> = bodies.iter().filter(|b| b["type"] == "payment.declined").collect();
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0]["data"]["status"], "declined");
    assert_eq!(declined[0]["data"]["amount"]["currency"], "USD");
}

both_backends!(
    a_follow_up_task_and_a_decline_are_events,
    a_form_lead_and_a_payment_reach_the_subscribers_signed,
    personal_data_only_where_asked,
    an_outage_is_retried_until_delivered_with_the_same_id,
    a_dead_delivery_shows_on_admin_and_redelivers,
    a_refund_and_a_dispute_are_events_once_each,
);

/// The money after approval, as the gateway reports it to the one place every source goes
/// through: a refund and a dispute are one event each, and a replayed report sends nothing.
async fn a_refund_and_a_dispute_are_events_once_each(backend: Backend) {
    use leadgate::domain::reversal::{Dispute, DisputeStage, Report};
    use leadgate::domain::PaymentStatus;
    use leadgate::gateways::Observation;
    use leadgate::jobs::settle::{self, Source};
    use leadgate::store::attempts;

    let server = receiver(204).await;
    let toml = endpoint(&server, "HOOK_A", &["payment.refunded", "payment.disputed"], "");
    let app = app_with(backend, toml).await;
    let checkout = app.start_checkout("demo", "Ana Pérez", "ana.money@example.com").await;
    let back = app.press(&checkout, "approve").await;
    let id = crate::support::attempt_id_of(&back);
    app.settle().await;
    let apply = |after: Report| {
        let app = &app;
        let id = id.clone();
        async move {
            let current = attempts::get(&app.ctx.db, &id).await.unwrap().unwrap();
            let seen = Observation {
                after_sale: Some(after),
                detail: Some("approved".into()),
                ..Observation::status(Some(id.clone()), current.gateway_ref.clone(), PaymentStatus::Approved)
            };
            settle::apply(&app.ctx, current, &seen, Source::Webhook, None)
                .await
                .unwrap();
            app.ctx.queue.wake();
            app.settle().await;
        }
    };
    let refund = Report {
        refunded_minor: 5_000_000,
        refund_reason: Some("requested_by_customer".into()),
        ..Report::default()
    };
    apply(refund.clone()).await;
    apply(refund.clone()).await;
    let disputed = Report {
        dispute: Some(Dispute {
            stage: DisputeStage::Open,
            due_at: None,
            reason: Some("fraudulent".into()),
        }),
        ..refund
    };
    apply(disputed.clone()).await;
    apply(disputed).await;
    eventually("both events", || async { received(&server).await.len() >= 2 }).await;
    let seen = types_at(&server).await;
    assert_eq!(
        seen,
        BTreeMap::from([("payment.disputed".to_owned(), 1), ("payment.refunded".to_owned(), 1)]),
        "one each, replays send nothing"
    );
    let refunded = received(&server)
        .await
        .into_iter()
        .map(|r| body(&r))
        .find(|b| b["type"] == "payment.refunded")
        .unwrap();
    assert_eq!(refunded["data"]["attempt_id"], id.as_str(), "{refunded}");
}
