//! The offer form (`/c/{offer}`) and resume links (`/r/{token}`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use validator::Validate;

use super::i18n::CONSENT_REQUIRED;
use super::i18n::{texts, Texts};
use super::pages::{FieldErrors, FormValues, Message, OfferPage, ResumePage, TrustView};
use super::{forms, lang_of, phone_field, render, see_other, PageError, PageErrorKind};
use crate::context::AppContext;
use crate::domain::edge;
use crate::domain::lead::{ConsentGiven, Contact, Lead, Utm};
use crate::domain::offer::Offer;
use crate::domain::phone_region::{PhoneCountry, UnlistedRegion};
use crate::domain::{ContactError, Email, Lang, PersonName, Phone, TaxId};
use crate::flows::checkout::{self as flow, CheckoutError, NotOpened, Outcome, Submission};
use crate::links;
use crate::store::leads;

/// Raw fields as posted (or given in the query string for prefill). The length caps are
/// a first gate against absurd input; the domain types do the real parsing.
#[derive(Debug, Default, Deserialize, Validate)]
pub struct CheckoutForm {
    #[serde(default)]
    #[validate(length(max = 200))]
    name: String,
    #[serde(default)]
    #[validate(length(max = 254))]
    email: String,
    #[serde(default)]
    #[validate(length(max = 64))]
    phone: String,
    /// The country selector beside the phone field (a region code or `other`).
    phone_country: Option<String>,
    #[serde(default)]
    #[validate(length(max = 64))]
    tax_id: String,
    lang: Option<String>,
    /// The reminder-email consent checkbox (`yes` when ticked).
    email_consent: Option<String>,
    /// The guard's fields (see `web::forms`).
    form_token: Option<String>,
    website: Option<String>,
    #[validate(length(max = 200))]
    utm_source: Option<String>,
    #[validate(length(max = 200))]
    utm_medium: Option<String>,
    #[validate(length(max = 200))]
    utm_campaign: Option<String>,
    #[validate(length(max = 200))]
    utm_term: Option<String>,
    #[validate(length(max = 200))]
    utm_content: Option<String>,
    /// Ad click ids and the page the visitor came from (the embed script passes them).
    gclid: Option<String>,
    fbclid: Option<String>,
    referrer: Option<String>,
    /// The offer's consent checkbox (`yes` when ticked).
    consent: Option<String>,
}

/// Click ids are about 100 characters; a referrer is a URL, kept to a useful length.
const CLICK_ID_MAX: usize = 200;
const REFERRER_MAX: usize = 500;

/// An http(s) URL without credentials or fragment, cut to `REFERRER_MAX`; anything else
/// is no referrer.
fn clean_referrer(raw: &str) -> Option<String> {
    let mut u = url::Url::parse(raw.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Some(edge::storable(u.as_str()).chars().take(REFERRER_MAX).collect())
}

impl CheckoutForm {
    fn utm(&self) -> Utm {
        let clean = |v: &Option<String>| {
            v.as_deref()
                // PostgreSQL's TEXT cannot hold NUL; a campaign name is no reason to fail a lead.
                .map(|s| {
                    crate::domain::edge::storable(s.trim())
                        .chars()
                        .take(CLICK_ID_MAX)
                        .collect::<String>()
                })
                .filter(|s| !s.is_empty())
        };
        Utm {
            source: clean(&self.utm_source),
            medium: clean(&self.utm_medium),
            campaign: clean(&self.utm_campaign),
            term: clean(&self.utm_term),
            content: clean(&self.utm_content),
            gclid: clean(&self.gclid),
            fbclid: clean(&self.fbclid),
            referrer: self.referrer.as_deref().and_then(clean_referrer),
        }
    }

    /// The GET's attribution: without a `referrer` in the query, the page that linked
    /// here, when it is not one of ours (our own pages say nothing about the campaign).
    fn utm_of_visit(&self, ctx: &AppContext, req: &HttpRequest) -> Utm {
        let mut utm = self.utm();
        if utm.referrer.is_none() {
            utm.referrer = req
                .headers()
                .get(actix_web::http::header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(clean_referrer)
                .filter(|r| {
                    // Parsed only when there is a referrer to compare: most visits have none.
                    let ours = url::Url::parse(&ctx.url("/")).ok().map(|u| u.origin());
                    url::Url::parse(r).ok().map(|u| u.origin()) != ours
                });
        }
        utm
    }

    fn values(&self) -> FormValues {
        let cap = |s: &str, n: usize| s.chars().take(n).collect();
        FormValues {
            name: cap(&self.name, 200),
            email: cap(&self.email, 254),
            phone: cap(&self.phone, 64),
            tax_id: cap(&self.tax_id, 64),
            email_consent: self.email_consent.is_some(),
            consent: self.consent.is_some(),
        }
    }

    /// The phone country as sent, if it was (empty counts as not sent).
    fn chosen_country(&self) -> Option<Result<PhoneCountry, UnlistedRegion>> {
        let s = self.phone_country.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        Some(PhoneCountry::parse(s))
    }

    /// The selection a page shows: what was sent (or prefilled), else the default.
    fn shown_country(&self, req: &HttpRequest, offer: &Offer) -> PhoneCountry {
        match self.chosen_country() {
            Some(Ok(c)) => c,
            _ => default_country(req, offer),
        }
    }

    /// Parses every field, collecting one localized message per bad field. Public for
    /// the fuzz target (`tools/fuzz`).
    pub fn parse(&self, offer: &Offer, t: &Texts) -> Result<Contact, FieldErrors> {
        let too_long = self.validate().err();
        let long = |field: &str| too_long.as_ref().is_some_and(|e| e.field_errors().contains_key(field));
        let msg = |field: &str, r: Result<(), ContactError>| match r {
            _ if long(field) => Some(t.error(ContactError::TooLong.code())),
            Err(e) => Some(t.error(e.code())),
            Ok(()) => None,
        };
        let name = PersonName::parse(&self.name);
        let email = Email::parse(&self.email);
        let country = self.chosen_country();
        let phone = match &country {
            Some(Ok(c)) => Phone::parse(&self.phone, c.region().map(|r| r.code())),
            // A client that never showed the selector reads numbers as before: in the
            // offer's region. A tampered value is the selector's own error.
            None | Some(Err(_)) => Phone::parse(&self.phone, Some(&offer.phone_region)),
        };
        let needs_plus = matches!(country, Some(Ok(PhoneCountry::Other)))
            && phone == Err(ContactError::InvalidPhone)
            && !self.phone.trim_start().starts_with('+');
        let tax_id = offer.ask_tax_id.then(|| TaxId::parse(&self.tax_id));
        let errors = FieldErrors {
            name: msg("name", name.as_ref().map(|_| ()).map_err(|e| *e)),
            email: msg("email", email.as_ref().map(|_| ()).map_err(|e| *e)),
            phone: match msg("phone", phone.as_ref().map(|_| ()).map_err(|e| *e)) {
                Some(_) if needs_plus => Some(t.phone_needs_plus),
                m => m,
            },
            phone_country: matches!(country, Some(Err(_))).then_some(t.phone_country_invalid),
            tax_id: match &tax_id {
                Some(r) => msg("tax_id", r.as_ref().map(|_| ()).map_err(|e| *e)),
                None => None,
            },
            consent: offer
                .trust
                .consent
                .as_ref()
                .filter(|c| c.required && self.consent.is_none())
                .map(|_| t.error(CONSENT_REQUIRED)),
        };
        match (name, email, phone, tax_id.transpose()) {
            (Ok(name), Ok(email), Ok(phone), Ok(tax_id)) if !errors.any() => Ok(Contact {
                name,
                email,
                phone,
                tax_id,
            }),
            _ => Err(errors),
        }
    }
}

fn find_offer<'a>(ctx: &'a AppContext, slug: &str, lang: Lang) -> Result<&'a Offer, PageError> {
    ctx.offer(slug).ok_or(PageError::new(lang, PageErrorKind::NotFound))
}

/// What a served form carries besides the customer's values.
struct Served {
    form_token: String,
    notice: Option<&'static str>,
}

fn purpose(offer: &Offer) -> String {
    format!("c/{}", offer.slug)
}

/// The phone country a fresh form preselects: the browser's region, else the offer's.
fn default_country(req: &HttpRequest, offer: &Offer) -> PhoneCountry {
    let header = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    PhoneCountry::default_for(header, &offer.phone_region)
}

fn form_page<'a>(
    offer: &'a Offer,
    lang: Lang,
    values: FormValues,
    phone_country: PhoneCountry,
    errors: FieldErrors,
    utm: &Utm,
    served: Served,
) -> OfferPage<'a> {
    let utm = utm.named().into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    let error_summary = errors.summary(texts(lang));
    OfferPage {
        lang: lang.code(),
        t: texts(lang),
        slug: offer.slug.as_str(),
        offer_title: offer.title.get(lang),
        offer_description: offer.description.get(lang),
        price_note: offer.price_note.get(lang),
        price: offer.price.format(lang),
        ask_tax_id: offer.ask_tax_id,
        ask_email_consent: offer.followup.asks_email_consent(),
        error_summary,
        phone_options: phone_field::OptionsHtml::new(lang, phone_country),
        phone_example: phone_field::example(lang, phone_country),
        trust: TrustView::new(offer, lang),
        values,
        errors,
        utm,
        form_token: served.form_token,
        notice: served.notice,
        embed: None,
    }
}

/// `GET /c/{offer}`: the form, prefilled from the query string.
pub async fn show(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lang = lang_of(&req);
    let offer = find_offer(&ctx, &path, lang)?;
    // A malformed query string only loses the prefill, never the page.
    let q = web::Query::<CheckoutForm>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let issued = forms::issue(&ctx, &req, &purpose(offer), None);
    let served = Served {
        form_token: issued.token.clone(),
        notice: None,
    };
    let utm = q.utm_of_visit(&ctx, &req);
    // Consent is the customer's own tick, never a link's.
    let values = FormValues {
        consent: false,
        ..q.values()
    };
    // A prefill link's `phone_country` wins; a bad one only loses the prefill.
    let country = q.shown_country(&req, offer);
    let mut page = form_page(offer, lang, values, country, FieldErrors::default(), &utm, served);
    page.embed = super::embed::requested(req.query_string()).then(|| offer.embed_origins.join(" "));
    Ok(issued.attach(render(&page)))
}

/// `POST /c/{offer}`: store the lead, then 303 to the gateway's hosted checkout.
pub async fn submit(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CheckoutForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = ctx.into_inner();
    let form = form.into_inner();
    let lang = form
        .lang
        .as_deref()
        .and_then(Lang::from_code)
        .unwrap_or_else(|| lang_of(&req));
    let offer = find_offer(&ctx, &path, lang)?;
    let ip = ctx.client_ip(&req);
    if let Err(wait) = ctx.limits.submit_per_ip.check(&ip) {
        ctx.metrics.refused("submit", "rate_limited");
        tracing::warn!(%ip, "offer submits from one address over the limit");
        return Err(PageError::too_many(lang, wait));
    }
    let t = texts(lang);
    let guard = forms::check(
        &ctx,
        &req,
        &purpose(offer),
        form.form_token.as_deref(),
        form.website.as_deref(),
        ctx.settings.forms.min_fill_time,
    );
    if let Err(suspect) = guard {
        // Nothing is stored and nothing reaches the CRM; a person just presses again.
        ctx.metrics.refused("submit", suspect.reason());
        tracing::info!(offer = %offer.slug, reason = suspect.reason(), "offer submit sent back to confirm");
        let issued = forms::issue(&ctx, &req, &purpose(offer), forms::served_at(suspect));
        let served = Served {
            form_token: issued.token.clone(),
            notice: Some(t.confirm_again),
        };
        let country = form.shown_country(&req, offer);
        let page = form_page(
            offer,
            lang,
            form.values(),
            country,
            FieldErrors::default(),
            &form.utm(),
            served,
        );
        let mut res = issued.attach(render(&page));
        *res.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
        return Ok(res);
    }
    let contact = match form.parse(offer, t) {
        Ok(c) => c,
        Err(errors) => {
            let served = Served {
                form_token: form.form_token.clone().unwrap_or_default(),
                notice: None,
            };
            let country = form.shown_country(&req, offer);
            let mut res = render(&form_page(
                offer,
                lang,
                form.values(),
                country,
                errors,
                &form.utm(),
                served,
            ));
            *res.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(res);
        }
    };
    // Counted only for submits that would reach the CRM, so junk cannot use up the
    // offer's budget for real customers.
    if let Err(wait) = ctx.limits.submit_per_offer.check(&offer.slug.to_string()) {
        ctx.metrics.refused("submit", "offer_rate_limited");
        tracing::warn!(offer = %offer.slug, "offer submits over the offer's limit");
        return Err(PageError::too_many(lang, wait));
    }
    let sub = Submission {
        contact,
        lang,
        utm: form.utm(),
        consent: offer
            .trust
            .consent
            .as_ref()
            .filter(|_| form.consent.is_some())
            .map(|c| ConsentGiven {
                version: c.version.clone(),
                lang,
                at: ctx.clock.now_ms(),
            }),
        email_consent: offer.followup.asks_email_consent() && form.email_consent.is_some(),
    };
    let receipt = ctx.sends_receipt(offer);
    checkout_response(&ctx, lang, receipt, flow::submit(&ctx, offer, sub).await)
}

/// The guard's fields on the resume confirm page (see `web::forms`).
#[derive(Debug, Default, Deserialize)]
pub struct ResumeForm {
    form_token: Option<String>,
    website: Option<String>,
}

impl ResumeForm {
    /// Whether the one button of a page (`what`: resume, payment link) was pressed on our
    /// page; a refusal is counted and logged. A person looks at the page before pressing,
    /// however briefly: no minimum fill time.
    pub(super) fn pressed(&self, ctx: &AppContext, req: &HttpRequest, purpose: &str, what: &'static str) -> bool {
        let guard = forms::check(
            ctx,
            req,
            purpose,
            self.form_token.as_deref(),
            self.website.as_deref(),
            Duration::ZERO,
        );
        match guard {
            Ok(()) => true,
            Err(suspect) => {
                ctx.metrics.refused(what, suspect.reason());
                tracing::info!(what, reason = suspect.reason(), "press sent back to confirm");
                false
            }
        }
    }
}

fn resume_purpose(lead: &Lead) -> String {
    format!("r/{}", lead.id)
}

/// The lead and offer a resume token names, or why the link does not work.
async fn resumable<'a>(ctx: &'a AppContext, req: &HttpRequest, token: &str) -> Result<(Lead, &'a Offer), PageError> {
    let lang = lang_of(req);
    // Garbage is no link at all; a token-shaped one that fails its signature has expired
    // or been altered, which the customer is told.
    if !edge::resume_token_shaped(token) {
        return Err(PageError::new(lang, PageErrorKind::NotFound));
    }
    let invalid = || PageError::new(lang, PageErrorKind::LinkInvalid);
    let claims = links::verify_resume(ctx, token).map_err(|_| invalid())?;
    let lead = leads::get(&ctx.db, &claims.lead_id)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?
        .ok_or_else(invalid)?;
    let offer = ctx.offer(&claims.offer).ok_or_else(invalid)?;
    Ok((lead, offer))
}

/// A payment link's lead resumes on the link's page (its amount, its deal): a 303 there.
async fn link_page(ctx: &AppContext, req: &HttpRequest, lead: &Lead) -> Result<Option<HttpResponse>, PageError> {
    let lang = resume_lang(req, lead);
    let page = crate::flows::payment_link::page_of_lead(ctx, &lead.id)
        .await
        .map_err(|e| PageError::unavailable(lang, e))?;
    Ok(page.map(|url| see_other(&format!("{url}?lang={}", lang.code()))))
}

/// A link we made says which language it was followed in; else the lead's own.
fn resume_lang(req: &HttpRequest, lead: &Lead) -> Lang {
    super::explicit_lang(req).unwrap_or(lead.lang)
}

/// The confirm page with a fresh form token.
fn resume_page_for(
    ctx: &AppContext,
    req: &HttpRequest,
    token: &str,
    lead: &Lead,
    offer: &Offer,
    notice: Option<&'static str>,
) -> HttpResponse {
    let lang = resume_lang(req, lead);
    let issued = forms::issue(ctx, req, &resume_purpose(lead), None);
    let page = ResumePage {
        lang: lang.code(),
        t: texts(lang),
        token,
        offer_title: offer.title.get(lang),
        price: offer.price.format(lang),
        first_name: lead.contact.name.as_str().split_whitespace().next(),
        form_token: issued.token.clone(),
        notice,
    };
    issued.attach(render(&page))
}

/// `GET /r/{token}`: what the signed link would pay, and a button. Creates nothing: mail
/// scanners and chat previews fetch links like this one.
pub async fn resume_page(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (lead, offer) = resumable(&ctx, &req, &path).await?;
    if let Some(to) = link_page(&ctx, &req, &lead).await? {
        return Ok(to);
    }
    Ok(resume_page_for(&ctx, &req, &path, &lead, offer, None))
}

/// `POST /r/{token}`: the lead's open checkout, or a new attempt for it.
pub async fn resume(
    ctx: web::Data<AppContext>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ResumeForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = ctx.into_inner();
    let (lead, offer) = resumable(&ctx, &req, &path).await?;
    if let Some(to) = link_page(&ctx, &req, &lead).await? {
        return Ok(to);
    }
    if !form.pressed(&ctx, &req, &resume_purpose(&lead), "resume") {
        let notice = Some(texts(resume_lang(&req, &lead)).confirm_again);
        let mut res = resume_page_for(&ctx, &req, &path, &lead, offer, notice);
        *res.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
        return Ok(res);
    }
    let receipt = ctx.sends_receipt(offer);
    let lang = resume_lang(&req, &lead);
    checkout_response(&ctx, lang, receipt, flow::resume(&ctx, offer, &lead).await)
}

pub(super) fn checkout_response(
    ctx: &Arc<AppContext>,
    lang: Lang,
    receipt: bool,
    result: Result<Outcome, CheckoutError>,
) -> Result<HttpResponse, PageError> {
    let t = texts(lang);
    let retry_page = |title, body, lead_id: &str, offer: &str| {
        let mut page = Message::new(lang, title, body);
        if let Ok(token) = links::resume_token(ctx, lead_id, offer) {
            page = page.with_action(format!("/r/{token}?lang={}", lang.code()), t.retry);
        }
        page
    };
    match result {
        Ok(Outcome::Checkout(url)) => Ok(see_other(&url)),
        Ok(Outcome::Pending { return_path }) => Ok(see_other(&return_path)),
        Ok(Outcome::AlreadyPaid) => {
            let body = if receipt {
                t.already_paid_body
            } else {
                t.already_paid_body_no_email
            };
            Ok(render(&Message::new(lang, t.already_paid_title, body)))
        }
        Ok(Outcome::StillOpening { lead_id, offer }) => {
            Ok(render(&retry_page(t.opening_title, t.opening_body, &lead_id, &offer)))
        }
        Err(CheckoutError::NotOpened {
            attempt_id,
            lead_id,
            offer,
            cause,
        }) => {
            use actix_web::http::StatusCode;
            let (title, body, status) = match &cause {
                NotOpened::Gateway(_) => (t.gateway_error_title, t.gateway_error_body, StatusCode::BAD_GATEWAY),
                NotOpened::Store(_) => (t.saved_title, t.saved_body, StatusCode::SERVICE_UNAVAILABLE),
            };
            tracing::warn!(%attempt_id, error = %cause, "checkout not opened for a stored lead");
            let mut res = render(&retry_page(title, body, &lead_id, &offer));
            *res.status_mut() = status;
            Ok(res)
        }
        Err(e) => Err(PageError::unavailable(lang, e)),
    }
}
