//! HubSpot (CRM v3 objects, v4 association listings). Contacts are found by email with a
//! direct read (search lags behind writes), deals are tagged with our attempt id in a
//! property with unique values so a hidden create can be read back, and tasks carry a
//! marker in their body for the same reason. Won and lost are closed stages of the
//! offer's pipeline. Vendor JSON stays in `wire`; this file only talks HTTP.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use super::catalog::{CrmNeeds, Resolved, ResolvedCache, StageOutcome};
use super::http::{CrmHttp, Lane, Limits, Reply};
use super::{
    Catalog, Crm, CrmError, DealInput, DealRef, DealStatus, LinkSubject, NoteInput, PersonInput, TaskInput, TaskRef,
};
use crate::config::{FieldRole, RemoteCrmSettings};
use crate::domain::followup::{CloseTask, Priority};
use crate::store::Db;

#[cfg(test)]
mod tests;
pub mod webhook;
mod wire;

use wire::{AccountZone, AssociatedId, Association, NewObject, Object, Properties, Results, Update};

const VENDOR: &str = "HubSpot";
/// HubSpot's burst window and its search window.
const WINDOW: Duration = Duration::from_secs(10);
const SEARCH_WINDOW: Duration = Duration::from_secs(1);
/// Owners and task associations are paged; more pages than this means something is off.
const MAX_PAGES: usize = 50;
/// Batch reads take at most 100 inputs.
const BATCH: usize = 100;

pub struct HubspotCrm {
    http: CrmHttp,
    base: Url,
    token: SecretString,
    resolved: ResolvedCache,
    /// Where the daily limit resets; read with the catalog, shared with the wait hint.
    zone: Arc<AccountZone>,
}

impl HubspotCrm {
    pub fn new(settings: &RemoteCrmSettings, needs: CrmNeeds, client: reqwest::Client) -> Self {
        let limits = Limits {
            requests: settings.max_requests,
            window: WINDOW,
            searches: settings.max_searches,
            search_window: SEARCH_WINDOW,
            // The spec marks the search endpoints `x-hubspot-rate-limit-exemptions:
            // ten-secondly`; they have their own per-second limit instead.
            searches_are_requests: false,
        };
        let zone = Arc::new(AccountZone::default());
        let hint_zone = zone.clone();
        let hint = move |reply: &Reply| wire::wait_hint(reply, hint_zone.get());
        Self {
            http: CrmHttp::new(VENDOR, client, settings.timeout, limits, hint),
            base: settings.api_base.clone(),
            token: settings.token.clone(),
            resolved: ResolvedCache::new(needs),
            zone,
        }
    }

    /// Paces through the database too, so every instance on it shares HubSpot's limits and
    /// its pauses (see `CrmHttp::shared_through`).
    pub fn shared_through(mut self, db: &Db) -> Self {
        self.http = self.http.shared_through(db);
        self
    }

    async fn resolved(&self) -> Result<Arc<Resolved>, CrmError> {
        self.resolved.get(|| self.catalog()).await
    }

    /// `{api_base}/<segments>`, each segment percent-encoded: an email or our attempt id
    /// in a path must stay one segment whatever it contains.
    fn url(&self, segments: &[&str]) -> Result<Url, CrmError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| CrmError::Permanent(format!("{VENDOR}: api_base {} cannot take a path", self.base)))?
            .pop_if_empty()
            .extend(segments);
        // `+` may be read as a space by some servers; only data (an email) can hold one.
        if url.path().contains('+') {
            let path = url.path().replace('+', "%2B");
            url.set_path(&path);
        }
        Ok(url)
    }

    /// Sends with the token; transient failures are errors, any other answer is returned.
    async fn call(&self, method: Method, url: Url, body: Option<&impl Serialize>) -> Result<Reply, CrmError> {
        let lane = if url.path().ends_with("/search") {
            Lane::Search
        } else {
            Lane::Plain
        };
        let mut req = self
            .http
            .client()
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if let Some(b) = body {
            req = req.json(b);
        }
        self.http.send(lane, req).await
    }

    /// `call`, then a 2xx is decoded and anything else is HubSpot's refusal.
    async fn call_ok<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
    ) -> Result<T, CrmError> {
        let reply = self.call(method, url, body).await?;
        ok_json(&reply)
    }

    /// A GET that may find nothing: 404 is `None`.
    async fn read<T: DeserializeOwned>(&self, url: Url) -> Result<Option<T>, CrmError> {
        let reply = self.call(Method::GET, url, None::<&()>).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        ok_json(&reply).map(Some)
    }

    async fn create(&self, object: &str, body: &NewObject) -> Result<String, CrmError> {
        let url = self.url(&["crm", "v3", "objects", object])?;
        let created: Object = self.call_ok(Method::POST, url, Some(body)).await?;
        Ok(created.id)
    }

    /// Every page of a listing that pages with `after`.
    async fn all_pages<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<Vec<T>, CrmError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.url(segments)?;
            url.query_pairs_mut().append_pair("limit", "100");
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let page: Results<T> = self.call_ok(Method::GET, url, None::<&()>).await?;
            after = page.next_after();
            out.extend(page.results);
            if after.is_none() {
                return Ok(out);
            }
        }
        Err(CrmError::Permanent(format!(
            "{VENDOR}: {} has more than {MAX_PAGES} pages",
            segments.join("/")
        )))
    }

    async fn contact_by_email(&self, email: &str) -> Result<Option<String>, CrmError> {
        let mut url = self.url(&["crm", "v3", "objects", "contacts", email])?;
        url.query_pairs_mut().append_pair("idProperty", "email");
        Ok(self.read::<Object>(url).await?.map(|o| o.id))
    }

    async fn contact_by_phone(&self, e164: &str) -> Result<Option<String>, CrmError> {
        let url = self.url(&["crm", "v3", "objects", "contacts", "search"])?;
        let found: Results<Object> = self.call_ok(Method::POST, url, Some(&wire::phone_search(e164))).await?;
        Ok(found.results.into_iter().next().map(|o| o.id))
    }

    /// Creates the contact; a 409 means it exists, and its message carries the id.
    async fn create_contact(&self, p: &PersonInput<'_>, owner: Option<&str>) -> Result<String, CrmError> {
        let (first, last) = p.name.first_and_last();
        let mut properties = Properties::new();
        properties.insert("email".into(), p.email.to_string());
        properties.insert("firstname".into(), first);
        if !last.is_empty() {
            properties.insert("lastname".into(), last);
        }
        properties.insert("phone".into(), p.phone.to_string());
        if let Some(o) = owner {
            properties.insert("hubspot_owner_id".into(), o.to_owned());
        }
        let body = NewObject {
            properties,
            associations: Vec::new(),
        };
        let url = self.url(&["crm", "v3", "objects", "contacts"])?;
        let reply = self.call(Method::POST, url, Some(&body)).await?;
        if reply.status == StatusCode::CONFLICT {
            return self.existing_contact(&reply, p.email.as_str()).await;
        }
        ok_json::<Object>(&reply).map(|o| o.id)
    }

    /// The contact a 409 names; if its message changed shape, read it by email instead.
    async fn existing_contact(&self, conflict: &Reply, email: &str) -> Result<String, CrmError> {
        if let Some(id) = wire::existing_id(&conflict.body) {
            return Ok(id);
        }
        self.contact_by_email(email)
            .await?
            .ok_or_else(|| CrmError::Permanent(wire::refusal_text(VENDOR, conflict)))
    }

    /// Reads the account's time zone for the daily limit's reset. Not every token may read
    /// it (the endpoint wants the `oauth` scope), and it never stops the catalog: without
    /// it the reset is taken at UTC midnight.
    async fn read_zone(&self) {
        let read = async {
            let url = self.url(&["account-info", "v3", "details"])?;
            let details: wire::AccountDetails = self.call_ok(Method::GET, url, None::<&()>).await?;
            Ok::<_, CrmError>(details.zone())
        };
        match read.await {
            Ok(Some(zone)) => self.zone.set(zone),
            Ok(None) => tracing::warn!(
                "HubSpot's account details name no time zone we know; daily limit taken as resetting at UTC midnight"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "HubSpot account time zone unreadable; daily limit taken as resetting at UTC midnight")
            }
        }
    }

    /// The ids of the tasks associated with a deal.
    async fn deal_task_ids(&self, deal_id: &str) -> Result<Vec<String>, CrmError> {
        let segments = ["crm", "v4", "objects", "deals", deal_id, "associations", "tasks"];
        let linked: Vec<AssociatedId> = self.all_pages(&segments).await?;
        Ok(linked.iter().filter_map(AssociatedId::id).collect())
    }

    async fn tasks_with_bodies(&self, ids: &[String]) -> Result<Vec<Object>, CrmError> {
        let url = self.url(&["crm", "v3", "objects", "tasks", "batch", "read"])?;
        let mut out = Vec::new();
        for chunk in ids.chunks(BATCH) {
            let body = wire::tasks_batch_read(chunk);
            // 207 (some ids unreadable, e.g. deleted since) still lists the readable ones.
            let read: Results<Object> = self.call_ok(Method::POST, url.clone(), Some(&body)).await?;
            out.extend(read.results);
        }
        Ok(out)
    }
}

/// A 2xx decoded; anything else as HubSpot's refusal with its category and correlationId.
fn ok_json<T: DeserializeOwned>(reply: &Reply) -> Result<T, CrmError> {
    if reply.is_success() {
        reply.json(VENDOR)
    } else {
        Err(CrmError::Permanent(wire::refusal_text(VENDOR, reply)))
    }
}

fn insert_owner(properties: &mut Properties, r: &Resolved) {
    if let Some(o) = r.owner() {
        properties.insert("hubspot_owner_id".into(), o.to_owned());
    }
}

/// The deal's properties: ids for pipeline and stage, and every configured field we fill.
fn deal_properties(d: &DealInput<'_>, r: &Resolved) -> Result<Properties, CrmError> {
    let (pipeline, stage) = r.stage(d.pipeline, d.stage)?;
    let tags = crate::crm::text::deal_tags(d, r)?;
    let mut p = Properties::new();
    p.insert("dealname".into(), d.title.clone());
    p.insert("amount".into(), wire::major_units(&d.value));
    p.insert("deal_currency_code".into(), d.value.currency().as_str().to_owned());
    p.insert("pipeline".into(), pipeline.to_owned());
    p.insert("dealstage".into(), stage.to_owned());
    insert_owner(&mut p, r);
    p.extend(tags);
    Ok(p)
}

/// The payment's facts by the property names the configuration maps; unmapped roles are
/// left out. Every HubSpot property value travels as a string, numbers included.
fn payment_properties(fields: &[(FieldRole, String)], r: &Resolved) -> Properties {
    fields
        .iter()
        .filter_map(|(role, value)| Some((r.field(*role)?.to_owned(), value.clone())))
        .collect()
}

fn outcome_stage<'r>(r: &'r Resolved, pipeline: &str, outcome: StageOutcome) -> Result<&'r str, CrmError> {
    r.outcome_stage(pipeline, outcome).ok_or_else(|| {
        CrmError::Permanent(format!(
            "pipeline {pipeline:?} has no closed-{} stage in {VENDOR}",
            match outcome {
                StageOutcome::Won => "won",
                StageOutcome::Lost => "lost",
            }
        ))
    })
}

#[async_trait]
impl Crm for HubspotCrm {
    fn name(&self) -> &'static str {
        "hubspot"
    }

    async fn upsert_person(&self, p: &PersonInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        if let Some(id) = self.contact_by_email(p.email.as_str()).await? {
            return Ok(id);
        }
        if let Some(id) = self.contact_by_phone(p.phone.as_str()).await? {
            return Ok(id);
        }
        self.create_contact(p, r.owner()).await
    }

    /// Reads the deal by our attempt id as `idProperty`: a direct read, current right
    /// after the create (search is not). HubSpot only allows this for a property with
    /// unique values, so the attempt-id property must be created with "unique values"
    /// on; otherwise HubSpot refuses the read and the job stops with its message.
    async fn find_deal(&self, attempt_id: &str) -> Result<Option<String>, CrmError> {
        let r = self.resolved().await?;
        let field = r
            .field(FieldRole::AttemptId)
            .ok_or_else(|| CrmError::Permanent("crm.fields.attempt_id is not resolved".into()))?;
        let mut url = self.url(&["crm", "v3", "objects", "deals", attempt_id])?;
        url.query_pairs_mut().append_pair("idProperty", field);
        Ok(self.read::<Object>(url).await?.map(|o| o.id))
    }

    async fn create_deal(&self, d: &DealInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        let body = NewObject {
            properties: deal_properties(d, &r)?,
            associations: vec![Association::to(d.person_id, wire::DEAL_TO_CONTACT)],
        };
        let url = self.url(&["crm", "v3", "objects", "deals"])?;
        let reply = self.call(Method::POST, url, Some(&body)).await?;
        if reply.status == StatusCode::CONFLICT {
            // The attempt-id property is unique: a run beside this one (an expired lease)
            // created the deal first. It is ours, so use it.
            if let Some(id) = self.find_deal(d.attempt_id).await? {
                return Ok(id);
            }
        }
        ok_json::<Object>(&reply).map(|o| o.id)
    }

    async fn set_deal_status(&self, deal: &DealRef<'_>, status: &DealStatus) -> Result<(), CrmError> {
        let r = self.resolved().await?;
        let mut properties = Properties::new();
        match status {
            DealStatus::Won => {
                properties.insert(
                    "dealstage".into(),
                    outcome_stage(&r, deal.pipeline, StageOutcome::Won)?.to_owned(),
                );
            }
            DealStatus::Lost { reason } => {
                properties.insert(
                    "dealstage".into(),
                    outcome_stage(&r, deal.pipeline, StageOutcome::Lost)?.to_owned(),
                );
                properties.insert("closed_lost_reason".into(), reason.clone());
            }
            // An open stage of the offer's pipeline, resolved with the offer's stages.
            DealStatus::Open { stage } => {
                let (_, id) = r.stage(deal.pipeline, stage)?;
                properties.insert("dealstage".into(), id.to_owned());
            }
        }
        let url = self.url(&["crm", "v3", "objects", "deals", deal.deal_id])?;
        let _: Object = self.call_ok(Method::PATCH, url, Some(&Update { properties })).await?;
        Ok(())
    }

    /// Lists the deal's tasks and reads their bodies for our marker: a direct read, so a
    /// task created a moment ago is found (search would lag behind).
    async fn find_task(&self, deal_id: &str, key: &str) -> Result<Option<String>, CrmError> {
        let ids = self.deal_task_ids(deal_id).await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let marker = wire::task_marker(key);
        let tasks = self.tasks_with_bodies(&ids).await?;
        Ok(tasks
            .into_iter()
            .find(|t| {
                t.properties
                    .get("hs_task_body")
                    .and_then(Option::as_deref)
                    .is_some_and(|b| b.contains(&marker))
            })
            .map(|t| t.id))
    }

    async fn create_task(&self, t: &TaskInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        let mut p = Properties::new();
        p.insert("hs_timestamp".into(), wire::timestamp(t.due_at));
        p.insert("hs_task_subject".into(), t.subject.clone());
        p.insert("hs_task_body".into(), wire::task_body(&t.body, t.key));
        p.insert("hs_task_status".into(), "NOT_STARTED".into());
        p.insert(
            "hs_task_priority".into(),
            match t.priority {
                Priority::High => "HIGH",
                Priority::Normal => "MEDIUM",
                Priority::Low => "LOW",
            }
            .into(),
        );
        p.insert(
            "hs_task_type".into(),
            wire::task_type(t.kind, r.activity_type()).to_owned(),
        );
        if let Some(o) = crate::crm::text::task_owner(t, &r)? {
            p.insert("hubspot_owner_id".into(), o.to_owned());
        }
        let body = NewObject {
            properties: p,
            associations: vec![
                Association::to(t.person_id, wire::TASK_TO_CONTACT),
                Association::to(t.deal_id, wire::TASK_TO_DEAL),
            ],
        };
        self.create("tasks", &body).await
    }

    async fn close_task(&self, t: &TaskRef<'_>, how: CloseTask) -> Result<(), CrmError> {
        let url = self.url(&["crm", "v3", "objects", "tasks", t.task_id])?;
        let reply = match how {
            CloseTask::Complete => self.call(Method::PATCH, url, Some(&wire::task_completed())).await?,
            // Archive: HubSpot's recycling bin, where a salesperson can still restore it.
            CloseTask::Delete => self.call(Method::DELETE, url, None::<&()>).await?,
        };
        // Gone already (someone archived it first): there is nothing left to close.
        if reply.status == StatusCode::NOT_FOUND || reply.is_success() {
            return Ok(());
        }
        Err(CrmError::Permanent(wire::refusal_text(VENDOR, &reply)))
    }

    async fn add_note(&self, n: &NoteInput<'_>) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        let mut p = Properties::new();
        p.insert("hs_timestamp".into(), wire::timestamp(crate::clock::now_ms()));
        p.insert("hs_note_body".into(), wire::html(&n.body));
        insert_owner(&mut p, &r);
        let body = NewObject {
            properties: p,
            // A deal with no contact (a payment link that could not be made) has none.
            associations: [
                Some(Association::to(n.deal_id, wire::NOTE_TO_DEAL)),
                (!n.person_id.is_empty()).then(|| Association::to(n.person_id, wire::NOTE_TO_CONTACT)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        self.create("notes", &body).await
    }

    async fn set_deal_fields(&self, deal_id: &str, fields: &[(FieldRole, String)]) -> Result<(), CrmError> {
        let r = self.resolved().await?;
        let properties = payment_properties(fields, &r);
        if properties.is_empty() {
            return Ok(());
        }
        let url = self.url(&["crm", "v3", "objects", "deals", deal_id])?;
        let _: Object = self.call_ok(Method::PATCH, url, Some(&Update { properties })).await?;
        Ok(())
    }

    /// The deal with its contact associations, then the first associated contact.
    async fn link_subject(&self, deal_id: &str) -> Result<LinkSubject, CrmError> {
        let mut url = self.url(&["crm", "v3", "objects", "deals", deal_id])?;
        url.query_pairs_mut()
            .append_pair("properties", "amount,deal_currency_code,dealstage,pipeline")
            .append_pair("associations", "contacts");
        let deal: wire::DealWithContacts = self
            .read(url)
            .await?
            .ok_or_else(|| CrmError::Permanent(format!("{VENDOR} has no deal {deal_id}")))?;
        let prop = |k: &str| {
            deal.properties
                .get(k)
                .cloned()
                .flatten()
                .filter(|v| !v.trim().is_empty())
        };
        let value = match (prop("amount"), prop("deal_currency_code")) {
            (Some(a), Some(c)) => super::trigger::money_from_major(&a, &c),
            _ => None,
        };
        let mut subject = LinkSubject {
            deal_id: deal.id.clone(),
            person_id: deal.first_contact(),
            value,
            stage: prop("dealstage"),
            ..LinkSubject::default()
        };
        if let Some(contact_id) = &subject.person_id {
            let mut url = self.url(&["crm", "v3", "objects", "contacts", contact_id])?;
            url.query_pairs_mut()
                .append_pair("properties", "firstname,lastname,email,phone,mobilephone");
            if let Some(c) = self.read::<Object>(url).await? {
                let get = |k: &str| c.properties.get(k).cloned().flatten().filter(|v| !v.trim().is_empty());
                let name = [get("firstname"), get("lastname")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>();
                subject.name = (!name.is_empty()).then(|| name.join(" "));
                subject.email = get("email");
                subject.phone = get("phone").or_else(|| get("mobilephone"));
            }
        }
        Ok(subject)
    }

    async fn stage_id(&self, pipeline: &str, stage: &str) -> Result<String, CrmError> {
        let r = self.resolved().await?;
        Ok(r.stage(pipeline, stage)?.1.to_owned())
    }

    async fn catalog(&self) -> Result<Catalog, CrmError> {
        let url = self.url(&["crm", "v3", "pipelines", "deals"])?;
        let pipelines: Results<wire::VendorPipeline> = self.call_ok(Method::GET, url, None::<&()>).await?;
        let owners: Vec<wire::VendorOwner> = self.all_pages(&["crm", "v3", "owners"]).await?;
        let url = self.url(&["crm", "v3", "properties", "deals"])?;
        let fields: Results<wire::VendorProperty> = self.call_ok(Method::GET, url, None::<&()>).await?;
        self.read_zone().await;
        Ok(Catalog {
            pipelines: pipelines.results.into_iter().map(Into::into).collect(),
            owners: owners.into_iter().map(Into::into).collect(),
            deal_fields: fields.results.into_iter().map(Into::into).collect(),
            activity_types: wire::task_types(),
        })
    }

    fn adopt(&self, resolved: Resolved) {
        self.resolved.adopt(resolved);
    }
}
