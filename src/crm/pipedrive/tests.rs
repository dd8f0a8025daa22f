use crate::domain::followup::{Priority, TaskKind};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::config::FieldRole;
use crate::domain::lead::Utm;
use crate::domain::{Currency, Email, Money, PersonName, Phone};

const TOKEN: &str = "pd-test-token";

fn settings(base: &str) -> RemoteCrmSettings {
    RemoteCrmSettings {
        api_base: url::Url::parse(base).unwrap(),
        timeout: Duration::from_secs(5),
        token: SecretString::from(TOKEN),
        owner: None,
        activity_type: "call".into(),
        fields: vec![],
        max_requests: 100,
        max_searches: 100,
    }
}

fn needs() -> CrmNeeds {
    CrmNeeds {
        stages: vec![("Sales".into(), "Checkout started".into())],
        refund_stages: vec![],
        abandoned_stages: vec![],
        fields: vec![
            (FieldRole::AttemptId, "Leadgate attempt".into()),
            (FieldRole::UtmCampaign, "Campaign".into()),
            (FieldRole::Gclid, "Google click id".into()),
            (FieldRole::Referrer, "Referrer".into()),
        ],
        owner: Some("owner@example.com".into()),
        task_owners: vec!["bea@example.com".into()],
        activity_type: Some("Call".into()),
        outcome_stages: false,
        unique_attempt_field: false,
        ..CrmNeeds::default()
    }
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "success": true, "data": data }))
}

/// A catalog with two pages of stages, to exercise the cursor.
async fn mount_catalog(server: &MockServer) {
    let get = |p: &'static str| Mock::given(method("GET")).and(path(p)).and(header(TOKEN_HEADER, TOKEN));
    get("/api/v2/pipelines")
        .respond_with(ok(
            json!([{ "id": 1, "name": "Sales" }, { "id": 2, "name": "Old", "is_deleted": true }]),
        ))
        .mount(server)
        .await;
    get("/api/v2/stages")
        .and(query_param("cursor", "page2"))
        .respond_with(ok(json!([
            { "id": 11, "name": "Checkout started", "pipeline_id": 1, "order_nr": 2 },
            { "id": 12, "name": "Refunded", "pipeline_id": 1, "order_nr": 3 },
        ])))
        .with_priority(1)
        .mount(server)
        .await;
    get("/api/v2/stages")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true,
            "data": [{ "id": 10, "name": "New", "pipeline_id": 1, "order_nr": 1 }],
            "additional_data": { "next_cursor": "page2" },
        })))
        .with_priority(2)
        .mount(server)
        .await;
    get("/api/v1/users")
        .respond_with(ok(json!([
            { "id": 9, "name": "Owner", "email": "owner@example.com", "active_flag": true },
            { "id": 12, "name": "Bea", "email": "bea@example.com", "active_flag": true }
        ])))
        .mount(server)
        .await;
    get("/api/v2/dealFields")
        .respond_with(ok(json!([
            { "field_code": "title", "field_name": "Title", "field_type": "varchar", "is_custom_field": false },
            { "field_code": "a".repeat(40), "field_name": "Leadgate attempt", "field_type": "varchar", "is_custom_field": true },
            { "field_code": "c".repeat(40), "field_name": "Campaign", "field_type": "varchar", "is_custom_field": true },
            { "field_code": "g".repeat(40), "field_name": "Google click id", "field_type": "varchar", "is_custom_field": true },
            { "field_code": "f".repeat(40), "field_name": "Referrer", "field_type": "varchar", "is_custom_field": true },
            { "field_code": "s".repeat(40), "field_name": "Payment status", "field_type": "varchar", "is_custom_field": true },
            { "field_code": "r".repeat(40), "field_name": "Refunded", "field_type": "double", "is_custom_field": true },
        ])))
        .mount(server)
        .await;
    get("/api/v1/activityTypes")
        .respond_with(ok(
            json!([{ "id": 5, "name": "Call", "key_string": "call", "active_flag": true }]),
        ))
        .mount(server)
        .await;
}

async fn crm(server: &MockServer) -> PipedriveCrm {
    mount_catalog(server).await;
    PipedriveCrm::new(&settings(&server.uri()), needs(), reqwest::Client::new())
}

/// With an offer's `on_refund = "stage:Refunded"` and two payment roles mapped.
async fn refund_crm(server: &MockServer) -> PipedriveCrm {
    mount_catalog(server).await;
    let mut n = needs();
    n.refund_stages = vec![("Sales".into(), "refunded".into())];
    n.fields.push((FieldRole::PaymentStatus, "Payment status".into()));
    n.fields.push((FieldRole::AmountRefunded, "Refunded".into()));
    PipedriveCrm::new(&settings(&server.uri()), n, reqwest::Client::new())
}

async fn patches(server: &MockServer, p: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH" && r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn payment(status: &str, refunded: &str) -> Vec<(FieldRole, String)> {
    vec![
        (FieldRole::TransactionId, "tx-1".into()),
        (FieldRole::PaymentStatus, status.into()),
        (FieldRole::AmountPaid, "199000.00".into()),
        (FieldRole::AmountRefunded, refunded.into()),
        (FieldRole::Gateway, "wompi".into()),
        (FieldRole::PaymentMethod, "card".into()),
    ]
}

#[tokio::test]
async fn a_refunded_deal_reopens_in_the_on_refund_stage_of_its_pipeline() {
    let server = MockServer::start().await;
    let crm = refund_crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/deals/501"))
        .respond_with(ok(json!({ "id": 501 })))
        .mount(&server)
        .await;
    let at = DealRef {
        deal_id: "501",
        pipeline: "Sales",
    };
    let open = DealStatus::Open {
        stage: "Refunded".into(),
    };
    crm.set_deal_status(&at, &open).await.unwrap();
    assert_eq!(
        patches(&server, "/api/v2/deals/501").await,
        [json!({ "status": "open", "stage_id": 12 })]
    );
}

#[tokio::test]
async fn a_refund_stage_the_configuration_did_not_name_is_refused_without_a_request() {
    let server = MockServer::start().await;
    let crm = refund_crm(&server).await;
    let at = DealRef {
        deal_id: "501",
        pipeline: "Sales",
    };
    let open = DealStatus::Open { stage: "New".into() };
    assert!(matches!(
        crm.set_deal_status(&at, &open).await,
        Err(CrmError::Permanent(_))
    ));
    assert!(patches(&server, "/api/v2/deals/501").await.is_empty());
}

#[tokio::test]
async fn crm_check_reports_a_missing_refund_stage_with_the_stages_there_are() {
    let server = MockServer::start().await;
    mount_catalog(&server).await;
    let mut n = needs();
    n.refund_stages = vec![("Sales".into(), "Reembolsado".into())];
    let crm = PipedriveCrm::new(&settings(&server.uri()), n.clone(), reqwest::Client::new());
    let report = crate::crm::check(&crm, &n).await.unwrap();
    assert_eq!(
        report.problems,
        [
            r#"on_refund: stage "Reembolsado" not found in pipeline "Sales" (it has: "New", "Checkout started", "Refunded")"#
        ]
    );
}

#[tokio::test]
async fn payment_fields_go_to_their_configured_keys_numbers_as_numbers() {
    let server = MockServer::start().await;
    let crm = refund_crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/deals/501"))
        .respond_with(ok(json!({ "id": 501 })))
        .mount(&server)
        .await;
    crm.set_deal_fields("501", &payment("voided", "199000.00"))
        .await
        .unwrap();
    let mut custom = serde_json::Map::new();
    custom.insert("s".repeat(40), json!("voided"));
    custom.insert("r".repeat(40), json!(199000.0));
    assert_eq!(
        patches(&server, "/api/v2/deals/501").await,
        [json!({ "custom_fields": custom })],
        "only the two mapped roles; the refunded amount is a double field"
    );
}

#[tokio::test]
async fn no_payment_role_mapped_means_no_request() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    crm.set_deal_fields("501", &payment("refunded", "1.00")).await.unwrap();
    assert!(patches(&server, "/api/v2/deals/501").await.is_empty());
}

#[test]
fn money_goes_in_major_units() {
    let m = |minor, c| Money::new(minor, c).unwrap();
    assert_eq!(major_units(&m(19_900_000, Currency::COP)), 199_000.0);
    assert_eq!(major_units(&m(19_990, Currency::BRL)), 199.9);
    assert_eq!(json!(major_units(&m(19_990, Currency::BRL))).to_string(), "199.9");
    assert_eq!(major_units(&m(1, Currency::USD)), 0.01);
    assert_eq!(major_units(&m(9_990, Currency::CLP)), 9_990.0);
}

#[test]
fn due_date_and_time_are_utc() {
    // 2026-03-04T05:06:07.890Z
    assert_eq!(
        due(1_772_600_767_890).unwrap(),
        ("2026-03-04".to_string(), "05:06".to_string())
    );
    assert_eq!(due(0).unwrap(), ("1970-01-01".to_string(), "00:00".to_string()));
    assert!(due(i64::MAX).is_err());
}

#[test]
fn html_escapes_and_keeps_line_breaks() {
    assert_eq!(
        html("Ana <b>&</b> \"O'Neil\"\r\nline 2\nline 3"),
        "Ana &lt;b&gt;&amp;&lt;/b&gt; &quot;O&#39;Neil&quot;<br>line 2<br>line 3"
    );
    assert_eq!(task_marker("a:declined"), "[leadgate:a:declined]");
}

#[test]
fn wait_hint_prefers_retry_after_then_the_reset_header() {
    let reply = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(*k, HeaderValue::from_static(v));
        }
        Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: vec![],
        }
    };
    assert_eq!(
        wait_hint(&reply(&[("retry-after", "3"), ("x-ratelimit-reset", "7")])),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        wait_hint(&reply(&[("x-ratelimit-reset", "1.5")])),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(wait_hint(&reply(&[("x-ratelimit-reset", "later")])), None);
    assert_eq!(wait_hint(&reply(&[])), None);
}

#[test]
fn lowest_id_wins_numerically() {
    let ids = [wire::Id::Number(30), wire::Id::Text("4".into()), wire::Id::Number(30)];
    assert_eq!(lowest("persons", "email", ids.into_iter()), Some("4".into()));
    assert_eq!(lowest("persons", "email", std::iter::empty()), None);
}

#[tokio::test]
async fn catalog_reads_every_page_and_only_custom_fields() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    let c = crm.catalog().await.unwrap();
    assert_eq!(c.pipelines.len(), 1, "deleted pipelines are left out");
    let names: Vec<_> = c.pipelines[0].stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["New", "Checkout started", "Refunded"]);
    assert!(c.pipelines[0].stages.iter().all(|s| s.outcome.is_none()));
    assert_eq!(c.deal_fields.len(), 6);
    assert_eq!(c.owners[0].id, "9");
    assert_eq!(c.activity_types[0].id, "call");
}

#[tokio::test]
async fn person_is_searched_by_email_then_phone_then_created() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    let search = |field: &'static str, term: &'static str| {
        Mock::given(method("GET"))
            .and(path("/api/v2/persons/search"))
            .and(query_param("fields", field))
            .and(query_param("term", term))
            .and(query_param("exact_match", "true"))
            .and(header(TOKEN_HEADER, TOKEN))
    };
    search("email", "ana+x@example.com")
        .respond_with(ok(json!({ "items": [] })))
        .expect(1)
        .mount(&server)
        .await;
    search("phone", "+573001234567")
        .respond_with(ok(json!({ "items": [] })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/persons"))
        .and(body_json(json!({
            "name": "Ana Pérez",
            "owner_id": 9,
            "emails": [{ "value": "ana+x@example.com", "primary": true, "label": "work" }],
            "phones": [{ "value": "+573001234567", "primary": true, "label": "mobile" }],
        })))
        .respond_with(ok(json!({ "id": 77 })))
        .expect(1)
        .mount(&server)
        .await;
    let (name, email, phone) = contact();
    let p = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    assert_eq!(crm.upsert_person(&p).await.unwrap(), "77");
    for r in server.received_requests().await.unwrap() {
        assert!(!r.url.as_str().contains(TOKEN), "token in {}", r.url);
    }
}

#[tokio::test]
async fn several_matching_persons_resolve_to_the_oldest() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/persons/search"))
        .respond_with(ok(
            json!({ "items": [{ "item": { "id": 12 } }, { "item": { "id": 5 } }] }),
        ))
        .mount(&server)
        .await;
    let (name, email, phone) = contact();
    let p = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    assert_eq!(crm.upsert_person(&p).await.unwrap(), "5");
}

fn contact() -> (PersonName, Email, Phone) {
    (
        PersonName::parse("Ana Pérez").unwrap(),
        Email::parse("ana+x@example.com").unwrap(),
        Phone::parse("300 123 4567", Some("CO")).unwrap(),
    )
}

#[tokio::test]
async fn deal_carries_ids_as_numbers_value_in_major_units_and_our_tags() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/v2/deals"))
        .and(body_json(json!({
            "title": "Curso — Ana",
            "value": 199_000.0,
            "currency": "COP",
            "person_id": 77,
            "pipeline_id": 1,
            "stage_id": 11,
            "owner_id": 9,
            "custom_fields": {
                ("a".repeat(40)): "att-1",
                ("c".repeat(40)): "launch",
                ("g".repeat(40)): "Cj0KCQ-gclid",
                ("f".repeat(40)): "https://blog.example/post",
            },
        })))
        .respond_with(ok(json!({ "id": 501 })))
        .expect(1)
        .mount(&server)
        .await;
    let utm = Utm {
        campaign: Some("launch".into()),
        source: Some("ignored: no field mapped".into()),
        gclid: Some("Cj0KCQ-gclid".into()),
        fbclid: Some("ignored: no field mapped".into()),
        referrer: Some("https://blog.example/post".into()),
        ..Utm::default()
    };
    let d = DealInput {
        attempt_id: "att-1",
        person_id: "77",
        title: "Curso — Ana".into(),
        value: Money::new(19_900_000, Currency::COP).unwrap(),
        pipeline: "sales",
        stage: "Checkout Started",
        offer_slug: "demo",
        utm: &utm,
    };
    assert_eq!(crm.create_deal(&d).await.unwrap(), "501");
}

#[tokio::test]
async fn deal_is_found_by_our_attempt_id() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/deals/search"))
        .and(query_param("term", "att-1"))
        .and(query_param("fields", "custom_fields"))
        .and(query_param("exact_match", "true"))
        .respond_with(ok(
            json!({ "items": [{ "result_score": 1.0, "item": { "id": 501, "type": "deal" } }] }),
        ))
        .mount(&server)
        .await;
    assert_eq!(crm.find_deal("att-1").await.unwrap(), Some("501".into()));
}

#[tokio::test]
async fn status_is_patched_with_the_lost_reason() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/deals/501"))
        .and(body_json(
            json!({ "status": "lost", "lost_reason": "Payment declined" }),
        ))
        .respond_with(ok(json!({ "id": 501 })))
        .expect(1)
        .mount(&server)
        .await;
    let at = DealRef {
        deal_id: "501",
        pipeline: "Sales",
    };
    let lost = DealStatus::Lost {
        reason: "Payment declined".into(),
    };
    crm.set_deal_status(&at, &lost).await.unwrap();
}

#[tokio::test]
async fn task_body_and_finding_it_again() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/v2/activities"))
        .and(body_json(json!({
            "subject": "Call Ana",
            "type": "call",
            "owner_id": 9,
            "deal_id": 501,
            "participants": [{ "person_id": 77, "primary": true }],
            "due_date": "2026-03-04",
            "due_time": "05:06",
            "done": false,
            "note": "Name: Ana &lt;3<br>Phone: +57<br><br>[leadgate:att-1:declined]",
        })))
        .respond_with(ok(json!({ "id": 900 })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/activities"))
        .and(query_param("deal_id", "501"))
        .respond_with(ok(json!([
            { "id": 899, "note": "[leadgate:att-1:abandoned:0]" },
            { "id": 900, "note": "x<br><br>[leadgate:att-1:declined]" },
            { "id": 800, "note": "[leadgate:att-1:declined]", "is_deleted": true },
        ])))
        .mount(&server)
        .await;
    let t = TaskInput {
        key: "att-1:declined",
        deal_id: "501",
        person_id: "77",
        subject: "Call Ana".into(),
        body: "Name: Ana <3\nPhone: +57".into(),
        due_at: 1_772_600_767_890,
        kind: TaskKind::Call,
        priority: Priority::High,
        owner: None,
    };
    assert_eq!(crm.create_task(&t).await.unwrap(), "900");
    assert_eq!(
        crm.find_task("501", "att-1:declined").await.unwrap(),
        Some("900".into())
    );
    assert_eq!(crm.find_task("501", "att-1:abandoned:1").await.unwrap(), None);
}

#[tokio::test]
async fn note_goes_to_v1_with_escaped_html() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/notes"))
        .and(header(TOKEN_HEADER, TOKEN))
        .and(body_json(json!({
            "content": "Payment: approved<br>Amount: COP 1 &amp; more",
            "deal_id": 501,
            "person_id": 77,
            "pinned_to_deal_flag": 1,
        })))
        .respond_with(ok(json!({ "id": 31 })))
        .expect(1)
        .mount(&server)
        .await;
    let n = NoteInput {
        key: "att-1:approved",
        deal_id: "501",
        person_id: "77",
        body: "Payment: approved\nAmount: COP 1 & more".into(),
    };
    assert_eq!(crm.add_note(&n).await.unwrap(), "31");
}

#[tokio::test]
async fn refusals_are_permanent_with_pipedrives_message_and_429_is_transient() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/deals/1"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({ "success": false, "error": "Lost reason is too long" })),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/deals/2"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", "4"))
        .mount(&server)
        .await;
    let won = DealStatus::Won;
    let at = |id| DealRef {
        deal_id: id,
        pipeline: "Sales",
    };
    match crm.set_deal_status(&at("1"), &won).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("Lost reason is too long"), "{m}"),
        other => panic!("{other:?}"),
    }
    match crm.set_deal_status(&at("2"), &won).await {
        Err(CrmError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(4))),
        other => panic!("{other:?}"),
    }
    match crm.set_deal_status(&at("not-a-number"), &won).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("not a Pipedrive id"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn task(kind: TaskKind, owner: Option<&'static str>) -> TaskInput<'static> {
    TaskInput {
        key: "att-1:abandoned:1",
        deal_id: "501",
        person_id: "77",
        subject: "Call Ana".into(),
        body: "Ana".into(),
        due_at: 1_772_600_767_890,
        kind,
        priority: Priority::High,
        owner,
    }
}

#[tokio::test]
async fn a_task_carries_its_kind_and_owner_and_no_priority() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/v2/activities"))
        .respond_with(ok(json!({ "id": 900 })))
        .mount(&server)
        .await;
    crm.create_task(&task(TaskKind::Call, None)).await.unwrap();
    crm.create_task(&task(TaskKind::Todo, Some("bea@example.com")))
        .await
        .unwrap();
    let sent: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/activities")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!((&sent[0]["type"], &sent[0]["owner_id"]), (&json!("call"), &json!(9)));
    // The configured type is the default `call`, so a to-do is a `task`; the step's owner wins.
    assert_eq!((&sent[1]["type"], &sent[1]["owner_id"]), (&json!("task"), &json!(12)));
    // v2's priority is an account-specific option id: not sent.
    assert!(sent.iter().all(|b| b.get("priority").is_none()), "{sent:?}");
    match crm.create_task(&task(TaskKind::Call, Some("ana"))).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("not a user of this CRM"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_todo_takes_a_configured_type_other_than_call() {
    assert_eq!(activity_type(TaskKind::Todo, Some("meeting")), "meeting");
    assert_eq!(activity_type(TaskKind::Todo, Some("Call")), "task");
    assert_eq!(activity_type(TaskKind::Todo, None), "task");
    assert_eq!(activity_type(TaskKind::Call, Some("meeting")), "call");
}

#[tokio::test]
async fn closing_a_task_marks_it_done_or_deletes_it_and_a_gone_one_is_closed() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/activities/900"))
        .and(header(TOKEN_HEADER, TOKEN))
        .and(body_json(json!({ "done": true })))
        .respond_with(ok(json!({ "id": 900, "done": true })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/activities/901"))
        .and(header(TOKEN_HEADER, TOKEN))
        .respond_with(ok(json!({ "id": 901 })))
        .expect(1)
        .mount(&server)
        .await;
    for m in ["PATCH", "DELETE"] {
        Mock::given(method(m))
            .and(path("/api/v2/activities/902"))
            .respond_with(
                ResponseTemplate::new(404).set_body_json(json!({ "success": false, "error": "Activity not found" })),
            )
            .mount(&server)
            .await;
    }
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "501",
    };
    crm.close_task(&at("900"), CloseTask::Complete).await.unwrap();
    crm.close_task(&at("901"), CloseTask::Delete).await.unwrap();
    crm.close_task(&at("902"), CloseTask::Complete).await.unwrap();
    crm.close_task(&at("902"), CloseTask::Delete).await.unwrap();
}

#[tokio::test]
async fn closing_a_task_is_transient_on_a_429_and_permanent_on_a_refusal() {
    let server = MockServer::start().await;
    let crm = crm(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/api/v2/activities/903"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", "1"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v2/activities/904"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "success": false, "error": "Not allowed" })))
        .mount(&server)
        .await;
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "501",
    };
    match crm.close_task(&at("903"), CloseTask::Complete).await {
        Err(CrmError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        other => panic!("{other:?}"),
    }
    match crm.close_task(&at("904"), CloseTask::Delete).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("Not allowed"), "{m}"),
        other => panic!("{other:?}"),
    }
    match crm.close_task(&at("x"), CloseTask::Delete).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("not a Pipedrive id"), "{m}"),
        other => panic!("{other:?}"),
    }
}
