//! Webhook ingest: signatures, duplicates, out-of-order and unknown references.

use serde_json::json;

use crate::both_backends;
use crate::support::{eventually, spawn, Backend, TestApp};
use leadgate::gateways::sandbox::SIGNATURE_HEADER;

both_backends!(
    duplicate_webhook_changes_nothing,
    late_pending_never_overwrites_approved,
    bad_or_missing_signature_is_401_and_stores_nothing,
    unknown_reference_is_kept_not_dropped,
    an_event_is_queued_under_the_lead_of_the_attempt_it_names,
);

fn event(id: &str, reference: &str, status: &str) -> Vec<u8> {
    let ev = json!({"id": id, "type": "payment.updated", "created": 0,
        "data": {"payment_id": "sbx_test", "reference": reference, "status": status}});
    serde_json::to_vec(&ev).unwrap()
}

async fn send(app: &TestApp, body: &[u8], signature: Option<String>) -> reqwest::Response {
    let mut req = app.http.post(app.url("/webhooks/sandbox")).body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    req.send().await.unwrap()
}

fn sign(app: &TestApp, body: &[u8]) -> Option<String> {
    Some(app.ctx.sandbox.sign(body, chrono::Utc::now().timestamp()))
}

async fn inbox_count(app: &TestApp, reference: &str) -> i64 {
    leadgate::store::inbox::count_for_reference(&app.ctx.db, "sandbox", reference)
        .await
        .unwrap()
}

async fn started_attempt(app: &TestApp) -> String {
    let checkout = app.start_checkout("demo", "Diego Ruiz", "diego@example.com").await;
    let payment = app
        .ctx
        .sandbox
        .payment(checkout.rsplit('/').next().unwrap())
        .await
        .unwrap();
    payment.reference
}

async fn duplicate_webhook_changes_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let reference = started_attempt(&app).await;
    let body = event("evt_dup_1", &reference, "APPROVED");
    let sig = sign(&app, &body);
    let first = send(&app, &body, sig.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<serde_json::Value>().await.unwrap()["status"], "accepted");
    eventually("the deal to be won", || async { app.deals().await[0].status == "won" }).await;

    let again = send(&app, &body, sig).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(inbox_count(&app, &reference).await, 1);
    app.settle().await;
    let lead = &app.leads().await[0];
    assert_eq!(lead["attempts"][0]["status"], "approved");
    assert_eq!(app.deals().await.len(), 1);
}

async fn late_pending_never_overwrites_approved(backend: Backend) {
    let app = spawn(backend).await;
    let reference = started_attempt(&app).await;
    for (id, status) in [("evt_a", "APPROVED"), ("evt_p", "PENDING"), ("evt_d", "DECLINED")] {
        let body = event(id, &reference, status);
        assert_eq!(send(&app, &body, sign(&app, &body)).await.status(), 200);
    }
    app.settle().await;
    assert_eq!(inbox_count(&app, &reference).await, 3, "every event is kept");
    let lead = &app.leads().await[0];
    assert_eq!(lead["attempts"][0]["status"], "approved");
    assert_eq!(lead["attempts"][0]["deal_status"], "won");
    assert!(app.tasks().await.is_empty(), "a stale decline opens no follow-up");
}

async fn bad_or_missing_signature_is_401_and_stores_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let reference = started_attempt(&app).await;
    let body = event("evt_forged", &reference, "APPROVED");
    let good = sign(&app, &body).unwrap();
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let cases = [
        (body.clone(), None),
        (body.clone(), Some("t=1,v1=00".to_string())),
        (body.clone(), Some("garbage".to_string())),
        (body.clone(), Some(good.replace("v1=", "v1=ff"))),
        (tampered, Some(good.clone())),
        // A correct signature made long ago is a replay.
        (
            body.clone(),
            Some(app.ctx.sandbox.sign(&body, chrono::Utc::now().timestamp() - 3600)),
        ),
    ];
    for (body, sig) in cases {
        let res = send(&app, &body, sig.clone()).await;
        assert_eq!(res.status(), 401, "signature {sig:?}");
    }
    assert_eq!(inbox_count(&app, &reference).await, 0);
    assert_eq!(app.leads().await[0]["attempts"][0]["status"], "redirected");

    assert_eq!(leadgate::store::inbox::count(&app.ctx.db).await.unwrap(), 0);

    // Validly signed garbage is a 400; being signed, its raw bytes are kept once, for the
    // operator, marked unreadable, and nothing is applied.
    let junk = b"{not json".to_vec();
    assert_eq!(send(&app, &junk, sign(&app, &junk)).await.status(), 400);
    assert_eq!(send(&app, &junk, sign(&app, &junk)).await.status(), 400);
    let kept = leadgate::store::inbox::unapplied(&app.ctx.db, 10).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].outcome, "unreadable");
    assert!(kept[0].event_id.starts_with("unreadable:"), "{}", kept[0].event_id);
    let row = leadgate::store::inbox::by_event_id(&app.ctx.db, "sandbox", &kept[0].event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.body, junk);
    assert!(row.processed_at.is_some(), "no job will try to apply it");
    app.settle().await;
    assert_eq!(app.leads().await[0]["attempts"][0]["status"], "redirected");
    let unknown = app
        .http
        .post(app.url("/webhooks/paypal"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

async fn unknown_reference_is_kept_not_dropped(backend: Backend) {
    let app = spawn(backend).await;
    let body = event("evt_orphan", "no-such-attempt", "APPROVED");
    assert_eq!(send(&app, &body, sign(&app, &body)).await.status(), 200);
    app.settle().await;
    assert_eq!(inbox_count(&app, "no-such-attempt").await, 1);
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "reported and kept, not a failing job: {dead:?}");
    // Reported: the operator sees it on the admin page and in the metrics.
    let ok = crate::admin::sign_in(&app, crate::support::ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), 303);
    let admin = app.get("/admin").await.text().await.unwrap();
    assert!(
        admin.contains("evt_orphan") && admin.contains("unknown_reference"),
        "{admin}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"leadgate_webhook_unknown_references_total{gateway="sandbox"} 1"#),
        "{metrics}"
    );
}

both_backends!(signed_event_with_nul_is_stored_and_applied);

/// PostgreSQL's TEXT cannot hold U+0000, SQLite's can: a signed event carrying one in its
/// event id and payment id is still accepted, kept byte for byte, and applied.
async fn signed_event_with_nul_is_stored_and_applied(backend: Backend) {
    let app = spawn(backend).await;
    let reference = started_attempt(&app).await;
    let body = format!(
        r#"{{"id":"evt_\u0000nul","type":"payment.updated","created":0,"data":{{"payment_id":"sbx_\u0000x","reference":"{reference}","status":"APPROVED"}}}}"#
    )
    .into_bytes();
    let res = send(&app, &body, sign(&app, &body)).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    assert_eq!(inbox_count(&app, &reference).await, 1);
    eventually("the deal to be won", || async { app.deals().await[0].status == "won" }).await;
    let lead = &app.leads().await[0];
    assert_eq!(lead["attempts"][0]["status"], "approved");
    // Alike on both backends: the raw body kept byte for byte as signed, the fields we
    // store as text with the NUL made visible.
    let stored = leadgate::store::inbox::by_event_id(&app.ctx.db, "sandbox", "evt_\u{FFFD}nul")
        .await
        .unwrap()
        .expect("stored under its storable id");
    assert_eq!(stored.body, body);
    let attempt = leadgate::store::attempts::get(&app.ctx.db, &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt.gateway_ref.as_deref(), Some("sbx_\u{FFFD}x"));
    let again = send(&app, &body, sign(&app, &body)).await;
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["status"], "duplicate");
}

both_backends!(over_long_event_ids_are_refused_and_store_nothing);

/// No vendor's event id is 600 chars: refused with a precise 4xx, nothing stored, nothing
/// applied. One char under the cap is a real (if odd) event and is kept.
async fn over_long_event_ids_are_refused_and_store_nothing(backend: Backend) {
    let max = leadgate::domain::edge::EVENT_ID_MAX_CHARS;
    let app = spawn(backend.clone()).await;
    let reference = started_attempt(&app).await;
    let body = event(&"e".repeat(max + 1), &reference, "APPROVED");
    let res = send(&app, &body, sign(&app, &body)).await;
    assert_eq!(res.status(), 422);
    let error = res.json::<serde_json::Value>().await.unwrap()["error"].to_string();
    assert!(error.contains("event id is longer than 512"), "{error}");
    let body = event(&"é".repeat(max), &reference, "PENDING");
    assert_eq!(send(&app, &body, sign(&app, &body)).await.status(), 200);
    assert_eq!(inbox_count(&app, &reference).await, 1, "only the one within the cap");
    app.settle().await;
    assert_eq!(app.leads().await[0]["attempts"][0]["status"], "pending");
}

/// The event's job carries its lead, so the worker applies one payment's events one at a
/// time (a stale decline cannot race the approval it follows).
async fn an_event_is_queued_under_the_lead_of_the_attempt_it_names(backend: Backend) {
    let app = spawn(backend).await;
    let reference = started_attempt(&app).await;
    let lead = leadgate::store::attempts::prior(&app.ctx.db, &reference)
        .await
        .unwrap()
        .unwrap()
        .attempt
        .lead_id;
    let applies = || async {
        leadgate::store::jobs::for_lead(&app.ctx.db, &lead)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == "apply_event")
            .count()
    };
    assert_eq!(applies().await, 0);
    let body = event("evt_lead_tag", &reference, "APPROVED");
    assert_eq!(send(&app, &body, sign(&app, &body)).await.status(), 200);
    assert_eq!(applies().await, 1, "the event's job is not tagged with its lead");
}
