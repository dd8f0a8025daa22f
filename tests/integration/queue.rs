//! The job queue under contention: many workers claiming at once never run two jobs of
//! one lead together, and a lead is free again as soon as its job is released.

use std::collections::{HashMap, HashSet};

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

/// The one call to the queue's claim: a minute's lease on the database's clock.
async fn claim_one(db: &leadgate::store::Db, worker: &str) -> Result<Option<ClaimedJob>, String> {
    jobs::claim(db, worker, 60_000).await.map_err(|e| e.to_string())
}

/// Eight workers claim at the same moment; returns what each got. A claim that errors
/// fails the test: contention must cost a worker its turn (`None`), never an error.
async fn race(app: &TestApp, round: usize) -> Vec<(String, ClaimedJob)> {
    let claims: Vec<_> = (0..8)
        .map(|w| {
            let db = app.ctx.db.clone();
            tokio::spawn(async move {
                let worker = format!("w{round}-{w}");
                let job = claim_one(&db, &worker).await;
                (worker, job)
            })
        })
        .collect();
    let mut got = Vec::new();
    for c in claims {
        match c.await.unwrap() {
            (worker, Ok(Some(job))) => got.push((worker, job)),
            (_, Ok(None)) => {}
            (worker, Err(e)) => panic!("round {round}: {worker}'s claim failed: {e}"),
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
    let enqueued: HashSet<String> = ["lead-a", "lead-b"]
        .iter()
        .flat_map(|lead| (0..5).map(move |i| format!("{lead}-{i}")))
        .collect();
    // Job id -> (its attempt id, how many times it was claimed).
    let mut claimed: HashMap<String, (String, usize)> = HashMap::new();
    let mut rounds = 0;
    while claimed.len() < enqueued.len() && rounds < 12 {
        let mut got = race(&app, rounds).await;
        // A second race while those jobs run: it may only take a lead the first one left
        // free (on PostgreSQL a claim skips rows another claim has locked, so a free lead
        // can lose a race), never one that is held.
        got.extend(race(&app, 100 + rounds).await);
        let mut per_lead: HashMap<String, usize> = HashMap::new();
        for (_, job) in &got {
            *per_lead.entry(job.lead_id.clone().unwrap()).or_default() += 1;
        }
        assert!(
            per_lead.values().all(|n| *n == 1),
            "round {rounds}: a held lead was claimed again: {per_lead:?}"
        );
        for (worker, job) in got {
            let Job::CrmSync { attempt_id } = serde_json::from_str::<Job>(&job.payload).unwrap() else {
                panic!("only CRM syncs were enqueued: {}", job.payload)
            };
            claimed.entry(job.id.clone()).or_insert((attempt_id, 0)).1 += 1;
            let holder = Holder {
                id: &job.id,
                worker: &worker,
                try_no: job.attempts,
                lead_id: job.lead_id.as_deref(),
            };
            assert!(jobs::release(&app.ctx.db, holder, jobs::Release::Done).await.unwrap());
        }
        rounds += 1;
    }
    let claims: usize = claimed.values().map(|(_, n)| n).sum();
    assert_eq!(claims, enqueued.len(), "successful claims, one per job: {claimed:?}");
    let ran: HashSet<String> = claimed.values().map(|(attempt, _)| attempt.clone()).collect();
    assert_eq!(ran, enqueued, "every job was claimed");
    assert!(
        claimed.values().all(|(_, n)| *n == 1),
        "a job was claimed twice: {claimed:?}"
    );
    assert!(race(&app, 200).await.is_empty(), "a done job was claimed again");
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
