//! Payment links sales send: who made them, what amounts they may ask for, and where a
//! link stands. No I/O.

use std::collections::BTreeMap;

use super::offer::{GatewayKind, Refused};
use super::{Currency, Money, PaymentStatus};

/// Who made a link. Stored as text; the CRM ones also name the CRM the deal lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSource {
    Admin,
    Api,
    Pipedrive,
    Hubspot,
}

impl LinkSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkSource::Admin => "admin",
            LinkSource::Api => "api",
            LinkSource::Pipedrive => "pipedrive",
            LinkSource::Hubspot => "hubspot",
        }
    }

    pub fn parse(s: &str) -> Option<LinkSource> {
        [
            LinkSource::Admin,
            LinkSource::Api,
            LinkSource::Pipedrive,
            LinkSource::Hubspot,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The smallest and largest amount a link may ask for, per currency, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountRange {
    pub min_minor: i64,
    pub max_minor: i64,
}

/// `[payment_links.limits]`: an amount other than the offer's own price must fall in the
/// range of its currency; a currency with no range is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmountLimits(pub BTreeMap<Currency, AmountRange>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0}")]
    Currency(String),
    #[error("{0}")]
    Amount(String),
}

impl AmountLimits {
    /// Checks an amount asked for by a link made for `gateway`; the offer's own price is
    /// always allowed (the operator configured it).
    pub fn check(&self, gateway: GatewayKind, amount: &Money, offer_price: &Money) -> Result<(), AmountError> {
        gateway.takes(amount).map_err(|e| match e {
            Refused::Currency(m) => AmountError::Currency(m),
            Refused::Amount(m) => AmountError::Amount(m),
        })?;
        if amount == offer_price {
            return Ok(());
        }
        let currency = amount.currency();
        let Some(range) = self.0.get(&currency) else {
            return Err(AmountError::Currency(format!(
                "{} is not one of the currencies payment links may ask for ([payment_links.limits])",
                currency.as_str()
            )));
        };
        let minor = amount.amount_minor();
        if minor < range.min_minor || minor > range.max_minor {
            let bound = |m: i64| Money::new(m, currency).map_or_else(|_| m.to_string(), |m| m.decimal());
            return Err(AmountError::Amount(format!(
                "must be between {} and {} {}",
                bound(range.min_minor),
                bound(range.max_minor),
                currency.as_str()
            )));
        }
        Ok(())
    }
}

/// Where a link stands for the customer who opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Can be paid: the button opens its checkout (the open one, or a fresh one).
    Payable,
    /// A payment of it is being confirmed by the gateway.
    Pending,
    Paid,
    Expired,
}

impl LinkState {
    /// From its attempts' statuses (oldest first) and whether its expiry has passed. Paid
    /// wins over everything (even expiry); a pending newest attempt is being confirmed.
    pub fn of(statuses: &[PaymentStatus], expired: bool) -> LinkState {
        if statuses.iter().any(|s| s.is_paid()) {
            LinkState::Paid
        } else if statuses.last() == Some(&PaymentStatus::Pending) {
            LinkState::Pending
        } else if expired {
            LinkState::Expired
        } else {
            LinkState::Payable
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LinkState::Payable => "payable",
            LinkState::Pending => "pending",
            LinkState::Paid => "paid",
            LinkState::Expired => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cop(minor: i64) -> Money {
        Money::new(minor, Currency::COP).unwrap()
    }

    #[test]
    fn amounts_other_than_the_price_must_fall_in_their_currency_range() {
        let limits = AmountLimits(BTreeMap::from([(
            Currency::COP,
            AmountRange {
                min_minor: 100_000,
                max_minor: 1_000_000_000,
            },
        )]));
        let price = cop(19_900_000);
        assert_eq!(limits.check(GatewayKind::Sandbox, &price, &price), Ok(()));
        assert_eq!(limits.check(GatewayKind::Sandbox, &cop(100_000), &price), Ok(()));
        assert!(matches!(
            limits.check(GatewayKind::Sandbox, &cop(99_999), &price),
            Err(AmountError::Amount(_))
        ));
        assert!(matches!(
            limits.check(GatewayKind::Sandbox, &cop(1_000_000_001), &price),
            Err(AmountError::Amount(_))
        ));
        let usd = Money::new(10_000, Currency::USD).unwrap();
        assert!(matches!(
            limits.check(GatewayKind::Sandbox, &usd, &price),
            Err(AmountError::Currency(_))
        ));
        // The gateway's own rules come first, even for a range that would allow it.
        assert!(matches!(
            limits.check(GatewayKind::Wompi, &usd, &usd),
            Err(AmountError::Currency(_))
        ));
        assert!(matches!(
            limits.check(GatewayKind::MercadoPago, &cop(100_050), &price),
            Err(AmountError::Amount(_))
        ));
    }

    #[test]
    fn a_link_is_paid_once_any_attempt_paid_even_past_its_expiry() {
        use PaymentStatus::*;
        assert_eq!(LinkState::of(&[Redirected], false), LinkState::Payable);
        assert_eq!(LinkState::of(&[Expired, Declined], false), LinkState::Payable);
        assert_eq!(LinkState::of(&[Redirected], true), LinkState::Expired);
        assert_eq!(LinkState::of(&[Approved, Declined], true), LinkState::Paid);
        assert_eq!(LinkState::of(&[Declined, Pending], true), LinkState::Pending);
        assert_eq!(LinkState::of(&[], false), LinkState::Payable);
    }

    #[test]
    fn sources_round_trip() {
        for s in [
            LinkSource::Admin,
            LinkSource::Api,
            LinkSource::Pipedrive,
            LinkSource::Hubspot,
        ] {
            assert_eq!(LinkSource::parse(s.as_str()), Some(s));
        }
        assert_eq!(LinkSource::parse("x"), None);
    }
}
