//! Who sees which customer, visit, opportunity or work log — the one place that says it.
//!
//! - admin / leader (`Reach::Subtree`): everything whose responsible manager belongs to their org or below;
//! - manager (`Reach::Own`): customers they are responsible for, plus those of customer teams they belong to;
//!   and their own visits, opportunities and work logs, plus those about customers they see.
//!
//! Archived customers are out of everyone's view (they are kept, never deleted).

use diesel::dsl::{InnerJoin, Select};
use diesel::prelude::*;

use crate::auth::caller::{Reach, Scope};
use crate::db::models::Customer;
use crate::db::schema::{customers, orgs, task_assignees, tasks, team_members, users};
use crate::db::{DbConn, MultiBackend};

/// A boxed boolean filter over `T`'s columns.
pub type Filter<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = diesel::sql_types::Bool>>;

type UsersInSubtree = Select<
    diesel::dsl::Filter<
        InnerJoin<users::table, orgs::table>,
        diesel::dsl::Like<orgs::path, String>,
    >,
    users::id,
>;

/// Ids of the users in the org subtree at `path` (a subquery).
pub fn users_in_subtree(path: &str) -> UsersInSubtree {
    users::table
        .inner_join(orgs::table)
        .filter(orgs::path.like(format!("{path}%")))
        .select(users::id)
}

/// Ids of the teams `user_id` belongs to (a subquery of nullable ids, to compare with `team_id` columns).
pub fn teams_of(
    user_id: i64,
) -> Select<
    diesel::dsl::Filter<team_members::table, diesel::dsl::Eq<team_members::user_id, i64>>,
    diesel::dsl::Nullable<team_members::team_id>,
> {
    team_members::table
        .filter(team_members::user_id.eq(user_id))
        .select(team_members::team_id.nullable())
}

/// The filter of customers `scope` may see (archived ones excluded).
pub fn customers(scope: &Scope) -> Filter<customers::table> {
    match scope.reach {
        Reach::Subtree => Box::new(
            customers::archived_at
                .is_null()
                .and(customers::manager_id.eq_any(users_in_subtree(&scope.org_path))),
        ),
        Reach::Own => Box::new(
            customers::archived_at.is_null().and(
                customers::manager_id
                    .eq(scope.user_id)
                    .or(customers::team_id
                        .eq_any(teams_of(scope.user_id))
                        .assume_not_null()),
            ),
        ),
    }
}

/// The filter of tasks `scope` may see: those the caller created or was given, and for leaders and admins
/// every task of an org in their subtree.
pub fn tasks(scope: &Scope) -> Filter<tasks::table> {
    let assigned = task_assignees::table
        .filter(task_assignees::user_id.eq(scope.user_id))
        .select(task_assignees::task_id);
    let own = tasks::created_by
        .eq(scope.user_id)
        .or(tasks::id.eq_any(assigned));
    match scope.reach {
        Reach::Subtree => {
            let orgs_below = orgs::table
                .filter(orgs::path.like(scope.subtree_pattern()))
                .select(orgs::id);
            Box::new(own.or(tasks::org_id.eq_any(orgs_below)))
        }
        Reach::Own => Box::new(own),
    }
}

/// One customer in scope.
///
/// The filter of `customers` written out per reach, on the backend's own connection: a detail view and
/// every write on a customer's records start with this, and through the two-backend connection diesel
/// renders the SQL of every execution again although the statement is prepared once.
pub fn find_customer(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Customer>> {
    let q = customers::table
        .filter(customers::id.eq(id))
        .filter(customers::archived_at.is_null());
    match scope.reach {
        Reach::Subtree => {
            let q = q.filter(customers::manager_id.eq_any(users_in_subtree(&scope.org_path)));
            crate::per_backend!(conn, |c| super::KeepPrepared(
                q.select(Customer::as_select()).limit(1)
            )
            .get_result(c)
            .optional())
        }
        Reach::Own => {
            let q = q.filter(
                customers::manager_id
                    .eq(scope.user_id)
                    .or(customers::team_id
                        .eq_any(teams_of(scope.user_id))
                        .assume_not_null()),
            );
            crate::per_backend!(conn, |c| super::KeepPrepared(
                q.select(Customer::as_select()).limit(1)
            )
            .get_result(c)
            .optional())
        }
    }
}

/// Whether `scope` sees a record owned by `manager_id` (visits, opportunities, work logs): the manager
/// themself, or a leader/admin above the manager's org.
pub fn sees_manager(conn: &mut DbConn, scope: &Scope, manager_id: i64) -> QueryResult<bool> {
    match scope.reach {
        Reach::Own => Ok(manager_id == scope.user_id),
        Reach::Subtree => diesel::select(diesel::dsl::exists(
            users_in_subtree(&scope.org_path).filter(users::id.eq(manager_id)),
        ))
        .get_result(conn),
    }
}
