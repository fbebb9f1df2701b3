//! Work logs (工作日志): one per manager per date, read through the caller's scope — a manager sees their
//! own, leaders and admins those of the users in their subtree.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::scope::{self, Filter};
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::schema::{orgs, users, visits, worklogs};
use crate::error::{AppError, ErrorCode, ResultExt};

/// A work-log row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = worklogs)]
pub struct Worklog {
    pub id: i64,
    pub manager_id: i64,
    pub log_date: NaiveDate,
    pub content: String,
    /// JSON array of visit ids.
    pub visit_ids: String,
    pub review_mark: Option<String>,
    pub review_comment: Option<String>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<NaiveDateTime>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new work log.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = worklogs)]
pub struct NewWorklog {
    pub manager_id: i64,
    pub log_date: NaiveDate,
    pub content: String,
    pub visit_ids: String,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes by the author or a reviewer; `seq` and `updated_at` are always set.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = worklogs)]
pub struct WorklogChanges {
    pub content: Option<String>,
    pub visit_ids: Option<String>,
    pub review_mark: Option<Option<String>>,
    pub review_comment: Option<Option<String>>,
    pub reviewed_by: Option<Option<i64>>,
    pub reviewed_at: Option<Option<NaiveDateTime>>,
    pub seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Filters of the work-log list (combined with AND, always within the caller's scope).
#[derive(Debug, Clone, Default)]
pub struct WorklogFilter {
    /// Only this author's.
    pub manager_id: Option<i64>,
    /// `log_date` on or after.
    pub from: Option<NaiveDate>,
    /// `log_date` on or before.
    pub to: Option<NaiveDate>,
    /// Only reviewed (`true`) or not yet reviewed (`false`) logs.
    pub reviewed: Option<bool>,
}

/// The filter of work logs `scope` may see.
pub fn scoped(scope: &Scope) -> Filter<worklogs::table> {
    match scope.reach {
        Reach::Subtree => {
            Box::new(worklogs::manager_id.eq_any(scope::users_in_subtree(&scope.org_path)))
        }
        Reach::Own => Box::new(worklogs::manager_id.eq(scope.user_id)),
    }
}

/// How many of `ids` (distinct) are visits made by `manager_id`.
pub fn count_own_visits(conn: &mut DbConn, manager_id: i64, ids: &[i64]) -> QueryResult<i64> {
    visits::table
        .filter(visits::manager_id.eq(manager_id))
        .filter(visits::id.eq_any(ids))
        .count()
        .get_result(conn)
}

/// The id of `manager_id`'s log for `date`, if written.
pub fn id_for_date(
    conn: &mut DbConn,
    manager_id: i64,
    date: NaiveDate,
) -> QueryResult<Option<i64>> {
    worklogs::table
        .filter(worklogs::manager_id.eq(manager_id))
        .filter(worklogs::log_date.eq(date))
        .select(worklogs::id)
        .first(conn)
        .optional()
}

/// Inserts a work log; 409 `worklog_exists` if the manager has one for that date.
pub fn insert(conn: &mut DbConn, new: &NewWorklog) -> Result<i64, AppError> {
    diesel::insert_into(worklogs::table)
        .values(new)
        .returning(worklogs::id)
        .get_result(conn)
        .on_unique_violation(ErrorCode::WorklogExists)
}

/// One work log in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Worklog>> {
    worklogs::table
        .filter(worklogs::id.eq(id))
        .filter(scoped(scope))
        .select(Worklog::as_select())
        .first(conn)
        .optional()
}

/// Work logs in scope, newest first (by id), before the id `before`, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &WorklogFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Worklog>> {
    let mut q = worklogs::table.filter(scoped(scope)).into_boxed();
    if let Some(m) = f.manager_id {
        q = q.filter(worklogs::manager_id.eq(m));
    }
    if let Some(d) = f.from {
        q = q.filter(worklogs::log_date.ge(d));
    }
    if let Some(d) = f.to {
        q = q.filter(worklogs::log_date.le(d));
    }
    match f.reviewed {
        Some(true) => q = q.filter(worklogs::reviewed_at.is_not_null()),
        Some(false) => q = q.filter(worklogs::reviewed_at.is_null()),
        None => {}
    }
    if let Some(b) = before {
        q = q.filter(worklogs::id.lt(b));
    }
    q.order(worklogs::id.desc())
        .limit(limit)
        .select(Worklog::as_select())
        .load(conn)
}

/// Applies changes to a work log already checked to be in scope.
pub fn update(conn: &mut DbConn, id: i64, changes: &WorklogChanges) -> QueryResult<usize> {
    diesel::update(worklogs::table.find(id))
        .set(changes)
        .execute(conn)
}

/// The org path of a user (the audit rows of their records live there); unscoped — callers pass the owner
/// of a record already checked to be in scope.
pub fn org_path_of(conn: &mut DbConn, user_id: i64) -> QueryResult<String> {
    users::table
        .inner_join(orgs::table)
        .filter(users::id.eq(user_id))
        .select(orgs::path)
        .first(conn)
}
