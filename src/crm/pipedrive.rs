//! Pipedrive. API v2 for persons, deals, activities, search, pipelines, stages and deal
//! fields; v1 only where v2 has no twin (notes, users, activity types). The token goes in
//! the `x-api-token` header, never in a URL, so neither logs nor errors can carry it.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::catalog::{self, CrmNeeds, Resolved, ResolvedCache};
use super::http::{retry_after, seconds_header, CrmHttp, Lane, Limits, Reply};
use super::{
    Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, LinkSubject, NoteInput, PersonInput, TaskInput, TaskRef,
};
use crate::config::{FieldRole, RemoteCrmSettings};
use crate::domain::followup::CloseTask;
use crate::store::Db;

mod body;
pub mod webhook;
mod wire;

#[cfg(test)]
use body::{activity_type, due, html, major_units};
use body::{deal_body, done_body, fields_body, note_body, pd_id, person_body, status_body, task_body, task_marker};

#[cfg(test)]
mod tests;

const VENDOR: &str = "Pipedrive";
const TOKEN_HEADER: &str = "x-api-token";
/// Pipedrive's burst limits are counted over a rolling 2 s window.
const WINDOW: Duration = Duration::from_secs(2);
/// The largest page Pipedrive serves.
const PAGE_SIZE: &str = "500";
/// Bounds a listing whose cursor never ends (a misbehaving server): 10,000 rows.
const MAX_PAGES: usize = 20;

#[derive(Clone, Copy)]
enum Api {
    V1,
    V2,
}

pub struct PipedriveCrm {
    http: CrmHttp,
    v1: String,
    v2: String,
    /// Marked sensitive so reqwest's Debug output never shows it.
    token: Option<HeaderValue>,
    resolved: ResolvedCache,
}

impl PipedriveCrm {
    /// `settings.api_base` is the company domain (`https://acme.pipedrive.com`).
    pub fn new(settings: &RemoteCrmSettings, needs: CrmNeeds, client: reqwest::Client) -> Self {
        let base = settings.api_base.as_str().trim_end_matches('/');
        let (v1, v2) = (format!("{base}/api/v1"), format!("{base}/api/v2"));
        Self::with_roots(settings, needs, client, &v1, &v2)
    }

    /// With the v1 and v2 roots given apart (a mock serving each spec at its own root).
    pub fn with_roots(
        settings: &RemoteCrmSettings,
        needs: CrmNeeds,
        client: reqwest::Client,
        v1_root: &str,
        v2_root: &str,
    ) -> Self {
        let limits = Limits {
            requests: settings.max_requests,
            window: WINDOW,
            searches: settings.max_searches,
            search_window: WINDOW,
            // Its docs exempt no endpoint from the burst limit: a search counts there too.
            searches_are_requests: true,
        };
        let token = HeaderValue::from_str(settings.token.expose_secret()).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Self {
            http: CrmHttp::new(VENDOR, client, settings.timeout, limits, wait_hint),
            v1: v1_root.trim_end_matches('/').to_owned(),
            v2: v2_root.trim_end_matches('/').to_owned(),
            token,
            resolved: ResolvedCache::new(needs),
        }
    }

    /// Paces through the database too, so every instance on it shares Pipedrive's limits and
    /// its pauses (see `CrmHttp::shared_through`).
    pub fn shared_through(mut self, db: &Db) -> Self {
        self.http = self.http.shared_through(db);
        self
    }

    fn request(&self, method: Method, api: Api, path: &str) -> Result<RequestBuilder, CrmError> {
        let root = match api {
            Api::V1 => &self.v1,
            Api::V2 => &self.v2,
        };
        let token = self
            .token
            .clone()
            .ok_or_else(|| CrmError::Permanent("the Pipedrive API token is not a valid header value".into()))?;
        Ok(self
            .http
            .client()
            .request(method, format!("{root}/{path}"))
            .header(TOKEN_HEADER, token))
    }

    /// Sends and reads `data` from a 2xx; anything else is Pipedrive's refusal.
    async fn call<T: DeserializeOwned>(&self, lane: Lane, req: RequestBuilder) -> Result<wire::Envelope<T>, CrmError> {
        let reply = self.http.send(lane, req).await?;
        read(&reply)
    }

    /// The `id` of what a POST created.
    async fn create(&self, api: Api, path: &str, body: &Value) -> Result<String, CrmError> {
        let req = self.request(Method::POST, api, path)?.json(body);
        let created: wire::Envelope<wire::Created> = self.call(Lane::Plain, req).await?;
        created
            .data
            .map(|c| c.id.text())
            .ok_or_else(|| CrmError::transient(format!("{VENDOR} answered {path} without the created object")))
    }

    /// Every row of a v2 listing, following its cursor.
    async fn list_all<T: DeserializeOwned>(&self, path: &str, filters: &[(&str, String)]) -> Result<Vec<T>, CrmError> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut req = self
                .request(Method::GET, Api::V2, path)?
                .query(filters)
                .query(&[("limit", PAGE_SIZE)]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: wire::Envelope<Vec<T>> = self.call(Lane::Plain, req).await?;
            rows.extend(page.data.unwrap_or_default());
            let next = page.additional_data.and_then(|a| a.next_cursor);
            match next {
                // A cursor that does not move would loop forever.
                Some(n) if !n.is_empty() && cursor.as_ref() != Some(&n) => cursor = Some(n),
                _ => return Ok(rows),
            }
        }
        tracing::warn!(path, pages = MAX_PAGES, "Pipedrive listing cut short");
        Ok(rows)
    }

    /// A v1 listing (unpaginated for users and activity types).
    async fn list_v1<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, CrmError> {
        let req = self.request(Method::GET, Api::V1, path)?;
        let page: wire::Envelope<Vec<T>> = self.call(Lane::Plain, req).await?;
        Ok(page.data.unwrap_or_default())
    }

    /// The lowest id among exact matches of `term` in `fields` of `entity` (persons, deals).
    async fn search(&self, entity: &str, fields: &str, term: &str) -> Result<Option<String>, CrmError> {
        let query = [("term", term), ("fields", fields), ("exact_match", "true")];
        let req = self
            .request(Method::GET, Api::V2, &format!("{entity}/search"))?
            .query(&query);
        let found: wire::Envelope<wire::SearchData> = self.call(Lane::Search, req).await?;
        let items = found.data.unwrap_or_default().items;
        Ok(lowest(entity, fields, items.into_iter().map(|i| i.item.id)))
    }

    async fn resolved(&self) -> Result<std::sync::Arc<Resolved>, CrmError> {
        self.resolved.get(|| self.catalog()).await
    }

    async fn pipelines(&self) -> Result<Vec<catalog::Pipeline>, CrmError> {
        let pipelines: Vec<wire::Pipeline> = self.list_all("pipelines", &[]).await?;
        let mut stages: Vec<wire::Stage> = self.list_all("stages", &[]).await?;
        stages.retain(|s| !s.is_deleted);
        stages.sort_by_key(|s| s.order_nr);
        Ok(pipelines
            .into_iter()
            .filter(|p| !p.is_deleted)
            .map(|p| catalog::Pipeline {
                stages: stages
                    .iter()
                    .filter(|s| s.pipeline_id.as_ref() == Some(&p.id))
                    .map(|s| catalog::Stage {
                        id: s.id.text(),
                        name: s.name.clone(),
                        // Won and lost are a deal's status in Pipedrive, never a stage.
                        outcome: None,
                    })
                    .collect(),
                id: p.id.text(),
                name: p.name,
            })
            .collect())
    }

    async fn owners(&self) -> Result<Vec<catalog::Owner>, CrmError> {
        let users: Vec<wire::User> = self.list_v1("users").await?;
        Ok(users
            .into_iter()
            .filter(|u| u.active_flag)
            .map(|u| catalog::Owner {
                id: u.id.text(),
                name: u.name,
                email: u.email,
            })
            .collect())
    }

    /// Custom fields only: a standard field (title, value) must never carry our tags.
    async fn deal_fields(&self) -> Result<Vec<catalog::Field>, CrmError> {
        let fields: Vec<wire::DealField> = self.list_all("dealFields", &[]).await?;
        Ok(fields
            .into_iter()
            .filter(|f| f.is_custom_field)
            .map(|f| catalog::Field {
                key: f.field_code,
                name: f.field_name,
                kind: f.field_type,
                unique: false,
            })
            .collect())
    }

    async fn activity_types(&self) -> Result<Vec<catalog::Named>, CrmError> {
        let types: Vec<wire::ActivityType> = self.list_v1("activityTypes").await?;
        Ok(types
            .into_iter()
            .filter(|t| t.active_flag && !t.key_string.is_empty())
            .map(|t| catalog::Named {
                id: t.key_string,
                name: t.name,
            })
            .collect())
    }
}

/// 2xx: the envelope; otherwise Pipedrive's refusal with its own message.
fn read<T: DeserializeOwned>(reply: &Reply) -> Result<wire::Envelope<T>, CrmError> {
    reply.ok_json(VENDOR)
}

/// Pipedrive's 429 says when its window resets; `Retry-After` wins where sent.
pub(crate) fn wait_hint(reply: &Reply) -> Option<Duration> {
    retry_after(&reply.headers).or_else(|| seconds_header(&reply.headers, "x-ratelimit-reset"))
}

/// Several matches (Pipedrive does not deduplicate) resolve to the oldest, with a warning
/// that carries ids only: the search term is personal data.
fn lowest(entity: &str, fields: &str, ids: impl Iterator<Item = wire::Id>) -> Option<String> {
    let mut ids: Vec<wire::Id> = ids.collect();
    ids.sort_by_key(wire::Id::sort_key);
    ids.dedup();
    let first = ids.first()?.text();
    if ids.len() > 1 {
        tracing::warn!(
            entity,
            by = fields,
            matches = ids.len(),
            chosen = %first,
            "several Pipedrive records match; using the oldest"
        );
    }
    Some(first)
}

#[async_trait]
impl Crm for PipedriveCrm {
    fn name(&self) -> &'static str {
        "pipedrive"
    }

    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        if let Some(id) = self.search("persons", "email", p.email.as_str()).await? {
            return Ok(id);
        }
        if let Some(id) = self.search("persons", "phone", p.phone.as_str()).await? {
            return Ok(id);
        }
        let r = self.resolved().await?;
        let owner = r.owner().map(pd_id).transpose()?;
        self.create(Api::V2, "persons", &person_body(p, owner)).await
    }

    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        self.search("deals", "custom_fields", attempt_id).await
    }

    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        self.create(Api::V2, "deals", &deal_body(d, &r)?).await
    }

    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let path = format!("deals/{}", pd_id(deal.deal_id)?);
        // Won and lost need no catalog: do not read one just for them.
        let resolved = match status {
            DealStatus::Open { .. } => Some(self.resolved().await?),
            _ => None,
        };
        let body = status_body(status, deal.pipeline, resolved.as_deref())?;
        let req = self.request(Method::PATCH, Api::V2, &path)?.json(&body);
        let _: wire::Envelope<Value> = self.call(Lane::Plain, req).await?;
        Ok(())
    }

    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        let filters = [("deal_id", pd_id(deal_id)?.to_string())];
        let activities: Vec<wire::Activity> = self.list_all("activities", &filters).await?;
        let marker = task_marker(key);
        let ours = activities
            .into_iter()
            .filter(|a| !a.is_deleted && a.note.as_deref().is_some_and(|n| n.contains(&marker)))
            .map(|a| a.id);
        Ok(lowest("activities", "note", ours))
    }

    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        self.create(Api::V2, "activities", &task_body(t, &r)?).await
    }

    async fn close_task(&self, t: &TaskRef<'_>, how: CloseTask) -> Result<(), CrmError> {
        let path = format!("activities/{}", pd_id(t.task_id)?);
        let req = match how {
            CloseTask::Complete => self.request(Method::PATCH, Api::V2, &path)?.json(&done_body()),
            // Pipedrive keeps a deleted activity 30 days before it is gone for good.
            CloseTask::Delete => self.request(Method::DELETE, Api::V2, &path)?,
        };
        let reply = self.http.send(Lane::Plain, req).await?;
        // Deleted already (by a salesperson, or by an earlier run of this job): done.
        if matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::GONE) {
            return Ok(());
        }
        let _: wire::Envelope<Value> = read(&reply)?;
        Ok(())
    }

    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        self.create(Api::V1, "notes", &note_body(n)?).await
    }

    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        let r = self.resolved().await?;
        let Some(body) = fields_body(fields, &r)? else {
            return Ok(());
        };
        let path = format!("deals/{}", pd_id(deal_id)?);
        let req = self.request(Method::PATCH, Api::V2, &path)?.json(&body);
        let _: wire::Envelope<Value> = self.call(Lane::Plain, req).await?;
        Ok(())
    }

    /// v2 `GET /deals/{id}`, then its person's `GET /persons/{id}`.
    async fn link_subject(&self, deal_id: &str) -> Result<LinkSubject, CrmError> {
        let path = format!("deals/{}", pd_id(deal_id)?);
        let req = self.request(Method::GET, Api::V2, &path)?;
        let deal: wire::Envelope<wire::Deal> = self.call(Lane::Plain, req).await?;
        let deal = deal
            .data
            .ok_or_else(|| CrmError::Permanent(format!("{VENDOR} has no deal {deal_id}")))?;
        let value = match (&deal.value, &deal.currency) {
            (Some(v), Some(c)) => super::trigger::money_from_major(&v.to_string(), c),
            _ => None,
        };
        let mut subject = LinkSubject {
            deal_id: deal.id.text(),
            person_id: deal.person_id.as_ref().map(wire::Id::text),
            value,
            stage: deal.stage_id.as_ref().map(wire::Id::text),
            ..LinkSubject::default()
        };
        if let Some(person_id) = &subject.person_id {
            let path = format!("persons/{}", pd_id(person_id)?);
            let req = self.request(Method::GET, Api::V2, &path)?;
            let person: wire::Envelope<wire::Person> = self.call(Lane::Plain, req).await?;
            if let Some(p) = person.data {
                subject.email = wire::Person::primary(&p.emails);
                subject.phone = wire::Person::primary(&p.phones);
                subject.name = p.name;
            }
        }
        Ok(subject)
    }

    async fn stage_id(&self, pipeline: &str, stage: &str) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        Ok(r.stage(pipeline, stage)?.1.to_owned())
    }

    async fn catalog(&self) -> Result<Catalog, CrmError> {
        Ok(Catalog {
            pipelines: self.pipelines().await?,
            owners: self.owners().await?,
            deal_fields: self.deal_fields().await?,
            activity_types: self.activity_types().await?,
        })
    }

    fn adopt(&self, resolved: Resolved) {
        self.resolved.adopt(resolved);
    }
}
