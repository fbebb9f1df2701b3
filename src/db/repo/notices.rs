//! Notices (通知): published to an org subtree; the recipients are fixed at publication (the active users of
//! the subtree then, the publisher excepted), each with a read mark.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::DbConn;
use crate::db::schema::{notice_recipients, notices, notifications, orgs, users};

/// A notice row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notices)]
pub struct Notice {
    pub id: i64,
    pub org_id: i64,
    pub title: String,
    pub body: String,
    pub published_by: i64,
    pub created_at: NaiveDateTime,
}

/// Inserts a notice and its recipients (one `INSERT … SELECT`); returns the id and the recipients' ids.
pub fn publish(
    conn: &mut DbConn,
    org_path: &str,
    org_id: i64,
    title: &str,
    body: &str,
    publisher: i64,
    now: NaiveDateTime,
) -> QueryResult<(i64, Vec<i64>)> {
    let id: i64 = diesel::insert_into(notices::table)
        .values((
            notices::org_id.eq(org_id),
            notices::title.eq(title),
            notices::body.eq(body),
            notices::published_by.eq(publisher),
            notices::created_at.eq(now),
        ))
        .returning(notices::id)
        .get_result(conn)?;
    let select = users::table
        .inner_join(orgs::table)
        .filter(orgs::path.like(format!("{org_path}%")))
        .filter(users::active.eq(true))
        .filter(users::id.ne(publisher))
        .select((id.into_sql::<BigInt>(), users::id));
    let q = diesel::insert_into(notice_recipients::table)
        .values(select)
        .into_columns((notice_recipients::notice_id, notice_recipients::user_id));
    // INSERT … SELECT runs on the concrete backend.
    crate::per_backend!(&mut *conn, |c| q.execute(c))?;
    let recipients = notice_recipients::table
        .filter(notice_recipients::notice_id.eq(id))
        .order(notice_recipients::user_id.asc())
        .select(notice_recipients::user_id)
        .load(conn)?;
    Ok((id, recipients))
}

/// A notice the user received (with their read time) or published.
pub fn find_visible(
    conn: &mut DbConn,
    user_id: i64,
    id: i64,
) -> QueryResult<Option<(Notice, Option<Option<NaiveDateTime>>)>> {
    let Some(n) = notices::table
        .filter(notices::id.eq(id))
        .select(Notice::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let read: Option<Option<NaiveDateTime>> = notice_recipients::table
        .filter(notice_recipients::notice_id.eq(id))
        .filter(notice_recipients::user_id.eq(user_id))
        .select(notice_recipients::read_at)
        .first(conn)
        .optional()?;
    if read.is_none() && n.published_by != user_id {
        return Ok(None);
    }
    Ok(Some((n, read)))
}

/// Marks a notice read by a recipient (the first time counts), and its notification too.
pub fn mark_read(
    conn: &mut DbConn,
    id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let n = diesel::update(
        notice_recipients::table
            .filter(notice_recipients::notice_id.eq(id))
            .filter(notice_recipients::user_id.eq(user_id))
            .filter(notice_recipients::read_at.is_null()),
    )
    .set(notice_recipients::read_at.eq(now))
    .execute(conn)?;
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::link_type.eq("notice"))
            .filter(notifications::link_id.eq(id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(now))
    .execute(conn)?;
    Ok(n)
}

/// Notices the user received, newest first, with their read time.
pub fn list_received(
    conn: &mut DbConn,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(Notice, Option<NaiveDateTime>)>> {
    let mut q = notices::table
        .inner_join(notice_recipients::table)
        .filter(notice_recipients::user_id.eq(user_id))
        .order(notices::id.desc())
        .limit(limit)
        .select((Notice::as_select(), notice_recipients::read_at))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(notices::id.lt(b));
    }
    q.load(conn)
}

/// Notices the user published, newest first.
pub fn list_published(
    conn: &mut DbConn,
    user_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Notice>> {
    let mut q = notices::table
        .filter(notices::published_by.eq(user_id))
        .order(notices::id.desc())
        .limit(limit)
        .select(Notice::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(notices::id.lt(b));
    }
    q.load(conn)
}

/// (notice id, recipients, read) for these notices (notices without recipients are absent).
pub fn counts(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<(i64, i64, i64)>> {
    use diesel::dsl::{count, count_star};
    notice_recipients::table
        .filter(notice_recipients::notice_id.eq_any(ids))
        .group_by(notice_recipients::notice_id)
        .select((
            notice_recipients::notice_id,
            count_star(),
            count(notice_recipients::read_at),
        ))
        .load(conn)
}

/// A recipient of a notice: (user id, employee number, name, read at).
pub type ReadRow = (i64, String, String, Option<NaiveDateTime>);

/// The recipients of a notice, by user id.
pub fn reads(conn: &mut DbConn, id: i64) -> QueryResult<Vec<ReadRow>> {
    notice_recipients::table
        .inner_join(users::table.on(users::id.eq(notice_recipients::user_id)))
        .filter(notice_recipients::notice_id.eq(id))
        .order(notice_recipients::user_id.asc())
        .select((
            users::id,
            users::employee_no,
            users::name,
            notice_recipients::read_at,
        ))
        .load(conn)
}

/// The path of an org in the subtree at `path`.
pub fn org_in_subtree(conn: &mut DbConn, path: &str, org_id: i64) -> QueryResult<Option<String>> {
    orgs::table
        .filter(orgs::id.eq(org_id))
        .filter(orgs::path.like(format!("{path}%")))
        .select(orgs::path)
        .first(conn)
        .optional()
}
