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
