//! Customer emails end to end, to the in-process SMTP sink: the receipt once per payment
//! in the lead's language, recovery emails as follow-up steps, the unsubscribe link that
//! stops the next one, and no second copy when a try may already have delivered it.

use std::time::Duration;

use leadgate::jobs::{FollowUpReason, Job};
use leadgate::store::followups;

use crate::both_backends;
use crate::smtp_sink::{Received, SmtpSink};
use crate::support::{eventually, location, spawn_with, Backend, Options, TestApp};

both_backends!(
    the_receipt_goes_out_once_in_the_customers_language,
    a_recovery_email_carries_the_resume_link_and_unsubscribing_stops_the_next,
    a_refused_email_is_retried_until_it_goes_out_once,
    an_email_that_may_have_gone_out_is_never_sent_again,
    where_consent_is_required_only_leads_who_gave_it_get_reminders
);

fn config(port: u16) -> String {
    format!(
        r#"
[email]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "Acme Ventas <ventas@acme.test>"
timeout = "3s"

[followup]
receipt_email = true

[[followup.steps]]
after = "1h"
kind = "email"

[[followup.steps]]
after = "2h"
kind = "email"

[[offers]]
slug = "mail"
title = "Taller de Ventas"
price_minor = 9900000
currency = "COP"

[[offers]]
slug = "consent"
title = "Taller con permiso"
price_minor = 9900000
currency = "COP"

[offers.followup]
email_consent = "required"
"#
    )
}

async fn app_with_sink(backend: Backend) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let opts = Options {
        toml: config(sink.port()),
        ..Options::default()
    };
    (spawn_with(backend, opts).await, sink)
}

/// Submits the `mail` offer in `lang`; returns (sandbox URL, attempt id).
async fn start(app: &TestApp, lang: &str, email: &str) -> (String, String) {
    let form = [("name", "João Silva"), ("email", email), ("phone", "300 123 4567")];
    let res = app.post_form_in("/c/mail", lang, &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let checkout = location(&res);
    let leads = app.leads().await;
    let lead = leads.iter().find(|l| l["email"] == email).unwrap();
    let id = lead["attempts"][0]["id"].as_str().unwrap().to_owned();
    (checkout, id)
}

/// Queues `job` once more, as a retry after a crash or a second worker would run it.
async fn run_again(app: &TestApp, job: &Job) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    app.ctx.queue.enqueue(&mut tx, job, None, Duration::ZERO).await.unwrap();
    tx.commit().await.unwrap();
    app.ctx.queue.wake();
}

fn delivered(sink: &SmtpSink) -> Vec<Received> {
    sink.messages().into_iter().filter(|m| m.acknowledged).collect()
}

async fn wait_messages(app: &TestApp, sink: &SmtpSink, n: usize) -> Vec<Received> {
    eventually(&format!("{n} emails"), || async { sink.messages().len() >= n }).await;
    app.settle().await;
    let got = sink.messages();
    assert_eq!(got.len(), n, "{got:#?}");
    got
}

async fn the_receipt_goes_out_once_in_the_customers_language(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    let (checkout, id) = start(&app, "pt-BR", "joao@example.com").await;
    let back = app.press(&checkout, "approve").await;
    let page = app.get(&back).await.text().await.unwrap();
    assert!(
        page.contains("Enviamos a confirmação para o seu e-mail"),
        "the paid page promises it: {page}"
    );

    let got = wait_messages(&app, &sink, 1).await;
    let receipt = &got[0];
    assert_eq!(receipt.to_email.as_deref(), Some("joao@example.com"));
    assert_eq!(
        receipt.subject.as_deref(),
        Some("Recebemos seu pagamento de Taller de Ventas")
    );
    assert_eq!(receipt.content_language.as_deref(), Some("pt-BR"));
    let text = receipt.text.clone().unwrap_or_default();
    assert!(
        text.contains("COP 99.000") && text.contains(&id),
        "amount and reference: {text}"
    );
    assert!(receipt.html.is_some(), "an HTML part too");
    assert_eq!(receipt.list_unsubscribe, None, "a receipt is not a reminder");

    // A retried job (a crash after the send, a second worker) sends nothing more.
    let job = Job::Receipt { attempt_id: id.clone() };
    run_again(&app, &job).await;
    app.settle().await;
    assert_eq!(sink.messages().len(), 1, "one receipt per payment");
    // Paid: the reminder steps never fire.
    app.advance(Duration::from_secs(3 * 3600)).await;
    app.settle().await;
    assert_eq!(sink.messages().len(), 1, "no reminder for a customer who paid");
}

async fn a_recovery_email_carries_the_resume_link_and_unsubscribing_stops_the_next(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    let (_, id) = start(&app, "es", "ana@example.com").await;
    app.advance(Duration::from_secs(3600)).await;
    let got = wait_messages(&app, &sink, 1).await;
    let first = &got[0];
    assert_eq!(first.content_language.as_deref(), Some("es"));
    let text = first.text.clone().unwrap_or_default();
    assert!(text.contains(&app.url("/r/")), "the resume link: {text}");
    let unsubscribe = first.list_unsubscribe.clone().expect("a List-Unsubscribe header");
    assert_eq!(
        first.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = unsubscribe.trim_matches(|c| c == '<' || c == '>').to_owned();
    assert!(url.starts_with(&app.url("/u/")), "{url}");

    // A link scanner's GET shows the page and changes nothing.
    let page = app.get(&url).await;
    assert_eq!(page.status(), 200);
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    let perms = followups::email_permissions(&app.ctx.db, &lead_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!perms.unsubscribed, "a GET unsubscribes nobody");
    // A forged token is refused.
    let forged = app.get(&format!("{url}x")).await;
    assert_ne!(forged.status(), 200);

    // The mail client's one-click POST (RFC 8058).
    let res = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let perms = followups::email_permissions(&app.ctx.db, &lead_id)
        .await
        .unwrap()
        .unwrap();
    assert!(perms.unsubscribed);

    app.advance(Duration::from_secs(3600)).await;
    app.settle().await;
    assert_eq!(sink.messages().len(), 1, "no reminder after unsubscribing");
    let _ = id;
}

async fn a_refused_email_is_retried_until_it_goes_out_once(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    start(&app, "en", "bo@example.com").await;
    sink.fail_next(1, 451);
    app.advance(Duration::from_secs(3600)).await;
    eventually("the retry delivered", || async { !delivered(&sink).is_empty() }).await;
    app.settle().await;
    assert_eq!(delivered(&sink).len(), 1, "one email, however many tries");
    let rows = followups::emails(&app.ctx.db, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "sent");
    assert!(
        rows[0].last_error.as_deref().unwrap_or_default().contains("451"),
        "{rows:?}"
    );
}

async fn an_email_that_may_have_gone_out_is_never_sent_again(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    let (_, id) = start(&app, "en", "cy@example.com").await;
    sink.drop_after_data_next();
    app.advance(Duration::from_secs(3600)).await;
    wait_messages(&app, &sink, 1).await;
    // The same step again, as a retry after a crash would run it.
    let job = Job::FollowUp {
        attempt_id: id.clone(),
        reason: FollowUpReason::Abandoned { step: 0 },
    };
    run_again(&app, &job).await;
    app.settle().await;
    assert_eq!(
        sink.messages().len(),
        1,
        "never a second copy of a message that may have arrived"
    );
    let rows = followups::emails(&app.ctx.db, 10).await.unwrap();
    assert_eq!(rows[0].state, "unknown");
}

async fn where_consent_is_required_only_leads_who_gave_it_get_reminders(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    let asks = app.get("/c/consent").await.text().await.unwrap();
    assert!(asks.contains(r#"name="email_consent""#), "the form asks: {asks}");
    let plain = app.get("/c/mail").await.text().await.unwrap();
    assert!(
        !plain.contains(r#"name="email_consent""#),
        "no box where no consent is needed"
    );

    for (email, consent) in [("si@example.com", true), ("no@example.com", false)] {
        let mut form = vec![("name", "Eva Luna"), ("email", email), ("phone", "300 123 4567")];
        if consent {
            form.push(("email_consent", "yes"));
        }
        let res = app.post_form("/c/consent", &form).await;
        assert_eq!(res.status(), 303);
    }
    app.advance(Duration::from_secs(3600)).await;
    wait_messages(&app, &sink, 1).await;
    let to: Vec<_> = sink.messages().into_iter().filter_map(|m| m.to_email).collect();
    assert_eq!(to, ["si@example.com"], "no reminder without consent");
}
