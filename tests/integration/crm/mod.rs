//! Real CRMs against fakes that behave like the vendors (wiremock), and Pipedrive's own
//! OpenAPI specs served by Prism.

mod exactly_once;
mod hubspot;
mod pipedrive;

use crate::support::{location, spawn_with, Backend, Options, TestApp};

/// The app on a remote CRM set up by `toml` and `env`; jobs get `attempts` tries.
pub async fn app_with_crm(backend: Backend, toml: String, env: Vec<(&'static str, String)>, attempts: i32) -> TestApp {
    let opts = Options {
        toml,
        env,
        tweak: Box::new(move |s| {
            s.worker.max_attempts = attempts;
            s.reconcile.enabled = false;
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
