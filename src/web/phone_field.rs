//! The offer form's phone country selector: the options per language, built once (names,
//! calling codes and example numbers come from `domain::phone_region`).

use std::sync::LazyLock;

use phonenumber::Mode;

use super::i18n::texts;
use crate::domain::phone_region::{PhoneCountry, PhoneRegion};
use crate::domain::Lang;

/// One `<option>`: its value, its text, and the hint's example while it is selected.
pub struct CountryOption {
    pub code: &'static str,
    pub label: String,
    pub example: String,
}

static OPTIONS: LazyLock<[Vec<CountryOption>; 3]> = LazyLock::new(|| Lang::ALL.map(build));

fn build(lang: Lang) -> Vec<CountryOption> {
    let t = texts(lang);
    let mut all: Vec<CountryOption> = PhoneRegion::sorted(lang)
        .iter()
        .map(|r| CountryOption {
            code: r.code(),
            label: r.label(lang),
            example: r
                .example(Mode::National)
                .map_or_else(String::new, |ex| format!("{} {ex}", t.phone_example)),
        })
        .collect();
    // Last, after the names: the way out for a country not on the list.
    all.push(CountryOption {
        code: PhoneCountry::OTHER,
        label: t.phone_country_other.to_owned(),
        example: String::new(),
    });
    all
}

/// The selector's options in `lang`, sorted by name, "other" last.
pub fn options(lang: Lang) -> &'static [CountryOption] {
    &OPTIONS[lang as usize]
}

/// The hint's example for the selected country (none for "other": the hint itself says
/// to type `+` and the code).
pub fn example(lang: Lang, selected: PhoneCountry) -> &'static str {
    options(lang)
        .iter()
        .find(|o| o.code == selected.code())
        .map_or("", |o| o.example.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_in_every_language() {
        for lang in Lang::ALL {
            let opts = options(lang);
            assert_eq!(opts.last().map(|o| o.code), Some("other"));
            assert!(opts.iter().all(|o| !o.label.is_empty()));
            assert!(opts[..opts.len() - 1]
                .iter()
                .all(|o| o.example.starts_with(texts(lang).phone_example)));
        }
        let br = PhoneCountry::parse("BR").unwrap();
        assert_eq!(example(Lang::PtBr, br), "Exemplo: (11) 96123-4567");
        assert_eq!(example(Lang::En, PhoneCountry::Other), "");
    }
}
