//! `/api/v1`: bearer tokens, payment links made by other tools (validation, idempotency
//! keys), the admin's link form and tokens, the link email, and the OpenAPI document
//! checked by a validator the project did not write.

use std::collections::BTreeSet;

use leadgate::store::Db;
use serde_json::{json, Value};

use crate::admin::{csrf_of, sign_in};
use crate::smtp_sink::SmtpSink;
use crate::support::{spawn_with, Backend, Options, TestApp, ADMIN_PASSWORD};

const LIMITS: &str = r#"
[payment_links.limits]
COP = { min_minor = 100000, max_minor = 100000000000 }
"#;

async fn app(backend: Backend) -> TestApp {
    spawn_with(
        backend,
        Options {
            toml: LIMITS.into(),
            ..Options::default()
        },
    )
    .await
}

async fn token(app: &TestApp, scopes: &str) -> String {
    leadgate::flows::api_tokens::make(&app.ctx.db, "test", scopes, leadgate::clock::now_ms())
        .await
        .unwrap()
        .token
}

async fn post(app: &TestApp, bearer: Option<&str>, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app.http.post(app.url("/api/v1/payment-links")).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

async fn count(db: &Db, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Db::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p.pool()).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await.unwrap(),
    }
}

fn good() -> Value {
    json!({
        "person": {"name": "Ana Gómez", "email": "ana@cliente.test", "phone": "300 123 4567"},
        "offer": "demo",
        "amount_minor": 25_000_000,
        "currency": "COP",
        "description": "Plan anual",
        "crm_deal_id": "4711",
    })
}

fn fields(body: &Value) -> BTreeSet<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn auth_is_required_and_scoped(backend: Backend) {
    let app = app(backend).await;
    let res = post(&app, None, None, &good()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let forged = format!("lg_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b_{}", "ab".repeat(32));
    assert_eq!(post(&app, Some(&forged), None, &good()).await.status(), 401);

    let write = token(&app, "payment_links:write").await;
    // Right id, wrong secret.
    let (id_part, _) = write.rsplit_once('_').unwrap();
    let wrong = format!("{id_part}_{}", "cd".repeat(32));
    assert_eq!(post(&app, Some(&wrong), None, &good()).await.status(), 401);

    let read = token(&app, "payment_links:read").await;
    let res = post(&app, Some(&read), None, &good()).await;
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .get(app.url("/api/v1/payment-links/x"))
        .bearer_auth(&write)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let res = post(&app, Some(&write), None, &good()).await;
    assert_eq!(res.status(), 201);
    let id = write.trim_start_matches("lg_").rsplit_once('_').unwrap().0.to_owned();
    assert!(
        leadgate::flows::api_tokens::revoke(&app.ctx.db, &id, leadgate::clock::now_ms())
            .await
            .unwrap()
    );
    let res = post(&app, Some(&write), None, &good()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    // Refused requests made nothing: one link, from the one accepted request.
    assert_eq!(count(&app.ctx.db, "payment_links").await, 1);
}

async fn refused_tokens_back_off(backend: Backend) {
    let app = app(backend).await;
    let forged = format!("lg_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b_{}", "ab".repeat(32));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(post(&app, Some(&forged), None, &good()).await.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
}

async fn bad_input_lists_every_field(backend: Backend) {
    let app = app(backend).await;
    let t = token(&app, "payment_links:write").await;
    let bad = json!({
        "person": {"name": "", "email": "not-an-email", "phone": "12"},
        "lang": "fr",
        "amount_minor": 1000,
        "currency": "XXX",
        "expires_at": "next tuesday",
        "crm_deal_id": "",
        "send_email": true,
    });
    let res = post(&app, Some(&t), None, &bad).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let want: BTreeSet<String> = [
        "person.name",
        "person.email",
        "person.phone",
        "lang",
        "currency",
        "description",
        "expires_at",
        "crm_deal_id",
        "send_email",
    ]
    .map(String::from)
    .into();
    assert_eq!(fields(&body), want, "{body}");

    // Limits are checked by the flow: an amount out of range names its field.
    let mut small = good();
    small["amount_minor"] = json!(5);
    let res = post(&app, Some(&t), None, &small).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        fields(&res.json().await.unwrap()),
        BTreeSet::from(["amount_minor".to_owned()])
    );

    let raw = |ct: &'static str, body: &'static str| {
        app.http
            .post(app.url("/api/v1/payment-links"))
            .bearer_auth(&t)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(raw("text/plain", "{}").await.unwrap().status(), 415);
    let res = raw("application/json", "{\"person\": ").await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{body}"
    );
    let res = raw("application/json", "{\"person\": {}, \"surprise\": 1}")
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let big = app
        .http
        .post(app.url("/api/v1/payment-links"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(count(&app.ctx.db, "leads").await, 0);
    assert_eq!(count(&app.ctx.db, "payment_links").await, 0);
}

async fn a_good_request_makes_a_link_and_its_checkout(backend: Backend) {
    let app = app(backend).await;
    let t = token(&app, "payment_links:write payment_links:read").await;
    let res = post(&app, Some(&t), None, &good()).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert!(location.ends_with(&format!("/api/v1/payment-links/{id}")), "{location}");
    assert_eq!(body["status"], "payable");
    assert_eq!(body["replayed"], false);
    assert_eq!(body["amount_minor"], 25_000_000);
    assert_eq!(body["crm_deal_id"], "4711");
    assert!(body["url"].as_str().unwrap().contains(&format!("/l/{id}.")), "{body}");

    let attempt = leadgate::store::attempts::get(&app.ctx.db, body["attempt_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt.amount.amount_minor(), 25_000_000);
    assert_eq!(attempt.amount.currency().as_str(), "COP");
    let link = leadgate::store::payment_links::get(&app.ctx.db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.source.as_str(), "api");
    assert_eq!(link.description.as_deref(), Some("Plan anual"));
    assert_eq!(link.crm.unwrap().deal_id, "4711");
    // The link's page answers, with the requested amount; so does the checkout it opens.
    let page = app.get(body["url"].as_str().unwrap()).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("250.000") && page.contains("Plan anual"), "{page}");
    let checkout = app.get(body["checkout_url"].as_str().unwrap()).await;
    assert_eq!(checkout.status(), 200);
    let page = checkout.text().await.unwrap();
    assert!(page.contains("250.000"), "the requested amount on the checkout: {page}");

    let res = app
        .http
        .get(app.url(&format!("/api/v1/payment-links/{id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["attempt_id"], body["attempt_id"]);
    assert_eq!(got["status"], "payable");
    // Paid through the sandbox: the link says so.
    app.press(body["checkout_url"].as_str().unwrap(), "approve").await;
    app.settle().await;
    let got: Value = app
        .http
        .get(app.url(&format!("/api/v1/payment-links/{id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "paid");
    let missing = app
        .http
        .get(app.url("/api/v1/payment-links/nope"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

async fn an_idempotency_key_replays_the_same_link(backend: Backend) {
    let app = app(backend).await;
    let t = token(&app, "payment_links:write").await;
    let first = post(&app, Some(&t), Some("\"order-991\""), &good()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The same request, keys in another order, and the key bare: a retry.
    let mut same = json!({});
    for k in [
        "crm_deal_id",
        "description",
        "currency",
        "amount_minor",
        "offer",
        "person",
    ] {
        same[k] = good()[k].clone();
    }
    let again = post(&app, Some(&t), Some("order-991"), &same).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["attempt_id"], first["attempt_id"]);
    assert_eq!(again["replayed"], true);
    for table in ["leads", "attempts", "payment_links", "sandbox_payments"] {
        assert_eq!(count(&app.ctx.db, table).await, 1, "{table}");
    }

    let mut other = good();
    other["amount_minor"] = json!(30_000_000);
    let res = post(&app, Some(&t), Some("order-991"), &other).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(count(&app.ctx.db, "payment_links").await, 1);

    // Keys belong to their token: another token's same key is another request.
    let t2 = token(&app, "payment_links:write").await;
    let mut elsewhere = good();
    elsewhere["crm_deal_id"] = json!("4712");
    assert_eq!(post(&app, Some(&t2), Some("order-991"), &elsewhere).await.status(), 201);
    let long = "k".repeat(300);
    assert_eq!(post(&app, Some(&t), Some(&long), &good()).await.status(), 400);
    assert_eq!(count(&app.ctx.db, "payment_links").await, 2);
}

async fn admin_page(app: &TestApp) -> String {
    let page = app.get("/admin?lang=en").await;
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

async fn the_admin_makes_links_and_tokens(backend: Backend) {
    let app = app(backend).await;
    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let html = admin_page(&app).await;
    assert!(html.contains("Payment links"), "{html}");
    let csrf = csrf_of(&html);
    let form = |name: &'static str, email: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_owned()),
            ("email", email.to_owned()),
            ("phone", "3001234567".to_owned()),
            ("offer", "demo".to_owned()),
            ("amount_minor", "15000000".to_owned()),
            ("currency", "COP".to_owned()),
            ("description", "Asesoría".to_owned()),
            ("expires_at", "".to_owned()),
            ("lang", "".to_owned()),
        ]
    };
    let bad = app
        .http
        .post(app.url("/admin/payment-links?lang=en"))
        .form(&form("", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let page = bad.text().await.unwrap();
    assert!(page.contains("id=\"link-name-error\""), "{page}");
    assert!(page.contains("id=\"link-email-error\""), "{page}");
    assert!(page.contains("value=\"nope\""), "the typed value is kept: {page}");
    assert_eq!(count(&app.ctx.db, "payment_links").await, 0);

    let forged = app
        .http
        .post(app.url("/admin/payment-links"))
        .form(&[("name", "Ana Gómez"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let ok = app
        .http
        .post(app.url("/admin/payment-links?lang=en"))
        .form(&form("Bruno Díaz", "bruno@cliente.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let page = ok.text().await.unwrap();
    let links = leadgate::store::payment_links::recent(&app.ctx.db, 10).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].source.as_str(), "admin");
    assert_eq!(links[0].amount.amount_minor(), 15_000_000);
    let url = leadgate::links::payment_link_url(&app.ctx, &links[0].id);
    assert!(
        page.contains(&format!(
            "id=\"created-link\" class=\"snippet\" readonly value=\"{url}\""
        )),
        "{page}"
    );
    assert!(page.contains("data-copy=\"created-link\""), "{page}");
    let html = admin_page(&app).await;
    assert!(
        html.contains("bruno@cliente.test") && html.contains("payable"),
        "{html}"
    );

    // A token made on /admin works on the API until it is revoked there.
    let made = app
        .http
        .post(app.url("/admin/api-tokens?lang=en"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&name=Zapier&scope=payment_links%3Awrite"))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    let page = made.text().await.unwrap();
    let marker = "id=\"new-token\" class=\"snippet\" readonly value=\"";
    let at = page.find(marker).unwrap_or_else(|| panic!("no token shown: {page}")) + marker.len();
    let t = page[at..].split('"').next().unwrap().to_owned();
    assert_eq!(post(&app, Some(&t), None, &good()).await.status(), 201);
    let html = admin_page(&app).await;
    assert!(!html.contains(&t), "the token is shown once only");
    let rows = leadgate::store::api_tokens::list(&app.ctx.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "Zapier");
    assert!(rows[0].last_used_at.is_some());
    let revoke = app
        .http
        .post(app.url(&format!("/admin/api-tokens/{}/revoke", rows[0].id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 303);
    assert_eq!(post(&app, Some(&t), None, &good()).await.status(), 401);
}

async fn the_link_is_emailed_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_with(
        backend,
        Options {
            toml: format!(
                "{LIMITS}\n[email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Acme Ventas <ventas@acme.test>\"\ntimeout = \"3s\"\n",
                sink.port()
            ),
            ..Options::default()
        },
    )
    .await;
    let t = token(&app, "payment_links:write").await;
    let mut body = good();
    body["send_email"] = json!(true);
    body["lang"] = json!("pt-BR");
    let res = post(&app, Some(&t), Some("mail-1"), &body).await;
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.unwrap();
    app.settle().await;
    // A replay makes no second email, nor does the job running again.
    assert_eq!(post(&app, Some(&t), Some("mail-1"), &body).await.status(), 200);
    let link_id = made["id"].as_str().unwrap().to_owned();
    let lead = leadgate::store::payment_links::get(&app.ctx.db, &link_id)
        .await
        .unwrap()
        .unwrap()
        .lead_id;
    let mut tx = app.ctx.db.begin().await.unwrap();
    let job = leadgate::jobs::Job::LinkEmail { link_id };
    app.ctx
        .queue
        .enqueue(&mut tx, &job, Some(&lead), std::time::Duration::ZERO)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.ctx.queue.wake();
    app.settle().await;

    let got = sink.messages();
    assert_eq!(got.len(), 1, "one email per link");
    let m = &got[0];
    assert_eq!(m.envelope_to, ["ana@cliente.test"]);
    assert_eq!(m.subject.as_deref(), Some("Seu link de pagamento: Plan anual"));
    let text = m.text.clone().unwrap();
    assert!(text.contains(made["url"].as_str().unwrap()), "{text}");
    assert!(text.contains("Olá, Ana!"), "{text}");
    assert!(text.contains("250.000"), "the amount: {text}");
}

async fn email_is_refused_without_a_mail_server(backend: Backend) {
    let app = app(backend).await;
    let t = token(&app, "payment_links:write").await;
    let mut body = good();
    body["send_email"] = json!(true);
    let res = post(&app, Some(&t), None, &body).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        fields(&res.json().await.unwrap()),
        BTreeSet::from(["send_email".to_owned()])
    );
    assert_eq!(count(&app.ctx.db, "payment_links").await, 0);
}

async fn the_openapi_document_is_valid_and_true(backend: Backend) {
    let app = app(backend).await;
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let post_op = &doc["paths"]["/api/v1/payment-links"]["post"];
    let get_op = &doc["paths"]["/api/v1/payment-links/{id}"]["get"];
    let codes = |op: &Value| -> BTreeSet<String> { op["responses"].as_object().unwrap().keys().cloned().collect() };
    // What the server answers, seen above and here, is what the document promises.
    let t = token(&app, "payment_links:write payment_links:read").await;
    let mut seen = BTreeSet::new();
    seen.insert(post(&app, None, None, &good()).await.status().as_u16().to_string());
    seen.insert(
        post(&app, Some(&t), Some("k"), &good())
            .await
            .status()
            .as_u16()
            .to_string(),
    );
    seen.insert(
        post(&app, Some(&t), Some("k"), &good())
            .await
            .status()
            .as_u16()
            .to_string(),
    );
    seen.insert(
        post(
            &app,
            Some(&t),
            None,
            &json!({"person": {"name": "", "email": "", "phone": ""}}),
        )
        .await
        .status()
        .as_u16()
        .to_string(),
    );
    let read = token(&app, "payment_links:read").await;
    seen.insert(
        post(&app, Some(&read), None, &good())
            .await
            .status()
            .as_u16()
            .to_string(),
    );
    assert_eq!(seen, ["200", "201", "401", "403", "422"].map(String::from).into());
    assert!(seen.is_subset(&codes(post_op)), "{seen:?} in {:?}", codes(post_op));
    let missing = app
        .http
        .get(app.url("/api/v1/payment-links/nope"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(codes(get_op).contains(&missing.status().as_u16().to_string()));
    assert!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer",
        "{doc}"
    );

    let Some(modules) = crate::vendor_tools::tool("LEADGATE_TEST_VENDOR_SDKS") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/openapi-validate.cjs"))
        .arg(&file)
        .env("NODE_PATH", modules)
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swagger-parser: {text}");
    assert!(text.contains("valid OpenAPI"), "{text}");
}

fn leadgate_cli(db_url: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_leadgate"));
    for var in ["LEADGATE_CONFIG", "LEADGATE_BIND", "LEADGATE_PUBLIC_URL"] {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).env("LEADGATE_DATABASE_URL", db_url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_makes_lists_and_revokes_tokens() {
    let app = app(Backend::Sqlite).await;
    let url = app.ctx.settings.database_url.clone();
    let (ok, text) = leadgate_cli(
        &url,
        &["api-token", "create", "--name", "n8n", "--scope", "payment_links:write"],
    );
    assert!(ok, "{text}");
    let t = text
        .lines()
        .find(|l| l.starts_with("lg_"))
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    let id = text.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_owned();
    assert_eq!(post(&app, Some(&t), None, &good()).await.status(), 201);
    let (ok, text) = leadgate_cli(&url, &["api-token", "list"]);
    assert!(
        ok && text.contains(&id) && text.contains("n8n") && !text.contains(&t),
        "{text}"
    );
    let (ok, text) = leadgate_cli(&url, &["api-token", "revoke", &id]);
    assert!(ok, "{text}");
    assert_eq!(post(&app, Some(&t), None, &good()).await.status(), 401);
    let (ok, text) = leadgate_cli(&url, &["api-token", "revoke", &id]);
    assert!(!ok && text.contains("no unrevoked token"), "{text}");
    let (ok, text) = leadgate_cli(&url, &["api-token", "create", "--name", "x", "--scope", "admin"]);
    assert!(!ok && text.contains("unknown scope"), "{text}");
}

crate::both_backends!(
    auth_is_required_and_scoped,
    refused_tokens_back_off,
    bad_input_lists_every_field,
    a_good_request_makes_a_link_and_its_checkout,
    an_idempotency_key_replays_the_same_link,
    the_admin_makes_links_and_tokens,
    the_link_is_emailed_once,
    email_is_refused_without_a_mail_server,
    the_openapi_document_is_valid_and_true,
);
