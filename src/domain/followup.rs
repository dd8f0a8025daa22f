//! Follow-up policy: the steps sales (and the customer's inbox) get after an attempt that
//! did not pay, when they are due, who owns them and what they say.

/// What a step makes: a call or a to-do for sales in the CRM, or an email to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Call,
    Task,
    Email,
}

/// How the CRM ranks a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Normal,
    High,
}

/// What a CRM task is, for the CRM's own type of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Call,
    Todo,
}

/// What becomes of leadgate's open follow-up tasks once the lead has paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseTask {
    /// Marked done (Pipedrive `done`, HubSpot `COMPLETED`, built-in `done`).
    Complete,
    /// Removed from the CRM.
    Delete,
}

mod hours;
mod template;
#[cfg(test)]
mod tests;
pub mod texts;

use std::time::Duration;

use super::Lang;
pub use hours::{BusinessHours, HoursError};
pub use template::{Template, TemplateError, Var};

/// An offer's follow-up policy: what happens after an attempt that did not pay.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Abandoned-checkout steps, sorted by `after`; empty means none.
    pub steps: Vec<Step>,
    /// Opened at once on a decline (its `after` is ignored); `None` means no decline follow-up.
    pub declined: Option<Step>,
    /// When tasks may fall due; a due time outside them moves to the next opening.
    pub hours: BusinessHours,
    pub close_tasks: CloseTask,
    pub after_last_step: AfterLastStep,
    /// A payment confirmation email to the customer once the payment is approved.
    pub receipt_email: bool,
    pub email_consent: ConsentRule,
}

/// Where the deal goes once the last step has fallen due without a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLastStep {
    Stay,
    /// That open stage of the offer's pipeline (e.g. "Abandoned").
    Stage(String),
}

/// Whether recovery emails (marketing, to the customer) need the lead's consent.
/// Receipts are transactional and are sent either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRule {
    NotRequired,
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// After the attempt's creation; the due time then waits for business hours.
    pub after: Duration,
    pub kind: StepKind,
    pub priority: Priority,
    pub owner: OwnerRule,
    pub subject: Localized,
    pub body: Localized,
}

/// Who a step's task is assigned to. Strings are CRM user ids or emails as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRule {
    DealOwner,
    User(String),
    /// Each new task to the next of these, in turn.
    RoundRobin(Vec<String>),
}

/// One template per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized {
    /// Indexed by `Lang as usize`, in `Lang::ALL` order.
    by_lang: [Template; 3],
}

impl Localized {
    pub fn from_fn(mut f: impl FnMut(Lang) -> Template) -> Self {
        Localized {
            by_lang: Lang::ALL.map(&mut f),
        }
    }

    pub fn get(&self, lang: Lang) -> &Template {
        &self.by_lang[lang as usize]
    }

    /// This text with `lang`'s template replaced.
    pub fn with(mut self, lang: Lang, t: Template) -> Self {
        self.by_lang[lang as usize] = t;
        self
    }
}

impl Step {
    /// An abandoned-checkout step with the built-in texts of its kind.
    pub fn new(after: Duration, kind: StepKind, priority: Priority, owner: OwnerRule) -> Step {
        Step {
            after,
            kind,
            priority,
            owner,
            subject: texts::step_subject(kind).clone(),
            body: texts::step_body(kind).clone(),
        }
    }

    /// The decline's step with its built-in texts: a call or task gets the decline's wording,
    /// an email the abandoned-checkout email (the customer is not told "declined" twice).
    pub fn declined(kind: StepKind, priority: Priority, owner: OwnerRule) -> Step {
        let mut step = Step::new(Duration::ZERO, kind, priority, owner);
        if kind != StepKind::Email {
            step.subject = texts::declined_subject().clone();
            step.body = texts::declined_body().clone();
        }
        step
    }
}

impl Policy {
    /// Some step or the receipt emails the customer.
    pub fn sends_email(&self) -> bool {
        self.receipt_email
            || self
                .steps
                .iter()
                .chain(self.declined.as_ref())
                .any(|s| s.kind == StepKind::Email)
    }

    /// The form asks for consent to reminder emails: the policy sends some and needs it.
    pub fn asks_email_consent(&self) -> bool {
        self.email_consent == ConsentRule::Required
            && self
                .steps
                .iter()
                .chain(self.declined.as_ref())
                .any(|s| s.kind == StepKind::Email)
    }

    /// The legacy `followup_delays` shape: a Normal call to the deal's owner per delay, a High
    /// call on a decline, at any hour.
    pub fn default_for(delays: &[Duration]) -> Policy {
        let mut steps: Vec<Step> = delays
            .iter()
            .map(|d| Step::new(*d, StepKind::Call, Priority::Normal, OwnerRule::DealOwner))
            .collect();
        steps.sort_by_key(|s| s.after);
        Policy {
            steps,
            declined: Some(Step::declined(StepKind::Call, Priority::High, OwnerRule::DealOwner)),
            hours: BusinessHours::always(),
            close_tasks: CloseTask::Complete,
            after_last_step: AfterLastStep::Stay,
            receipt_email: false,
            email_consent: ConsentRule::NotRequired,
        }
    }
}
