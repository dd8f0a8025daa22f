//! The `[followup]` table and each offer's `[offers.followup]`: the follow-up policy.
//!
//! ```toml
//! [followup]                         # the default policy of every offer
//! timezone = "America/Bogota"        # IANA name; default "UTC"
//! days = ["mon","tue","wed","thu","fri"]   # open weekdays; default all seven
//! hours = "09:00-18:00"              # default all day ("00:00-24:00"); opens before it closes
//! holidays = ["2026-12-25"]          # local dates, closed all day
//! close_tasks = "complete"           # or "delete": open follow-up tasks once the lead paid
//! after_last_step = "stay"           # or "stage:<open stage name>", once the last step is due
//! receipt_email = false              # payment confirmation email to the customer
//! email_consent = "not_required"     # or "required": recovery emails only to leads who consented
//!
//! [[followup.steps]]                 # default: one call 30 minutes after the attempt
//! after = "30m"                      # after the attempt started; then waits for business hours
//! kind = "call"                      # call (default) | task | email (to the customer)
//! priority = "normal"                # low | normal (default) | high
//! owner = "deal"                     # "deal" (default: the deal's owner), a CRM user's id or
//!                                    # email, or a list of them taking turns
//! subject.es = "Llamar a {name}"     # per language (es, pt-BR, en); a missing one is the
//! body.en = "..."                    # built-in text of the step's kind
//!
//! [followup.declined]                # the step a decline opens at once (default: a high call)
//! enabled = true                     # false: no decline follow-up
//! kind = "call"
//! priority = "high"
//! owner = "deal"
//! subject.pt-BR = "..."
//!
//! [[offers]]
//! followup_delays = ["30m","24h"]    # legacy: call steps at these delays; not with followup.steps
//! [offers.followup]                  # any key above, for this offer; `steps`, `declined` and
//!                                    # `holidays` replace the default's whole value
//! ```
//!
//! Texts take the placeholders of `Var::ALL`: {name} {first_name} {email} {phone} {tel_link}
//! {whatsapp_link} {offer} {amount} {status} {reason} {attempts} {history} {ago} {utm_source}
//! {utm_campaign} {resume_link}; `{{` and `}}` write literal braces. A decline's call or task
//! defaults to the decline's wording; a decline's email to the abandoned-checkout email.

use std::time::Duration;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::followup::{AfterLastStep, BusinessHours, CloseTask, ConsentRule, Policy, Step};

mod steps;
#[cfg(test)]
mod tests;

use steps::{declined, step, RawDeclined, RawStep, Report};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFollowup {
    timezone: Option<String>,
    days: Option<Vec<String>>,
    hours: Option<String>,
    holidays: Option<Vec<String>>,
    close_tasks: Option<String>,
    after_last_step: Option<String>,
    receipt_email: Option<bool>,
    email_consent: Option<String>,
    steps: Option<Vec<RawStep>>,
    declined: Option<RawDeclined>,
}

impl RawFollowup {
    pub(super) fn has_steps(&self) -> bool {
        self.steps.is_some()
    }
}

/// `[followup]` parsed, before an offer's own table goes over it. A setting that failed
/// keeps its default, so only the table that holds it reports it.
#[derive(Debug, Clone)]
pub(super) struct Base {
    tz: Tz,
    days: Vec<Weekday>,
    open: u16,
    close: u16,
    holidays: Vec<NaiveDate>,
    close_tasks: CloseTask,
    after_last_step: AfterLastStep,
    receipt_email: bool,
    email_consent: ConsentRule,
    /// `None`: not configured, so the legacy default (a call after 30 minutes) applies.
    steps: Option<Vec<Step>>,
    declined: Option<Step>,
}

impl Base {
    /// `[followup] timezone`: where the business is, so also the admin pages' default.
    pub(super) fn tz(&self) -> Tz {
        self.tz
    }
}

impl Default for Base {
    fn default() -> Self {
        let legacy = Policy::default_for(&[]);
        Base {
            tz: Tz::UTC,
            days: WEEK.iter().map(|(_, d)| *d).collect(),
            open: 0,
            close: 24 * 60,
            holidays: Vec::new(),
            close_tasks: legacy.close_tasks,
            after_last_step: legacy.after_last_step,
            receipt_email: legacy.receipt_email,
            email_consent: legacy.email_consent,
            steps: None,
            declined: legacy.declined,
        }
    }
}

const WEEK: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// What an offer gets when nothing says otherwise, as before policies existed.
const DEFAULT_DELAY: Duration = Duration::from_secs(30 * 60);

/// `[followup]`, errors named `followup.<key>`.
pub(super) fn base(raw: Option<RawFollowup>, errs: &mut Vec<String>) -> Base {
    match raw {
        Some(raw) => overlay(Base::default(), raw, "followup", errs),
        None => Base::default(),
    }
}

/// An offer's policy: its `followup` table over `base`, or its legacy `followup_delays`.
/// Errors are named from the offer (`followup.steps[0].after`, `followup_delays[1]`).
pub(super) fn policy(
    base: &Base,
    raw: Option<RawFollowup>,
    delays: Option<Vec<String>>,
    errs: &mut Vec<String>,
) -> Policy {
    let raw = raw.unwrap_or_default();
    if raw.steps.is_some() && delays.is_some() {
        errs.push("followup_delays: cannot be combined with followup.steps (move the delays into the steps)".into());
    }
    let own_steps = raw.steps.is_some();
    let mut b = overlay(base.clone(), raw, "followup", errs);
    if let (false, Some(delays)) = (own_steps, delays) {
        b.steps = Some(legacy_steps(&delays, errs));
    }
    let hours = BusinessHours::new(b.tz, &b.days, b.open, b.close, b.holidays).unwrap_or_else(|e| {
        // Unreachable after `overlay`'s checks; reported rather than trusted.
        errs.push(format!("followup.hours: {e}"));
        BusinessHours::always()
    });
    Policy {
        steps: b.steps.unwrap_or_else(|| Policy::default_for(&[DEFAULT_DELAY]).steps),
        declined: b.declined,
        hours,
        close_tasks: b.close_tasks,
        after_last_step: b.after_last_step,
        receipt_email: b.receipt_email,
        email_consent: b.email_consent,
    }
}

fn legacy_steps(delays: &[String], errs: &mut Vec<String>) -> Vec<Step> {
    let mut parsed = Vec::new();
    for (j, d) in delays.iter().enumerate() {
        match humantime::parse_duration(d) {
            Ok(d) => parsed.push(d),
            Err(e) => errs.push(format!("followup_delays[{j}]: {e} (examples: \"30m\", \"24h\")")),
        }
    }
    Policy::default_for(&parsed).steps
}

fn overlay(mut b: Base, raw: RawFollowup, path: &str, errs: &mut Vec<String>) -> Base {
    let mut err = |key: &str, msg: String| errs.push(format!("{path}.{key}: {msg}"));
    if let Some(s) = raw.timezone {
        match s.parse::<Tz>() {
            Ok(tz) => b.tz = tz,
            Err(_) => err(
                "timezone",
                format!("{s:?} is not an IANA time zone such as \"America/Bogota\""),
            ),
        }
    }
    if let Some(days) = raw.days {
        if let Some(parsed) = parse_days(&days, &mut err) {
            b.days = parsed;
        }
    }
    if let Some(s) = raw.hours {
        match parse_hours(&s) {
            Ok((open, close)) => (b.open, b.close) = (open, close),
            Err(msg) => err("hours", msg),
        }
    }
    if let Some(holidays) = raw.holidays {
        let mut parsed = Vec::new();
        for (j, s) in holidays.iter().enumerate() {
            match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                Ok(d) => parsed.push(d),
                Err(_) => err(
                    &format!("holidays[{j}]"),
                    format!("{s:?} is not a date such as \"2026-12-25\""),
                ),
            }
        }
        b.holidays = parsed;
    }
    if let Some(s) = raw.close_tasks {
        match s.as_str() {
            "complete" => b.close_tasks = CloseTask::Complete,
            "delete" => b.close_tasks = CloseTask::Delete,
            _ => err("close_tasks", format!("{s:?} is not \"complete\" or \"delete\"")),
        }
    }
    if let Some(s) = raw.after_last_step {
        match parse_after_last_step(&s) {
            Ok(a) => b.after_last_step = a,
            Err(msg) => err("after_last_step", msg),
        }
    }
    if let Some(v) = raw.receipt_email {
        b.receipt_email = v;
    }
    if let Some(s) = raw.email_consent {
        match s.as_str() {
            "not_required" => b.email_consent = ConsentRule::NotRequired,
            "required" => b.email_consent = ConsentRule::Required,
            _ => err(
                "email_consent",
                format!("{s:?} is not \"not_required\" or \"required\""),
            ),
        }
    }
    if let Some(steps) = raw.steps {
        let mut parsed: Vec<Step> = steps
            .into_iter()
            .enumerate()
            .filter_map(|(j, s)| step(s, &format!("steps[{j}]"), &mut err))
            .collect();
        parsed.sort_by_key(|s| s.after);
        b.steps = Some(parsed);
    }
    if let Some(d) = raw.declined {
        b.declined = declined(d, &mut err);
    }
    b
}
fn parse_days(days: &[String], err: &mut Report<'_>) -> Option<Vec<Weekday>> {
    if days.is_empty() {
        err("days", "at least one day must be open".into());
        return None;
    }
    let mut parsed = Vec::new();
    for (j, s) in days.iter().enumerate() {
        match WEEK.iter().find(|(name, _)| name.eq_ignore_ascii_case(s.trim())) {
            Some((_, d)) => parsed.push(*d),
            None => err(
                &format!("days[{j}]"),
                format!("{s:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"),
            ),
        }
    }
    (parsed.len() == days.len()).then_some(parsed)
}

/// `HH:MM-HH:MM` as minutes after midnight; `24:00` closes at midnight.
fn parse_hours(s: &str) -> Result<(u16, u16), String> {
    let shape = || format!("{s:?} is not HH:MM-HH:MM such as \"09:00-18:00\"");
    let (open, close) = s.split_once('-').ok_or_else(shape)?;
    let (open, close) = (clock(open).ok_or_else(shape)?, clock(close).ok_or_else(shape)?);
    if open >= close {
        return Err(format!(
            "{s:?} opens at or after it closes (overnight hours are not supported)"
        ));
    }
    Ok((open, close))
}

fn clock(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let digits =
        |x: &str, n: std::ops::RangeInclusive<usize>| n.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let ok = (h < 24 && m < 60) || (h == 24 && m == 0);
    ok.then_some(h * 60 + m)
}

fn parse_after_last_step(s: &str) -> Result<AfterLastStep, String> {
    match s.trim() {
        "stay" => Ok(AfterLastStep::Stay),
        other => match other.strip_prefix("stage:").map(str::trim) {
            Some("") => Err("the stage name is empty (e.g. \"stage:Abandoned\")".into()),
            Some(stage) => Ok(AfterLastStep::Stage(stage.to_owned())),
            None => Err(format!("{s:?} is not \"stay\" or \"stage:<open stage name>\"")),
        },
    }
}
