//! The countries a customer can pick beside the phone field: where our customers come
//! from (Latin America and the Caribbean, US, CA, ES, PT) and a few common others.
//! Calling codes and example numbers come from the phone metadata, never typed here.

use std::sync::LazyLock;

use phonenumber::metadata::DATABASE;
use phonenumber::Mode;

use super::Lang;

/// One selectable country: ISO 3166 alpha-2 code and its name per language (a struct,
/// so a missing translation is a compile error).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Country {
    pub code: &'static str,
    es: &'static str,
    pt_br: &'static str,
    en: &'static str,
}

const fn c(code: &'static str, es: &'static str, pt_br: &'static str, en: &'static str) -> Country {
    Country { code, es, pt_br, en }
}

static COUNTRIES: &[Country] = &[
    c("AG", "Antigua y Barbuda", "Antígua e Barbuda", "Antigua and Barbuda"),
    c("AR", "Argentina", "Argentina", "Argentina"),
    c("AW", "Aruba", "Aruba", "Aruba"),
    c("BB", "Barbados", "Barbados", "Barbados"),
    c("BO", "Bolivia", "Bolívia", "Bolivia"),
    c("BR", "Brasil", "Brasil", "Brazil"),
    c("BS", "Bahamas", "Bahamas", "Bahamas"),
    c("BZ", "Belice", "Belize", "Belize"),
    c("CL", "Chile", "Chile", "Chile"),
    c("CO", "Colombia", "Colômbia", "Colombia"),
    c("CR", "Costa Rica", "Costa Rica", "Costa Rica"),
    c("CU", "Cuba", "Cuba", "Cuba"),
    c("CW", "Curazao", "Curaçao", "Curaçao"),
    c("DM", "Dominica", "Dominica", "Dominica"),
    c(
        "DO",
        "República Dominicana",
        "República Dominicana",
        "Dominican Republic",
    ),
    c("EC", "Ecuador", "Equador", "Ecuador"),
    c("GD", "Granada", "Granada", "Grenada"),
    c("GF", "Guayana Francesa", "Guiana Francesa", "French Guiana"),
    c("GT", "Guatemala", "Guatemala", "Guatemala"),
    c("GY", "Guyana", "Guiana", "Guyana"),
    c("HN", "Honduras", "Honduras", "Honduras"),
    c("HT", "Haití", "Haiti", "Haiti"),
    c("JM", "Jamaica", "Jamaica", "Jamaica"),
    c(
        "KN",
        "San Cristóbal y Nieves",
        "São Cristóvão e Névis",
        "Saint Kitts and Nevis",
    ),
    c("LC", "Santa Lucía", "Santa Lúcia", "Saint Lucia"),
    c("MX", "México", "México", "Mexico"),
    c("NI", "Nicaragua", "Nicarágua", "Nicaragua"),
    c("PA", "Panamá", "Panamá", "Panama"),
    c("PE", "Perú", "Peru", "Peru"),
    c("PR", "Puerto Rico", "Porto Rico", "Puerto Rico"),
    c("PY", "Paraguay", "Paraguai", "Paraguay"),
    c("SR", "Surinam", "Suriname", "Suriname"),
    c("SV", "El Salvador", "El Salvador", "El Salvador"),
    c("TT", "Trinidad y Tobago", "Trinidad e Tobago", "Trinidad and Tobago"),
    c("UY", "Uruguay", "Uruguai", "Uruguay"),
    c(
        "VC",
        "San Vicente y las Granadinas",
        "São Vicente e Granadinas",
        "Saint Vincent and the Grenadines",
    ),
    c("VE", "Venezuela", "Venezuela", "Venezuela"),
    c("US", "Estados Unidos", "Estados Unidos", "United States"),
    c("CA", "Canadá", "Canadá", "Canada"),
    c("ES", "España", "Espanha", "Spain"),
    c("PT", "Portugal", "Portugal", "Portugal"),
    c("DE", "Alemania", "Alemanha", "Germany"),
    c("FR", "Francia", "França", "France"),
    c("IT", "Italia", "Itália", "Italy"),
    c("GB", "Reino Unido", "Reino Unido", "United Kingdom"),
    c("CH", "Suiza", "Suíça", "Switzerland"),
    c("NL", "Países Bajos", "Países Baixos", "Netherlands"),
];

/// A value that is not a country on our list (a tampered form or a bad prefill link).
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("not a country on the list")]
pub struct UnlistedRegion;

/// A country from the list, so a number typed without `+` is read as its national number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneRegion(&'static Country);

impl PhoneRegion {
    /// Case-insensitive, so a prefill link may say `br`.
    pub fn parse(input: &str) -> Result<PhoneRegion, UnlistedRegion> {
        let s = input.trim();
        COUNTRIES
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(s))
            .map(PhoneRegion)
            .ok_or(UnlistedRegion)
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn name(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Es => self.0.es,
            Lang::PtBr => self.0.pt_br,
            Lang::En => self.0.en,
        }
    }

    /// E.g. 55 for Brazil; the list's test guarantees every entry has one.
    pub fn calling_code(&self) -> Option<u16> {
        DATABASE.by_id(self.0.code).map(|m| m.country_code())
    }

    /// "Brasil (+55)".
    pub fn label(&self, lang: Lang) -> String {
        match self.calling_code() {
            Some(code) => format!("{} (+{code})", self.name(lang)),
            None => self.name(lang).to_owned(),
        }
    }

    /// A mobile number as people there write it, e.g. "(11) 96123-4567" for Brazil.
    pub fn example(&self, mode: Mode) -> Option<String> {
        let id = self.0.code.parse::<phonenumber::country::Id>().ok()?;
        let meta = DATABASE.by_id(self.0.code)?;
        let d = meta.descriptors();
        let example = d.mobile().or(d.fixed_line())?.example()?;
        let n = phonenumber::parse(Some(id), example).ok()?;
        Some(n.format().mode(mode).to_string())
    }

    /// The list sorted by its names in `lang`.
    pub fn sorted(lang: Lang) -> &'static [PhoneRegion] {
        static SORTED: LazyLock<[Vec<PhoneRegion>; 3]> = LazyLock::new(|| Lang::ALL.map(sort_by_name));
        &SORTED[lang as usize]
    }

    /// The region a visitor's browser names (`pt-BR` → BR), preferring higher q and then
    /// the first listed; None when no entry names a listed country.
    pub fn from_accept_language(header: Option<&str>) -> Option<PhoneRegion> {
        let mut best: Option<(u16, PhoneRegion)> = None;
        // Bounded like `Lang::negotiate`, against hostile headers.
        for entry in header?.split(',').take(64) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map_or(Some(1000), |v| super::lang::parse_q(v.trim()));
            // The region is the first two-letter subtag after the language ("zh-Hant-TW").
            let region = tag
                .split(['-', '_'])
                .skip(1)
                .find(|s| s.len() == 2)
                .and_then(|s| PhoneRegion::parse(s).ok());
            if let (Some(q), Some(region)) = (q, region) {
                if q > 0 && best.is_none_or(|(b, _)| q > b) {
                    best = Some((q, region));
                }
            }
        }
        best.map(|(_, r)| r)
    }
}

fn sort_by_name(lang: Lang) -> Vec<PhoneRegion> {
    let mut all: Vec<PhoneRegion> = COUNTRIES.iter().map(PhoneRegion).collect();
    all.sort_by_cached_key(|r| collation_key(r.name(lang)));
    all
}

/// Folds the accents our names use, so "Haití" sorts among the H's. Good enough for a
/// fixed list of names; not a general collation.
fn collation_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'Á' => 'a',
            'é' | 'ê' | 'É' => 'e',
            'í' | 'Í' => 'i',
            'ó' | 'ô' | 'õ' | 'Ó' => 'o',
            'ú' | 'ü' | 'Ú' => 'u',
            'ç' => 'c',
            // Spanish sorts ñ after n; folding keeps "España" next to "Estados Unidos".
            'ñ' => 'n',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// What the visitor picked beside the phone field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneCountry {
    Region(PhoneRegion),
    /// Not on the list: the number must be typed with `+` and its country code.
    Other,
}

impl PhoneCountry {
    /// The option value of the "other" choice.
    pub const OTHER: &'static str = "other";

    pub fn parse(input: &str) -> Result<PhoneCountry, UnlistedRegion> {
        if input.trim().eq_ignore_ascii_case(Self::OTHER) {
            return Ok(PhoneCountry::Other);
        }
        PhoneRegion::parse(input).map(PhoneCountry::Region)
    }

    /// The form's option value.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneCountry::Region(r) => r.code(),
            PhoneCountry::Other => Self::OTHER,
        }
    }

    /// The region numbers without `+` are read in, if any.
    pub fn region(&self) -> Option<PhoneRegion> {
        match self {
            PhoneCountry::Region(r) => Some(*r),
            PhoneCountry::Other => None,
        }
    }

    /// What the form preselects: the browser's region, else the offer's, else "other".
    pub fn default_for(accept_language: Option<&str>, offer_region: &str) -> PhoneCountry {
        PhoneRegion::from_accept_language(accept_language)
            .or_else(|| PhoneRegion::parse(offer_region).ok())
            .map_or(PhoneCountry::Other, PhoneCountry::Region)
    }
}

#[cfg(test)]
mod tests;
