//! Users, read through the caller's scope (with their org, for paths and names).

use diesel::prelude::*;

use super::changes::bump;
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::models::{NewUser, Org, OrgBrief, User, UserCard, UserChanges};
use crate::db::schema::{orgs, users};
use crate::error::{AppError, ErrorCode, ResultExt};

type Boxed<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::InnerJoin<users::table, orgs::table>,
    crate::db::MultiBackend,
>;

fn scoped<'a>(scope: &Scope) -> Boxed<'a> {
    let q = users::table.inner_join(orgs::table).into_boxed();
    match scope.reach {
        Reach::Subtree => q.filter(orgs::path.like(scope.subtree_pattern())),
        Reach::Own => q.filter(users::id.eq(scope.user_id)),
    }
}

diesel::define_sql_function! {
    /// SQL `lower(text)`: the same on both backends, so searches match case-insensitively everywhere.
    fn lower(s: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Filters for the user list.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Only users of this org (not below it).
    pub org_id: Option<i64>,
    /// Only this role.
    pub role: Option<String>,
    /// Only active or inactive users.
    pub active: Option<bool>,
    /// Name or employee-number prefix.
    pub q: Option<String>,
}

/// One user in scope with their org.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<(User, Org)>> {
    scoped(scope)
        .filter(users::id.eq(id))
        .select((User::as_select(), Org::as_select()))
        .first(conn)
        .optional()
}

/// The orgs on the materialized `path` of an org (the head office down to that org itself), in no particular
/// order: the orgs whose own path is a prefix of it. One statement of fixed shape, so it is prepared once
/// (an `IN` list of ids is prepared again on every call on SQLite).
pub fn org_chain(conn: &mut DbConn, path: &str) -> QueryResult<Vec<Org>> {
    use diesel::IntoSql;
    use diesel::sql_types::Text;
    // On the backend's own connection: `GET /me` runs this on every call, and the two-backend connection
    // renders the SQL of every execution again (see `sessions::load_caller`).
    crate::per_backend!(conn, |c| orgs::table
        .filter(
            path.to_owned()
                .into_sql::<Text>()
                .like(orgs::path.concat("%")),
        )
        .select(Org::as_select())
        .load(c))
}

/// A page's key: a user's id and the versions of the user row and of their org row (see `api::rendered`).
pub type UserKey = (i64, i64, i64);

/// The keys of the users in scope after `after`, by id, at most `limit`; `cards` reads the rows themselves.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &UserFilter,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<UserKey>> {
    if f.org_id.is_none() && f.role.is_none() && f.active.is_none() && f.q.is_none() {
        return list_unfiltered(conn, scope, after, limit);
    }
    let mut q = scoped(scope);
    if let Some(o) = f.org_id {
        q = q.filter(users::org_id.eq(o));
    }
    if let Some(r) = &f.role {
        q = q.filter(users::role.eq(r.clone()));
    }
    if let Some(a) = f.active {
        q = q.filter(users::active.eq(a));
    }
    if let Some(text) = &f.q {
        let pat = crate::db::repo::prefix_pattern(&text.to_lowercase());
        q = q.filter(
            lower(users::name)
                .like(pat.clone())
                .escape('\\')
                .or(lower(users::employee_no).like(pat).escape('\\')),
        );
    }
    if let Some(a) = after {
        q = q.filter(users::id.gt(a));
    }
    q.order(users::id.asc())
        .limit(limit)
        .select((users::id, users::seq, orgs::seq))
        .load(conn)
}

/// `list` without filters: one statement of fixed shape on the backend's own connection, prepared once and
/// not rendered again on every call (see `sessions::load_caller`).
fn list_unfiltered(
    conn: &mut DbConn,
    scope: &Scope,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<UserKey>> {
    let after = after.unwrap_or(i64::MIN);
    let q = users::table
        .inner_join(orgs::table)
        .filter(users::id.gt(after))
        .order(users::id.asc())
        .limit(limit)
        .select((users::id, users::seq, orgs::seq));
    match scope.reach {
        Reach::Subtree => {
            let q = q.filter(orgs::path.like(scope.subtree_pattern()));
            crate::per_backend!(conn, |c| q.load(c))
        }
        Reach::Own => {
            let q = q.filter(users::id.eq(scope.user_id));
            crate::per_backend!(conn, |c| q.load(c))
        }
    }
}

/// The users with these ids that `scope` sees, with their org and their key (the rows of a page not
/// rendered yet).
pub fn cards(
    conn: &mut DbConn,
    scope: &Scope,
    ids: &[i64],
) -> QueryResult<Vec<(UserCard, OrgBrief, UserKey)>> {
    let rows: Vec<(UserCard, OrgBrief, i64, i64)> = scoped(scope)
        .filter(users::id.eq_any(ids))
        .order(users::id.asc())
        .select((
            UserCard::as_select(),
            OrgBrief::as_select(),
            users::seq,
            orgs::seq,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(u, o, us, os)| {
            let key = (u.id, us, os);
            (u, o, key)
        })
        .collect())
}

/// A user and their org by id, unscoped: for authentication only, where a live session is the proof.
pub fn find_for_session(conn: &mut DbConn, id: i64) -> QueryResult<Option<(User, Org)>> {
    users::table
        .inner_join(orgs::table)
        .filter(users::id.eq(id))
        .select((User::as_select(), Org::as_select()))
        .first(conn)
        .optional()
}

/// The user with this employee number, with their org (login only: unscoped by nature).
pub fn find_for_login(conn: &mut DbConn, employee_no: &str) -> QueryResult<Option<(User, Org)>> {
    users::table
        .inner_join(orgs::table)
        .filter(users::employee_no.eq(employee_no))
        .select((User::as_select(), Org::as_select()))
        .first(conn)
        .optional()
}

/// Inserts a user; 409 `employee_no_taken` on a duplicate.
pub fn insert(conn: &mut DbConn, new: &NewUser) -> Result<i64, AppError> {
    let seq = bump(conn)?;
    diesel::insert_into(users::table)
        .values((new, users::seq.eq(seq)))
        .returning(users::id)
        .get_result(conn)
        .on_unique_violation(ErrorCode::EmployeeNoTaken)
}

/// Inserts many users at once (demo data).
pub fn insert_many(conn: &mut DbConn, new: &[NewUser]) -> QueryResult<usize> {
    // Multi-row VALUES is dialect-specific, so the shared backend lacks it: run it per backend.
    let q = diesel::insert_into(users::table).values(new);
    crate::per_backend!(conn, |c| q.execute(c))
}

/// Applies changes to a user already checked to be in scope (a new version: see `seq` in the migration
/// `user_org_versions`).
pub fn update(conn: &mut DbConn, id: i64, changes: &UserChanges) -> QueryResult<usize> {
    let seq = bump(conn)?;
    diesel::update(users::table.find(id))
        .set((changes, users::seq.eq(seq)))
        .execute(conn)
}

/// Replaces a user's password hash.
pub fn set_password(
    conn: &mut DbConn,
    id: i64,
    hash: &str,
    must_change: bool,
    now: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    let seq = bump(conn)?;
    diesel::update(users::table.find(id))
        .set((
            users::seq.eq(seq),
            users::password_hash.eq(hash),
            users::must_change_password.eq(must_change),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Whether any user exists.
pub fn any(conn: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)
}
