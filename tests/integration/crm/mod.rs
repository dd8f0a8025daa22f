//! Real CRMs against fakes that behave like the vendors (wiremock), and Pipedrive's own
//! OpenAPI specs served by Prism.

mod builtin;
mod exactly_once;
mod hubspot;
pub mod ledger;
pub mod links;
mod pacing;
pub mod pipedrive;
mod wompi;

use leadgate::clock::ShiftedClock;

use crate::support::{location, spawn_with, Backend, Options, TestApp};

/// The app on a remote CRM set up by `toml` and `env`; jobs get `attempts` tries.
/// A submit that carries both click ids and a referrer, for the CRMs' field mapping tests.
pub const CLICK_IDS_FORM: [(&str, &str); 6] = [
    ("name", "Ana Pérez"),
    ("email", "ana@example.com"),
    ("phone", "300 123 4567"),
    ("gclid", "Cj0KCQ-abc"),
    ("fbclid", "IwAR-xyz"),
    ("referrer", "https://blog.example/post"),
];

pub async fn app_with_crm(backend: Backend, toml: String, env: Vec<(&'static str, String)>, attempts: i32) -> TestApp {
    app_with_crm_at(backend, toml, env, attempts, None).await
}

/// As [`app_with_crm`], with the app's clock starting at `at_ms` (see `TestApp::advance`).
pub async fn app_with_crm_at(
    backend: Backend,
    toml: String,
    env: Vec<(&'static str, String)>,
    attempts: i32,
    at_ms: Option<i64>,
) -> TestApp {
    let opts = Options {
        toml,
        env,
        clock: at_ms.map(ShiftedClock::starting_at),
        tweak: Box::new(move |s| {
            s.worker.max_attempts = attempts;
            s.reconcile.enabled = false;
            // The same person buying twice is a CRM test's case: each submit opens its own.
            s.forms.duplicate_window = std::time::Duration::ZERO;
        }),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

/// Submits the demo form; returns the sandbox checkout URL.
pub async fn submit(app: &TestApp, name: &str, email: &str, phone: &str) -> String {
    let form = [
        ("name", name),
        ("email", email),
        ("phone", phone),
        ("utm_campaign", "launch"),
    ];
    let res = app.post_form("/c/demo", &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    location(&res)
}

/// A configuration whose one offer sits at `stage` of pipeline "Sales", on the CRM that
/// `crm_toml` (a `[crm]` table) describes.
pub fn config_with_stage(stage: &str, crm_toml: &str) -> String {
    format!(
        "bind = \"127.0.0.1:0\"\n\n[[offers]]\nslug = \"demo\"\ntitle = \"Curso\"\nprice_minor = 19900000\n\
         currency = \"COP\"\npipeline = \"Sales\"\nstage = \"{stage}\"\n\n{crm_toml}"
    )
}

/// Start-up on `toml` must fail; returns what it said.
pub async fn start_up_error(toml: &str, token: (&'static str, &str)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("leadgate.db").display());
    let (var, value) = (token.0, token.1.to_owned());
    let env = move |k: &str| match k {
        "LEADGATE_SECRET_KEY" => Some("test-secret-key-test-secret-key-0123456789".to_string()),
        "LEADGATE_DATABASE_URL" => Some(db.clone()),
        k if k == var => Some(value.clone()),
        _ => None,
    };
    let settings = leadgate::config::Settings::from_toml(toml, &env).unwrap();
    match leadgate::startup::Application::build(settings).await {
        Ok(_) => panic!("start-up accepted a configuration the CRM cannot serve"),
        Err(e) => e.to_string(),
    }
}

/// Runs `leadgate crm check` on `toml` through the real binary: (exited 0, what it printed).
pub async fn crm_check(toml: &str, token: (&'static str, &str)) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadgate.toml");
    std::fs::write(&path, toml).unwrap();
    let (var, value) = (token.0, token.1.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .arg("--config")
            .arg(&path)
            .args(["crm", "check"])
            .env(var, value)
            .env_remove("LEADGATE_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `crm check` against a CRM holding pipeline "Sales" with stage "Checkout started":
/// the listing and OK for that stage, exit 1 naming a stage it lacks.
pub async fn assert_crm_check(crm_toml: &str, token: (&'static str, &str)) {
    let (ok, out) = crm_check(&config_with_stage("Checkout started", crm_toml), token).await;
    assert!(ok, "{out}");
    for line in [
        "Pipelines and stages:",
        "  Sales (id ",
        "    - Checkout started (id ",
        "Owners:",
        "Deal fields:",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        out.contains("OK: every pipeline, stage, field, owner and activity type"),
        "{out}"
    );
    let (ok, out) = crm_check(&config_with_stage("Negotiation", crm_toml), token).await;
    assert!(!ok, "a missing stage must fail the check:\n{out}");
    assert!(
        out.contains("error: stage \"Negotiation\" not found in pipeline \"Sales\""),
        "{out}"
    );
}

/// A follow-up policy for a remote CRM, after its `[crm]` table: the office in Bogotá
/// (Mon-Fri 09:00-18:00), a call at 30 minutes, a task for `task_owner` at 24 hours and a
/// high call at 3 days, then the deal to the fake's open stage "Refunded"; `extra` goes
/// into `[followup]` (e.g. `close_tasks = "delete"`). Its own offer, `seq`, has no
/// legacy `followup_delays`, so this policy is the one it follows.
pub fn followup_policy(task_owner: &str, extra: &str) -> String {
    format!(
        r#"
[followup]
timezone = "America/Bogota"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-18:00"
after_last_step = "stage:Refunded"
{extra}

[[followup.steps]]
after = "30m"
kind = "call"

[[followup.steps]]
after = "24h"
kind = "task"
priority = "low"
owner = "{task_owner}"

[[followup.steps]]
after = "3d"
kind = "call"
priority = "high"

[[offers]]
slug = "seq"
title = "Curso Intensivo"
price_minor = 25000000
currency = "COP"
"#
    )
}

/// Submits the `seq` offer's form; returns (sandbox checkout URL, attempt id).
pub async fn submit_seq(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let checkout = app.start_checkout("seq", name, email).await;
    let leads = app.leads().await;
    let lead = leads.iter().find(|l| l["email"] == email).expect("the lead is stored");
    let id = lead["attempts"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (checkout, id)
}

/// The retry link on a declined result page, followed: the new attempt's checkout URL.
pub async fn retry_after_decline(app: &TestApp, result_page: &str) -> String {
    let page = app.get(result_page).await.text().await.unwrap();
    let retry = page
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.starts_with("/r/")))
        .expect("a retry link")
        .to_owned();
    let token = app.form_token(&retry).await;
    let res = app.post_form(&retry, &[("form_token", &token)]).await;
    assert_eq!(res.status(), 303);
    location(&res)
}
