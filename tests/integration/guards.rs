//! The public form as an attacker, a bot and another site would try it: no token, a
//! foreign origin, a honeypot, a submit faster than a person types, a burst from one
//! address or many. Each is refused with a page a person can get past, stores nothing and
//! reaches no CRM; customers within the limits still get their checkout.

use std::time::Duration;

use crate::both_backends;
use crate::support::{hidden_field, spawn, spawn_with, Backend, Options, TestApp};

const FORM: [(&str, &str); 3] = [
    ("name", "Ana Gómez"),
    ("email", "ana@example.com"),
    ("phone", "3001234567"),
];

/// Leads stored and deals the built-in CRM was asked to make.
async fn stored(app: &TestApp) -> (usize, usize) {
    (app.leads().await.len(), app.deals().await.len())
}

fn with(toml: &str) -> Options {
    Options {
        toml: toml.to_owned(),
        ..Options::default()
    }
}

fn email(i: usize) -> String {
    format!("burst-{i}@example.com")
}

async fn post_with_token(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = FORM.to_vec();
    form.push(("form_token", token));
    form.extend_from_slice(extra);
    app.http.post(app.url("/c/demo")).form(&form).send().await.unwrap()
}

async fn forged_or_foreign_posts_are_refused_with_a_localized_page(backend: Backend) {
    let app = spawn(backend).await;
    // No token at all, as a script or a cross-site form would send.
    let res = app
        .http
        .post(app.url("/c/demo"))
        .header("accept-language", "en")
        .form(&FORM)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(page.contains("For your security, check your details"), "{page}");
    assert!(page.contains(r#"value="ana@example.com""#), "what was typed is kept");

    // A token made for this browser, sent from another site's page.
    let token = app.form_token("/c/demo").await;
    let res = app
        .http
        .post(app.url("/c/demo"))
        .header("origin", "https://attacker.example")
        .form(&[FORM[0], FORM[1], FORM[2], ("form_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A token another browser was served (its cookie is not this one's).
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = other
        .post(app.url("/c/demo"))
        .form(&[FORM[0], FORM[1], FORM[2], ("form_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A token for another offer.
    let fast = app.form_token("/c/fast").await;
    assert_eq!(post_with_token(&app, &fast, &[]).await.status(), 403);
    assert_eq!(stored(&app).await, (0, 0), "nothing stored, nothing sent to the CRM");

    // The page that refused it carries a fresh token: pressing again goes through.
    let retry = hidden_field(&page, "form_token").unwrap();
    assert_eq!(post_with_token(&app, &retry, &[]).await.status(), 303);
    // Our own origin is of course fine.
    let token = app.form_token("/c/demo").await;
    let own = app
        .http
        .post(app.url("/c/demo"))
        .header("origin", app.base.clone())
        .form(&[FORM[0], ("email", "own@example.com"), FORM[2], ("form_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 303);
    assert_eq!(stored(&app).await.0, 2);
}

/// Safari keeps no cookie for a form framed in the marketing site; its `Origin` header,
/// which a page of ours always sends, stands in for the cookie.
async fn a_browser_without_cookies_gets_through_from_our_own_page(backend: Backend) {
    let app = spawn(backend).await;
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = cookieless.get(app.url("/c/demo")).send().await.unwrap();
    let token = hidden_field(&page.text().await.unwrap(), "form_token").unwrap();
    let post = |origin: Option<String>| {
        let mut req = cookieless.post(app.url("/c/demo"));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.form(&[FORM[0], FORM[1], FORM[2], ("form_token", &token)]).send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403, "no cookie and no proof");
    assert_eq!(
        post(Some("https://attacker.example".into())).await.unwrap().status(),
        403
    );
    assert_eq!(stored(&app).await.0, 0);
    assert_eq!(post(Some(app.base.clone())).await.unwrap().status(), 303);
    assert_eq!(stored(&app).await.0, 1);
}

async fn a_filled_honeypot_stores_nothing_and_a_person_gets_past(backend: Backend) {
    let app = spawn(backend).await;
    let token = app.form_token("/c/demo").await;
    let res = post_with_token(&app, &token, &[("website", "http://spam.example")]).await;
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(page.contains("Por tu seguridad"), "{page}");
    assert!(!page.contains("spam.example"), "the honeypot comes back empty");
    app.settle().await;
    assert_eq!(stored(&app).await, (0, 0));
    let again = hidden_field(&page, "form_token").unwrap();
    assert_eq!(post_with_token(&app, &again, &[("website", "")]).await.status(), 303);
    assert_eq!(stored(&app).await.0, 1);
}

async fn a_submit_faster_than_a_person_is_asked_to_confirm(backend: Backend) {
    let app = spawn_with(backend, with("[forms]\nmin_fill_time = \"2s\"\n")).await;
    let token = app.form_token("/c/demo").await;
    let res = post_with_token(&app, &token, &[]).await;
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert_eq!(stored(&app).await, (0, 0));
    // The confirm page's token keeps the time already spent on the form.
    let again = hidden_field(&page, "form_token").unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = post_with_token(&app, &again, &[]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert_eq!(stored(&app).await.0, 1);
}

/// Submits one valid form as the client at `ip` (seen through a trusted proxy).
async fn submit_from(app: &TestApp, token: &str, ip: &str, email: &str) -> reqwest::Response {
    app.http
        .post(app.url("/c/demo"))
        .header("x-forwarded-for", ip)
        .form(&[FORM[0], ("email", email), FORM[2], ("form_token", token)])
        .send()
        .await
        .unwrap()
}

async fn a_burst_from_one_address_is_limited_and_others_still_get_through(backend: Backend) {
    let toml = "[limits]\nsubmit_per_ip = \"5/1m\"\n[proxy]\ntrusted = [\"127.0.0.1\"]\n";
    let app = spawn_with(backend, with(toml)).await;
    let token = app.form_token("/c/demo").await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let res = submit_from(&app, &token, "198.51.100.7", &email(i)).await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            let page = res.text().await.unwrap();
            assert!(page.contains("Demasiados intentos"), "{page}");
        }
    }
    assert_eq!(&statuses[..5], &[303; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another customer behind the same proxy is not held back by the bot.
    assert_eq!(
        submit_from(&app, &token, "203.0.113.9", "other@example.com")
            .await
            .status(),
        303
    );
    app.settle().await;
    assert_eq!(
        stored(&app).await,
        (6, 6),
        "only the customers within the limit became deals"
    );
}

async fn forwarded_for_from_an_untrusted_peer_changes_nothing(backend: Backend) {
    let app = spawn_with(backend, with("[limits]\nsubmit_per_ip = \"3/1m\"\n")).await;
    let token = app.form_token("/c/demo").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        // A bot rotating the header it controls is still one address.
        let res = submit_from(&app, &token, &format!("192.0.2.{i}"), &email(i)).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [303, 303, 303, 429, 429, 429]);
}

async fn the_offer_limit_caps_what_reaches_the_crm_across_addresses(backend: Backend) {
    let toml = "[limits]\nsubmit_per_ip = \"off\"\nsubmit_per_offer = \"4/1m\"\n[proxy]\ntrusted = [\"127.0.0.1\"]\n";
    let app = spawn_with(backend, with(toml)).await;
    let token = app.form_token("/c/demo").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = submit_from(&app, &token, &format!("198.51.100.{i}"), &email(i)).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [303, 303, 303, 303, 429, 429, 429, 429]);
    // Junk (no token) does not use up the offer's budget: checked before it is counted.
    let app = spawn_with(Backend::Sqlite, with(toml)).await;
    for _ in 0..10 {
        let res = app.http.post(app.url("/c/demo")).form(&FORM).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
    let token = app.form_token("/c/demo").await;
    assert_eq!(
        submit_from(&app, &token, "198.51.100.1", "real@example.com")
            .await
            .status(),
        303
    );
}

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = spawn(backend).await;
    let checkout = app.start_checkout("demo", "Ana Gómez", "ana@example.com").await;
    let mut responses = Vec::new();
    for path in [
        "/c/demo",
        "/healthz",
        "/no/such/page",
        "/admin/login",
        "/static/app.css",
        "/r/x",
    ] {
        responses.push((path.to_owned(), app.get(path).await));
    }
    responses.push(("sandbox page".into(), app.get(&checkout).await));
    let hook = app.post_raw("/webhooks/sandbox", "application/json", "{}").await;
    responses.push(("webhook".into(), hook));
    let refused = app.post_form_bare("/c/demo", &FORM).await;
    responses.push(("refused submit".into(), refused));
    for (what, res) in &responses {
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{what}: {csp:?}"
        );
        assert!(!csp.contains("unsafe-inline"), "{what}");
        // An offer's form may be framed by us (the admin preview; see embed.rs), no other page.
        let (ancestors, xfo) = if what == "/c/demo" || what == "refused submit" {
            ("frame-ancestors 'self'", "SAMEORIGIN")
        } else {
            ("frame-ancestors 'none'", "DENY")
        };
        assert!(csp.ends_with(ancestors), "{what}: {csp:?}");
        assert_eq!(
            h.get("x-frame-options").map(|v| v.to_str().unwrap()),
            Some(xfo),
            "{what}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{what}: no HSTS over plain http"
        );
    }
}

async fn offers_may_be_framed_only_by_the_sites_they_name_and_https_gets_hsts(backend: Backend) {
    let toml = "[[offers]]\nslug = \"embed\"\ntitle = \"Embebido\"\nprice_minor = 10000\ncurrency = \"COP\"\n\
                embed_origins = [\"https://shop.example.com\"]\n";
    let opts = Options {
        toml: toml.into(),
        tweak: Box::new(|s| s.public_url = Some("https://pay.example.com".parse().unwrap())),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    let res = app.get("/c/embed").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.ends_with("frame-ancestors 'self' https://shop.example.com"),
        "{csp}"
    );
    assert!(res.headers().get("x-frame-options").is_none());
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    // Over https the nonce cookie must reach the form inside the shop's frame.
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=None", "Partitioned"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    let other = app.get("/c/demo").await;
    let csp = other.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
}

async fn the_sandbox_is_gone_when_switched_off(backend: Backend) {
    let app = spawn(backend).await;
    let checkout = app.start_checkout("demo", "Ana Gómez", "ana@example.com").await;
    let token = app.form_token(&checkout).await;
    // The same database served by an instance whose sandbox is off.
    let off = crate::support::spawn_beside(
        &app,
        Options {
            tweak: Box::new(|s| s.sandbox.enabled = false),
            ..Options::default()
        },
    )
    .await;
    let path = checkout.trim_start_matches(&app.base).to_owned();
    assert_eq!(off.get(&path).await.status(), 404);
    let res = off
        .http
        .post(off.url(&path))
        .form(&[("outcome", "approve"), ("form_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        off.post_raw("/webhooks/sandbox", "application/json", "{}")
            .await
            .status(),
        404
    );
    let attempt = app.leads().await[0]["attempts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        off.get(&format!("/return/sandbox?attempt={attempt}")).await.status(),
        404
    );
    // And the sandbox page itself refuses a press that did not come from it.
    let res = app
        .http
        .post(&checkout)
        .form(&[("outcome", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let lead = &app.leads().await[0];
    assert_ne!(lead["attempts"][0]["status"], "approved");
    // Pressed from the page it served, it works.
    let back = app.press(&checkout, "approve").await;
    assert!(location_is_return(&back), "{back}");
}

fn location_is_return(url: &str) -> bool {
    url.contains("/return/sandbox?attempt=")
}

async fn a_plaintext_master_key_is_removed_once_a_secret_key_is_set(backend: Backend) {
    let app = spawn(backend).await;
    // As an earlier zero-config run on this database would have left it.
    let stored = leadgate::store::secrets::get_or_insert(&app.ctx.db, "master_key", "plain-old-key").await;
    assert_eq!(stored.unwrap(), "plain-old-key");
    let _second = crate::support::spawn_beside(&app, Options::default()).await;
    let now = leadgate::store::secrets::get_or_insert(&app.ctx.db, "master_key", "absent").await;
    assert_eq!(now.unwrap(), "absent", "the stored key was removed");
}

both_backends!(
    forged_or_foreign_posts_are_refused_with_a_localized_page,
    a_browser_without_cookies_gets_through_from_our_own_page,
    a_filled_honeypot_stores_nothing_and_a_person_gets_past,
    a_submit_faster_than_a_person_is_asked_to_confirm,
    a_burst_from_one_address_is_limited_and_others_still_get_through,
    forwarded_for_from_an_untrusted_peer_changes_nothing,
    the_offer_limit_caps_what_reaches_the_crm_across_addresses,
    every_response_carries_the_security_headers,
    offers_may_be_framed_only_by_the_sites_they_name_and_https_gets_hsts,
    the_sandbox_is_gone_when_switched_off,
    a_plaintext_master_key_is_removed_once_a_secret_key_is_set,
);

#[test]
fn production_refuses_the_sandbox_and_a_missing_secret_key_in_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.toml");
    let offer = "[[offers]]\nslug = \"curso\"\ntitle = \"Curso\"\nprice_minor = 4900\ncurrency = \"USD\"\ngateway = \"stripe\"\n";
    let toml = format!("public_url = \"https://pay.example.com\"\n[sandbox]\nenabled = true\n[gateways.stripe]\nenvironment = \"production\"\n{offer}");
    std::fs::write(&file, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .arg("check-config")
        .arg(&file)
        .env("LEADGATE_STRIPE_SECRET_KEY", "sk_live_123")
        .env("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_live")
        .env_remove("LEADGATE_SECRET_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: sandbox.enabled:") && l.contains("stripe")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("error: LEADGATE_SECRET_KEY:")),
        "{text}"
    );
    // `serve` refuses the same configuration before it listens.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .env("LEADGATE_STRIPE_SECRET_KEY", "sk_live_123")
        .env("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_live")
        .env("LEADGATE_SECRET_KEY", "k".repeat(40))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("sandbox.enabled:"), "{all}");
}
