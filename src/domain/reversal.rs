//! What happens to a payment's money after approval: refunds (partial or full), a void of
//! the card authorisation, and disputes (chargebacks) with their outcome. It sits beside
//! `PaymentStatus`, never instead of it: a refunded attempt stays paid-then-refunded, and
//! nothing here can make it "declined".
//!
//! Gateways report a snapshot (the refunded total so far, the dispute as it stands now),
//! read back from their API; events arrive late, twice and out of order. So the rules
//! only move forwards: the refunded total never shrinks, a void is for good, and a
//! dispute that closed stays closed.

use super::{Money, MoneyError};

/// Where a dispute (chargeback, or the inquiry before one) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStage {
    /// Opened by the cardholder or the bank; evidence may be due.
    Open,
    /// Closed in our favour (or an inquiry closed without a chargeback).
    Won,
    /// Closed against us: the money is gone.
    Lost,
}

impl DisputeStage {
    pub const ALL: [DisputeStage; 3] = [DisputeStage::Open, DisputeStage::Won, DisputeStage::Lost];

    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeStage::Open => "open",
            DisputeStage::Won => "won",
            DisputeStage::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    fn is_closed(self) -> bool {
        self != DisputeStage::Open
    }
}

/// A dispute as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub stage: DisputeStage,
    /// When evidence is due (unix ms), if the gateway says.
    pub due_at: Option<i64>,
    /// The gateway's reason words (`fraudulent`, `product_not_received`…).
    pub reason: Option<String>,
}

/// What a gateway says about a paid payment's money now. `refunded_minor` is the total
/// refunded so far in the payment's own currency's minor units (the adapter converts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub refunded_minor: i64,
    /// The authorisation was voided: nothing was collected.
    pub voided: bool,
    pub dispute: Option<Dispute>,
    /// The gateway's words for the latest refund (`requested_by_customer`…).
    pub refund_reason: Option<String>,
}

/// What we hold about an attempt's money after approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// Refunded so far, in the attempt's currency; zero when nothing was.
    pub refunded: Money,
    pub voided: bool,
    pub dispute: Option<Dispute>,
    pub refund_reason: Option<String>,
}

/// How an approved attempt stands, for the CRM, `/admin` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Paid,
    PartiallyRefunded,
    Refunded,
    Voided,
    Disputed,
    DisputeWon,
    DisputeLost,
}

impl Standing {
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::Paid => "paid",
            Standing::PartiallyRefunded => "partially_refunded",
            Standing::Refunded => "refunded",
            Standing::Voided => "voided",
            Standing::Disputed => "disputed",
            Standing::DisputeWon => "dispute_won",
            Standing::DisputeLost => "dispute_lost",
        }
    }

    /// The money did not stay with us: the deal should say so.
    pub fn is_reversed(&self) -> bool {
        matches!(self, Standing::Refunded | Standing::Voided | Standing::DisputeLost)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReversalError {
    /// The gateway claims more was refunded than was paid: never applied, always reported.
    #[error("refunded {claimed} minor units of a payment of {paid}")]
    ExceedsPaid { paid: i64, claimed: i64 },
    #[error("negative refunded amount {0}")]
    Negative(i64),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl Reversal {
    /// Nothing reversed: a freshly paid attempt.
    pub fn none(paid: &Money) -> Self {
        Reversal {
            refunded: Money::zero(paid.currency()),
            voided: false,
            dispute: None,
            refund_reason: None,
        }
    }

    pub fn standing(&self, paid: &Money) -> Standing {
        let stage = self.dispute.as_ref().map(|d| d.stage);
        if self.voided {
            Standing::Voided
        } else if self.refunded.amount_minor() >= paid.amount_minor() {
            Standing::Refunded
        } else if stage == Some(DisputeStage::Lost) {
            Standing::DisputeLost
        } else if stage == Some(DisputeStage::Open) {
            Standing::Disputed
        } else if self.refunded.amount_minor() > 0 {
            Standing::PartiallyRefunded
        } else if stage == Some(DisputeStage::Won) {
            Standing::DisputeWon
        } else {
            Standing::Paid
        }
    }

    /// Applies a report to what we hold for a payment of `paid`. `Ok(None)`: nothing new
    /// (a duplicate, or a late report of an earlier state). A report claiming more than
    /// was paid is refused whole, so one bad field cannot slip in with good ones.
    pub fn apply(&self, paid: &Money, report: &Report) -> Result<Option<Reversal>, ReversalError> {
        if report.refunded_minor < 0 {
            return Err(ReversalError::Negative(report.refunded_minor));
        }
        if report.refunded_minor > paid.amount_minor() {
            return Err(ReversalError::ExceedsPaid {
                paid: paid.amount_minor(),
                claimed: report.refunded_minor,
            });
        }
        let voided = self.voided || report.voided;
        // A void returns the whole authorisation; the refunded total never goes down.
        let refunded_minor = if voided {
            paid.amount_minor()
        } else {
            self.refunded.amount_minor().max(report.refunded_minor)
        };
        let refund_grew = refunded_minor > self.refunded.amount_minor();
        let next = Reversal {
            refunded: Money::non_negative(refunded_minor, paid.currency())?,
            voided,
            dispute: next_dispute(self.dispute.as_ref(), report.dispute.as_ref()),
            refund_reason: if refund_grew {
                report.refund_reason.clone().or_else(|| self.refund_reason.clone())
            } else {
                self.refund_reason.clone()
            },
        };
        Ok((next != *self).then_some(next))
    }
}

/// Open moves to closed, and an open dispute may gain a deadline; a closed one stays as it
/// closed (Stripe: closing is final; a late `updated` must not reopen it).
fn next_dispute(current: Option<&Dispute>, incoming: Option<&Dispute>) -> Option<Dispute> {
    match (current, incoming) {
        (None, next) => next.cloned(),
        (Some(cur), None) => Some(cur.clone()),
        (Some(cur), Some(_)) if cur.stage.is_closed() => Some(cur.clone()),
        (Some(cur), Some(next)) => Some(Dispute {
            stage: next.stage,
            due_at: next.due_at.or(cur.due_at),
            reason: next.reason.clone().or_else(|| cur.reason.clone()),
        }),
    }
}

#[cfg(test)]
mod tests;
