//! Contact details typed by customers. Parsing normalizes input so that the
//! stored value is both a safe display string and a stable dedupe key.

use std::fmt;

use validator::ValidateEmail;

/// Why a contact field was rejected. The web layer maps `code()` to a
/// localized message, so codes are a stable contract.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ContactError {
    #[error("required")]
    Required,
    #[error("too short")]
    TooShort,
    #[error("too long")]
    TooLong,
    #[error("invalid email")]
    InvalidEmail,
    #[error("invalid phone")]
    InvalidPhone,
    #[error("invalid characters")]
    InvalidChars,
    #[error("invalid tax id")]
    InvalidTaxId,
}

impl ContactError {
    pub fn code(&self) -> &'static str {
        match self {
            ContactError::Required => "required",
            ContactError::TooShort => "too_short",
            ContactError::TooLong => "too_long",
            ContactError::InvalidEmail => "invalid_email",
            ContactError::InvalidPhone => "invalid_phone",
            ContactError::InvalidChars => "invalid_chars",
            ContactError::InvalidTaxId => "invalid_tax_id",
        }
    }
}

/// Shared boilerplate for the string newtypes below.
macro_rules! string_newtype {
    ($t:ident) => {
        impl $t {
            /// For values loaded from our own storage, which were validated on
            /// the way in; re-validating would reject rows if rules tighten.
            pub fn from_trusted(s: String) -> $t {
                $t(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Lower-cased email address (it is our dedupe key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(input: &str) -> Result<Email, ContactError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ContactError::Required);
        }
        // RFC 5321 path limit; also bounds the work done by the validator.
        if s.chars().count() > 254 {
            return Err(ContactError::TooLong);
        }
        let s = s.to_lowercase();
        // A dotless domain ("a@localhost") passes HTML5 rules but can never
        // reach a customer; IP literals are not something real leads type.
        let domain_ok = s
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.contains('.') && !d.starts_with('['));
        if !domain_ok || !s.validate_email() {
            return Err(ContactError::InvalidEmail);
        }
        Ok(Email(s))
    }
}

/// Phone number stored in E.164 form, e.g. "+573001234567".
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Phone(String);
string_newtype!(Phone);

impl Phone {
    /// `default_region` (ISO 3166 alpha-2, e.g. "CO") lets customers omit
    /// the country prefix; an unknown region is treated as none.
    pub fn parse(input: &str, default_region: Option<&str>) -> Result<Phone, ContactError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ContactError::Required);
        }
        if s.chars().count() > 32 {
            return Err(ContactError::TooLong);
        }
        let region =
            default_region.and_then(|r| r.trim().to_ascii_uppercase().parse::<phonenumber::country::Id>().ok());
        let n = phonenumber::parse(region, s).map_err(|_| ContactError::InvalidPhone)?;
        if !phonenumber::is_valid(&n) {
            return Err(ContactError::InvalidPhone);
        }
        Ok(Phone(n.format().mode(phonenumber::Mode::E164).to_string()))
    }

    /// Country calling code (57 for Colombia); 0 if a trusted value is not
    /// parseable, so callers never have to handle a panic.
    pub fn country_code(&self) -> u16 {
        self.reparse().map_or(0, |n| n.code().value())
    }

    /// Digits after the country code (gateways want them separately). Falls
    /// back to all digits of the stored value if it cannot be parsed.
    pub fn national_number(&self) -> String {
        match self.reparse() {
            Some(n) => n.national().to_string(),
            None => self.0.chars().filter(char::is_ascii_digit).collect(),
        }
    }

    // Re-parsing E.164 is cheap and keeps the struct a single transparent
    // string, so equality/hash/serde all follow the canonical form.
    fn reparse(&self) -> Option<phonenumber::PhoneNumber> {
        phonenumber::parse(None, &self.0).ok()
    }
}

/// Customer name with whitespace collapsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PersonName(String);
string_newtype!(PersonName);

impl PersonName {
    pub fn parse(input: &str) -> Result<PersonName, ContactError> {
        let s = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            return Err(ContactError::Required);
        }
        let len = s.chars().count();
        if len < 2 {
            return Err(ContactError::TooShort);
        }
        if len > 100 {
            return Err(ContactError::TooLong);
        }
        if s.chars().any(is_forbidden_in_name) {
            return Err(ContactError::InvalidChars);
        }
        Ok(PersonName(s))
    }

    /// Split at the first space; gateways and CRMs want two fields.
    pub fn first_and_last(&self) -> (String, String) {
        match self.0.split_once(' ') {
            Some((first, last)) => (first.to_owned(), last.to_owned()),
            None => (self.0.clone(), String::new()),
        }
    }
}

/// Control chars, plus invisible/bidi formatting chars that could make a
/// name render misleadingly in the CRM or on receipts.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// National tax id (NIT, CPF, RFC, RUT...), normalized to upper-case
/// alphanumerics so "123.456.789-0" and "1234567890" are the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TaxId(String);
string_newtype!(TaxId);

impl TaxId {
    pub fn parse(input: &str) -> Result<TaxId, ContactError> {
        // ASCII upper-casing only: Unicode casing could turn e.g. 'ß' into
        // "SS" and sneak non-ASCII input past the alphanumeric check.
        let s: String = input
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if s.is_empty() {
            return Err(ContactError::Required);
        }
        if !(4..=20).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ContactError::InvalidTaxId);
        }
        Ok(TaxId(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_stable() {
        use ContactError::*;
        let all = [
            (Required, "required"),
            (TooShort, "too_short"),
            (TooLong, "too_long"),
            (InvalidEmail, "invalid_email"),
            (InvalidPhone, "invalid_phone"),
            (InvalidChars, "invalid_chars"),
            (InvalidTaxId, "invalid_tax_id"),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn email_trims_and_lowercases() {
        let e = Email::parse("  Maria.Perez+promo@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "maria.perez+promo@example.com");
        assert_eq!(e.to_string(), "maria.perez+promo@example.com");
        assert_eq!(e, Email::parse("maria.perez+promo@example.com").unwrap());
    }

    #[test]
    fn email_required() {
        assert_eq!(Email::parse(""), Err(ContactError::Required));
        assert_eq!(Email::parse(" \t\n "), Err(ContactError::Required));
    }

    #[test]
    fn email_too_long() {
        let long = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long), Err(ContactError::TooLong));
        // Exactly 254 is not rejected for length (it may still be invalid).
        let edge = format!("{}@{}.co", "a".repeat(60), "b".repeat(254 - 64));
        assert_eq!(edge.len(), 254);
        assert_ne!(Email::parse(&edge), Err(ContactError::TooLong));
    }

    #[test]
    fn email_invalid() {
        for bad in [
            "plainaddress",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "user name@example.com",
            "user@exa mple.com",
            "user@example.com.",
            "user@.example.com",
            "user@[192.168.0.1]",
            "user@-example.com",
            "usér@example.com",
            "<script>@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(ContactError::InvalidEmail), "{bad}");
        }
    }

    #[test]
    fn email_valid_variants() {
        for ok in ["a@b.co", "first.last@sub.example.com.br", "x_y-z@mail-server.mx"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        // Internationalized domains are legitimate in Latin America.
        assert!(Email::parse("ana@correo.españa.es").is_ok());
    }

    #[test]
    fn email_serializes_as_plain_string() {
        let e = Email::parse("A@B.CO").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"a@b.co\"");
    }

    #[test]
    fn phone_with_default_region() {
        let p = Phone::parse("300 123 4567", Some("CO")).unwrap();
        assert_eq!(p.as_str(), "+573001234567");
        assert_eq!(p.to_string(), "+573001234567");
        assert_eq!(p.country_code(), 57);
        assert_eq!(p.national_number(), "3001234567");
    }

    #[test]
    fn phone_region_is_case_insensitive() {
        let p = Phone::parse("(11) 91234-5678", Some("br")).unwrap();
        assert_eq!(p.as_str(), "+5511912345678");
        assert_eq!(p.country_code(), 55);
        assert_eq!(p.national_number(), "11912345678");
    }

    #[test]
    fn phone_with_plus_needs_no_region() {
        let p = Phone::parse("+52 55 1234 5678", None).unwrap();
        assert_eq!(p.as_str(), "+525512345678");
        assert_eq!(p.country_code(), 52);
        // A leading + overrides the default region.
        let q = Phone::parse("+52 55 1234 5678", Some("CO")).unwrap();
        assert_eq!(p, q);
    }

    #[test]
    fn phone_unknown_region_means_none() {
        assert_eq!(Phone::parse("3001234567", Some("ZZ")), Err(ContactError::InvalidPhone));
        assert_eq!(Phone::parse("3001234567", Some("")), Err(ContactError::InvalidPhone));
        assert!(Phone::parse("+573001234567", Some("nonsense")).is_ok());
    }

    #[test]
    fn phone_required_and_too_long() {
        assert_eq!(Phone::parse("   ", Some("CO")), Err(ContactError::Required));
        let long = format!("+57 {}", "1".repeat(40));
        assert_eq!(Phone::parse(&long, None), Err(ContactError::TooLong));
    }

    #[test]
    fn phone_invalid() {
        for bad in [
            "123",
            "abc",
            "+57 123",
            "+999 1234567",
            "300 123",
            "+57 300 123 4567 8901",
            "😀😀😀",
            "+",
            "-",
            "()",
            "tel:",
        ] {
            assert_eq!(Phone::parse(bad, Some("CO")), Err(ContactError::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn phone_odd_input_never_panics() {
        for odd in [
            "\u{0}\u{1}\u{7f}",
            "+\u{202e}57",
            ";ext=1",
            "tel:+57;ext=",
            "00000000000000000000000000000000",
            "+00",
            "#*#*#*",
            "+57 ۳۰۰۱۲۳۴۵۶۷",
        ] {
            let _ = Phone::parse(odd, Some("CO"));
            let _ = Phone::parse(odd, None);
        }
    }

    #[test]
    fn phone_trusted_roundtrip_and_garbage() {
        let p = Phone::from_trusted("+5511912345678".to_owned());
        assert_eq!(p.country_code(), 55);
        assert_eq!(p.national_number(), "11912345678");
        // Garbage from storage degrades instead of panicking.
        let g = Phone::from_trusted("not a phone 12-34".to_owned());
        assert_eq!(g.country_code(), 0);
        assert_eq!(g.national_number(), "1234");
        assert_eq!(g.as_str(), "not a phone 12-34");
    }

    #[test]
    fn phone_keeps_italian_leading_zero() {
        let p = Phone::parse("+39 06 1234 5678", None).unwrap();
        assert_eq!(p.country_code(), 39);
        assert_eq!(p.national_number(), "0612345678");
    }

    #[test]
    fn name_valid_and_collapsed() {
        let n = PersonName::parse("  María José   O'Neil-Pérez \t ").unwrap();
        assert_eq!(n.as_str(), "María José O'Neil-Pérez");
        assert_eq!(n.to_string(), "María José O'Neil-Pérez");
        let n = PersonName::parse("João\n\nda\u{a0}Silva").unwrap();
        assert_eq!(n.as_str(), "João da Silva");
    }

    #[test]
    fn name_length_rules() {
        assert_eq!(PersonName::parse(""), Err(ContactError::Required));
        assert_eq!(PersonName::parse(" \n\t "), Err(ContactError::Required));
        assert_eq!(PersonName::parse("A"), Err(ContactError::TooShort));
        // Counted in chars, not bytes: "É" is 2 bytes but 1 char.
        assert_eq!(PersonName::parse(" É "), Err(ContactError::TooShort));
        assert!(PersonName::parse("Li").is_ok());
        assert!(PersonName::parse(&"ñ".repeat(100)).is_ok());
        assert_eq!(PersonName::parse(&"ñ".repeat(101)), Err(ContactError::TooLong));
        // Collapsing happens before counting.
        assert!(PersonName::parse(&format!("{}     {}", "a".repeat(49), "b".repeat(50))).is_ok());
    }

    #[test]
    fn name_rejects_control_and_bidi_chars() {
        for bad in [
            "Ana\u{0}Lopez",
            "Ana\u{7}",
            "Ana\u{1b}[31m",
            "Ana\u{7f}",
            "Ana\u{202e}zepoL",
            "Ana\u{200b}Lopez",
            "\u{feff}Ana",
        ] {
            assert_eq!(PersonName::parse(bad), Err(ContactError::InvalidChars), "{bad:?}");
        }
    }

    #[test]
    fn name_first_and_last() {
        let n = PersonName::parse("María José O'Neil").unwrap();
        assert_eq!(n.first_and_last(), ("María".to_owned(), "José O'Neil".to_owned()));
        let n = PersonName::parse("Pelé").unwrap();
        assert_eq!(n.first_and_last(), ("Pelé".to_owned(), String::new()));
        let n = PersonName::from_trusted("Ana Lopez".to_owned());
        assert_eq!(n.first_and_last(), ("Ana".to_owned(), "Lopez".to_owned()));
    }

    #[test]
    fn tax_id_normalizes() {
        let t = TaxId::parse(" 900.123.456-7 ").unwrap();
        assert_eq!(t.as_str(), "9001234567");
        assert_eq!(t.to_string(), "9001234567");
        assert_eq!(TaxId::parse("123.456.789-09").unwrap().as_str(), "12345678909");
        assert_eq!(TaxId::parse("goma 800101 ab1").unwrap().as_str(), "GOMA800101AB1");
        assert_eq!(TaxId::parse("12.345.678-k").unwrap().as_str(), "12345678K");
    }

    #[test]
    fn tax_id_rules() {
        assert_eq!(TaxId::parse(""), Err(ContactError::Required));
        assert_eq!(TaxId::parse(" .-. - "), Err(ContactError::Required));
        assert_eq!(TaxId::parse("123"), Err(ContactError::InvalidTaxId));
        assert!(TaxId::parse("1234").is_ok());
        assert!(TaxId::parse(&"9".repeat(20)).is_ok());
        assert_eq!(TaxId::parse(&"9".repeat(21)), Err(ContactError::InvalidTaxId));
        for bad in ["1234/56", "12345_6", "ÑAÑA1234", "1234ß", "12\u{0}34"] {
            assert_eq!(TaxId::parse(bad), Err(ContactError::InvalidTaxId), "{bad:?}");
        }
    }

    #[test]
    fn trusted_constructors_skip_validation() {
        assert_eq!(Email::from_trusted("X".to_owned()).as_str(), "X");
        assert_eq!(TaxId::from_trusted("x".to_owned()).as_str(), "x");
        assert_eq!(PersonName::from_trusted("A".to_owned()).as_str(), "A");
    }
}
