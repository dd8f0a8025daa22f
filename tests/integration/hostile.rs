//! Hostile input, generated: random and malicious form fields, invalid UTF-8, huge
//! bodies, and unsigned or forged webhooks for every gateway. Never a 5xx, nothing stored
//! from an unsigned webhook, and injected HTML comes back escaped.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::both_backends;
use crate::support::{spawn_with, Backend, Options, TestApp};

const INJECTED: &str = "<script>alert('x')</script>";

/// Every gateway switched on with well-formed test keys; their APIs are never called here.
fn all_gateways() -> Options {
    let toml = r#"
[gateways.wompi]
environment = "sandbox"
api_base = "http://127.0.0.1:9/v1"
public_key = "pub_test_hostile"

[gateways.stripe]
environment = "sandbox"
api_base = "http://127.0.0.1:9"

[gateways.mercadopago]
environment = "sandbox"
api_base = "http://127.0.0.1:9"
"#;
    let env = vec![
        ("LEADGATE_WOMPI_PRIVATE_KEY", "prv_test_hostile".to_string()),
        ("LEADGATE_WOMPI_EVENTS_SECRET", "test_events_hostile".to_string()),
        ("LEADGATE_WOMPI_INTEGRITY_SECRET", "test_integrity_hostile".to_string()),
        ("LEADGATE_STRIPE_SECRET_KEY", "sk_test_hostile".to_string()),
        ("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_hostile".to_string()),
        ("LEADGATE_MERCADOPAGO_ACCESS_TOKEN", "TEST-hostile".to_string()),
        ("LEADGATE_MERCADOPAGO_WEBHOOK_SECRET", "hostile".to_string()),
    ];
    Options {
        toml: toml.into(),
        env,
        tweak: Box::new(|s| s.reconcile.enabled = false),
        ..Options::default()
    }
}

/// Strings a form field may receive: anything, markup and SQL, long runs, odd unicode.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[<>\"'&;=%/\\\\ -]{0,40}",
        Just(INJECTED.to_string()),
        Just("'; DROP TABLE leads; --".to_string()),
        Just("\u{202e}\u{0000}\u{feff}\u{1F600}e\u{301}".to_string()),
        prop::collection::vec(any::<char>(), 0..12_000).prop_map(|v| v.into_iter().collect()),
    ]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

async fn inbox_rows(app: &TestApp) -> i64 {
    leadgate::store::inbox::count(&app.ctx.db).await.unwrap()
}

#[test]
fn random_and_malicious_forms_never_fail_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_with(Backend::Sqlite, all_gateways()));
    let fields = (field(), field(), field(), field(), field());
    runner(96)
        .run(&fields, |(name, email, phone, tax_id, campaign)| {
            let form = [
                ("name", name.as_str()),
                ("email", email.as_str()),
                ("phone", phone.as_str()),
                ("tax_id", tax_id.as_str()),
                ("utm_campaign", campaign.as_str()),
            ];
            let (status, body) = rt.block_on(async {
                let res = app.post_form("/c/fast", &form).await;
                let status = res.status().as_u16();
                (status, res.text().await.unwrap_or_default())
            });
            prop_assert!(matches!(status, 303 | 400 | 413 | 422), "status {status}");
            prop_assert!(!body.contains(INJECTED), "injected markup came back unescaped");
            Ok(())
        })
        .unwrap();
}

#[test]
fn raw_bytes_as_a_form_body_never_fail_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_with(Backend::Sqlite, Options::default()));
    runner(96)
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
            let status = rt.block_on(async {
                let res = app
                    .http
                    .post(app.url("/c/demo"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(bytes)
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            });
            // Without the token the page serves, bytes get 403 at most: never a lead, never a 5xx.
            prop_assert!(matches!(status, 400 | 403 | 413 | 422), "status {status}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn unsigned_or_forged_webhooks_are_refused_and_store_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_with(Backend::Sqlite, all_gateways()));
    let headers = [
        "sandbox-signature",
        "stripe-signature",
        "x-signature",
        "x-request-id",
        "x-event-checksum",
    ];
    let delivery = (
        prop::sample::select(vec!["sandbox", "wompi", "stripe", "mercadopago"]),
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::collection::vec((prop::sample::select(headers.to_vec()), "[ -~]{0,120}"), 0..4),
        "[ -~]{0,80}",
    );
    runner(160)
        .run(&delivery, |(gateway, body, sent_headers, query)| {
            let status = rt.block_on(async {
                let mut req = app
                    .http
                    .post(app.url(&format!("/webhooks/{gateway}?{}", query.replace('#', ""))))
                    .body(body);
                for (name, value) in &sent_headers {
                    req = req.header(*name, value.as_str());
                }
                match req.send().await {
                    Ok(res) => res.status().as_u16(),
                    // reqwest refuses some header values before sending: nothing reached us.
                    Err(e) if e.is_builder() => 401,
                    Err(e) => panic!("{e}"),
                }
            });
            prop_assert!(matches!(status, 400 | 401 | 413), "{gateway}: status {status}");
            Ok(())
        })
        .unwrap();
    assert_eq!(rt.block_on(inbox_rows(&app)), 0, "nothing unsigned was stored");
}

both_backends!(random_bytes_in_paths_and_ids_never_fail_the_server);

/// Where an id or slug from outside reaches us: `{}` is replaced by the generated segment.
const ID_ROUTES: [(&str, &str); 12] = [
    ("GET", "/c/{}"),
    ("POST", "/c/{}"),
    ("GET", "/r/{}"),
    ("GET", "/return/{}?attempt={}"),
    ("GET", "/return/sandbox?attempt={}"),
    ("GET", "/return/stripe?attempt={}&session_id={}"),
    ("GET", "/sandbox/pay/{}"),
    ("GET", "/sandbox/pay/sbx_{}"),
    ("POST", "/sandbox/pay/{}"),
    ("POST", "/sandbox/pay/sbx_{}"),
    ("POST", "/webhooks/{}"),
    ("GET", "/c/demo?resume={}"),
];

/// Any bytes, percent-encoded, so NUL, control bytes and invalid UTF-8 all reach the app;
/// sometimes behind a prefix that makes them look almost like one of our ids.
fn segment() -> impl Strategy<Value = String> {
    let bytes = prop::collection::vec(any::<u8>(), 0..80);
    let prefix = prop::sample::select(vec!["", "", "0190b5a4-8c2e-7d3f-9a1b-6f1e2d3c4b5", "evt_", "."]);
    (prefix, bytes).prop_map(|(prefix, bytes)| {
        let encoded: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        format!("{prefix}{encoded}")
    })
}

/// Random bytes in every path segment and id we accept: never a 5xx. Where the input can
/// only name a row, the answer is the not-found page; the form's prefill just falls back.
async fn random_bytes_in_paths_and_ids_never_fail_the_server(backend: Backend) {
    let app = spawn_with(backend, all_gateways()).await;
    let handle = tokio::runtime::Handle::current();
    let cases = (prop::sample::select(ID_ROUTES.to_vec()), segment());
    // The runner is synchronous; this test's runtime has threads to spare for it.
    tokio::task::block_in_place(|| {
        runner(192)
            .run(&cases, |((verb, route), seg)| {
                let path = route.replace("{}", &seg);
                let status = handle.block_on(async {
                    let req = match verb {
                        "GET" => app.http.get(app.url(&path)),
                        _ => app
                            .http
                            .post(app.url(&path))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body("outcome=approve&name=a"),
                    };
                    req.send().await.unwrap().status().as_u16()
                });
                prop_assert!(status < 500, "{verb} {path}: status {status}");
                let expected: &[u16] = match route {
                    "/c/demo?resume={}" => &[200],
                    // Token-shaped garbage is a link that no longer works, the rest not found.
                    "/r/{}" => &[404, 410],
                    // The one offer slug a segment could spell out is not in these bytes.
                    "/c/{}" if verb == "POST" => &[404],
                    _ => &[404],
                };
                prop_assert!(expected.contains(&status), "{verb} {path}: status {status}");
                Ok(())
            })
            .unwrap();
    });
}
