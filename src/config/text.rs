//! An offer text as configured: `title = "Curso"` or
//! `title = { es = "Curso", "pt-BR" = "Curso", en = "Course" }`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::{Lang, LocalizedError, LocalizedText};

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawText {
    Plain(String),
    PerLang(BTreeMap<String, String>),
}

impl Default for RawText {
    fn default() -> Self {
        RawText::Plain(String::new())
    }
}

impl RawText {
    /// Parsed once, here; `default` is the offer's language.
    pub(super) fn parse(self, default: Lang) -> Result<LocalizedText, LocalizedError> {
        match self {
            RawText::Plain(text) => Ok(LocalizedText::plain(default, text)),
            RawText::PerLang(map) => LocalizedText::parse(default, map.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        }
    }
}
