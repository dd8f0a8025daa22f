//! The askama templates' data. Everything is escaped by askama when rendered.

use askama::Template;

use super::i18n::{texts, Texts};
use super::i18n_admin::AdminTexts;
use crate::domain::payment_link::LinkState;
use crate::domain::Lang;

#[derive(Default)]
pub struct FormValues {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub tax_id: String,
    /// The reminder-email consent box was ticked.
    pub email_consent: bool,
    /// The offer's consent box was ticked.
    pub consent: bool,
}

#[derive(Default)]
pub struct FieldErrors {
    pub name: Option<&'static str>,
    pub email: Option<&'static str>,
    pub phone: Option<&'static str>,
    /// A country value not on the list.
    pub phone_country: Option<&'static str>,
    pub tax_id: Option<&'static str>,
    pub consent: Option<&'static str>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.name.is_some()
            || self.email.is_some()
            || self.phone.is_some()
            || self.phone_country.is_some()
            || self.tax_id.is_some()
            || self.consent.is_some()
    }
}

/// Who sells and the offer's consent, for the seller partials (`_seller_header.html`,
/// `_seller_footer.html`) and the form's consent box.
pub struct TrustView<'a> {
    pub seller_name: Option<&'a str>,
    pub logo: Option<&'a str>,
    pub logo_alt: &'a str,
    pub privacy_url: Option<&'a str>,
    pub privacy_label: &'static str,
    pub terms_url: Option<&'a str>,
    pub terms_label: &'static str,
    pub consent_text: Option<&'a str>,
    pub consent_required: bool,
}

impl<'a> TrustView<'a> {
    pub fn new(offer: &'a crate::domain::offer::Offer, lang: Lang) -> Self {
        let t = texts(lang);
        let s = &offer.trust.seller;
        TrustView {
            seller_name: s.name.as_deref(),
            logo: s.logo.as_deref().map(|l| l.path.as_str()),
            logo_alt: s.name.as_deref().unwrap_or(t.seller_logo),
            privacy_url: s.privacy_url.as_ref().map(|u| u.as_str()),
            privacy_label: t.privacy,
            terms_url: s.terms_url.as_ref().map(|u| u.as_str()),
            terms_label: t.terms,
            consent_text: offer.trust.consent.as_ref().map(|c| c.text.get(lang)),
            consent_required: offer.trust.consent.as_ref().is_some_and(|c| c.required),
        }
    }

    /// For a page whose offer is gone from the configuration.
    pub fn none(lang: Lang) -> Self {
        let t = texts(lang);
        TrustView {
            seller_name: None,
            logo: None,
            logo_alt: t.seller_logo,
            privacy_url: None,
            privacy_label: t.privacy,
            terms_url: None,
            terms_label: t.terms,
            consent_text: None,
            consent_required: false,
        }
    }
}

impl FieldErrors {
    /// In form order: the summary at the top of a refused form links to each field.
    pub fn summary(&self, t: &Texts) -> Vec<FieldError> {
        [
            ("name", t.name, self.name),
            ("email", t.email, self.email),
            ("phone_country", t.phone_country, self.phone_country),
            ("phone", t.phone, self.phone),
            ("tax_id", t.tax_id, self.tax_id),
            ("consent", t.consent_summary, self.consent),
        ]
        .into_iter()
        .filter_map(|(id, label, message)| message.map(|message| FieldError { id, label, message }))
        .collect()
    }
}

/// One line of the error summary: the field's id (its link target), label and message.
pub struct FieldError {
    pub id: &'static str,
    pub label: &'static str,
    pub message: &'static str,
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
    pub trust: TrustView<'a>,
    pub values: FormValues,
    pub errors: FieldErrors,
    /// What the summary lists; the page title counts them ("2 errores: …"), so a screen
    /// reader hears both before anything else.
    pub error_summary: Vec<FieldError>,
    /// The phone country selector, the selected value, and its example for the hint.
    /// (The options are markup escaped once per language: see `phone_field`.)
    pub phone_options: super::phone_field::OptionsHtml,
    pub phone_example: &'static str,
    /// Attribution carried through the POST as hidden fields.
    pub utm: Vec<(&'static str, String)>,
    /// The guard's token (see `web::forms`).
    pub form_token: String,
    /// Shown above the form when a submit must be confirmed.
    pub notice: Option<&'static str>,
    /// Framed (`?embed=1`): the parent origins `frame.js` may answer, space-separated.
    pub embed: Option<String>,
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

/// A payment link's page: the seller, what it pays and until when, and a button that POSTs
/// (or why it cannot be paid any more).
#[derive(Template)]
#[template(path = "payment_link.html")]
pub struct LinkPage<'a> {
    pub lang: &'static str,
    pub t: &'static Texts,
    /// The signed link token, posted back to `/l/{token}`.
    pub token: &'a str,
    pub offer_title: &'a str,
    pub offer_description: &'a str,
    pub price: String,
    pub valid_until: String,
    pub first_name: Option<&'a str>,
    pub state: crate::domain::payment_link::LinkState,
    /// Pending only: the return page that shows where the payment stands.
    pub status_url: Option<String>,
    pub form_token: String,
    pub notice: Option<&'static str>,
    pub trust: TrustView<'a>,
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
    pub trust: TrustView<'a>,
    /// Paid only: the offer's `continue_url`.
    pub continue_url: Option<&'a str>,
    pub continue_label: &'static str,
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
    /// The lead's UTMs, click ids and referrer, and the offer consent it gave.
    pub attribution: String,
    pub consent: String,
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

/// A failing outbound event delivery on `/admin`.
pub struct EventDeliveryRow {
    pub id: String,
    pub at: String,
    pub endpoint: String,
    pub kind: String,
    pub event_id: String,
    pub state: String,
    pub dead: bool,
    pub attempts: i32,
    pub error: String,
}

/// A CRM webhook (a deal entering the payment-link stage) and what became of it.
pub struct CrmEventRow {
    pub at: String,
    pub crm: String,
    pub event_id: String,
    /// Empty while its job has not run yet.
    pub outcome: String,
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
    pub deliveries: Vec<EventDeliveryRow>,
    pub crm_events: Vec<CrmEventRow>,
    /// Each offer's link, snippet and live preview (`admin_embed.html`).
    pub embeds: Vec<super::embed::EmbedRow>,
    /// Payment links and API tokens (`admin_links.html`).
    pub links: super::admin_links::Section,
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
