//! Real CRMs against fakes that behave like the vendors (wiremock), and Pipedrive's own
//! OpenAPI specs served by Prism.

mod builtin;
mod exactly_once;
mod hubspot;
pub mod ledger;
mod pacing;
pub mod pipedrive;
mod wompi;

use crate::support::{location, spawn_with, Backend, Options, TestApp};

/// The app on a remote CRM set up by `toml` and `env`; jobs get `attempts` tries.
pub async fn app_with_crm(backend: Backend, toml: String, env: Vec<(&'static str, String)>, attempts: i32) -> TestApp {
    let opts = Options {
        toml,
        env,
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
