//! When sales works: a task due at 3 a.m. on a Sunday is due on Monday morning instead.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;

/// Far enough to pass a year of holidays; keeps `next_open` finite whatever was configured.
const MAX_DAYS_AHEAD: u64 = 400;
/// Longer than any daylight-saving gap on record (they are an hour, rarely two).
const MAX_GAP_MINUTES: i64 = 24 * 60;
const DAY_MINUTES: u16 = 24 * 60;

/// Opening hours in one time zone: the same hours on each open weekday, minus holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    tz: Tz,
    /// Indexed by `Weekday::num_days_from_monday`.
    days: [bool; 7],
    /// Minutes after local midnight; `open < close <= 1440`, close exclusive.
    open: u16,
    close: u16,
    holidays: BTreeSet<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("no open day")]
    NoOpenDay,
    #[error("opening must come before closing (overnight hours are not supported)")]
    OpenNotBeforeClose,
}

impl BusinessHours {
    /// 24/7 in UTC: every instant is open.
    pub fn always() -> Self {
        BusinessHours {
            tz: Tz::UTC,
            days: [true; 7],
            open: 0,
            close: DAY_MINUTES,
            holidays: BTreeSet::new(),
        }
    }

    /// `open` and `close` are minutes after local midnight (`close` up to 1440, exclusive).
    pub fn new(
        tz: Tz,
        days: &[Weekday],
        open: u16,
        close: u16,
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, HoursError> {
        if days.is_empty() {
            return Err(HoursError::NoOpenDay);
        }
        if open >= close || close > DAY_MINUTES {
            return Err(HoursError::OpenNotBeforeClose);
        }
        let mut open_days = [false; 7];
        for d in days {
            open_days[d.num_days_from_monday() as usize] = true;
        }
        Ok(BusinessHours {
            tz,
            days: open_days,
            open,
            close,
            holidays: holidays.into_iter().collect(),
        })
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// `at_ms` if it is inside opening hours, else the next opening instant (UTC epoch ms).
    /// Local opening times that a spring-forward gap skips open at the end of the gap; ones a
    /// fall-back repeats open at their first occurrence. If no opening is found within 400
    /// days (a year of holidays), or `at_ms` is out of range, `at_ms` is returned unchanged:
    /// a late task beats none.
    pub fn next_open(&self, at_ms: i64) -> i64 {
        let Some(now) = self.tz.timestamp_millis_opt(at_ms).single() else {
            return at_ms;
        };
        let local = now.naive_local();
        let today = local.date();
        let second = local.time().num_seconds_from_midnight();
        if self.is_open_day(today) && (self.open_s()..self.close_s()).contains(&second) {
            return at_ms;
        }
        let opens_today = second < self.open_s();
        for ahead in 0..=MAX_DAYS_AHEAD {
            if ahead == 0 && !opens_today {
                continue;
            }
            let Some(day) = today.checked_add_days(Days::new(ahead)) else {
                break;
            };
            if !self.is_open_day(day) {
                continue;
            }
            let Some(opening) = day.and_hms_opt(u32::from(self.open / 60), u32::from(self.open % 60), 0) else {
                continue;
            };
            if let Some(ms) = self.resolve(opening) {
                // A fall-back can put the first occurrence of today's opening before `at_ms`
                // while the wall clock still reads earlier: it has opened already.
                return ms.max(at_ms);
            }
        }
        at_ms
    }

    fn is_open_day(&self, day: NaiveDate) -> bool {
        self.days[day.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&day)
    }

    fn open_s(&self) -> u32 {
        u32::from(self.open) * 60
    }

    fn close_s(&self) -> u32 {
        u32::from(self.close) * 60
    }

    /// A local wall-clock time as an instant: the earlier of two, or for one that does not
    /// exist the first minute after it that does (the end of the gap).
    fn resolve(&self, local: NaiveDateTime) -> Option<i64> {
        (0..=MAX_GAP_MINUTES).find_map(|m| {
            let t = local.checked_add_signed(chrono::Duration::minutes(m))?;
            self.tz.from_local_datetime(&t).earliest().map(|x| x.timestamp_millis())
        })
    }
}
