//! The caller's side of notifications and reminders: the inbox (only what is delivered by now), read
//! marks, the reminders list by fire date, done and snooze, and the reads behind `/me/today` (open visit,
//! birthdays of the caller's customers). Writing notifications is `repo::notifications::notify`'s job.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::repo::reminders as reminders_repo;
use crate::db::repo::sessions::{CALLER_COLUMNS, CallerRow};
use crate::db::schema::{
    customers, notifications, orgs, preferences, reminders, sessions, users, visits,
};
use crate::db::time::{Day, OptTs, Ts};

/// An inbox row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link_type: Option<String>,
    pub link_id: Option<i64>,
    pub deliver_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// A notification with the lead days of the reminder it comes from (events have none), so that its text
/// can be written again in the reader's current language.
pub type InboxRow = (Notification, Option<i32>);

macro_rules! inbox_query {
    ($user:expr, $now:expr) => {
        notifications::table
            .left_join(reminders::table.on(notifications::reminder_id.eq(reminders::id.nullable())))
            .filter(notifications::user_id.eq($user))
            .filter(notifications::deliver_at.le($now))
            .select((Notification::as_select(), reminders::lead_days.nullable()))
    };
}

/// The user's delivered notifications, newest first: ids below `before`, unread only if asked, at most
/// `limit`.
pub fn list(
    conn: &mut DbConn,
    user_id: i64,
    now: NaiveDateTime,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<InboxRow>> {
    let mut q = inbox_query!(user_id, now)
        .order(notifications::id.desc())
        .limit(limit)
        .into_boxed();
    if unread_only {
        q = q.filter(notifications::read_at.is_null());
    }
    if let Some(b) = before {
        q = q.filter(notifications::id.lt(b));
    }
    q.load(conn)
}

/// One delivered notification of the user.
pub fn find(
    conn: &mut DbConn,
    user_id: i64,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<InboxRow>> {
    inbox_query!(user_id, now)
        .filter(notifications::id.eq(id))
        .first(conn)
        .optional()
}

/// Marks one notification of the user read (the first read time is kept).
pub fn mark_read(
    conn: &mut DbConn,
    user_id: i64,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::id.eq(id))
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(now))
    .execute(conn)
}

/// Marks every delivered unread notification of the user read; returns how many.
pub fn read_all(conn: &mut DbConn, user_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null())
            .filter(notifications::deliver_at.le(now)),
    )
    .set(notifications::read_at.eq(now))
    .execute(conn)
}

/// Delivered unread notifications of the user.
pub fn unread_count(conn: &mut DbConn, user_id: i64, now: NaiveDateTime) -> QueryResult<i64> {
    crate::per_backend!(conn, |c| notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .filter(notifications::deliver_at.le(now))
        .count()
        .get_result(c))
}

/// A reminder of the user, with its customer's name while the customer is not archived.
#[derive(Debug, Clone, Queryable)]
pub struct ReminderRow {
    pub id: i64,
    pub kind: String,
    pub subject_type: String,
    pub subject_id: i64,
    #[diesel(deserialize_as = Day)]
    pub occasion_date: NaiveDate,
    pub lead_days: i32,
    #[diesel(deserialize_as = Day)]
    pub fire_date: NaiveDate,
    pub customer_id: Option<i64>,
    pub status: String,
    #[diesel(deserialize_as = Ts)]
    pub due_at: NaiveDateTime,
    #[diesel(deserialize_as = OptTs)]
    pub snoozed_until: Option<NaiveDateTime>,
    #[diesel(deserialize_as = OptTs)]
    pub notified_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = OptTs)]
    pub done_at: Option<NaiveDateTime>,
    pub customer_name: Option<String>,
    /// The version of what the row shows (`ReminderKey::version`).
    pub version: ReminderVersion,
}

/// What a reminder shows depends on the reminder (its `version`: every update adds one) and on its customer
/// while not archived (the customer's `seq`: every write takes a new one; `None` without a customer or once
/// archived). Both change with every write; a kept row is used only under the exact version it was read at.
pub type ReminderVersion = (i64, Option<i64>);

/// An open reminder's place on the home screen and its version, without its content.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct ReminderKey {
    pub id: i64,
    #[diesel(deserialize_as = Day)]
    pub fire_date: NaiveDate,
    #[diesel(deserialize_as = Ts)]
    pub due_at: NaiveDateTime,
    pub version: ReminderVersion,
}

/// The user's reminders joined with their customers while not archived.
macro_rules! user_reminders {
    ($user:expr) => {
        reminders::table
            .left_join(
                customers::table.on(reminders::customer_id
                    .eq(customers::id.nullable())
                    .and(customers::archived_at.is_null())),
            )
            .filter(reminders::user_id.eq($user))
    };
}

macro_rules! reminder_query {
    ($user:expr) => {
        user_reminders!($user).select((
            reminders::id,
            reminders::kind,
            reminders::subject_type,
            reminders::subject_id,
            reminders::occasion_date,
            reminders::lead_days,
            reminders::fire_date,
            reminders::customer_id,
            reminders::status,
            reminders::due_at,
            reminders::snoozed_until,
            reminders::notified_at,
            reminders::done_at,
            customers::name.nullable(),
            (reminders::version, customers::seq.nullable()),
        ))
    };
}

/// Most reminders one list returns.
pub const MAX_REMINDERS: i64 = 500;

/// Where a page of reminders continues: after this (due time, fire date, id), the list's order.
pub type ReminderAnchor = (NaiveDateTime, NaiveDate, i64);

/// The start of the reminder list (before every reminder).
pub fn first_anchor() -> ReminderAnchor {
    let floor = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
    (floor.and_hms_opt(0, 0, 0).unwrap_or_default(), floor, 0)
}

/// The list position of one of the user's reminders (a page's cursor names its last one).
pub fn reminder_anchor(
    conn: &mut DbConn,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<ReminderAnchor>> {
    reminders::table
        .filter(reminders::user_id.eq(user_id))
        .filter(reminders::id.eq(id))
        .select((reminders::due_at, reminders::fire_date, reminders::id))
        .first(conn)
        .optional()
}

/// The user's open reminders in a span of days: pending ones firing from `from` to `to` (inclusive) and
/// snoozed ones due again in `[start, end)` (the same days as UTC instants: a snooze moves a reminder to
/// the day it ends); done and cancelled ones left out. By due time, after `after`, at most `limit`.
pub fn list_reminders(
    conn: &mut DbConn,
    user_id: i64,
    (from, to): (NaiveDate, NaiveDate),
    (start, end): (NaiveDateTime, NaiveDateTime),
    (due, fire, id): ReminderAnchor,
    limit: i64,
) -> QueryResult<Vec<ReminderRow>> {
    reminder_query!(user_id)
        .filter(
            reminders::due_at.gt(due).or(reminders::due_at.eq(due).and(
                reminders::fire_date
                    .gt(fire)
                    .or(reminders::fire_date.eq(fire).and(reminders::id.gt(id))),
            )),
        )
        .filter(
            reminders::status
                .eq("pending")
                .and(reminders::fire_date.between(from, to))
                .or(reminders::status
                    .eq("snoozed")
                    .and(reminders::due_at.ge(start))
                    .and(reminders::due_at.lt(end))),
        )
        .order((
            reminders::due_at.asc(),
            reminders::fire_date.asc(),
            reminders::id.asc(),
        ))
        .limit(limit.min(MAX_REMINDERS))
        .load(conn)
}

/// What is open on the user's "today": pending reminders firing by `today`, and snoozed ones whose snooze
/// is over; oldest first. Keys only: the home screen renders each reminder once per version
/// (`reminders_by_ids` reads those it has not).
pub fn open_reminder_keys(
    conn: &mut DbConn,
    user_id: i64,
    today: NaiveDate,
    now: NaiveDateTime,
) -> QueryResult<Vec<ReminderKey>> {
    // Two statements, pending and snoozed, each a range of `reminders_user_status` (as one `OR`, both
    // backends read every reminder of the user), on the backend's own connection (`/me/today` runs them on
    // every call; see `sessions::load_caller`); merged here.
    let keys = || {
        user_reminders!(user_id).select((
            reminders::id,
            reminders::fire_date,
            reminders::due_at,
            (reminders::version, customers::seq.nullable()),
        ))
    };
    let pending = keys()
        .filter(reminders::status.eq("pending"))
        .filter(reminders::fire_date.le(today))
        .order((reminders::fire_date.asc(), reminders::id.asc()))
        .limit(MAX_REMINDERS);
    // The user's snoozed ones, filtered by time here: with `due_at` in the statement SQLite prefers
    // `reminders_due` and reads every user's overdue snoozed reminders.
    let snoozed = keys()
        .filter(reminders::status.eq("snoozed"))
        .limit(MAX_REMINDERS);
    let mut rows: Vec<ReminderKey> = crate::per_backend!(conn, |c| pending.load(c))?;
    let woke: Vec<ReminderKey> = crate::per_backend!(conn, |c| snoozed.load(c))?;
    rows.extend(woke.into_iter().filter(|r| r.due_at <= now));
    rows.sort_by_key(|r| (r.fire_date, r.id));
    rows.truncate(usize::try_from(MAX_REMINDERS).unwrap_or(0));
    Ok(rows)
}

/// The user's reminders with these ids (any status; another user's are left out).
pub fn reminders_by_ids(
    conn: &mut DbConn,
    user_id: i64,
    ids: &[i64],
) -> QueryResult<Vec<ReminderRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    reminder_query!(user_id)
        .filter(reminders::id.eq_any(ids))
        .load(conn)
}

/// One reminder of the user.
pub fn find_reminder(conn: &mut DbConn, user_id: i64, id: i64) -> QueryResult<Option<ReminderRow>> {
    reminder_query!(user_id)
        .filter(reminders::id.eq(id))
        .first(conn)
        .optional()
}

/// Marks a reminder done.
pub fn reminder_done(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(reminders::table.find(id))
        .set((
            reminders::status.eq("done"),
            reminders::done_at.eq(now),
            reminders_repo::touched(now),
        ))
        .execute(conn)
}

/// Snoozes a reminder until `until`: it becomes due again then and is notified anew. The scheduler writes
/// a reminder's notification under the dedupe key `r:<id>`; a snooze starts a new occasion to notify, so
/// the key of the earlier notification is retired (renamed with its id) in the same transaction, or the
/// reminder would be claimed again and never reach the inbox.
pub fn reminder_snooze(
    conn: &mut DbConn,
    id: i64,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let key = format!("r:{id}");
    let earlier: Vec<i64> = notifications::table
        .filter(notifications::dedupe_key.eq(&key))
        .select(notifications::id)
        .load(conn)?;
    for n in earlier {
        diesel::update(notifications::table.find(n))
            .set(notifications::dedupe_key.eq(format!("{key}:n{n}")))
            .execute(conn)?;
    }
    diesel::update(reminders::table.find(id))
        .set((
            reminders::status.eq("snoozed"),
            reminders::snoozed_until.eq(until),
            reminders::due_at.eq(until),
            reminders::notified_at.eq(None::<NaiveDateTime>),
            reminders_repo::touched(now),
        ))
        .execute(conn)
}

/// The head of the phone's home screen: the caller behind a live session (as `sessions::load_caller`) with
/// their language (`None`: no preferences row, the default), delivered unread notifications and open visit.
#[derive(Debug, Clone, Queryable)]
pub struct HomeHead {
    pub caller: CallerRow,
    pub language: Option<String>,
    pub unread: Option<i64>,
    pub visit_id: Option<i64>,
    pub visit_customer_id: Option<i64>,
    #[diesel(deserialize_as = OptTs)]
    pub visit_checked_in_at: Option<NaiveDateTime>,
    /// The version of the user's own live customers: the highest `seq` among them and how many there are.
    /// Every write to a customer takes a new `seq`, higher than every number settled when it starts, so once
    /// the highest is settled (`changes::settled`; always on SQLite) a customer changed or gained raises it,
    /// and one lost (archived, moved away) without other change lowers the count: the pair then changes
    /// whenever the set or any of its records does.
    pub customers_seq: Option<i64>,
    pub customers_live: Option<i64>,
}

/// `HomeHead` in one statement (`/me/today` runs it on every call; four statements before): the session
/// check joined with the preferences row and the open visit, the unread count and the customers' version
/// as scalar subqueries (the last two read an index only: `customers_live_manager` holds `seq`).
/// `None` when the session is not live. A manager has at most one open visit (check-in refuses a
/// second), so the join adds no row; the newest is taken all the same.
pub fn home_head(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<HomeHead>> {
    let unread = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .filter(notifications::deliver_at.le(now))
        .count()
        .single_value();
    let own = || {
        customers::table
            .filter(customers::manager_id.eq(user_id))
            .filter(customers::archived_at.is_null())
    };
    let customers_seq = own()
        .select(diesel::dsl::max(customers::seq))
        .single_value();
    let customers_live = own().count().single_value();
    let q = sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .left_join(preferences::table.on(preferences::user_id.eq(users::id)))
        .left_join(
            visits::table.on(visits::manager_id
                .eq(users::id)
                .and(visits::checked_out_at.is_null())),
        )
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .order(visits::id.desc())
        .select((
            CALLER_COLUMNS,
            preferences::language.nullable(),
            unread,
            visits::id.nullable(),
            visits::customer_id.nullable(),
            visits::checked_in_at.nullable(),
            customers_seq,
            customers_live,
        ));
    crate::per_backend!(conn, |c| q.first(c).optional())
}

/// A customer's birthday data.
#[derive(Debug, Clone, Queryable)]
pub struct BirthdayRow {
    pub id: i64,
    pub name: String,
    pub birthday_md: Option<String>,
    pub lunar_month: Option<i32>,
    pub lunar_day: Option<i32>,
    pub lunar_leap: bool,
}

/// The user's own (responsible, not archived) customers whose solar `MM-DD` key lies in one of the given
/// inclusive ranges or whose lunar birthday is in one of the given months, each once, by id; the caller
/// matches exact days. One small statement of fixed shape per range and month (each a range of the
/// partial index `customers_live_birthday` or `customers_live_lunar`), so each is prepared once: a week
/// has one or two ranges and one or two months.
pub fn birthday_candidates(
    conn: &mut DbConn,
    user_id: i64,
    solar_ranges: &[(String, String)],
    lunar_months: &[i32],
) -> QueryResult<Vec<BirthdayRow>> {
    let mine = customers::table
        .filter(customers::manager_id.eq(user_id))
        .filter(customers::archived_at.is_null())
        .limit(1000)
        .select((
            customers::id,
            customers::name,
            customers::birthday_md,
            customers::lunar_month,
            customers::lunar_day,
            customers::lunar_leap,
        ));
    let mut rows: Vec<BirthdayRow> = Vec::new();
    for (from, to) in solar_ranges {
        let q = mine.filter(customers::birthday_md.between(from, to));
        let found: Vec<BirthdayRow> = crate::per_backend!(conn, |c| q.load(c))?;
        rows.extend(found);
    }
    for month in lunar_months {
        let q = mine.filter(customers::lunar_month.eq(month));
        let found: Vec<BirthdayRow> = crate::per_backend!(conn, |c| q.load(c))?;
        rows.extend(found);
    }
    rows.sort_by_key(|r| r.id);
    rows.dedup_by_key(|r| r.id);
    Ok(rows)
}
