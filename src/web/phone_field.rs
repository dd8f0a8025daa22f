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

/// The `<option>` list per language, escaped once: it is most of the form's markup, and
/// escaping it on every request was the page's largest cost.
static RENDERED: LazyLock<[Rendered; 3]> = LazyLock::new(|| Lang::ALL.map(render));

/// One language's option list as HTML, and where `selected` goes in each option.
struct Rendered {
    html: String,
    /// Per option (in list order): the offset just after its `data-example` attribute.
    marks: Vec<usize>,
}

fn render(lang: Lang) -> Rendered {
    let esc =
        |s: &str| askama::filters::escape(s, askama::filters::Html).map_or_else(|_| String::new(), |e| e.to_string());
    let mut html = String::new();
    let mut marks = Vec::new();
    for o in options(lang) {
        html.push_str(&format!(
            "<option value=\"{}\" data-example=\"{}\"",
            esc(o.code),
            esc(&o.example)
        ));
        marks.push(html.len());
        html.push_str(&format!(">{}</option>\n    ", esc(&o.label)));
    }
    Rendered { html, marks }
}

/// The selector's options in `lang` as HTML (already escaped), `selected` on the option
/// for `selected` (none when it is not on the list).
#[derive(Clone, Copy)]
pub struct OptionsHtml {
    lang: Lang,
    selected: &'static str,
}

impl OptionsHtml {
    pub fn new(lang: Lang, selected: PhoneCountry) -> Self {
        Self {
            lang,
            selected: selected.code(),
        }
    }
}

impl std::fmt::Display for OptionsHtml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &RENDERED[self.lang as usize];
        let at = options(self.lang)
            .iter()
            .position(|o| o.code == self.selected)
            .and_then(|i| r.marks.get(i).copied());
        match at {
            Some(at) => {
                f.write_str(&r.html[..at])?;
                f.write_str(" selected")?;
                f.write_str(&r.html[at..])
            }
            None => f.write_str(&r.html),
        }
    }
}

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

    /// The cached markup is what the template's loop rendered: every option, escaped,
    /// exactly one `selected` and on the chosen country.
    use askama::Template;

    #[derive(Template)]
    #[template(
        source = "{% for o in phone_countries %}<option value=\"{{ o.code }}\" data-example=\"{{ o.example }}\"{% if o.code == phone_country %} selected{% endif %}>{{ o.label }}</option>\n    {% endfor %}",
        ext = "html"
    )]
    struct Loop {
        phone_countries: &'static [CountryOption],
        phone_country: &'static str,
    }

    #[test]
    fn rendered_options_mark_only_the_chosen_country() {
        let br = PhoneCountry::parse("BR").unwrap();
        for lang in Lang::ALL {
            let html = OptionsHtml::new(lang, br).to_string();
            assert_eq!(html.matches("<option ").count(), options(lang).len());
            assert_eq!(html.matches(" selected").count(), 1);
            assert!(html.contains(&format!(
                "<option value=\"BR\" data-example=\"{}\" selected>",
                example(lang, br)
            )));
            let other = OptionsHtml::new(lang, PhoneCountry::Other).to_string();
            assert!(other.contains("<option value=\"other\" data-example=\"\" selected>"));
        }
        // Byte for byte what the template's own loop made of the same list.
        for lang in Lang::ALL {
            for selected in [br, PhoneCountry::Other] {
                let looped = Loop {
                    phone_countries: options(lang),
                    phone_country: selected.code(),
                }
                .render()
                .unwrap();
                assert_eq!(OptionsHtml::new(lang, selected).to_string(), looped);
            }
        }
    }
}
