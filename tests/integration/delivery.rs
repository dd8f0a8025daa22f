//! How pages reach the browser: the error summary a refused form leads with, compression,
//! static files' caching, the favicon, and plain-text logs.

use crate::process::{Instance, Launch};
use crate::support::{spawn, Backend};

crate::both_backends!(a_refused_form_leads_with_a_focused_summary_of_its_errors);

async fn a_refused_form_leads_with_a_focused_summary_of_its_errors(backend: Backend) {
    let app = spawn(backend).await;
    let bad = [
        ("name", "A"),
        ("email", "not-an-email"),
        ("phone", "300 123 4567"),
        ("tax_id", ""),
    ];
    let res = app.post_form_in("/c/fast", "en", &bad).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    let title = between(&html, "<title>", "</title>");
    assert!(
        title.starts_with("3 errors: "),
        "the title counts the errors: {title:?}"
    );

    let summary = between(&html, r#"<div class="error-summary""#, "</div>");
    assert!(
        summary.contains("autofocus") && summary.contains(r#"tabindex="-1""#),
        "{summary}"
    );
    // In form order, each linking to its field; the valid phone is not listed.
    let links: Vec<&str> = summary
        .split(r##"<a href="#"##)
        .skip(1)
        .map(|l| l.split('"').next().unwrap_or(""))
        .collect();
    assert_eq!(links, ["name", "email", "tax_id"], "{summary}");
    for id in links {
        assert!(html.contains(&format!(r#"id="{id}""#)), "the link target {id} exists");
    }
    assert!(
        summary.contains("Email: Enter a valid email"),
        "label and message: {summary}"
    );

    let es = app
        .post_form(
            "/c/demo",
            &[("name", "Ana Pérez"), ("email", "x"), ("phone", "300 123 4567")],
        )
        .await;
    let html = es.text().await.unwrap();
    assert!(between(&html, "<title>", "</title>").starts_with("1 error: "), "{html}");

    let fine = app.get("/c/demo").await.text().await.unwrap();
    assert!(
        !fine.contains("error-summary") && !fine.contains("autofocus"),
        "a fresh form focuses nothing"
    );
}

crate::both_backends!(pages_are_compressed_and_static_files_revalidate);

async fn pages_are_compressed_and_static_files_revalidate(backend: Backend) {
    let app = spawn(backend).await;
    let plain = app.get("/c/demo").await.bytes().await.unwrap();
    for (asked, given) in [("gzip", "gzip"), ("br", "br"), ("br;q=0.5, gzip", "gzip")] {
        let res = app
            .http
            .get(app.url("/c/demo"))
            .header("Accept-Encoding", asked)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let encoding = res
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(encoding.as_deref(), Some(given), "{asked}");
        let body = res.bytes().await.unwrap();
        assert!(
            body.len() * 10 < plain.len() * 7,
            "{asked}: {} of {} bytes",
            body.len(),
            plain.len()
        );
        if given == "gzip" {
            assert_eq!(body[..2], [0x1f, 0x8b], "a gzip stream");
        }
    }

    let css = app.get("/static/app.css").await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["cache-control"], "public, max-age=3600");
    let etag = css.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let again = app
        .http
        .get(app.url("/static/app.css"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = app
        .http
        .get(app.url("/static/status.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another file's tag does not match");

    for (path, kind) in [
        ("/favicon.ico", "image/x-icon"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], kind, "{path}");
    }
    assert!(app.get("/c/demo").await.text().await.unwrap().contains(r#"rel="icon""#));
    assert_eq!(app.get("/static/nothing.js").await.status(), 404);
}

/// The binary writing to a file (as under systemd or a log collector): no colour codes.
#[tokio::test]
async fn logs_written_to_a_file_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        config: format!("database_url = \"sqlite://{}/leadgate.db\"\n", dir.path().display()),
        env: Vec::new(),
    };
    let server = Instance::start(dir.path(), "plain", launch).await;
    let http = reqwest::Client::new();
    for path in ["/favicon.ico", "/c/nothing-here"] {
        http.get(server.url(path)).send().await.unwrap();
    }
    let log = server.log_text();
    assert!(log.contains("INFO"), "something was logged: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escape codes: {log:?}");
    assert!(
        !log.contains("WARN http"),
        "neither the favicon nor a 404 is a warning: {log}"
    );
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}")) + start.len();
    let len = html[from..].find(end).unwrap_or(html.len() - from);
    &html[from..from + len]
}
