//! Operator commands that are not the server: the leads export and config checks.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Settings;
use crate::domain::lead::Utm;
use crate::jobs::crm_sync::{DEAL, FOLLOWUP_TASK, PERSON};
use crate::store::{attempts, crm_records, leads, Db, StoreResult};

#[derive(Serialize)]
pub struct LeadExport {
    pub id: String,
    pub offer: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub tax_id: Option<String>,
    pub lang: &'static str,
    pub utm: Utm,
    /// The offer consent the lead ticked, if any.
    pub consent: Option<ConsentExport>,
    pub created_at: String,
    pub crm_person_id: Option<String>,
    pub attempts: Vec<AttemptExport>,
    pub follow_up_tasks: Vec<TaskExport>,
}

#[derive(Serialize)]
pub struct ConsentExport {
    pub version: String,
    pub lang: &'static str,
    pub at: String,
}

#[derive(Serialize)]
pub struct AttemptExport {
    pub id: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: &'static str,
    pub gateway: &'static str,
    pub gateway_ref: Option<String>,
    pub status_detail: Option<String>,
    pub created_at: String,
    pub crm_deal_id: Option<String>,
    /// open / won / lost as last set by leadgate.
    pub deal_status: Option<String>,
    pub deal_stage: Option<String>,
    /// For an approved attempt: paid, partially_refunded, refunded, voided, disputed,
    /// dispute_won or dispute_lost.
    pub standing: Option<&'static str>,
    pub refunded_minor: i64,
    pub refund_reason: Option<String>,
    /// open / won / lost, when the payment was disputed.
    pub dispute: Option<&'static str>,
    pub dispute_due_at: Option<String>,
    /// The attempt that paid for this purchase first, when this one is a second payment.
    pub duplicate_of: Option<String>,
    pub payment_method: Option<String>,
}

#[derive(Serialize)]
pub struct TaskExport {
    pub crm_task_id: String,
    pub attempt_id: String,
    pub reason: String,
    /// `open` until the lead pays; then `done` or `deleted` (the offer's `close_tasks`).
    pub state: String,
}

/// Every lead with its attempts, CRM ids and follow-up tasks.
pub async fn export_leads(db: &Db, settings: &Settings) -> StoreResult<Vec<LeadExport>> {
    let mut out = Vec::new();
    for lead in leads::all(db).await? {
        let records = crm_records::for_lead(db, &lead.id).await?;
        let find = |kind: &str, key: &str| records.iter().find(|r| r.kind == kind && r.local_key == key);
        let attempts = attempts::for_lead(db, &lead.id)
            .await?
            .into_iter()
            .map(|a| {
                let deal = find(DEAL, &a.id);
                let state = deal.and_then(|d| d.state.clone());
                // Recorded as `DealStatus::key`: won, lost, open, or open:<stage>.
                let (status, stage) = match state.as_deref() {
                    Some("won") => (Some("won".to_owned()), Some("Won".to_owned())),
                    Some("lost") => (Some("lost".to_owned()), Some("Lost".to_owned())),
                    Some(other) => match other.strip_prefix("open:") {
                        Some(stage) => (Some("open".to_owned()), Some(stage.to_owned())),
                        None => (
                            Some(other.to_owned()),
                            settings.offer(&a.offer_slug).map(|o| o.crm_stage.clone()),
                        ),
                    },
                    None => (None, None),
                };
                let after = &a.after;
                let dispute = after.reversal.dispute.as_ref();
                AttemptExport {
                    standing: a.status.is_paid().then(|| after.reversal.standing(&a.amount).as_str()),
                    refunded_minor: after.reversal.refunded.amount_minor(),
                    refund_reason: after.reversal.refund_reason.clone(),
                    dispute: dispute.map(|d| d.stage.as_str()),
                    dispute_due_at: dispute.and_then(|d| d.due_at).map(rfc3339),
                    duplicate_of: after.duplicate_of.clone(),
                    payment_method: after.payment_method.clone(),
                    status: a.status.to_string(),
                    amount_minor: a.amount.amount_minor(),
                    currency: a.amount.currency().as_str(),
                    gateway: a.gateway.as_str(),
                    created_at: rfc3339(a.created_at),
                    crm_deal_id: deal.map(|d| d.remote_id.clone()),
                    deal_status: status,
                    deal_stage: stage,
                    gateway_ref: a.gateway_ref,
                    status_detail: a.status_detail,
                    id: a.id,
                }
            })
            .collect();
        let follow_up_tasks = records
            .iter()
            .filter(|r| r.kind == FOLLOWUP_TASK)
            .map(|r| {
                let (attempt, reason) = r.local_key.split_once(':').unwrap_or((&r.local_key, ""));
                TaskExport {
                    crm_task_id: r.remote_id.clone(),
                    attempt_id: attempt.to_owned(),
                    reason: reason.to_owned(),
                    state: r.state.clone().unwrap_or_else(|| "open".into()),
                }
            })
            .collect();
        let c = &lead.contact;
        out.push(LeadExport {
            crm_person_id: find(PERSON, &lead.id).map(|r| r.remote_id.clone()),
            name: c.name.to_string(),
            email: c.email.to_string(),
            phone: c.phone.to_string(),
            tax_id: c.tax_id.as_ref().map(|t| t.to_string()),
            lang: lead.lang.code(),
            consent: lead.consent.as_ref().map(|c| ConsentExport {
                version: c.version.clone(),
                lang: c.lang.code(),
                at: rfc3339(c.at),
            }),
            created_at: rfc3339(lead.created_at),
            id: lead.id,
            offer: lead.offer_slug,
            utm: lead.utm,
            attempts,
            follow_up_tasks,
        });
    }
    Ok(out)
}

/// Human summary printed by `check-config` when the file is valid.
pub fn describe(settings: &Settings) -> Vec<String> {
    let public = settings
        .public_url
        .as_ref()
        .map_or_else(|| format!("http://{} (from bind)", settings.bind), |u| u.to_string());
    let mut lines = vec![
        format!("bind: {}", settings.bind),
        format!("database: {}", redact_url(&settings.database_url)),
        format!("public URL: {public}"),
        crm_line(settings),
        sandbox_line(settings),
        format!(
            "secret key: {}",
            if settings.secrets.secret_key.is_some() {
                "from LEADGATE_SECRET_KEY"
            } else {
                "generated and kept in the database (set LEADGATE_SECRET_KEY for production)"
            }
        ),
        limits_line(settings),
        proxy_line(settings),
    ];
    lines.extend(webhook_lines(settings));
    for o in &settings.offers {
        lines.push(format!(
            "offer {}: {} for {} minor units of {}, gateway {}, pipeline {:?} stage {:?}, follow-ups after {}",
            o.slug,
            o.title.default_text(),
            o.price.amount_minor(),
            o.price.currency(),
            o.gateway.as_str(),
            o.crm_pipeline,
            o.crm_stage,
            o.followup
                .steps
                .iter()
                .map(|s| humantime::format_duration(s.after).to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    lines
}

fn crm_line(settings: &Settings) -> String {
    match &settings.crm.remote {
        None => "CRM: builtin (deals and tasks on /admin)".into(),
        Some(r) => format!(
            "CRM: {} at {} (run `leadgate crm check` to verify its pipelines, stages, fields and owner)",
            settings.crm.kind.as_str(),
            r.api_base
        ),
    }
}

/// `leadgate crm check`: what the CRM holds and whether the configuration's names exist
/// there. Returns the lines to print and whether everything was found.
pub async fn crm_check(settings: &Settings) -> (Vec<String>, bool) {
    if settings.crm.remote.is_none() {
        return (
            vec!["CRM: builtin; pipelines and stages are stored as the offers name them, nothing to check".into()],
            true,
        );
    }
    let client = reqwest::Client::new();
    let Some(crm) = crate::crm::from_settings(settings, None, &client) else {
        return (vec!["error: the CRM could not be built".into()], false);
    };
    let needs = crate::crm::CrmNeeds::from_settings(settings);
    match crate::crm::check(crm.as_ref(), &needs).await {
        Err(e) => (vec![format!("error: {} CRM: {e}", crm.name())], false),
        Ok(report) => {
            let mut lines: Vec<String> = report.catalog.describe().lines().map(str::to_owned).collect();
            let ok = report.problems.is_empty();
            if ok {
                lines.push(
                    "OK: every pipeline, stage, field, owner and activity type the configuration names exists".into(),
                );
            }
            lines.extend(report.problems.into_iter().map(|p| format!("error: {p}")));
            (lines, ok)
        }
    }
}

fn sandbox_line(settings: &Settings) -> String {
    let production = settings
        .gateways
        .environments()
        .into_iter()
        .any(|(_, e)| e == crate::config::Environment::Production);
    match (settings.sandbox.enabled, production) {
        (true, _) => "sandbox: on (test payments anyone can approve; no gateway is in production)".into(),
        (false, true) => "sandbox: off (a gateway is in production)".into(),
        (false, false) => "sandbox: off (sandbox.enabled = false)".into(),
    }
}

fn limits_line(settings: &Settings) -> String {
    let rate = |r: Option<crate::config::Rate>| {
        r.map_or_else(
            || "off".to_owned(),
            |r| format!("{}/{}", r.count, humantime::format_duration(r.per)),
        )
    };
    let l = &settings.limits;
    let mut line = format!(
        "limits: submits {} per IP, {} per offer; admin sign-in {} per IP, {} in all; return page {} per attempt, gateway asked at most every {}",
        rate(l.submit_per_ip),
        rate(l.submit_per_offer),
        rate(Some(l.login_per_ip)),
        rate(Some(l.login_global)),
        rate(l.return_per_attempt),
        humantime::format_duration(l.gateway_status_every),
    );
    for r in &l.raised {
        let nets: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
        line.push_str(&format!(
            "; submits {} per IP from {}",
            rate(r.submit_per_ip),
            nets.join(", ")
        ));
    }
    line
}

fn proxy_line(settings: &Settings) -> String {
    let trusted = &settings.proxy.trusted;
    if trusted.is_empty() {
        "proxies: none trusted (X-Forwarded-For is ignored; the peer address is the client)".into()
    } else {
        let list: Vec<String> = trusted.iter().map(ToString::to_string).collect();
        format!("proxies: X-Forwarded-For believed from {}", list.join(", "))
    }
}

/// Where each real gateway must send its webhooks: the URL to paste into its dashboard.
fn webhook_lines(settings: &Settings) -> Vec<String> {
    let base = settings.public_url.as_ref().map_or_else(
        || format!("http://{}", settings.bind),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    );
    let mut lines = Vec::new();
    for (name, env) in settings.gateways.environments() {
        let place = match name {
            "wompi" => "Wompi dashboard: Desarrolladores > Seguimiento de transacciones > URL de eventos",
            "stripe" => "Stripe dashboard: Developers > Webhooks, events checkout.session.*",
            _ => "Mercado Pago: Tus integraciones > Webhooks, topic Pagos (also sent per preference)",
        };
        lines.push(format!(
            "gateway {name} ({}): webhook URL {base}/webhooks/{name} (register it in the {place})",
            env.as_str()
        ));
        if !base.starts_with("https://") {
            lines.push(format!(
                "warning: gateway {name}: public_url is not https; the vendor will not deliver webhooks to it"
            ));
        }
    }
    lines
}

/// Hides a password in a database URL.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `leadgate api-token …`, parsed.
pub enum TokenAction {
    Create { name: String, scopes: Vec<String> },
    List,
    Revoke { id: String },
}

/// Runs an `api-token` command: the lines to print, and whether it did what was asked.
pub async fn api_token(db: &Db, action: TokenAction) -> StoreResult<(Vec<String>, bool)> {
    use crate::flows::api_tokens::{self, MakeError};
    let now = crate::clock::now_ms();
    let when = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), rfc3339);
    Ok(match action {
        TokenAction::Create { name, scopes } => match api_tokens::make(db, &name, &scopes.join(" "), now).await {
            Ok(made) => (
                vec![
                    format!("id: {}", made.row.id),
                    format!("scopes: {}", made.row.scopes),
                    "token (shown once; only its digest is stored):".to_owned(),
                    made.token,
                ],
                true,
            ),
            Err(MakeError::Invalid(e)) => (vec![format!("error: {e}")], false),
            Err(MakeError::Store(e)) => return Err(e),
        },
        TokenAction::List => {
            let rows = crate::store::api_tokens::list(db).await?;
            let mut lines = vec!["id\tname\tscopes\tcreated\tlast used\trevoked".to_owned()];
            lines.extend(rows.into_iter().map(|t| {
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.scopes,
                    when(Some(t.created_at)),
                    when(t.last_used_at),
                    when(t.revoked_at)
                )
            }));
            (lines, true)
        }
        TokenAction::Revoke { id } => match api_tokens::revoke(db, &id, now).await? {
            true => (vec![format!("revoked {id}")], true),
            false => (vec![format!("error: no unrevoked token has the id {id}")], false),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_line_names_each_raised_entry() {
        let toml = "[[limits.raised]]\naddresses = [\"127.0.0.1\", \"10.1.0.0/16\"]\nsubmit_per_ip = \"100000/1s\"\n";
        let s = Settings::from_toml(toml, &|_| None).unwrap();
        let line = limits_line(&s);
        assert!(
            line.starts_with("limits: submits 10/1m per IP, 300/1m per offer;"),
            "{line}"
        );
        assert!(
            line.ends_with("; submits 100000/1s per IP from 127.0.0.1/32, 10.1.0.0/16"),
            "{line}"
        );
    }
}
