//! The job queue under contention: many workers claiming at once never run two jobs of
//! one lead together, and a lead is free again as soon as its job is released.

use std::collections::HashMap;

use leadgate::jobs::Job;
use leadgate::store::jobs::{self, ClaimedJob, Holder};

use crate::both_backends;
use crate::support::{eventually, spawn_with, Backend, Options, TestApp};

both_backends!(racing_workers_never_hold_one_lead_twice);

async fn enqueue(app: &TestApp, lead: &str, n: usize) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    for i in 0..n {
        let job = Job::CrmSync {
            attempt_id: format!("{lead}-{i}"),
        };
        app.ctx
            .queue
            .enqueue(&mut tx, &job, Some(lead), std::time::Duration::ZERO)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Eight workers claim at the same moment; returns what each got.
async fn race(app: &TestApp, round: usize) -> Vec<(String, ClaimedJob)> {
    let claims = (0..8).map(|w| {
        let db = app.ctx.db.clone();
        tokio::spawn(async move {
            let worker = format!("w{round}-{w}");
            // A busy database may refuse a claim outright; that worker just gets nothing.
            let job = jobs::claim(&db, &worker, 60_000).await.ok().flatten();
            job.map(|j| (worker, j))
        })
    });
    let mut got = Vec::new();
    for c in claims {
        if let Some(pair) = c.await.unwrap() {
            got.push(pair);
        }
    }
    got
}

async fn racing_workers_never_hold_one_lead_twice(backend: Backend) {
    let opts = Options {
        tweak: Box::new(|s| s.worker.enabled = false),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    enqueue(&app, "lead-a", 5).await;
    enqueue(&app, "lead-b", 5).await;
    let mut done = 0;
    for round in 0..12 {
        let got = race(&app, round).await;
        let mut per_lead: HashMap<String, usize> = HashMap::new();
        for (_, job) in &got {
            *per_lead.entry(job.lead_id.clone().unwrap()).or_default() += 1;
        }
        assert!(per_lead.values().all(|n| *n == 1), "round {round}: {per_lead:?}");
        // Nothing more for a lead while its job runs.
        assert!(
            race(&app, 100 + round).await.is_empty(),
            "round {round}: a held lead was claimed again"
        );
        for (worker, job) in got {
            let holder = Holder {
                id: &job.id,
                worker: &worker,
                try_no: job.attempts,
                lead_id: job.lead_id.as_deref(),
            };
            assert!(jobs::release(&app.ctx.db, holder, jobs::Release::Done).await.unwrap());
            done += 1;
        }
        if done == 10 {
            break;
        }
    }
    assert_eq!(done, 10, "every job ran, one at a time per lead");
}

/// On PostgreSQL a job committed by one instance wakes the worker of another at once
/// (LISTEN/NOTIFY), not at its next poll: here the polling worker would wait a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_committed_by_one_instance_wakes_another_instances_worker() {
    let Some(backend) = Backend::postgres() else { return };
    let opts = Options {
        tweak: Box::new(|s| s.worker.enabled = false),
        ..Options::default()
    };
    let web = spawn_with(backend, opts).await;
    let mut settings = web.ctx.settings.clone();
    settings.worker.idle_poll = std::time::Duration::from_secs(60);
    let other = leadgate::startup::context(settings, web.ctx.public_url.clone(), Default::default())
        .await
        .unwrap();
    let other = std::sync::Arc::new(other);
    // Let the other worker make its first (empty) poll and go to sleep.
    let worker = leadgate::jobs::worker::spawn(other.clone());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let checkout = web.start_checkout("demo", "Iris Vega", "iris@example.com").await;
    web.get(&web.press(&checkout, "approve").await).await;
    // `eventually` gives up after 30 s, well before the other worker's next poll.
    eventually("the other instance to win the deal", || async {
        web.deals().await.first().is_some_and(|d| d.status == "won")
    })
    .await;
    worker.abort();
}
