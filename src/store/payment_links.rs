//! Payment links: one row per link, its lead and attempts in their own tables.

use sqlx::FromRow;

use super::{corrupt, on_pool, on_tx, Db, StoreResult, Tx};
use crate::domain::payment_link::LinkSource;
use crate::domain::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLink {
    pub id: String,
    pub lead_id: String,
    pub offer_slug: String,
    pub amount: Money,
    pub description: Option<String>,
    /// The CRM (its adapter's name), deal and person the link's attempts are bound to.
    pub crm: Option<CrmBinding>,
    pub source: LinkSource,
    pub idempotency_key: Option<String>,
    pub fingerprint: Option<String>,
    pub email_link: bool,
    pub expires_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmBinding {
    pub crm: String,
    pub deal_id: String,
    pub person_id: Option<String>,
}

#[derive(FromRow)]
struct Row {
    id: String,
    lead_id: String,
    offer_slug: String,
    amount_minor: i64,
    currency: String,
    description: Option<String>,
    crm: Option<String>,
    crm_deal_id: Option<String>,
    crm_person_id: Option<String>,
    source: String,
    idempotency_key: Option<String>,
    fingerprint: Option<String>,
    email_link: bool,
    expires_at: i64,
    created_at: i64,
}

const COLUMNS: &str = "id, lead_id, offer_slug, amount_minor, currency, description, crm, crm_deal_id, \
                       crm_person_id, source, idempotency_key, fingerprint, email_link, expires_at, created_at";

impl TryFrom<Row> for PaymentLink {
    type Error = super::StoreError;
    fn try_from(r: Row) -> StoreResult<PaymentLink> {
        let currency: Currency = r
            .currency
            .parse()
            .map_err(|_| corrupt(format!("link {} currency", r.id)))?;
        let amount = Money::new(r.amount_minor, currency).map_err(|_| corrupt(format!("link {} amount", r.id)))?;
        let source = LinkSource::parse(&r.source).ok_or_else(|| corrupt(format!("link {} source", r.id)))?;
        let crm = match (r.crm, r.crm_deal_id) {
            (Some(crm), Some(deal_id)) => Some(CrmBinding {
                crm,
                deal_id,
                person_id: r.crm_person_id,
            }),
            _ => None,
        };
        Ok(PaymentLink {
            id: r.id,
            lead_id: r.lead_id,
            offer_slug: r.offer_slug,
            amount,
            description: r.description,
            crm,
            source,
            idempotency_key: r.idempotency_key,
            fingerprint: r.fingerprint,
            email_link: r.email_link,
            expires_at: r.expires_at,
            created_at: r.created_at,
        })
    }
}

pub async fn insert(tx: &mut Tx, l: &PaymentLink) -> StoreResult<()> {
    let sql =
        format!("INSERT INTO payment_links ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)");
    let crm = l.crm.as_ref();
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(&l.id)
        .bind(&l.lead_id)
        .bind(&l.offer_slug)
        .bind(l.amount.amount_minor())
        .bind(l.amount.currency().as_str())
        .bind(&l.description)
        .bind(crm.map(|b| b.crm.as_str()))
        .bind(crm.map(|b| b.deal_id.as_str()))
        .bind(crm.and_then(|b| b.person_id.as_deref()))
        .bind(l.source.as_str())
        .bind(&l.idempotency_key)
        .bind(&l.fingerprint)
        .bind(l.email_link)
        .bind(l.expires_at)
        .bind(l.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<PaymentLink>> {
    let sql = format!("SELECT {COLUMNS} FROM payment_links WHERE id = $1");
    let row: Option<Row> = on_pool!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?;
    row.map(PaymentLink::try_from).transpose()
}

/// The link first made under `key`, read in the caller's transaction.
pub async fn by_idempotency_key(tx: &mut Tx, key: &str) -> StoreResult<Option<PaymentLink>> {
    let sql = format!("SELECT {COLUMNS} FROM payment_links WHERE idempotency_key = $1");
    let row: Option<Row> = on_tx!(tx, |c| sqlx::query_as(&sql).bind(key).fetch_optional(c).await)?;
    row.map(PaymentLink::try_from).transpose()
}

/// The newest link of a CRM deal that is not expired at `now` and has no paid attempt.
pub async fn open_for_deal(tx: &mut Tx, crm: &str, deal_id: &str, now: i64) -> StoreResult<Option<PaymentLink>> {
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("l.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {cols} FROM payment_links l WHERE l.crm = $1 AND l.crm_deal_id = $2 AND l.expires_at > $3 \
         AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.lead_id = l.lead_id AND a.status = 'approved') \
         ORDER BY l.created_at DESC, l.id DESC LIMIT 1"
    );
    let row: Option<Row> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(crm)
        .bind(deal_id)
        .bind(now)
        .fetch_optional(c)
        .await)?;
    row.map(PaymentLink::try_from).transpose()
}

/// The newest links, for the admin page.
pub async fn recent(db: &Db, limit: i64) -> StoreResult<Vec<PaymentLink>> {
    let sql = format!("SELECT {COLUMNS} FROM payment_links ORDER BY created_at DESC, id DESC LIMIT $1");
    let rows: Vec<Row> = on_pool!(db, |p| sqlx::query_as(&sql).bind(limit).fetch_all(p).await)?;
    rows.into_iter().map(PaymentLink::try_from).collect()
}

/// The link a lead was made for, if any.
pub async fn for_lead(db: &Db, lead_id: &str) -> StoreResult<Option<PaymentLink>> {
    let sql = format!("SELECT {COLUMNS} FROM payment_links WHERE lead_id = $1");
    let row: Option<Row> = on_pool!(db, |p| sqlx::query_as(&sql).bind(lead_id).fetch_optional(p).await)?;
    row.map(PaymentLink::try_from).transpose()
}
