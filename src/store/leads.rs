//! Leads: who filled the form, with their attribution.

use sqlx::FromRow;

use super::{corrupt, on_pool, on_tx, Db, StoreResult, Tx};
use crate::domain::lead::{Contact, Lead, Utm};
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
    created_at: i64,
}

impl TryFrom<LeadRow> for Lead {
    type Error = super::StoreError;
    fn try_from(r: LeadRow) -> StoreResult<Lead> {
        let lang = Lang::from_code(&r.lang).ok_or_else(|| corrupt(format!("lead {} lang", r.id)))?;
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
            },
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, offer_slug, name, email, phone, tax_id, lang, utm_source, utm_medium, \
                       utm_campaign, utm_term, utm_content, created_at";

pub async fn insert(tx: &mut Tx, lead: &Lead) -> StoreResult<()> {
    let c = &lead.contact;
    let sql = format!("INSERT INTO leads ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)");
    on_tx!(tx, |conn| sqlx::query(&sql)
        .bind(&lead.id)
        .bind(&lead.offer_slug)
        .bind(c.name.as_str())
        .bind(c.email.as_str())
        .bind(c.phone.as_str())
        .bind(c.tax_id.as_ref().map(|t| t.as_str()))
        .bind(lead.lang.code())
        .bind(&lead.utm.source)
        .bind(&lead.utm.medium)
        .bind(&lead.utm.campaign)
        .bind(&lead.utm.term)
        .bind(&lead.utm.content)
        .bind(lead.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Lead>> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE id = $1");
    let row: Option<LeadRow> = on_pool!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?;
    row.map(Lead::try_from).transpose()
}

/// Every lead, oldest first (operators' export).
pub async fn all(db: &Db) -> StoreResult<Vec<Lead>> {
    let sql = format!("SELECT {COLUMNS} FROM leads ORDER BY created_at, id");
    let rows: Vec<LeadRow> = on_pool!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(Lead::try_from).collect()
}
