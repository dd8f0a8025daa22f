//! Trust and conversion: who sells (name, logo, legal links), the offer's consent and its
//! text version kept with the lead, the signed thank-you redirect of a paid attempt, and
//! the attribution (gclid, fbclid, referrer) reaching the lead and the built-in CRM.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::admin::sign_in;
use crate::both_backends;
use crate::support::{attempt_id_of, hidden_field, location, spawn_with, Backend, Options, TestApp, ADMIN_PASSWORD};

both_backends!(
    seller_name_logo_and_legal_links_show_on_form_and_result,
    required_consent_is_a_field_error_and_its_version_is_kept,
    a_paid_attempt_goes_to_the_signed_thank_you_url,
    click_ids_and_referrer_reach_the_lead_and_the_builtin_crm,
    the_reminder_email_consent_keeps_its_text_version
);

const SECRET: &str = "thank-you-secret-thank-you-secret-0123";
/// A tiny PNG's first bytes: the route serves whatever file was configured, unchanged.
const LOGO: &[u8] = b"\x89PNG\r\n\x1a\nnot-really-a-png";

/// `[seller]` for every offer, an offer `trusted` with its own name, a consent, a
/// thank-you and a continue URL; the logo file is read at start-up.
async fn app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, LOGO).unwrap();
    let toml = format!(
        r#"
[seller]
seller_name = "Academia Ejemplo"
logo = "{}"
privacy_url = "https://example.com/privacidad"
terms_url = "https://example.com/terminos"

[[offers]]
slug = "trusted"
title = "Taller de Ventas"
price_minor = 4990
currency = "USD"
followup_delays = ["30m"]
thank_you_url = "https://shop.example/gracias?from=leadgate"
continue_url = "https://members.example/acceso"
[offers.seller]
seller_name = "Ventas & Co"
[offers.consent]
version = "2026-11"
text = {{ es = "Acepto el tratamiento de mis datos", "pt-BR" = "Aceito o tratamento dos meus dados", en = "I agree to the processing of my data" }}
"#,
        logo.display()
    );
    let opts = Options {
        toml,
        env: vec![("LEADGATE_THANK_YOU_SECRET", SECRET.to_owned())],
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

fn contact() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Ana Pérez"),
        ("email", "ana@example.com"),
        ("phone", "300 123 4567"),
    ]
}

async fn seller_name_logo_and_legal_links_show_on_form_and_result(backend: Backend) {
    let app = app(backend).await;
    // The offer's own name; the logo and links of `[seller]`.
    let html = app.get("/c/trusted").await.text().await.unwrap();
    assert!(
        html.contains(r#"<span class="seller-name">Ventas &#38; Co</span>"#),
        "{html}"
    );
    let src = html
        .split(r#"<img class="seller-logo" src=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no logo in {html}"))
        .to_owned();
    assert!(html.contains(r#"alt="Ventas &#38; Co""#), "{html}");
    assert!(html.contains(r#"href="https://example.com/privacidad""#), "{html}");
    assert!(html.contains(r#"href="https://example.com/terminos""#) && html.contains("Términos y condiciones"));
    // An offer without overrides has the default name.
    let demo = app.get("/c/demo").await.text().await.unwrap();
    assert!(demo.contains(">Academia Ejemplo</span>"), "{demo}");

    // The logo comes from our own origin, with its type, cached for good.
    assert!(src.starts_with("/logo/") && src.ends_with(".png"), "{src}");
    let res = app.get(&src).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), LOGO);
    assert_eq!(app.get("/logo/0000000000000000.png").await.status(), 404);

    // The result page shows the seller too (declined: no thank-you redirect).
    let mut form = contact();
    form.push(("consent", "yes"));
    let res = app.post_form("/c/trusted", &form).await;
    assert_eq!(res.status(), 303);
    let back = app.press(&location(&res), "decline").await;
    let page = app.get(&back).await.text().await.unwrap();
    assert!(page.contains(r#"data-status="declined""#), "{page}");
    assert!(page.contains("Ventas &#38; Co") && page.contains(&src), "{page}");
    assert!(page.contains(r#"href="https://example.com/privacidad""#), "{page}");
    // Declined: no continue link.
    assert!(!page.contains("members.example"), "{page}");
}

async fn required_consent_is_a_field_error_and_its_version_is_kept(backend: Backend) {
    let app = app(backend).await;
    // The text in the visitor's language, linked to the privacy policy.
    let en = app.get_in("/c/trusted", "en").await.text().await.unwrap();
    assert!(
        en.contains("I agree to the processing of my data (<a href=\"https://example.com/privacidad\""),
        "{en}"
    );
    let pt = app.get_in("/c/trusted", "pt-BR").await.text().await.unwrap();
    assert!(pt.contains("Aceito o tratamento dos meus dados"), "{pt}");
    assert!(
        pt.contains(r#"name="consent" type="checkbox" value="yes" required"#),
        "{pt}"
    );
    // A link cannot tick it for the customer.
    let linked = app
        .get("/c/trusted?consent=yes&email=ana@example.com")
        .await
        .text()
        .await
        .unwrap();
    assert!(linked.contains(r#"value="ana@example.com""#), "{linked}");
    assert!(!linked.contains(" checked"), "{linked}");

    let res = app.post_form("/c/trusted", &contact()).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="error" id="consent-error">Debes aceptar para continuar.</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"aria-describedby="consent-error""#), "{html}");
    // What was typed stays.
    assert!(html.contains(r#"value="ana@example.com""#), "{html}");
    assert!(app.leads().await.is_empty());

    let mut form = contact();
    form.extend([("consent", "yes"), ("lang", "pt-BR")]);
    let res = app.post_form_in("/c/trusted", "pt-BR", &form).await;
    assert_eq!(res.status(), 303);
    let checkout = location(&res);
    let leads = app.leads().await;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["consent"]["version"], "2026-11");
    assert_eq!(leads[0]["consent"]["lang"], "pt-BR");
    assert!(
        leads[0]["consent"]["at"].as_str().unwrap().starts_with("20"),
        "{}",
        leads[0]
    );

    // No consent configured: none asked, none stored.
    let res = app.post_form("/c/demo", &contact()).await;
    assert_eq!(res.status(), 303);
    let demo = app.leads().await.into_iter().find(|l| l["offer"] == "demo").unwrap();
    assert!(demo["consent"].is_null(), "{demo}");

    // The built-in CRM's deals show it, and so does the note of the payment's outcome.
    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let admin = app.get("/admin").await.text().await.unwrap();
    assert!(
        admin.contains(r#"<td class="consent"><small>2026-11 (pt-BR), "#),
        "{admin}"
    );
    app.press(&checkout, "decline").await;
    app.settle().await;
    let notes = leadgate::store::builtin_crm::notes(&app.ctx.db, 10).await.unwrap();
    let bodies: Vec<&str> = notes.iter().map(|n| n.body.as_str()).collect();
    assert!(
        bodies.iter().any(|b| b.contains("\nConsentimento: 2026-11 (pt-BR, 20")),
        "{bodies:?}"
    );
}

/// What the marketer's page does (the README's PHP snippet): rebuild the canonical string
/// from the parameters received and compare the HMAC.
fn verifies(url: &url::Url) -> bool {
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    let (Some(reference), Some(amount), Some(currency), Some(lang), Some(sig)) = (
        get("reference"),
        get("amount"),
        get("currency"),
        get("lang"),
        get("sig"),
    ) else {
        return false;
    };
    let canonical = format!("reference={reference}&amount={amount}&currency={currency}&lang={lang}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    hex::decode(sig).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

fn with(url: &url::Url, key: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key { value.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

async fn a_paid_attempt_goes_to_the_signed_thank_you_url(backend: Backend) {
    let app = app(backend).await;
    let mut form = contact();
    form.push(("consent", "yes"));
    let res = app.post_form_in("/c/trusted", "en", &form).await;
    assert_eq!(res.status(), 303);
    let back = app.press(&location(&res), "approve").await;
    let attempt = attempt_id_of(&back);

    let res = app.get(&back).await;
    assert_eq!(res.status(), 303);
    let to = url::Url::parse(&location(&res)).unwrap();
    assert_eq!((to.host_str(), to.path()), (Some("shop.example"), "/gracias"));
    let q: Vec<(String, String)> = to
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["from", "reference", "amount", "currency", "lang", "sig"]);
    assert_eq!(q[1].1, attempt);
    // The language the lead filled the form in.
    assert_eq!(
        (q[2].1.as_str(), q[3].1.as_str(), q[4].1.as_str()),
        ("49.90", "USD", "en")
    );
    assert!(verifies(&to), "{to}");
    for (key, forged) in [
        ("reference", "other"),
        ("amount", "4990.00"),
        ("currency", "COP"),
        ("lang", "es"),
    ] {
        assert!(!verifies(&with(&to, key, forged)), "{key} tampered with still verifies");
    }
    assert!(!verifies(&with(&to, "sig", &"0".repeat(64))));

    // The page shown in another language signs that language.
    let res = app.get(&format!("{back}&lang=pt-BR")).await;
    let to_pt = url::Url::parse(&location(&res)).unwrap();
    assert!(to_pt.query_pairs().any(|(k, v)| k == "lang" && v == "pt-BR") && verifies(&to_pt));

    // The paid page is still there, with the continue link and no email promised.
    let res = app.get(&format!("{back}&stay=1")).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"data-status="approved""#), "{page}");
    assert!(
        page.contains(r#"<a class="button" href="https://members.example/acceso">Continue</a>"#),
        "{page}"
    );
    assert!(
        page.contains("Keep your payment reference") && !page.contains("We sent the confirmation"),
        "{page}"
    );

    // An offer without a thank-you URL shows the paid page as before.
    let res = app.post_form("/c/demo", &contact()).await;
    let back = app.press(&location(&res), "approve").await;
    let res = app.get(&back).await;
    assert_eq!(res.status(), 200);
    assert!(!res.text().await.unwrap().contains("members.example"));
}

async fn click_ids_and_referrer_reach_the_lead_and_the_builtin_crm(backend: Backend) {
    let app = app(backend).await;
    let html = app
        .get("/c/demo?gclid=Cj0KCQ-abc&fbclid=IwAR-xyz&referrer=https%3A%2F%2Fblog.example%2Fpost%23top")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_field(&html, "gclid").as_deref(), Some("Cj0KCQ-abc"));
    assert_eq!(hidden_field(&html, "fbclid").as_deref(), Some("IwAR-xyz"));
    // The fragment is no attribution.
    assert_eq!(
        hidden_field(&html, "referrer").as_deref(),
        Some("https://blog.example/post")
    );

    // Without a `referrer` query, the Referer header of another site, not one of ours.
    let from = |referer: String| {
        let http = app.http.clone();
        let url = app.url("/c/demo");
        async move {
            http.get(url)
                .header("Referer", referer)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let other = from("https://news.example/story?id=7".into()).await;
    assert_eq!(
        hidden_field(&other, "referrer").as_deref(),
        Some("https://news.example/story?id=7")
    );
    let ours = from(app.url("/c/trusted")).await;
    assert_eq!(hidden_field(&ours, "referrer"), None);
    let junk = from("javascript:alert(1)".into()).await;
    assert_eq!(hidden_field(&junk, "referrer"), None);

    let long = "g".repeat(500);
    let mut form = contact();
    form.extend([
        ("gclid", long.as_str()),
        ("fbclid", " IwAR-xyz "),
        ("referrer", "https://blog.example/post"),
        ("utm_source", "wp"),
    ]);
    let res = app.post_form("/c/demo", &form).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let lead = &app.leads().await[0];
    assert_eq!(
        lead["utm"]["gclid"].as_str().unwrap().len(),
        200,
        "bounded like the UTMs"
    );
    assert_eq!(lead["utm"]["fbclid"], "IwAR-xyz");
    assert_eq!(lead["utm"]["referrer"], "https://blog.example/post");

    assert_eq!(sign_in(&app, ADMIN_PASSWORD).await.status(), 303);
    let admin = app.get("/admin").await.text().await.unwrap();
    let cell = admin
        .split(r#"<td class="attribution"><small>"#)
        .nth(1)
        .and_then(|s| s.split("</small>").next())
        .unwrap_or_else(|| panic!("no attribution cell in {admin}"));
    assert!(cell.starts_with("utm_source=wp · gclid=ggg"), "{cell}");
    assert!(
        cell.ends_with(" · fbclid=IwAR-xyz · referrer=https://blog.example/post"),
        "{cell}"
    );
}

async fn the_reminder_email_consent_keeps_its_text_version(backend: Backend) {
    // Nothing is sent: the email steps are hours away and the test does not wait for them.
    let toml = r#"
[email]
host = "127.0.0.1"
port = 9
tls = "none"
from = "ventas@acme.test"

[[offers]]
slug = "mail"
title = "Taller"
price_minor = 9900000
currency = "COP"
[offers.followup]
email_consent = "required"
[[offers.followup.steps]]
after = "1h"
kind = "email"
"#;
    let opts = Options {
        toml: toml.into(),
        ..Options::default()
    };
    let app = spawn_with(backend, opts).await;
    for (email, ticked) in [("si@example.com", true), ("no@example.com", false)] {
        let mut form = vec![("name", "Eva Luna"), ("email", email), ("phone", "300 123 4567")];
        if ticked {
            form.push(("email_consent", "yes"));
        }
        assert_eq!(app.post_form("/c/mail", &form).await.status(), 303);
    }
    let sql = "SELECT email, email_consent_version FROM leads ORDER BY email";
    let rows: Vec<(String, Option<String>)> = match &app.ctx.db {
        leadgate::store::Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p.pool()).await.unwrap(),
        leadgate::store::Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
    };
    let version = leadgate::domain::lead::EMAIL_CONSENT_VERSION.to_owned();
    assert_eq!(
        rows,
        [
            ("no@example.com".to_owned(), None),
            ("si@example.com".to_owned(), Some(version))
        ]
    );
}
