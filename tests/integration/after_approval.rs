//! A payment's life after approval, on the embedded default (sandbox gateway, built-in
//! CRM): refunds, voids and disputes as a gateway reports them reach the deal exactly
//! once; a report that cannot be this attempt's changes nothing; a second payment for one
//! purchase is flagged with one task. The gateways' own signals are tested per gateway in
//! `gateways::*`; here the reports are handed to the one place every source goes through.

use std::time::Duration;

use leadgate::domain::lead::Attempt;
use leadgate::domain::offer::DealOnRefund;
use leadgate::domain::reversal::{Dispute, DisputeStage, Report};
use leadgate::domain::PaymentStatus;
use leadgate::gateways::Observation;
use leadgate::jobs::settle::{self, Source};
use leadgate::jobs::Job;
use leadgate::store::{attempts, builtin_crm};

use crate::both_backends;
use crate::support::{attempt_id_of, eventually, spawn_with, Backend, Options, TestApp};

both_backends!(
    a_full_refund_loses_the_deal_once_and_a_replay_changes_nothing,
    partial_refunds_add_up_and_keep_the_deal_won,
    a_chargeback_opens_a_task_with_its_deadline_then_loses_the_deal,
    the_offer_decides_where_a_refunded_deal_goes,
    a_refund_beyond_the_payment_or_for_another_checkout_changes_nothing,
    a_second_payment_for_one_purchase_is_flagged_with_one_task,
    two_payments_approved_at_once_flag_exactly_one
);

/// A customer who paid the demo offer through the sandbox; returns their attempt.
async fn paid(app: &TestApp, email: &str) -> Attempt {
    let checkout = app.start_checkout("demo", "Ana Pérez", email).await;
    let back = app.press(&checkout, "approve").await;
    let id = attempt_id_of(&back);
    eventually("the deal to be won", || async {
        app.deals()
            .await
            .iter()
            .any(|d| d.external_key == id && d.status == "won")
    })
    .await;
    app.settle().await;
    attempts::get(&app.ctx.db, &id).await.unwrap().unwrap()
}

/// What a gateway would say about `a` after approval, read back from its API.
fn report(a: &Attempt, after: Report) -> Observation {
    Observation {
        after_sale: Some(after),
        detail: Some("approved".into()),
        ..Observation::status(Some(a.id.clone()), a.gateway_ref.clone(), PaymentStatus::Approved)
    }
}

fn refunded(minor: i64) -> Report {
    Report {
        refunded_minor: minor,
        refund_reason: Some("requested_by_customer".into()),
        ..Report::default()
    }
}

/// Applies a report as a webhook's job would, then lets the jobs it queued run.
async fn apply(app: &TestApp, seen: &Observation) -> Attempt {
    let id = seen.reference.clone().unwrap();
    let current = attempts::get(&app.ctx.db, &id).await.unwrap().unwrap();
    let after = settle::apply(&app.ctx, current, seen, Source::Webhook, None)
        .await
        .unwrap();
    app.ctx.queue.wake();
    app.settle().await;
    after
}

async fn notes_containing(app: &TestApp, text: &str) -> usize {
    let notes = builtin_crm::notes(&app.ctx.db, 1000).await.unwrap();
    notes.iter().filter(|n| n.body.contains(text)).count()
}

async fn deal_of(app: &TestApp, a: &Attempt) -> builtin_crm::DealView {
    app.deals().await.into_iter().find(|d| d.external_key == a.id).unwrap()
}

async fn a_full_refund_loses_the_deal_once_and_a_replay_changes_nothing(backend: Backend) {
    let app = spawn_with(backend, Options::default()).await;
    let a = paid(&app, "ana@example.com").await;
    let full = report(&a, refunded(a.amount.amount_minor()));
    let after = apply(&app, &full).await;
    assert_eq!(
        after.status,
        PaymentStatus::Approved,
        "a refund never un-pays an attempt"
    );
    assert_eq!(after.after.reversal.refunded, a.amount);
    let deal = deal_of(&app, &a).await;
    assert_eq!(
        (deal.status.as_str(), deal.lost_reason.as_deref()),
        ("lost", Some("Refunded"))
    );
    // The reversal note says what was refunded, in the lead's language.
    assert_eq!(notes_containing(&app, "Reembolsado: COP 199.000,00").await, 1);

    // The same refund reported again (a retried webhook, reconciliation): nothing new.
    let again = apply(&app, &full).await;
    assert_eq!(again.after.reversal_version, after.after.reversal_version);
    assert_eq!(notes_containing(&app, "Reembolsado: COP 199.000,00").await, 1);
    // A late report of nothing refunded does not bring the money back either.
    let stale = apply(&app, &report(&a, Report::default())).await;
    assert_eq!(stale.after.reversal.refunded, a.amount);
    assert_eq!(deal_of(&app, &a).await.status, "lost");

    // A reversal job run twice (a crash after the CRM's answer) writes its note once.
    let job = Job::Reversal {
        attempt_id: a.id.clone(),
    };
    let mut tx = app.ctx.db.begin().await.unwrap();
    app.ctx
        .queue
        .enqueue(&mut tx, &job, Some(&a.lead_id), Duration::ZERO)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.ctx.queue.wake();
    app.settle().await;
    assert_eq!(notes_containing(&app, "Reembolsado: COP 199.000,00").await, 1);

    let leads = app.leads().await;
    let exported = &leads[0]["attempts"][0];
    assert_eq!(exported["standing"], "refunded");
    assert_eq!(exported["refunded_minor"], 19_900_000);
    assert_eq!(exported["deal_status"], "lost");
    let metrics = app.ctx.metrics.render().unwrap();
    assert!(
        metrics.contains(r#"leadgate_payment_reversals_total{gateway="sandbox",standing="refunded"} 1"#),
        "{metrics}"
    );
}

async fn partial_refunds_add_up_and_keep_the_deal_won(backend: Backend) {
    let app = spawn_with(backend, Options::default()).await;
    let a = paid(&app, "bea@example.com").await;
    apply(&app, &report(&a, refunded(5_000_000))).await;
    let after = apply(&app, &report(&a, refunded(9_000_000))).await;
    assert_eq!(after.after.reversal.refunded.amount_minor(), 9_000_000);
    assert_eq!(
        deal_of(&app, &a).await.status,
        "won",
        "a partial refund is still a sale"
    );
    assert_eq!(notes_containing(&app, "Reembolsado: COP 50.000,00").await, 1);
    assert_eq!(notes_containing(&app, "Reembolsado: COP 90.000,00").await, 1);
    let deal = deal_of(&app, &a).await;
    let fields: serde_json::Value = serde_json::from_str(deal.payment_fields.as_deref().unwrap()).unwrap();
    assert_eq!(fields["payment_status"], "partially_refunded");
    assert_eq!(fields["amount_refunded"], "90000.00");
    assert_eq!(fields["amount_paid"], "199000.00");
    assert_eq!(fields["gateway"], "sandbox");
    assert_eq!(app.leads().await[0]["attempts"][0]["standing"], "partially_refunded");
}

async fn a_chargeback_opens_a_task_with_its_deadline_then_loses_the_deal(backend: Backend) {
    let app = spawn_with(backend, Options::default()).await;
    let a = paid(&app, "caro@example.com").await;
    let due = 1_893_456_000_000; // 2030-01-01
    let open = Report {
        dispute: Some(Dispute {
            stage: DisputeStage::Open,
            due_at: Some(due),
            reason: Some("fraudulent".into()),
        }),
        ..Report::default()
    };
    apply(&app, &report(&a, open.clone())).await;
    // Evidence update: the same open dispute again; still one task.
    apply(&app, &report(&a, open)).await;
    let tasks: Vec<_> = app
        .tasks()
        .await
        .into_iter()
        .filter(|t| t.subject.contains("contracargo"))
        .collect();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].due_at, due);
    assert!(tasks[0].body.contains("fraudulent"), "{}", tasks[0].body);
    // The deadline as the lead's language writes dates, in the offer's zone (UTC here).
    assert!(tasks[0].body.contains("1 ene 2030, 00:00 (UTC)"), "{}", tasks[0].body);
    assert_eq!(
        deal_of(&app, &a).await.status,
        "won",
        "an open dispute is not a loss yet"
    );

    let lost = Report {
        dispute: Some(Dispute {
            stage: DisputeStage::Lost,
            due_at: None,
            reason: None,
        }),
        ..Report::default()
    };
    apply(&app, &report(&a, lost)).await;
    let deal = deal_of(&app, &a).await;
    assert_eq!(
        (deal.status.as_str(), deal.lost_reason.as_deref()),
        ("lost", Some("Chargeback lost"))
    );
    let exported = &app.leads().await[0]["attempts"][0];
    assert_eq!(exported["standing"], "dispute_lost");
    assert_eq!(exported["dispute"], "lost");
}

async fn the_offer_decides_where_a_refunded_deal_goes(backend: Backend) {
    for (policy, status, stage) in [
        (DealOnRefund::KeepWon, "won", "Won"),
        (DealOnRefund::Stage("Reembolsado".into()), "open", "Reembolsado"),
    ] {
        let tweak_policy = policy.clone();
        let opts = Options {
            tweak: Box::new(move |s| {
                for offer in &mut s.offers {
                    offer.on_refund = tweak_policy.clone();
                }
            }),
            ..Options::default()
        };
        let app = spawn_with(backend.clone(), opts).await;
        let a = paid(&app, "dora@example.com").await;
        apply(&app, &report(&a, refunded(a.amount.amount_minor()))).await;
        let deal = deal_of(&app, &a).await;
        assert_eq!(
            (deal.status.as_str(), deal.stage.as_str()),
            (status, stage),
            "{policy:?}"
        );
        assert_eq!(
            notes_containing(&app, "Reembolsado: COP 199.000,00").await,
            1,
            "{policy:?}"
        );
    }
}

async fn a_refund_beyond_the_payment_or_for_another_checkout_changes_nothing(backend: Backend) {
    let app = spawn_with(backend, Options::default()).await;
    let a = paid(&app, "eva@example.com").await;
    let over = apply(&app, &report(&a, refunded(a.amount.amount_minor() + 1))).await;
    assert_eq!(over.after.reversal_version, 0);
    let elsewhere = Observation {
        checkout_ref: Some("sbx_someone_elses".into()),
        ..report(&a, refunded(a.amount.amount_minor()))
    };
    let other = apply(&app, &elsewhere).await;
    assert_eq!(other.after.reversal_version, 0);
    let another_payment = Observation {
        gateway_ref: Some("sbx_another_payment".into()),
        ..report(&a, refunded(a.amount.amount_minor()))
    };
    assert_eq!(apply(&app, &another_payment).await.after.reversal_version, 0);
    let nameless = Observation {
        reference: None,
        ..report(&a, refunded(a.amount.amount_minor()))
    };
    let seen = attempts::get(&app.ctx.db, &a.id).await.unwrap().unwrap();
    let after = settle::apply(&app.ctx, seen, &nameless, Source::Webhook, None)
        .await
        .unwrap();
    assert_eq!(after.after.reversal_version, 0);
    app.settle().await;
    assert_eq!(deal_of(&app, &a).await.status, "won");
    assert_eq!(notes_containing(&app, "Reembolsado").await, 0);
    let metrics = app.ctx.metrics.render().unwrap();
    assert!(
        metrics.contains(r#"leadgate_payment_mismatches_total{gateway="sandbox"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"leadgate_requests_refused_total{what="reversal",why="exceeds_paid"} 1"#),
        "{metrics}"
    );
}

async fn a_second_payment_for_one_purchase_is_flagged_with_one_task(backend: Backend) {
    let opts = Options {
        toml: "[forms]\nduplicate_window = \"0s\"\nmin_fill_time = \"0s\"\n".into(),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    // Two checkouts opened before either was paid (two tabs, a new form after a while).
    let first = app.start_checkout("demo", "Fer Gómez", "fer@example.com").await;
    let second = app.start_checkout("demo", "Fer Gómez", "FER@example.com").await;
    let first_id = attempt_id_of(&app.press(&first, "approve").await);
    let second_id = attempt_id_of(&app.press(&second, "approve").await);
    eventually("both deals to be won", || async {
        app.deals().await.iter().filter(|d| d.status == "won").count() == 2
    })
    .await;
    app.settle().await;
    let flagged = attempts::get(&app.ctx.db, &second_id).await.unwrap().unwrap();
    assert_eq!(flagged.after.duplicate_of.as_deref(), Some(first_id.as_str()));
    let one = attempts::get(&app.ctx.db, &first_id).await.unwrap().unwrap();
    assert_eq!(one.after.duplicate_of, None, "the first payment is the purchase");
    let refund_tasks = |tasks: Vec<builtin_crm::TaskView>| {
        tasks
            .into_iter()
            .filter(|t| t.subject.contains("pago duplicado"))
            .count()
    };
    assert_eq!(refund_tasks(app.tasks().await), 1);
    assert_eq!(notes_containing(&app, &format!("Primer pago: {first_id}")).await, 1);

    // Run again (a crash after the CRM answered): still one task, one note.
    let job = Job::DuplicatePayment {
        attempt_id: second_id.clone(),
    };
    let mut tx = app.ctx.db.begin().await.unwrap();
    app.ctx
        .queue
        .enqueue(&mut tx, &job, Some(&flagged.lead_id), Duration::ZERO)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.ctx.queue.wake();
    app.settle().await;
    assert_eq!(refund_tasks(app.tasks().await), 1);
    assert_eq!(notes_containing(&app, &format!("Primer pago: {first_id}")).await, 1);

    let listed = attempts::after_approval(&app.ctx.db, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [second_id.as_str()]
    );
    let leads = app.leads().await;
    let exported: Vec<_> = leads
        .iter()
        .flat_map(|l| l["attempts"].as_array().unwrap().clone())
        .collect();
    let dup = exported.iter().find(|a| a["id"] == second_id.as_str()).unwrap();
    assert_eq!(dup["duplicate_of"], first_id.as_str());
    let metrics = app.ctx.metrics.render().unwrap();
    assert!(
        metrics.contains(r#"leadgate_duplicate_payments_total{gateway="sandbox"} 1"#),
        "{metrics}"
    );
}

/// Both payments of one purchase confirmed in the same instant (two webhooks, two
/// workers): one of the two, never neither, is the second payment.
async fn two_payments_approved_at_once_flag_exactly_one(backend: Backend) {
    let opts = Options {
        toml: "[forms]\nduplicate_window = \"0s\"\nmin_fill_time = \"0s\"\n".into(),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    for round in 0..5 {
        let email = format!("gil{round}@example.com");
        for _ in 0..2 {
            app.start_checkout("demo", "Gil Souza", &email).await;
        }
        let leads = app.leads().await;
        let ids: Vec<String> = leads
            .iter()
            .filter(|l| l["email"] == email.as_str())
            .flat_map(|l| l["attempts"].as_array().unwrap().clone())
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 2);
        let mut runs = Vec::new();
        for id in &ids {
            let a = attempts::get(&app.ctx.db, id).await.unwrap().unwrap();
            let seen = Observation::status(Some(a.id.clone()), None, PaymentStatus::Approved);
            let ctx = app.ctx.clone();
            runs.push(tokio::spawn(async move {
                settle::apply(&ctx, a, &seen, Source::Webhook, None).await.unwrap()
            }));
        }
        let mut flagged = 0;
        for run in runs {
            if run.await.unwrap().after.duplicate_of.is_some() {
                flagged += 1;
            }
        }
        assert_eq!(flagged, 1, "round {round}");
    }
}
