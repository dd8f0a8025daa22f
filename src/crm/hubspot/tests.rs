use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::wire::{
    self, existing_id, html, major_units, policy_wait, refusal_text, task_body, until_after_midnight, Zone,
};
use super::*;
use crate::config::FieldRole;
use crate::crm::http::Reply;
use crate::domain::followup::TaskKind;
use crate::domain::lead::Utm;
use crate::domain::{Currency, Email, Money, PersonName, Phone};

fn money(minor: i64, c: Currency) -> Money {
    Money::new(minor, c).unwrap()
}

#[test]
fn amounts_are_major_units_with_the_currency_exponent() {
    assert_eq!(major_units(&money(19_900_000, Currency::COP)), "199000.00");
    assert_eq!(major_units(&money(4990, Currency::USD)), "49.90");
    assert_eq!(major_units(&money(5, Currency::EUR)), "0.05");
    assert_eq!(major_units(&money(15_000, Currency::CLP)), "15000");
}

#[test]
fn the_existing_id_is_read_from_a_409_message() {
    let body =
        br#"{"status":"error","message":"Contact already exists. Existing ID: 37765128953","category":"CONFLICT"}"#;
    assert_eq!(existing_id(body).as_deref(), Some("37765128953"));
    assert_eq!(existing_id(br#"{"message":"Contact already exists."}"#), None);
    assert_eq!(existing_id(b"Existing ID: none"), None);
}

fn reply(status: u16, headers: HeaderMap, body: Value) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn a_daily_429_waits_past_the_next_utc_midnight() {
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 23, 30, 0).unwrap();
    let body = json!({"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT", "policyName": "DAILY"});
    let wait = policy_wait(body.to_string().as_bytes(), now, UTC).unwrap();
    assert_eq!(wait, Duration::from_secs(31 * 60));
    let morning = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 30).unwrap();
    assert_eq!(until_after_midnight(morning, UTC), Duration::from_secs(86_400 + 30));
}

const UTC: Zone = Zone::Named(chrono_tz::Tz::UTC);

#[test]
fn a_daily_429_waits_past_midnight_in_the_accounts_time_zone() {
    let body = json!({"policyName": "DAILY"}).to_string();
    let bogota = Zone::Named(chrono_tz::America::Bogota);
    // 23:30 UTC is 18:30 in Bogotá (UTC-5): midnight there is 05:00 UTC.
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 23, 30, 0).unwrap();
    assert_eq!(
        policy_wait(body.as_bytes(), now, bogota),
        Some(Duration::from_secs(5 * 3600 + 31 * 60))
    );
    // 02:00 UTC on the 11th is still the 10th in Bogotá.
    let now = Utc.with_ymd_and_hms(2026, 3, 11, 2, 0, 0).unwrap();
    assert_eq!(until_after_midnight(now, bogota), Duration::from_secs(3 * 3600 + 60));
    // East of UTC: Tokyo's midnight is 15:00 UTC the day before.
    let tokyo = Zone::Named(chrono_tz::Asia::Tokyo);
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 14, 0, 0).unwrap();
    assert_eq!(until_after_midnight(now, tokyo), Duration::from_secs(3600 + 60));
    // Daylight saving time counts: New York is UTC-4 on 2026-07-01.
    let ny = Zone::Named(chrono_tz::America::New_York);
    let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
    assert_eq!(until_after_midnight(now, ny), Duration::from_secs(16 * 3600 + 60));
    // A fixed offset, when the account's zone name is not one we know.
    let minus5 = Zone::Offset(chrono::FixedOffset::west_opt(5 * 3600).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 23, 30, 0).unwrap();
    assert_eq!(
        until_after_midnight(now, minus5),
        Duration::from_secs(5 * 3600 + 31 * 60)
    );
    // Santiago's clocks jump from 00:00 to 01:00 on 2026-09-06: the reset is after the gap.
    let santiago = Zone::Named(chrono_tz::America::Santiago);
    let now = Utc.with_ymd_and_hms(2026, 9, 6, 3, 0, 0).unwrap();
    let wait = until_after_midnight(now, santiago);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(2 * 3600),
        "{wait:?}"
    );
}

#[test]
fn the_accounts_zone_is_read_by_name_else_by_offset() {
    let read = |v: Value| serde_json::from_value::<wire::AccountDetails>(v).unwrap().zone();
    assert_eq!(
        read(json!({"portalId": 1, "timeZone": "US/Eastern", "utcOffsetMilliseconds": -18000000})),
        Some(Zone::Named(chrono_tz::US::Eastern))
    );
    assert_eq!(
        read(json!({"timeZone": "Mars/Olympus", "utcOffsetMilliseconds": -18000000})),
        Some(Zone::Offset(chrono::FixedOffset::west_opt(18_000).unwrap()))
    );
    assert_eq!(read(json!({"portalId": 1})), None);
}

#[test]
fn burst_and_search_429s_wait_their_window() {
    let now = Utc::now();
    let ten =
        json!({"policyName": "TEN_SECONDLY_ROLLING", "message": "You have reached your ten_secondly_rolling limit."});
    assert_eq!(
        policy_wait(ten.to_string().as_bytes(), now, UTC),
        Some(Duration::from_secs(10))
    );
    let secondly = json!({"status": "error", "message": "You have reached your secondly limit."});
    assert_eq!(
        policy_wait(secondly.to_string().as_bytes(), now, UTC),
        Some(Duration::from_secs(1))
    );
    let named = json!({"policyName": "SECONDLY"});
    assert_eq!(
        policy_wait(named.to_string().as_bytes(), now, UTC),
        Some(Duration::from_secs(1))
    );
    assert_eq!(policy_wait(b"<html>busy</html>", now, UTC), None);
    assert_eq!(policy_wait(br#"{"policyName":"OTHER"}"#, now, UTC), None);
}

#[test]
fn retry_after_wins_over_the_policy() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    let r = reply(429, h, json!({"policyName": "DAILY"}));
    assert_eq!(wire::wait_hint(&r, UTC), Some(Duration::from_secs(3)));
    let r = reply(429, HeaderMap::new(), json!({"policyName": "TEN_SECONDLY_ROLLING"}));
    assert_eq!(wire::wait_hint(&r, UTC), Some(Duration::from_secs(10)));
}

#[test]
fn refusals_carry_category_and_correlation_id() {
    let body = json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION", "correlationId": "c0ffee-1"});
    let text = refusal_text("HubSpot", &reply(401, HeaderMap::new(), body));
    assert_eq!(
        text,
        "HubSpot answered 401 Unauthorized: INVALID_AUTHENTICATION: Authentication credentials not found. (correlationId c0ffee-1)"
    );
    let raw = Reply {
        status: StatusCode::BAD_REQUEST,
        headers: HeaderMap::new(),
        body: b"nope".to_vec(),
    };
    assert_eq!(refusal_text("HubSpot", &raw), "HubSpot answered 400 Bad Request: nope");
}

#[test]
fn bodies_are_escaped_html_with_line_breaks() {
    assert_eq!(
        html("Ana <b>\"O'Neil\"</b> & co\nline 2\r\nline 3"),
        "Ana &lt;b&gt;&quot;O&#39;Neil&quot;&lt;/b&gt; &amp; co<br>line 2<br>line 3"
    );
    let body = task_body("Call <now>", "a1:abandoned:1");
    assert!(body.starts_with("Call &lt;now&gt;<br>"), "{body}");
    assert!(body.ends_with("[leadgate:a1:abandoned:1]"), "{body}");
    assert!(!body.contains(&wire::task_marker("a1:abandoned:10")));
}

#[test]
fn timestamps_are_iso_utc() {
    assert_eq!(wire::timestamp(1_777_710_600_000), "2026-05-02T08:30:00.000Z");
}

// --- Requests against a fake HubSpot ---

fn settings(base: &str, owner: Option<&str>) -> RemoteCrmSettings {
    RemoteCrmSettings {
        api_base: Url::parse(base).unwrap(),
        timeout: Duration::from_secs(5),
        token: SecretString::from("pat-test-123"),
        owner: owner.map(str::to_owned),
        activity_type: "CALL".into(),
        fields: vec![
            (FieldRole::AttemptId, "leadgate_attempt_id".into()),
            (FieldRole::UtmCampaign, "Campaign".into()),
            (FieldRole::Offer, "leadgate_offer".into()),
            (FieldRole::Gclid, "Google click id".into()),
            (FieldRole::Fbclid, "Meta click id".into()),
        ],
        max_requests: 100,
        max_searches: 5,
    }
}

fn needs(s: &RemoteCrmSettings) -> CrmNeeds {
    CrmNeeds {
        stages: vec![("Sales".into(), "Checkout started".into())],
        refund_stages: vec![],
        abandoned_stages: vec![],
        fields: s.fields.clone(),
        owner: s.owner.clone(),
        activity_type: Some(s.activity_type.clone()),
        outcome_stages: true,
        unique_attempt_field: true,
        ..CrmNeeds::default()
    }
}

async fn mount_catalog(server: &MockServer) {
    let stage = |id: &str, label: &str, closed: &str, p: &str| json!({"id": id, "label": label, "displayOrder": 0, "metadata": {"isClosed": closed, "probability": p}});
    let pipelines = json!({"results": [{
        "id": "default", "label": "Sales", "displayOrder": 0,
        "stages": [
            stage("appointmentscheduled", "Checkout started", "false", "0.2"),
            stage("closedwon", "Closed won", "true", "1.0"),
            stage("closedlost", "Closed lost", "true", "0.0"),
            stage("90210", "Refunded", "false", "0.0"),
        ]
    }]});
    Mock::given(method("GET"))
        .and(path("/crm/v3/pipelines/deals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pipelines))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/owners"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"id": "910901", "email": "ana@acme.test", "firstName": "Ana", "lastName": "Ruiz"},
            {"id": "4242", "email": "bo@acme.test", "firstName": "Bo", "lastName": "Díaz"}
        ]})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/properties/deals"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"name": "leadgate_attempt_id", "label": "Leadgate attempt", "type": "string", "hasUniqueValue": true},
            {"name": "utm_campaign_x", "label": "Campaign", "type": "string"},
            {"name": "leadgate_offer", "label": "Offer", "type": "string"},
            {"name": "gclid_x", "label": "Google click id", "type": "string"},
            {"name": "fbclid_x", "label": "Meta click id", "type": "string"},
            {"name": "payment_status", "label": "Payment status", "type": "enumeration"},
            {"name": "amount_refunded", "label": "Amount refunded", "type": "number"},
        ]})))
        .mount(server)
        .await;
}

async fn crm(server: &MockServer, owner: Option<&str>) -> HubspotCrm {
    mount_catalog(server).await;
    let s = settings(&server.uri(), owner);
    let mut n = needs(&s);
    // The users follow-up steps name, as `CrmNeeds::from_settings` collects them.
    n.task_owners = vec!["bo@acme.test".into()];
    HubspotCrm::new(&s, n, reqwest::Client::new())
}

async fn bodies(server: &MockServer, m: &str, p: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn the_catalog_maps_closed_stages_owners_and_fields() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    let cat = c.catalog().await.unwrap();
    let stages = &cat.pipelines[0].stages;
    assert_eq!(stages[0].outcome, None);
    assert_eq!(stages[1].outcome, Some(StageOutcome::Won));
    assert_eq!(stages[2].outcome, Some(StageOutcome::Lost));
    assert_eq!(cat.owners[0].name, "Ana Ruiz");
    assert_eq!(cat.deal_fields[1].key, "utm_campaign_x");
    assert_eq!(cat.activity_types.len(), 3);
    let auth = &server.received_requests().await.unwrap()[0].headers["authorization"];
    assert_eq!(auth, "Bearer pat-test-123");
}

#[tokio::test]
async fn a_deal_is_created_with_ids_fields_and_its_contact() {
    let server = MockServer::start().await;
    let c = crm(&server, Some("ana@acme.test")).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "5678", "properties": {}})))
        .mount(&server)
        .await;
    let utm = Utm {
        campaign: Some("launch".into()),
        source: Some("wp".into()),
        gclid: Some("Cj0KCQ-gclid".into()),
        fbclid: Some("IwAR-fbclid".into()),
        referrer: Some("ignored: no field mapped".into()),
        ..Utm::default()
    };
    let input = DealInput {
        attempt_id: "att-1",
        person_id: "1234",
        title: "Curso — Ana".into(),
        value: money(19_900_000, Currency::COP),
        pipeline: "sales",
        stage: "checkout started",
        offer_slug: "demo",
        utm: &utm,
    };
    assert_eq!(c.create_deal(&input).await.unwrap(), "5678");
    let sent = bodies(&server, "POST", "/crm/v3/objects/deals").await;
    assert_eq!(
        sent[0],
        json!({
            "properties": {
                "dealname": "Curso — Ana",
                "amount": "199000.00",
                "deal_currency_code": "COP",
                "pipeline": "default",
                "dealstage": "appointmentscheduled",
                "hubspot_owner_id": "910901",
                "leadgate_attempt_id": "att-1",
                "leadgate_offer": "demo",
                "utm_campaign_x": "launch",
                "gclid_x": "Cj0KCQ-gclid",
                "fbclid_x": "IwAR-fbclid",
            },
            "associations": [{"to": {"id": "1234"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}],
        })
    );
}

#[tokio::test]
async fn a_new_person_is_read_by_email_searched_by_phone_then_created() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/ana%2Bx%2Fy@example.com"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"category": "OBJECT_NOT_FOUND", "message": "resource not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "status": "error", "message": "Contact already exists. Existing ID: 37765128953", "category": "CONFLICT"
        })))
        .mount(&server)
        .await;
    let (name, email, phone) = (
        PersonName::from_trusted("Ana María Pérez".into()),
        Email::from_trusted("ana+x/y@example.com".into()),
        Phone::from_trusted("+573001234567".into()),
    );
    let p = PersonInput {
        name: &name,
        email: &email,
        phone: &phone,
    };
    assert_eq!(c.upsert_person(&p).await.unwrap(), "37765128953");
    let read = server.received_requests().await.unwrap();
    let by_email = read
        .iter()
        .find(|r| r.method.as_str() == "GET" && r.url.path().contains("contacts"))
        .unwrap();
    assert_eq!(by_email.url.query(), Some("idProperty=email"));
    let search = bodies(&server, "POST", "/crm/v3/objects/contacts/search").await;
    assert_eq!(
        search[0]["filterGroups"][0]["filters"][0],
        json!({"propertyName": "phone", "operator": "EQ", "value": "+573001234567"})
    );
    // The spec requires `after`, `limit`, `properties` and `sorts` on a search.
    assert_eq!(search[0]["after"], "0");
    assert_eq!(search[0]["sorts"], json!([]));
    assert_eq!(search[0]["limit"], 1);
    let created = bodies(&server, "POST", "/crm/v3/objects/contacts").await;
    assert_eq!(
        created[0],
        json!({"properties": {"email": "ana+x/y@example.com", "firstname": "Ana", "lastname": "María Pérez", "phone": "+573001234567"}, "associations": []})
    );
}

/// With an offer's `on_refund = "stage:Refunded"` and two payment roles mapped.
async fn refund_crm(server: &MockServer) -> HubspotCrm {
    mount_catalog(server).await;
    let mut s = settings(&server.uri(), None);
    s.fields.push((FieldRole::PaymentStatus, "Payment status".into()));
    s.fields.push((FieldRole::AmountRefunded, "amount_refunded".into()));
    let mut n = needs(&s);
    n.refund_stages = vec![("Sales".into(), "refunded".into())];
    HubspotCrm::new(&s, n, reqwest::Client::new())
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

async fn mount_patch(server: &MockServer) {
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/deals/5678"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5678", "properties": {}})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_refunded_deal_moves_to_the_on_refund_stage_of_its_pipeline() {
    let server = MockServer::start().await;
    let c = refund_crm(&server).await;
    mount_patch(&server).await;
    let at = DealRef {
        deal_id: "5678",
        pipeline: "Sales",
    };
    let open = DealStatus::Open {
        stage: "Refunded".into(),
    };
    c.set_deal_status(&at, &open).await.unwrap();
    let sent = bodies(&server, "PATCH", "/crm/v3/objects/deals/5678").await;
    assert_eq!(sent, [json!({"properties": {"dealstage": "90210"}})]);
}

#[tokio::test]
async fn crm_check_reports_a_missing_or_closed_refund_stage() {
    let server = MockServer::start().await;
    mount_catalog(&server).await;
    let s = settings(&server.uri(), None);
    let mut n = needs(&s);
    n.refund_stages = vec![
        ("Sales".into(), "Reembolsado".into()),
        ("Sales".into(), "Closed lost".into()),
    ];
    let c = HubspotCrm::new(&s, n.clone(), reqwest::Client::new());
    let report = crate::crm::check(&c, &n).await.unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems[0].starts_with(r#"on_refund: stage "Reembolsado" not found in pipeline "Sales""#));
    assert!(report.problems[1].contains("closed (won or lost) stage"));
}

#[tokio::test]
async fn payment_fields_are_patched_by_their_property_names_as_strings() {
    let server = MockServer::start().await;
    let c = refund_crm(&server).await;
    mount_patch(&server).await;
    c.set_deal_fields("5678", &payment("voided", "199000.00"))
        .await
        .unwrap();
    let sent = bodies(&server, "PATCH", "/crm/v3/objects/deals/5678").await;
    assert_eq!(
        sent,
        [json!({"properties": {"payment_status": "voided", "amount_refunded": "199000.00"}})]
    );
}

#[tokio::test]
async fn no_payment_property_mapped_means_no_request() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    mount_patch(&server).await;
    c.set_deal_fields("5678", &payment("refunded", "1.00")).await.unwrap();
    assert!(bodies(&server, "PATCH", "/crm/v3/objects/deals/5678").await.is_empty());
}

#[tokio::test]
async fn a_lost_deal_moves_to_the_closed_lost_stage_with_its_reason() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/deals/5678"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5678", "properties": {}})))
        .mount(&server)
        .await;
    let at = DealRef {
        deal_id: "5678",
        pipeline: "Sales",
    };
    let lost = DealStatus::Lost {
        reason: "Payment declined".into(),
    };
    c.set_deal_status(&at, &lost).await.unwrap();
    let sent = bodies(&server, "PATCH", "/crm/v3/objects/deals/5678").await;
    assert_eq!(
        sent[0],
        json!({"properties": {"dealstage": "closedlost", "closed_lost_reason": "Payment declined"}})
    );
}

#[tokio::test]
async fn a_task_is_found_again_by_its_marker() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("GET"))
        .and(path("/crm/v4/objects/deals/5678/associations/tasks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"toObjectId": 11, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 215}]},
            {"toObjectId": 12, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 215}]},
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/tasks/batch/read"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [
                {"id": "11", "properties": {"hs_task_body": "<p>Other<br><br>[leadgate:a1:abandoned:10]</p>"}},
                {"id": "12", "properties": {"hs_task_body": "<p>Call<br><br>[leadgate:a1:abandoned:1]</p>"}},
            ]})),
        )
        .mount(&server)
        .await;
    assert_eq!(
        c.find_task("5678", "a1:abandoned:1").await.unwrap().as_deref(),
        Some("12")
    );
    assert_eq!(c.find_task("5678", "a1:declined").await.unwrap(), None);
    let read = bodies(&server, "POST", "/crm/v3/objects/tasks/batch/read").await;
    assert_eq!(
        read[0],
        json!({"properties": ["hs_task_body"], "propertiesWithHistory": [], "inputs": [{"id": "11"}, {"id": "12"}]})
    );
}

#[tokio::test]
async fn a_refusal_is_permanent_with_hubspots_message() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals/att-9"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "message": "leadgate_attempt_id is not a unique property", "category": "VALIDATION_ERROR", "correlationId": "abc-1"
        })))
        .mount(&server)
        .await;
    match c.find_deal("att-9").await {
        Err(CrmError::Permanent(m)) => {
            assert!(
                m.contains("VALIDATION_ERROR: leadgate_attempt_id is not a unique property (correlationId abc-1)"),
                "{m}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_409_on_a_deal_create_reads_the_deal_by_our_attempt_id() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/deals"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"category": "CONFLICT", "message": "duplicate"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals/att-2"))
        .and(wiremock::matchers::query_param("idProperty", "leadgate_attempt_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "777", "properties": {}})))
        .mount(&server)
        .await;
    let utm = Utm::default();
    let input = DealInput {
        attempt_id: "att-2",
        person_id: "1",
        title: "t".into(),
        value: money(100, Currency::USD),
        pipeline: "Sales",
        stage: "Checkout started",
        offer_slug: "demo",
        utm: &utm,
    };
    assert_eq!(c.create_deal(&input).await.unwrap(), "777");
}

fn task(kind: TaskKind, priority: Priority, owner: Option<&'static str>) -> TaskInput<'static> {
    TaskInput {
        key: "a1:abandoned:1",
        deal_id: "5678",
        person_id: "1234",
        subject: "Call Ana".into(),
        body: "Ana".into(),
        due_at: 1_777_710_600_000,
        kind,
        priority,
        owner,
    }
}

#[tokio::test]
async fn a_task_carries_its_kind_priority_and_owner() {
    let server = MockServer::start().await;
    let c = crm(&server, Some("ana@acme.test")).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/tasks"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "31", "properties": {}})))
        .mount(&server)
        .await;
    c.create_task(&task(TaskKind::Call, Priority::High, None))
        .await
        .unwrap();
    c.create_task(&task(TaskKind::Todo, Priority::Low, Some("bo@acme.test")))
        .await
        .unwrap();
    c.create_task(&task(TaskKind::Todo, Priority::Normal, None))
        .await
        .unwrap();
    let sent = bodies(&server, "POST", "/crm/v3/objects/tasks").await;
    let props = |i: usize, k: &str| sent[i]["properties"][k].clone();
    assert_eq!(
        (
            props(0, "hs_task_type"),
            props(0, "hs_task_priority"),
            props(0, "hubspot_owner_id")
        ),
        (json!("CALL"), json!("HIGH"), json!("910901")),
        "crm.owner when the step names none"
    );
    assert_eq!(
        (
            props(1, "hs_task_type"),
            props(1, "hs_task_priority"),
            props(1, "hubspot_owner_id")
        ),
        (json!("TODO"), json!("LOW"), json!("4242")),
        "a to-do is a TODO while crm.activity_type is the default CALL; the step's owner wins"
    );
    assert_eq!(props(2, "hs_task_priority"), json!("MEDIUM"));
    assert_eq!(props(2, "hs_task_status"), json!("NOT_STARTED"));
    assert_eq!(sent[0]["associations"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_todo_takes_a_configured_type_other_than_call() {
    assert_eq!(wire::task_type(TaskKind::Todo, Some("EMAIL")), "EMAIL");
    assert_eq!(wire::task_type(TaskKind::Todo, Some("call")), "TODO");
    assert_eq!(wire::task_type(TaskKind::Todo, None), "TODO");
    assert_eq!(wire::task_type(TaskKind::Call, Some("EMAIL")), "CALL");
}

#[tokio::test]
async fn closing_a_task_completes_or_archives_it_and_a_gone_one_is_closed() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/tasks/31"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "31", "properties": {}})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/crm/v3/objects/tasks/32"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let gone = ResponseTemplate::new(404)
        .set_body_json(json!({"category": "OBJECT_NOT_FOUND", "message": "resource not found"}));
    for m in ["PATCH", "DELETE"] {
        Mock::given(method(m))
            .and(path("/crm/v3/objects/tasks/33"))
            .respond_with(gone.clone())
            .mount(&server)
            .await;
    }
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "5678",
    };
    c.close_task(&at("31"), CloseTask::Complete).await.unwrap();
    c.close_task(&at("32"), CloseTask::Delete).await.unwrap();
    c.close_task(&at("33"), CloseTask::Complete).await.unwrap();
    c.close_task(&at("33"), CloseTask::Delete).await.unwrap();
    let patched = bodies(&server, "PATCH", "/crm/v3/objects/tasks/31").await;
    assert_eq!(patched, [json!({"properties": {"hs_task_status": "COMPLETED"}})]);
    let deleted = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE" && r.url.path() == "/crm/v3/objects/tasks/32")
        .count();
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn closing_a_task_is_transient_on_a_429_and_permanent_on_a_refusal() {
    let server = MockServer::start().await;
    let c = crm(&server, None).await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/tasks/41"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "2")
                .set_body_json(json!({"policyName": "TEN_SECONDLY_ROLLING"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/crm/v3/objects/tasks/42"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"category": "MISSING_SCOPES", "message": "This app hasn't been granted all required scopes"}),
        ))
        .mount(&server)
        .await;
    let at = |id| TaskRef {
        task_id: id,
        deal_id: "5678",
    };
    match c.close_task(&at("41"), CloseTask::Complete).await {
        Err(CrmError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }
    // The 429 paused the client for 2 s; the refusal comes after it.
    match c.close_task(&at("42"), CloseTask::Delete).await {
        Err(CrmError::Permanent(m)) => assert!(m.contains("MISSING_SCOPES"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_daily_limit_resets_at_midnight_in_the_zone_the_account_reports() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/account-info/v3/details"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "portalId": 1, "accountType": "STANDARD", "timeZone": "Asia/Tokyo", "companyCurrency": "JPY",
            "additionalCurrencies": [], "utcOffset": "+09:00", "utcOffsetMilliseconds": 32400000,
            "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1",
        })))
        .mount(&server)
        .await;
    let c = crm(&server, None).await;
    assert_eq!(c.zone.get(), UTC, "UTC until the account says otherwise");
    c.catalog().await.unwrap();
    assert_eq!(c.zone.get(), Zone::Named(chrono_tz::Asia::Tokyo));
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/deals/att-1"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"policyName": "DAILY", "message": "You have reached your daily limit."})),
        )
        .mount(&server)
        .await;
    let expected = until_after_midnight(Utc::now(), Zone::Named(chrono_tz::Asia::Tokyo));
    match c.find_deal("att-1").await {
        Err(CrmError::Transient {
            retry_after: Some(wait),
            ..
        }) => assert!(
            wait <= expected && expected - wait < Duration::from_secs(5),
            "{wait:?} vs {expected:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_the_scope_for_account_details_the_catalog_still_loads_and_utc_stays() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/account-info/v3/details"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"category": "MISSING_SCOPES", "message": "missing oauth"})),
        )
        .mount(&server)
        .await;
    let c = crm(&server, None).await;
    assert_eq!(c.catalog().await.unwrap().pipelines.len(), 1);
    assert_eq!(c.zone.get(), UTC);
}
