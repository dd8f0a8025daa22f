//! Hostile and broken input: precise 4xx, localized messages, never a 500 or a panic.

use crate::both_backends;
use crate::support::{spawn, Backend};

both_backends!(bad_requests_get_precise_answers, invalid_fields_are_explained_and_kept);

async fn bad_requests_get_precise_answers(backend: Backend) {
    let app = spawn(backend).await;
    let res = app.get("/c/no-such-offer").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Página no encontrada"));
    assert_eq!(app.get("/nothing/here").await.status(), 404);
    assert_eq!(app.get("/return/sandbox?attempt=nope").await.status(), 404);
    assert_eq!(app.get("/return/sandbox").await.status(), 404);
    assert_eq!(app.get("/return/paypal?attempt=x").await.status(), 404);
    assert_eq!(app.get("/sandbox/pay/nope").await.status(), 404);
    assert_eq!(app.get("/r/not-a-token").await.status(), 410);
    assert_eq!(app.get("/r/").await.status(), 404);

    let huge = "x".repeat(64 * 1024);
    let res = app.post_form("/c/demo", &[("name", huge.as_str())]).await;
    assert_eq!(res.status(), 413);
    let res = app
        .post_raw("/c/demo", "application/x-www-form-urlencoded", "name=%FF%FE&email")
        .await;
    assert!(matches!(res.status().as_u16(), 400 | 422), "{}", res.status());
    let res = app.post_raw("/c/demo", "application/json", "{}").await;
    assert_eq!(res.status(), 400);
    let res = app
        .http
        .post(app.url("/sandbox/pay/x"))
        .form(&[("outcome", "steal")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let big = vec![b'a'; 300 * 1024];
    let res = app
        .http
        .post(app.url("/webhooks/sandbox"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(app.leads().await.is_empty(), "nothing was stored");
}

async fn invalid_fields_are_explained_and_kept(backend: Backend) {
    let app = spawn(backend).await;
    let bad = [
        ("name", "<script>alert(1)</script>"),
        ("email", "not-an-email"),
        ("phone", "12"),
        ("tax_id", ""),
    ];
    let res = app.post_form_in("/c/fast", "en", &bad).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("Enter a valid email"), "{html}");
    assert!(html.contains("Enter a valid phone number"));
    assert!(
        html.contains("This field is required"),
        "tax id is required for this offer"
    );
    assert!(html.contains(r#"value="not-an-email""#), "input is kept");
    assert!(!html.contains("<script>alert(1)</script>"), "input is escaped");
    assert!(html.contains("script") && html.contains("alert(1)"), "but kept");
    assert!(html.contains(r#"aria-invalid="true""#));

    let es = app
        .post_form(
            "/c/demo",
            &[("name", "A"), ("email", "a@b.co"), ("phone", "3001234567")],
        )
        .await;
    assert_eq!(es.status(), 422);
    assert!(es.text().await.unwrap().contains("Es demasiado corto"));
    assert!(app.leads().await.is_empty());
}
