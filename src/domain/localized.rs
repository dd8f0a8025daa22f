//! An offer's text in each language it was written in: what the customer reads is in
//! their language when the seller wrote it, else in the offer's own language.

use super::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalizedText {
    /// The offer's language: always present, what every missing language falls back to.
    default: Lang,
    /// Indexed by `Lang as usize`.
    texts: [Option<String>; 3],
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LocalizedError {
    /// Only the exact codes we serve, so a typo ("pt_BR", "EN") is not silently ignored.
    #[error("unknown language {0:?} (use es, pt-BR or en)")]
    UnknownLang(String),
    #[error("no text in the offer's language {0}, which every other language falls back to")]
    MissingDefault(&'static str),
}

impl LocalizedText {
    /// The same text whatever the language: a plain string in the configuration.
    pub fn plain(default: Lang, text: impl Into<String>) -> Self {
        let mut texts = [None, None, None];
        texts[default as usize] = Some(text.into());
        Self { default, texts }
    }

    /// From `(language code, text)` pairs as configured; the default language must be there.
    pub fn parse<'a>(
        default: Lang,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LocalizedError> {
        let mut texts = [None, None, None];
        for (code, text) in pairs {
            let lang = Lang::ALL
                .into_iter()
                .find(|l| l.code() == code)
                .ok_or_else(|| LocalizedError::UnknownLang(code.chars().take(16).collect()))?;
            texts[lang as usize] = Some(text.to_owned());
        }
        if texts[default as usize].is_none() {
            return Err(LocalizedError::MissingDefault(default.code()));
        }
        Ok(Self { default, texts })
    }

    /// The text in `lang`, or in the offer's language when the seller wrote none for it.
    pub fn get(&self, lang: Lang) -> &str {
        self.texts[lang as usize]
            .as_deref()
            .or(self.texts[self.default as usize].as_deref())
            .unwrap_or_default()
    }

    /// The text in the offer's own language: for sales (CRM deals, tasks, the CLI).
    pub fn default_text(&self) -> &str {
        self.get(self.default)
    }

    pub fn default_lang(&self) -> Lang {
        self.default
    }

    /// Every language's text is blank (an offer without a description).
    pub fn is_blank(&self) -> bool {
        self.texts.iter().flatten().all(|t| t.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_is_every_language() {
        let t = LocalizedText::plain(Lang::Es, "Curso");
        for lang in Lang::ALL {
            assert_eq!(t.get(lang), "Curso");
        }
        assert_eq!(t.default_text(), "Curso");
        assert!(!t.is_blank());
        assert!(LocalizedText::plain(Lang::Es, " ").is_blank());
    }

    #[test]
    fn a_missing_language_falls_back_to_the_offers() {
        let t = LocalizedText::parse(Lang::PtBr, [("pt-BR", "Curso"), ("en", "Course")]).unwrap();
        assert_eq!(t.get(Lang::En), "Course");
        assert_eq!(t.get(Lang::PtBr), "Curso");
        assert_eq!(t.get(Lang::Es), "Curso", "es falls back to pt-BR, the offer's language");
        assert_eq!(t.default_text(), "Curso");
        assert_eq!(t.default_lang(), Lang::PtBr);
    }

    #[test]
    fn the_default_language_must_be_written() {
        assert_eq!(
            LocalizedText::parse(Lang::Es, [("en", "Course")]),
            Err(LocalizedError::MissingDefault("es"))
        );
        assert_eq!(
            LocalizedText::parse(Lang::Es, []),
            Err(LocalizedError::MissingDefault("es"))
        );
    }

    #[test]
    fn only_the_codes_we_serve_are_keys() {
        for bad in ["pt", "pt_BR", "EN", "fr", ""] {
            assert_eq!(
                LocalizedText::parse(Lang::Es, [("es", "x"), (bad, "y")]),
                Err(LocalizedError::UnknownLang(bad.into())),
                "{bad}"
            );
        }
    }
}
