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
}

/// The caller behind a live (unrevoked, unexpired) session of an active user, in one query.
pub fn load_caller(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<CallerRow>> {
    sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select((users::id, users::role, users::org_id, orgs::path))
        .first(conn)
        .optional()
}

/// The user (with their org) behind a live session of an active user: `load_caller` for handlers that
/// answer with the caller's own record (`/me`), so they need no second query.
pub fn load_caller_user(
    conn: &mut DbConn,
    user_id: i64,
    session_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(User, Org)>> {
    sessions::table
        .inner_join(users::table.inner_join(orgs::table))
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .filter(users::active.eq(true))
        .select((User::as_select(), Org::as_select()))
        .first(conn)
        .optional()
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
