//! A fake Pipedrive: persons, deals, activities and notes, each request logged with its
//! arrival time, and the failures it can be told to produce.

use super::*;
use leadgate::domain::followup::CloseTask;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) at: Instant,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) url: String,
    pub(super) token: Option<String>,
    pub(super) body: Value,
    pub(super) status: u16,
}

/// What the fake answers instead of doing its job.
#[derive(Default)]
pub(super) struct Faults {
    /// Every call answers 500.
    pub(super) down: bool,
    /// The next calls answer 429 with these headers, this many times.
    pub(super) rate_limited: u32,
    pub(super) rate_headers: Vec<(&'static str, String)>,
    /// The next deal is created, but the answer comes after our client gave up.
    pub(super) slow_deal_once: Option<Duration>,
    /// Deals are refused with this status and Pipedrive error.
    pub(super) refuse_deals: Option<(u16, &'static str)>,
    /// Every POST is done at once but answered this late (a slow CRM).
    pub(super) slow_writes: Option<Duration>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next_id: i64,
    pub(super) persons: Vec<Value>,
    pub(super) deals: Vec<Value>,
    pub(super) activities: Vec<Value>,
    pub(super) notes: Vec<Value>,
    pub(super) seen: Vec<Seen>,
    pub(super) faults: Faults,
}

/// Pipedrive's API as far as leadgate uses it, with its own ledger of objects.
#[derive(Clone, Default)]
pub(super) struct Fake(Arc<Mutex<State>>);

pub(super) struct FakePipedrive {
    pub(super) server: MockServer,
    pub(super) fake: Fake,
}

/// An answer of the fake, kept readable (wiremock's template is not) for the request log.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) delay: Option<Duration>,
}

impl Answer {
    pub(super) fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status).set_body_json(self.body);
        for (k, v) in self.headers {
            t = t.insert_header(k, v.as_str());
        }
        match self.delay {
            Some(d) => t.set_delay(d),
            None => t,
        }
    }
}

pub(super) fn ok(data: Value) -> Answer {
    Answer {
        status: 200,
        body: json!({ "success": true, "data": data, "additional_data": { "next_cursor": null } }),
        headers: vec![],
        delay: None,
    }
}

pub(super) fn refuse(status: u16, error: &str) -> Answer {
    Answer {
        status,
        body: json!({ "success": false, "error": error, "data": null }),
        headers: vec![],
        delay: None,
    }
}

pub(super) fn query(req: &Request, name: &str) -> String {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub(super) fn search_result(found: Vec<i64>) -> Answer {
    let items: Vec<Value> = found
        .into_iter()
        .map(|id| json!({ "result_score": 1.0, "item": { "id": id } }))
        .collect();
    ok(json!({ "items": items }))
}

impl State {
    pub(super) fn id(&mut self) -> i64 {
        self.next_id += 1;
        100 + self.next_id
    }

    /// Faults that answer before any routing; None lets the call through.
    pub(super) fn fault(&mut self, req: &Request) -> Option<Answer> {
        if self.faults.down {
            return Some(refuse(500, "Internal server error"));
        }
        if self.faults.rate_limited > 0 {
            self.faults.rate_limited -= 1;
            let mut a = refuse(429, "Request over limit");
            a.headers = self.faults.rate_headers.clone();
            return Some(a);
        }
        if req.headers.get("x-api-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return Some(refuse(401, "unauthorized access"));
        }
        None
    }

    pub(super) fn route(&mut self, req: &Request, body: &Value) -> Answer {
        let path = req.url.path().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/api/v2/pipelines") => ok(json!([{ "id": PIPELINE_ID, "name": "Sales", "is_deleted": false }])),
            ("GET", "/api/v2/stages") => ok(json!([
                { "id": 10, "name": "New", "pipeline_id": PIPELINE_ID, "order_nr": 1 },
                { "id": STAGE_ID, "name": "Checkout started", "pipeline_id": PIPELINE_ID, "order_nr": 2 },
                { "id": REFUNDED_STAGE_ID, "name": "Refunded", "pipeline_id": PIPELINE_ID, "order_nr": 3 },
                { "id": LINK_STAGE_ID, "name": "Send payment link", "pipeline_id": PIPELINE_ID, "order_nr": 4 },
            ])),
            ("GET", "/api/v1/users") => ok(json!([
                { "id": OWNER_ID, "name": "Sales Bot", "email": "bot@example.com", "active_flag": true },
            ])),
            ("GET", "/api/v2/dealFields") => ok(json!([
                { "field_code": "title", "field_name": "Title", "field_type": "varchar", "is_custom_field": false },
                { "field_code": ATTEMPT_KEY, "field_name": "Leadgate attempt", "field_type": "varchar", "is_custom_field": true },
                { "field_code": STATUS_KEY, "field_name": "Payment status", "field_type": "varchar", "is_custom_field": true },
                { "field_code": REFUNDED_KEY, "field_name": "Amount refunded", "field_type": "double", "is_custom_field": true },
                { "field_code": GCLID_KEY, "field_name": "Google click id", "field_type": "varchar", "is_custom_field": true },
                { "field_code": REFERRER_KEY, "field_name": "Referrer", "field_type": "varchar", "is_custom_field": true },
                { "field_code": LINK_KEY, "field_name": "Payment link", "field_type": "varchar", "is_custom_field": true },
            ])),
            ("GET", "/api/v1/activityTypes") => ok(json!([
                { "id": 1, "name": "Call", "key_string": "call", "active_flag": true },
                { "id": 2, "name": "Task", "key_string": "task", "active_flag": true },
            ])),
            ("GET", "/api/v2/persons/search") => self.search_persons(req),
            ("POST", "/api/v2/persons") => self.insert(Kind::Person, body),
            ("GET", "/api/v2/deals/search") => {
                let term = query(req, "term");
                let found = self
                    .deals
                    .iter()
                    .filter(|d| d["custom_fields"][ATTEMPT_KEY] == term.as_str())
                    .filter_map(|d| d["id"].as_i64())
                    .collect();
                search_result(found)
            }
            ("POST", "/api/v2/deals") => self.create_deal(body),
            ("PATCH", p) if p.starts_with("/api/v2/deals/") => self.patch_deal(p, body),
            ("GET", p) if p.starts_with("/api/v2/deals/") => Self::by_id(&self.deals, p, "Deal not found"),
            ("GET", p) if p.starts_with("/api/v2/persons/") => Self::by_id(&self.persons, p, "Person not found"),
            ("POST", "/api/v2/activities") => self.insert(Kind::Activity, body),
            ("GET", "/api/v2/activities") => {
                let deal: i64 = query(req, "deal_id").parse().unwrap_or(-1);
                ok(Value::from(
                    self.activities
                        .iter()
                        .filter(|a| a["deal_id"] == deal && a["is_deleted"] != true)
                        .cloned()
                        .collect::<Vec<_>>(),
                ))
            }
            ("PATCH", p) if p.starts_with("/api/v2/activities/") => self.patch_activity(p, body),
            ("DELETE", p) if p.starts_with("/api/v2/activities/") => self.delete_activity(p),
            ("POST", "/api/v1/notes") => self.insert(Kind::Note, body),
            _ => refuse(404, "Unknown method ."),
        }
    }

    /// v2 `GET /{objects}/{id}`: the object as stored, or 404.
    fn by_id(list: &[Value], path: &str, missing: &str) -> Answer {
        let id: i64 = path.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        match list.iter().find(|o| o["id"] == id) {
            Some(o) => ok(o.clone()),
            None => refuse(404, missing),
        }
    }

    pub(super) fn search_persons(&self, req: &Request) -> Answer {
        let (term, field) = (query(req, "term").to_lowercase(), query(req, "fields"));
        assert_eq!(query(req, "exact_match"), "true");
        let key = match field.as_str() {
            "email" => "emails",
            "phone" => "phones",
            other => panic!("person search by {other}"),
        };
        let found = self
            .persons
            .iter()
            .filter(|p| {
                p[key].as_array().is_some_and(|vs| {
                    vs.iter()
                        .any(|v| v["value"].as_str().unwrap_or_default().to_lowercase() == term)
                })
            })
            .filter_map(|p| p["id"].as_i64())
            .collect();
        search_result(found)
    }

    pub(super) fn insert(&mut self, kind: Kind, body: &Value) -> Answer {
        let mut obj = body.clone();
        let id = self.id();
        obj["id"] = json!(id);
        match kind {
            Kind::Person => self.persons.push(obj.clone()),
            Kind::Deal => self.deals.push(obj.clone()),
            Kind::Activity => self.activities.push(obj.clone()),
            Kind::Note => self.notes.push(obj.clone()),
        }
        ok(obj)
    }

    pub(super) fn create_deal(&mut self, body: &Value) -> Answer {
        if let Some((status, error)) = self.faults.refuse_deals {
            return refuse(status, error);
        }
        let mut created = self.insert(Kind::Deal, body);
        created.delay = self.faults.slow_deal_once.take();
        created
    }

    /// The activity a path names, unless deleted (Pipedrive answers 404 for it then).
    fn live_activity(&mut self, path: &str) -> Option<&mut Value> {
        let id: i64 = path.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        self.activities
            .iter_mut()
            .find(|a| a["id"] == id && a["is_deleted"] != true)
    }

    /// Like v2: only the fields sent change (`done`, mostly).
    pub(super) fn patch_activity(&mut self, path: &str, body: &Value) -> Answer {
        let Some(activity) = self.live_activity(path) else {
            return refuse(404, "Activity not found");
        };
        for (k, v) in body.as_object().into_iter().flatten() {
            activity[k] = v.clone();
        }
        ok(activity.clone())
    }

    /// Marks it deleted, as Pipedrive does for 30 days; a second delete is a 404.
    pub(super) fn delete_activity(&mut self, path: &str) -> Answer {
        let Some(activity) = self.live_activity(path) else {
            return refuse(404, "Activity not found");
        };
        activity["is_deleted"] = json!(true);
        ok(json!({ "id": activity["id"] }))
    }

    pub(super) fn patch_deal(&mut self, path: &str, body: &Value) -> Answer {
        let id: i64 = path.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        let Some(deal) = self.deals.iter_mut().find(|d| d["id"] == id) else {
            return refuse(404, "Deal not found");
        };
        for (k, v) in body.as_object().into_iter().flatten() {
            match (k.as_str(), v.as_object()) {
                // Like Pipedrive: only the custom fields sent change.
                ("custom_fields", Some(fields)) => {
                    for (f, value) in fields {
                        deal["custom_fields"][f] = value.clone();
                    }
                }
                _ => deal[k] = v.clone(),
            }
        }
        ok(deal.clone())
    }
}

pub(super) enum Kind {
    Person,
    Deal,
    Activity,
    Note,
}

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let answer = match s.fault(req) {
            Some(t) => t,
            None => s.route(req, &body),
        };
        let mut answer = answer;
        if req.method.as_str() == "POST" && answer.delay.is_none() {
            answer.delay = s.faults.slow_writes;
        }
        let status = answer.status;
        s.seen.push(Seen {
            at: Instant::now(),
            method: req.method.to_string(),
            path: req.url.path().to_owned(),
            url: req.url.to_string(),
            token: req
                .headers
                .get("x-api-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            status,
        });
        answer.template()
    }
}

impl FakePipedrive {
    pub(super) async fn start() -> Self {
        let server = MockServer::start().await;
        let fake = Fake::default();
        Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
        Self { server, fake }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.fake.0.lock().unwrap()
    }

    pub(super) fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state().faults)
    }

    pub(super) fn seen(&self, method: &str, path: &str) -> Vec<Seen> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }

    pub(super) fn deals(&self) -> Vec<Value> {
        self.state().deals.clone()
    }

    pub(super) fn persons(&self) -> Vec<Value> {
        self.state().persons.clone()
    }

    /// (id, subject) of every activity neither done nor deleted, in creation order.
    pub(super) fn open_tasks(&self) -> Vec<(String, String)> {
        self.state()
            .activities
            .iter()
            .filter(|a| a["done"] != true && a["is_deleted"] != true)
            .map(|a| {
                (
                    a["id"].to_string(),
                    a["subject"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// (id, subject, how) of every activity marked done or deleted; deleted wins.
    pub(super) fn closed_tasks(&self) -> Vec<(String, String, CloseTask)> {
        self.state()
            .activities
            .iter()
            .filter_map(|a| {
                let how = if a["is_deleted"] == true {
                    CloseTask::Delete
                } else if a["done"] == true {
                    CloseTask::Complete
                } else {
                    return None;
                };
                Some((
                    a["id"].to_string(),
                    a["subject"].as_str().unwrap_or_default().to_owned(),
                    how,
                ))
            })
            .collect()
    }

    pub(super) fn toml(&self, extra: &str) -> String {
        format!(
            "[crm]\nkind = \"pipedrive\"\napi_base = \"{}\"\n{extra}\n[crm.fields]\nattempt_id = \"Leadgate attempt\"\n",
            self.server.uri()
        )
    }
}
