//! The return page and its status poll are unauthenticated GETs anyone can repeat: they
//! are counted per attempt, and the gateway is asked about an attempt at most once per
//! `limits.gateway_status_every`, however often they are loaded. Run against the Mercado
//! Pago fake, which counts what it is asked.

use std::time::Duration;

use crate::both_backends;
use crate::gateways::mercadopago::{payment_reads, FakeMercadoPago};
use crate::gateways::{app_with, only_attempt, submit};
use crate::support::{Backend, TestApp};

/// The Mercado Pago offer, with `[limits]` lines added.
async fn setup(backend: Backend, limits: &str) -> (FakeMercadoPago, TestApp, String) {
    let fake = FakeMercadoPago::start().await;
    let (toml, env) = fake.config();
    let app = app_with(backend, format!("{toml}\n[limits]\n{limits}\n"), env).await;
    submit(&app, "curso-br").await;
    let attempt = only_attempt(&app).await.id;
    (fake, app, attempt)
}

fn return_path(attempt: &str) -> String {
    format!("/return/mercadopago?attempt={attempt}")
}

async fn status_of(app: &TestApp, attempt: &str) -> reqwest::Response {
    app.get(&format!("/status/{attempt}")).await
}

both_backends!(
    a_hammered_return_page_asks_the_gateway_once_and_still_renders,
    views_beyond_the_per_attempt_limit_get_429_with_retry_after,
    the_status_poll_settles_from_the_gateway_once_the_window_has_passed
);

async fn a_hammered_return_page_asks_the_gateway_once_and_still_renders(backend: Backend) {
    let (fake, app, attempt) = setup(backend, r#"return_per_attempt = "100/1m""#).await;
    assert_eq!(payment_reads(&fake).await, 0, "the checkout itself reads no payment");
    // 30 views at once, as a script (or an impatient customer) would.
    let mut views = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (http, url) = (app.http.clone(), app.url(&return_path(&attempt)));
        views.spawn(async move {
            let res = http.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        });
    }
    let mut pages = Vec::new();
    while let Some(view) = views.join_next().await {
        pages.push(view.unwrap());
    }
    assert_eq!(pages.len(), 30);
    for (status, html) in &pages {
        assert_eq!(*status, 200, "{html}");
        assert!(html.contains(r#"data-status="pending""#), "{html}");
    }
    assert_eq!(payment_reads(&fake).await, 1, "one search, then the database's view");

    let html = &pages[0].1;
    assert!(!html.contains("http-equiv"), "no meta refresh: {html}");
    assert!(
        html.contains(r#"<script src="/static/status.js" defer></script>"#),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains(" onload="),
        "nothing inline: {html}"
    );
    assert!(
        html.contains(&format!(r#"data-status-url="/status/{attempt}""#)),
        "{html}"
    );
    assert!(html.contains(r#"role="status""#), "{html}");
    // The no-script way: a visible link to this same page, in its language.
    let check = format!(r#"<a class="button" href="/return/mercadopago?attempt={attempt}&"#);
    assert!(
        html.contains(&check) && html.contains(r#"lang=es">Consultar de nuevo</a>"#),
        "{html}"
    );

    let res = status_of(&app, &attempt).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "pending"})
    );
    assert_eq!(payment_reads(&fake).await, 1, "the poll shares the page's window");

    let script = app.get("/static/status.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("data-status-url"));

    // Only ids we minted, and only attempts that exist.
    let unknown = uuid::Uuid::now_v7().hyphenated().to_string();
    for id in ["nope", unknown.as_str(), &attempt.to_uppercase()] {
        assert_eq!(status_of(&app, id).await.status(), 404, "{id}");
    }
}

async fn views_beyond_the_per_attempt_limit_get_429_with_retry_after(backend: Backend) {
    let (fake, app, attempt) = setup(backend, r#"return_per_attempt = "4/1m""#).await;
    for _ in 0..2 {
        assert_eq!(app.get(&return_path(&attempt)).await.status(), 200);
        assert_eq!(status_of(&app, &attempt).await.status(), 200);
    }
    let page = app.get_in(&return_path(&attempt), "pt-BR").await;
    assert_eq!(page.status(), 429);
    let wait: u64 = page.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&wait), "{wait}");
    assert!(page.text().await.unwrap().contains("Muitas tentativas seguidas"));
    let poll = status_of(&app, &attempt).await;
    assert_eq!(poll.status(), 429);
    assert_eq!(poll.headers()["cache-control"], "no-store");
    assert!(poll.headers().contains_key("retry-after"));
    assert_eq!(payment_reads(&fake).await, 1);
}

async fn the_status_poll_settles_from_the_gateway_once_the_window_has_passed(backend: Backend) {
    let (fake, app, attempt) = setup(backend, r#"gateway_status_every = "1s""#).await;
    let pending = status_of(&app, &attempt)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending");
    assert_eq!(payment_reads(&fake).await, 1);
    fake.payment(1_319_000_009, &attempt, "approved", 299.9);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let approved = status_of(&app, &attempt)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(approved["status"], "approved");
    assert_eq!(payment_reads(&fake).await, 2);
    let page = app.get(&return_path(&attempt)).await.text().await.unwrap();
    assert!(page.contains(r#"data-status="approved""#), "{page}");
    assert!(
        !page.contains("status.js") && !page.contains("data-status-url"),
        "{page}"
    );
    // Paid is final: nothing more to ask.
    assert_eq!(payment_reads(&fake).await, 2);
}
