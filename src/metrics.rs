//! Counters an operator watches, served at `/metrics` in the OpenMetrics text format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    status_changes: Family<Labels, Counter>,
    mismatches: Family<Labels, Counter>,
    unknown_references: Family<Labels, Counter>,
    reconcile_checks: Family<Labels, Counter>,
    crm_objects: Family<Labels, Counter>,
    crm_found_again: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    reversals: Family<Labels, Counter>,
    duplicate_payments: Family<Labels, Counter>,
    followups: Family<Labels, Counter>,
    emails: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("leadgate");
        let status_changes = Family::<Labels, Counter>::default();
        registry.register(
            "payment_status_changes",
            "Attempt status changes, by gateway, by what reported them (webhook, return, reconcile) and new status",
            status_changes.clone(),
        );
        let mismatches = Family::<Labels, Counter>::default();
        registry.register(
            "payment_mismatches",
            "Gateway reports refused because their reference, amount or currency differed from the attempt",
            mismatches.clone(),
        );
        let unknown_references = Family::<Labels, Counter>::default();
        registry.register(
            "webhook_unknown_references",
            "Verified webhooks naming no attempt of ours (kept in the inbox)",
            unknown_references.clone(),
        );
        let reconcile_checks = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_checks",
            "Attempts reconciliation asked a gateway about, by result",
            reconcile_checks.clone(),
        );
        let crm_objects = Family::<Labels, Counter>::default();
        registry.register(
            "crm_objects_created",
            "Objects leadgate created in the CRM, by CRM and kind (person objects are counted by the adapter's upsert)",
            crm_objects.clone(),
        );
        let crm_found_again = Family::<Labels, Counter>::default();
        registry.register(
            "crm_objects_found_again",
            "CRM objects an interrupted earlier try had created, found instead of created twice",
            crm_found_again.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        registry.register(
            "requests_refused",
            "Requests refused as abuse, by what was asked (submit, resume, login, return) and why (rate_limited, csrf, honeypot, too_fast)",
            refused.clone(),
        );
        let reversals = Family::<Labels, Counter>::default();
        registry.register(
            "payment_reversals",
            "Changes to approved payments' money (refunds, voids, disputes), by gateway and the standing they left",
            reversals.clone(),
        );
        let duplicate_payments = Family::<Labels, Counter>::default();
        registry.register(
            "duplicate_payments",
            "Second payments for a purchase the customer had paid already (flagged for a refund)",
            duplicate_payments.clone(),
        );
        let followups = Family::<Labels, Counter>::default();
        registry.register(
            "followups",
            "Follow-up steps by outcome: task (created), email (sent), skipped (with why), closed (a task marked done or deleted because the lead paid)",
            followups.clone(),
        );
        let emails = Family::<Labels, Counter>::default();
        registry.register(
            "customer_emails",
            "Emails to customers by kind (recovery, receipt) and result: sent, failed (refused; retried), unknown (not sent again)",
            emails.clone(),
        );
        Self {
            followups,
            emails,
            reversals,
            duplicate_payments,
            refused,
            registry,
            crm_objects,
            crm_found_again,
            status_changes,
            mismatches,
            unknown_references,
            reconcile_checks,
        }
    }
}

impl Metrics {
    pub fn status_changed(&self, gateway: &str, source: &str, to: &str) {
        let labels = vec![
            ("gateway", gateway.to_owned()),
            ("source", source.to_owned()),
            ("status", to.to_owned()),
        ];
        self.status_changes.get_or_create(&labels).inc();
    }

    pub fn reversal(&self, gateway: &str, standing: &str) {
        let labels = vec![("gateway", gateway.to_owned()), ("standing", standing.to_owned())];
        self.reversals.get_or_create(&labels).inc();
    }

    pub fn duplicate_payment(&self, gateway: &str) {
        self.duplicate_payments
            .get_or_create(&vec![("gateway", gateway.to_owned())])
            .inc();
    }

    pub fn mismatch(&self, gateway: &str) {
        self.mismatches
            .get_or_create(&vec![("gateway", gateway.to_owned())])
            .inc();
    }

    pub fn unknown_reference(&self, gateway: &str) {
        self.unknown_references
            .get_or_create(&vec![("gateway", gateway.to_owned())])
            .inc();
    }

    /// `result`: fixed, unchanged, no_payment, failed.
    pub fn reconcile_check(&self, gateway: &str, result: &str) {
        let labels = vec![("gateway", gateway.to_owned()), ("result", result.to_owned())];
        self.reconcile_checks.get_or_create(&labels).inc();
    }

    pub fn crm_created(&self, crm: &str, kind: &str) {
        let labels = vec![("crm", crm.to_owned()), ("kind", kind.to_owned())];
        self.crm_objects.get_or_create(&labels).inc();
    }

    pub fn crm_found_again(&self, crm: &str, kind: &str) {
        let labels = vec![("crm", crm.to_owned()), ("kind", kind.to_owned())];
        self.crm_found_again.get_or_create(&labels).inc();
    }

    /// `outcome`: task, email, skipped, closed; `why` says why a step was skipped.
    pub fn followup(&self, outcome: &str, why: &str) {
        let labels = vec![("outcome", outcome.to_owned()), ("why", why.to_owned())];
        self.followups.get_or_create(&labels).inc();
    }

    pub fn email(&self, kind: &str, result: &str) {
        let labels = vec![("kind", kind.to_owned()), ("result", result.to_owned())];
        self.emails.get_or_create(&labels).inc();
    }

    pub fn refused(&self, what: &str, why: &str) {
        let labels = vec![("what", what.to_owned()), ("why", why.to_owned())];
        self.refused.get_or_create(&labels).inc();
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
