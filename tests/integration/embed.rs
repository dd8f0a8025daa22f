//! The WordPress embed: who may frame what, the scripts the snippet loads, the form's framed
//! mode, the admin's snippet and preview, and a start-up that refuses a sloppy origin. What
//! the scripts do in a browser is the browser tests' part.

use std::time::{Duration, Instant};

use crate::admin::sign_in;
use crate::both_backends;
use crate::support::{hidden_field, spawn_with, Backend, Options, TestApp, ADMIN_PASSWORD};

const SHOP: &str =
    "[[offers]]\nslug = \"shop\"\ntitle = \"Curso <Pro> & más\"\nprice_minor = 10000\ncurrency = \"COP\"\n\
                    embed_origins = [\"https://shop.example.com\", \"http://localhost:8081/\"]\n";

async fn spawn_shop(backend: Backend) -> TestApp {
    spawn_with(
        backend,
        Options {
            toml: SHOP.into(),
            ..Options::default()
        },
    )
    .await
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

async fn offer_forms_may_be_framed_by_us_and_the_sites_they_name_and_nothing_else(backend: Backend) {
    let app = spawn_shop(backend).await;
    for path in ["/c/shop", "/c/shop?embed=1"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        let csp = header(&res, "content-security-policy").unwrap();
        assert!(
            csp.ends_with("frame-ancestors 'self' https://shop.example.com http://localhost:8081"),
            "{path}: {csp}"
        );
        // X-Frame-Options cannot name other sites: the CSP alone decides.
        assert_eq!(header(&res, "x-frame-options"), None, "{path}");
    }
    // An offer naming no site may still be framed by us (the admin preview).
    let demo = app.get("/c/demo?embed=1").await;
    let csp = header(&demo, "content-security-policy").unwrap();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
    assert_eq!(header(&demo, "x-frame-options").as_deref(), Some("SAMEORIGIN"));
    for path in [
        "/c/nope",
        "/admin/login",
        "/admin",
        "/r/x",
        "/healthz",
        "/static/embed.js",
    ] {
        let res = app.get(path).await;
        let csp = header(&res, "content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("shop.example.com"), "{path}: {csp}");
        assert_eq!(header(&res, "x-frame-options").as_deref(), Some("DENY"), "{path}");
    }
}

async fn the_scripts_are_served_as_cacheable_javascript(backend: Backend) {
    let app = spawn_shop(backend).await;
    for (path, marker) in [
        ("/static/embed.js", "leadgate:height"),
        ("/static/frame.js", "leadgate:hello"),
        ("/static/admin.js", "data-copy"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            header(&res, "content-type").as_deref(),
            Some("text/javascript; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            header(&res, "cache-control").as_deref(),
            Some("public, max-age=3600"),
            "{path}"
        );
        let body = res.text().await.unwrap();
        assert!(body.contains(marker), "{path}");
        // Our scripts answer only the origins they must, never any window.
        assert!(!body.contains("\"*\""), "{path}");
    }
}

async fn the_framed_form_continues_in_the_top_window_and_names_its_parents(backend: Backend) {
    let app = spawn_shop(backend).await;
    let html = app
        .get("/c/shop?embed=1&utm_source=wordpress&utm_campaign=bf")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<form method="post" action="/c/shop" target="_top""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<body class="embed" data-embed-origins="https://shop.example.com http://localhost:8081">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<script src="/static/frame.js" defer></script>"#),
        "{html}"
    );
    // The attribution the parent's embed.js put in the frame's URL reaches the POST.
    assert_eq!(hidden_field(&html, "utm_source").as_deref(), Some("wordpress"));
    assert_eq!(hidden_field(&html, "utm_campaign").as_deref(), Some("bf"));

    // Not framed: the page is as before.
    for path in ["/c/shop", "/c/shop?embed=0"] {
        let html = app.get(path).await.text().await.unwrap();
        assert!(!html.contains("target=\"_top\""), "{path}");
        assert!(
            !html.contains("frame.js") && !html.contains("data-embed-origins"),
            "{path}"
        );
        assert!(html.contains("<body>"), "{path}");
    }
    // Framed by us alone: the list is empty and frame.js adds our own origin.
    let html = app.get("/c/demo?embed=1").await.text().await.unwrap();
    assert!(html.contains(r#"data-embed-origins="""#), "{html}");

    // A form submitted from the frame goes through as any other.
    let token = hidden_field(&html, "form_token").unwrap();
    let form = [
        ("name", "Ana Gómez"),
        ("email", "ana@example.com"),
        ("phone", "300 123 4567"),
        ("form_token", token.as_str()),
    ];
    let res = app.http.post(app.url("/c/demo")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
}

async fn the_admin_shows_each_offers_link_snippet_and_live_preview(backend: Backend) {
    let app = spawn_shop(backend).await;
    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let res = app.get("/admin").await;
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy").unwrap();
    assert!(csp.contains("frame-src 'self'"), "the preview frames our form: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    let base = &app.base;
    let snippet = format!(
        "<iframe src=\"{base}/c/shop?embed=1\" data-leadgate-embed title=\"Curso &#60;Pro&#62; &#38; más\" \
         width=\"100%\" height=\"820\" style=\"border:0;width:100%\" loading=\"lazy\"></iframe>\n\
         <script src=\"{base}/static/embed.js\" async></script>\n\
         <noscript><a href=\"{base}/c/shop\">Curso &#60;Pro&#62; &#38; más</a></noscript>"
    );
    // The live preview is the snippet itself, so it runs embed.js and frame.js.
    assert!(html.contains(&snippet), "preview missing in {html}");
    // The copy box shows it as text.
    let shown = askama::filters::escape(&snippet, askama::filters::Html)
        .unwrap()
        .to_string();
    assert!(
        html.contains(&format!("readonly>{shown}</textarea>")),
        "copy box missing in {html}"
    );
    assert!(
        html.contains(&format!("<a class=\"offer-link\" href=\"{base}/c/shop\">")),
        "{html}"
    );
    assert!(html.contains(r#"data-copy="snippet-shop""#) && html.contains(r#"id="snippet-shop""#));
    assert!(
        html.contains(&format!("src=\"{base}/c/demo?embed=1\"")),
        "every offer is listed"
    );
    assert!(html.contains(r#"<script src="/static/admin.js" defer></script>"#));
}

/// Runs `leadgate` and gives up (failing) if it is still running after a while, as a
/// server that accepted the configuration would.
fn run_bounded(mut cmd: std::process::Command) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd.stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("leadgate kept running with a bad embed origin");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), std::fs::read_to_string(&out_path).unwrap())
}

#[test]
fn start_up_refuses_an_embed_origin_that_is_not_a_bare_origin() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "https://shop.example.com/landing",
        "shop.example.com",
        "ftp://shop.example.com",
        "https://shop.example.com/?x=1",
        "*",
    ] {
        let file = dir.path().join("bad.toml");
        let toml = format!(
            "[[offers]]\nslug = \"shop\"\ntitle = \"Curso\"\nprice_minor = 10000\ncurrency = \"COP\"\nembed_origins = [{bad:?}]\n"
        );
        std::fs::write(&file, toml).unwrap();
        let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"));
        check.arg("check-config").arg(&file).env_remove("LEADGATE_CONFIG");
        let (ok, text) = run_bounded(check);
        assert!(!ok, "{bad}: {text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("error: offers[0].embed_origins[0]:")),
            "{bad}: {text}"
        );
    }
    // `serve` refuses it too, before it listens.
    let db = dir.path().join("leadgate.db");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"));
    serve
        .arg("--config")
        .arg(dir.path().join("bad.toml"))
        .arg("serve")
        .env("LEADGATE_BIND", "127.0.0.1:0")
        .env("LEADGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("LEADGATE_SECRET_KEY", "k".repeat(40));
    let (ok, text) = run_bounded(serve);
    assert!(!ok, "{text}");
    assert!(text.contains("embed_origins[0]"), "{text}");
}

both_backends!(
    offer_forms_may_be_framed_by_us_and_the_sites_they_name_and_nothing_else,
    the_scripts_are_served_as_cacheable_javascript,
    the_framed_form_continues_in_the_top_window_and_names_its_parents,
    the_admin_shows_each_offers_link_snippet_and_live_preview,
);
