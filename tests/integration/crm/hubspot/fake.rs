//! A fake HubSpot: contacts, deals, tasks and notes with their associations, and the
//! failures it can be told to produce.

use super::*;
use leadgate::domain::followup::CloseTask;

#[derive(Debug, Clone)]
pub(super) struct Logged {
    pub(super) at: Instant,
    pub(super) method: String,
    /// As sent, percent-encoding included.
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) auth: Option<String>,
    pub(super) body: Value,
    pub(super) status: u16,
}

#[derive(Debug, Clone)]
pub(super) struct Object {
    pub(super) id: String,
    pub(super) properties: BTreeMap<String, String>,
    /// (other object's id, association type id)
    pub(super) associations: Vec<(String, u64)>,
    /// A contact HubSpot has but our reads do not see yet (a concurrent create).
    pub(super) hidden: bool,
    /// In the recycling bin (`DELETE`): not read, listed or updated any more.
    pub(super) archived: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Fault {
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

pub(super) struct Injected {
    pub(super) method: &'static str,
    /// Empty: any path.
    pub(super) path_prefix: &'static str,
    pub(super) fault: Fault,
    pub(super) times: usize,
}

pub(super) struct State {
    pub(super) next_id: u64,
    pub(super) contacts: Vec<Object>,
    pub(super) deals: Vec<Object>,
    pub(super) tasks: Vec<Object>,
    pub(super) notes: Vec<Object>,
    pub(super) log: Vec<Logged>,
    pub(super) faults: Vec<Injected>,
    pub(super) revoked: bool,
    /// What `/account-info/v3/details` says; None: the token lacks the scope (403).
    pub(super) time_zone: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            next_id: 0,
            contacts: Vec::new(),
            deals: Vec::new(),
            tasks: Vec::new(),
            notes: Vec::new(),
            log: Vec::new(),
            faults: Vec::new(),
            revoked: false,
            time_zone: Some("UTC".into()),
        }
    }
}

pub(super) struct FakeHubspot {
    pub(super) server: MockServer,
    pub(super) state: Arc<Mutex<State>>,
}

pub(super) struct Handler(Arc<Mutex<State>>);

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

pub(super) fn error(status: u16, category: &str, message: &str) -> (u16, ResponseTemplate) {
    let body = json!({
        "status": "error", "message": message, "category": category,
        "correlationId": format!("corr-{status}-{category}"),
    });
    (status, ResponseTemplate::new(status).set_body_json(body))
}

pub(super) fn ok(status: u16, body: Value) -> (u16, ResponseTemplate) {
    (status, ResponseTemplate::new(status).set_body_json(body))
}

pub(super) fn object_json(o: &Object) -> Value {
    json!({"id": o.id, "properties": o.properties, "createdAt": "2026-05-01T10:00:00.000Z", "archived": false})
}

/// Percent-decoding of one path segment.
pub(super) fn decode(seg: &str) -> String {
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

pub(super) fn query_param(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl State {
    pub(super) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let f = self
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.starts_with(f.path_prefix))?;
        f.times -= 1;
        Some(f.fault.clone())
    }

    pub(super) fn answer(&mut self, req: &Request, body: &Value) -> (u16, ResponseTemplate) {
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

    pub(super) fn route(&mut self, req: &Request, body: &Value) -> (u16, ResponseTemplate) {
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
            ("PATCH", ["crm", "v3", "objects", "tasks", id]) => self.update_task(id, body),
            ("DELETE", ["crm", "v3", "objects", "tasks", id]) => self.archive_task(id),
            ("GET", ["account-info", "v3", "details"]) => self.account_details(),
            ("GET", ["crm", "v4", "objects", "deals", id, "associations", "tasks"]) => self.deal_tasks(id),
            ("POST", ["crm", "v3", "objects", "tasks", "batch", "read"]) => self.read_tasks(body),
            _ => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    pub(super) fn new_object(&mut self, body: &Value) -> Object {
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
            archived: false,
        }
    }

    pub(super) fn read_contact(&self, req: &Request, email: &str) -> (u16, ResponseTemplate) {
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

    pub(super) fn search_contacts(&self, body: &Value) -> (u16, ResponseTemplate) {
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

    pub(super) fn create_contact(&mut self, body: &Value) -> (u16, ResponseTemplate) {
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

    pub(super) fn create_deal(&mut self, body: &Value) -> (u16, ResponseTemplate) {
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

    pub(super) fn read_deal(&self, req: &Request, id: &str) -> (u16, ResponseTemplate) {
        let found = match query_param(req, "idProperty") {
            Some(p) => self
                .deals
                .iter()
                .find(|d| d.properties.get(&p).map(String::as_str) == Some(id)),
            None => self.deals.iter().find(|d| d.id == id),
        };
        match found {
            // `?associations=contacts`: the deal's contacts, as HubSpot lists them.
            Some(d) if query_param(req, "associations").is_some_and(|a| a.contains("contacts")) => {
                let contacts: Vec<Value> = d
                    .associations
                    .iter()
                    .filter(|(_, ty)| *ty == 3)
                    .map(|(id, _)| json!({"id": id, "type": "deal_to_contact"}))
                    .collect();
                let mut body = object_json(d);
                body["associations"] = json!({"contacts": {"results": contacts}});
                ok(200, body)
            }
            Some(d) => ok(200, object_json(d)),
            None => error(404, "OBJECT_NOT_FOUND", "resource not found"),
        }
    }

    pub(super) fn update_deal(&mut self, id: &str, body: &Value) -> (u16, ResponseTemplate) {
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

    pub(super) fn create_engagement(&mut self, body: &Value, task: bool) -> (u16, ResponseTemplate) {
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

    pub(super) fn update_task(&mut self, id: &str, body: &Value) -> (u16, ResponseTemplate) {
        let Some(t) = self.tasks.iter_mut().find(|t| t.id == id && !t.archived) else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        if let Some(props) = body["properties"].as_object() {
            for (k, v) in props {
                t.properties
                    .insert(k.clone(), v.as_str().unwrap_or("<not a string>").to_owned());
            }
        }
        ok(200, object_json(t))
    }

    /// To the recycling bin: 204, and a second archive finds nothing (404).
    pub(super) fn archive_task(&mut self, id: &str) -> (u16, ResponseTemplate) {
        let Some(t) = self.tasks.iter_mut().find(|t| t.id == id && !t.archived) else {
            return error(404, "OBJECT_NOT_FOUND", "resource not found");
        };
        t.archived = true;
        (204, ResponseTemplate::new(204))
    }

    pub(super) fn account_details(&self) -> (u16, ResponseTemplate) {
        match &self.time_zone {
            Some(zone) => ok(
                200,
                json!({"portalId": 62515, "accountType": "STANDARD", "timeZone": zone, "companyCurrency": "COP",
                       "additionalCurrencies": [], "utcOffset": "+00:00", "utcOffsetMilliseconds": 0,
                       "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"}),
            ),
            None => error(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call.",
            ),
        }
    }

    pub(super) fn deal_tasks(&self, deal_id: &str) -> (u16, ResponseTemplate) {
        let results: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| !t.archived)
            .filter(|t| t.associations.iter().any(|(to, ty)| to == deal_id && *ty == 216))
            .map(|t| {
                json!({"toObjectId": t.id.parse::<u64>().unwrap_or(0),
                       "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 215, "label": null}]})
            })
            .collect();
        ok(200, json!({ "results": results }))
    }

    pub(super) fn read_tasks(&self, body: &Value) -> (u16, ResponseTemplate) {
        let ids: Vec<&str> = body["inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["id"].as_str()).collect())
            .unwrap_or_default();
        let results: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| !t.archived && ids.contains(&t.id.as_str()))
            .map(object_json)
            .collect();
        ok(200, json!({"status": "COMPLETE", "results": results}))
    }
}

pub(super) fn pipelines() -> Value {
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
            stage(REFUNDED_ID, "Refunded", "false", "0.0"),
        ]},
    ]})
}

/// Two pages, so the owner we configure is only found by following `after`.
pub(super) fn owners(after: Option<String>) -> Value {
    match after.as_deref() {
        None => json!({"results": [
            {"id": "1", "email": "boss@acme.test", "firstName": "Bo", "lastName": "Ss", "archived": false}
        ], "paging": {"next": {"after": "1", "link": "?after=1"}}}),
        _ => json!({"results": [
            {"id": OWNER_ID, "email": "sales@acme.test", "firstName": "Sara", "lastName": "Lee", "archived": false}
        ]}),
    }
}

pub(super) fn properties() -> Value {
    json!({"results": [
        {"name": "dealname", "label": "Deal Name", "type": "string"},
        {"name": ATTEMPT_PROPERTY, "label": "Leadgate attempt", "type": "string", "hasUniqueValue": true},
        {"name": "utm_campaign", "label": "UTM campaign", "type": "string"},
        {"name": "gclid", "label": "Google click id", "type": "string"},
        {"name": "fbclid", "label": "Meta click id", "type": "string"},
        {"name": "closed_lost_reason", "label": "Closed Lost Reason", "type": "string"},
        {"name": "leadgate_payment_status", "label": "Payment status", "type": "enumeration"},
        {"name": "leadgate_amount_refunded", "label": "Amount refunded", "type": "number"},
        {"name": "leadgate_payment_link", "label": "Payment link", "type": "string"},
    ]})
}

impl FakeHubspot {
    pub(super) async fn start() -> Self {
        let server = MockServer::start().await;
        let state: Arc<Mutex<State>> = Arc::default();
        Mock::given(wiremock::matchers::any())
            .respond_with(Handler(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub(super) fn inject(&self, method: &'static str, path_prefix: &'static str, fault: Fault, times: usize) {
        self.state.lock().unwrap().faults.push(Injected {
            method,
            path_prefix,
            fault,
            times,
        });
    }

    pub(super) fn add_contact(&self, email: &str, phone: &str, hidden: bool) -> String {
        let mut s = self.state.lock().unwrap();
        let mut c = s.new_object(&json!({"properties": {"email": email, "phone": phone, "firstname": "Old"}}));
        c.hidden = hidden;
        let id = c.id.clone();
        s.contacts.push(c);
        id
    }

    pub(super) fn set_revoked(&self, revoked: bool) {
        self.state.lock().unwrap().revoked = revoked;
    }

    pub(super) fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub(super) fn calls(&self, method: &str, path: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method == method && l.path == path)
            .collect()
    }

    pub(super) fn contacts(&self) -> Vec<Object> {
        self.state.lock().unwrap().contacts.clone()
    }
    pub(super) fn deals(&self) -> Vec<Object> {
        self.state.lock().unwrap().deals.clone()
    }
    pub(super) fn tasks(&self) -> Vec<Object> {
        self.state.lock().unwrap().tasks.clone()
    }
    pub(super) fn notes(&self) -> Vec<Object> {
        self.state.lock().unwrap().notes.clone()
    }

    /// The account's time zone as `/account-info/v3/details` reports it (UTC unless set);
    /// None answers 403 MISSING_SCOPES, as for a token without the `oauth` scope.
    pub(super) fn set_time_zone(&self, zone: Option<&str>) {
        self.state.lock().unwrap().time_zone = zone.map(str::to_owned);
    }

    /// (id, subject) of every task neither COMPLETED nor archived, in creation order.
    pub(super) fn open_tasks(&self) -> Vec<(String, String)> {
        self.tasks()
            .into_iter()
            .filter(|t| !t.archived && t.properties.get("hs_task_status").map(String::as_str) != Some("COMPLETED"))
            .map(|t| (t.id, t.properties.get("hs_task_subject").cloned().unwrap_or_default()))
            .collect()
    }

    /// (id, subject, how) of every task COMPLETED or archived; archived wins.
    pub(super) fn closed_tasks(&self) -> Vec<(String, String, CloseTask)> {
        self.tasks()
            .into_iter()
            .filter_map(|t| {
                let how = if t.archived {
                    CloseTask::Delete
                } else if t.properties.get("hs_task_status").map(String::as_str) == Some("COMPLETED") {
                    CloseTask::Complete
                } else {
                    return None;
                };
                Some((
                    t.id,
                    t.properties.get("hs_task_subject").cloned().unwrap_or_default(),
                    how,
                ))
            })
            .collect()
    }

    pub(super) fn toml(&self) -> String {
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

pub(super) fn rate_limited(policy: &str, message: &str) -> Value {
    json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
           "correlationId": "c033cdaa", "policyName": policy, "requestId": "3d3e35b7"})
}
