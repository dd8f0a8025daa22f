//! A moment as a person reads it: in a time zone, with the month's name and the clock
//! of their language ("1 dic 2026, 14:30", "Dec 1, 2026, 2:30 PM").

use chrono::{DateTime, Locale};
use chrono_tz::Tz;

use super::Lang;

/// `ms` since the epoch in `tz`, written the way `lang` writes dates; "-" if out of range.
pub fn format(ms: i64, lang: Lang, tz: Tz) -> String {
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        return "-".into();
    };
    let local = t.with_timezone(&tz);
    let (pattern, locale) = match lang {
        Lang::Es => ("%-d %b %Y, %H:%M", Locale::es_CO),
        Lang::PtBr => ("%-d %b %Y, %H:%M", Locale::pt_BR),
        Lang::En => ("%b %-d, %Y, %-I:%M %p", Locale::en_US),
    };
    local.format_localized(pattern, locale).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 19:30:00 UTC.
    const AT: i64 = 1_796_153_400_000;

    #[test]
    fn each_language_writes_its_own_date_in_the_zone_asked() {
        let bogota = Tz::America__Bogota;
        assert_eq!(format(AT, Lang::Es, bogota), "1 dic 2026, 14:30");
        assert_eq!(format(AT, Lang::PtBr, Tz::America__Sao_Paulo), "1 dez 2026, 16:30");
        assert_eq!(format(AT, Lang::En, bogota), "Dec 1, 2026, 2:30 PM");
        assert_eq!(format(AT, Lang::Es, Tz::UTC), "1 dic 2026, 19:30");
    }

    #[test]
    fn out_of_range_is_a_dash() {
        assert_eq!(format(i64::MAX, Lang::Es, Tz::UTC), "-");
    }
}
