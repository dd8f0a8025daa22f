//! What operators touch: the admin pages, `check-config` and `leads --json`.

use std::process::Command;

use crate::admin::{csrf_of, sign_in};
use crate::both_backends;
use crate::support::{eventually, location, spawn, Backend, ADMIN_PASSWORD};

both_backends!(admin_pages_need_the_password_and_show_the_crm);

async fn admin_pages_need_the_password_and_show_the_crm(backend: Backend) {
    let app = spawn(backend).await;
    let checkout = app.start_checkout("demo", "Karla Núñez", "karla@example.com").await;
    app.get(&app.press(&checkout, "decline").await).await;
    eventually("a follow-up task", || async { app.tasks().await.len() == 1 }).await;
    eventually("a note on the deal", || async {
        let notes = leadgate::store::builtin_crm::notes(&app.ctx.db, 10).await.unwrap();
        notes.len() == 1
    })
    .await;

    let res = app.get("/admin").await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("/admin/login"));
    let wrong = sign_in(&app, "guess").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.get("/admin").await.status(), 303, "still signed out");

    let ok = sign_in(&app, ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), 303);
    let page = app.get("/admin").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let token = csrf_of(&html);
    assert!(html.contains("Curso de Marketing — Karla Núñez"), "{html}");
    assert!(html.contains("lost") && html.contains("karla@example.com"));
    assert!(html.contains("pago rechazado"), "the task is listed");
    assert!(
        html.contains("Pago: declined") && html.contains("Pasarela: sandbox"),
        "the deal's note is listed"
    );

    let out = app.post_form("/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 303);
}

fn leadgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadgate"));
    for var in [
        "LEADGATE_CONFIG",
        "LEADGATE_BIND",
        "LEADGATE_DATABASE_URL",
        "LEADGATE_PUBLIC_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn check_config_explains_each_error_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[offers]]\nslug = \"Black Friday\"\ntitle = \"x\"\nprice_minor = 0\ncurrency = \"BTC\"\nfollowup_delays = [\"soon\"]\n",
    )
    .unwrap();
    let out = leadgate().arg("check-config").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for prefix in [
        "error: offers[0].slug:",
        "error: offers[0].currency:",
        "error: offers[0].followup_delays[0]:",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(prefix)), "{prefix} in {text}");
    }

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/leadgate.example.toml");
    let out = leadgate().arg("check-config").arg(example).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the shipped example is valid: {text}");
    assert!(text.contains("offer demo:") && text.contains("configuration OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_json_lists_what_the_app_stored() {
    let app = spawn(Backend::Sqlite).await;
    let checkout = app.start_checkout("demo", "Luis Vega", "luis@example.com").await;
    app.get(&app.press(&checkout, "approve").await).await;
    eventually("the deal to be won", || async { app.deals().await[0].status == "won" }).await;
    let url = match &app.ctx.db {
        leadgate::store::Db::Sqlite(_) => app.ctx.settings.database_url.clone(),
        leadgate::store::Db::Postgres(_) => unreachable!(),
    };
    let out = leadgate()
        .args(["leads", "--json"])
        .env("LEADGATE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let leads: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lead = &leads[0];
    assert_eq!(lead["email"], "luis@example.com");
    assert!(lead["crm_person_id"].is_string());
    assert_eq!(lead["attempts"][0]["status"], "approved");
    assert_eq!(lead["attempts"][0]["deal_status"], "won");
    assert_eq!(lead["attempts"][0]["deal_stage"], "Won");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_scrape_token_or_an_admin() {
    let opts = crate::support::Options {
        env: vec![("LEADGATE_METRICS_TOKEN", "scrape-token-123".to_string())],
        ..Default::default()
    };
    let app = crate::support::spawn_with(Backend::Sqlite, opts).await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    let wrong = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().ends_with("# EOF\n"));
}

#[test]
fn check_config_prints_each_gateways_webhook_url_and_refuses_mixed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.toml");
    let toml = "public_url = \"https://pay.example.com\"\n[gateways.stripe]\nenvironment = \"production\"\n\
        [[offers]]\nslug = \"curso\"\ntitle = \"Curso\"\nprice_minor = 4900\ncurrency = \"USD\"\ngateway = \"stripe\"\n";
    std::fs::write(&file, toml).unwrap();
    let run = |secret_key: &str| {
        leadgate()
            .arg("check-config")
            .arg(&file)
            .env("LEADGATE_STRIPE_SECRET_KEY", secret_key)
            .env("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_live")
            .env("LEADGATE_SECRET_KEY", "k".repeat(40))
            .output()
            .unwrap()
    };
    let ok = run("sk_live_123");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("gateway stripe (production): webhook URL https://pay.example.com/webhooks/stripe"),
        "{text}"
    );
    assert!(text.contains("sandbox: off (a gateway is in production)"), "{text}");
    let mixed = run("sk_test_123");
    let text = String::from_utf8_lossy(&mixed.stdout);
    assert!(!mixed.status.success());
    assert!(text.contains("error: LEADGATE_STRIPE_SECRET_KEY:"), "{text}");
}
