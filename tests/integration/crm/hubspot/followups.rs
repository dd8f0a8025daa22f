//! Follow-up sequences on HubSpot: each step one task of the right type and owner, due
//! inside business hours; the deal moved to the policy's stage after the last one; a
//! payment at any point completing (or archiving) the open tasks, with a note, and
//! stopping the rest. Time is the app's clock moved with the queue (`TestApp::advance`).

use leadgate::domain::followup::CloseTask;

use super::*;
use crate::crm::{followup_policy, retry_after_decline, submit_seq};
use crate::followups::FRIDAY_1750_BOGOTA;

/// Monday 2026-12-07 09:00 in Bogotá, as HubSpot's UTC timestamp.
const MONDAY_OPENING: &str = "2026-12-07T14:00:00.000Z";
/// The fake's other owner (the deal owner is `sales@acme.test`, OWNER_ID).
const BOSS_ID: &str = "1";

async fn app_at(backend: Backend, fake: &FakeHubspot, extra: &str, at_ms: i64) -> TestApp {
    let toml = format!("{}{}", fake.toml(), followup_policy("boss@acme.test", extra));
    let env = vec![("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string())];
    crate::crm::app_with_crm_at(backend, toml, env, 4, Some(at_ms)).await
}

/// Waits for `n` tasks (archived ones too), lets the queue drain, and checks no more came.
async fn wait_tasks(app: &TestApp, fake: &FakeHubspot, n: usize) -> Vec<Object> {
    eventually(&format!("{n} tasks"), || async { fake.tasks().len() >= n }).await;
    app.settle().await;
    let all = fake.tasks();
    assert_eq!(all.len(), n, "{all:#?}");
    all
}

fn prop<'a>(o: &'a Object, name: &str) -> &'a str {
    o.properties.get(name).map_or("", String::as_str)
}

fn stage(fake: &FakeHubspot) -> String {
    prop(&fake.deals()[0], "dealstage").to_owned()
}

both_backends!(
    hubspot_sequence_opens_one_task_per_step_and_ends_in_the_policys_stage,
    hubspot_paying_mid_sequence_completes_the_open_task_and_stops_the_rest,
    hubspot_paying_mid_sequence_archives_the_open_task_when_told_to,
    hubspot_decline_opens_a_call_at_once_and_a_paid_retry_completes_it
);

async fn hubspot_sequence_opens_one_task_per_step_and_ends_in_the_policys_stage(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let app = app_at(backend, &fake, "", FRIDAY_1750_BOGOTA).await;
    let (_, attempt) = submit_seq(&app, "Lucía Torres", "lucia@example.com").await;
    app.settle().await;
    assert!(fake.tasks().is_empty(), "nothing before the first step");
    let deal = fake.deals()[0].clone();
    assert_eq!(stage(&fake), STAGE_ID);

    // Friday 18:20: the call is made now, due when the office opens on Monday.
    app.advance(Duration::from_secs(30 * 60)).await;
    let all = wait_tasks(&app, &fake, 1).await;
    let call = &all[0];
    assert_eq!(prop(call, "hs_task_type"), "CALL");
    assert_eq!(prop(call, "hubspot_owner_id"), OWNER_ID, "the deal's owner");
    assert_eq!(prop(call, "hs_timestamp"), MONDAY_OPENING, "moved to the next opening");
    assert!(has_association(call, &deal.id, 216), "{call:?}");
    for detail in [
        "tel:+573001234567",
        "https://wa.me/573001234567?text=",
        &app.url("/r/"),
        &format!("[leadgate:{attempt}:abandoned:0]"),
    ] {
        assert!(
            prop(call, "hs_task_body").contains(detail),
            "the call lacks {detail}: {call:?}"
        );
    }

    // Saturday: the task, for the user the step names, also due on Monday.
    app.advance(Duration::from_secs(24 * 3600)).await;
    let all = wait_tasks(&app, &fake, 2).await;
    let task = &all[1];
    assert_eq!(prop(task, "hs_task_type"), "TODO");
    assert_eq!(prop(task, "hubspot_owner_id"), BOSS_ID);
    assert_eq!(prop(task, "hs_timestamp"), MONDAY_OPENING);
    assert!(
        prop(task, "hs_task_body").contains(&format!("[leadgate:{attempt}:abandoned:1]")),
        "{task:?}"
    );
    assert_eq!(stage(&fake), STAGE_ID, "not moved before the last step");

    // Monday 17:50 (22:50 UTC), inside hours: the high call is due at once.
    app.advance(Duration::from_secs(2 * 24 * 3600 - 30 * 60)).await;
    let all = wait_tasks(&app, &fake, 3).await;
    let last = &all[2];
    assert_eq!(prop(last, "hs_task_type"), "CALL");
    assert_eq!(prop(last, "hs_task_priority"), "HIGH");
    assert_eq!(prop(last, "hubspot_owner_id"), OWNER_ID);
    assert!(
        prop(last, "hs_timestamp").starts_with("2026-12-07T22:5"),
        "due now: {last:?}"
    );
    for detail in ["tel:+573001234567", "https://wa.me/573001234567?text=", &app.url("/r/")] {
        assert!(
            prop(last, "hs_task_body").contains(detail),
            "the last call lacks {detail}: {last:?}"
        );
    }
    assert!(
        prop(last, "hs_task_body").contains(&format!("[leadgate:{attempt}:abandoned:2]")),
        "{last:?}"
    );
    eventually("the deal in the policy's stage", || async {
        stage(&fake) == REFUNDED_ID
    })
    .await;

    // Days later nothing repeats: one task per step, for good.
    app.advance(Duration::from_secs(7 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(fake.tasks().len(), 3);
    assert_eq!(fake.open_tasks().len(), 3);
}

/// Step 1's call exists, then the customer pays: the call is closed `how`, a note says
/// why, and no later step opens anything.
async fn paying_mid_sequence(backend: Backend, extra: &str, how: CloseTask) {
    let fake = FakeHubspot::start().await;
    let app = app_at(backend, &fake, extra, FRIDAY_1750_BOGOTA).await;
    let (checkout, _) = submit_seq(&app, "Mario Ruiz", "mario@example.com").await;
    app.advance(Duration::from_secs(30 * 60)).await;
    let all = wait_tasks(&app, &fake, 1).await;
    let id = all[0].id.clone();
    let subject = prop(&all[0], "hs_task_subject").to_owned();
    assert_eq!(fake.open_tasks(), [(id.clone(), subject.clone())]);

    app.press(&checkout, "approve").await;
    eventually("the call closed", || async { fake.open_tasks().is_empty() }).await;
    assert_eq!(fake.closed_tasks(), [(id.clone(), subject, how)]);
    let path = format!("/crm/v3/objects/tasks/{id}");
    match how {
        CloseTask::Complete => {
            let patches = fake.calls("PATCH", &path);
            assert_eq!(patches.len(), 1, "{patches:?}");
            assert_eq!(patches[0].body["properties"]["hs_task_status"], "COMPLETED");
            assert!(fake.calls("DELETE", &path).is_empty());
        }
        CloseTask::Delete => {
            assert_eq!(fake.calls("DELETE", &path).len(), 1);
            assert!(fake.calls("PATCH", &path).is_empty());
        }
    }
    eventually("the closing note", || async {
        fake.notes().iter().any(|n| {
            let body = prop(n, "hs_note_body");
            body.contains("tareas de seguimiento cerradas") && body.contains("(1)")
        })
    })
    .await;

    // Days pass: no later step fires for a customer who paid.
    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(fake.tasks().len(), 1, "no step after the payment");
    assert_eq!(stage(&fake), WON_ID);
}

async fn hubspot_paying_mid_sequence_completes_the_open_task_and_stops_the_rest(backend: Backend) {
    paying_mid_sequence(backend, "", CloseTask::Complete).await
}

async fn hubspot_paying_mid_sequence_archives_the_open_task_when_told_to(backend: Backend) {
    paying_mid_sequence(backend, "close_tasks = \"delete\"", CloseTask::Delete).await
}

async fn hubspot_decline_opens_a_call_at_once_and_a_paid_retry_completes_it(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let app = app_at(backend, &fake, "", FRIDAY_1750_BOGOTA).await;
    let (checkout, attempt) = submit_seq(&app, "Sofía Díaz", "sofia@example.com").await;
    let back = app.press(&checkout, "decline").await;
    // No time passes: the decline's call is there at once.
    let all = wait_tasks(&app, &fake, 1).await;
    let call = &all[0];
    assert_eq!(prop(call, "hs_task_type"), "CALL");
    assert_eq!(prop(call, "hs_task_priority"), "HIGH");
    assert!(
        prop(call, "hs_task_body").contains(&format!("[leadgate:{attempt}:declined]")),
        "{call:?}"
    );
    let id = call.id.clone();

    let second = retry_after_decline(&app, &back).await;
    app.press(&second, "approve").await;
    eventually("the decline's call closed", || async { fake.open_tasks().is_empty() }).await;
    let closed = fake.closed_tasks();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!((&closed[0].0, closed[0].2), (&id, CloseTask::Complete));

    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(fake.tasks().len(), 1, "no follow-up for either attempt once paid");
}
