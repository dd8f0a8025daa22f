//! Outbound events: what leadgate tells a team's other tools (Zapier, an ERP…) happened.
//! Pure shapes; the queue delivers them signed per the Standard Webhooks specification.
//! The envelope is the specification's recommended one: `{"type", "timestamp", "data"}`.

use serde::{Deserialize, Serialize};

use super::lead::{Attempt, Contact};
use super::Money;

/// Every event a subscription can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "lead.created")]
    LeadCreated,
    #[serde(rename = "attempt.checkout_opened")]
    CheckoutOpened,
    #[serde(rename = "payment.approved")]
    PaymentApproved,
    #[serde(rename = "payment.declined")]
    PaymentDeclined,
    #[serde(rename = "payment.pending")]
    PaymentPending,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    #[serde(rename = "payment.disputed")]
    PaymentDisputed,
    #[serde(rename = "followup.created")]
    FollowupCreated,
    #[serde(rename = "deal.synced")]
    DealSynced,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::LeadCreated,
        EventType::CheckoutOpened,
        EventType::PaymentApproved,
        EventType::PaymentDeclined,
        EventType::PaymentPending,
        EventType::PaymentRefunded,
        EventType::PaymentDisputed,
        EventType::FollowupCreated,
        EventType::DealSynced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LeadCreated => "lead.created",
            EventType::CheckoutOpened => "attempt.checkout_opened",
            EventType::PaymentApproved => "payment.approved",
            EventType::PaymentDeclined => "payment.declined",
            EventType::PaymentPending => "payment.pending",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::PaymentDisputed => "payment.disputed",
            EventType::FollowupCreated => "followup.created",
            EventType::DealSynced => "deal.synced",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount as integer minor units and its ISO currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub minor: i64,
    pub currency: String,
}

impl From<Money> for Amount {
    fn from(m: Money) -> Self {
        Amount {
            minor: m.amount_minor(),
            currency: m.currency().as_str().to_owned(),
        }
    }
}

/// Who the event is about. Only endpoints with `personal_data = true` get it; it is never
/// stored with the event (it is read from the lead at delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub phone: String,
}

impl From<&Contact> for Person {
    fn from(c: &Contact) -> Self {
        Person {
            name: c.name.as_str().to_owned(),
            email: c.email.as_str().to_owned(),
            phone: c.phone.as_str().to_owned(),
        }
    }
}

/// The fields every event carries: which lead, which attempt, which offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub lead_id: String,
    pub attempt_id: String,
    pub offer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Person>,
}

impl Subject {
    pub fn of(a: &Attempt) -> Subject {
        Subject {
            lead_id: a.lead_id.clone(),
            attempt_id: a.id.clone(),
            offer: a.offer_slug.clone(),
            person: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCreated {
    #[serde(flatten)]
    pub subject: Subject,
    pub amount: Amount,
    /// `form` or `payment_link`.
    pub source: String,
}

/// A checkout opened, or a payment's status: the attempt as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptState {
    #[serde(flatten)]
    pub subject: Subject,
    pub gateway: String,
    pub gateway_ref: Option<String>,
    pub amount: Amount,
    pub status: String,
}

impl AttemptState {
    pub fn of(a: &Attempt) -> AttemptState {
        AttemptState {
            subject: Subject::of(a),
            gateway: a.gateway.as_str().to_owned(),
            gateway_ref: a.gateway_ref.clone(),
            amount: a.amount.into(),
            status: a.status.as_str().to_owned(),
        }
    }
}

/// What became of an approved payment's money: refunds, a void, a dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalState {
    #[serde(flatten)]
    pub payment: AttemptState,
    pub refunded: Amount,
    pub voided: bool,
    /// `open`, `won` or `lost`, when disputed.
    pub dispute: Option<String>,
    /// `partially_refunded`, `refunded`, `voided`, `disputed`, `dispute_won`, `dispute_lost`…
    pub standing: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowupCreated {
    #[serde(flatten)]
    pub subject: Subject,
    /// `abandoned` or `declined`.
    pub reason: String,
    /// The step of the offer's follow-up policy (abandoned only).
    pub step: Option<usize>,
    pub crm: String,
    pub task_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealSynced {
    #[serde(flatten)]
    pub subject: Subject,
    pub crm: String,
    pub deal_id: String,
}

/// An event's type with its data; stored as `{"type": …, "data": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Payload {
    #[serde(rename = "lead.created")]
    LeadCreated(LeadCreated),
    #[serde(rename = "attempt.checkout_opened")]
    CheckoutOpened(AttemptState),
    #[serde(rename = "payment.approved")]
    PaymentApproved(AttemptState),
    #[serde(rename = "payment.declined")]
    PaymentDeclined(AttemptState),
    #[serde(rename = "payment.pending")]
    PaymentPending(AttemptState),
    #[serde(rename = "payment.refunded")]
    PaymentRefunded(ReversalState),
    #[serde(rename = "payment.disputed")]
    PaymentDisputed(ReversalState),
    #[serde(rename = "followup.created")]
    FollowupCreated(FollowupCreated),
    #[serde(rename = "deal.synced")]
    DealSynced(DealSynced),
}

impl Payload {
    pub fn kind(&self) -> EventType {
        match self {
            Payload::LeadCreated(_) => EventType::LeadCreated,
            Payload::CheckoutOpened(_) => EventType::CheckoutOpened,
            Payload::PaymentApproved(_) => EventType::PaymentApproved,
            Payload::PaymentDeclined(_) => EventType::PaymentDeclined,
            Payload::PaymentPending(_) => EventType::PaymentPending,
            Payload::PaymentRefunded(_) => EventType::PaymentRefunded,
            Payload::PaymentDisputed(_) => EventType::PaymentDisputed,
            Payload::FollowupCreated(_) => EventType::FollowupCreated,
            Payload::DealSynced(_) => EventType::DealSynced,
        }
    }

    pub fn subject(&self) -> &Subject {
        match self {
            Payload::LeadCreated(d) => &d.subject,
            Payload::CheckoutOpened(d)
            | Payload::PaymentApproved(d)
            | Payload::PaymentDeclined(d)
            | Payload::PaymentPending(d) => &d.subject,
            Payload::PaymentRefunded(d) | Payload::PaymentDisputed(d) => &d.payment.subject,
            Payload::FollowupCreated(d) => &d.subject,
            Payload::DealSynced(d) => &d.subject,
        }
    }

    fn subject_mut(&mut self) -> &mut Subject {
        match self {
            Payload::LeadCreated(d) => &mut d.subject,
            Payload::CheckoutOpened(d)
            | Payload::PaymentApproved(d)
            | Payload::PaymentDeclined(d)
            | Payload::PaymentPending(d) => &mut d.subject,
            Payload::PaymentRefunded(d) | Payload::PaymentDisputed(d) => &mut d.payment.subject,
            Payload::FollowupCreated(d) => &mut d.subject,
            Payload::DealSynced(d) => &mut d.subject,
        }
    }

    /// The payload as one endpoint gets it: with the person only when it asked for them.
    pub fn for_endpoint(mut self, person: Option<Person>) -> Payload {
        self.subject_mut().person = person;
        self
    }

    /// The request body: the envelope with the event's time (RFC 3339).
    pub fn body(&self, timestamp: &str) -> serde_json::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            payload: &'a Payload,
            timestamp: &'a str,
        }
        serde_json::to_vec(&Body {
            payload: self,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            lead_id: "l1".into(),
            attempt_id: "a1".into(),
            offer: "curso".into(),
            person: None,
        }
    }

    #[test]
    fn type_names_parse_back_and_match_serde() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("payment.refund".parse::<EventType>().is_err());
    }

    #[test]
    fn the_body_is_type_timestamp_data_and_roundtrips() {
        let p = Payload::DealSynced(DealSynced {
            subject: subject(),
            crm: "builtin".into(),
            deal_id: "d9".into(),
        });
        assert_eq!(p.kind(), EventType::DealSynced);
        let body: serde_json::Value = serde_json::from_slice(&p.body("2026-12-01T20:00:00Z").unwrap()).unwrap();
        assert_eq!(body["type"], "deal.synced");
        assert_eq!(body["timestamp"], "2026-12-01T20:00:00Z");
        assert_eq!(body["data"]["lead_id"], "l1");
        assert_eq!(body["data"]["deal_id"], "d9");
        let stored = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Payload>(&stored).unwrap(), p);
    }

    #[test]
    fn the_person_is_there_only_when_given() {
        let p = Payload::LeadCreated(LeadCreated {
            subject: subject(),
            amount: Amount {
                minor: 100,
                currency: "COP".into(),
            },
            source: "form".into(),
        });
        let bare = String::from_utf8(p.clone().for_endpoint(None).body("t").unwrap()).unwrap();
        assert!(!bare.contains("person") && !bare.contains('@'), "{bare}");
        let person = Person {
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: "+573001234567".into(),
        };
        let full: serde_json::Value = serde_json::from_slice(&p.for_endpoint(Some(person)).body("t").unwrap()).unwrap();
        assert_eq!(full["data"]["person"]["email"], "ana@example.com");
    }
}
