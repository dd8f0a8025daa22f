//! The admin pages on the public internet: throttled sign-in, bounded password checks,
//! sessions that end, forms that cannot be forged, and no password on the terminal.

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::{location, spawn, spawn_with, Backend, Options, TestApp, ADMIN_PASSWORD};

/// A browser of its own: cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The hidden anti-forgery field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no csrf field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Opens the login form and submits `password` with its token, as a browser does; `from`
/// is sent as `X-Forwarded-For` (believed when `[proxy] trusted` names the loopback).
pub async fn sign_in_from(http: &reqwest::Client, base: &str, password: &str, from: Option<&str>) -> reqwest::Response {
    let with_from = |req: reqwest::RequestBuilder| match from {
        Some(ip) => req.header("X-Forwarded-For", ip),
        None => req,
    };
    let form = with_from(http.get(format!("{base}/admin/login"))).send().await.unwrap();
    assert!(
        matches!(form.status().as_u16(), 200 | 401 | 403 | 429 | 503),
        "{}",
        form.status()
    );
    let token = csrf_of(&form.text().await.unwrap());
    with_from(http.post(format!("{base}/admin/login")))
        .form(&[("password", password), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap()
}

pub async fn sign_in(app: &TestApp, password: &str) -> reqwest::Response {
    sign_in_from(&app.http, &app.base, password, None).await
}

/// The admin page's sign-out token (the session must be signed in).
async fn page_token(app: &TestApp) -> String {
    let page = app.get("/admin").await;
    assert_eq!(page.status(), 200);
    csrf_of(&page.text().await.unwrap())
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", res.status()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

const BEHIND_PROXY: &str = "[proxy]\ntrusted = [\"127.0.0.1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_get_growing_waits_and_spare_other_addresses() {
    let app = spawn_with(
        Backend::Sqlite,
        Options {
            toml: BEHIND_PROXY.into(),
            ..Default::default()
        },
    )
    .await;
    let guesser = browser();
    let from = Some("203.0.113.9");
    let mut statuses = Vec::new();
    let mut first_wait = None;
    for i in 0..30 {
        let res = sign_in_from(&guesser, &app.base, &format!("guess {i}"), from).await;
        let status = res.status().as_u16();
        if status == 429 {
            first_wait.get_or_insert(retry_after(&res));
            assert_eq!(res.headers()["cache-control"], "no-store");
            let html = res.text().await.unwrap();
            assert!(html.contains("Demasiados intentos"), "{html}");
            assert!(html.contains("name=\"csrf\""), "the page still lets them try later");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let first_wait = first_wait.unwrap();
    assert!((1..=2).contains(&first_wait), "{first_wait}");

    // Another address is not held back by this one's failures.
    let admin = browser();
    let ok = sign_in_from(&admin, &app.base, ADMIN_PASSWORD, Some("198.51.100.7")).await;
    assert_eq!(ok.status(), 303);
    let page = admin.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // Once the wait is over, one more wrong try doubles it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let again = sign_in_from(&guesser, &app.base, "guess again", from).await;
    assert_eq!(again.status(), 401);
    let refused = sign_in_from(&guesser, &app.base, ADMIN_PASSWORD, from).await;
    assert_eq!(refused.status(), 429, "even the right password waits its turn");
    let second_wait = retry_after(&refused);
    assert!(
        second_wait > first_wait && second_wait <= 4,
        "{first_wait} then {second_wait}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_and_global_limits_count_before_the_password_check() {
    // The backoff is out of the way after a success, so the plain rates show.
    let toml = format!("{BEHIND_PROXY}[limits]\nlogin_per_ip = \"2/15m\"\nlogin_global = \"3/1h\"\n");
    let app = spawn_with(
        Backend::Sqlite,
        Options {
            toml,
            ..Default::default()
        },
    )
    .await;
    let a = browser();
    assert_eq!(
        sign_in_from(&a, &app.base, ADMIN_PASSWORD, Some("203.0.113.1"))
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in_from(&a, &app.base, ADMIN_PASSWORD, Some("203.0.113.1"))
            .await
            .status(),
        303
    );
    let third = sign_in_from(&a, &app.base, ADMIN_PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(third.status(), 429, "per address");
    assert!(retry_after(&third) > 60, "the per-address bucket refills slowly");
    let b = browser();
    assert_eq!(
        sign_in_from(&b, &app.base, ADMIN_PASSWORD, Some("203.0.113.2"))
            .await
            .status(),
        303
    );
    let c = browser();
    let global = sign_in_from(&c, &app.base, ADMIN_PASSWORD, Some("203.0.113.3")).await;
    assert_eq!(global.status(), 429, "everyone together");
    retry_after(&global);
}

both_backends!(forged_sign_in_and_sign_out_are_refused);

async fn forged_sign_in_and_sign_out_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let no_token = app.post_form("/admin/login", &[("password", ADMIN_PASSWORD)]).await;
    assert_eq!(no_token.status(), 403);
    assert!(
        no_token
            .text()
            .await
            .unwrap()
            .contains("action=\"/admin/login?lang=es\""),
        "the login page"
    );
    assert_eq!(app.get("/admin").await.status(), 303, "not signed in");

    // The form has been served, but the token sent is not this session's.
    let login = app.get("/admin/login").await.text().await.unwrap();
    let token = csrf_of(&login);
    let other = browser();
    let theirs = csrf_of(
        &other
            .get(app.url("/admin/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_ne!(token, theirs, "each session has its own token");
    for wrong in ["", "0", theirs.as_str(), &token[..token.len() - 1]] {
        let res = app
            .post_form("/admin/login", &[("password", ADMIN_PASSWORD), ("csrf", wrong)])
            .await;
        assert_eq!(res.status(), 403, "token {wrong:?}");
        assert_eq!(app.get("/admin").await.status(), 303, "not signed in");
    }
    // A forged attempt costs nothing: the real sign-in right after works.
    let ok = app
        .post_form("/admin/login", &[("password", ADMIN_PASSWORD), ("csrf", &token)])
        .await;
    assert_eq!(ok.status(), 303);
    assert!(location(&ok).ends_with("/admin"));

    let fresh = page_token(&app).await;
    assert_ne!(fresh, token, "a new token after sign-in");
    for form in [vec![], vec![("csrf", token.as_str())]] {
        let res = app.post_form("/admin/logout", &form).await;
        assert_eq!(res.status(), 403, "{form:?}");
        assert_eq!(app.get("/admin").await.status(), 200, "still signed in");
    }
    let bare = app.http.post(app.url("/admin/logout")).send().await.unwrap();
    assert_eq!(bare.status(), 403, "no form at all");
    let out = app.post_form("/admin/logout", &[("csrf", &fresh)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 303, "signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_their_max_age_and_when_idle() {
    let app = spawn_with(
        Backend::Sqlite,
        Options {
            toml: "[admin]\nsession_max_age = \"4s\"\nsession_idle_timeout = \"2s\"\n".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    // The session's clock started before this answer left.
    let t0 = Instant::now();
    // Used every half second for longer than the idle timeout: each use keeps it alive.
    while t0.elapsed() < Duration::from_millis(3300) {
        assert_eq!(app.get("/admin").await.status(), 200, "at {:?}", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(t0.elapsed())).await;
    let old = app.get("/admin").await;
    assert_eq!(old.status(), 303, "past the max age, however busy");
    assert!(location(&old).ends_with("/admin/login"));

    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(app.get("/admin").await.status(), 303, "idle too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_lasts_the_browser_session_and_hides_from_scripts() {
    let app = spawn(Backend::Sqlite).await;
    let res = sign_in(&app, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_ascii_lowercase();
    assert!(cookie.starts_with("leadgate_admin="), "{cookie}");
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("max-age") && !cookie.contains("expires"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_are_bounded_and_a_burst_is_answered() {
    let toml = format!("{BEHIND_PROXY}[limits]\nlogin_per_ip = \"100/1m\"\nlogin_global = \"100/1m\"\n");
    let app = spawn_with(
        Backend::Sqlite,
        Options {
            toml,
            ..Default::default()
        },
    )
    .await;
    let checks = app.ctx.limits.password_checks.clone();
    let total = checks.available_permits();
    assert!((1..=4).contains(&total), "{total}");

    // Every permit taken: a sign-in is turned away quickly instead of queueing Argon2 runs.
    let held = checks.clone().acquire_many_owned(total as u32).await.unwrap();
    let started = Instant::now();
    let busy = sign_in_from(&browser(), &app.base, ADMIN_PASSWORD, Some("203.0.113.50")).await;
    assert_eq!(busy.status(), 503);
    assert!(retry_after(&busy) >= 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(held);

    let burst = (0..12).map(|i| {
        let base = app.base.clone();
        tokio::spawn(async move {
            let ip = format!("203.0.113.{}", 100 + i);
            let res = sign_in_from(&browser(), &base, "wrong", Some(&ip)).await;
            res.status().as_u16()
        })
    });
    let answers = tokio::time::timeout(Duration::from_secs(60), futures_join(burst))
        .await
        .expect("every sign-in in the burst is answered");
    assert!(answers.iter().all(|s| matches!(s, 401 | 429 | 503)), "{answers:?}");
    assert!(answers.contains(&401), "some were checked: {answers:?}");
    // Every permit comes back once the checks are done.
    crate::support::eventually("the permits to come back", || async {
        checks.available_permits() == total
    })
    .await;
}

async fn futures_join(tasks: impl Iterator<Item = tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_password_goes_to_a_private_file_not_to_the_terminal() {
    use crate::process::{Instance, Launch};
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data");
    std::fs::create_dir(&db).unwrap();
    let launch = Launch {
        config: format!("database_url = \"sqlite://{}/leadgate.db\"\n", db.display()),
        env: Vec::new(),
    };
    let mut server = Instance::start(dir.path(), "admin", launch).await;
    let file = db.join("leadgate-admin-password");
    let read = |file: &std::path::Path| {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "only the owner may read it");
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    };
    let password = read(&file);
    assert!(password.len() >= 16, "{password:?}");
    let log = server.log_text();
    assert!(!log.contains(&password), "the password is not printed: {log}");
    assert!(log.contains(&file.display().to_string()), "the file is named: {log}");

    let base = server.url("");
    let admin = browser();
    assert_eq!(sign_in_from(&admin, &base, &password, None).await.status(), 303);

    // A new password for each run, in a file made afresh.
    server.kill();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    server.restart().await;
    let second = read(&file);
    assert_ne!(second, password);
    assert!(!server.log_text().contains(&second));
    assert_eq!(sign_in_from(&browser(), &base, &password, None).await.status(), 401);
}
