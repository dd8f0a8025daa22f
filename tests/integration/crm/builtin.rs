//! The built-in CRM's follow-up tasks: kind, priority and owner kept, closing that keeps
//! the row, and an admin list that shows a completed task as done and a deleted one not.

use leadgate::crm::builtin::BuiltinCrm;
use leadgate::crm::{Crm, DealInput, PersonInput, TaskInput, TaskRef};
use leadgate::domain::followup::{CloseTask, Priority, TaskKind};
use leadgate::domain::lead::Utm;
use leadgate::domain::{Currency, Email, Money, PersonName, Phone};
use leadgate::store::builtin_crm;

use crate::admin::sign_in;
use crate::both_backends;
use crate::support::{spawn, Backend, ADMIN_PASSWORD};

both_backends!(closed_tasks_keep_their_row_and_only_open_or_done_ones_are_listed);

async fn closed_tasks_keep_their_row_and_only_open_or_done_ones_are_listed(backend: Backend) {
    let app = spawn(backend).await;
    let crm = BuiltinCrm::new(app.ctx.db.clone());
    let (name, email, phone) = (
        PersonName::from_trusted("Ana Ruiz".into()),
        Email::from_trusted("ana.tasks@example.com".into()),
        Phone::from_trusted("+573001112233".into()),
    );
    let person = crm
        .upsert_person(&PersonInput {
            name: &name,
            email: &email,
            phone: &phone,
        })
        .await
        .unwrap();
    let utm = Utm::default();
    let deal = crm
        .create_deal(&DealInput {
            attempt_id: "att-tasks-1",
            person_id: &person,
            title: "Course".into(),
            value: Money::new(100_000, Currency::COP).unwrap(),
            pipeline: "Sales",
            stage: "New",
            offer_slug: "course",
            utm: &utm,
        })
        .await
        .unwrap();
    let task = |key: &'static str, subject: &str, kind, owner| TaskInput {
        key,
        deal_id: &deal,
        person_id: &person,
        subject: subject.into(),
        body: "Details".into(),
        due_at: 1_777_710_600_000,
        kind,
        priority: Priority::High,
        owner,
    };
    let call = crm
        .create_task(&task("k:call", "Call Ana back", TaskKind::Call, Some("Marta")))
        .await
        .unwrap();
    let todo = crm
        .create_task(&task("k:todo", "Withdrawn reminder", TaskKind::Todo, None))
        .await
        .unwrap();
    let at = |id| TaskRef {
        task_id: id,
        deal_id: &deal,
    };
    crm.close_task(&at(&call), CloseTask::Complete).await.unwrap();
    crm.close_task(&at(&todo), CloseTask::Delete).await.unwrap();
    // Closed first by someone else, or never there: closing again is done, and changes nothing.
    crm.close_task(&at(&call), CloseTask::Delete).await.unwrap();
    crm.close_task(&at("no-such-task"), CloseTask::Complete).await.unwrap();

    let listed = builtin_crm::tasks(&app.ctx.db, 100).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let t = &listed[0];
    assert_eq!(t.id, call);
    assert_eq!(t.status, "done", "a completed task stays done when deleted after");
    assert_eq!(
        (t.kind.as_deref(), t.priority.as_deref(), t.owner.as_deref()),
        (Some("call"), Some("high"), Some("Marta"))
    );
    // The withdrawn task is still found by its key: a rerun does not create it again.
    assert_eq!(crm.find_task(&deal, "k:todo").await.unwrap(), Some(todo));

    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let page = app.get("/admin").await.text().await.unwrap();
    assert!(page.contains("Call Ana back"), "{page}");
    assert!(page.contains("task-done"), "{page}");
    assert!(page.contains("Marta"), "{page}");
    assert!(!page.contains("Withdrawn reminder"), "a deleted task is not listed");
}
