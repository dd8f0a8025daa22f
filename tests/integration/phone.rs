//! The phone field's country selector: numbers as people write them at home are
//! accepted for the country they pick (preselected from their browser), stored and sent
//! to the CRM as E.164, and the hint says what is accepted. The demo offer's region is CO.

use crate::both_backends;
use crate::support::{location, spawn, Backend, TestApp};

both_backends!(
    brazilian_visitor_types_a_brazilian_number,
    american_visitor_types_an_american_number,
    explicit_choice_wins_over_the_browser,
    plus_number_ignores_the_choice,
    unknown_country_is_a_field_error,
    error_page_keeps_the_choice,
    hint_matches_what_is_accepted_in_each_language,
    checkout_and_resume_get_e164
);

/// The values of the `<option>`s marked selected in the phone country selector.
fn selected_countries(html: &str) -> Vec<String> {
    html.split("<option value=\"")
        .skip(1)
        .filter_map(|rest| {
            let tag = rest.split('>').next()?;
            tag.ends_with(" selected")
                .then(|| tag.split('"').next().unwrap_or("").to_owned())
        })
        .collect()
}

fn form<'a>(phone: &'a str, country: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("name", "Ana Souza"),
        ("email", "ana@example.com"),
        ("phone", phone),
        ("phone_country", country),
    ]
}

/// Submits, expects the redirect to the checkout, and returns the stored phone and the
/// one the CRM deal got.
async fn accepted(app: &TestApp, accept_language: &str, fields: &[(&str, &str)]) -> (String, String) {
    let res = app.post_form_in("/c/demo", accept_language, fields).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    let leads = app.leads().await;
    assert_eq!(leads.len(), 1);
    let deals = app.deals().await;
    assert_eq!(deals.len(), 1, "the deal is created inline");
    (
        leads[0]["phone"].as_str().unwrap_or("").to_owned(),
        deals[0].person_phone.clone(),
    )
}

async fn brazilian_visitor_types_a_brazilian_number(backend: Backend) {
    let app = spawn(backend).await;
    let lang = "pt-BR,pt;q=0.9,en;q=0.8";
    let html = app.get_in("/c/demo", lang).await.text().await.unwrap();
    assert_eq!(selected_countries(&html), ["BR"], "preselected from Accept-Language");
    assert!(
        html.contains(r#"<option value="BR" data-example="Exemplo: (11) 96123-4567" selected>Brasil (+55)</option>"#)
    );
    // What the browser sends: the number as typed and the preselected country.
    let (stored, crm) = accepted(&app, lang, &form("11 91234 5678", "BR")).await;
    assert_eq!(stored, "+5511912345678");
    assert_eq!(crm, "+5511912345678");
}

/// The gateway's checkout is prefilled with the E.164 number, and so is a resume link's.
async fn checkout_and_resume_get_e164(backend: Backend) {
    let app = spawn(backend).await;
    let res = app.post_form_in("/c/demo", "pt-BR", &form("11 91234 5678", "BR")).await;
    assert_eq!(res.status(), 303);
    let checkout = app.get(&location(&res)).await.text().await.unwrap();
    assert!(
        checkout.contains(r#"<dd id="customer-phone">+5511912345678</dd>"#),
        "{checkout}"
    );
    let lead = &app.leads().await[0];
    let offer = lead["offer"].as_str().unwrap_or("demo");
    let token = leadgate::links::resume_token(&app.ctx, lead["id"].as_str().unwrap(), offer).unwrap();
    let res = app.post_form(&format!("/r/{token}"), &[]).await;
    assert_eq!(res.status(), 303);
    let resumed = app.get(&location(&res)).await.text().await.unwrap();
    assert!(
        resumed.contains(r#"<dd id="customer-phone">+5511912345678</dd>"#),
        "{resumed}"
    );
}

async fn american_visitor_types_an_american_number(backend: Backend) {
    let app = spawn(backend).await;
    let html = app.get_in("/c/demo", "en-US,en;q=0.9").await.text().await.unwrap();
    assert_eq!(selected_countries(&html), ["US"]);
    assert!(html.contains("United States (+1)"));
    let (stored, crm) = accepted(&app, "en-US,en;q=0.9", &form("415 555 0100", "US")).await;
    assert_eq!(stored, "+14155550100");
    assert_eq!(crm, "+14155550100");
}

async fn explicit_choice_wins_over_the_browser(backend: Backend) {
    let app = spawn(backend).await;
    // A prefill link's choice wins over the browser's region, in any case.
    let html = app
        .get_in("/c/demo?phone_country=mx", "pt-BR")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(selected_countries(&html), ["MX"]);
    // A bad prefill only loses the prefill.
    let res = app.get_in("/c/demo?phone_country=zz", "pt-BR").await;
    assert_eq!(res.status(), 200);
    assert_eq!(selected_countries(&res.text().await.unwrap()), ["BR"]);
    // No region in the browser's languages: the offer's.
    let html = app.get_in("/c/demo", "es").await.text().await.unwrap();
    assert_eq!(selected_countries(&html), ["CO"]);

    let (stored, _) = accepted(&app, "pt-BR", &form("55 1234 5678", "MX")).await;
    assert_eq!(stored, "+525512345678", "read as a Mexican number, not a Brazilian one");
}

async fn plus_number_ignores_the_choice(backend: Backend) {
    let app = spawn(backend).await;
    let (stored, crm) = accepted(&app, "pt-BR", &form("+52 55 1234 5678", "BR")).await;
    assert_eq!(stored, "+525512345678");
    assert_eq!(crm, "+525512345678");
}

async fn unknown_country_is_a_field_error(backend: Backend) {
    let app = spawn(backend).await;
    for (lang, message) in [
        ("pt-BR", "Escolha um país da lista."),
        ("es", "Elige un país de la lista."),
        ("en", "Choose a country from the list."),
    ] {
        let res = app.post_form_in("/c/demo", lang, &form("300 123 4567", "ZZ")).await;
        assert_eq!(res.status(), 422, "{lang}");
        let html = res.text().await.unwrap();
        assert!(html.contains(message), "{lang}: {html}");
        assert!(html.contains(r#"aria-describedby="phone-hint phone_country-error" aria-invalid="true""#));
        assert!(
            html.contains(r##"<a href="#phone_country">"##),
            "{lang}: the summary links to it"
        );
        // The typed values are kept; the selection falls back to the default.
        assert!(html.contains(r#"value="300 123 4567""#));
        assert_eq!(selected_countries(&html).len(), 1);
    }
    assert!(app.leads().await.is_empty(), "nothing was stored");
    assert!(app.deals().await.is_empty());
}

async fn error_page_keeps_the_choice(backend: Backend) {
    let app = spawn(backend).await;
    // A Peruvian number is refused as Colombian... only if the choice were lost.
    let mut bad = form("987 654 321", "PE");
    bad[1] = ("email", "not-an-email");
    let res = app.post_form_in("/c/demo", "es-CO", &bad).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert_eq!(selected_countries(&html), ["PE"]);
    assert!(
        !html.contains(r#"id="phone-error""#),
        "the number is fine for Peru: {html}"
    );
    assert!(html.contains(r#"<span id="phone-example">Ejemplo: 912 345 678</span>"#));

    // "Other" with a number lacking + says exactly what is missing.
    let res = app.post_form_in("/c/demo", "en", &form("3001234567", "other")).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert_eq!(selected_countries(&html), ["other"]);
    assert!(html.contains("Type the number with + and the country code."), "{html}");

    // Fixed, it goes through with the same choices.
    let (stored, _) = accepted(&app, "es-CO", &form("987 654 321", "PE")).await;
    assert_eq!(stored, "+51987654321");
}

async fn hint_matches_what_is_accepted_in_each_language(backend: Backend) {
    let app = spawn(backend).await;
    for (lang, hint, example) in [
        (
            "es",
            "Elige tu país, o escribe el número con + y el indicativo del país.",
            "Ejemplo: 321 1234567",
        ),
        (
            "pt-BR",
            "Escolha seu país, ou digite o número com + e o código do país.",
            "Exemplo: (11) 96123-4567",
        ),
        (
            "en-US",
            "Choose your country, or type the number with + and the country code.",
            "Example: (201) 555-0123",
        ),
    ] {
        let html = app.get_in("/c/demo", lang).await.text().await.unwrap();
        let shown = format!(r#"<p class="hint" id="phone-hint">{hint} <span id="phone-example">{example}</span></p>"#);
        assert!(html.contains(&shown), "{lang}: {html}");
        assert!(
            html.contains(r#"<label for="phone_country">"#),
            "{lang}: the selector has a label"
        );
        let other = html.split(r#"<option value="other""#).nth(1).unwrap_or("");
        assert!(other.contains("+"), "{lang}: the way out says to type +");
    }
    // The example the hint shows is a number the form accepts for that country.
    let (stored, _) = accepted(&app, "es", &form("321 1234567", "CO")).await;
    assert_eq!(stored, "+573211234567");

    // The optional script is our own file (the CSP allows no inline script).
    let html = app.get("/c/demo").await.text().await.unwrap();
    assert!(html.contains(r#"<script src="/static/phone.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), html.matches("<script src=").count());
    let js = app.get("/static/phone.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("data-example"));
}
