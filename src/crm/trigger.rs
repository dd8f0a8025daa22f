//! What the adapters read out of a CRM's webhook and its deal, for payment links made
//! from the CRM. Raw text where the vendor holds free text: the job parses it into our
//! types (and says why when it cannot).

use crate::domain::{Currency, Money};

/// An authenticated CRM webhook, as its adapter reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmDelivery {
    /// The vendor's id of this event (or a digest of it where the vendor gives none):
    /// the inbox keeps each one once.
    pub event_id: String,
    /// `None`: not about a deal (another object, a deletion); stored and ignored.
    pub deal: Option<DealEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealEvent {
    pub deal_id: String,
    pub stage: StageMove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageMove {
    /// The deal is now in this stage (the CRM's id) and was not before (or was created in it).
    Entered(String),
    /// The deal changed, but not its stage.
    Stayed,
    /// The event does not say (a HubSpot workflow, which filtered by stage itself).
    Unknown,
}

/// A deal and its primary person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSubject {
    pub deal_id: String,
    pub person_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The deal's value; `None` when it has none or a currency leadgate does not sell in.
    pub value: Option<Money>,
    /// The stage the deal is in now (the CRM's id).
    pub stage: Option<String>,
}

/// A value in major units as text (`"199000"`, `"199000.5"`) in `currency`, exactly.
pub fn money_from_major(text: &str, currency: &str) -> Option<Money> {
    let currency: Currency = currency.parse().ok()?;
    let exp = currency.exponent() as usize;
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits past the currency's precision must be zeros: nothing is rounded away.
    let (kept, dropped) = frac.split_at(frac.len().min(exp));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let minor: i64 = format!("{whole}{kept:0<exp$}").parse().ok()?;
    Money::new(minor, currency).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_read_exactly() {
        let m = money_from_major("199000.5", "cop").unwrap();
        assert_eq!((m.amount_minor(), m.currency()), (19_900_050, Currency::COP));
        assert_eq!(money_from_major("1500", "CLP").unwrap().amount_minor(), 1500);
        assert_eq!(money_from_major("10.00", "USD").unwrap().amount_minor(), 1000);
        assert!(money_from_major("10.005", "USD").is_none());
        assert!(money_from_major("-5", "USD").is_none());
        assert!(money_from_major("5", "XYZ").is_none());
        assert!(money_from_major("", "USD").is_none());
    }
}
