//! The customer journeys of the embedded default: approve, decline, abandon.

use crate::both_backends;
use crate::support::{attempt_id_of, eventually, location, spawn, Backend};

both_backends!(
    approve_journey,
    decline_journey,
    abandon_journey,
    form_is_prefilled_and_localized
);

async fn approve_journey(backend: Backend) {
    let app = spawn(backend).await;
    let form = app.get("/c/demo?utm_source=wp&utm_campaign=black-friday").await;
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(html.contains("COP 199.000,00") && html.contains(r#"name="utm_campaign" value="black-friday""#));

    let res = app
        .post_form(
            "/c/demo",
            &[
                ("name", "  Ana   María Pérez "),
                ("email", "Ana.Perez@Example.COM"),
                ("phone", "300 123 4567"),
                ("utm_source", "wp"),
                ("utm_campaign", "black-friday"),
                // The amount is the offer's, whatever the form says.
                ("amount", "1"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let checkout = location(&res);
    assert!(checkout.starts_with(&app.url("/sandbox/pay/")), "{checkout}");

    // The deal exists before the redirect in the normal case (inline CRM sync).
    let deals = app.deals().await;
    assert_eq!(deals.len(), 1);
    assert_eq!(deals[0].status, "open");
    assert_eq!(deals[0].title, "Curso de Marketing — Ana María Pérez");
    assert_eq!((deals[0].value_minor, deals[0].currency.as_str()), (19_900_000, "COP"));

    let page = app.get(&checkout).await.text().await.unwrap();
    for shown in [
        "Ana María Pérez",
        "ana.perez@example.com",
        "+573001234567",
        "COP 199.000,00",
    ] {
        assert!(page.contains(shown), "sandbox page lacks {shown}");
    }

    let back = app.press(&checkout, "approve").await;
    assert!(back.starts_with(&app.url("/return/sandbox?attempt=")), "{back}");
    let result = app.get(&back).await;
    assert_eq!(result.status(), 200);
    let html = result.text().await.unwrap();
    assert!(
        html.contains(r#"data-status="approved""#) && html.contains("¡Pago recibido!"),
        "{html}"
    );

    eventually("the deal to be won", || async { app.deals().await[0].status == "won" }).await;
    // The deal shows won as soon as the CRM has it; the job records that just after.
    app.settle().await;
    let leads = app.leads().await;
    assert_eq!(leads.len(), 1);
    let lead = &leads[0];
    assert_eq!(lead["email"], "ana.perez@example.com");
    assert_eq!(lead["utm"]["campaign"], "black-friday");
    let attempt = &lead["attempts"][0];
    assert_eq!(attempt["id"], attempt_id_of(&back));
    assert_eq!(attempt["status"], "approved");
    assert_eq!(attempt["amount_minor"], 19_900_000);
    assert_eq!(attempt["deal_status"], "won");
    assert!(attempt["gateway_ref"].as_str().unwrap().starts_with("sbx_"));
    assert!(lead["follow_up_tasks"].as_array().unwrap().is_empty());
}

async fn decline_journey(backend: Backend) {
    let app = spawn(backend).await;
    let checkout = app.start_checkout("demo", "Bruno Souza", "bruno@example.com").await;
    let back = app.press(&checkout, "decline").await;
    let html = app.get(&back).await.text().await.unwrap();
    assert!(html.contains(r#"data-status="declined""#), "{html}");
    let retry = html
        .split("href=\"")
        .find_map(|s| {
            s.strip_prefix("/r/")
                .map(|r| format!("/r/{}", &r[..r.find('"').unwrap()]))
        })
        .expect("declined page offers a retry link");

    eventually("the deal to be lost", || async {
        app.deals().await[0].status == "lost"
    })
    .await;
    eventually("a decline follow-up", || async { app.tasks().await.len() == 1 }).await;
    let task = &app.tasks().await[0];
    assert!(
        task.subject.contains("Bruno Souza") && task.subject.contains("rechazado"),
        "{}",
        task.subject
    );
    assert!(task.body.contains("bruno@example.com") && task.body.contains("+573001234567"));
    assert!(task.body.contains("/r/"), "task carries a resume link");

    // The retry button shows what it would pay; pressing on opens a new attempt for the
    // same lead, prefilled at the gateway.
    let page = app.get(&retry).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Curso de Marketing"));
    let res = app.post_form(&retry, &[]).await;
    assert_eq!(res.status(), 303);
    let second = location(&res);
    assert_ne!(second, checkout);
    assert!(app
        .get(&second)
        .await
        .text()
        .await
        .unwrap()
        .contains("bruno@example.com"));
    let back = app.press(&second, "approve").await;
    app.get(&back).await;
    eventually("the second deal to be won", || async {
        app.deals().await.iter().filter(|d| d.status == "won").count() == 1
    })
    .await;
    let leads = app.leads().await;
    assert_eq!(leads.len(), 1, "a retry is a new attempt, not a new lead");
    assert_eq!(leads[0]["attempts"].as_array().unwrap().len(), 2);
    let n = leadgate::store::builtin_crm::count_persons(&app.ctx.db, "bruno@example.com")
        .await
        .unwrap();
    assert_eq!(n, 1, "one CRM person per email");
}

async fn abandon_journey(backend: Backend) {
    let app = spawn(backend).await;
    // `fast` follows up 1 s after the attempt was created.
    let checkout = app.start_checkout("fast", "Carla Gómez", "carla@example.com").await;
    let back = app.press(&checkout, "abandon").await;
    // Back to the resume confirm page: it names the offer and the first name, and holds
    // nothing a URL-holder should not see (the gateway has this URL too).
    assert!(back.starts_with(&app.url("/r/")), "{back}");
    let page = app.get(&back).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for shown in ["Mentoría Express", "USD 49,90", "Carla", r#"action="/r/"#] {
        assert!(html.contains(shown), "the resume page lacks {shown}: {html}");
    }
    for hidden in ["Gómez", "carla@example.com", "3001234567", "1020304050"] {
        assert!(!html.contains(hidden), "the resume page shows {hidden}");
    }
    let lead = &app.leads().await[0];
    assert_eq!(lead["attempts"].as_array().unwrap().len(), 1, "the GET opened nothing");

    eventually("an abandonment follow-up", || async { app.tasks().await.len() == 1 }).await;
    let task = &app.tasks().await[0];
    assert!(task.subject.contains("pago no completado"), "{}", task.subject);
    for detail in [
        "Carla Gómez",
        "carla@example.com",
        "+573001234567",
        "Mentoría Express",
        "USD 49,90",
        "expired",
    ] {
        assert!(task.body.contains(detail), "task lacks {detail}: {}", task.body);
    }
    // Walking away closed the sandbox checkout: that deal is lost, a resume opens another.
    eventually("the abandoned deal to be lost", || async {
        app.deals().await[0].status == "lost"
    })
    .await;
    app.settle().await;
    assert_eq!(app.tasks().await.len(), 1, "exactly one task");
    let lead = &app.leads().await[0];
    assert_eq!(lead["follow_up_tasks"][0]["reason"], "abandoned:0");
    assert_eq!(lead["tax_id"], "1020304050");
}

async fn form_is_prefilled_and_localized(backend: Backend) {
    let app = spawn(backend).await;
    let query = "/c/demo?name=Jo%C3%A3o&email=joao@example.com&phone=%2B5511912345678";
    let res = app.get_in(query, "pt-BR,pt;q=0.9,en;q=0.5").await;
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<html lang="pt-BR">"#));
    assert!(html.contains("Continuar para o pagamento"));
    assert!(html.contains(r#"value="João""#) && html.contains(r#"value="joao@example.com""#));

    let en = app.get_in("/c/demo", "en-US").await;
    assert!(en.text().await.unwrap().contains("Continue to payment"));
    let default = app.get("/c/demo").await.text().await.unwrap();
    assert!(default.contains("Continuar al pago"), "Spanish by default");
}
