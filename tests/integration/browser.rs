//! The customer's and the marketer's pages in a real browser: headless Chromium driven by
//! playwright-core (tests/browser/journeys.cjs) against the real server, with axe-core on
//! every page. Runs when LEADGATE_TEST_BROWSER_MODULES names a node_modules folder holding
//! playwright-core and axe-core and LEADGATE_TEST_CHROMIUM a Chromium binary; CI sets
//! LEADGATE_TEST_REQUIRE_BROWSER=1 so a missing browser fails instead of skipping.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{spawn_with, Backend, Options, ADMIN_PASSWORD};

const MODULES_ENV: &str = "LEADGATE_TEST_BROWSER_MODULES";
const CHROMIUM_ENV: &str = "LEADGATE_TEST_CHROMIUM";
const REQUIRED_ENV: &str = "LEADGATE_TEST_REQUIRE_BROWSER";
/// Every check together takes well under a minute; this only stops a hung browser.
const BOUND: Duration = Duration::from_secs(300);

/// Where the screenshots go (named in the README): beside the build, never in the tree.
pub fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots")
}

fn tools() -> Option<(String, String)> {
    let found = (std::env::var(MODULES_ENV).ok().filter(|v| !v.is_empty()))
        .zip(std::env::var(CHROMIUM_ENV).ok().filter(|v| !v.is_empty()));
    if found.is_none() {
        if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1") {
            panic!("{REQUIRED_ENV}=1 but {MODULES_ENV} or {CHROMIUM_ENV} is not set");
        }
        eprintln!("skipping the browser tests: {MODULES_ENV} and {CHROMIUM_ENV} are not set");
    }
    found
}

/// A port nobody listens on stands for the marketing site: the browser is given its pages
/// by the script (request interception), so only its origin matters.
fn site_origins() -> (String, String) {
    let port = crate::process::free_port();
    (format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}"))
}

/// The offer the marketing page embeds: a seller with logo and links, a required consent.
const EMBEDDED: &str = r#"
[[offers]]
slug = "embedded"
title = { es = "Curso embebido", "pt-BR" = "Curso incorporado", en = "Embedded course" }
price_minor = 9900000
currency = "COP"
embed_origins = ["{allowed}"]
[offers.seller]
seller_name = "Academia Ejemplo"
logo = "{logo}"
privacy_url = "https://www.example.com/privacidad"
terms_url = "https://www.example.com/terminos"
[offers.consent]
required = true
version = "2026-12"
text = { es = "Acepto la política de privacidad", "pt-BR" = "Aceito a política de privacidade", en = "I accept the privacy policy" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() {
    let Some((modules, chromium)) = tools() else { return };
    let (allowed, denied) = site_origins();
    let logo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/favicon.svg");
    let toml = EMBEDDED
        .replace("{allowed}", &allowed)
        .replace("{logo}", &logo.display().to_string());
    let app = spawn_with(
        Backend::Sqlite,
        Options {
            toml,
            ..Options::default()
        },
    )
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/journeys.cjs");
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .env("BROWSER_MODULES", &modules)
        .env("CHROMIUM", &chromium)
        .env("APP_URL", &app.base)
        .env("ALLOWED_ORIGIN", &allowed)
        .env("DENIED_ORIGIN", &denied)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SCREENSHOTS", screenshots_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("the browser checks finish in time")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "browser checks failed:\n{stdout}\n{stderr}");
    if std::env::var("LEADGATE_TEST_BROWSER_ONLY").is_ok() {
        return;
    }
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 16,
        "every check ran:\n{stdout}"
    );

    // What the embedded journey carried from the marketing page reached the lead.
    let leads = app.leads().await;
    let lead = leads.iter().find(|l| l["email"] == "embed.journey@example.com");
    let lead = lead.unwrap_or_else(|| panic!("the embedded journey stored its lead: {leads:?}"));
    assert_eq!(lead["offer"], "embedded", "{lead}");
    assert_eq!(lead["utm"]["source"], "wordpress", "{lead}");
    assert_eq!(lead["utm"]["campaign"], "lanzamiento", "{lead}");
    assert_eq!(lead["utm"]["gclid"], "G-123", "{lead}");
    let referrer = lead["utm"]["referrer"].as_str().unwrap_or_default();
    assert!(
        referrer.starts_with("https://www.google.com"),
        "where the visitor came from: {lead}"
    );
    assert_eq!(
        lead["consent"]["version"], "2026-12",
        "the ticked consent's version: {lead}"
    );
}
