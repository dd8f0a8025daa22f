//! The askama templates' data. Everything is escaped by askama when rendered.

use askama::Template;

use super::i18n::{texts, Texts};
use super::i18n_admin::AdminTexts;
use crate::domain::Lang;

#[derive(Default)]
pub struct FormValues {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub tax_id: String,
    /// The reminder-email consent box was ticked.
    pub email_consent: bool,
}

#[derive(Default)]
pub struct FieldErrors {
    pub name: Option<&'static str>,
    pub email: Option<&'static str>,
    pub phone: Option<&'static str>,
    pub tax_id: Option<&'static str>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.name.is_some() || self.email.is_some() || self.phone.is_some() || self.tax_id.is_some()
    }
}

#[derive(Template)]
#[template(path = "offer.html")]
pub struct OfferPage<'a> {
    pub lang: &'static str,
    pub t: &'static Texts,
    pub slug: &'a str,
    pub offer_title: &'a str,
    pub offer_description: &'a str,
    /// Under the price; blank for none.
    pub price_note: &'a str,
    pub price: String,
    pub ask_tax_id: bool,
    /// The offer's follow-up policy only emails reminders to leads who agreed.
    pub ask_email_consent: bool,
    pub values: FormValues,
    pub errors: FieldErrors,
    pub has_errors: bool,
    /// Attribution carried through the POST as hidden fields.
    pub utm: Vec<(&'static str, String)>,
    /// The guard's token (see `web::forms`).
    pub form_token: String,
    /// Shown above the form when a submit must be confirmed.
    pub notice: Option<&'static str>,
}

/// The resume link's confirm page: what is about to be paid, and a button that POSTs.
#[derive(Template)]
#[template(path = "resume.html")]
pub struct ResumePage<'a> {
    pub lang: &'static str,
    pub t: &'static Texts,
    /// The signed resume token, posted back to `/r/{token}`.
    pub token: &'a str,
    pub offer_title: &'a str,
    pub price: String,
    /// Only the first name: whoever holds the link sees no more of the lead than that.
    pub first_name: Option<&'a str>,
    pub form_token: String,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage<'a> {
    pub lang: &'static str,
    pub kind: &'static str,
    pub title: &'static str,
    pub body: &'static str,
    /// Pending only: what the status script polls, and the no-script "check again" link.
    pub status_url: Option<String>,
    pub check_url: Option<String>,
    pub check_label: &'static str,
    pub offer_label: &'static str,
    pub offer_title: &'a str,
    pub amount_label: &'static str,
    pub amount: String,
    pub reference_label: &'static str,
    pub reference: &'a str,
    pub retry_url: Option<String>,
    pub retry_label: &'static str,
}

/// The unsubscribe link's page: one button that POSTs (link scanners only GET).
#[derive(Template)]
#[template(path = "unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    pub lang: &'static str,
    pub t: &'static Texts,
    pub token: &'a str,
    /// The offer the reminders are about; blank if it is no longer configured.
    pub offer_title: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub lang: &'static str,
    pub title: &'static str,
    pub body: &'static str,
    pub action_url: Option<String>,
    pub action_label: &'static str,
}

impl Message {
    pub fn new(lang: Lang, title: &'static str, body: &'static str) -> Self {
        Self {
            lang: lang.code(),
            title,
            body,
            action_url: None,
            action_label: texts(lang).retry,
        }
    }

    pub fn with_action(mut self, url: String, label: &'static str) -> Self {
        self.action_url = Some(url);
        self.action_label = label;
        self
    }
}

#[derive(Template)]
#[template(path = "sandbox.html")]
pub struct SandboxPage {
    pub lang: &'static str,
    pub t: &'static Texts,
    pub id: String,
    pub description: String,
    pub amount: String,
    pub reference: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub open: bool,
    /// Why the buttons are gone, once the payment is closed.
    pub closed: &'static str,
    pub form_token: String,
}

#[derive(Template)]
#[template(path = "admin_login.html")]
pub struct AdminLogin {
    pub lang: &'static str,
    pub t: &'static AdminTexts,
    /// Why the last try did not sign in, if it did not.
    pub alert: Option<String>,
    /// The session's anti-forgery token, sent back with the form.
    pub csrf: String,
}

pub struct DealRow {
    pub title: String,
    pub person_name: String,
    pub person_email: String,
    pub person_phone: String,
    pub value: String,
    pub stage: String,
    pub status: String,
    pub lost_reason: Option<String>,
    pub updated: String,
}

pub struct TaskRow {
    pub due: String,
    pub subject: String,
    pub body: String,
    /// "call" or "to-do"; empty for tasks from before kinds were kept.
    pub kind: String,
    pub priority: String,
    pub owner: String,
    /// "open" or "done".
    pub status: String,
}

pub struct NoteRow {
    pub at: String,
    pub deal: String,
    pub body: String,
}

pub struct DeadJobRow {
    pub kind: String,
    pub attempts: i32,
    pub error: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub lang: &'static str,
    pub t: &'static AdminTexts,
    /// The IANA name of the zone every time on the page is in.
    pub time_zone: &'static str,
    /// For the sign-out form.
    pub csrf: String,
    pub deals: Vec<DealRow>,
    pub tasks: Vec<TaskRow>,
    pub notes: Vec<NoteRow>,
    pub dead_jobs: Vec<DeadJobRow>,
    pub unapplied: Vec<UnappliedRow>,
    pub after_approval: Vec<AfterApprovalRow>,
    pub unpaid: Vec<UnpaidRow>,
    pub emails: Vec<EmailRow>,
}

/// An attempt not paid (yet), with a button for an operator who knows it was.
pub struct UnpaidRow {
    pub attempt_id: String,
    pub offer: String,
    pub status: String,
    pub amount: String,
    pub name: String,
    pub email: String,
    pub started: String,
}

/// A customer email: sent, failed (retried), or unknown (may have gone out; not resent).
pub struct EmailRow {
    pub at: String,
    pub kind: String,
    pub state: String,
    pub key: String,
    pub error: String,
}

/// An approved payment that was refunded, voided, disputed or paid a second time.
pub struct AfterApprovalRow {
    pub attempt_id: String,
    pub gateway: String,
    pub gateway_ref: String,
    pub paid: String,
    pub standing: String,
    pub refunded: String,
    /// `open, due 2026-…` / `won` / `lost`, or empty.
    pub dispute: String,
    /// The attempt that paid first, when this payment is a second one.
    pub duplicate_of: Option<String>,
    pub updated: String,
}

pub struct UnappliedRow {
    pub gateway: String,
    pub event_id: String,
    pub reference: String,
    pub outcome: String,
    pub received: String,
}
