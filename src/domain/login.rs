//! The login lockout rule. Every password check (a login, or a password change's current password) first
//! *reserves* a guess for the employee number and for the client address; only a reserved guess is
//! verified. Five guesses within 15 minutes lock an employee number for 15 minutes, so at most five are ever
//! verified in a window however many arrive at once; a right password gives its guess back. It applies to
//! unknown employee numbers too, so the answer never tells whether one exists.

use chrono::{Duration, NaiveDateTime};

/// Guesses per window for one employee number.
pub const MAX_FAILURES: i32 = 5;
/// Minutes in which guesses are counted together (and a lock lasts).
pub const WINDOW_MINUTES: i64 = 15;
/// Minutes a lock lasts.
pub const LOCK_MINUTES: i64 = 15;

/// How many guesses a key may make per window, and how long it is locked when it has made them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Guesses per window; the last one locks.
    pub max: i32,
    /// Length of the counting window.
    pub window: Duration,
    /// Length of a lock.
    pub lock: Duration,
}

impl Limit {
    /// The per-account limit: five guesses, 15 minutes.
    pub fn account() -> Self {
        Self::per_window(MAX_FAILURES)
    }

    /// `max` guesses per 15 minutes, then a 15-minute lock (the per-address limit uses it).
    pub fn per_window(max: i32) -> Self {
        Self {
            max: max.max(1),
            window: Duration::minutes(WINDOW_MINUTES),
            lock: Duration::minutes(LOCK_MINUTES),
        }
    }
}

/// Guessing state of one key (an employee number or a client address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    /// Guesses reserved in the current window (a right password gives its guess back).
    pub failures: i32,
    /// When the window began.
    pub window_start: NaiveDateTime,
    /// Locked until then, if locked.
    pub locked_until: Option<NaiveDateTime>,
}

/// Whether a guess may be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Yes; store this state (the guess is counted).
    Open(ThrottleState),
    /// No; retry after this many seconds (at least 1).
    Shut(u64),
}

fn secs_until(until: NaiveDateTime, now: NaiveDateTime) -> u64 {
    let ms = (until - now).num_milliseconds();
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Seconds to wait if locked at `now` (rounded up, at least 1).
pub fn retry_after(state: Option<&ThrottleState>, now: NaiveDateTime) -> Option<u64> {
    let until = state?.locked_until?;
    (until > now).then(|| secs_until(until, now))
}

/// Reserves one guess at `now`: shut while locked (or, should a window be full without a lock, until it
/// ends); otherwise the guess is counted, and the one that fills the window locks the key.
pub fn reserve(prev: Option<&ThrottleState>, now: NaiveDateTime, limit: Limit) -> Gate {
    if let Some(secs) = retry_after(prev, now) {
        return Gate::Shut(secs);
    }
    let fresh = |failures: i32, window_start: NaiveDateTime| ThrottleState {
        failures,
        window_start,
        locked_until: (failures >= limit.max).then(|| now + limit.lock),
    };
    let Some(p) = prev else {
        return Gate::Open(fresh(1, now));
    };
    let window_end = p.window_start + limit.window;
    if window_end <= now || p.locked_until.is_some() {
        // The window is over, or the lock it ended in has passed: start afresh.
        return Gate::Open(fresh(1, now));
    }
    if p.failures >= limit.max {
        return Gate::Shut(secs_until(window_end, now));
    }
    Gate::Open(fresh(p.failures + 1, p.window_start))
}

/// The state after a reserved guess turned out right: the guess is given back (and a lock it set lifted).
pub fn refund(state: ThrottleState, limit: Limit) -> ThrottleState {
    let failures = (state.failures - 1).max(0);
    ThrottleState {
        failures,
        locked_until: state.locked_until.filter(|_| failures >= limit.max),
        ..state
    }
}

/// Whether a stored state no longer matters at `now` (window and lock both over): such rows are deleted.
pub fn expired(state: &ThrottleState, now: NaiveDateTime, limit: Limit) -> bool {
    state.window_start + limit.window <= now && state.locked_until.is_none_or(|u| u <= now)
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

    fn open(g: Gate) -> ThrottleState {
        match g {
            Gate::Open(s) => s,
            Gate::Shut(secs) => panic!("shut for {secs} s"),
        }
    }

    #[test]
    fn the_fifth_guess_in_a_window_is_the_last_and_locks_for_fifteen_minutes() {
        let limit = Limit::account();
        let mut s = None;
        for i in 0..4 {
            s = Some(open(reserve(s.as_ref(), t(i), limit)));
            assert_eq!(retry_after(s.as_ref(), t(i)), None);
        }
        let locked = open(reserve(s.as_ref(), t(4), limit));
        assert_eq!(locked.failures, 5);
        assert_eq!(retry_after(Some(&locked), t(4)), Some(15 * 60));
        assert_eq!(reserve(Some(&locked), t(5), limit), Gate::Shut(14 * 60));
        assert_eq!(retry_after(Some(&locked), t(18)), Some(60));
        assert_eq!(retry_after(Some(&locked), t(19)), None);
        assert_eq!(
            open(reserve(Some(&locked), t(19), limit)).failures,
            1,
            "a guess after the lock starts afresh"
        );
    }

    #[test]
    fn however_many_arrive_at_once_only_five_are_reserved() {
        let limit = Limit::account();
        let mut s: Option<ThrottleState> = None;
        let mut reserved = 0;
        for _ in 0..60 {
            if let Gate::Open(next) = reserve(s.as_ref(), t(0), limit) {
                reserved += 1;
                s = Some(next);
            }
        }
        assert_eq!(reserved, 5);
    }

    #[test]
    fn guesses_spread_beyond_the_window_do_not_lock() {
        let limit = Limit::account();
        let mut s = None;
        for i in 0..10 {
            s = Some(open(reserve(s.as_ref(), t(i * 4), limit)));
            assert_eq!(s.as_ref().and_then(|x| x.locked_until), None, "guess {i}");
        }
    }

    #[test]
    fn a_right_password_gives_its_guess_back_and_lifts_the_lock_it_set() {
        let limit = Limit::per_window(3);
        let a = open(reserve(None, t(0), limit));
        let b = open(reserve(Some(&a), t(1), limit));
        let c = open(reserve(Some(&b), t(2), limit));
        assert!(c.locked_until.is_some(), "the third guess of three locks");
        let back = refund(c, limit);
        assert_eq!((back.failures, back.locked_until), (2, None));
        assert_eq!(open(reserve(Some(&back), t(3), limit)).failures, 3);
        assert_eq!(refund(open(reserve(None, t(0), limit)), limit).failures, 0);
    }

    #[test]
    fn a_full_window_without_a_lock_stays_shut_until_it_ends() {
        let limit = Limit::account();
        let full = ThrottleState {
            failures: 5,
            window_start: t(0),
            locked_until: None,
        };
        assert_eq!(reserve(Some(&full), t(10), limit), Gate::Shut(5 * 60));
        assert_eq!(open(reserve(Some(&full), t(15), limit)).failures, 1);
    }

    #[test]
    fn rows_expire_once_window_and_lock_are_over() {
        let limit = Limit::account();
        let s = open(reserve(None, t(0), limit));
        assert!(!expired(&s, t(14), limit));
        assert!(expired(&s, t(15), limit));
        let locked = ThrottleState {
            locked_until: Some(t(20)),
            ..s
        };
        assert!(!expired(&locked, t(16), limit));
        assert!(expired(&locked, t(20), limit));
    }
}
