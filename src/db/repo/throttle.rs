//! Failed-login bookkeeping (the rule itself is `domain::auth_rules::after_failure`).

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::LoginThrottle;
use crate::db::schema::login_throttle;

/// The state for an employee number, if any failures are on record.
pub fn get(conn: &mut DbConn, employee_no: &str) -> QueryResult<Option<LoginThrottle>> {
    login_throttle::table
        .find(employee_no)
        .select(LoginThrottle::as_select())
        .first(conn)
        .optional()
}

/// Stores the new state (insert or replace).
pub fn put(conn: &mut DbConn, state: &LoginThrottle) -> QueryResult<()> {
    let q = diesel::insert_into(login_throttle::table)
        .values(state)
        .on_conflict(login_throttle::employee_no)
        .do_update()
        .set(state);
    crate::per_backend!(conn, |c| q.execute(c)).map(|_| ())
}

/// Forgets failures after a successful login.
pub fn clear(conn: &mut DbConn, employee_no: &str) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(employee_no))
        .execute(conn)
        .map(|_| ())
}
