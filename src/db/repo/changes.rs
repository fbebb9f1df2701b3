//! The change sequence behind delta sync, and tombstones for what leaves someone's view.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{sync_counter, tombstones};

/// Takes the next change sequence number. Call once per write transaction and stamp every row it touches:
/// the counter row stays locked until commit, so sequence order is commit order. In the SQLite writer's
/// batch, which holds that lock throughout, the number comes from memory (`batch`).
pub fn bump(conn: &mut DbConn) -> QueryResult<i64> {
    if let Some(seq) = super::batch::take_seq() {
        return Ok(seq);
    }
    // On the backend's own connection, where diesel keeps the statement prepared (every write runs it).
    let q = super::KeepPrepared(
        diesel::update(sync_counter::table.find(1))
            .set(sync_counter::value.eq(sync_counter::value + 1))
            .returning(sync_counter::value),
    );
    crate::per_backend!(conn, |c| q.get_result(c))
}

/// The sequence number for a write that stamps its rows as it writes them, on SQLite only.
///
/// SQLite's single writer commits a whole batch at once, so where in a write the number is taken changes
/// no order, and taking it first saves the UPDATE that would stamp a new row afterwards (and the row's
/// `seq` index entry written twice). `None` on PostgreSQL, where the counter row stays locked from the bump
/// until commit and concurrent writes queue behind it: take it last there, with [`bump`].
pub fn early(conn: &mut DbConn) -> QueryResult<Option<i64>> {
    match conn {
        DbConn::Sqlite(_) => bump(conn).map(Some),
        DbConn::Pg(_) => Ok(None),
    }
}

/// The latest sequence number (the token of a caller who has everything).
pub fn current(conn: &mut DbConn) -> QueryResult<i64> {
    sync_counter::table
        .find(1)
        .select(sync_counter::value)
        .first(conn)
}

/// Who could see an object before it left their view.
#[derive(Debug, Clone, Copy, Default)]
pub struct Audience {
    /// The responsible manager until now.
    pub manager_id: Option<i64>,
    /// The customer team until now.
    pub team_id: Option<i64>,
    /// The manager's org until now (for leaders above it).
    pub org_id: Option<i64>,
}

/// Records that `entity` `id` left the view of `audience` (archived, deleted or moved) at `seq`.
pub fn tombstone(
    conn: &mut DbConn,
    seq: i64,
    entity: &str,
    id: i64,
    audience: Audience,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(tombstones::table)
        .values((
            tombstones::seq.eq(seq),
            tombstones::entity.eq(entity),
            tombstones::entity_id.eq(id),
            tombstones::manager_id.eq(audience.manager_id),
            tombstones::team_id.eq(audience.team_id),
            tombstones::org_id.eq(audience.org_id),
            tombstones::at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}
