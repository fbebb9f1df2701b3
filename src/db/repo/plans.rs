//! Work plans (工作计划), weekly or monthly, read through the caller's scope — a manager sees their own,
//! leaders and admins those of the users in their subtree. Plans are not synced (no `seq`).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::scope::{self, Filter};
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::schema::plans;

/// A plan row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plans)]
pub struct Plan {
    pub id: i64,
    pub manager_id: i64,
    pub period: String,
    pub period_start: NaiveDate,
    pub title: String,
    /// JSON array of `{text, status}`.
    pub items: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new plan.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = plans)]
pub struct NewPlan {
    pub manager_id: i64,
    pub period: String,
    pub period_start: NaiveDate,
    pub title: String,
    pub items: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes by the author; `updated_at` is always set.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = plans)]
pub struct PlanChanges {
    pub title: Option<String>,
    pub items: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Filters of the plan list (combined with AND, always within the caller's scope).
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    /// Only this author's.
    pub manager_id: Option<i64>,
    /// Only `week` or `month` plans.
    pub period: Option<String>,
    /// `period_start` on or after.
    pub from: Option<NaiveDate>,
    /// `period_start` on or before.
    pub to: Option<NaiveDate>,
}

/// The filter of plans `scope` may see.
pub fn scoped(scope: &Scope) -> Filter<plans::table> {
    match scope.reach {
        Reach::Subtree => {
            Box::new(plans::manager_id.eq_any(scope::users_in_subtree(&scope.org_path)))
        }
        Reach::Own => Box::new(plans::manager_id.eq(scope.user_id)),
    }
}

/// Inserts a plan; returns its id.
pub fn insert(conn: &mut DbConn, new: &NewPlan) -> QueryResult<i64> {
    diesel::insert_into(plans::table)
        .values(new)
        .returning(plans::id)
        .get_result(conn)
}

/// One plan in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Plan>> {
    plans::table
        .filter(plans::id.eq(id))
        .filter(scoped(scope))
        .select(Plan::as_select())
        .first(conn)
        .optional()
}

/// Plans in scope, newest first (by id), before the id `before`, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &PlanFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Plan>> {
    let mut q = plans::table.filter(scoped(scope)).into_boxed();
    if let Some(m) = f.manager_id {
        q = q.filter(plans::manager_id.eq(m));
    }
    if let Some(p) = &f.period {
        q = q.filter(plans::period.eq(p.clone()));
    }
    if let Some(d) = f.from {
        q = q.filter(plans::period_start.ge(d));
    }
    if let Some(d) = f.to {
        q = q.filter(plans::period_start.le(d));
    }
    if let Some(b) = before {
        q = q.filter(plans::id.lt(b));
    }
    q.order(plans::id.desc())
        .limit(limit)
        .select(Plan::as_select())
        .load(conn)
}

/// Applies changes to a plan already checked to be in scope.
pub fn update(conn: &mut DbConn, id: i64, changes: &PlanChanges) -> QueryResult<usize> {
    diesel::update(plans::table.find(id))
        .set(changes)
        .execute(conn)
}
