//! Leads: who filled the form, with their attribution and the consent they gave.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::FromRow;

use super::{corrupt, on_pool, on_tx, Db, StoreResult, Tx};
use crate::domain::lead::{ConsentGiven, Contact, Lead, Utm};
use crate::domain::{Email, Lang, PersonName, Phone, TaxId};

#[derive(FromRow)]
struct LeadRow {
    id: String,
    offer_slug: String,
    name: String,
    email: String,
    phone: String,
    tax_id: Option<String>,
    lang: String,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    gclid: Option<String>,
    fbclid: Option<String>,
    referrer: Option<String>,
    consent_version: Option<String>,
    consent_lang: Option<String>,
    consent_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<LeadRow> for Lead {
    type Error = super::StoreError;
    fn try_from(r: LeadRow) -> StoreResult<Lead> {
        let lang = Lang::from_code(&r.lang).ok_or_else(|| corrupt(format!("lead {} lang", r.id)))?;
        let consent = match (r.consent_version, r.consent_lang, r.consent_at) {
            (Some(version), Some(l), Some(at)) => Some(ConsentGiven {
                version,
                lang: Lang::from_code(&l).ok_or_else(|| corrupt(format!("lead {} consent_lang", r.id)))?,
                at,
            }),
            _ => None,
        };
        Ok(Lead {
            contact: Contact {
                name: PersonName::from_trusted(r.name),
                email: Email::from_trusted(r.email),
                phone: Phone::from_trusted(r.phone),
                tax_id: r.tax_id.map(TaxId::from_trusted),
            },
            id: r.id,
            offer_slug: r.offer_slug,
            lang,
            utm: Utm {
                source: r.utm_source,
                medium: r.utm_medium,
                campaign: r.utm_campaign,
                term: r.utm_term,
                content: r.utm_content,
                gclid: r.gclid,
                fbclid: r.fbclid,
                referrer: r.referrer,
            },
            consent,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, offer_slug, name, email, phone, tax_id, lang, utm_source, utm_medium, \
                       utm_campaign, utm_term, utm_content, gclid, fbclid, referrer, consent_version, \
                       consent_lang, consent_at, created_at";

pub async fn insert(tx: &mut Tx, lead: &Lead) -> StoreResult<()> {
    let c = &lead.contact;
    let u = &lead.utm;
    let consent = lead.consent.as_ref();
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO leads ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)"
        )
    });
    let sql = SQL.as_str();
    on_tx!(tx, |conn| sqlx::query(sql)
        .bind(&lead.id)
        .bind(&lead.offer_slug)
        .bind(c.name.as_str())
        .bind(c.email.as_str())
        .bind(c.phone.as_str())
        .bind(c.tax_id.as_ref().map(|t| t.as_str()))
        .bind(lead.lang.code())
        .bind(&u.source)
        .bind(&u.medium)
        .bind(&u.campaign)
        .bind(&u.term)
        .bind(&u.content)
        .bind(&u.gclid)
        .bind(&u.fbclid)
        .bind(&u.referrer)
        .bind(consent.map(|g| g.version.as_str()))
        .bind(consent.map(|g| g.lang.code()))
        .bind(consent.map(|g| g.at))
        .bind(lead.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Lead>> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLUMNS} FROM leads WHERE id = $1"));
    let sql = SQL.as_str();
    let row: Option<LeadRow> = on_pool!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
    row.map(Lead::try_from).transpose()
}

/// Every lead, oldest first (operators' export).
pub async fn all(db: &Db) -> StoreResult<Vec<Lead>> {
    let sql = format!("SELECT {COLUMNS} FROM leads ORDER BY created_at, id");
    let rows: Vec<LeadRow> = on_pool!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(Lead::try_from).collect()
}

/// The leads of these attempts, by attempt id (the built-in CRM's deals name attempts).
pub async fn by_attempt(db: &Db, attempt_ids: &[String]) -> StoreResult<HashMap<String, Lead>> {
    let mut out = HashMap::new();
    if attempt_ids.is_empty() {
        return Ok(out);
    }
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("l.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let marks = (1..=attempt_ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT a.id AS attempt_id, {cols} FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE a.id IN ({marks})"
    );
    #[derive(FromRow)]
    struct Row {
        attempt_id: String,
        #[sqlx(flatten)]
        lead: LeadRow,
    }
    let rows: Vec<Row> = on_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql);
        for id in attempt_ids {
            q = q.bind(id);
        }
        q.fetch_all(p).await
    })?;
    for r in rows {
        out.insert(r.attempt_id, Lead::try_from(r.lead)?);
    }
    Ok(out)
}
