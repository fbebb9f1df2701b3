//! Customer teams (客户小组): teams read through the caller's scope, their members, and the customers
//! assigned to them (`customers.team_id`). Archived teams are out of everyone's view.
//!
//! - admin / leader: the teams of their org subtree;
//! - manager: the teams they are a member of.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::Audience;
use super::{scope, transfers};
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::schema::{customers, orgs, team_members, teams, users};

/// A team row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = teams)]
pub struct Team {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub created_by: i64,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A member of a team, with the user's number, name and user role.
#[derive(Debug, Clone, Queryable)]
pub struct Member {
    pub team_id: i64,
    pub user_id: i64,
    pub role: String,
    pub employee_no: String,
    pub name: String,
    pub user_role: String,
}

/// A customer assigned to a team, as the team list shows it (no personal data).
#[derive(Debug, Clone, Queryable)]
pub struct TeamCustomer {
    pub id: i64,
    pub name: String,
    pub manager_id: i64,
}

/// A customer named in an assignment, with what the change needs to know.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct Assignable {
    pub id: i64,
    pub team_id: Option<i64>,
}

type Boxed<'a> = teams::BoxedQuery<'a, crate::db::MultiBackend>;

fn scoped<'a>(scope: &Scope) -> Boxed<'a> {
    let q = teams::table
        .filter(teams::archived_at.is_null())
        .into_boxed();
    match scope.reach {
        Reach::Subtree => q.filter(
            teams::org_id.eq_any(
                orgs::table
                    .filter(orgs::path.like(scope.subtree_pattern()))
                    .select(orgs::id),
            ),
        ),
        Reach::Own => q.filter(
            teams::id.eq_any(
                team_members::table
                    .filter(team_members::user_id.eq(scope.user_id))
                    .select(team_members::team_id),
            ),
        ),
    }
}

/// One live team in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Team>> {
    scoped(scope)
        .filter(teams::id.eq(id))
        .select(Team::as_select())
        .first(conn)
        .optional()
}

/// Live teams in scope after `after`, by id, at most `limit`; only those of `org_id` when given.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    org_id: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Team>> {
    let mut q = scoped(scope);
    if let Some(o) = org_id {
        q = q.filter(teams::org_id.eq(o));
    }
    if let Some(a) = after {
        q = q.filter(teams::id.gt(a));
    }
    q.order(teams::id.asc())
        .limit(limit)
        .select(Team::as_select())
        .load(conn)
}

/// The members of these teams, by team and user id.
pub fn members_of(conn: &mut DbConn, team_ids: &[i64]) -> QueryResult<Vec<Member>> {
    team_members::table
        .inner_join(users::table.on(users::id.eq(team_members::user_id)))
        .filter(team_members::team_id.eq_any(team_ids))
        .order((team_members::team_id.asc(), team_members::user_id.asc()))
        .select((
            team_members::team_id,
            team_members::user_id,
            team_members::role,
            users::employee_no,
            users::name,
            users::role,
        ))
        .load(conn)
}

/// Which of `ids` are active users of the org subtree at `path`.
pub fn active_users_under(conn: &mut DbConn, path: &str, ids: &[i64]) -> QueryResult<Vec<i64>> {
    scope::users_in_subtree(path)
        .filter(users::id.eq_any(ids))
        .filter(users::active.eq(true))
        .load(conn)
}

/// Inserts a team and returns its id.
pub fn insert(
    conn: &mut DbConn,
    org_id: i64,
    name: &str,
    created_by: i64,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(teams::table)
        .values((
            teams::org_id.eq(org_id),
            teams::name.eq(name),
            teams::created_by.eq(created_by),
            teams::created_at.eq(now),
            teams::updated_at.eq(now),
        ))
        .returning(teams::id)
        .get_result(conn)
}

/// Renames a team (when `name` is given) and stamps `updated_at`.
pub fn touch(
    conn: &mut DbConn,
    id: i64,
    name: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let q = diesel::update(teams::table.find(id));
    match name {
        Some(n) => q
            .set((teams::name.eq(n), teams::updated_at.eq(now)))
            .execute(conn),
        None => q.set(teams::updated_at.eq(now)).execute(conn),
    }
    .map(|_| ())
}

/// Marks a team archived.
pub fn archive(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(teams::table.find(id))
        .set((teams::archived_at.eq(now), teams::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// Replaces the members of a team with `members` (user id, team role); returns the user ids removed.
pub fn replace_members(
    conn: &mut DbConn,
    team_id: i64,
    members: &[(i64, String)],
) -> QueryResult<Vec<i64>> {
    let before: Vec<i64> = team_members::table
        .filter(team_members::team_id.eq(team_id))
        .select(team_members::user_id)
        .load(conn)?;
    diesel::delete(team_members::table.filter(team_members::team_id.eq(team_id))).execute(conn)?;
    for (user_id, role) in members {
        diesel::insert_into(team_members::table)
            .values((
                team_members::team_id.eq(team_id),
                team_members::user_id.eq(user_id),
                team_members::role.eq(role),
            ))
            .execute(conn)?;
    }
    Ok(before
        .into_iter()
        .filter(|u| !members.iter().any(|(m, _)| m == u))
        .collect())
}

/// Which of `ids` are users with the role manager.
pub fn managers_among(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<i64>> {
    users::table
        .filter(users::id.eq_any(ids))
        .filter(users::role.eq("manager"))
        .select(users::id)
        .load(conn)
}

/// Stamps `seq` on the team's live customers and their records, so new members' phones receive them.
pub fn restamp(conn: &mut DbConn, team_id: i64, seq: i64) -> QueryResult<()> {
    let ids = customer_ids(conn, team_id)?;
    diesel::update(customers::table.filter(customers::id.eq_any(&ids)))
        .set(customers::seq.eq(seq))
        .execute(conn)?;
    transfers::restamp_children(conn, &ids, seq)
}

/// Ids of the live customers assigned to a team.
pub fn customer_ids(conn: &mut DbConn, team_id: i64) -> QueryResult<Vec<i64>> {
    customers::table
        .filter(customers::team_id.eq(team_id))
        .filter(customers::archived_at.is_null())
        .order(customers::id.asc())
        .select(customers::id)
        .load(conn)
}

/// A page of the live customers assigned to a team, by id.
pub fn customers_page(
    conn: &mut DbConn,
    team_id: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<TeamCustomer>> {
    let mut q = customers::table
        .filter(customers::team_id.eq(team_id))
        .filter(customers::archived_at.is_null())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(customers::id.gt(a));
    }
    q.order(customers::id.asc())
        .limit(limit)
        .select((customers::id, customers::name, customers::manager_id))
        .load(conn)
}

/// Of `ids`, the customers `scope` sees whose responsible manager belongs to the org subtree at `path`.
pub fn assignable(
    conn: &mut DbConn,
    scope: &Scope,
    path: &str,
    ids: &[i64],
) -> QueryResult<Vec<Assignable>> {
    customers::table
        .filter(scope::customers(scope))
        .filter(customers::id.eq_any(ids))
        .filter(customers::manager_id.eq_any(scope::users_in_subtree(path)))
        .select((customers::id, customers::team_id))
        .load(conn)
}

/// Puts customers into `team_id` (or out of any team with `None`), stamping `seq`.
pub fn set_team(
    conn: &mut DbConn,
    ids: &[i64],
    team_id: Option<i64>,
    seq: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(customers::table.filter(customers::id.eq_any(ids)))
        .set((
            customers::team_id.eq(team_id),
            customers::seq.eq(seq),
            customers::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Tombstones for customers that left team `team_id`: its members no longer see them, their contacts and
/// holdings, nor the visits and opportunities about them (a member's own stay visible to that member: sync
/// must not drop what the caller still sees).
pub fn tombstone_left_team(
    conn: &mut DbConn,
    seq: i64,
    team_id: i64,
    left: &[i64],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let audience = Audience {
        team_id: Some(team_id),
        ..Audience::default()
    };
    for customer_id in left {
        transfers::tombstone_customer_tree(conn, seq, *customer_id, audience, None, now)?;
    }
    Ok(())
}

/// Tombstones for a manager who left a team: each team customer they are not responsible for leaves their
/// view, with its contacts, holdings, and others' visits and opportunities about it.
pub fn tombstone_left_member(
    conn: &mut DbConn,
    seq: i64,
    team_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let ids: Vec<i64> = customers::table
        .filter(customers::team_id.eq(team_id))
        .filter(customers::archived_at.is_null())
        .filter(customers::manager_id.ne(user_id))
        .select(customers::id)
        .load(conn)?;
    let audience = Audience {
        manager_id: Some(user_id),
        ..Audience::default()
    };
    for id in ids {
        transfers::tombstone_customer_tree(conn, seq, id, audience, Some(user_id), now)?;
    }
    Ok(())
}
