//! Money after approval on HubSpot: a Wompi payment approved, then voided, moves its
//! deal to the offer's `on_refund` stage, leaves one reversal note however often the
//! event comes, and writes the payment's facts in the configured deal properties.

use super::*;
use crate::crm::wompi::{self, FakeWompi};

/// `[crm.fields]` lines after the fake's own: the two payment roles its account has.
const PAYMENT_FIELDS: &str = "payment_status = \"Payment status\"\namount_refunded = \"leadgate_amount_refunded\"\n";

fn deal_patches(fake: &FakeHubspot, deal_id: &str) -> Vec<Value> {
    fake.calls("PATCH", &format!("/crm/v3/objects/deals/{deal_id}"))
        .into_iter()
        .map(|l| l.body["properties"].clone())
        .collect()
}

both_backends!(hubspot_voided_payment_moves_the_deal_to_the_on_refund_stage_with_one_note);

async fn hubspot_voided_payment_moves_the_deal_to_the_on_refund_stage_with_one_note(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let gateway = FakeWompi::start().await;
    let toml = format!(
        "{}{PAYMENT_FIELDS}{}",
        fake.toml(),
        wompi::toml(&gateway, "stage:Refunded")
    );
    let mut env = vec![("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string())];
    env.extend(FakeWompi::env());
    let app = crate::crm::app_with_crm(backend, toml, env, 4).await;

    let attempt = wompi::buy(&app).await;
    eventually("the deal to exist", || async { fake.deals().len() == 1 }).await;
    let deal_id = fake.deals()[0].id.clone();
    let ts = crate::gateways::now_s();
    let approved = gateway.transaction("1234-1700000000-88001", &attempt, "APPROVED", wompi::AMOUNT_IN_CENTS);
    assert_eq!(wompi::send(&app, &wompi::event(&approved, ts)).await, 200);
    eventually("the deal to be won", || async {
        fake.deals()[0].properties.get("dealstage").map(String::as_str) == Some(WON_ID)
    })
    .await;
    app.settle().await;
    let voided = gateway.transaction("1234-1700000000-88001", &attempt, "VOIDED", wompi::AMOUNT_IN_CENTS);
    let event = wompi::event(&voided, ts + 1);
    assert_eq!(wompi::send(&app, &event).await, 200);
    assert_eq!(wompi::send(&app, &event).await, 200, "a replay is answered 200");
    app.settle().await;
    assert_eq!(wompi::send(&app, &wompi::event(&voided, ts + 2)).await, 200);
    app.settle().await;

    let deals = fake.deals();
    assert_eq!(deals.len(), 1);
    let props = &deals[0].properties;
    assert_eq!(props.get("dealstage").map(String::as_str), Some(REFUNDED_ID));
    assert_eq!(props.get("leadgate_payment_status").map(String::as_str), Some("voided"));
    assert_eq!(
        props.get("leadgate_amount_refunded").map(String::as_str),
        Some("95000.00")
    );
    let patches = deal_patches(&fake, &deal_id);
    let stages: Vec<&Value> = patches.iter().filter_map(|p| p.get("dealstage")).collect();
    assert_eq!(stages, [&json!(WON_ID), &json!(REFUNDED_ID)], "moved once each");
    let fields: Vec<&Value> = patches
        .iter()
        .filter(|p| p.get("leadgate_payment_status").is_some())
        .collect();
    assert_eq!(fields.len(), 2, "once per change: {patches:?}");
    assert_eq!(
        fields[1],
        &json!({ "leadgate_payment_status": "voided", "leadgate_amount_refunded": "95000.00" }),
        "only the mapped properties"
    );
    let notes = fake.notes();
    assert_eq!(notes.len(), 2, "one for the approval, one for the void");
    assert!(notes.iter().all(|n| has_association(n, &deal_id, 214)));
    let dead = jobs(&app)
        .await
        .into_iter()
        .filter(|j| j.state.as_str() == "dead")
        .count();
    assert_eq!(dead, 0);
}
