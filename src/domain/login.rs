//! The login lockout rule: 5 failures within 15 minutes lock an employee number for 15 minutes.
//! It applies to unknown employee numbers too, so the answer never tells whether one exists.

use chrono::{Duration, NaiveDateTime};

/// Failures that trigger a lock.
pub const MAX_FAILURES: i32 = 5;
/// Minutes in which failures are counted together.
pub const WINDOW_MINUTES: i64 = 15;
/// Minutes a lock lasts.
pub const LOCK_MINUTES: i64 = 15;

/// Failed-login state of one employee number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    /// Failures in the current window.
    pub failures: i32,
    /// When the window began.
    pub window_start: NaiveDateTime,
    /// Locked until then, if locked.
    pub locked_until: Option<NaiveDateTime>,
}

/// Seconds to wait if locked at `now` (rounded up, at least 1).
pub fn retry_after(state: Option<&ThrottleState>, now: NaiveDateTime) -> Option<u64> {
    let until = state?.locked_until?;
    (until > now).then(|| {
        let ms = (until - now).num_milliseconds();
        u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
    })
}

/// The state after one more failure at `now`.
pub fn after_failure(prev: Option<ThrottleState>, now: NaiveDateTime) -> ThrottleState {
    let fresh = ThrottleState {
        failures: 1,
        window_start: now,
        locked_until: None,
    };
    let Some(p) = prev else { return fresh };
    let window_over = p.window_start + Duration::minutes(WINDOW_MINUTES) <= now;
    let lock_over = p.locked_until.is_some_and(|u| u <= now);
    if window_over || lock_over {
        return fresh;
    }
    let failures = p.failures + 1;
    let locked_until = (failures >= MAX_FAILURES).then(|| now + Duration::minutes(LOCK_MINUTES));
    ThrottleState {
        failures,
        window_start: p.window_start,
        locked_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc()
            + Duration::minutes(min)
    }

    #[test]
    fn fifth_failure_in_window_locks_for_fifteen_minutes() {
        let mut s = None;
        for i in 0..4 {
            s = Some(after_failure(s, t(i)));
            assert_eq!(retry_after(s.as_ref(), t(i)), None);
        }
        let locked = after_failure(s, t(4));
        assert_eq!(locked.failures, 5);
        assert_eq!(retry_after(Some(&locked), t(4)), Some(15 * 60));
        assert_eq!(retry_after(Some(&locked), t(18)), Some(60));
        assert_eq!(retry_after(Some(&locked), t(19)), None);
        assert_eq!(
            after_failure(Some(locked), t(19)).failures,
            1,
            "a failure after the lock starts afresh"
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let mut s = None;
        for i in 0..10 {
            s = Some(after_failure(s, t(i * 4)));
            assert_eq!(s.as_ref().and_then(|x| x.locked_until), None, "failure {i}");
        }
    }
}
