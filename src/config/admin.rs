//! `[admin]`: how long a sign-in to the admin pages lasts.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// A session ends this long after the sign-in, however busy.
    pub session_max_age: Duration,
    /// A session ends after this long without a request.
    pub session_idle_timeout: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        // A working day at most, and a coffee break away from the desk.
        Self {
            session_max_age: Duration::from_secs(12 * 3600),
            session_idle_timeout: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    session_max_age: Option<String>,
    session_idle_timeout: Option<String>,
}

pub(super) fn admin(raw: RawAdmin, errs: &mut Vec<String>) -> AdminSettings {
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
        assert_eq!(admin(RawAdmin::default(), &mut errs), AdminSettings::default());
        let s = admin(
            RawAdmin {
                session_max_age: Some("2s".into()),
                session_idle_timeout: Some("1m".into()),
            },
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(s.session_max_age, Duration::from_secs(2));
        assert_eq!(s.session_idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn nonsense_and_zero_are_refused_naming_the_setting() {
        let mut errs = Vec::new();
        admin(
            RawAdmin {
                session_max_age: Some("0s".into()),
                session_idle_timeout: Some("a while".into()),
            },
            &mut errs,
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("admin.session_max_age:"));
        assert!(errs[1].starts_with("admin.session_idle_timeout:"));
    }
}
