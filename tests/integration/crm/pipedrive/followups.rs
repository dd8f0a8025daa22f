//! Follow-up sequences on Pipedrive: each step one activity of the right type and owner,
//! due inside business hours; the deal moved to the policy's stage after the last one; a
//! payment at any point completing (or deleting) the open activities, with a note, and
//! stopping the rest. Time is the app's clock moved with the queue (`TestApp::advance`).

use leadgate::domain::followup::CloseTask;

use super::*;
use crate::crm::{followup_policy, retry_after_decline, submit_seq};
use crate::followups::FRIDAY_1750_BOGOTA;

/// Monday 2026-12-07 09:00 in Bogotá, as Pipedrive's UTC due date and time.
const MONDAY_OPENING: (&str, &str) = ("2026-12-07", "14:00");

async fn app_at(backend: Backend, fake: &FakePipedrive, extra: &str, at_ms: i64) -> TestApp {
    let toml = format!("{}{}", fake.toml(""), followup_policy("bot@example.com", extra));
    let env = vec![("LEADGATE_PIPEDRIVE_API_TOKEN", TOKEN.to_string())];
    crate::crm::app_with_crm_at(backend, toml, env, 4, Some(at_ms)).await
}

/// Every activity the fake holds (deleted ones too), in creation order.
fn activities(fake: &FakePipedrive) -> Vec<Value> {
    fake.state().activities.clone()
}

/// Waits for `n` activities, lets the queue drain, and checks no more came.
async fn wait_activities(app: &TestApp, fake: &FakePipedrive, n: usize) -> Vec<Value> {
    eventually(&format!("{n} activities"), || async { activities(fake).len() >= n }).await;
    app.settle().await;
    let all = activities(fake);
    assert_eq!(all.len(), n, "{all:#?}");
    all
}

fn due(activity: &Value) -> (&str, &str) {
    (
        activity["due_date"].as_str().unwrap_or_default(),
        activity["due_time"].as_str().unwrap_or_default(),
    )
}

fn note_of(activity: &Value) -> &str {
    activity["note"].as_str().unwrap_or_default()
}

both_backends!(
    pipedrive_sequence_opens_one_activity_per_step_and_ends_in_the_policys_stage,
    pipedrive_paying_mid_sequence_completes_the_open_activity_and_stops_the_rest,
    pipedrive_paying_mid_sequence_deletes_the_open_activity_when_told_to,
    pipedrive_decline_opens_a_call_at_once_and_a_paid_retry_completes_it
);

async fn pipedrive_sequence_opens_one_activity_per_step_and_ends_in_the_policys_stage(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let app = app_at(backend, &fake, "", FRIDAY_1750_BOGOTA).await;
    let (_, attempt) = submit_seq(&app, "Lucía Torres", "lucia@example.com").await;
    app.settle().await;
    assert!(activities(&fake).is_empty(), "nothing before the first step");
    let deal = fake.deals()[0].clone();
    assert_eq!(deal["stage_id"], STAGE_ID);

    // Friday 18:20: the call is made now, due when the office opens on Monday.
    app.advance(Duration::from_secs(30 * 60)).await;
    let all = wait_activities(&app, &fake, 1).await;
    let call = &all[0];
    assert_eq!(call["type"], "call");
    assert_eq!(call["deal_id"], deal["id"]);
    assert_eq!(due(call), MONDAY_OPENING, "moved to the next opening");
    assert!(call.get("owner_id").is_none(), "the deal's owner (none set): {call}");
    for detail in [
        "tel:+573001234567",
        "https://wa.me/573001234567?text=",
        &app.url("/r/"),
        &format!("[leadgate:{attempt}:abandoned:0]"),
    ] {
        assert!(note_of(call).contains(detail), "the call lacks {detail}: {call}");
    }

    // Saturday: the task, for the user the step names, also due on Monday.
    app.advance(Duration::from_secs(24 * 3600)).await;
    let all = wait_activities(&app, &fake, 2).await;
    let task = &all[1];
    assert_eq!(task["type"], "task");
    assert_eq!(task["owner_id"], OWNER_ID);
    assert_eq!(due(task), MONDAY_OPENING);
    assert!(
        note_of(task).contains(&format!("[leadgate:{attempt}:abandoned:1]")),
        "{task}"
    );
    assert_eq!(fake.deals()[0]["stage_id"], STAGE_ID, "not moved before the last step");

    // Monday 17:50 (22:50 UTC), inside hours: the high call is due at once.
    app.advance(Duration::from_secs(2 * 24 * 3600 - 30 * 60)).await;
    let all = wait_activities(&app, &fake, 3).await;
    let last = &all[2];
    assert_eq!(last["type"], "call");
    assert_eq!(last["due_date"], "2026-12-07");
    assert!(due(last).1.starts_with("22:5"), "due now: {last}");
    for detail in ["tel:+573001234567", "https://wa.me/573001234567?text=", &app.url("/r/")] {
        assert!(note_of(last).contains(detail), "the last call lacks {detail}: {last}");
    }
    assert!(
        note_of(last).contains(&format!("[leadgate:{attempt}:abandoned:2]")),
        "{last}"
    );
    eventually("the deal in the policy's stage", || async {
        fake.deals()[0]["stage_id"] == REFUNDED_STAGE_ID
    })
    .await;
    assert_eq!(fake.deals()[0]["status"], "open");

    // Days later nothing repeats: one activity per step, for good.
    app.advance(Duration::from_secs(7 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(activities(&fake).len(), 3);
    assert_eq!(fake.open_tasks().len(), 3);
    assert!(dead_jobs(&app).await.is_empty());
}

/// Step 1's call exists, then the customer pays: the call is closed `how`, a note says
/// why, and no later step opens anything.
async fn paying_mid_sequence(backend: Backend, extra: &str, how: CloseTask) {
    let fake = FakePipedrive::start().await;
    let app = app_at(backend, &fake, extra, FRIDAY_1750_BOGOTA).await;
    let (checkout, _) = submit_seq(&app, "Mario Ruiz", "mario@example.com").await;
    app.advance(Duration::from_secs(30 * 60)).await;
    let all = wait_activities(&app, &fake, 1).await;
    let id = all[0]["id"].to_string();
    let subject = all[0]["subject"].as_str().unwrap().to_owned();
    assert_eq!(fake.open_tasks(), [(id.clone(), subject.clone())]);

    app.press(&checkout, "approve").await;
    eventually("the call closed", || async { fake.open_tasks().is_empty() }).await;
    assert_eq!(fake.closed_tasks(), [(id.clone(), subject, how)]);
    let path = format!("/api/v2/activities/{id}");
    match how {
        CloseTask::Complete => {
            let patches = fake.seen("PATCH", &path);
            assert_eq!(patches.len(), 1, "{patches:?}");
            assert_eq!(patches[0].body, json!({ "done": true }));
            assert!(fake.seen("DELETE", &path).is_empty());
        }
        CloseTask::Delete => {
            assert_eq!(fake.seen("DELETE", &path).len(), 1);
            assert!(fake.seen("PATCH", &path).is_empty());
        }
    }
    eventually("the closing note", || async {
        fake.state().notes.iter().any(|n| {
            let c = n["content"].as_str().unwrap_or_default();
            c.contains("tareas de seguimiento cerradas") && c.contains("(1)")
        })
    })
    .await;

    // Days pass: no later step fires for a customer who paid.
    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(activities(&fake).len(), 1, "no step after the payment");
    assert_eq!(fake.deals()[0]["status"], "won");
    assert_ne!(fake.deals()[0]["stage_id"], REFUNDED_STAGE_ID);
    assert!(dead_jobs(&app).await.is_empty());
}

async fn pipedrive_paying_mid_sequence_completes_the_open_activity_and_stops_the_rest(backend: Backend) {
    paying_mid_sequence(backend, "", CloseTask::Complete).await
}

async fn pipedrive_paying_mid_sequence_deletes_the_open_activity_when_told_to(backend: Backend) {
    paying_mid_sequence(backend, "close_tasks = \"delete\"", CloseTask::Delete).await
}

async fn pipedrive_decline_opens_a_call_at_once_and_a_paid_retry_completes_it(backend: Backend) {
    let fake = FakePipedrive::start().await;
    let app = app_at(backend, &fake, "", FRIDAY_1750_BOGOTA).await;
    let (checkout, attempt) = submit_seq(&app, "Sofía Díaz", "sofia@example.com").await;
    let back = app.press(&checkout, "decline").await;
    // No time passes: the decline's call is there at once.
    let all = wait_activities(&app, &fake, 1).await;
    let call = &all[0];
    assert_eq!(call["type"], "call");
    assert!(
        note_of(call).contains(&format!("[leadgate:{attempt}:declined]")),
        "{call}"
    );
    let id = call["id"].to_string();

    let second = retry_after_decline(&app, &back).await;
    app.press(&second, "approve").await;
    eventually("the decline's call closed", || async { fake.open_tasks().is_empty() }).await;
    let closed = fake.closed_tasks();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!((&closed[0].0, closed[0].2), (&id, CloseTask::Complete));
    assert_eq!(
        fake.seen("PATCH", &format!("/api/v2/activities/{id}"))[0].body,
        json!({ "done": true })
    );

    app.advance(Duration::from_secs(4 * 24 * 3600)).await;
    app.settle().await;
    assert_eq!(activities(&fake).len(), 1, "no follow-up for either attempt once paid");
    assert!(dead_jobs(&app).await.is_empty());
}
