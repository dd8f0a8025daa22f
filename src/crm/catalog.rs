//! What a CRM account holds (pipelines, stages, owners, deal fields, activity types) and
//! the resolution of the names our configuration uses into the CRM's ids. Adapters only
//! translate their vendor's listings into a [`Catalog`]; matching and the problems an
//! operator is told about are decided here, once for every CRM.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::CrmError;
use crate::config::{FieldRole, Settings};
use crate::domain::followup::{AfterLastStep, OwnerRule};
use crate::domain::offer::DealOnRefund;

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub pipelines: Vec<Pipeline>,
    pub owners: Vec<Owner>,
    pub deal_fields: Vec<Field>,
    /// Kinds of follow-up the CRM offers (Pipedrive activity types, HubSpot task types).
    pub activity_types: Vec<Named>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub id: String,
    pub name: String,
    /// For CRMs where won and lost are stages (HubSpot's closed stages).
    pub outcome: Option<StageOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    Won,
    Lost,
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Field {
    /// What the API calls it: Pipedrive's 40-character hash key, HubSpot's internal name.
    pub key: String,
    pub name: String,
    pub kind: String,
    /// The CRM refuses a second record with the same value (HubSpot's unique properties).
    pub unique: bool,
}

#[derive(Debug, Clone)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// What the configuration asks of the CRM.
#[derive(Debug, Clone, Default)]
pub struct CrmNeeds {
    /// (pipeline, stage) of every offer, as configured.
    pub stages: Vec<(String, String)>,
    /// (pipeline, stage) where an offer's `on_refund = "stage:…"` reopens a refunded deal.
    pub refund_stages: Vec<(String, String)>,
    /// (pipeline, stage) where a follow-up policy's `after_last_step = "stage:…"` puts a
    /// deal whose sequence ran out unpaid.
    pub abandoned_stages: Vec<(String, String)>,
    pub fields: Vec<(FieldRole, String)>,
    pub owner: Option<String>,
    /// The users follow-up policies assign tasks to (ids or emails), resolved like `owner`.
    pub task_owners: Vec<String>,
    pub activity_type: Option<String>,
    /// The CRM has no users of its own (the built-in one): any owner is taken as written.
    pub free_text_owners: bool,
    /// Won and lost are stages in this CRM, so each offer's pipeline must have both.
    pub outcome_stages: bool,
    /// The CRM reads a deal back by our attempt id, which needs a field of unique values.
    pub unique_attempt_field: bool,
}

impl CrmNeeds {
    pub fn from_settings(settings: &Settings) -> CrmNeeds {
        let mut stages: Vec<(String, String)> = Vec::new();
        let mut refund_stages: Vec<(String, String)> = Vec::new();
        let mut abandoned_stages: Vec<(String, String)> = Vec::new();
        let mut task_owners: Vec<String> = Vec::new();
        for o in &settings.offers {
            if let AfterLastStep::Stage(stage) = &o.followup.after_last_step {
                let pair = (o.crm_pipeline.clone(), stage.clone());
                if !abandoned_stages.contains(&pair) {
                    abandoned_stages.push(pair);
                }
            }
            let steps = o.followup.steps.iter().chain(o.followup.declined.as_ref());
            for owner in steps.flat_map(|s| match &s.owner {
                OwnerRule::DealOwner => Vec::new(),
                OwnerRule::User(u) => vec![u.clone()],
                OwnerRule::RoundRobin(users) => users.clone(),
            }) {
                if !task_owners.contains(&owner) {
                    task_owners.push(owner);
                }
            }
            let pair = (o.crm_pipeline.clone(), o.crm_stage.clone());
            if !stages.contains(&pair) {
                stages.push(pair);
            }
            if let DealOnRefund::Stage(stage) = &o.on_refund {
                let pair = (o.crm_pipeline.clone(), stage.clone());
                if !refund_stages.contains(&pair) {
                    refund_stages.push(pair);
                }
            }
        }
        // The stage whose entry makes a payment link, in the link offer's pipeline.
        if let Some(links) = &settings.crm.links {
            let slug = links.offer.as_deref().unwrap_or(&settings.payment_links.default_offer);
            if let Some(o) = settings.offers.iter().find(|o| o.slug.as_str() == slug) {
                let pair = (o.crm_pipeline.clone(), links.stage.clone());
                if !stages.contains(&pair) {
                    stages.push(pair);
                }
            }
        }
        let remote = settings.crm.remote.as_ref();
        CrmNeeds {
            stages,
            refund_stages,
            abandoned_stages,
            fields: remote.map(|r| r.fields.clone()).unwrap_or_default(),
            owner: remote.and_then(|r| r.owner.clone()),
            task_owners,
            activity_type: remote.map(|r| r.activity_type.clone()),
            // `crm::from_settings` falls back to the built-in CRM without a remote one.
            free_text_owners: settings.crm.kind == crate::config::CrmKind::Builtin || remote.is_none(),
            outcome_stages: settings.crm.kind == crate::config::CrmKind::Hubspot,
            unique_attempt_field: settings.crm.kind == crate::config::CrmKind::Hubspot,
        }
    }
}

/// The configuration's names turned into the CRM's ids.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    stages: HashMap<(String, String), (String, String)>,
    outcomes: HashMap<String, (Option<String>, Option<String>)>,
    pipelines: HashMap<String, String>,
    fields: HashMap<FieldRole, String>,
    /// The CRM's type of each mapped field (`varchar`, `double`, `number`…).
    kinds: HashMap<FieldRole, String>,
    owner: Option<String>,
    /// Every configured user (crm.owner, follow-up owners) by `user_key`, to its CRM id.
    users: HashMap<String, String>,
    free_text_owners: bool,
    activity_type: Option<String>,
}

/// Ids match as written, emails case-insensitively.
fn user_key(wanted: &str) -> String {
    let w = wanted.trim();
    if w.contains('@') {
        w.to_lowercase()
    } else {
        w.to_owned()
    }
}

fn find_owner<'c>(catalog: &'c Catalog, wanted: &str) -> Option<&'c Owner> {
    let w = wanted.trim();
    catalog
        .owners
        .iter()
        .find(|o| o.id == w || o.email.eq_ignore_ascii_case(w))
}

/// Names match case-insensitively and ignoring surrounding blanks; an id matches as is.
fn same(configured: &str, id: &str, name: &str) -> bool {
    let c = configured.trim();
    c == id || c.eq_ignore_ascii_case(name.trim())
}

fn key(pipeline: &str, stage: &str) -> (String, String) {
    (pipeline.trim().to_lowercase(), stage.trim().to_lowercase())
}

impl Resolved {
    /// Resolves every need, or lists each one the CRM does not have, naming what it has.
    pub fn resolve(catalog: &Catalog, needs: &CrmNeeds) -> Result<Resolved, Vec<String>> {
        let mut problems = Vec::new();
        let mut r = Resolved::default();
        for (pipeline, stage) in &needs.stages {
            let Some(p) = catalog.pipelines.iter().find(|p| same(pipeline, &p.id, &p.name)) else {
                let have: Vec<_> = catalog.pipelines.iter().map(|p| p.name.as_str()).collect();
                problems.push(format!(
                    "pipeline {pipeline:?} not found (the CRM has: {})",
                    list(&have)
                ));
                continue;
            };
            r.pipelines.insert(pipeline.trim().to_lowercase(), p.id.clone());
            match p.stages.iter().find(|s| same(stage, &s.id, &s.name)) {
                Some(s) => {
                    r.stages.insert(key(pipeline, stage), (p.id.clone(), s.id.clone()));
                }
                None => {
                    let have: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
                    problems.push(format!(
                        "stage {stage:?} not found in pipeline {:?} (it has: {})",
                        p.name,
                        list(&have)
                    ));
                }
            }
            let won = p.stages.iter().find(|s| s.outcome == Some(StageOutcome::Won));
            let lost = p.stages.iter().find(|s| s.outcome == Some(StageOutcome::Lost));
            if needs.outcome_stages && (won.is_none() || lost.is_none()) {
                problems.push(format!(
                    "pipeline {:?} needs a closed-won and a closed-lost stage",
                    p.name
                ));
            }
            r.outcomes
                .insert(p.id.clone(), (won.map(|s| s.id.clone()), lost.map(|s| s.id.clone())));
        }
        let reopened = needs.refund_stages.iter().map(|p| ("on_refund", p));
        let abandoned = needs.abandoned_stages.iter().map(|p| ("followup.after_last_step", p));
        for (setting, (pipeline, stage)) in reopened.chain(abandoned) {
            let Some(p) = catalog.pipelines.iter().find(|p| same(pipeline, &p.id, &p.name)) else {
                // Reported once already, as the offer's own pipeline.
                if !needs.stages.iter().any(|(p, _)| p == pipeline) {
                    problems.push(format!("{setting}: pipeline {pipeline:?} not found"));
                }
                continue;
            };
            match p.stages.iter().find(|s| same(stage, &s.id, &s.name)) {
                // A closed stage would make the deal won or lost again, not open.
                Some(s) if s.outcome.is_some() => problems.push(format!(
                    "{setting}: stage {stage:?} of pipeline {:?} is a closed (won or lost) stage; name an open one",
                    p.name
                )),
                Some(s) => {
                    r.stages.insert(key(pipeline, stage), (p.id.clone(), s.id.clone()));
                }
                None => {
                    let have: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
                    problems.push(format!(
                        "{setting}: stage {stage:?} not found in pipeline {:?} (it has: {})",
                        p.name,
                        list(&have)
                    ));
                }
            }
        }
        for (role, wanted) in &needs.fields {
            match catalog.deal_fields.iter().find(|f| same(wanted, &f.key, &f.name)) {
                Some(f) if *role == FieldRole::AttemptId && needs.unique_attempt_field && !f.unique => {
                    problems.push(format!(
                        "crm.fields.attempt_id: deal field {:?} must require unique values (deals are read back by it)",
                        f.name
                    ))
                }
                Some(f) => {
                    r.fields.insert(*role, f.key.clone());
                    r.kinds.insert(*role, f.kind.clone());
                }
                None => problems.push(format!(
                    "crm.fields.{}: deal field {wanted:?} not found (create it as a text field, or see `leadgate crm check`)",
                    role.as_str()
                )),
            }
        }
        // Deals are found again by the attempt id's field: any other value written there
        // (a payment status on every change) would lose them.
        if let Some(tag) = r.fields.get(&FieldRole::AttemptId) {
            for (role, key) in &r.fields {
                if *role != FieldRole::AttemptId && key == tag {
                    problems.push(format!(
                        "crm.fields.{}: is the attempt_id field; give it a field of its own",
                        role.as_str()
                    ));
                }
            }
        }
        r.free_text_owners = needs.free_text_owners;
        if let Some(wanted) = &needs.owner {
            match find_owner(catalog, wanted) {
                Some(o) => {
                    r.owner = Some(o.id.clone());
                    r.users.insert(user_key(wanted), o.id.clone());
                }
                None => problems.push(format!("crm.owner: no user with id or email {wanted:?}")),
            }
        }
        if !needs.free_text_owners {
            for wanted in &needs.task_owners {
                match find_owner(catalog, wanted) {
                    Some(o) => {
                        r.users.insert(user_key(wanted), o.id.clone());
                    }
                    None => problems.push(format!("followup owner: no user with id or email {wanted:?}")),
                }
            }
        }
        if let Some(wanted) = &needs.activity_type {
            match catalog.activity_types.iter().find(|t| same(wanted, &t.id, &t.name)) {
                Some(t) => r.activity_type = Some(t.id.clone()),
                None => {
                    let have: Vec<_> = catalog.activity_types.iter().map(|t| t.id.as_str()).collect();
                    problems.push(format!(
                        "crm.activity_type: {wanted:?} not found (the CRM has: {})",
                        list(&have)
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(r)
        } else {
            Err(problems)
        }
    }

    /// (pipeline id, stage id) of a configured pair.
    pub fn stage(&self, pipeline: &str, stage: &str) -> Result<(&str, &str), CrmError> {
        self.stages
            .get(&key(pipeline, stage))
            .map(|(p, s)| (p.as_str(), s.as_str()))
            .ok_or_else(|| CrmError::Permanent(format!("stage {stage:?} of pipeline {pipeline:?} is not configured")))
    }

    /// The closed-won or closed-lost stage of a configured pipeline, where the CRM has one.
    pub fn outcome_stage(&self, pipeline: &str, outcome: StageOutcome) -> Option<&str> {
        let id = self.pipelines.get(&pipeline.trim().to_lowercase())?;
        let (won, lost) = self.outcomes.get(id)?;
        match outcome {
            StageOutcome::Won => won.as_deref(),
            StageOutcome::Lost => lost.as_deref(),
        }
    }

    pub fn field(&self, role: FieldRole) -> Option<&str> {
        self.fields.get(&role).map(String::as_str)
    }

    /// The CRM's type of the field mapped to `role`, as its catalog names it.
    pub fn field_kind(&self, role: FieldRole) -> Option<&str> {
        self.kinds.get(&role).map(String::as_str)
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    pub fn activity_type(&self) -> Option<&str> {
        self.activity_type.as_deref()
    }

    /// The CRM id of a user the configuration names (`crm.owner` or a follow-up owner, by
    /// id or email); None for one it did not name. The built-in CRM has no users, so
    /// there the name is the owner, as written.
    pub fn user<'a>(&'a self, wanted: &'a str) -> Option<&'a str> {
        if self.free_text_owners {
            let w = wanted.trim();
            return (!w.is_empty()).then_some(w);
        }
        self.users.get(&user_key(wanted)).map(String::as_str)
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    }
}

impl Catalog {
    /// The listing `leadgate crm check` prints: every id an operator may need to copy.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Pipelines and stages:");
        for p in &self.pipelines {
            let _ = writeln!(out, "  {} (id {})", p.name, p.id);
            for s in &p.stages {
                let tag = match s.outcome {
                    Some(StageOutcome::Won) => " [won]",
                    Some(StageOutcome::Lost) => " [lost]",
                    None => "",
                };
                let _ = writeln!(out, "    - {} (id {}){tag}", s.name, s.id);
            }
        }
        let _ = writeln!(out, "Owners:");
        for o in &self.owners {
            let _ = writeln!(out, "  {} <{}> (id {})", o.name, o.email, o.id);
        }
        let _ = writeln!(out, "Deal fields:");
        for f in &self.deal_fields {
            let unique = if f.unique { ", unique" } else { "" };
            let _ = writeln!(out, "  {} ({}{unique}, key {})", f.name, f.kind, f.key);
        }
        let _ = writeln!(out, "Activity types:");
        for t in &self.activity_types {
            let _ = writeln!(out, "  {} (key {})", t.name, t.id);
        }
        out
    }
}

/// An adapter's resolved configuration, loaded from the CRM on first use and kept; a
/// failed load (CRM down at start-up) is tried again on the next use.
#[derive(Debug, Default)]
pub struct ResolvedCache {
    needs: CrmNeeds,
    cell: OnceCell<Arc<Resolved>>,
}

impl ResolvedCache {
    pub fn new(needs: CrmNeeds) -> Self {
        Self {
            needs,
            cell: OnceCell::new(),
        }
    }

    /// Keeps names already resolved (by the start-up check); a later load is skipped.
    pub fn adopt(&self, resolved: Resolved) {
        let _ = self.cell.set(Arc::new(resolved));
    }

    pub async fn get<F, Fut>(&self, load: F) -> Result<Arc<Resolved>, CrmError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Catalog, CrmError>>,
    {
        self.cell
            .get_or_try_init(|| async {
                let catalog = load().await?;
                Resolved::resolve(&catalog, &self.needs)
                    .map(Arc::new)
                    .map_err(|p| CrmError::Permanent(p.join("; ")))
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            pipelines: vec![Pipeline {
                id: "1".into(),
                name: "Sales".into(),
                stages: vec![
                    Stage {
                        id: "10".into(),
                        name: "Checkout started".into(),
                        outcome: None,
                    },
                    Stage {
                        id: "20".into(),
                        name: "Refunded".into(),
                        outcome: None,
                    },
                    Stage {
                        id: "won".into(),
                        name: "Closed won".into(),
                        outcome: Some(StageOutcome::Won),
                    },
                ],
            }],
            owners: vec![Owner {
                id: "9".into(),
                name: "Ana".into(),
                email: "ana@example.com".into(),
            }],
            deal_fields: vec![Field {
                key: "abc123".into(),
                name: "Leadgate attempt".into(),
                kind: "varchar".into(),
                unique: false,
            }],
            activity_types: vec![Named {
                id: "call".into(),
                name: "Call".into(),
            }],
        }
    }

    #[test]
    fn names_and_ids_resolve_case_insensitively() {
        let needs = CrmNeeds {
            stages: vec![("sales".into(), " checkout STARTED".into())],
            refund_stages: vec![("Sales".into(), "refunded".into())],
            abandoned_stages: vec![],
            fields: vec![(FieldRole::AttemptId, "leadgate attempt".into())],
            owner: Some("ANA@example.com".into()),
            activity_type: Some("Call".into()),
            outcome_stages: false,
            unique_attempt_field: false,
            ..CrmNeeds::default()
        };
        let r = Resolved::resolve(&catalog(), &needs).unwrap();
        assert_eq!(r.stage("Sales", "Checkout started").unwrap(), ("1", "10"));
        assert_eq!(
            r.stage("sales", "Refunded").unwrap(),
            ("1", "20"),
            "the on_refund stage"
        );
        assert_eq!(r.field(FieldRole::AttemptId), Some("abc123"));
        assert_eq!(r.owner(), Some("9"));
        assert_eq!(r.activity_type(), Some("call"));
        assert_eq!(r.outcome_stage("Sales", StageOutcome::Won), Some("won"));
        assert_eq!(r.outcome_stage("Sales", StageOutcome::Lost), None);
    }

    #[test]
    fn every_offers_on_refund_stage_is_needed_in_its_own_pipeline() {
        let offer = |slug: &str, pipeline: &str, on_refund: &str| {
            format!(
                "[[offers]]\nslug = \"{slug}\"\ntitle = \"T\"\nprice_minor = 100\ncurrency = \"COP\"\n\
                 pipeline = \"{pipeline}\"\nstage = \"New\"\non_refund = \"{on_refund}\"\n"
            )
        };
        let toml = [
            offer("a", "Sales", "stage:Refunded"),
            offer("b", "Sales", "stage: Refunded "),
            offer("c", "Courses", "stage:Reembolsado"),
            offer("d", "Courses", "lost"),
            offer("e", "Courses", "keep_won"),
        ]
        .concat();
        let s = Settings::from_toml(&toml, &|_| None).unwrap();
        let needs = CrmNeeds::from_settings(&s);
        assert_eq!(
            needs.refund_stages,
            [
                ("Sales".to_string(), "Refunded".to_string()),
                ("Courses".to_string(), "Reembolsado".to_string())
            ]
        );
    }

    #[test]
    fn no_role_may_write_into_the_attempt_id_field() {
        let needs = CrmNeeds {
            stages: vec![("Sales".into(), "Checkout started".into())],
            fields: vec![
                (FieldRole::AttemptId, "Leadgate attempt".into()),
                (FieldRole::PaymentStatus, "abc123".into()),
            ],
            ..CrmNeeds::default()
        };
        let problems = Resolved::resolve(&catalog(), &needs).unwrap_err();
        assert_eq!(
            problems,
            ["crm.fields.payment_status: is the attempt_id field; give it a field of its own"]
        );
    }

    #[test]
    fn every_missing_name_is_reported_with_what_exists() {
        let needs = CrmNeeds {
            stages: vec![("Sales".into(), "Nope".into()), ("Other".into(), "x".into())],
            refund_stages: vec![
                ("Sales".into(), "Reembolsado".into()),
                ("Sales".into(), "Closed won".into()),
                ("Other".into(), "y".into()),
            ],
            abandoned_stages: vec![],
            fields: vec![
                (FieldRole::Offer, "Offer".into()),
                (FieldRole::AttemptId, "Leadgate attempt".into()),
            ],
            owner: Some("bob@example.com".into()),
            activity_type: Some("meeting".into()),
            outcome_stages: true,
            unique_attempt_field: true,
            ..CrmNeeds::default()
        };
        let problems = Resolved::resolve(&catalog(), &needs).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("stage \"Nope\" not found in pipeline \"Sales\" (it has: \"Checkout started\""));
        assert!(all.contains("pipeline \"Other\" not found (the CRM has: \"Sales\")"));
        assert!(all.contains("closed-won and a closed-lost"));
        assert!(all.contains("crm.fields.offer"));
        assert!(all.contains("crm.owner"));
        assert!(all.contains("crm.activity_type: \"meeting\" not found (the CRM has: \"call\")"));
        assert!(all.contains("crm.fields.attempt_id: deal field \"Leadgate attempt\" must require unique values"));
        assert!(all.contains("on_refund: stage \"Reembolsado\" not found in pipeline \"Sales\" (it has: \"Checkout started\", \"Refunded\""));
        assert!(all.contains("on_refund: stage \"Closed won\" of pipeline \"Sales\" is a closed"));
        assert_eq!(problems.len(), 9, "{all}");
    }

    fn two_owners() -> Catalog {
        let mut c = catalog();
        c.owners.push(Owner {
            id: "12".into(),
            name: "Bea".into(),
            email: "Bea@Example.com".into(),
        });
        c
    }

    #[test]
    fn followup_owners_resolve_by_id_or_email_like_the_crm_owner() {
        let needs = CrmNeeds {
            owner: Some("ana@example.com".into()),
            task_owners: vec!["BEA@example.com".into(), "9".into()],
            ..CrmNeeds::default()
        };
        let r = Resolved::resolve(&two_owners(), &needs).unwrap();
        assert_eq!(r.user("bea@EXAMPLE.com"), Some("12"));
        assert_eq!(r.user(" 9 "), Some("9"));
        assert_eq!(r.user("ana@example.com"), Some("9"), "crm.owner is a user too");
        assert_eq!(r.user("12"), None, "only users the configuration names");
        assert_eq!(r.user("carl@example.com"), None);
    }

    #[test]
    fn each_missing_followup_owner_is_a_problem() {
        let needs = CrmNeeds {
            task_owners: vec!["carl@example.com".into(), "12".into(), "77".into()],
            ..CrmNeeds::default()
        };
        let problems = Resolved::resolve(&two_owners(), &needs).unwrap_err();
        assert_eq!(
            problems,
            [
                "followup owner: no user with id or email \"carl@example.com\"",
                "followup owner: no user with id or email \"77\"",
            ]
        );
    }

    #[test]
    fn the_builtin_crm_takes_any_owner_as_written() {
        let needs = CrmNeeds {
            task_owners: vec!["Ana".into()],
            free_text_owners: true,
            ..CrmNeeds::default()
        };
        let r = Resolved::resolve(&Catalog::default(), &needs).unwrap();
        assert_eq!(r.user(" Ana "), Some("Ana"));
        assert_eq!(r.user("anyone@example.com"), Some("anyone@example.com"));
        assert_eq!(r.user("  "), None);
        let s = Settings::from_toml("", &|_| None).unwrap();
        assert!(CrmNeeds::from_settings(&s).free_text_owners);
        assert!(CrmNeeds::from_settings(&s).task_owners.is_empty());
    }
}
