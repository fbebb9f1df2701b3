//! The scheduler's SQL: set-based `INSERT … SELECT … ON CONFLICT DO NOTHING` per (kind, occasion date,
//! lead) over the look-ahead window, so any number of runs on any number of instances create each reminder
//! once; and the set-based clean-up that keeps pending reminders with their subject's current manager.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::sql_types::{Date, Integer, Text, Timestamp};

use crate::db::DbConn;
use crate::db::schema::{customer_contacts, customers, holdings, reminders, visit_reports, visits};
use crate::domain::reminders::{Kind, LunarKey};

/// One (kind, occasion, lead) to generate: the reminder fires on `fire` and is due at `due` (UTC).
#[derive(Debug, Clone, Copy)]
pub struct Occasion {
    /// Reminder kind.
    pub kind: Kind,
    /// The occasion date (birthday, maturity, due date…).
    pub occasion: NaiveDate,
    /// Days before the occasion (negative: after).
    pub lead: i32,
    /// The date it fires (`occasion - lead`).
    pub fire: NaiveDate,
    /// When it becomes due (UTC).
    pub due: NaiveDateTime,
}

macro_rules! columns {
    () => {
        (
            reminders::kind,
            reminders::subject_type,
            reminders::subject_id,
            reminders::occasion_date,
            reminders::lead_days,
            reminders::fire_date,
            reminders::user_id,
            reminders::customer_id,
            reminders::status,
            reminders::due_at,
            reminders::created_at,
            reminders::updated_at,
        )
    };
}

/// The constant part of a generated row, as SQL values.
macro_rules! consts {
    ($o:expr, $subject:expr, $now:expr) => {
        (
            $o.kind.as_str().into_sql::<Text>(),
            $subject.into_sql::<Text>(),
            $o.occasion.into_sql::<Date>(),
            $o.lead.into_sql::<Integer>(),
            $o.fire.into_sql::<Date>(),
            "pending".into_sql::<Text>(),
            $o.due.into_sql::<Timestamp>(),
            $now.into_sql::<Timestamp>(),
        )
    };
}

/// Runs an insert-from-select on either backend and returns the rows created.
macro_rules! insert_select {
    ($conn:expr, $select:expr) => {{
        let q = diesel::insert_into(reminders::table)
            .values($select)
            .into_columns(columns!())
            .on_conflict_do_nothing();
        crate::per_backend!(&mut *$conn, |c| q.execute(c))
    }};
}

/// Customer birthdays on `o.occasion`: solar ones by `MM-DD` key (no lunar birthday set), lunar ones by
/// key. Returns how many reminders were created.
pub fn customer_birthdays(
    conn: &mut DbConn,
    o: Occasion,
    solar: &[String],
    lunar: &[LunarKey],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "customer", now);
    let mut n = insert_select!(
        conn,
        customers::table
            .filter(customers::archived_at.is_null())
            .filter(customers::lunar_month.is_null())
            .filter(customers::birthday_md.eq_any(solar))
            .select((
                k,
                st,
                customers::id,
                occ,
                lead,
                fire,
                customers::manager_id,
                customers::id.nullable(),
                status,
                due,
                at,
                at,
            ))
    )?;
    for key in lunar {
        let (k, st, occ, lead, fire, status, due, at) = consts!(o, "customer", now);
        n += insert_select!(
            conn,
            customers::table
                .filter(customers::archived_at.is_null())
                .filter(customers::lunar_month.eq(key.month))
                .filter(customers::lunar_day.eq(key.day))
                .filter(customers::lunar_leap.eq(key.leap))
                .select((
                    k,
                    st,
                    customers::id,
                    occ,
                    lead,
                    fire,
                    customers::manager_id,
                    customers::id.nullable(),
                    status,
                    due,
                    at,
                    at,
                ))
        )?;
    }
    Ok(n)
}

/// Key-contact birthdays on `o.occasion` (to the customer's responsible manager).
pub fn contact_birthdays(
    conn: &mut DbConn,
    o: Occasion,
    solar: &[String],
    lunar: &[LunarKey],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "contact", now);
    let mut n = insert_select!(
        conn,
        customer_contacts::table
            .inner_join(customers::table)
            .filter(customers::archived_at.is_null())
            .filter(customer_contacts::archived_at.is_null())
            .filter(customer_contacts::lunar_month.is_null())
            .filter(customer_contacts::birthday_md.eq_any(solar))
            .select((
                k,
                st,
                customer_contacts::id,
                occ,
                lead,
                fire,
                customers::manager_id,
                customers::id.nullable(),
                status,
                due,
                at,
                at,
            ))
    )?;
    for key in lunar {
        let (k, st, occ, lead, fire, status, due, at) = consts!(o, "contact", now);
        n += insert_select!(
            conn,
            customer_contacts::table
                .inner_join(customers::table)
                .filter(customers::archived_at.is_null())
                .filter(customer_contacts::archived_at.is_null())
                .filter(customer_contacts::lunar_month.eq(key.month))
                .filter(customer_contacts::lunar_day.eq(key.day))
                .filter(customer_contacts::lunar_leap.eq(key.leap))
                .select((
                    k,
                    st,
                    customer_contacts::id,
                    occ,
                    lead,
                    fire,
                    customers::manager_id,
                    customers::id.nullable(),
                    status,
                    due,
                    at,
                    at,
                ))
        )?;
    }
    Ok(n)
}

/// Holdings maturing on `o.occasion` (loans excluded: they have their own kinds).
pub fn maturities(conn: &mut DbConn, o: Occasion, now: NaiveDateTime) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "holding", now);
    insert_select!(
        conn,
        holdings::table
            .inner_join(customers::table)
            .filter(customers::archived_at.is_null())
            .filter(holdings::archived_at.is_null())
            .filter(holdings::product_type.ne("loan"))
            .filter(holdings::maturity_date.eq(o.occasion))
            .select((
                k,
                st,
                holdings::id,
                occ,
                lead,
                fire,
                customers::manager_id,
                customers::id.nullable(),
                status,
                due,
                at,
                at,
            ))
    )
}

/// Loans whose next repayment falls on `o.occasion` (`LoanDue` before it, `LoanOverdue` after it for
/// loans not repaid — still carrying that repayment date).
pub fn loans(conn: &mut DbConn, o: Occasion, now: NaiveDateTime) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "holding", now);
    insert_select!(
        conn,
        holdings::table
            .inner_join(customers::table)
            .filter(customers::archived_at.is_null())
            .filter(holdings::archived_at.is_null())
            .filter(holdings::product_type.eq("loan"))
            .filter(holdings::next_repayment_date.eq(o.occasion))
            .select((
                k,
                st,
                holdings::id,
                occ,
                lead,
                fire,
                customers::manager_id,
                customers::id.nullable(),
                status,
                due,
                at,
                at,
            ))
    )
}

/// Next visits planned in a visit report for `o.occasion` (to the visit's manager).
pub fn next_visits(conn: &mut DbConn, o: Occasion, now: NaiveDateTime) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "visit", now);
    insert_select!(
        conn,
        visit_reports::table
            .inner_join(visits::table)
            .filter(visit_reports::next_visit_date.eq(o.occasion))
            .select((
                k,
                st,
                visits::id,
                occ,
                lead,
                fire,
                visits::manager_id,
                visits::customer_id.nullable(),
                status,
                due,
                at,
                at,
            ))
    )
}

/// Keeps pending reminders with their customer: cancels those of archived customers and hands the others
/// to the customer's current responsible manager (after a transfer). Two set-based updates.
pub fn follow_customers(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let archived = customers::table
        .filter(customers::archived_at.is_not_null())
        .select(customers::id.nullable());
    let cancelled = diesel::update(
        reminders::table
            .filter(reminders::status.eq_any(["pending", "snoozed"]))
            .filter(reminders::customer_id.eq_any(archived)),
    )
    .set((
        reminders::status.eq("cancelled"),
        reminders::updated_at.eq(now),
    ))
    .execute(conn)?;
    // Reminders whose user is no longer the customer's manager (moved): hand them over. Visit reminders
    // stay with the manager who planned the visit.
    let moved: Vec<(i64, i64)> = reminders::table
        .inner_join(customers::table.on(reminders::customer_id.eq(customers::id.nullable())))
        .filter(reminders::status.eq_any(["pending", "snoozed"]))
        .filter(reminders::subject_type.ne("visit"))
        .filter(reminders::user_id.ne(customers::manager_id))
        .select((reminders::id, customers::manager_id))
        .load(conn)?;
    let mut n = cancelled;
    for (id, manager) in &moved {
        n += diesel::update(reminders::table.find(id))
            .set((
                reminders::user_id.eq(manager),
                reminders::notified_at.eq(None::<NaiveDateTime>),
                reminders::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(n)
}

/// Drops the pending reminders of a subject whose date changed (a birthday or maturity edited); the next
/// scheduler pass creates the right ones.
pub fn forget_subject(
    conn: &mut DbConn,
    subject_type: &str,
    subject_id: i64,
) -> QueryResult<usize> {
    diesel::delete(
        reminders::table
            .filter(reminders::subject_type.eq(subject_type))
            .filter(reminders::subject_id.eq(subject_id))
            .filter(reminders::status.eq("pending"))
            .filter(reminders::notified_at.is_null()),
    )
    .execute(conn)
}

/// A due reminder to turn into a notification.
#[derive(Debug, Clone, Queryable)]
pub struct Due {
    /// Reminder id.
    pub id: i64,
    /// Kind (stored string).
    pub kind: String,
    /// Subject type (deep link type).
    pub subject_type: String,
    /// Subject id.
    pub subject_id: i64,
    /// Lead in days.
    pub lead_days: i32,
    /// Recipient.
    pub user_id: i64,
    /// Due time.
    pub due_at: NaiveDateTime,
}

/// Pending (or snoozed) reminders due by `now` and not yet notified, oldest first, at most `limit`.
pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<Due>> {
    reminders::table
        .filter(reminders::status.eq_any(["pending", "snoozed"]))
        .filter(reminders::notified_at.is_null())
        .filter(reminders::due_at.le(now))
        .order(reminders::due_at.asc())
        .limit(limit)
        .select((
            reminders::id,
            reminders::kind,
            reminders::subject_type,
            reminders::subject_id,
            reminders::lead_days,
            reminders::user_id,
            reminders::due_at,
        ))
        .load(conn)
}

/// Marks reminders notified (only those still un-notified: a concurrent pass that got there first wins).
/// Returns the ids this call marked.
pub fn mark_notified(conn: &mut DbConn, ids: &[i64], now: NaiveDateTime) -> QueryResult<Vec<i64>> {
    diesel::update(
        reminders::table
            .filter(reminders::id.eq_any(ids))
            .filter(reminders::notified_at.is_null()),
    )
    .set((
        reminders::notified_at.eq(now),
        reminders::updated_at.eq(now),
    ))
    .returning(reminders::id)
    .get_results(conn)
}

/// Whether any reminder exists for this subject (tests and diagnostics).
pub fn exists_for(conn: &mut DbConn, subject_type: &str, subject_id: i64) -> QueryResult<bool> {
    diesel::select(exists(
        reminders::table
            .filter(reminders::subject_type.eq(subject_type))
            .filter(reminders::subject_id.eq(subject_id)),
    ))
    .get_result(conn)
}
