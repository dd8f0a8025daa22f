//! `[admin]`: how long a sign-in to the admin pages lasts, and the time zone they show
//! times in.

use std::time::Duration;

use chrono_tz::Tz;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// A session ends this long after the sign-in, however busy.
    pub session_max_age: Duration,
    /// A session ends after this long without a request.
    pub session_idle_timeout: Duration,
    /// `time_zone`, an IANA name; default `[followup] timezone`, else UTC.
    pub time_zone: Tz,
}

impl Default for AdminSettings {
    fn default() -> Self {
        // A working day at most, and a coffee break away from the desk.
        Self {
            session_max_age: Duration::from_secs(12 * 3600),
            session_idle_timeout: Duration::from_secs(30 * 60),
            time_zone: Tz::UTC,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    session_max_age: Option<String>,
    session_idle_timeout: Option<String>,
    time_zone: Option<String>,
}

pub(super) fn admin(raw: RawAdmin, business_tz: Tz, errs: &mut Vec<String>) -> AdminSettings {
    let time_zone = match raw.time_zone {
        None => business_tz,
        Some(s) => s.parse::<Tz>().unwrap_or_else(|_| {
            errs.push(format!(
                "admin.time_zone: {s:?} is not an IANA time zone such as \"America/Bogota\""
            ));
            business_tz
        }),
    };
    let defaults = AdminSettings::default();
    let mut dur = |name: &str, v: Option<String>, default: Duration| match v.map(|s| humantime::parse_duration(&s)) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            errs.push(format!("admin.{name}: must not be zero"));
            default
        }
        Some(Err(e)) => {
            errs.push(format!("admin.{name}: {e} (examples: \"30m\", \"12h\")"));
            default
        }
    };
    AdminSettings {
        time_zone,
        session_max_age: dur("session_max_age", raw.session_max_age, defaults.session_max_age),
        session_idle_timeout: dur(
            "session_idle_timeout",
            raw.session_idle_timeout,
            defaults.session_idle_timeout,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut errs = Vec::new();
        assert_eq!(admin(RawAdmin::default(), Tz::UTC, &mut errs), AdminSettings::default());
        let s = admin(
            RawAdmin {
                session_max_age: Some("2s".into()),
                session_idle_timeout: Some("1m".into()),
                time_zone: None,
            },
            Tz::America__Bogota,
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.session_max_age, Duration::from_secs(2));
        assert_eq!(s.session_idle_timeout, Duration::from_secs(60));
        assert_eq!(s.time_zone, Tz::America__Bogota, "the business hours' zone by default");
        let own = RawAdmin {
            time_zone: Some("America/Sao_Paulo".into()),
            ..RawAdmin::default()
        };
        assert_eq!(
            admin(own, Tz::America__Bogota, &mut errs).time_zone,
            Tz::America__Sao_Paulo
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn nonsense_and_zero_are_refused_naming_the_setting() {
        let mut errs = Vec::new();
        admin(
            RawAdmin {
                session_max_age: Some("0s".into()),
                session_idle_timeout: Some("a while".into()),
                time_zone: Some("Bogota".into()),
            },
            Tz::UTC,
            &mut errs,
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("admin.time_zone:"));
        assert!(errs[1].starts_with("admin.session_max_age:"));
        assert!(errs[2].starts_with("admin.session_idle_timeout:"));
    }
}
