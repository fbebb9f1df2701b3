//! Orgs: the tree, read through the caller's scope.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::bump;
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::models::{NewOrg, Org, OrgChanges};
use crate::db::schema::orgs;
use crate::domain::org::child_path;
use crate::error::{AppError, ErrorCode, ResultExt};

type Boxed<'a> = orgs::BoxedQuery<'a, crate::db::MultiBackend>;

fn scoped<'a>(scope: &Scope) -> Boxed<'a> {
    let q = orgs::table.into_boxed();
    match scope.reach {
        Reach::Subtree => q.filter(orgs::path.like(scope.subtree_pattern())),
        Reach::Own => q.filter(orgs::id.eq(scope.org_id)),
    }
}

/// The path of the head office (the root of the tree), or `/` before there is one: where events about no
/// org in particular (a failed login of an unknown employee number) are filed, for head-office admins.
pub fn root_path(conn: &mut DbConn) -> QueryResult<String> {
    Ok(orgs::table
        .filter(orgs::parent_id.is_null())
        .order(orgs::id.asc())
        .select(orgs::path)
        .first(conn)
        .optional()?
        .unwrap_or_else(|| "/".into()))
}

/// One org in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Org>> {
    scoped(scope)
        .filter(orgs::id.eq(id))
        .select(Org::as_select())
        .first(conn)
        .optional()
}

/// Orgs in scope after `after`, by id, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    parent_id: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Org>> {
    let mut q = scoped(scope);
    if let Some(p) = parent_id {
        q = q.filter(orgs::parent_id.eq(p));
    }
    if let Some(a) = after {
        q = q.filter(orgs::id.gt(a));
    }
    q.order(orgs::id.asc())
        .limit(limit)
        .select(Org::as_select())
        .load(conn)
}

/// The orgs on a path, by id (unscoped: a caller may always see the names above their own org).
pub fn by_ids(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<Org>> {
    orgs::table
        .filter(orgs::id.eq_any(ids))
        .select(Org::as_select())
        .load(conn)
}

/// Whether any org exists.
pub fn any(conn: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(orgs::table.select(orgs::id))).get_result(conn)
}

/// Inserts an org under `parent` (a row already checked to be in scope) and completes its path.
pub fn insert(conn: &mut DbConn, mut new: NewOrg, parent: Option<&Org>) -> Result<Org, AppError> {
    new.path = String::new();
    let id: i64 = diesel::insert_into(orgs::table)
        .values(&new)
        .returning(orgs::id)
        .get_result(conn)
        .on_unique_violation(ErrorCode::OrgCodeTaken)?;
    let path = child_path(parent.map(|p| p.path.as_str()), id);
    let seq = bump(conn)?;
    diesel::update(orgs::table.find(id))
        .set((orgs::path.eq(&path), orgs::seq.eq(seq)))
        .execute(conn)?;
    Ok(orgs::table.find(id).select(Org::as_select()).first(conn)?)
}

/// Renames or recodes an org (a new version: see `seq` in the migration `user_org_versions`).
pub fn update(conn: &mut DbConn, id: i64, changes: &OrgChanges) -> Result<(), AppError> {
    let seq = bump(conn)?;
    diesel::update(orgs::table.find(id))
        .set((changes, orgs::seq.eq(seq)))
        .execute(conn)
        .on_unique_violation(ErrorCode::OrgCodeTaken)?;
    Ok(())
}

diesel::define_sql_function! {
    /// SQL `substr(text, start)` (1-based), the same on both backends.
    fn substr(s: diesel::sql_types::Text, start: diesel::sql_types::Integer) -> diesel::sql_types::Text;
}

/// Moves an org and its whole subtree under a new parent: one set-based update of every path.
pub fn move_subtree(
    conn: &mut DbConn,
    org: &Org,
    new_parent: &Org,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let new_path = child_path(Some(&new_parent.path), org.id);
    let keep_from = i32::try_from(org.path.len() + 1).unwrap_or(i32::MAX);
    // Every org of the subtree shows a new path: each takes the new version.
    let seq = bump(conn)?;
    diesel::update(orgs::table.filter(orgs::path.like(format!("{}%", org.path))))
        .set((
            orgs::path.eq(new_path
                .into_sql::<diesel::sql_types::Text>()
                .concat(substr(orgs::path, keep_from))),
            orgs::seq.eq(seq),
        ))
        .execute(conn)?;
    diesel::update(orgs::table.find(org.id))
        .set((orgs::parent_id.eq(new_parent.id), orgs::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}
