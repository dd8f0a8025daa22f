//! The send-slot arithmetic of the CRM pacer, as pure functions: a queueing GCRA (generic
//! cell rate algorithm) whose parameters keep at most `n` calls in ANY window of the
//! vendor's length, not only in windows that start when the pacer does. The in-process
//! limiter (governor) runs the same algorithm with the same parameters; the shared pacer
//! runs it in one SQL statement (`store::pacing::reserve`) and reads its answer back here.

use std::time::Duration;

/// How calls of one lane are spaced: `burst` may go at once, then one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub burst: u32,
    pub interval: Duration,
}

impl Pace {
    /// At most `n` calls in any `window`. A GCRA with burst `b` and interval `T` lets
    /// `b + L/T` calls into a stretch of length `L`; the vendor counts rolling windows, so
    /// `b - 1 + W/T` must stay below `n + 1`, hence `T = W / (n - b + 1)`. Governor's usual
    /// setting (burst `n`, `T = W/n`) lets `2n - 1` through one rolling window, which is
    /// what gets a client a 429. Half the limit as burst keeps a lead's first calls
    /// unqueued while a backlog still drains at more than half the vendor's rate.
    pub fn within(n: u32, window: Duration) -> Pace {
        let n = n.max(1);
        let burst = n.div_ceil(2);
        let cells = u128::from(n - burst + 1);
        // Rounded up: a shorter interval would let one call too many into some window.
        let nanos = window.as_nanos().div_ceil(cells).max(1);
        let interval = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Pace { burst, interval }
    }

    /// The interval in whole milliseconds (the database clock's unit), rounded up.
    pub fn interval_ms(&self) -> i64 {
        let ms = self.interval.as_nanos().div_ceil(1_000_000);
        i64::try_from(ms).unwrap_or(i64::MAX).max(1)
    }

    /// How far before the theoretical arrival time a call may go (ms): `burst - 1` cells.
    pub fn tolerance_ms(&self) -> i64 {
        self.interval_ms().saturating_mul(i64::from(self.burst) - 1)
    }
}

/// A reserved send slot, on the clock the reservation was made with (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start: i64,
    /// The lane's theoretical arrival time after this reservation.
    pub tat: i64,
}

/// Reserves the next slot of a lane whose theoretical arrival time is `tat`, for a call
/// arriving at `now`, with the lane paused until `paused_until`. A paused lane counts
/// the call as arriving when the pause ends, so calls queued behind a pause leave in
/// bursts and intervals from then on, not all at once.
pub fn reserve(pace: &Pace, tat: i64, now: i64, paused_until: i64) -> Slot {
    let arrival = now.max(paused_until);
    let tat_after = tat.max(arrival).saturating_add(pace.interval_ms());
    Slot {
        start: start_of(pace, tat_after, now, paused_until),
        tat: tat_after,
    }
}

/// The start of the slot whose reservation moved the lane's arrival time to `tat_after`
/// (what the SQL statement answers): `max(arrival, tat_before - tolerance)`, with
/// `tat_before` recovered as `tat_after - interval` (exact when `tat_before >= arrival`,
/// and below `arrival` otherwise, where `arrival` wins either way).
pub fn start_of(pace: &Pace, tat_after: i64, now: i64, paused_until: i64) -> i64 {
    let arrival = now.max(paused_until);
    let tat_before = tat_after.saturating_sub(pace.interval_ms());
    arrival.max(tat_before.saturating_sub(pace.tolerance_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most starts that fall in any half-open window `[t, t + window)`.
    fn busiest_window(starts: &[i64], window: i64) -> usize {
        let mut s = starts.to_vec();
        s.sort_unstable();
        (0..s.len())
            .map(|i| s[i..].iter().take_while(|&&t| t < s[i] + window).count())
            .max()
            .unwrap_or(0)
    }

    /// Reserves one slot per arrival time, in order, from an idle lane.
    fn schedule(pace: &Pace, arrivals: &[i64], paused_until: i64) -> Vec<i64> {
        let mut tat = 0;
        arrivals
            .iter()
            .map(|&now| {
                let slot = reserve(pace, tat, now, paused_until);
                tat = slot.tat;
                slot.start
            })
            .collect()
    }

    #[test]
    fn parameters_for_the_vendors_limits() {
        let pd = Pace::within(20, Duration::from_secs(2));
        assert_eq!((pd.burst, pd.interval_ms(), pd.tolerance_ms()), (10, 182, 9 * 182));
        assert_eq!(Pace::within(1, Duration::from_secs(1)).interval_ms(), 1000);
        assert_eq!(Pace::within(1, Duration::from_secs(1)).tolerance_ms(), 0);
        // Zero from a configuration is read as one, never as "no limit".
        assert_eq!(
            Pace::within(0, Duration::from_secs(1)),
            Pace::within(1, Duration::from_secs(1))
        );
        // A window that does not divide evenly rounds the interval up, never down.
        assert_eq!(Pace::within(3, Duration::from_millis(1001)).interval_ms(), 501);
    }

    #[test]
    fn an_idle_lane_lets_the_burst_go_at_once_then_spaces_the_rest() {
        let pace = Pace::within(4, Duration::from_millis(1000));
        assert_eq!((pace.burst, pace.interval_ms()), (2, 334));
        let starts = schedule(&pace, &[5_000; 5], 0);
        assert_eq!(starts, vec![5_000, 5_000, 5_334, 5_668, 6_002]);
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        for n in 1..=25 {
            for window in [1000i64, 2000, 10_000] {
                let pace = Pace::within(n, Duration::from_millis(window.unsigned_abs()));
                // Everyone at once; a steady trickle; bursts every 1.3 windows.
                let flood = vec![0; 200];
                let trickle: Vec<i64> = (0..200).map(|i| i * window / 50).collect();
                let bursts: Vec<i64> = (0..200).map(|i| (i / 7) * (window * 13 / 10)).collect();
                for arrivals in [flood, trickle, bursts] {
                    let starts = schedule(&pace, &arrivals, 0);
                    let most = busiest_window(&starts, window);
                    assert!(most <= n as usize, "n={n} window={window}: {most} calls in one window");
                    assert!(
                        starts.iter().zip(&arrivals).all(|(s, a)| s >= a),
                        "a slot before its call"
                    );
                }
            }
        }
    }

    #[test]
    fn the_old_setting_would_break_a_rolling_window() {
        // Burst n with interval W/n (governor's usual quota) lets 2n - 1 into one window.
        let (n, window) = (4u32, 1000i64);
        let old = Pace {
            burst: n,
            interval: Duration::from_millis(250),
        };
        let starts = schedule(&old, &[0; 20], 0);
        assert_eq!(busiest_window(&starts, window), 2 * n as usize - 1);
    }

    #[test]
    fn calls_queued_behind_a_pause_start_after_it_and_stay_spaced() {
        let pace = Pace::within(4, Duration::from_millis(1000));
        let starts = schedule(&pace, &[0, 10, 20, 30, 40], 2_000);
        assert_eq!(starts, vec![2_000, 2_000, 2_334, 2_668, 3_002]);
        // A backlog that reaches past the pause keeps its slots.
        let slot = reserve(&pace, 9_000, 100, 2_000);
        assert_eq!((slot.start, slot.tat), (9_000 - pace.tolerance_ms(), 9_334));
    }

    #[test]
    fn the_start_read_back_from_the_new_arrival_time_is_the_reserved_one() {
        let pace = Pace::within(7, Duration::from_millis(2000));
        for tat in [0, 900, 1_000, 1_500, 4_000, 20_000] {
            for now in [0, 1_000, 1_700, 3_000] {
                for paused in [0, 1_200, 5_000] {
                    let slot = reserve(&pace, tat, now, paused);
                    assert_eq!(
                        start_of(&pace, slot.tat, now, paused),
                        slot.start,
                        "{tat} {now} {paused}"
                    );
                }
            }
        }
    }
}
