//! Sessions and refresh tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{Org, RefreshToken, Session, User};
use crate::db::schema::{orgs, refresh_tokens, sessions, users};

/// What a live session says about its user.
#[derive(Debug, Clone, Queryable)]
pub struct CallerRow {
    /// User id.
    pub user_id: i64,
    /// Role string.
    pub role: String,
    /// Org id.
    pub org_id: i64,
    /// Org path.
    pub org_path: String,
    /// The user's name.
    pub name: String,
    /// The user's employee number.
    pub employee_no: String,
    /// The user's password is temporary: nothing but `/me`, `/me/password` and logout until it is changed.
    pub must_change_password: bool,
}

/// The columns of a [`CallerRow`], for every query that checks a session (`load_caller`, the home screen's).
pub const CALLER_COLUMNS: (
    users::id,
    users::role,
    users::org_id,
    orgs::path,
    users::name,
    users::employee_no,
    users::must_change_password,
) = (
    users::id,
    users::role,
    users::org_id,
    orgs::path,
    users::name,
    users::employee_no,
    users::must_change_password,
);

/// The caller behind a live (unrevoked, unexpired) session of an active user, in one query.
///
/// Run on the backend's own connection (`per_backend!`): this query precedes every authenticated request,
/// and through the two-backend connection diesel renders its SQL twice per execution even when the
/// prepared statement is cached (measured: a third of `GET /me`'s database time).
pub fn load_caller(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<CallerRow>> {
    let q = sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select(CALLER_COLUMNS)
        .limit(1);
    let q = super::KeepPrepared(q);
    crate::per_backend!(conn, |c| q.get_result(c).optional())
}

/// The user (with their org) behind a live session of an active user: `load_caller` for handlers that
/// answer with the caller's own record (`/me`), so they need no second query.
pub fn load_caller_user(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(User, Org)>> {
    // On the backend's own connection, as `load_caller` (the query is written in the macro: `as_select`
    // names the backend).
    crate::per_backend!(conn, |c| sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select((User::as_select(), Org::as_select()))
        .first(c)
        .optional())
}

/// `load_caller_user` with the orgs on the path of the user's org (head office down to it, in no particular
/// order), all in one statement: one row per org on the path. `GET /me` answers from this alone.
pub fn load_caller_with_chain(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(User, Org, Vec<Org>)>> {
    // The orgs above (and including) the user's: those whose path is a prefix of the user's org's path.
    let up = diesel::alias!(orgs as up);
    let rows: Vec<(User, Org, Org)> = crate::per_backend!(conn, |c| sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .inner_join(up.on(orgs::path.like(up.field(orgs::path).concat("%"))))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select((
            User::as_select(),
            Org::as_select(),
            up.fields((
                orgs::id,
                orgs::parent_id,
                orgs::code,
                orgs::name,
                orgs::kind,
                orgs::path,
                orgs::created_at,
                orgs::updated_at,
            )),
        ))
        .load(c))?;
    let mut rows = rows.into_iter();
    let Some((user, org, first)) = rows.next() else {
        return Ok(None);
    };
    let chain = std::iter::once(first).chain(rows.map(|r| r.2)).collect();
    Ok(Some((user, org, chain)))
}

/// Stores a new session with its first refresh token.
pub fn create(conn: &mut DbConn, session: &Session, token: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)?;
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)?;
    Ok(())
}

/// A refresh token by digest with its session.
pub fn find_refresh(
    conn: &mut DbConn,
    digest: &str,
) -> QueryResult<Option<(RefreshToken, Session)>> {
    refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(digest))
        .select((RefreshToken::as_select(), Session::as_select()))
        .first(conn)
        .optional()
}

/// Marks a refresh token used; returns false if it was already used (a concurrent or replayed refresh).
pub fn use_refresh(conn: &mut DbConn, digest: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(digest))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes the session's other unspent refresh tokens (pairs handed to retries of the token just spent,
/// which the phone did not keep).
pub fn drop_unspent(conn: &mut DbConn, session_id: &str, keep: &str) -> QueryResult<usize> {
    diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::token_hash.ne(keep)),
    )
    .execute(conn)
}

/// Whether a refresh token of the session issued at or after `at` has been spent: the phone has moved on
/// past the token spent at `at`.
pub fn moved_on(conn: &mut DbConn, session_id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::created_at.ge(at))
            .filter(refresh_tokens::used_at.is_not_null()),
    ))
    .get_result(conn)
}

/// Adds the next refresh token of a session.
pub fn add_refresh(conn: &mut DbConn, token: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// Revokes one session (idempotent).
pub fn revoke(conn: &mut DbConn, session_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)
}

/// Revokes every live session of a user except `keep`.
pub fn revoke_all_for_user(
    conn: &mut DbConn,
    user_id: i64,
    keep: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let q = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    diesel::update(q)
        .set(sessions::revoked_at.eq(now))
        .execute(conn)
}
