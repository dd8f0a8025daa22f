//! Money after approval on Pipedrive: a Wompi payment approved, then voided, moves its
//! deal as the offer's `on_refund` says, leaves one reversal note however often the
//! event comes, and writes the payment's facts in the configured custom fields.

use serde_json::{json, Value};

use super::*;
use crate::crm::wompi::{self, FakeWompi};

/// `[crm.fields]` lines after the fake's own: the two payment roles its account has.
const PAYMENT_FIELDS: &str = "payment_status = \"Payment status\"\namount_refunded = \"Amount refunded\"\n";

async fn app_on_wompi(backend: Backend, fake: &FakePipedrive, gateway: &FakeWompi, on_refund: &str) -> TestApp {
    let toml = format!("{}{PAYMENT_FIELDS}{}", fake.toml(""), wompi::toml(gateway, on_refund));
    let mut env = vec![("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN.to_string())];
    env.extend(FakeWompi::env());
    crate::crm::app_with_crm(backend, toml, env, 4).await
}

/// The deal PATCHes that carried custom fields.
fn field_patches(fake: &FakePipedrive, deal_id: &Value) -> Vec<Value> {
    fake.seen("PATCH", &format!("/api/v2/deals/{deal_id}"))
        .into_iter()
        .filter(|s| s.body.get("custom_fields").is_some())
        .map(|s| s.body["custom_fields"].clone())
        .collect()
}

/// Approves, then voids the payment (the VOIDED event delivered twice as is, and once
/// more as a fresh event); returns the deal once every job is done.
async fn approve_then_void(app: &TestApp, fake: &FakePipedrive, gateway: &FakeWompi) -> Value {
    let attempt = wompi::buy(app).await;
    eventually("the deal to exist", || async { fake.deals().len() == 1 }).await;
    let ts = crate::gateways::now_s();
    let approved = gateway.transaction("1234-1700000000-77001", &attempt, "APPROVED", wompi::AMOUNT_IN_CENTS);
    assert_eq!(wompi::send(app, &wompi::event(&approved, ts)).await, 200);
    eventually("the deal to be won", || async { fake.deals()[0]["status"] == "won" }).await;
    app.settle().await;
    let voided = gateway.transaction("1234-1700000000-77001", &attempt, "VOIDED", wompi::AMOUNT_IN_CENTS);
    let event = wompi::event(&voided, ts + 1);
    assert_eq!(wompi::send(app, &event).await, 200);
    assert_eq!(wompi::send(app, &event).await, 200, "a replay is answered 200");
    app.settle().await;
    assert_eq!(wompi::send(app, &wompi::event(&voided, ts + 2)).await, 200);
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(deals.len(), 1, "still one deal");
    deals[0].clone()
}

both_backends!(pipedrive_voided_payment_loses_the_deal_with_one_note_and_its_fields);

async fn pipedrive_voided_payment_loses_the_deal_with_one_note_and_its_fields(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let gateway = FakeWompi::start().await;
    let app = app_on_wompi(backend, &fake, &gateway, "lost").await;
    let deal = approve_then_void(&app, &fake, &gateway).await;

    assert_eq!(deal["status"], "lost");
    assert_eq!(deal["lost_reason"], "Payment voided");
    let patches = fake.seen("PATCH", &format!("/api/v2/deals/{}", deal["id"]));
    let moves: Vec<&Value> = patches
        .iter()
        .map(|s| &s.body)
        .filter(|b| b.get("status").is_some())
        .collect();
    assert_eq!(
        moves,
        [
            &json!({ "status": "won" }),
            &json!({ "status": "lost", "lost_reason": "Payment voided" })
        ]
    );
    let notes = fake.state().notes.clone();
    assert_eq!(notes.len(), 2, "one for the approval, one for the void: {notes:?}");
    assert!(notes.iter().all(|n| n["deal_id"] == deal["id"]));

    let fields = field_patches(&fake, &deal["id"]);
    // The approval's status word is the job's to choose; the void's is the point here.
    assert_eq!(fields.len(), 2, "once per change: {fields:?}");
    assert_eq!(fields[0][REFUNDED_KEY], json!(0.0), "{fields:?}");
    assert_eq!(
        fields[1],
        json!({ STATUS_KEY: "voided", REFUNDED_KEY: 95000.0 }),
        "only the mapped roles, the amount as a number"
    );
    assert_eq!(deal["custom_fields"][STATUS_KEY], "voided");
    assert_eq!(
        deal["custom_fields"][ATTEMPT_KEY].as_str().map(str::len),
        Some(36),
        "writing the payment fields keeps our attempt tag"
    );
    assert!(dead_jobs(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_voided_payment_reopens_the_deal_in_the_on_refund_stage() {
    let fake = FakePipedrive::start().await;
    let gateway = FakeWompi::start().await;
    let app = app_on_wompi(Backend::Sqlite, &fake, &gateway, "stage:Refunded").await;
    let deal = approve_then_void(&app, &fake, &gateway).await;

    assert_eq!(deal["status"], "open");
    assert_eq!(deal["stage_id"], REFUNDED_STAGE_ID);
    let reopened: Vec<Value> = fake
        .seen("PATCH", &format!("/api/v2/deals/{}", deal["id"]))
        .into_iter()
        .map(|s| s.body)
        .filter(|b| b["status"] == "open")
        .collect();
    assert_eq!(
        reopened,
        [json!({ "status": "open", "stage_id": REFUNDED_STAGE_ID })],
        "moved once"
    );
    assert_eq!(fake.state().notes.len(), 2);
    assert_eq!(
        field_patches(&fake, &deal["id"]).last(),
        Some(&json!({ STATUS_KEY: "voided", REFUNDED_KEY: 95000.0 }))
    );
    assert!(dead_jobs(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipedrive_crm_check_refuses_an_on_refund_stage_the_pipeline_lacks() {
    let fake = FakePipedrive::start().await;
    let toml = crate::crm::config_with_stage("Checkout started", &fake.toml("")).replace(
        "stage = \"Checkout started\"\n",
        "stage = \"Checkout started\"\non_refund = \"stage:Reembolsado\"\n",
    );
    assert!(toml.contains("on_refund"), "{toml}");
    let (ok, out) = crate::crm::crm_check(&toml, SharedPipedrive::TOKEN).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("on_refund: stage \"Reembolsado\" not found in pipeline \"Sales\""),
        "{out}"
    );
}
