//! Tasks (待办) and their assignees. A task is visible to its creator and its assignees only; its status is
//! `open` until every assignee is done (`done`) or the creator cancels it (`cancelled`). The scheduler's
//! pending due reminders of a task are dropped when its due time changes, and cancelled when it closes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::caller::Scope;
use crate::db::DbConn;
use crate::db::repo::reminders as reminders_repo;
use crate::db::repo::scope;
use crate::db::schema::{orgs, reminders, task_assignees, tasks, users};

/// A task row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub priority: String,
    pub customer_id: Option<i64>,
    pub created_by: i64,
    pub org_id: i64,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new task.
#[derive(Debug, Insertable)]
#[diesel(table_name = tasks)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub due_at: Option<NaiveDateTime>,
    pub priority: String,
    pub customer_id: Option<i64>,
    pub created_by: i64,
    pub org_id: i64,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a task; `Some(None)` clears a nullable column.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tasks)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub due_at: Option<Option<NaiveDateTime>>,
    pub priority: Option<String>,
    pub customer_id: Option<Option<i64>>,
    pub updated_at: Option<NaiveDateTime>,
}

/// One assignee of a task.
#[derive(Debug, Clone, Queryable)]
pub struct Assignee {
    pub task_id: i64,
    pub user_id: i64,
    pub name: String,
    pub status: String,
    pub done_at: Option<NaiveDateTime>,
}

/// Which of the caller's tasks a list shows.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only tasks assigned to the caller (`Some(true)`) or created by them (`Some(false)`).
    pub assigned: Option<bool>,
    /// Only this status.
    pub status: Option<String>,
}

/// Inserts a task and its assignees; returns the id.
pub fn insert(conn: &mut DbConn, new: &NewTask, assignees: &[i64]) -> QueryResult<i64> {
    let id: i64 = diesel::insert_into(tasks::table)
        .values(new)
        .returning(tasks::id)
        .get_result(conn)?;
    let rows: Vec<_> = assignees
        .iter()
        .map(|u| {
            (
                task_assignees::task_id.eq(id),
                task_assignees::user_id.eq(*u),
                task_assignees::status.eq("open"),
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        let q = diesel::insert_into(task_assignees::table).values(chunk);
        // Multi-row inserts run on the concrete backend.
        crate::per_backend!(&mut *conn, |c| q.execute(c))?;
    }
    Ok(id)
}

/// Of `ids`, the active users in the org subtree at `path`.
pub fn active_in_subtree(conn: &mut DbConn, path: &str, ids: &[i64]) -> QueryResult<Vec<i64>> {
    users::table
        .inner_join(orgs::table)
        .filter(users::id.eq_any(ids))
        .filter(users::active.eq(true))
        .filter(orgs::path.like(format!("{path}%")))
        .select(users::id)
        .load(conn)
}

fn assigned_to(
    user_id: i64,
) -> diesel::dsl::Select<
    diesel::dsl::Filter<task_assignees::table, diesel::dsl::Eq<task_assignees::user_id, i64>>,
    task_assignees::task_id,
> {
    task_assignees::table
        .filter(task_assignees::user_id.eq(user_id))
        .select(task_assignees::task_id)
}

/// A task in the caller's scope (`scope::tasks`).
pub fn find_visible(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Task>> {
    tasks::table
        .filter(tasks::id.eq(id))
        .filter(scope::tasks(scope))
        .select(Task::as_select())
        .first(conn)
        .optional()
}

/// The tasks in the caller's scope, newest first (`f.assigned` narrows to one side): ids below `before`,
/// at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &TaskFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Task>> {
    let mut q = tasks::table
        .select(Task::as_select())
        .order(tasks::id.desc())
        .limit(limit)
        .into_boxed();
    q = match f.assigned {
        Some(true) => q.filter(tasks::id.eq_any(assigned_to(scope.user_id))),
        Some(false) => q.filter(tasks::created_by.eq(scope.user_id)),
        None => q.filter(scope::tasks(scope)),
    };
    if let Some(s) = &f.status {
        q = q.filter(tasks::status.eq(s.clone()));
    }
    if let Some(b) = before {
        q = q.filter(tasks::id.lt(b));
    }
    q.load(conn)
}

/// The assignees of these tasks, by task and user.
pub fn assignees_of(conn: &mut DbConn, task_ids: &[i64]) -> QueryResult<Vec<Assignee>> {
    task_assignees::table
        .inner_join(users::table.on(users::id.eq(task_assignees::user_id)))
        .filter(task_assignees::task_id.eq_any(task_ids))
        .order((task_assignees::task_id.asc(), task_assignees::user_id.asc()))
        .select((
            task_assignees::task_id,
            task_assignees::user_id,
            users::name,
            task_assignees::status,
            task_assignees::done_at,
        ))
        .load(conn)
}

/// Applies changes to a task if it is still open; returns 0 if it is not (closed meanwhile).
pub fn update(conn: &mut DbConn, id: i64, changes: &TaskChanges) -> QueryResult<usize> {
    diesel::update(tasks::table.find(id).filter(tasks::status.eq("open")))
        .set(changes)
        .execute(conn)
}

/// Stamps an open task as changed; returns 0 if it is not open. Being an `UPDATE`, it also takes the
/// task's row lock on PostgreSQL (SQLite has one writer anyway), so that assignees finishing at the same
/// moment, or a finish racing a cancel, run one after the other: the last finisher then sees every
/// other part done, where under READ COMMITTED each would count the other's part as still open and the
/// task would stay open forever.
pub fn lock_open(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(tasks::table.find(id).filter(tasks::status.eq("open")))
        .set(tasks::updated_at.eq(now))
        .execute(conn)
}

/// Marks the user's part of a task done; returns 1 if it was open.
pub fn assignee_done(
    conn: &mut DbConn,
    task_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        task_assignees::table
            .filter(task_assignees::task_id.eq(task_id))
            .filter(task_assignees::user_id.eq(user_id))
            .filter(task_assignees::status.eq("open")),
    )
    .set((
        task_assignees::status.eq("done"),
        task_assignees::done_at.eq(now),
    ))
    .execute(conn)
}

/// Assignees of a task still open.
pub fn open_assignees(conn: &mut DbConn, task_id: i64) -> QueryResult<i64> {
    task_assignees::table
        .filter(task_assignees::task_id.eq(task_id))
        .filter(task_assignees::status.eq("open"))
        .count()
        .get_result(conn)
}

/// Closes an open task (`done` or `cancelled`); returns 0 if it was not open any more.
pub fn close(conn: &mut DbConn, id: i64, status: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(tasks::table.find(id).filter(tasks::status.eq("open")))
        .set((tasks::status.eq(status), tasks::updated_at.eq(now)))
        .execute(conn)
}

/// Drops the open reminders of a task whose due time changed (the scheduler makes the right ones on its
/// next pass). Open means pending, snoozed or muted (by the user's preferences), notified already or not:
/// each speaks of the old due time, so a shown one would linger on the "today" screen and a snoozed one
/// would fire again, both stale. Deleted rather than cancelled, so that moving the due time back
/// regenerates them (occurrences are unique per occasion). Done ones stay as history.
pub fn forget_reminders(conn: &mut DbConn, task_id: i64) -> QueryResult<usize> {
    diesel::delete(
        reminders::table
            .filter(reminders::subject_type.eq("task"))
            .filter(reminders::subject_id.eq(task_id))
            .filter(reminders::status.eq_any(["pending", "snoozed", "muted"])),
    )
    .execute(conn)
}

/// Cancels the open reminders of a task (of one user, or everyone's).
pub fn cancel_reminders(
    conn: &mut DbConn,
    task_id: i64,
    user_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut q = diesel::update(reminders::table)
        .filter(reminders::subject_type.eq("task"))
        .filter(reminders::subject_id.eq(task_id))
        .filter(reminders::status.eq_any(["pending", "snoozed"]))
        .into_boxed();
    if let Some(u) = user_id {
        q = q.filter(reminders::user_id.eq(u));
    }
    q.set((
        reminders::status.eq("cancelled"),
        reminders_repo::touched(now),
    ))
    .execute(conn)
}

/// A task due, for the home screen.
#[derive(Debug, Clone, Queryable)]
pub struct TaskDue {
    pub id: i64,
    pub title: String,
    pub due_at: NaiveDateTime,
    pub priority: String,
    pub customer_id: Option<i64>,
}

/// The user's open tasks (open for them, and not cancelled) due before `until`, by due time.
pub fn due_for(conn: &mut DbConn, user_id: i64, until: NaiveDateTime) -> QueryResult<Vec<TaskDue>> {
    type Row = (i64, String, Option<NaiveDateTime>, String, Option<i64>);
    let rows: Vec<Row> = crate::per_backend!(conn, |c| tasks::table
        .inner_join(task_assignees::table)
        .filter(task_assignees::user_id.eq(user_id))
        .filter(task_assignees::status.eq("open"))
        .filter(tasks::status.eq("open"))
        .filter(tasks::due_at.lt(until))
        .order((tasks::due_at.asc(), tasks::id.asc()))
        .limit(200)
        .select((
            tasks::id,
            tasks::title,
            tasks::due_at,
            tasks::priority,
            tasks::customer_id,
        ))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, title, due, priority, customer_id)| {
            due.map(|due_at| TaskDue {
                id,
                title,
                due_at,
                priority,
                customer_id,
            })
        })
        .collect())
}
