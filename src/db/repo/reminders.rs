//! The scheduler's SQL: set-based `INSERT … SELECT … ON CONFLICT DO NOTHING` per (kind, occasion date,
//! lead) over the look-ahead window, so any number of runs on any number of instances create each reminder
//! once; and the set-based clean-up that keeps pending reminders with their subject's current manager.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::exists;
use diesel::dsl::not;
use diesel::prelude::*;
use diesel::sql_types::{Date, Integer, Text, Timestamp};

use crate::db::DbConn;
use crate::db::schema::{
    customer_contacts, customers, holdings, reminders, task_assignees, tasks, users, visit_reports,
    visits, worklogs,
};
use crate::domain::reminders::{Kind, LunarKey};

/// What every update of a reminder sets besides its own columns: the time, and a version one higher. The
/// home screen keeps each reminder rendered under its version (`inbox::ReminderVersion`), so an update that
/// left the version alone would show stale there.
#[diesel::dsl::auto_type]
pub fn touched(now: NaiveDateTime) -> _ {
    (
        reminders::updated_at.eq(now),
        reminders::version.eq(reminders::version + 1_i64),
    )
}

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
            .filter(holdings::status.eq("active"))
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
            .filter(holdings::status.eq("active"))
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
/// to the customer's current responsible manager (after a transfer). Set-based: a reminder the new manager
/// already has (generated after the move) is cancelled, the rest move with one update.
pub fn follow_customers(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    const OPEN: [&str; 3] = ["pending", "snoozed", "muted"];
    let archived = customers::table
        .filter(customers::archived_at.is_not_null())
        .select(customers::id.nullable());
    let cancelled = diesel::update(
        reminders::table
            .filter(reminders::status.eq_any(OPEN))
            .filter(reminders::customer_id.eq_any(archived)),
    )
    .set((reminders::status.eq("cancelled"), touched(now)))
    .execute(conn)?;
    // Reminders whose user is no longer the customer's manager (moved). Visit reminders stay with the
    // manager who planned the visit; task reminders with their assignee.
    let current_manager = || {
        customers::table
            .filter(customers::id.nullable().eq(reminders::customer_id))
            .select(customers::manager_id)
            .single_value()
    };
    let r2 = diesel::alias!(reminders as r2);
    let duplicate = r2
        .filter(r2.field(reminders::kind).eq(reminders::kind))
        .filter(
            r2.field(reminders::subject_type)
                .eq(reminders::subject_type),
        )
        .filter(r2.field(reminders::subject_id).eq(reminders::subject_id))
        .filter(
            r2.field(reminders::occasion_date)
                .eq(reminders::occasion_date),
        )
        .filter(r2.field(reminders::lead_days).eq(reminders::lead_days))
        .filter(r2.field(reminders::id).ne(reminders::id))
        .filter(
            r2.field(reminders::user_id)
                .nullable()
                .eq(current_manager()),
        );
    let moved_away = || {
        reminders::table
            .filter(reminders::status.eq_any(OPEN))
            .filter(reminders::subject_type.ne_all(["visit", "task", "user"]))
            .filter(reminders::customer_id.is_not_null())
            .filter(reminders::user_id.nullable().ne(current_manager()))
    };
    let superseded = diesel::update(moved_away().filter(exists(duplicate)))
        .set((reminders::status.eq("cancelled"), touched(now)))
        .execute(conn)?;
    let handed = diesel::update(moved_away())
        .set((
            reminders::user_id.eq(current_manager().assume_not_null()),
            reminders::notified_at.eq(None::<NaiveDateTime>),
            touched(now),
        ))
        .execute(conn)?;
    Ok(cancelled + superseded + handed)
}

/// Task reminders for tasks due on local date `o.occasion` (`[day_start, day_end)` in UTC), one per open
/// assignee: `TaskDue` fires at `o.due` (the morning before), `TaskOverdue` at the task's due time.
pub fn tasks_due(
    conn: &mut DbConn,
    o: Occasion,
    day: (NaiveDateTime, NaiveDateTime),
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "task", now);
    let open = tasks::table
        .inner_join(task_assignees::table)
        .filter(tasks::status.eq("open"))
        .filter(task_assignees::status.eq("open"))
        .filter(tasks::due_at.ge(day.0))
        .filter(tasks::due_at.lt(day.1));
    // Only the due time differs: the morning before (constant) or the task's own due time.
    macro_rules! per_assignee {
        ($due:expr) => {
            insert_select!(
                conn,
                open.select((
                    k,
                    st,
                    tasks::id,
                    occ,
                    lead,
                    fire,
                    task_assignees::user_id,
                    tasks::customer_id,
                    status,
                    $due,
                    at,
                    at,
                ))
            )
        };
    }
    if o.kind == Kind::TaskOverdue {
        per_assignee!(tasks::due_at.assume_not_null())
    } else {
        per_assignee!(due)
    }
}

/// "Work log missing" for `o.occasion` (a working day, at `o.due`): every active manager without a work
/// log of that date. Run at or after the due time, so a log filed earlier in the day prevents it.
pub fn worklogs_missing(conn: &mut DbConn, o: Occasion, now: NaiveDateTime) -> QueryResult<usize> {
    let (k, st, occ, lead, fire, status, due, at) = consts!(o, "user", now);
    let filed = worklogs::table
        .filter(worklogs::manager_id.eq(users::id))
        .filter(worklogs::log_date.eq(o.occasion));
    insert_select!(
        conn,
        users::table
            .filter(users::role.eq("manager"))
            .filter(users::active.eq(true))
            .filter(not(exists(filed)))
            .select((
                k,
                st,
                users::id,
                occ,
                lead,
                fire,
                users::id,
                None::<i64>.into_sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(),
                status,
                due,
                at,
                at,
            ))
    )
}

/// Mutes (status `muted`) the open, un-notified reminders of `kind` at `lead` of the given users, or of
/// everyone but them with `except`; the unique key keeps a muted reminder from being generated again.
pub fn mute(
    conn: &mut DbConn,
    kind: Kind,
    lead: i32,
    users_: &[i64],
    except: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut q = diesel::update(reminders::table)
        .filter(reminders::kind.eq(kind.as_str()))
        .filter(reminders::lead_days.eq(lead))
        .filter(reminders::status.eq("pending"))
        .filter(reminders::notified_at.is_null())
        .into_boxed();
    q = if except {
        q.filter(reminders::user_id.ne_all(users_))
    } else {
        q.filter(reminders::user_id.eq_any(users_))
    };
    q.set((reminders::status.eq("muted"), touched(now)))
        .execute(conn)
}

/// The (kind, lead) pairs of open, un-notified reminders (a lead someone chose earlier and dropped since
/// still has rows to mute).
pub fn open_leads(conn: &mut DbConn) -> QueryResult<Vec<(String, i32)>> {
    reminders::table
        .filter(reminders::status.eq("pending"))
        .filter(reminders::notified_at.is_null())
        .select((reminders::kind, reminders::lead_days))
        .distinct()
        .load(conn)
}

/// Unmutes the muted reminders of `kind` at `lead` of the given users (who turned it back on) that have
/// not yet passed (fire date from `today`): a reminder of last week is not sent late.
pub fn unmute(
    conn: &mut DbConn,
    kind: Kind,
    lead: i32,
    users_: &[i64],
    today: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        reminders::table
            .filter(reminders::kind.eq(kind.as_str()))
            .filter(reminders::lead_days.eq(lead))
            .filter(reminders::status.eq("muted"))
            .filter(reminders::fire_date.ge(today))
            .filter(reminders::user_id.eq_any(users_)),
    )
    .set((reminders::status.eq("pending"), touched(now)))
    .execute(conn)
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
            .filter(reminders::status.eq_any(["pending", "muted"]))
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
    // Re-checked at the claim: a snooze or a "done" that committed since `due` read the row wins.
    diesel::update(
        reminders::table
            .filter(reminders::id.eq_any(ids))
            .filter(reminders::notified_at.is_null())
            .filter(reminders::status.eq_any(["pending", "snoozed"]))
            .filter(reminders::due_at.le(now)),
    )
    .set((reminders::notified_at.eq(now), touched(now)))
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
