//! UI languages and Accept-Language negotiation.

/// Supported UI languages. Spanish is the default: most of our traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum Lang {
    #[default]
    Es,
    PtBr,
    En,
}

/// Bounds the work done per request on hostile headers.
const MAX_ENTRIES: usize = 64;

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Es, Lang::PtBr, Lang::En];

    pub fn code(&self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::PtBr => "pt-BR",
            Lang::En => "en",
        }
    }

    /// Matches on the primary subtag only: we have one variant per
    /// language, so "pt-PT" is better served by pt-BR than by the default.
    pub fn from_code(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "es" => Some(Lang::Es),
            "pt" => Some(Lang::PtBr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Pick the best supported language from an Accept-Language header:
    /// highest q wins, ties go to the entry listed first, q=0 excludes.
    /// Malformed entries are skipped; anything unusable yields `Es`.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let Some(header) = accept_language else {
            return Lang::default();
        };
        // Per language: best (q in thousandths, position) from explicit tags.
        let mut explicit: [Option<(u16, usize)>; 3] = [None; 3];
        let mut wildcard: Option<(u16, usize)> = None;

        for (pos, entry) in header.split(',').take(MAX_ENTRIES).enumerate() {
            let Some((tag, q)) = parse_entry(entry) else {
                continue;
            };
            if tag == "*" {
                wildcard = wildcard.or(Some((q, pos)));
            } else if let Some(lang) = Lang::from_code(tag) {
                let slot = &mut explicit[lang as usize];
                // Keep the highest q so "pt-PT;q=0, pt" still accepts pt.
                if slot.is_none_or(|(best, _)| q > best) {
                    *slot = Some((q, pos));
                }
            }
        }

        let mut best: Option<(u16, usize, Lang)> = None;
        for lang in Lang::ALL {
            // "*" only covers languages not named explicitly (RFC 4647).
            let Some((q, pos)) = explicit[lang as usize].or(wildcard) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((bq, bpos, _)) => q > bq || (q == bq && pos < bpos),
            };
            if q > 0 && better {
                best = Some((q, pos, lang));
            }
        }
        best.map_or(Lang::default(), |(_, _, lang)| lang)
    }
}

/// One "tag;q=0.8" entry → (tag, q in thousandths). None if malformed.
fn parse_entry(entry: &str) -> Option<(&str, u16)> {
    let mut parts = entry.split(';');
    let tag = parts.next()?.trim();
    let tag_ok = tag == "*"
        || (!tag.is_empty() && tag.len() <= 35 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !tag_ok {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_q(value.trim())?;
        }
    }
    Some((tag, q))
}

/// RFC 9110 qvalue: "0", "1", "0.xxx", "1.000"; integer math avoids float
/// comparisons between e.g. 0.9 and 0.90.
pub(crate) fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u16::from(b - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Lang::Es.code(), "es");
        assert_eq!(Lang::PtBr.code(), "pt-BR");
        assert_eq!(Lang::En.code(), "en");
        assert_eq!(Lang::default(), Lang::Es);
        for l in Lang::ALL {
            assert_eq!(Lang::from_code(l.code()), Some(l));
        }
    }

    #[test]
    fn from_code_variants() {
        let cases = [
            ("es", Some(Lang::Es)),
            ("ES", Some(Lang::Es)),
            ("es-CO", Some(Lang::Es)),
            ("es_MX", Some(Lang::Es)),
            ("pt", Some(Lang::PtBr)),
            ("pt-br", Some(Lang::PtBr)),
            ("PT-BR", Some(Lang::PtBr)),
            ("pt-PT", Some(Lang::PtBr)),
            ("en", Some(Lang::En)),
            ("en-US", Some(Lang::En)),
            (" en-gb ", Some(Lang::En)),
            ("", None),
            ("*", None),
            ("fr", None),
            ("english", None),
            ("esp", None),
            ("-es", None),
        ];
        for (input, want) in cases {
            assert_eq!(Lang::from_code(input), want, "{input:?}");
        }
    }

    #[test]
    fn negotiate_examples() {
        let cases = [
            (None, Lang::Es),
            (Some(""), Lang::Es),
            (Some("pt-BR,pt;q=0.9,en;q=0.8"), Lang::PtBr),
            (Some("en-US;q=0.5, es;q=0.9"), Lang::Es),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("*"), Lang::Es),
            (Some("fr-FR,fr;q=0.9"), Lang::Es),
            (Some("fr-FR,fr;q=0.9,en;q=0.1"), Lang::En),
            (Some("de, pt;q=0.2, en;q=0.3"), Lang::En),
            (Some("garbage"), Lang::Es),
            (Some(";;;,,,==="), Lang::Es),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::negotiate(header), want, "{header:?}");
        }
    }

    #[test]
    fn negotiate_ties_go_to_first_listed() {
        assert_eq!(Lang::negotiate(Some("en, pt")), Lang::En);
        assert_eq!(Lang::negotiate(Some("pt;q=0.5, en;q=0.5")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("en;q=0.500, es;q=0.5")), Lang::En);
    }

    #[test]
    fn negotiate_q_zero_excludes() {
        assert_eq!(Lang::negotiate(Some("en;q=0")), Lang::Es);
        assert_eq!(Lang::negotiate(Some("es;q=0, *")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("es;q=0, pt;q=0.000, *")), Lang::En);
        assert_eq!(Lang::negotiate(Some("*;q=0, en;q=0.1")), Lang::En);
        // A broader range can still accept what a narrower one refused.
        assert_eq!(Lang::negotiate(Some("pt-PT;q=0, pt;q=0.5")), Lang::PtBr);
    }

    #[test]
    fn negotiate_wildcard_ranks_by_its_q() {
        assert_eq!(Lang::negotiate(Some("*;q=0.9, en;q=0.5")), Lang::Es);
        assert_eq!(Lang::negotiate(Some("en;q=0.5, *;q=0.4")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr, *;q=0.1")), Lang::Es);
    }

    #[test]
    fn negotiate_skips_malformed_entries() {
        // Bad q values drop just that entry.
        assert_eq!(Lang::negotiate(Some("en;q=2, pt;q=0.1")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("en;q=abc, pt;q=0.1")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("en;q=0.1234, pt;q=0.1")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("en;q, pt;q=0.1")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("en;q=-1, pt;q=0.1")), Lang::PtBr);
        assert_eq!(Lang::negotiate(Some("e n, pt;q=0.1")), Lang::PtBr);
        // Unknown params are tolerated; case and spacing too.
        assert_eq!(Lang::negotiate(Some(" EN-us ; Q = 0.7 ; x=y ")), Lang::En);
    }

    #[test]
    fn negotiate_never_panics_on_odd_input() {
        let long = "en;q=0.1,".repeat(10_000);
        let odd = [
            "\u{0}\u{1}\u{ff}".to_owned(),
            "é;q=1,ñ;q=0.5".to_owned(),
            "pt;q=0.\u{663}".to_owned(),
            "pt;q=1.".to_owned(),
            "pt;q=.5".to_owned(),
            "😀;q=😀".to_owned(),
            ";q=1".to_owned(),
            "=".repeat(5000),
            long,
            "x".repeat(100_000),
        ];
        for h in &odd {
            let _ = Lang::negotiate(Some(h));
        }
        assert_eq!(Lang::negotiate(Some(&odd[8])), Lang::En);
        // Entries beyond the cap are ignored rather than scanned.
        let late = format!("{}en", "fr,".repeat(MAX_ENTRIES));
        assert_eq!(Lang::negotiate(Some(&late)), Lang::Es);
    }

    #[test]
    fn q_parsing() {
        let cases = [
            ("0", Some(0)),
            ("1", Some(1000)),
            ("1.0", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("0.", Some(0)),
            ("1.", Some(1000)),
            ("0.1234", None),
            ("2", None),
            ("01", None),
            (".5", None),
            ("", None),
            ("+0.5", None),
            ("0.5e1", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_q(input), want, "{input:?}");
        }
    }
}
