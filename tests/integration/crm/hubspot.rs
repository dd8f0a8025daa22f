//! HubSpot: journeys and failure paths against a fake that behaves like HubSpot.
//!
//! The fake keeps contacts, deals, tasks and notes with their associations, answers the
//! calls our adapter makes the way HubSpot does (409 with the existing id, 404 on reads
//! by `idProperty`, v4 association listings), logs every request with its arrival time,
//! and can be told to fail: 5xx, 429 with HubSpot's bodies, slow answers, a revoked token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::submit;
use crate::both_backends;
use crate::support::{attempt_id_of, eventually, Backend, TestApp};

const TOKEN: &str = "pat-na1-test-7f3c";
const ATTEMPT_PROPERTY: &str = "leadgate_attempt_id";
const OWNER_ID: &str = "910901";
const PIPELINE_ID: &str = "default";
const STAGE_ID: &str = "appointmentscheduled";
const WON_ID: &str = "closedwon";
const LOST_ID: &str = "closedlost";

// ---------------------------------------------------------------- the fake

#[derive(Debug, Clone)]
struct Logged {
    at: Instant,
    method: String,
    /// As sent, percent-encoding included.
    path: String,
    query: Option<String>,
    auth: Option<String>,
    body: Value,
    status: u16,
}

#[derive(Debug, Clone)]
struct Object {
    id: String,
    properties: BTreeMap<String, String>,
    /// (other object's id, association type id)
    associations: Vec<(String, u64)>,
    /// A contact HubSpot has but our reads do not see yet (a concurrent create).
    hidden: bool,
}

#[derive(Debug, Clone)]
enum Fault {
    /// Answer this instead of doing anything.
    Status {
        status: u16,
        body: Value,
        retry_after: Option<u64>,
    },
    /// Do the work, then answer this late (past our timeout).
    Slow(Duration),
    /// Do the work, then answer this status: the 201 never reaches us.
    WorkThen(u16),
}

struct Injected {
    method: &'static str,
    /// Empty: any path.
    path_prefix: &'static str,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct State {
    next_id: u64,
    contacts: Vec<Object>,
    deals: Vec<Object>,
    tasks: Vec<Object>,
    notes: Vec<Object>,
    log: Vec<Logged>,
    faults: Vec<Injected>,
    revoked: bool,
}

struct FakeHubspot {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Handler(Arc<Mutex<State>>);

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let at = Instant::now();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let (status, template) = s.answer(req, &body);
        s.log.push(Logged {
            at,
            method: req.method.to_string(),
            path: req.url.path().to_owned(),
            query: req.url.query().map(str::to_owned),
            auth: req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            status,
        });
        template
    }
}

fn error(status: u16, category: &str, message: &str) -> (u16, ResponseTemplate) {
    let body = json!({
        "status": "error", "message": message, "category": category,
        "correlationId": format!("corr-{status}-{category}"),
    });
    (status, ResponseTemplate::new(status).set_body_json(body))
}

fn ok(status: u16, body: Value) -> (u16, ResponseTemplate) {
    (status, ResponseTemplate::new(status).set_body_json(body))
}

fn object_json(o: &Object) -> Value {
    json!({"id": o.id, "properties": o.properties, "createdAt": "2026-05-01T10:00:00.000Z", "archived": false})
}

/// Percent-decoding of one path segment.
fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| u8::from_str_radix(&seg[i + 1..i + 3], 16).ok())
            .flatten();
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl State {
    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let f = self
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.starts_with(f.path_prefix))?;
        f.times -= 1;
        Some(f.fault.clone())
    }

    fn answer(&mut self, req: &Request, body: &Value) -> (u16, ResponseTemplate) {
        let method = req.method.to_string();
        let path = req.url.path().to_owned();
        let fault = self
            .take_fault(&method, &path)
            .or_else(|| self.take_fault("ANY", &path));
        match fault {
            Some(Fault::Status {
                status,
                body,
                retry_after,
            }) => {
                let mut t = ResponseTemplate::new(status).set_body_json(body);
                if let Some(s) = retry_after {
                    t = t.insert_header("Retry-After", s.to_string().as_str());
                }
                (status, t)
            }
            Some(Fault::Slow(d)) => {
                let (status, t) = self.route(req, body);
                (status, t.set_delay(d))
            }
            Some(Fault::WorkThen(status)) => {
                self.route(req, body);
                error(status, "INTERNAL_ERROR", "internal error")
            }
            None => self.route(req, body),
        }
    }

    fn route(&mut self, req: &Request, body: &Value) -> (u16, ResponseTemplate) {
        let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok());
        if self.revoked || auth != Some(&format!("Bearer {TOKEN}")) {
            return error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            );
        }
        let segs: Vec<String> = req.url.path().trim_start_matches('/').split('/').map(decode).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["crm", "v3", "pipelines", "deals"]) => ok(200, pipelines()),
            ("GET", ["crm", "v3", "owners"]) => ok(200, owners(query_param(req, "after"))),
            ("GET", ["crm", "v3", "properties", "deals"]) => ok(200, properties()),
            ("GET", ["crm", "v3", "objects", "contacts", email]) => self.read_contact(req, email),
            ("POST", ["crm", "v3", "objects", "contacts", "search"]) => self.search_contacts(body),
            ("POST", ["crm", "v3", "objects", "contacts"]) => self.create_contact(body),
            ("POST", ["crm", "v3", "objects", "deals"]) => self.create_deal(body),
            ("GET", ["crm", "v3", "objects", "deals", id]) => self.read_deal(req, id),
            ("PATCH", ["crm", "v3", "objects", "deals", id]) => self.update_deal(id, body),
            ("POST", ["crm", "v3", "objects", "tasks"]) => self.create_engagement(body, true),
            ("POST", ["crm", "v3", "objects", "notes"]) => self.create_engagement(body, false),
            ("GET", ["crm", "v4", "objects", "deals", id, "associations", "tasks"]) => self.deal_tasks(id),
            ("POST", ["crm", "v3", "objects", "tasks", "batch", "read"]) => self.read_tasks(body),
            _ => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    fn new_object(&mut self, body: &Value) -> Object {
        self.next_id += 1;
        let properties = body["properties"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("<not a string>").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let associations = body["associations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let to = x["to"]["id"].as_str().unwrap_or("<no id>").to_owned();
                        (to, x["types"][0]["associationTypeId"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Object {
            id: (5000 + self.next_id).to_string(),
            properties,
            associations,
            hidden: false,
        }
    }

    fn read_contact(&self, req: &Request, email: &str) -> (u16, ResponseTemplate) {
        let found = if query_param(req, "idProperty").as_deref() == Some("email") {
            self.contacts
                .iter()
                .find(|c| !c.hidden && c.properties.get("email").map(String::as_str) == Some(email))
        } else {
            self.contacts.iter().find(|c| c.id == email)
        };
        match found {
            Some(c) => ok(200, object_json(c)),
            None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    fn search_contacts(&self, body: &Value) -> (u16, ResponseTemplate) {
        let filter = &body["filterGroups"][0]["filters"][0];
        let (prop, value) = (filter["propertyName"].as_str(), filter["value"].as_str());
        let found: Vec<Value> = self
            .contacts
            .iter()
            .filter(|c| !c.hidden && prop.and_then(|p| c.properties.get(p)).map(String::as_str) == value)
            .map(object_json)
            .collect();
        ok(200, json!({"total": found.len(), "results": found}))
    }

    fn create_contact(&mut self, body: &Value) -> (u16, ResponseTemplate) {
        let email = body["properties"]["email"].as_str().unwrap_or_default().to_owned();
        if let Some(c) = self.contacts.iter().find(|c| c.properties.get("email") == Some(&email)) {
            let message = format!("Contact already exists. Existing ID: {}", c.id);
            return error(409, "CONFLICT", &message);
        }
        let c = self.new_object(body);
        let answer = object_json(&c);
        self.contacts.push(c);
        ok(201, answer)
    }

    fn create_deal(&mut self, body: &Value) -> (u16, ResponseTemplate) {
        let d = self.new_object(body);
        let stage_ok = d.properties.get("pipeline").map(String::as_str) == Some(PIPELINE_ID)
            && [STAGE_ID, WON_ID, LOST_ID].contains(&d.properties.get("dealstage").map_or("", String::as_str));
        if !stage_ok {
            return error(400, "VALIDATION_ERROR", "Property values were not valid: dealstage");
        }
        let attempt = d.properties.get(ATTEMPT_PROPERTY);
        if attempt.is_some() && self.deals.iter().any(|x| x.properties.get(ATTEMPT_PROPERTY) == attempt) {
            return error(409, "CONFLICT", "A deal with this leadgate_attempt_id already exists");
        }
        let answer = object_json(&d);
        self.deals.push(d);
        ok(201, answer)
    }

    fn read_deal(&self, req: &Request, id: &str) -> (u16, ResponseTemplate) {
        let found = match query_param(req, "idProperty") {
            Some(p) => self
                .deals
                .iter()
                .find(|d| d.properties.get(&p).map(String::as_str) == Some(id)),
            None => self.deals.iter().find(|d| d.id == id),
        };
        match found {
            Some(d) => ok(200, object_json(d)),
            None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    fn update_deal(&mut self, id: &str, body: &Value) -> (u16, ResponseTemplate) {
        let Some(d) = self.deals.iter_mut().find(|d| d.id == id) else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        if let Some(props) = body["properties"].as_object() {
            for (k, v) in props {
                d.properties
                    .insert(k.clone(), v.as_str().unwrap_or("<not a string>").to_owned());
            }
        }
        ok(200, object_json(d))
    }

    fn create_engagement(&mut self, body: &Value, task: bool) -> (u16, ResponseTemplate) {
        let o = self.new_object(body);
        if !o.properties.contains_key("hs_timestamp") {
            return error(400, "VALIDATION_ERROR", "hs_timestamp is required");
        }
        let answer = object_json(&o);
        if task {
            self.tasks.push(o);
        } else {
            self.notes.push(o);
        }
        ok(201, answer)
    }

    fn deal_tasks(&self, deal_id: &str) -> (u16, ResponseTemplate) {
        let results: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| t.associations.iter().any(|(to, ty)| to == deal_id && *ty == 216))
            .map(|t| {
                json!({"toObjectId": t.id.parse::<u64>().unwrap_or(0),
                       "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 215, "label": null}]})
            })
            .collect();
        ok(200, json!({ "results": results }))
    }

    fn read_tasks(&self, body: &Value) -> (u16, ResponseTemplate) {
        let ids: Vec<&str> = body["inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect())
            .unwrap_or_default();
        let results: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| ids.contains(&t.id.as_str()))
            .map(object_json)
            .collect();
        ok(200, json!({"status": "COMPLETE", "results": results}))
    }
}

fn pipelines() -> Value {
    let stage = |id: &str, label: &str, closed: &str, p: &str| {
        json!({"id": id, "label": label, "displayOrder": 0, "archived": false,
               "metadata": {"isClosed": closed, "probability": p}})
    };
    json!({"results": [
        {"id": "other", "label": "Renewals", "displayOrder": 1, "stages": [stage("r1", "Checkout started", "false", "0.5")]},
        {"id": PIPELINE_ID, "label": "Sales", "displayOrder": 0, "stages": [
            stage(STAGE_ID, "Checkout started", "false", "0.2"),
            stage("qualifiedtobuy", "Qualified To Buy", "false", "0.4"),
            stage(WON_ID, "Closed Won", "true", "1.0"),
            stage(LOST_ID, "Closed Lost", "true", "0.0"),
        ]},
    ]})
}

/// Two pages, so the owner we configure is only found by following `after`.
fn owners(after: Option<String>) -> Value {
    match after.as_deref() {
        None => json!({"results": [
            {"id": "1", "email": "boss@acme.test", "firstName": "Bo", "lastName": "Ss", "archived": false}
        ], "paging": {"next": {"after": "1", "link": "?after=1"}}}),
        _ => json!({"results": [
            {"id": OWNER_ID, "email": "sales@acme.test", "firstName": "Sara", "lastName": "Lee", "archived": false}
        ]}),
    }
}

fn properties() -> Value {
    json!({"results": [
        {"name": "dealname", "label": "Deal Name", "type": "string"},
        {"name": ATTEMPT_PROPERTY, "label": "Leadgate attempt", "type": "string", "hasUniqueValue": true},
        {"name": "utm_campaign", "label": "UTM campaign", "type": "string"},
        {"name": "closed_lost_reason", "label": "Closed Lost Reason", "type": "string"},
    ]})
}

impl FakeHubspot {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state: Arc<Mutex<State>> = Arc::default();
        Mock::given(wiremock::matchers::any())
            .respond_with(Handler(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn inject(&self, method: &'static str, path_prefix: &'static str, fault: Fault, times: usize) {
        self.state.lock().unwrap().faults.push(Injected {
            method,
            path_prefix,
            fault,
            times,
        });
    }

    fn add_contact(&self, email: &str, phone: &str, hidden: bool) -> String {
        let mut s = self.state.lock().unwrap();
        let mut c = s.new_object(&json!({"properties": {"email": email, "phone": phone, "firstname": "Old"}}));
        c.hidden = hidden;
        let id = c.id.clone();
        s.contacts.push(c);
        id
    }

    fn set_revoked(&self, revoked: bool) {
        self.state.lock().unwrap().revoked = revoked;
    }

    fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    fn calls(&self, method: &str, path: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method == method && l.path == path)
            .collect()
    }

    fn contacts(&self) -> Vec<Object> {
        self.state.lock().unwrap().contacts.clone()
    }
    fn deals(&self) -> Vec<Object> {
        self.state.lock().unwrap().deals.clone()
    }
    fn tasks(&self) -> Vec<Object> {
        self.state.lock().unwrap().tasks.clone()
    }
    fn notes(&self) -> Vec<Object> {
        self.state.lock().unwrap().notes.clone()
    }

    fn toml(&self) -> String {
        format!(
            r#"
[crm]
kind = "hubspot"
api_base = "{}"
timeout = "700ms"
owner = "sales@acme.test"

[crm.fields]
utm_campaign = "UTM campaign"
"#,
            self.server.uri()
        )
    }
}

fn rate_limited(policy: &str, message: &str) -> Value {
    json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
           "correlationId": "c033cdaa", "policyName": policy, "requestId": "3d3e35b7"})
}

// ---------------------------------------------------------------- the app

async fn app(backend: Backend, fake: &FakeHubspot, max_attempts: i32) -> TestApp {
    let env = vec![("LEADGATE_HUBSPOT_TOKEN", TOKEN.to_string())];
    super::app_with_crm(backend, fake.toml(), env, max_attempts).await
}

async fn jobs(app: &TestApp) -> Vec<leadgate::store::jobs::JobSummary> {
    let mut all = Vec::new();
    for lead in leadgate::store::leads::all(&app.ctx.db).await.unwrap() {
        all.extend(leadgate::store::jobs::for_lead(&app.ctx.db, &lead.id).await.unwrap());
    }
    all
}

async fn recorded_deal(app: &TestApp, attempt_id: &str) -> Option<String> {
    let leads = app.leads().await;
    leads
        .iter()
        .flat_map(|l| l["attempts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["id"] == attempt_id)
        .and_then(|a| a["crm_deal_id"].as_str().map(str::to_owned))
}

fn has_association(o: &Object, to: &str, type_id: u64) -> bool {
    o.associations.iter().any(|(id, ty)| id == to && *ty == type_id)
}

// ---------------------------------------------------------------- journeys

both_backends!(hubspot_approve_journey);

async fn hubspot_approve_journey(backend: Backend) {
    let fake = FakeHubspot::start().await;
    let app = app(backend, &fake, 4).await;
    let checkout = submit(&app, "Ana María Pérez", "Ana.Perez+vip@Example.com", "300 123 4567").await;
    let back = app.press(&checkout, "approve").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("the deal to be won in HubSpot", || async {
        fake.deals()
            .first()
            .and_then(|d| d.properties.get("dealstage").cloned())
            .as_deref()
            == Some(WON_ID)
            && fake.notes().len() == 1
    })
    .await;
    app.settle().await;

    // Contact: read by email (encoded as one segment), not found by phone, then created.
    let email_path = "/crm/v3/objects/contacts/ana.perez%2Bvip@example.com";
    let read = fake.calls("GET", email_path);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].query.as_deref(), Some("idProperty=email"));
    let search = fake.calls("POST", "/crm/v3/objects/contacts/search");
    assert_eq!(
        search[0].body["filterGroups"][0]["filters"][0]["value"],
        "+573001234567"
    );
    let created = fake.calls("POST", "/crm/v3/objects/contacts");
    assert_eq!(created.len(), 1);
    assert!(read[0].at < search[0].at && search[0].at < created[0].at);
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!(c.properties["email"], "ana.perez+vip@example.com");
    assert_eq!(
        (c.properties["firstname"].as_str(), c.properties["lastname"].as_str()),
        ("Ana", "María Pérez")
    );
    assert_eq!(c.properties["hubspot_owner_id"], OWNER_ID);

    // Deal: ids, amount in major units, our attempt id, UTM, inline association.
    let deals = fake.deals();
    assert_eq!(deals.len(), 1);
    let d = &deals[0];
    assert_eq!(d.properties["dealname"], "Curso de Marketing — Ana María Pérez");
    assert_eq!(d.properties["amount"], "199000.00");
    assert_eq!(d.properties["deal_currency_code"], "COP");
    assert_eq!(d.properties["pipeline"], PIPELINE_ID);
    assert_eq!(d.properties[ATTEMPT_PROPERTY], attempt);
    assert_eq!(d.properties["utm_campaign"], "launch");
    assert_eq!(d.properties["hubspot_owner_id"], OWNER_ID);
    assert_eq!(d.associations, vec![(c.id.clone(), 3)]);
    let posted = &fake.calls("POST", "/crm/v3/objects/deals")[0];
    assert_eq!(
        posted.body["properties"]["dealstage"], STAGE_ID,
        "created in the offer's stage"
    );
    assert_eq!(recorded_deal(&app, &attempt).await.as_deref(), Some(d.id.as_str()));

    // Won: PATCH to the closed-won stage, then a note on deal and contact.
    let patches = fake.calls("PATCH", &format!("/crm/v3/objects/deals/{}", d.id));
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body, json!({"properties": {"dealstage": WON_ID}}));
    let notes = fake.notes();
    let n = &notes[0];
    assert!(
        has_association(n, &d.id, 214) && has_association(n, &c.id, 202),
        "{n:?}"
    );
    assert!(n.properties["hs_note_body"].contains("approved"), "{n:?}");
    assert!(n.properties["hs_note_body"].contains("<br>"), "{n:?}");
    assert!(fake.tasks().is_empty());
    assert_eq!(app.leads().await[0]["attempts"][0]["deal_status"], "won");

    // Every call carried the token; the happy path never looked for a hidden deal.
    let log = fake.log();
    assert!(log
        .iter()
        .all(|l| l.auth.as_deref() == Some(&*format!("Bearer {TOKEN}"))));
    assert!(log.iter().all(|l| l.status < 400 || l.path == email_path), "{log:?}");
    assert!(fake
        .calls("GET", &format!("/crm/v3/objects/deals/{attempt}"))
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_decline_loses_the_deal_and_opens_an_urgent_task() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let checkout = submit(&app, "Bruno Souza", "bruno@example.com", "300 123 4567").await;
    let back = app.press(&checkout, "decline").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("a lost deal, a task and a note", || async {
        let lost = fake
            .deals()
            .first()
            .and_then(|d| d.properties.get("dealstage").cloned())
            .as_deref()
            == Some(LOST_ID);
        lost && fake.tasks().len() == 1 && fake.notes().len() == 1
    })
    .await;
    app.settle().await;
    let (c, d) = (&fake.contacts()[0], &fake.deals()[0]);
    assert!(
        d.properties["closed_lost_reason"].starts_with("Payment declined"),
        "{:?}",
        d.properties
    );
    let tasks = fake.tasks();
    let t = &tasks[0];
    assert_eq!(t.properties["hs_task_priority"], "HIGH");
    assert_eq!(t.properties["hs_task_status"], "NOT_STARTED");
    assert_eq!(t.properties["hs_task_type"], "CALL");
    assert_eq!(t.properties["hubspot_owner_id"], OWNER_ID);
    assert!(t.properties["hs_task_subject"].contains("Bruno Souza"));
    let body = &t.properties["hs_task_body"];
    assert!(body.contains("bruno@example.com") && body.contains("<br>"), "{body}");
    assert!(body.ends_with(&format!("[leadgate:{attempt}:declined]")), "{body}");
    assert!(
        has_association(t, &c.id, 204) && has_association(t, &d.id, 216),
        "{t:?}"
    );
    let n = &fake.notes()[0];
    assert!(has_association(n, &d.id, 214) && has_association(n, &c.id, 202));
    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(fake.deals().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_existing_contacts_are_reused_and_a_409_gives_the_id() {
    let fake = FakeHubspot::start().await;
    let known = fake.add_contact("carla@example.com", "+573001112233", false);
    // Created by someone else a moment ago: our read misses it, the create gets a 409.
    let racing = fake.add_contact("dario@example.com", "+573009998877", true);
    let app = app(Backend::Sqlite, &fake, 4).await;

    submit(&app, "Carla Gómez", "carla@example.com", "300 555 0000").await;
    submit(&app, "Darío Paz", "dario@example.com", "300 555 0001").await;
    eventually("both deals", || async { fake.deals().len() == 2 }).await;
    app.settle().await;

    assert_eq!(fake.contacts().len(), 2, "no contact was added");
    let creates = fake.calls("POST", "/crm/v3/objects/contacts");
    assert_eq!(
        creates.len(),
        1,
        "carla was found by email; only dario's create was tried"
    );
    assert_eq!(creates[0].status, 409);
    let deals = fake.deals();
    assert!(has_association(&deals[0], &known, 3), "{deals:?}");
    assert!(has_association(&deals[1], &racing, 3), "{deals:?}");
}

// ---------------------------------------------------------------- failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_outage_then_recovery_syncs_every_lead_once() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 12).await;
    // An outage: a stretch of 502s, then deal creates answered after our 700 ms timeout
    // (HubSpot did the work; we never saw the 201).
    let down = Fault::Status {
        status: 502,
        body: json!({"message": "Bad gateway"}),
        retry_after: None,
    };
    fake.inject("ANY", "/crm/", down, 3);
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Slow(Duration::from_millis(1500)),
        2,
    );
    for (name, email, phone) in [
        ("Gala Ruiz", "gala@example.com", "300 123 0001"),
        ("Hugo Paz", "hugo@example.com", "300 123 0002"),
        ("Gala R.", "gala@example.com", "300 123 0001"),
    ] {
        let started = Instant::now();
        let checkout = submit(&app, name, email, phone).await;
        assert!(checkout.contains("/sandbox/pay/"), "the customer still goes to pay");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the redirect did not wait for HubSpot"
        );
    }

    eventually("every attempt to have its deal", || async {
        let leads = app.leads().await;
        leads
            .iter()
            .flat_map(|l| l["attempts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["crm_deal_id"].is_string())
            .count()
            == 3
    })
    .await;
    app.settle().await;

    assert_eq!(
        fake.log().iter().filter(|l| l.status == 502).count(),
        3,
        "the outage happened"
    );
    let lookups = fake
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.query.as_deref() == Some("idProperty=leadgate_attempt_id"))
        .count();
    assert!(lookups >= 2, "timed-out creates were looked up, not repeated");
    assert_eq!(fake.contacts().len(), 2, "one contact per email");
    let deals = fake.deals();
    assert_eq!(deals.len(), 3, "one deal per attempt: {deals:?}");
    let mut attempts: Vec<&str> = deals.iter().map(|d| d.properties[ATTEMPT_PROPERTY].as_str()).collect();
    attempts.dedup();
    assert_eq!(attempts.len(), 3);
    for d in &deals {
        let mine = recorded_deal(&app, &d.properties[ATTEMPT_PROPERTY]).await;
        assert_eq!(mine.as_deref(), Some(d.id.as_str()));
    }
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_deal_created_but_unrecorded_is_found_not_duplicated() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    // HubSpot creates the deal, and the answer is lost (as if we crashed before commit).
    fake.inject("POST", "/crm/v3/objects/deals", Fault::WorkThen(500), 1);
    let checkout = submit(&app, "Fabio Lima", "fabio@example.com", "300 123 4567").await;
    let back = app.press(&checkout, "approve").await;
    let attempt = attempt_id_of(&back);
    app.get(&back).await;

    eventually("the deal to be recorded and won", || async {
        recorded_deal(&app, &attempt).await.is_some()
            && fake
                .deals()
                .first()
                .and_then(|d| d.properties.get("dealstage").cloned())
                .as_deref()
                == Some(WON_ID)
    })
    .await;
    app.settle().await;
    let deals = fake.deals();
    assert_eq!(deals.len(), 1, "the retry found the deal instead of creating another");
    assert_eq!(
        recorded_deal(&app, &attempt).await.as_deref(),
        Some(deals[0].id.as_str())
    );
    let lookups = fake.calls("GET", &format!("/crm/v3/objects/deals/{attempt}"));
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].query.as_deref(), Some("idProperty=leadgate_attempt_id"));
    assert_eq!(lookups[0].status, 200);
    assert_eq!(fake.calls("POST", "/crm/v3/objects/deals").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_429_pauses_every_call_for_the_time_given() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 6).await;
    let body = rate_limited(
        "TEN_SECONDLY_ROLLING",
        "You have reached your ten_secondly_rolling limit.",
    );
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 429,
            body,
            retry_after: Some(1),
        },
        1,
    );
    submit(&app, "Irene Vega", "irene@example.com", "300 123 0003").await;
    submit(&app, "Jorge Rey", "jorge@example.com", "300 123 0004").await;
    eventually("both deals", || async { fake.deals().len() == 2 }).await;
    app.settle().await;

    let log = fake.log();
    let hit = log.iter().position(|l| l.status == 429).expect("the 429 was sent");
    let resume_at = log[hit].at + Duration::from_secs(1);
    let early: Vec<_> = log[hit + 1..].iter().filter(|l| l.at < resume_at).collect();
    assert!(early.is_empty(), "called HubSpot during the pause: {early:?}");
    assert_eq!(fake.contacts().len(), 2);
    let dead = leadgate::store::jobs::dead(&app.ctx.db, 10).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_daily_429_waits_for_the_next_day() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let body = rate_limited("DAILY", "You have reached your daily limit.");
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 429,
            body,
            retry_after: None,
        },
        1,
    );
    submit(&app, "Karla Ortiz", "karla@example.com", "300 123 0005").await;

    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    eventually("the sync to be queued for tomorrow", || async {
        jobs(&app)
            .await
            .iter()
            .any(|j| j.kind == "crm_sync" && j.state == "queued" && j.run_at >= tomorrow)
    })
    .await;
    let sent = fake.log().len();
    // Another lead meanwhile: stored and redirected, and HubSpot is not called at all.
    let checkout = submit(&app, "Luis Mar", "luis@example.com", "300 123 0006").await;
    assert!(checkout.contains("/sandbox/pay/"));
    eventually("the second sync to wait for tomorrow too", || async {
        jobs(&app)
            .await
            .iter()
            .filter(|j| j.kind == "crm_sync" && j.state == "queued" && j.run_at >= tomorrow)
            .count()
            == 2
    })
    .await;
    assert_eq!(fake.log().len(), sent, "no call during the daily pause");
    assert!(fake.deals().is_empty());
}

async fn dead_errors(app: &TestApp) -> Vec<String> {
    leadgate::store::jobs::dead(&app.ctx.db, 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|j| j.last_error)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_refusals_go_dead_with_hubspots_message() {
    let fake = FakeHubspot::start().await;
    let app = app(Backend::Sqlite, &fake, 4).await;
    let refusal = json!({"status": "error", "message": "Property values were not valid: [amount]",
                         "category": "VALIDATION_ERROR", "correlationId": "2dea5219-07f2"});
    fake.inject(
        "POST",
        "/crm/v3/objects/deals",
        Fault::Status {
            status: 400,
            body: refusal,
            retry_after: None,
        },
        1,
    );
    submit(&app, "Marta Gil", "marta@example.com", "300 123 0007").await;
    eventually("the sync to go dead", || async { !dead_errors(&app).await.is_empty() }).await;
    let errors = dead_errors(&app).await;
    assert!(
        errors[0].contains(
            "400 Bad Request: VALIDATION_ERROR: Property values were not valid: [amount] (correlationId 2dea5219-07f2)"
        ),
        "{errors:?}"
    );
    let sync: Vec<_> = jobs(&app).await.into_iter().filter(|j| j.kind == "crm_sync").collect();
    assert_eq!((sync[0].state.as_str(), sync[0].attempts), ("dead", 1), "no retry loop");

    // The token is revoked: the next lead's sync stops at once with HubSpot's reason.
    fake.set_revoked(true);
    submit(&app, "Nora Paz", "nora@example.com", "300 123 0008").await;
    eventually("the second sync to go dead", || async {
        dead_errors(&app).await.len() == 2
    })
    .await;
    let errors = dead_errors(&app).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("401 Unauthorized: INVALID_AUTHENTICATION: Authentication credentials not found")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains(TOKEN)), "the token is never echoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_start_up_refuses_a_stage_it_does_not_have() {
    let fake = FakeHubspot::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("leadgate.db").display());
    let toml = format!(
        r#"
bind = "127.0.0.1:0"

[[offers]]
slug = "demo"
title = "Curso"
price_minor = 100000
currency = "COP"
stage = "Negotiation"
{}"#,
        fake.toml()
    );
    let env = move |k: &str| match k {
        "LEADGATE_SECRET_KEY" => Some("test-secret-key-test-secret-key-0123456789".to_string()),
        "LEADGATE_DATABASE_URL" => Some(db.clone()),
        "LEADGATE_HUBSPOT_TOKEN" => Some(TOKEN.to_string()),
        _ => None,
    };
    let settings = leadgate::config::Settings::from_toml(&toml, &env).unwrap();
    let err = match leadgate::startup::Application::build(settings).await {
        Ok(_) => panic!("start-up accepted a stage HubSpot does not have"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("stage \"Negotiation\" not found in pipeline \"Sales\""),
        "{err}"
    );
    assert!(err.contains("\"Checkout started\""), "it names what HubSpot has: {err}");
}

// Keeps the fake's decoder honest: the path decoding above is hand-written.
#[test]
fn fake_decodes_percent_escapes() {
    assert_eq!(decode("ana%2Bx%2Fy@example.com"), "ana+x/y@example.com");
    assert_eq!(decode("plain"), "plain");
    assert_eq!(decode("bad%2"), "bad%2");
}
