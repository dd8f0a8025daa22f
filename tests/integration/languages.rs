//! The visitor's language, once chosen, holds on every page that follows: the sandbox
//! checkout, abandoning it, the declined page's retry, the resume link; offer texts come in
//! that language; the admin pages speak the operator's language with its money and times.

use crate::both_backends;
use crate::support::{location, spawn, spawn_with, Backend, Options, TestApp};

/// An English visitor's submit (the form's hidden `lang`), over a Spanish browser.
async fn english_checkout(app: &TestApp) -> String {
    let form = [
        ("name", "Ann Lee"),
        ("email", "ann@example.com"),
        ("phone", "300 123 4567"),
        ("lang", "en"),
    ];
    let res = app.post_form_in("/c/demo?lang=en", "es", &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    location(&res)
}

/// GET as a Spanish browser: only what the app carried can make the page English.
async fn page_es(app: &TestApp, url: &str) -> String {
    let path = url.strip_prefix(&app.base).unwrap_or(url);
    let res = app.get_in(path, "es").await;
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.text().await.unwrap()
}

both_backends!(an_english_lead_who_abandons_comes_back_to_english);
async fn an_english_lead_who_abandons_comes_back_to_english(backend: Backend) {
    let app = spawn(backend).await;
    let sandbox = english_checkout(&app).await;
    let back = app.press(&sandbox, "abandon").await;
    assert!(back.contains("lang=en"), "{back}");
    let html = page_es(&app, &back).await;
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    assert!(html.contains("Continue to payment"), "{html}");
}

/// An offer written in Portuguese with an English title, and a price note.
const TRANSLATED: &str = r#"
[[offers]]
slug = "curso"
lang = "pt-BR"
title = { "pt-BR" = "Curso de Vendas", en = "Sales Course" }
description = { "pt-BR" = "Doze módulos", es = "Doce módulos" }
price_note = { "pt-BR" = "Pagamento único", en = "One payment, lifetime access" }
price_minor = 19990
currency = "BRL"
"#;

async fn translated(backend: Backend) -> TestApp {
    let opts = Options {
        toml: TRANSLATED.into(),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

both_backends!(offer_texts_follow_the_visitor_and_fall_back_to_the_offers_language);
async fn offer_texts_follow_the_visitor_and_fall_back_to_the_offers_language(backend: Backend) {
    let app = translated(backend).await;
    let en = app.get_in("/c/curso", "en-US").await.text().await.unwrap();
    assert!(en.contains("<h1>Sales Course</h1>"), "{en}");
    assert!(en.contains("One payment, lifetime access"), "{en}");
    // No English description: the offer's own language stands in.
    assert!(en.contains("Doze módulos"), "{en}");
    let es = app.get_in("/c/curso", "es").await.text().await.unwrap();
    assert!(
        es.contains("<h1>Curso de Vendas</h1>") && es.contains("Doce módulos"),
        "{es}"
    );
    assert!(es.contains("Pagamento único"), "{es}");

    // The sandbox checkout and the paid page name the offer in the lead's language too.
    let form = [
        ("name", "Ann Lee"),
        ("email", "ann@example.com"),
        ("phone", "300 123 4567"),
    ];
    let res = app.post_form_in("/c/curso", "en", &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let sandbox = location(&res);
    let page = page_es(&app, &sandbox).await;
    assert!(page.contains("<h1>Sales Course</h1>"), "{page}");
    let back = app.press(&sandbox, "approve").await;
    let paid = page_es(&app, &back).await;
    assert!(paid.contains("<dd>Sales Course</dd>"), "{paid}");
    // Sales read the deal in the offer's language.
    crate::support::eventually("the deal", || async { !app.deals().await.is_empty() }).await;
    let deals = app.deals().await;
    assert!(deals[0].title.starts_with("Curso de Vendas"), "{}", deals[0].title);
}

both_backends!(the_sandbox_checkout_speaks_the_leads_language);
async fn the_sandbox_checkout_speaks_the_leads_language(backend: Backend) {
    let app = spawn(backend).await;
    let form = [
        ("name", "Ana Souza"),
        ("email", "ana@example.com"),
        ("phone", "300 123 4567"),
    ];
    let res = app.post_form_in("/c/demo", "pt-BR", &form).await;
    assert_eq!(res.status(), 303);
    let sandbox = location(&res);
    let html = page_es(&app, &sandbox).await;
    assert!(html.contains(r#"<html lang="pt-BR">"#), "{html}");
    for pt in [
        "Aprovar o pagamento",
        "Recusar o pagamento",
        "Desistir e voltar",
        "Referência",
        "Pagamento de teste",
    ] {
        assert!(html.contains(pt), "{pt} missing: {html}");
    }
    assert!(!html.contains("Approve payment"), "{html}");
    // Its outcome comes back in Portuguese, and a closed payment says so in Portuguese.
    let back = app.press(&sandbox, "decline").await;
    assert!(back.contains("lang=pt-BR"), "{back}");
    let declined = page_es(&app, &back).await;
    assert!(declined.contains("O pagamento não foi aprovado"), "{declined}");
    let closed = page_es(&app, &sandbox).await;
    assert!(closed.contains("Este pagamento já foi recusado."), "{closed}");
}

both_backends!(the_declined_pages_retry_keeps_the_language_it_was_shown_in);
async fn the_declined_pages_retry_keeps_the_language_it_was_shown_in(backend: Backend) {
    let app = spawn(backend).await;
    let sandbox = english_checkout(&app).await;
    let back = app.press(&sandbox, "decline").await;
    // The visitor switched the declined page to Portuguese.
    let url = url::Url::parse(&back).unwrap();
    let attempt = url.query_pairs().find(|(k, _)| k == "attempt").unwrap().1.into_owned();
    let declined = page_es(&app, &format!("/return/sandbox?attempt={attempt}&lang=pt-BR")).await;
    let retry = declined
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with("/r/"))
        .unwrap_or_else(|| panic!("no retry link: {declined}"))
        .replace("&amp;", "&");
    assert!(retry.ends_with("?lang=pt-BR"), "{retry}");
    let resume = page_es(&app, &retry).await;
    assert!(resume.contains(r#"<html lang="pt-BR">"#), "{resume}");
    assert!(resume.contains("Continuar para o pagamento"), "{resume}");
    // Its button posts in that language too.
    assert!(resume.contains("?lang=pt-BR\""), "{resume}");
}

both_backends!(the_resume_link_shows_the_leads_language_to_any_browser);
async fn the_resume_link_shows_the_leads_language_to_any_browser(backend: Backend) {
    let app = spawn(backend).await;
    let sandbox = english_checkout(&app).await;
    let back = app.press(&sandbox, "abandon").await;
    // The bare link (as a reminder email carries it) in a Spanish browser.
    let bare = back.split('?').next().unwrap().to_owned();
    let html = page_es(&app, &bare).await;
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    assert!(html.contains("Your payment is not finished yet"), "{html}");
}

both_backends!(the_admin_login_speaks_the_operators_language);
async fn the_admin_login_speaks_the_operators_language(backend: Backend) {
    let app = spawn(backend).await;
    let pt = app.get_in("/admin/login", "pt-BR,pt;q=0.9").await.text().await.unwrap();
    assert!(pt.contains(r#"<html lang="pt-BR">"#), "{pt}");
    for word in [
        "<label for=\"password\">Senha</label>",
        ">Entrar</button>",
        "Administração do leadgate",
    ] {
        assert!(pt.contains(word), "{word}: {pt}");
    }
    let en = app.get_in("/admin/login?lang=en", "pt-BR").await.text().await.unwrap();
    assert!(
        en.contains(">Password</label>") && en.contains(">Sign in</button>"),
        "{en}"
    );
    // A refusal answers in the same language as the page it came from.
    let token = crate::admin::csrf_of(&pt);
    let wrong = app
        .http
        .post(app.url("/admin/login?lang=pt-BR"))
        .form(&[("password", "nope"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("Senha incorreta."));
}

both_backends!(the_admin_page_writes_money_and_times_as_the_operator_reads_them);
async fn the_admin_page_writes_money_and_times_as_the_operator_reads_them(backend: Backend) {
    let opts = Options {
        toml: "[admin]\ntime_zone = \"America/Sao_Paulo\"\n".into(),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    app.start_checkout("demo", "Ana Souza", "ana@example.com").await;
    crate::support::eventually("the deal", || async { !app.deals().await.is_empty() }).await;
    assert_eq!(
        crate::admin::sign_in(&app, crate::support::ADMIN_PASSWORD)
            .await
            .status(),
        303
    );
    let deal = app.deals().await.remove(0);
    let tz = chrono_tz::Tz::America__Sao_Paulo;

    let pt = app.get_in("/admin", "pt-BR").await.text().await.unwrap();
    assert!(
        pt.contains("<h2>Negócios</h2>") && pt.contains("Horários em America/Sao_Paulo"),
        "{pt}"
    );
    assert!(pt.contains("<td>COP 199.000,00</td>"), "{pt}");
    let when = leadgate::domain::local_time::format(deal.updated_at, leadgate::domain::Lang::PtBr, tz);
    assert!(pt.contains(&format!("<small>{when}</small>")), "{when} missing: {pt}");
    assert!(!pt.contains("Z</small>"), "no raw UTC times: {pt}");

    let en = app.get_in("/admin?lang=en", "pt-BR").await.text().await.unwrap();
    assert!(
        en.contains("<h2>Deals</h2>") && en.contains("<td>COP 199,000.00</td>"),
        "{en}"
    );
    let when = leadgate::domain::local_time::format(deal.updated_at, leadgate::domain::Lang::En, tz);
    assert!(en.contains(&format!("<small>{when}</small>")), "{when} missing: {en}");
}

both_backends!(the_receipt_email_names_the_offer_in_the_customers_language);
async fn the_receipt_email_names_the_offer_in_the_customers_language(backend: Backend) {
    let sink = crate::smtp_sink::SmtpSink::start().await;
    let toml = format!(
        "[email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Acme <ventas@acme.test>\"\n\
         [followup]\nreceipt_email = true\n{TRANSLATED}",
        sink.port()
    );
    let app = spawn_with(
        backend,
        Options {
            toml,
            ..Options::default()
        },
    )
    .await;
    let form = [
        ("name", "Ann Lee"),
        ("email", "ann@example.com"),
        ("phone", "300 123 4567"),
    ];
    let res = app.post_form_in("/c/curso", "en", &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    app.press(&location(&res), "approve").await;
    crate::support::eventually("the receipt", || async { !sink.messages().is_empty() }).await;
    let subject = sink.messages().remove(0).subject.unwrap_or_default();
    assert!(subject.contains("Sales Course"), "{subject}");
}

both_backends!(the_unsubscribe_page_names_the_offer_in_the_leads_language);
async fn the_unsubscribe_page_names_the_offer_in_the_leads_language(backend: Backend) {
    let app = translated(backend).await;
    let form = [
        ("name", "Ann Lee"),
        ("email", "ann@example.com"),
        ("phone", "300 123 4567"),
    ];
    let res = app.post_form_in("/c/curso", "en", &form).await;
    assert_eq!(res.status(), 303);
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    let link = leadgate::links::unsubscribe_link(&app.ctx, &lead_id);
    let html = page_es(&app, &link).await;
    assert!(
        html.contains(r#"<html lang="en">"#) && html.contains("Sales Course"),
        "{html}"
    );
}

both_backends!(a_follow_up_tasks_history_writes_dates_in_the_leads_language);
async fn a_follow_up_tasks_history_writes_dates_in_the_leads_language(backend: Backend) {
    let app = spawn(backend).await;
    app.start_checkout("fast", "Ana Pérez", "ana@example.com").await;
    app.advance(std::time::Duration::from_secs(5)).await;
    crate::support::eventually("a follow-up task", || async { !app.tasks().await.is_empty() }).await;
    let task = app.tasks().await.remove(0);
    let lead_id = app.leads().await[0]["id"].as_str().unwrap().to_owned();
    let attempt = leadgate::store::attempts::for_lead(&app.ctx.db, &lead_id)
        .await
        .unwrap()
        .remove(0);
    let tz = app.ctx.settings.offers[1].followup.hours.timezone();
    let when = leadgate::domain::local_time::format(attempt.created_at, leadgate::domain::Lang::Es, tz);
    assert!(task.body.contains(&when), "{when} missing: {}", task.body);
}
