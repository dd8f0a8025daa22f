//! Payment links as their customers meet them: `/l/{token}` shows what the link pays and
//! creates nothing on GET; its button reopens the open checkout, opens a fresh one (on the
//! same deal) once that expired, and refuses once paid or past the link's expiry. Links
//! here are made through the flow itself; the API, admin and CRM tests make them their way.

use std::time::Duration;

use crate::both_backends;
use crate::support::{location, spawn_with, Backend, Options, TestApp};
use leadgate::domain::lead::Contact;
use leadgate::domain::payment_link::LinkSource;
use leadgate::domain::{Currency, Email, Lang, Money, PaymentStatus, PersonName, Phone};
use leadgate::flows::payment_link::{self, CreatedLink, DealRef, Idempotency, LinkError, NewLink};
use leadgate::store::attempts;

const LIMITS: &str = "
[payment_links.limits.COP]
min_minor = 100000
max_minor = 100000000
";

async fn app(backend: Backend) -> TestApp {
    let opts = Options {
        toml: LIMITS.into(),
        ..Options::default()
    };
    spawn_with(backend, opts).await
}

fn ana() -> Contact {
    Contact {
        name: PersonName::parse("Ana María Gómez").unwrap(),
        email: Email::parse("ana.links@example.com").unwrap(),
        phone: Phone::parse("300 123 4567", Some("CO")).unwrap(),
        tax_id: None,
    }
}

fn new_link(deal: Option<DealRef>) -> NewLink {
    NewLink {
        contact: ana(),
        lang: Lang::Es,
        offer: Some("demo".into()),
        amount: Some(Money::new(35_000_000, Currency::COP).unwrap()),
        description: Some("Mentoría privada, 4 sesiones".into()),
        deal,
        expires_at: None,
        source: LinkSource::Admin,
        idempotency: None,
        email_link: false,
    }
}

async fn make(app: &TestApp, new: NewLink) -> CreatedLink {
    payment_link::create(&app.ctx, new).await.unwrap()
}

async fn statuses(app: &TestApp, lead_id: &str) -> Vec<PaymentStatus> {
    let list = attempts::for_lead(&app.ctx.db, lead_id).await.unwrap();
    list.iter().map(|a| a.status).collect()
}

/// The link page's pay button, as a browser presses it (its form token from the page).
async fn press(app: &TestApp, link_url: &str) -> reqwest::Response {
    let token = app.form_token(link_url).await;
    let path = link_url.strip_prefix(&app.base).unwrap();
    app.post_form(path, &[("form_token", &token)]).await
}

both_backends!(
    a_link_page_shows_what_it_pays_and_a_get_creates_nothing,
    pressing_reuses_the_open_checkout_and_refuses_once_paid,
    an_expired_checkout_is_replaced_by_a_fresh_one_on_the_same_deal,
    a_link_past_its_expiry_is_refused,
    a_resume_link_of_a_link_goes_to_the_link_page,
    the_same_key_or_the_same_open_deal_gives_the_same_link,
    amounts_outside_the_limits_are_refused_with_their_field,
    a_forged_or_unknown_link_token_opens_nothing,
    an_unpaid_link_gives_sales_a_follow_up_on_its_deal,
);

async fn a_link_page_shows_what_it_pays_and_a_get_creates_nothing(backend: Backend) {
    let app = app(backend).await;
    let link = make(&app, new_link(None)).await;
    assert!(link.url.starts_with(&format!("{}/l/", app.base)), "{}", link.url);
    assert!(link
        .checkout_url
        .as_deref()
        .is_some_and(|u| u.contains("/sandbox/pay/")));
    for _ in 0..3 {
        let res = app.get(&link.url).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("Mentoría privada, 4 sesiones"), "{html}");
        assert!(
            html.contains("350.000"),
            "the link's amount, not the offer's price: {html}"
        );
        assert!(!html.contains("199.000"), "{html}");
        assert!(html.contains("Hola, Ana"), "{html}");
        assert!(html.contains("method=\"post\""), "{html}");
    }
    assert_eq!(statuses(&app, &link.lead_id).await, vec![PaymentStatus::Redirected]);
    // The gateway was asked for the link's amount and description.
    let sandbox = leadgate::store::sandbox::by_reference(&app.ctx.db, &link.attempt_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sandbox.amount_minor, 35_000_000);
    assert_eq!(sandbox.description, "Mentoría privada, 4 sesiones");
    assert_eq!(sandbox.customer_email, "ana.links@example.com");
}

async fn pressing_reuses_the_open_checkout_and_refuses_once_paid(backend: Backend) {
    let app = app(backend).await;
    let link = make(&app, new_link(None)).await;
    let first = link.checkout_url.clone().unwrap();
    let res = press(&app, &link.url).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), first, "the open checkout, not a new one");
    assert_eq!(statuses(&app, &link.lead_id).await.len(), 1);
    // A second tab, opened before the payment, pressed after it.
    let token = app.form_token(&link.url).await;
    app.press(&first, "approve").await;
    app.settle().await;
    let path = link.url.strip_prefix(&app.base).unwrap();
    let res = app.post_form(path, &[("form_token", &token)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Ya recibimos tu pago"));
    let html = app.get(&link.url).await.text().await.unwrap();
    assert!(html.contains("Ya recibimos tu pago"), "{html}");
    assert!(!html.contains("method=\"post\""), "no pay button once paid: {html}");
    assert_eq!(statuses(&app, &link.lead_id).await, vec![PaymentStatus::Approved]);
}

async fn an_expired_checkout_is_replaced_by_a_fresh_one_on_the_same_deal(backend: Backend) {
    let app = app(backend).await;
    // A deal that already exists in the (built-in) CRM: a form lead's.
    app.start_checkout("demo", "Ana María Gómez", "ana.links@example.com")
        .await;
    app.settle().await;
    let deals = app.deals().await;
    assert_eq!(deals.len(), 1);
    let deal_id = deals[0].id.clone();
    let link = make(
        &app,
        new_link(Some(DealRef {
            deal_id: deal_id.clone(),
            person_id: None,
        })),
    )
    .await;
    app.settle().await;
    assert_eq!(app.deals().await.len(), 1, "the link's attempt creates no second deal");
    app.advance(app.ctx.settings.checkout_ttl + Duration::from_secs(60))
        .await;
    let res = press(&app, &link.url).await;
    assert_eq!(res.status(), 303);
    let fresh = location(&res);
    assert!(fresh.contains("/sandbox/pay/"), "{fresh}");
    assert_ne!(Some(fresh.as_str()), link.checkout_url.as_deref(), "a fresh checkout");
    assert_eq!(statuses(&app, &link.lead_id).await.len(), 2);
    app.press(&fresh, "approve").await;
    app.settle().await;
    let deals = app.deals().await;
    assert_eq!(deals.len(), 1, "no second deal: {deals:?}");
    assert_eq!(deals[0].id, deal_id);
    assert_eq!(deals[0].status, "won", "{deals:?}");
}

async fn a_link_past_its_expiry_is_refused(backend: Backend) {
    let app = app(backend).await;
    let link = make(&app, new_link(None)).await;
    let early_token = app.form_token(&link.url).await;
    app.advance(Duration::from_secs(8 * 24 * 3600)).await;
    let res = app.get(&link.url).await;
    assert_eq!(res.status(), 410);
    let html = res.text().await.unwrap();
    assert!(html.contains("Este enlace de pago venció"), "{html}");
    assert!(!html.contains("method=\"post\""), "{html}");
    let path = link.url.strip_prefix(&app.base).unwrap();
    // A press from a page loaded before it expired.
    let res = app.post_form(path, &[("form_token", &early_token)]).await;
    assert_eq!(res.status(), 410);
    assert!(res.text().await.unwrap().contains("Este enlace de pago venció"));
    assert_eq!(statuses(&app, &link.lead_id).await.len(), 1, "no new attempt");
}

async fn a_resume_link_of_a_link_goes_to_the_link_page(backend: Backend) {
    let app = app(backend).await;
    let link = make(&app, new_link(None)).await;
    // The sandbox's "cancel" sends the customer to the attempt's cancel URL, a resume link.
    let back = app.press(link.checkout_url.as_deref().unwrap(), "abandon").await;
    assert!(back.contains("/r/"), "{back}");
    let res = app.get(&back).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with(&link.url), "{to}");
    assert_eq!(app.get(&to).await.status(), 200);
}

async fn the_same_key_or_the_same_open_deal_gives_the_same_link(backend: Backend) {
    let app = app(backend).await;
    let keyed = |fingerprint: &str| NewLink {
        idempotency: Some(Idempotency {
            key: "api:t1:order-42".into(),
            fingerprint: fingerprint.into(),
        }),
        ..new_link(None)
    };
    let first = make(&app, keyed("f1")).await;
    let again = make(&app, keyed("f1")).await;
    assert!(!first.replayed && again.replayed);
    assert_eq!(
        (first.link_id.as_str(), first.attempt_id.as_str()),
        (again.link_id.as_str(), again.attempt_id.as_str())
    );
    assert!(matches!(
        payment_link::create(&app.ctx, keyed("f2")).await,
        Err(LinkError::KeyReused)
    ));
    let deal = || {
        new_link(Some(DealRef {
            deal_id: "D-7".into(),
            person_id: Some("P-7".into()),
        }))
    };
    let one = make(&app, deal()).await;
    let two = make(&app, deal()).await;
    assert!(two.replayed);
    assert_eq!(one.link_id, two.link_id);
    assert_eq!(statuses(&app, &one.lead_id).await.len(), 1);
    assert_eq!(app.leads().await.len(), 2, "one lead per link made");
}

async fn amounts_outside_the_limits_are_refused_with_their_field(backend: Backend) {
    let app = app(backend).await;
    let cases = [
        (Money::new(99_999, Currency::COP).unwrap(), "amount_minor"),
        (Money::new(100_000_001, Currency::COP).unwrap(), "amount_minor"),
        (Money::new(10_000, Currency::USD).unwrap(), "currency"),
    ];
    for (amount, field) in cases {
        let new = NewLink {
            amount: Some(amount),
            ..new_link(None)
        };
        match payment_link::create(&app.ctx, new).await {
            Err(LinkError::Invalid(problems)) => {
                assert_eq!(
                    problems.iter().map(|p| p.field).collect::<Vec<_>>(),
                    vec![field],
                    "{problems:?}"
                )
            }
            other => panic!("{amount:?}: {other:?}"),
        }
    }
    let past = NewLink {
        expires_at: Some(app.ctx.clock.now_ms() - 1),
        ..new_link(None)
    };
    assert!(
        matches!(payment_link::create(&app.ctx, past).await, Err(LinkError::Invalid(p)) if p[0].field == "expires_at")
    );
    assert!(app.leads().await.is_empty(), "nothing stored for a refused link");
}

async fn a_forged_or_unknown_link_token_opens_nothing(backend: Backend) {
    let app = app(backend).await;
    let link = make(&app, new_link(None)).await;
    let id = link.link_id.clone();
    for path in [format!("/l/{id}"), format!("/l/{id}.AAAA"), "/l/x.y".into()] {
        let res = app.get(&path).await;
        assert!(matches!(res.status().as_u16(), 404 | 410), "{path}: {}", res.status());
        let res = app.post_form(&path, &[("form_token", "x")]).await;
        assert!(
            matches!(res.status().as_u16(), 403 | 404 | 410),
            "{path}: {}",
            res.status()
        );
    }
    assert_eq!(statuses(&app, &link.lead_id).await.len(), 1);
}

async fn an_unpaid_link_gives_sales_a_follow_up_on_its_deal(backend: Backend) {
    let app = app(backend).await;
    app.start_checkout("demo", "Ana María Gómez", "ana.links@example.com")
        .await;
    app.settle().await;
    let form_deal = app.deals().await[0].id.clone();
    // The form lead gets its own follow-up too; the link's is told apart by its attempt.
    let link = make(
        &app,
        new_link(Some(DealRef {
            deal_id: form_deal.clone(),
            person_id: None,
        })),
    )
    .await;
    app.advance(Duration::from_secs(31 * 60)).await;
    app.settle().await;
    let tasks = app.tasks().await;
    let mine: Vec<_> = tasks
        .iter()
        .filter(|t| t.external_key.contains(&link.attempt_id))
        .collect();
    assert_eq!(mine.len(), 1, "{tasks:?}");
    assert_eq!(
        mine[0].deal_id.as_deref(),
        Some(form_deal.as_str()),
        "on the link's deal"
    );
    // Its resume link leads to the link's page, which charges the link's amount.
    let resume = mine[0]
        .body
        .split_whitespace()
        .find(|w| w.contains("/r/"))
        .unwrap_or_else(|| panic!("no resume link in {}", mine[0].body));
    let res = app.get(resume).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(&link.url));
}
