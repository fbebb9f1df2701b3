//! Visits, their reports and report amendments. Visibility is `scope`'s: a manager sees their own visits and
//! visits of customers they see; leaders and admins see visits whose manager is in their subtree.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::scope::{self, Filter};
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::schema::{customers, users, visit_report_amendments, visit_reports, visits};

/// A visit row. Coordinates are WGS-84 (converted on input); `datum` says what the phone sent.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = visits)]
pub struct Visit {
    pub id: i64,
    pub customer_id: i64,
    pub manager_id: i64,
    pub purpose: String,
    pub phone_time: NaiveDateTime,
    pub checked_in_at: NaiveDateTime,
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub datum: String,
    pub distance_m: Option<f64>,
    pub flags: String,
    pub checked_out_at: Option<NaiveDateTime>,
    pub duration_secs: Option<i64>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new check-in.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = visits, treat_none_as_default_value = false)]
pub struct NewVisit {
    pub customer_id: i64,
    pub manager_id: i64,
    pub purpose: String,
    pub phone_time: NaiveDateTime,
    pub checked_in_at: NaiveDateTime,
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
    pub datum: String,
    pub distance_m: Option<f64>,
    pub flags: String,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A visit report (one per visit).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = visit_reports, treat_none_as_null = true)]
pub struct Report {
    pub visit_id: i64,
    pub author_id: i64,
    pub persons_met: String,
    pub summary: String,
    pub needs: Option<String>,
    pub outcome: Option<String>,
    pub next_visit_date: Option<NaiveDate>,
    pub important_change: bool,
    pub important_change_text: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An amendment to a report (append-only).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = visit_report_amendments)]
pub struct Amendment {
    pub id: i64,
    pub visit_id: i64,
    pub author_id: i64,
    pub text: String,
    pub created_at: NaiveDateTime,
}

/// Filters of the visit list (all optional, combined with AND, always within the caller's scope).
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    /// Only this manager's visits.
    pub manager_id: Option<i64>,
    /// Only visits to this customer.
    pub customer_id: Option<i64>,
    /// Only visits whose manager is in the org subtree at this path.
    pub org_path: Option<String>,
    /// Checked in at or after (stored UTC).
    pub from: Option<NaiveDateTime>,
    /// Checked in before (stored UTC).
    pub to: Option<NaiveDateTime>,
    /// Only flagged (`true`) or unflagged (`false`) check-ins.
    pub flagged: Option<bool>,
}

/// Visits `scope` may see, resolved for one list query. A manager's customers are loaded as ids first:
/// the customer scope is a boxed filter, and the two-backend connection cannot nest a boxed filter in a
/// subquery.
pub fn scoped(conn: &mut DbConn, scope: &Scope) -> QueryResult<Filter<visits::table>> {
    Ok(match scope.reach {
        Reach::Subtree => {
            Box::new(visits::manager_id.eq_any(scope::users_in_subtree(&scope.org_path)))
        }
        Reach::Own => {
            let seen: Vec<i64> = customers::table
                .filter(scope::customers(scope))
                .select(customers::id)
                .load(conn)?;
            Box::new(
                visits::manager_id
                    .eq(scope.user_id)
                    .or(visits::customer_id.eq_any(seen)),
            )
        }
    })
}

/// One visit in scope: the caller's own, one of a customer they see (managers), or one whose manager is in
/// their subtree (leaders, admins).
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Visit>> {
    let Some(v) = get(conn, id)? else {
        return Ok(None);
    };
    let visible = match scope.reach {
        Reach::Subtree => scope::sees_manager(conn, scope, v.manager_id)?,
        Reach::Own => {
            v.manager_id == scope.user_id
                || scope::find_customer(conn, scope, v.customer_id)?.is_some()
        }
    };
    Ok(visible.then_some(v))
}

/// One visit by id, unscoped (only after a scope check, or for the caller's own new row).
fn get(conn: &mut DbConn, id: i64) -> QueryResult<Option<Visit>> {
    // On the backend's own connection (every check-out and report starts here): through the two-backend
    // connection diesel renders and hashes the SQL again on every execution.
    let q = visits::table.find(id);
    crate::per_backend!(conn, |c| q.select(Visit::as_select()).first(c).optional())
}

/// The id of the manager's open visit (checked in, not out), if any.
pub fn open_of(conn: &mut DbConn, manager_id: i64) -> QueryResult<Option<i64>> {
    let q = visits::table
        .filter(visits::manager_id.eq(manager_id))
        .filter(visits::checked_out_at.is_null())
        .select(visits::id)
        .limit(1);
    let q = super::KeepPrepared(q);
    crate::per_backend!(conn, |c| q.get_result(c).optional())
}

/// The manager's latest check-in: where (WGS-84) and when (server time).
pub fn previous_of(
    conn: &mut DbConn,
    manager_id: i64,
) -> QueryResult<Option<(f64, f64, NaiveDateTime)>> {
    let q = visits::table
        .filter(visits::manager_id.eq(manager_id))
        .order((visits::checked_in_at.desc(), visits::id.desc()))
        .select((visits::latitude, visits::longitude, visits::checked_in_at))
        .limit(1);
    let q = super::KeepPrepared(q);
    crate::per_backend!(conn, |c| q.get_result(c).optional())
}

/// Inserts a check-in; returns the stored row, built from `new` and the new id: every value is stored as
/// given (instants are already whole microseconds), so reading the row back would only parse three
/// timestamps again (measured: a third of the insert's time on SQLite).
pub fn insert(conn: &mut DbConn, new: NewVisit) -> QueryResult<Visit> {
    // On the backend's own connection: there diesel keeps the prepared statement (check-ins are the
    // busiest write; see `sessions::load_caller`).
    let q = super::KeepPrepared(
        diesel::insert_into(visits::table)
            .values(&new)
            .returning(visits::id),
    );
    let id: i64 = crate::per_backend!(conn, |c| q.get_result(c))?;
    let NewVisit {
        customer_id,
        manager_id,
        purpose,
        phone_time,
        checked_in_at,
        latitude,
        longitude,
        accuracy_m,
        datum,
        distance_m,
        flags,
        seq,
        created_at,
        updated_at,
    } = new;
    Ok(Visit {
        id,
        customer_id,
        manager_id,
        purpose,
        phone_time,
        checked_in_at,
        latitude,
        longitude,
        accuracy_m,
        datum,
        distance_m,
        flags,
        checked_out_at: None,
        duration_secs: None,
        seq,
        created_at,
        updated_at,
    })
}

/// Serialises the visit writes of one manager until the transaction ends, so that two concurrent
/// check-ins cannot both find no open visit (and two check-outs cannot both close one): nothing else
/// serialises them (the change number takes no lock: `changes::bump`). PostgreSQL only: SQLite
/// has a single writer connection, whose transactions never overlap.
pub fn lock_manager(conn: &mut DbConn, manager_id: i64) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) => {
            // Two-key form: the first key names this lock class ('visi'), the second the manager.
            diesel::sql_query("SELECT pg_advisory_xact_lock(1986622313, ($1 % 2147483647)::int)")
                .bind::<diesel::sql_types::BigInt, _>(manager_id)
                .execute(c)
                .map(|_| ())
        }
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// Closes a visit at `at` with its duration, stamping `seq`.
pub fn check_out(
    conn: &mut DbConn,
    id: i64,
    at: NaiveDateTime,
    duration_secs: i64,
    seq: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let q = super::KeepPrepared(
        diesel::update(visits::table.find(id))
            .set((
                visits::checked_out_at.eq(at),
                visits::duration_secs.eq(duration_secs),
                visits::seq.eq(seq),
                visits::updated_at.eq(now),
            ))
            .returning(visits::id),
    );
    crate::per_backend!(conn, |c| q.get_result::<i64>(c)).map(|_| ())
}

/// Stamps a visit as changed (its report or amendments were written) for delta sync.
pub fn touch(conn: &mut DbConn, id: i64, seq: i64, now: NaiveDateTime) -> QueryResult<()> {
    let q = super::KeepPrepared(
        diesel::update(visits::table.find(id))
            .set((visits::seq.eq(seq), visits::updated_at.eq(now)))
            .returning(visits::id),
    );
    crate::per_backend!(conn, |c| q.get_result::<i64>(c)).map(|_| ())
}

/// A page of visits in scope, newest (highest id) first, before the id `before`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &VisitFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Visit>> {
    let mut q = visits::table.filter(scoped(conn, scope)?).into_boxed();
    if let Some(m) = f.manager_id {
        q = q.filter(visits::manager_id.eq(m));
    }
    if let Some(c) = f.customer_id {
        q = q.filter(visits::customer_id.eq(c));
    }
    if let Some(path) = &f.org_path {
        q = q.filter(visits::manager_id.eq_any(scope::users_in_subtree(path)));
    }
    if let Some(from) = f.from {
        q = q.filter(visits::checked_in_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(visits::checked_in_at.lt(to));
    }
    match f.flagged {
        Some(true) => q = q.filter(visits::flags.ne("")),
        Some(false) => q = q.filter(visits::flags.eq("")),
        None => {}
    }
    if let Some(b) = before {
        q = q.filter(visits::id.lt(b));
    }
    q.order(visits::id.desc())
        .limit(limit)
        .select(Visit::as_select())
        .load(conn)
}

/// What the view of one visit shows besides the row and its manager: its customer's name and whether it has
/// a report.
pub struct ViewParts {
    /// The customer's name.
    pub customer: Option<String>,
    /// Whether the visit has a report.
    pub has_report: bool,
}

/// [`ViewParts`] of one visit. Two fixed-shape statements on the backend's own connection (kept prepared
/// there), where the list's `IN (…)` statements are prepared anew each time: every check-out answers with
/// this view (a check-in has its parts at hand, and the detail reads them for its tag and its report).
pub fn view_parts(conn: &mut DbConn, v: &Visit) -> QueryResult<ViewParts> {
    let name = customers::table.find(v.customer_id).select(customers::name);
    let report = visit_reports::table
        .find(v.id)
        .select(visit_reports::visit_id);
    crate::per_backend!(conn, |c| Ok(ViewParts {
        customer: name.first(c).optional()?,
        has_report: report.first::<i64>(c).optional()?.is_some(),
    }))
}

/// A user's (name, employee number), for a visit's answer.
pub fn person(conn: &mut DbConn, user_id: i64) -> QueryResult<Option<(String, String)>> {
    let q = users::table
        .find(user_id)
        .select((users::name, users::employee_no))
        .limit(1);
    let q = super::KeepPrepared(q);
    crate::per_backend!(conn, |c| q.get_result(c).optional())
}

/// Names of customers by id (for visit views; the caller already sees the visits).
pub fn customer_names(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashMap<i64, String>> {
    Ok(customers::table
        .filter(customers::id.eq_any(ids))
        .select((customers::id, customers::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// Names and employee numbers of users by id.
pub fn people(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashMap<i64, (String, String)>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::name, users::employee_no))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, name, no)| (id, (name, no)))
        .collect())
}

/// Which of these visits have a report.
pub fn with_report(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashSet<i64>> {
    Ok(visit_reports::table
        .filter(visit_reports::visit_id.eq_any(ids))
        .select(visit_reports::visit_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}

/// The report of a visit, if written.
pub fn report(conn: &mut DbConn, visit_id: i64) -> QueryResult<Option<Report>> {
    visit_reports::table
        .find(visit_id)
        .select(Report::as_select())
        .first(conn)
        .optional()
}

/// Writes the first version of a report.
pub fn insert_report(conn: &mut DbConn, r: &Report) -> QueryResult<()> {
    diesel::insert_into(visit_reports::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

/// Replaces a report's content (author and first-written time are kept by the caller).
pub fn replace_report(conn: &mut DbConn, r: &Report) -> QueryResult<()> {
    diesel::update(visit_reports::table.find(r.visit_id))
        .set(r)
        .execute(conn)
        .map(|_| ())
}

/// The amendments of a visit's report, oldest first.
pub fn amendments(conn: &mut DbConn, visit_id: i64) -> QueryResult<Vec<Amendment>> {
    visit_report_amendments::table
        .filter(visit_report_amendments::visit_id.eq(visit_id))
        .order(visit_report_amendments::id.asc())
        .select(Amendment::as_select())
        .load(conn)
}

/// Appends an amendment; returns it.
pub fn add_amendment(
    conn: &mut DbConn,
    visit_id: i64,
    author_id: i64,
    text: &str,
    now: NaiveDateTime,
) -> QueryResult<Amendment> {
    diesel::insert_into(visit_report_amendments::table)
        .values((
            visit_report_amendments::visit_id.eq(visit_id),
            visit_report_amendments::author_id.eq(author_id),
            visit_report_amendments::text.eq(text),
            visit_report_amendments::created_at.eq(now),
        ))
        .returning(visit_report_amendments::id)
        .get_result::<i64>(conn)
        .and_then(|id| {
            visit_report_amendments::table
                .find(id)
                .select(Amendment::as_select())
                .first(conn)
        })
}
