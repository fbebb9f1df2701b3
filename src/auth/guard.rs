//! Guessing limits on every password check: a login, or the current password of a password change. Each
//! check first reserves a guess for the employee number and for the client address (`domain::login`), in
//! the same write that reads the user; the password is verified only once reserved, off the database
//! connection; the outcome is then settled (a right password gives its guesses back).

use chrono::NaiveDateTime;

use crate::db::DbConn;
use crate::db::models::LoginThrottle;
use crate::db::repo::throttle;
use crate::domain::login::{Gate, Limit, ThrottleState, refund, reserve};
use crate::error::AppResult;

/// What a right password does to a subject's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnRight {
    /// Forget the subject's guesses (the account: its owner got in).
    Clear,
    /// Give back only this guess (the address: other accounts' failures from it still count).
    Refund,
}

/// The subjects one password check counts against.
#[derive(Debug, Clone)]
pub struct Guard {
    subjects: Vec<(String, Limit, OnRight)>,
}

impl Guard {
    /// Counts against `employee_no` (as typed, known or not) and, when known, the client address, which may
    /// make `per_address` guesses per window over all accounts.
    pub fn new(employee_no: &str, client_ip: Option<&str>, per_address: i32) -> Self {
        let mut subjects = vec![(
            format!("no:{employee_no}"),
            Limit::account(),
            OnRight::Clear,
        )];
        if let Some(ip) = client_ip {
            subjects.push((
                format!("ip:{ip}"),
                Limit::per_window(per_address),
                OnRight::Refund,
            ));
        }
        Self { subjects }
    }

    /// Reserves one guess on every subject, atomically with any concurrent check: `Err(seconds)` if one of
    /// them is locked (then nothing is counted).
    pub fn reserve(&self, conn: &mut DbConn, now: NaiveDateTime) -> AppResult<Result<(), u64>> {
        let mut next = Vec::with_capacity(self.subjects.len());
        let mut shut = None::<u64>;
        for (subject, limit, _) in &self.subjects {
            let row = throttle::lock(conn, subject, now)?;
            match reserve(Some(&state_of(&row)), now, *limit) {
                Gate::Open(s) => next.push(row_of(subject, s)),
                Gate::Shut(secs) => shut = Some(shut.map_or(secs, |s| s.max(secs))),
            }
        }
        if let Some(secs) = shut {
            return Ok(Err(secs));
        }
        for row in &next {
            throttle::store(conn, row)?;
        }
        Ok(Ok(()))
    }

    /// After a right password: the account's guesses are forgotten, the address's guess given back.
    pub fn right(&self, conn: &mut DbConn, now: NaiveDateTime) -> AppResult<()> {
        for (subject, limit, on_right) in &self.subjects {
            match on_right {
                OnRight::Clear => throttle::clear(conn, subject)?,
                OnRight::Refund => {
                    let row = throttle::lock(conn, subject, now)?;
                    throttle::store(conn, &row_of(subject, refund(state_of(&row), *limit)))?;
                }
            }
        }
        Ok(())
    }
}

fn state_of(row: &LoginThrottle) -> ThrottleState {
    ThrottleState {
        failures: row.failures,
        window_start: row.window_start,
        locked_until: row.locked_until,
    }
}

fn row_of(subject: &str, s: ThrottleState) -> LoginThrottle {
    LoginThrottle {
        subject: subject.to_owned(),
        failures: s.failures,
        window_start: s.window_start,
        locked_until: s.locked_until,
    }
}
