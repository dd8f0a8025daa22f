//! Resume links and resubmitted forms open one checkout, not one per press: `GET /r/`
//! only shows a confirm page, its POST reuses the lead's open checkout, a paid lead is told
//! so, and the same email on the same offer within the duplicate window reuses the first
//! submit's checkout. Counted on a Stripe fake that would happily open a session per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::both_backends;
use crate::gateways::app_with;
use crate::support::{location, Backend, TestApp};
use leadgate::domain::lead::Attempt;
use leadgate::domain::PaymentStatus;
use leadgate::store::attempts::{self, StatusChange};

const OFFER: &str = "/c/mentoria";

/// Stripe's create-session endpoint with no idempotency at all: every call is a new
/// session, so any duplicate leadgate asks for shows up in `creates`.
struct Stripe {
    server: MockServer,
    creates: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Stripe {
    /// `delay` keeps each create in flight that long, so a second press lands mid-way.
    async fn start(delay: Duration) -> Self {
        let server = MockServer::start().await;
        let creates: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
        let seen = creates.clone();
        let base = server.uri();
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(move |req: &Request| {
                let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body).into_owned().collect();
                let mut seen = seen.lock().unwrap();
                seen.push(form);
                let id = format!("cs_test_{}", seen.len());
                ResponseTemplate::new(200)
                    .set_body_json(json!({
                        "id": id,
                        "object": "checkout.session",
                        "url": format!("{base}/c/pay/{id}"),
                        "status": "open",
                        "payment_status": "unpaid",
                    }))
                    .set_delay(delay)
            })
            .mount(&server)
            .await;
        Self { server, creates }
    }

    fn sessions(&self) -> usize {
        self.creates.lock().unwrap().len()
    }

    fn cancel_urls(&self) -> Vec<String> {
        let creates = self.creates.lock().unwrap();
        creates.iter().map(|f| f["cancel_url"].clone()).collect()
    }
}

async fn setup(backend: Backend, delay: Duration) -> (Stripe, TestApp) {
    let stripe = Stripe::start(delay).await;
    let toml = format!(
        r#"
[gateways.stripe]
environment = "sandbox"
api_base = "{}"

[[offers]]
slug = "mentoria"
title = "Mentoría"
price_minor = 4990
currency = "USD"
gateway = "stripe"
followup_delays = ["30m"]
"#,
        stripe.server.uri()
    );
    let env = vec![
        ("LEADGATE_STRIPE_SECRET_KEY", "sk_test_51Hx".to_string()),
        ("LEADGATE_STRIPE_WEBHOOK_SECRET", "whsec_test".to_string()),
    ];
    (stripe, app_with(backend, toml, env).await)
}

fn form(email: &str) -> [(&str, &str); 3] {
    [("name", "Ana María Pérez"), ("email", email), ("phone", "300 123 4567")]
}

async fn submit(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_form(OFFER, &form(email)).await
}

async fn all_attempts(app: &TestApp) -> Vec<Attempt> {
    let mut all = Vec::new();
    for lead in leadgate::store::leads::all(&app.ctx.db).await.unwrap() {
        all.extend(attempts::for_lead(&app.ctx.db, &lead.id).await.unwrap());
    }
    all
}

async fn lead_count(app: &TestApp) -> usize {
    leadgate::store::leads::all(&app.ctx.db).await.unwrap().len()
}

/// Sets an attempt's status as a webhook would have.
async fn set_status(app: &TestApp, a: &Attempt, to: PaymentStatus) {
    let change = StatusChange {
        from: a.status,
        to,
        gateway_ref: None,
        detail: None,
        source: "webhook",
        method: None,
    };
    let mut tx = app.ctx.db.begin().await.unwrap();
    assert!(attempts::cas_status(&mut tx, &a.id, &change, a.updated_at + 1)
        .await
        .unwrap());
    tx.commit().await.unwrap();
}

/// One submit whose checkout the customer left; returns the resume link path Stripe was
/// given as `cancel_url` and the attempt.
async fn abandoned(app: &TestApp, stripe: &Stripe) -> (String, Attempt) {
    assert_eq!(submit(app, "ana@example.com").await.status(), 303);
    let cancel = stripe.cancel_urls().pop().unwrap();
    let path = cancel.strip_prefix(&app.base).unwrap().to_owned();
    assert!(path.starts_with("/r/"), "{cancel}");
    let attempt = all_attempts(app).await.pop().unwrap();
    (path, attempt)
}

/// On PostgreSQL, holds back every insert into leads and attempts, so that two presses
/// both get as far as their insert before either commits: without the per-lead (or
/// per-email) lock, both would have found nothing to reuse. (SQLite has one writer, and
/// leadgate one connection to it: two presses there cannot overlap at all.)
struct InsertHold(sqlx::PgConnection);

impl InsertHold {
    async fn take(app: &TestApp) -> Option<Self> {
        use sqlx::Connection;
        if app.ctx.db.backend() != "postgres" {
            return None;
        }
        let mut c = sqlx::PgConnection::connect(&app.ctx.settings.database_url)
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut c).await.unwrap();
        sqlx::query("LOCK TABLE leads, attempts IN SHARE MODE")
            .execute(&mut c)
            .await
            .unwrap();
        Some(Self(c))
    }

    /// Lets the inserts go once two transactions wait (on this hold, or on each other).
    async fn release_when_two_wait(mut self) {
        let waiting = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted \
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        for _ in 0..200 {
            let n: i64 = sqlx::query_scalar(waiting).fetch_one(&mut self.0).await.unwrap();
            if n >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        sqlx::query("COMMIT").execute(&mut self.0).await.unwrap();
    }
}

/// Runs `press` twice at once, with inserts held back on PostgreSQL until both wait.
async fn double_click<F, Fut>(app: &TestApp, press: F) -> (String, String)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let hold = InsertHold::take(app).await;
    let release = async {
        if let Some(h) = hold {
            h.release_when_two_wait().await
        }
    };
    let ((a, b), ()) = tokio::join!(async { tokio::join!(press(), press()) }, release);
    (a, b)
}

/// Attempts, CRM deals, Stripe sessions.
async fn counts(app: &TestApp, stripe: &Stripe) -> (usize, usize, usize) {
    (
        all_attempts(app).await.len(),
        app.deals().await.len(),
        stripe.sessions(),
    )
}

both_backends!(
    resume_get_creates_nothing,
    resume_post_opens_one_checkout_however_often_pressed,
    resume_double_click_opens_one_checkout,
    resume_for_a_paid_lead_creates_nothing,
    resume_for_a_pending_payment_goes_to_its_return_page,
    resume_post_without_a_good_form_token_is_refused,
    cancel_url_carries_no_personal_data,
    form_resubmitted_reuses_the_checkout,
    form_double_click_makes_one_lead,
    form_resubmitted_after_a_failed_checkout_makes_a_new_lead,
    form_resubmitted_after_payment_is_told_it_paid,
    another_email_is_another_lead
);

async fn resume_get_creates_nothing(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    // Even with nothing open to reuse, looking at the link opens nothing.
    set_status(&app, &attempt, PaymentStatus::Expired).await;
    for _ in 0..3 {
        let res = app.get(&link).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        for shown in ["Mentoría", "USD 49,90", "Ana", r#"name="form_token""#] {
            assert!(html.contains(shown), "the confirm page lacks {shown}: {html}");
        }
        for hidden in ["Pérez", "ana@example.com", "3001234567"] {
            assert!(!html.contains(hidden), "the confirm page shows {hidden}");
        }
    }
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn resume_post_opens_one_checkout_however_often_pressed(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    // The first checkout still open: pressing reuses it.
    let res = app.post_form(&link, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), attempt.checkout_url.clone().unwrap());
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));

    // Once it expired, one press opens one new attempt, and pressing again reuses that.
    set_status(&app, &attempt, PaymentStatus::Expired).await;
    let first = app.post_form(&link, &[]).await;
    assert_eq!(first.status(), 303);
    let url = location(&first);
    assert_ne!(Some(&url), attempt.checkout_url.as_ref());
    assert_eq!(counts(&app, &stripe).await, (2, 2, 2));
    let again = app.post_form(&link, &[]).await;
    assert_eq!(location(&again), url);
    assert_eq!(counts(&app, &stripe).await, (2, 2, 2));
}

async fn resume_double_click_opens_one_checkout(backend: Backend) {
    // Stripe takes a while, so the second press arrives while the first is opening.
    let (stripe, app) = setup(backend, Duration::from_millis(700)).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    set_status(&app, &attempt, PaymentStatus::Declined).await;
    // One page, pressed twice: both presses carry the same token.
    let token = app.form_token(&link).await;
    let press = || async {
        let res = app.post_form(&link, &[("form_token", token.as_str())]).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
        location(&res)
    };
    let (a, b) = double_click(&app, press).await;
    assert_eq!(a, b);
    assert_eq!(
        counts(&app, &stripe).await,
        (2, 2, 2),
        "one new attempt, deal and session"
    );
}

async fn resume_for_a_paid_lead_creates_nothing(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    set_status(&app, &attempt, PaymentStatus::Approved).await;
    assert_eq!(app.get(&link).await.status(), 200);
    let res = app.post_form(&link, &[]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Ya recibimos tu pago"), "{html}");
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn resume_for_a_pending_payment_goes_to_its_return_page(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    set_status(&app, &attempt, PaymentStatus::Pending).await;
    let res = app.post_form(&link, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("/return/stripe?attempt={}", attempt.id));
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn resume_post_without_a_good_form_token_is_refused(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let (link, attempt) = abandoned(&app, &stripe).await;
    set_status(&app, &attempt, PaymentStatus::Expired).await;
    let missing = app.post_form_bare(&link, &[]).await;
    assert_eq!(missing.status(), 403);
    let html = missing.text().await.unwrap();
    assert!(html.contains(r#"name="form_token""#), "the confirm page again: {html}");
    // A token for another form (the offer's) does not open this one.
    let other = app.form_token(OFFER).await;
    let wrong = app.post_form_bare(&link, &[("form_token", other.as_str())]).await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn cancel_url_carries_no_personal_data(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    abandoned(&app, &stripe).await;
    let creates = stripe.creates.lock().unwrap().clone();
    let body = &creates[0];
    // Where Stripe's "back" button goes: the confirm page, which shows no contact details.
    let cancel = &body["cancel_url"];
    assert!(cancel.starts_with(&app.url("/r/")), "{cancel}");
    let page = app.get(cancel).await.text().await.unwrap();
    assert!(
        !page.contains("ana@example.com") && !page.contains("3001234567"),
        "{page}"
    );
    // The email is meant for Stripe's own field; it must not ride in a URL.
    assert_eq!(body.get("customer_email").map(String::as_str), Some("ana@example.com"));
    for key in ["cancel_url", "success_url"] {
        let url = &body[key];
        let decoded: String = url::form_urlencoded::parse(url.as_bytes())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for personal in [
            "ana",
            "Ana",
            "P%C3%A9rez",
            "Pérez",
            "example.com",
            "3001234567",
            "%40",
            "@",
        ] {
            assert!(
                !url.contains(personal) && !decoded.contains(personal),
                "{key} carries {personal}: {url}"
            );
        }
    }
}

async fn form_resubmitted_reuses_the_checkout(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let first = submit(&app, "ana@example.com").await;
    assert_eq!(first.status(), 303);
    // The email is normalized before it is compared.
    let second = submit(&app, "  Ana@Example.COM ").await;
    assert_eq!(second.status(), 303);
    assert_eq!(location(&first), location(&second));
    assert_eq!(lead_count(&app).await, 1);
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn form_double_click_makes_one_lead(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::from_millis(700)).await;
    let token = app.form_token(OFFER).await;
    let press = || async {
        let mut fields = form("ana@example.com").to_vec();
        fields.push(("form_token", token.as_str()));
        let res = app.post_form(OFFER, &fields).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
        location(&res)
    };
    let (a, b) = double_click(&app, press).await;
    assert_eq!(a, b);
    assert_eq!(lead_count(&app).await, 1);
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn form_resubmitted_after_a_failed_checkout_makes_a_new_lead(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let first = submit(&app, "ana@example.com").await;
    let attempt = all_attempts(&app).await.pop().unwrap();
    set_status(&app, &attempt, PaymentStatus::Declined).await;
    let second = submit(&app, "ana@example.com").await;
    assert_eq!(second.status(), 303);
    assert_ne!(location(&first), location(&second));
    assert_eq!(lead_count(&app).await, 2);
    assert_eq!(counts(&app, &stripe).await, (2, 2, 2));
}

async fn form_resubmitted_after_payment_is_told_it_paid(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    submit(&app, "ana@example.com").await;
    let attempt = all_attempts(&app).await.pop().unwrap();
    set_status(&app, &attempt, PaymentStatus::Approved).await;
    let again = submit(&app, "ana@example.com").await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Ya recibimos tu pago"));
    assert_eq!(lead_count(&app).await, 1);
    assert_eq!(counts(&app, &stripe).await, (1, 1, 1));
}

async fn another_email_is_another_lead(backend: Backend) {
    let (stripe, app) = setup(backend, Duration::ZERO).await;
    let first = submit(&app, "ana@example.com").await;
    let second = submit(&app, "bruno@example.com").await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (303, 303));
    assert_ne!(location(&first), location(&second));
    assert_eq!(lead_count(&app).await, 2);
    assert_eq!(counts(&app, &stripe).await, (2, 2, 2));
}
