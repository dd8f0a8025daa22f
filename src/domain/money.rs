//! Money as integer minor units: floats would round prices, and gateways
//! take minor units anyway.

use std::fmt;
use std::str::FromStr;

use crate::domain::Lang;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MoneyError {
    #[error("unknown currency {0}")]
    UnknownCurrency(String),
    #[error("amount must be positive")]
    NotPositive,
}

/// Currencies we sell in. (De)serializes as the ISO 4217 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    COP,
    BRL,
    MXN,
    USD,
    ARS,
    CLP,
    PEN,
    EUR,
}

impl Currency {
    pub const ALL: [Currency; 8] = [
        Currency::COP,
        Currency::BRL,
        Currency::MXN,
        Currency::USD,
        Currency::ARS,
        Currency::CLP,
        Currency::PEN,
        Currency::EUR,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Currency::COP => "COP",
            Currency::BRL => "BRL",
            Currency::MXN => "MXN",
            Currency::USD => "USD",
            Currency::ARS => "ARS",
            Currency::CLP => "CLP",
            Currency::PEN => "PEN",
            Currency::EUR => "EUR",
        }
    }

    /// ISO 4217 minor-unit digits (CLP has no cents).
    pub fn exponent(&self) -> u32 {
        match self {
            Currency::CLP => 0,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        Currency::ALL
            .into_iter()
            .find(|c| c.as_str() == up)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units: strictly positive for prices (`new`); refunded totals may
/// also be zero (`non_negative`, `zero`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Money { amount_minor, currency })
    }

    /// A total that may be nothing yet, such as what was refunded of a payment.
    pub fn non_negative(amount_minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Money { amount_minor, currency })
    }

    pub fn zero(currency: Currency) -> Money {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// "COP 150.000,00" (es, pt-BR) or "USD 1,234.50" (en): the language decides the
    /// separators, everywhere (pages, emails, tasks, admin). The code is always shown, in
    /// front, instead of CLDR's "$ 150.000,00": "$" is ambiguous across Latin America.
    pub fn format(&self, lang: Lang) -> String {
        let (group_sep, decimal_sep) = match lang {
            Lang::Es | Lang::PtBr => ('.', ','),
            Lang::En => (',', '.'),
        };
        let exp = self.currency.exponent();
        let scale = 10u64.pow(exp);
        // unsigned_abs keeps this total even for i64::MIN.
        let abs = self.amount_minor.unsigned_abs();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let whole = group_thousands(abs / scale, group_sep);
        if exp == 0 {
            format!("{} {sign}{whole}", self.currency)
        } else {
            let frac = abs % scale;
            let width = exp as usize;
            format!("{} {sign}{whole}{decimal_sep}{frac:0width$}", self.currency)
        }
    }

    /// Major units with a `.` and no grouping (`199000.00`, CLP `15000`): what a CRM's
    /// number or monetary field takes, whatever the user's language.
    pub fn decimal(&self) -> String {
        let exp = self.currency.exponent();
        let scale = 10u64.pow(exp);
        let abs = self.amount_minor.unsigned_abs();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        match exp {
            0 => format!("{sign}{abs}"),
            _ => format!("{sign}{}.{:0w$}", abs / scale, abs % scale, w = exp as usize),
        }
    }
}

fn group_thousands(n: u64, sep: char) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_plain_major_units() {
        assert_eq!(m(19_900_000, Currency::COP).decimal(), "199000.00");
        assert_eq!(m(5, Currency::USD).decimal(), "0.05");
        assert_eq!(m(15_000, Currency::CLP).decimal(), "15000");
        assert_eq!(Money::zero(Currency::BRL).decimal(), "0.00");
    }

    fn m(amount: i64, c: Currency) -> Money {
        Money::new(amount, c).unwrap()
    }

    #[test]
    fn currency_codes_roundtrip() {
        for c in Currency::ALL {
            assert_eq!(c.as_str().parse::<Currency>(), Ok(c));
            assert_eq!(c.as_str().to_lowercase().parse::<Currency>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(String::from(c), c.as_str());
        }
        assert_eq!(" cop ".parse::<Currency>(), Ok(Currency::COP));
        assert_eq!("bRl".parse::<Currency>(), Ok(Currency::BRL));
    }

    #[test]
    fn currency_unknown() {
        for bad in ["", "XXX", "CO", "COPP", "peso", "€"] {
            assert_eq!(
                bad.parse::<Currency>(),
                Err(MoneyError::UnknownCurrency(bad.to_owned()))
            );
        }
        assert_eq!(
            MoneyError::UnknownCurrency("XXX".into()).to_string(),
            "unknown currency XXX"
        );
    }

    #[test]
    fn currency_exponents() {
        for c in Currency::ALL {
            let want = if c == Currency::CLP { 0 } else { 2 };
            assert_eq!(c.exponent(), want, "{c}");
        }
    }

    #[test]
    fn currency_serde_uses_code() {
        assert_eq!(serde_json::to_string(&Currency::PEN).unwrap(), "\"PEN\"");
        let c: Currency = serde_json::from_str("\"mxn\"").unwrap();
        assert_eq!(c, Currency::MXN);
        assert!(serde_json::from_str::<Currency>("\"XYZ\"").is_err());
        assert!(serde_json::from_str::<Currency>("3").is_err());
    }

    #[test]
    fn money_must_be_positive() {
        assert_eq!(Money::new(0, Currency::COP), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(-1, Currency::COP), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(i64::MIN, Currency::USD), Err(MoneyError::NotPositive));
        assert_eq!(MoneyError::NotPositive.to_string(), "amount must be positive");
        let x = m(1, Currency::USD);
        assert_eq!(x.amount_minor(), 1);
        assert_eq!(x.currency(), Currency::USD);
    }

    #[test]
    fn format_spanish_and_portuguese() {
        for lang in [Lang::Es, Lang::PtBr] {
            assert_eq!(m(15_000_000, Currency::COP).format(lang), "COP 150.000,00");
            assert_eq!(m(9_990, Currency::CLP).format(lang), "CLP 9.990");
            assert_eq!(m(19_990, Currency::BRL).format(lang), "BRL 199,90");
            assert_eq!(m(5, Currency::MXN).format(lang), "MXN 0,05");
            assert_eq!(m(999, Currency::CLP).format(lang), "CLP 999");
            assert_eq!(m(1_000, Currency::CLP).format(lang), "CLP 1.000");
        }
    }

    #[test]
    fn format_english() {
        assert_eq!(m(123_450, Currency::USD).format(Lang::En), "USD 1,234.50");
        assert_eq!(m(1, Currency::EUR).format(Lang::En), "EUR 0.01");
        assert_eq!(m(100, Currency::PEN).format(Lang::En), "PEN 1.00");
        assert_eq!(m(123_456_789, Currency::CLP).format(Lang::En), "CLP 123,456,789");
    }

    #[test]
    fn format_extremes() {
        assert_eq!(
            m(i64::MAX, Currency::ARS).format(Lang::Es),
            "ARS 92.233.720.368.547.758,07"
        );
        assert_eq!(
            m(i64::MAX, Currency::CLP).format(Lang::En),
            "CLP 9,223,372,036,854,775,807"
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group_thousands(0, '.'), "0");
        assert_eq!(group_thousands(12, '.'), "12");
        assert_eq!(group_thousands(123, '.'), "123");
        assert_eq!(group_thousands(1234, '.'), "1.234");
        assert_eq!(group_thousands(123_456, ','), "123,456");
        assert_eq!(group_thousands(1_234_567, ','), "1,234,567");
    }

    #[test]
    fn money_serializes_fields() {
        let j = serde_json::to_value(m(990, Currency::BRL)).unwrap();
        assert_eq!(j, serde_json::json!({"amount_minor": 990, "currency": "BRL"}));
    }
}
