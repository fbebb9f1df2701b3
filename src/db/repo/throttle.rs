//! Guessing state of login subjects (the rule itself is `domain::login`).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::DbConn;
use crate::db::models::LoginThrottle;
use crate::db::schema::login_throttle;

/// The state of `subject`, created empty if absent, and locked until the transaction ends: of concurrent
/// guesses for one subject, each sees the state the previous one stored (PostgreSQL takes the row lock in
/// the upsert; SQLite's single writer runs one write at a time).
pub fn lock(conn: &mut DbConn, subject: &str, now: NaiveDateTime) -> QueryResult<LoginThrottle> {
    let empty = LoginThrottle {
        subject: subject.to_owned(),
        failures: 0,
        window_start: now,
        locked_until: None,
    };
    // Written in the macro: `as_returning` names the backend.
    crate::per_backend!(conn, |c| diesel::insert_into(login_throttle::table)
        .values(&empty)
        .on_conflict(login_throttle::subject)
        .do_update()
        .set(login_throttle::subject.eq(excluded(login_throttle::subject)))
        .returning(LoginThrottle::as_returning())
        .get_result(c))
}

/// Stores a subject's new state.
pub fn store(conn: &mut DbConn, state: &LoginThrottle) -> QueryResult<()> {
    diesel::update(login_throttle::table.find(&state.subject))
        .set(state)
        .execute(conn)
        .map(|_| ())
}

/// Forgets a subject (after a right password).
pub fn clear(conn: &mut DbConn, subject: &str) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(subject))
        .execute(conn)
        .map(|_| ())
}

/// Deletes the rows whose window (of length `window`) and lock are both over at `now`; returns how many.
pub fn purge(conn: &mut DbConn, now: NaiveDateTime, window: Duration) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_start.le(now - window))
            .filter(
                login_throttle::locked_until
                    .is_null()
                    .or(login_throttle::locked_until.le(now)),
            ),
    )
    .execute(conn)
}
