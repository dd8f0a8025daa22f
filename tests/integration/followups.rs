//! Follow-up sequences on the built-in CRM: steps due by the offer's policy inside
//! business hours, the deal moved to the "abandoned" stage after the last one, and a
//! payment at any point stopping the rest and closing every open follow-up task. Time is
//! the app's clock moved forward with the queue (`TestApp::advance`): no test waits for
//! a deadline.

use std::time::Duration;

use leadgate::clock::ShiftedClock;
use leadgate::store::builtin_crm::TaskView;

use crate::both_backends;
use crate::support::{eventually, spawn_with, Backend, Options, TestApp};

both_backends!(
    a_sequence_keeps_business_hours_and_ends_in_the_abandoned_stage,
    paying_mid_sequence_stops_the_steps_and_closes_the_open_tasks,
    a_decline_opens_a_task_at_once_and_a_paid_retry_closes_it,
    an_abandoned_checkout_gets_its_first_step_at_once,
    an_operator_marks_a_lead_paid_and_its_follow_ups_stop
);

pub const SEQUENCE: &str = r#"
[followup]
timezone = "America/Bogota"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-18:00"
after_last_step = "stage:Abandonado"

[[followup.steps]]
after = "30m"
kind = "call"

[[followup.steps]]
after = "24h"
kind = "task"
priority = "low"
owner = ["ana@acme.test", "bruno@acme.test"]

[[followup.steps]]
after = "3d"
kind = "call"
priority = "high"
subject.es = "Última llamada a {first_name}: {offer}"

[[offers]]
slug = "seq"
title = "Curso Intensivo"
price_minor = 25000000
currency = "COP"
"#;

/// Friday 2026-12-04 17:50 in Bogotá (UTC-5), ten minutes before closing.
pub const FRIDAY_1750_BOGOTA: i64 = 1_796_424_600_000;
/// Monday 2026-12-07 09:00 in Bogotá: the next opening after Friday's close.
const MONDAY_0900_BOGOTA: i64 = 1_796_652_000_000;
/// Monday 2026-12-07 17:50 and 18:00 in Bogotá.
const MONDAY_1750_BOGOTA: i64 = 1_796_683_800_000;
const MONDAY_1800_BOGOTA: i64 = 1_796_684_400_000;

async fn app_at(backend: Backend, at_ms: i64) -> TestApp {
    let opts = Options {
        toml: SEQUENCE.into(),
        clock: Some(ShiftedClock::starting_at(at_ms)),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

/// Opens a checkout of `seq`; returns (sandbox URL, attempt id).
async fn start(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let checkout = app.start_checkout("seq", name, email).await;
    let leads = app.leads().await;
    let lead = leads.iter().find(|l| l["email"] == email).expect("the lead is stored");
    let attempts = lead["attempts"].as_array().unwrap();
    let id = attempts.last().unwrap()["id"].as_str().unwrap().to_owned();
    (checkout, id)
}

async fn tasks_of(app: &TestApp, attempt: &str) -> Vec<TaskView> {
    let mut tasks: Vec<_> = app
        .tasks()
        .await
        .into_iter()
        .filter(|t| t.external_key.starts_with(attempt))
        .collect();
    tasks.sort_by(|a, b| a.external_key.cmp(&b.external_key));
    tasks
}

async fn wait_tasks(app: &TestApp, attempt: &str, n: usize) -> Vec<TaskView> {
    eventually(&format!("{n} follow-up tasks"), || async {
        tasks_of(app, attempt).await.len() >= n
    })
    .await;
    app.settle().await;
    let tasks = tasks_of(app, attempt).await;
    assert_eq!(tasks.len(), n, "{tasks:#?}");
    tasks
}

async fn deal_of(app: &TestApp, attempt: &str) -> leadgate::store::builtin_crm::DealView {
    app.deals()
        .await
        .into_iter()
        .find(|d| d.external_key == attempt)
        .expect("the attempt's deal")
}

async fn a_sequence_keeps_business_hours_and_ends_in_the_abandoned_stage(backend: Backend) {
    let app = app_at(backend, FRIDAY_1750_BOGOTA).await;
    let (checkout, id) = start(&app, "Lucía Torres", "lucia@example.com").await;
    app.settle().await;
    assert!(
        tasks_of(&app, &id).await.is_empty(),
        "nothing is due before the first step"
    );

    // 18:20 on Friday: the call is created now and due when the office opens on Monday.
    app.advance(Duration::from_secs(30 * 60)).await;
    let tasks = wait_tasks(&app, &id, 1).await;
    let call = &tasks[0];
    assert_eq!(call.external_key, format!("{id}:abandoned:0"));
    assert_eq!(call.due_at, MONDAY_0900_BOGOTA, "due at the next opening");
    assert!(call.subject.contains("Lucía Torres"), "{}", call.subject);
    for detail in [
        "lucia@example.com",
        "tel:+573001234567",
        "https://wa.me/573001234567?text=",
        "Curso Intensivo",
        "COP 250.000",
        &app.url("/r/"),
        "30 min",
    ] {
        assert!(call.body.contains(detail), "the call lacks {detail}: {}", call.body);
    }

    // Saturday: the task goes to one of the round-robin pair, also due on Monday.
    app.advance(Duration::from_secs(24 * 3600)).await;
    let tasks = wait_tasks(&app, &id, 2).await;
    let task = &tasks[1];
    assert_eq!(task.external_key, format!("{id}:abandoned:1"));
    assert_eq!(task.due_at, MONDAY_0900_BOGOTA);
    let owner = task.owner.clone().unwrap_or_default();
    assert!(
        ["ana@acme.test", "bruno@acme.test"].contains(&owner.as_str()),
        "{owner}"
    );
    assert_eq!(
        deal_of(&app, &id).await.stage,
        "Checkout started",
        "not abandoned before the last step"
    );

    // Monday 17:50, inside opening hours: due at once, with the configured subject.
    app.advance(Duration::from_secs(2 * 24 * 3600 - 30 * 60)).await;
    let tasks = wait_tasks(&app, &id, 3).await;
    let last = &tasks[2];
    assert_eq!(last.subject, "Última llamada a Lucía: Curso Intensivo");
    assert!(
        (MONDAY_1750_BOGOTA..MONDAY_1800_BOGOTA).contains(&last.due_at),
        "due now, inside hours: {}",
        last.due_at
    );
    eventually("the deal in the abandoned stage", || async {
        deal_of(&app, &id).await.stage == "Abandonado"
    })
    .await;
    assert_eq!(deal_of(&app, &id).await.status, "open");

    // The customer pays after all: won, and every follow-up task is done.
    app.press(&checkout, "approve").await;
    eventually("the deal won", || async { deal_of(&app, &id).await.status == "won" }).await;
    eventually("the tasks closed", || async {
        tasks_of(&app, &id).await.iter().all(|t| t.status == "done")
    })
    .await;
    app.settle().await;
    let lead = &app.leads().await[0];
    let states: Vec<_> = lead["follow_up_tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["done", "done", "done"]);
}

async fn paying_mid_sequence_stops_the_steps_and_closes_the_open_tasks(backend: Backend) {
    let app = app_at(backend, FRIDAY_1750_BOGOTA).await;
    let (checkout, id) = start(&app, "Mario Ruiz", "mario@example.com").await;
    app.advance(Duration::from_secs(30 * 60)).await;
    let tasks = wait_tasks(&app, &id, 1).await;
    assert_eq!(tasks[0].status, "open");

    app.press(&checkout, "approve").await;
    eventually("the call closed", || async {
        tasks_of(&app, &id).await[0].status == "done"
    })
    .await;
    let notes = leadgate::store::builtin_crm::notes(&app.ctx.db, 50).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.body.contains("COP 250.000") && n.body.contains('1')),
        "a note says why the task was closed: {notes:#?}"
    );

    // Days pass: no later step fires for a customer who paid.
    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(tasks_of(&app, &id).await.len(), 1, "no step after the payment");
    assert_eq!(deal_of(&app, &id).await.status, "won");
}

async fn a_decline_opens_a_task_at_once_and_a_paid_retry_closes_it(backend: Backend) {
    // Friday 18:30, after closing.
    let app = app_at(backend, FRIDAY_1750_BOGOTA + 40 * 60_000).await;
    let (checkout, id) = start(&app, "Sofía Díaz", "sofia@example.com").await;
    let back = app.press(&checkout, "decline").await;
    let tasks = wait_tasks(&app, &id, 1).await;
    assert_eq!(tasks[0].external_key, format!("{id}:declined"));
    assert_eq!(tasks[0].status, "open");
    assert_eq!(
        tasks[0].due_at, MONDAY_0900_BOGOTA,
        "a decline after Friday's close is due on Monday"
    );

    // The result page's retry opens a new attempt, which the customer pays.
    let page = app.get(&back).await.text().await.unwrap();
    let retry = page
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.starts_with("/r/")))
        .expect("a retry link")
        .to_owned();
    let token = app.form_token(&retry).await;
    let res = app.post_form(&retry, &[("form_token", &token)]).await;
    assert_eq!(res.status(), 303);
    let second = crate::support::location(&res);
    app.press(&second, "approve").await;
    eventually("the decline task closed", || async {
        tasks_of(&app, &id).await[0].status == "done"
    })
    .await;
    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(app.tasks().await.len(), 1, "no follow-up for either attempt once paid");
}

async fn an_abandoned_checkout_gets_its_first_step_at_once(backend: Backend) {
    let app = app_at(backend, FRIDAY_1750_BOGOTA).await;
    let (checkout, id) = start(&app, "Tomás Vega", "tomas@example.com").await;
    app.press(&checkout, "abandon").await;
    // No time passes: the checkout closed, so the 30-minute call is due now.
    let tasks = wait_tasks(&app, &id, 1).await;
    assert_eq!(tasks[0].external_key, format!("{id}:abandoned:0"));
    // Its own turn later finds it done.
    app.advance(Duration::from_secs(30 * 60)).await;
    app.settle().await;
    assert_eq!(tasks_of(&app, &id).await.len(), 1);
}

async fn an_operator_marks_a_lead_paid_and_its_follow_ups_stop(backend: Backend) {
    let app = app_at(backend, FRIDAY_1750_BOGOTA).await;
    let (_, id) = start(&app, "Elena Mora", "elena@example.com").await;
    app.advance(Duration::from_secs(30 * 60)).await;
    wait_tasks(&app, &id, 1).await;

    // Paid by bank transfer: the operator says so on /admin.
    crate::admin::sign_in(&app, crate::support::ADMIN_PASSWORD).await;
    let page = app.get("/admin").await.text().await.unwrap();
    let csrf = crate::support::hidden_field(&page, "csrf").expect("the admin page's token");
    assert!(
        page.contains(&format!("/admin/attempts/{id}/paid")),
        "a mark-paid button"
    );
    let res = app
        .post_form(
            &format!("/admin/attempts/{id}/paid"),
            &[("csrf", &csrf), ("note", "bank transfer 0042")],
        )
        .await;
    assert_eq!(res.status(), 303);
    eventually("the deal won", || async { deal_of(&app, &id).await.status == "won" }).await;
    eventually("the call closed", || async {
        tasks_of(&app, &id).await[0].status == "done"
    })
    .await;
    let lead = &app.leads().await[0];
    let attempt = &lead["attempts"][0];
    assert_eq!(attempt["status"], "approved");
    assert!(attempt["status_detail"]
        .as_str()
        .unwrap()
        .contains("bank transfer 0042"));
    // Paid outside the gateway: reconciliation does not ask the gateway about it.
    let asked = leadgate::store::attempts::paid_due_for_reconcile(&app.ctx.db, i64::MAX / 2, 0, 100)
        .await
        .unwrap();
    assert!(
        asked.iter().all(|a| a.id != id),
        "an operator's payment is not reconciled"
    );
    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(tasks_of(&app, &id).await.len(), 1);

    // Without the session's token the same request is refused.
    let forged = app
        .post_form_bare(&format!("/admin/attempts/{id}/paid"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
}
