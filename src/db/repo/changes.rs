//! The change sequence behind delta sync, and tombstones for what leaves someone's view.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{sync_counter, tombstones};

/// Takes the next change sequence number. Call once per write transaction and stamp every row it touches.
///
/// - SQLite: the `sync_counter` row, locked from here until commit (the writer's batch holds that lock
///   throughout and hands numbers out from memory: `batch`), so sequence order is commit order.
/// - PostgreSQL: `take_change_seq()` (migration `change_sequence`): a sequence, no lock held through the
///   commit; the number stays marked in flight until the transaction ends, and sync reads only up to
///   [`settled`].
pub fn bump(conn: &mut DbConn) -> QueryResult<i64> {
    if let Some(seq) = super::batch::take_seq() {
        return Ok(seq);
    }
    match conn {
        // On the backend's own connection, where diesel keeps the statement prepared (every write runs it).
        DbConn::Sqlite(c) => super::KeepPrepared(
            diesel::update(sync_counter::table.find(1))
                .set(sync_counter::value.eq(sync_counter::value + 1))
                .returning(sync_counter::value),
        )
        .get_result(c),
        DbConn::Pg(c) => diesel::select(take_change_seq()).get_result(c),
    }
}

diesel::define_sql_function! {
    /// The next change number, marked in flight until the transaction ends (PostgreSQL).
    fn take_change_seq() -> diesel::sql_types::BigInt;
}

diesel::define_sql_function! {
    /// The highest change number below every number still in flight (PostgreSQL).
    fn settled_change_seq() -> diesel::sql_types::BigInt;
}

/// The highest change number whose write, and every write numbered before it, has ended: a sync reads no
/// change above it, so its token never passes a change that commits later with a lower number.
///
/// On SQLite, numbers are taken in commit order, so every number a reader sees is settled (`i64::MAX`, no
/// statement). On PostgreSQL, numbers are taken without a lock and commit in any order: this is one below
/// the lowest number still in flight (or the last one taken). Call it before the reads it bounds: each of
/// them then sees every write numbered up to it.
pub fn settled(conn: &mut DbConn) -> QueryResult<i64> {
    match conn {
        DbConn::Sqlite(_) => Ok(i64::MAX),
        DbConn::Pg(c) => diesel::select(settled_change_seq()).get_result(c),
    }
}

/// The latest settled sequence number (the token of a caller who has everything).
pub fn current(conn: &mut DbConn) -> QueryResult<i64> {
    match conn {
        DbConn::Sqlite(_) => sync_counter::table
            .find(1)
            .select(sync_counter::value)
            .first(conn),
        DbConn::Pg(_) => settled(conn),
    }
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
