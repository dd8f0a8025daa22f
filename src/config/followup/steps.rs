//! `[[followup.steps]]` and `[followup.declined]`: one step each, its kind, owner and texts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::followup::{Localized, OwnerRule, Priority, Step, StepKind, Template};
use crate::domain::Lang;

/// Reports one mistake: the key below the table being read, and what is wrong with it.
pub(super) type Report<'a> = dyn FnMut(&str, String) + 'a;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    after: String,
    kind: Option<String>,
    priority: Option<String>,
    /// A string, a number (Pipedrive user ids are) or a list of them: checked by hand for a
    /// message better than serde's "did not match any variant".
    owner: Option<toml::Value>,
    #[serde(default)]
    subject: BTreeMap<String, String>,
    #[serde(default)]
    body: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeclined {
    enabled: Option<bool>,
    kind: Option<String>,
    priority: Option<String>,
    owner: Option<toml::Value>,
    #[serde(default)]
    subject: BTreeMap<String, String>,
    #[serde(default)]
    body: BTreeMap<String, String>,
}

pub(super) fn step(s: RawStep, path: &str, err: &mut Report<'_>) -> Option<Step> {
    let after = humantime::parse_duration(&s.after)
        .map_err(|e| err(&format!("{path}.after"), format!("{e} (examples: \"30m\", \"24h\")")))
        .ok();
    let kind = parse_kind(s.kind.as_deref(), path, err);
    let priority = parse_priority(s.priority.as_deref(), Priority::Normal, path, err);
    let owner = parse_owner(s.owner.as_ref(), path, err);
    // The texts are checked even when another key failed, so one run reports every mistake.
    let defaults = Step::new(
        Duration::ZERO,
        kind.unwrap_or(StepKind::Call),
        Priority::Normal,
        OwnerRule::DealOwner,
    );
    let step = texts(defaults, s.subject, s.body, path, err);
    Some(Step {
        after: after?,
        kind: kind?,
        priority: priority?,
        owner: owner?,
        ..step?
    })
}

pub(super) fn declined(d: RawDeclined, err: &mut Report<'_>) -> Option<Step> {
    let path = "declined";
    let kind = parse_kind(d.kind.as_deref(), path, err);
    let priority = parse_priority(d.priority.as_deref(), Priority::High, path, err);
    let owner = parse_owner(d.owner.as_ref(), path, err);
    let defaults = Step::declined(kind.unwrap_or(StepKind::Call), Priority::High, OwnerRule::DealOwner);
    let step = texts(defaults, d.subject, d.body, path, err);
    let step = Step {
        kind: kind?,
        priority: priority?,
        owner: owner?,
        ..step?
    };
    d.enabled.unwrap_or(true).then_some(step)
}

fn parse_kind(s: Option<&str>, path: &str, err: &mut Report<'_>) -> Option<StepKind> {
    match s.unwrap_or("call") {
        "call" => Some(StepKind::Call),
        "task" => Some(StepKind::Task),
        "email" => Some(StepKind::Email),
        other => {
            err(&format!("{path}.kind"), format!("{other:?} is not call, task or email"));
            None
        }
    }
}

fn parse_priority(s: Option<&str>, default: Priority, path: &str, err: &mut Report<'_>) -> Option<Priority> {
    match s {
        None => Some(default),
        Some("low") => Some(Priority::Low),
        Some("normal") => Some(Priority::Normal),
        Some("high") => Some(Priority::High),
        Some(other) => {
            err(
                &format!("{path}.priority"),
                format!("{other:?} is not low, normal or high"),
            );
            None
        }
    }
}

/// A list of one is that user: taking turns with oneself is no rotation.
fn parse_owner(v: Option<&toml::Value>, path: &str, err: &mut Report<'_>) -> Option<OwnerRule> {
    let key = format!("{path}.owner");
    let shape = "expected \"deal\", a CRM user's id or email, or a list of them";
    let user = |v: &toml::Value| match v {
        toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        toml::Value::Integer(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        None => Some(OwnerRule::DealOwner),
        Some(toml::Value::String(s)) if s.trim() == "deal" => Some(OwnerRule::DealOwner),
        Some(toml::Value::Array(list)) => {
            if list.is_empty() {
                err(&key, "the round-robin list is empty".into());
                return None;
            }
            let mut users = Vec::new();
            for (j, v) in list.iter().enumerate() {
                match user(v).filter(|u| u != "deal") {
                    Some(u) => users.push(u),
                    None => err(&format!("{key}[{j}]"), "expected a CRM user's id or email".into()),
                }
            }
            match users.len() {
                n if n < list.len() => None,
                1 => users.pop().map(OwnerRule::User),
                _ => Some(OwnerRule::RoundRobin(users)),
            }
        }
        Some(v) => user(v).map(OwnerRule::User).or_else(|| {
            err(&key, shape.into());
            None
        }),
    }
}

fn texts(
    mut step: Step,
    subject: BTreeMap<String, String>,
    body: BTreeMap<String, String>,
    path: &str,
    err: &mut Report<'_>,
) -> Option<Step> {
    let subject = localized(step.subject, subject, &format!("{path}.subject"), err);
    let body = localized(step.body, body, &format!("{path}.body"), err);
    (step.subject, step.body) = (subject?, body?);
    Some(step)
}

fn localized(
    mut base: Localized,
    given: BTreeMap<String, String>,
    path: &str,
    err: &mut Report<'_>,
) -> Option<Localized> {
    let mut ok = true;
    for (code, text) in given {
        let key = format!("{path}.{code}");
        let Some(lang) = Lang::ALL.into_iter().find(|l| l.code() == code) else {
            err(&key, "unknown language (es, pt-BR, en)".into());
            ok = false;
            continue;
        };
        match Template::parse(&text) {
            Ok(t) => base = base.with(lang, t),
            Err(e) => {
                err(&key, e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(base)
}
