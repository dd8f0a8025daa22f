use std::collections::HashSet;

use super::*;
use crate::domain::Phone;

fn region(code: &str) -> PhoneRegion {
    PhoneRegion::parse(code).unwrap()
}

#[test]
fn every_listed_country_has_a_code_an_example_and_names() {
    let mut seen = HashSet::new();
    for c in COUNTRIES {
        assert!(seen.insert(c.code), "{} listed twice", c.code);
        let r = region(c.code);
        assert!(r.calling_code().is_some_and(|n| n > 0), "{}: no calling code", c.code);
        for lang in Lang::ALL {
            assert!(!r.name(lang).trim().is_empty(), "{}: no name in {lang:?}", c.code);
            assert!(r
                .label(lang)
                .ends_with(&format!("(+{})", r.calling_code().unwrap_or(0))));
        }
        // The example the hint shows must be accepted as typed, in that country.
        let ex = r
            .example(Mode::National)
            .unwrap_or_else(|| panic!("{}: no example", c.code));
        assert!(
            Phone::parse(&ex, Some(c.code)).is_ok(),
            "{}: example {ex} refused",
            c.code
        );
        let intl = r.example(Mode::International).unwrap_or_default();
        assert!(
            intl.starts_with('+') && Phone::parse(&intl, None).is_ok(),
            "{}: {intl}",
            c.code
        );
    }
}

#[test]
fn list_covers_where_customers_come_from() {
    for code in [
        "AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC", "SV", "GT", "HN", "HT", "JM", "MX", "NI", "PA", "PY",
        "PE", "PR", "TT", "UY", "VE", "US", "CA", "ES", "PT",
    ] {
        assert!(PhoneRegion::parse(code).is_ok(), "{code} missing");
    }
}

#[test]
fn calling_codes_come_from_the_metadata() {
    assert_eq!(region("BR").calling_code(), Some(55));
    assert_eq!(region("CO").calling_code(), Some(57));
    assert_eq!(region("US").calling_code(), Some(1));
    assert_eq!(region("PR").calling_code(), Some(1));
    assert_eq!(region("MX").label(Lang::Es), "México (+52)");
    assert_eq!(region("DE").label(Lang::PtBr), "Alemanha (+49)");
    assert_eq!(region("ES").label(Lang::En), "Spain (+34)");
}

#[test]
fn parse_takes_only_listed_regions() {
    assert_eq!(region("br"), region(" BR "));
    assert_eq!(region("BR").code(), "BR");
    for bad in ["", "ZZ", "KR", "BRA", "B", "other", "+55", "55", "\u{0}", "🇧🇷", "b r"] {
        assert_eq!(PhoneRegion::parse(bad), Err(UnlistedRegion), "{bad:?}");
    }
}

#[test]
fn phone_country_parses_other_and_regions() {
    assert_eq!(PhoneCountry::parse("other"), Ok(PhoneCountry::Other));
    assert_eq!(PhoneCountry::parse("OTHER"), Ok(PhoneCountry::Other));
    assert_eq!(PhoneCountry::parse("mx"), Ok(PhoneCountry::Region(region("MX"))));
    assert_eq!(PhoneCountry::parse("xx"), Err(UnlistedRegion));
    assert_eq!(PhoneCountry::Other.code(), "other");
    assert_eq!(PhoneCountry::Other.region(), None);
    assert_eq!(PhoneCountry::Region(region("PE")).code(), "PE");
}

#[test]
fn sorted_by_localized_name() {
    for lang in Lang::ALL {
        let list = PhoneRegion::sorted(lang);
        assert_eq!(list.len(), COUNTRIES.len());
        let keys: Vec<String> = list.iter().map(|r| collation_key(r.name(lang))).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{lang:?}: {keys:?}");
    }
    // Accents do not push a name to the end: Haití sits among the H's in Spanish.
    let es: Vec<&str> = PhoneRegion::sorted(Lang::Es).iter().map(|r| r.code()).collect();
    let pos = |c| es.iter().position(|x| *x == c).unwrap();
    assert!(pos("GY") < pos("HT") && pos("HT") < pos("HN"), "{es:?}");
    // "Países" before "Panamá": í sorts as i, not after every ASCII letter.
    assert!(pos("NL") < pos("PA") && pos("PA") < pos("PY"), "{es:?}");
    // Names differ by language, so the orders do too: Germany is first in English only.
    assert_eq!(PhoneRegion::sorted(Lang::Es)[0].code(), "DE");
    assert_eq!(PhoneRegion::sorted(Lang::En)[0].code(), "AG");
}

#[test]
fn region_from_accept_language() {
    let cases = [
        (None, None),
        (Some(""), None),
        (Some("pt-BR,pt;q=0.9,en;q=0.8"), Some("BR")),
        (Some("en-US,en;q=0.9"), Some("US")),
        (Some("es-MX"), Some("MX")),
        (Some("es_co"), Some("CO")),
        (Some("es"), None),
        (Some("es-419"), None),
        (Some("ko-KR"), None),
        (Some("ko-KR, en-GB;q=0.5"), Some("GB")),
        (Some("es;q=1, en-US;q=0.8, pt-BR;q=0.9"), Some("BR")),
        (Some("en-US;q=0, es-AR;q=0.1"), Some("AR")),
        (Some("en-US;q=0"), None),
        (Some("en-US;q=banana"), None),
        (Some("zh-Hant-TW, zh-Hant-CH;q=0.5"), Some("CH")),
        (Some("en-CA, fr-FR"), Some("CA")),
        (Some("*"), None),
        (Some(";;;,,,"), None),
    ];
    for (header, want) in cases {
        let got = PhoneRegion::from_accept_language(header).map(|r| r.code());
        assert_eq!(got, want, "{header:?}");
    }
    let hostile = format!("{}en-US", "xx-YY,".repeat(64));
    assert_eq!(PhoneRegion::from_accept_language(Some(&hostile)), None);
}

#[test]
fn default_prefers_the_browser_then_the_offer() {
    let d = |h, offer| PhoneCountry::default_for(h, offer).code();
    assert_eq!(d(Some("pt-BR"), "CO"), "BR");
    assert_eq!(d(Some("en-US"), "CO"), "US");
    assert_eq!(d(Some("es-MX,es;q=0.9"), "CO"), "MX");
    assert_eq!(d(Some("es"), "CO"), "CO");
    assert_eq!(d(None, "CO"), "CO");
    assert_eq!(d(Some("fr"), "KR"), "other");
}
