//! Round-robin owners across instances: two app instances on one PostgreSQL database,
//! each with its own worker, share the turn of a follow-up step's owner list, so the
//! users get the tasks evenly and no task is made twice, whichever instance runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leadgate::clock::ShiftedClock;

use crate::followups::FRIDAY_1750_BOGOTA;
use crate::support::{eventually, spawn_beside, spawn_with, Backend, Options, TestApp};

const POLICY: &str = r#"
[[followup.steps]]
after = "30m"
kind = "task"
owner = ["ana@acme.test", "bruno@acme.test"]

[[offers]]
slug = "rr"
title = "Curso Intensivo"
price_minor = 25000000
currency = "COP"
"#;

fn options(clock: &ShiftedClock) -> Options {
    Options {
        toml: POLICY.into(),
        clock: Some(clock.clone()),
        ..Options::default()
    }
}

async fn follow_up_tasks(app: &TestApp) -> Vec<leadgate::store::builtin_crm::TaskView> {
    app.tasks()
        .await
        .into_iter()
        .filter(|t| t.external_key.ends_with(":abandoned:0"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_owners_alternate_evenly_across_two_instances() {
    let Some(backend) = Backend::postgres() else { return };
    let clock = ShiftedClock::starting_at(FRIDAY_1750_BOGOTA);
    let a = spawn_with(backend, options(&clock)).await;
    let b = spawn_beside(&a, options(&clock)).await;

    // Six leads, every other one through each instance.
    for n in 0..6 {
        let app = if n % 2 == 0 { &a } else { &b };
        let email = format!("lead{n}@example.com");
        app.start_checkout("rr", &format!("Lead {n}"), &email).await;
    }
    a.settle().await;
    assert!(follow_up_tasks(&a).await.is_empty(), "nothing before the step");

    // The clock is shared: moving it (and the shared queue) once moves both; both
    // workers are woken and race for the six due steps.
    a.advance(Duration::from_secs(30 * 60)).await;
    b.ctx.queue.wake();
    eventually("six follow-up tasks", || async { follow_up_tasks(&a).await.len() >= 6 }).await;
    a.settle().await;
    b.settle().await;

    let tasks = follow_up_tasks(&b).await;
    assert_eq!(tasks.len(), 6, "one task per lead: {tasks:#?}");
    let keys: BTreeSet<_> = tasks.iter().map(|t| t.external_key.as_str()).collect();
    assert_eq!(keys.len(), 6, "no task made twice: {tasks:#?}");
    let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tasks {
        *per_owner.entry(t.owner.clone().unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(
        per_owner,
        BTreeMap::from([("ana@acme.test".to_owned(), 3), ("bruno@acme.test".to_owned(), 3)]),
        "{tasks:#?}"
    );
}
