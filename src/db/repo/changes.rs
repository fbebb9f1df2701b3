//! The change sequence behind delta sync, and tombstones for what leaves someone's view.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{sync_counter, tombstones};

/// Takes the next change sequence number. Call once per write transaction and stamp every row it touches:
/// the counter row stays locked until commit, so sequence order is commit order.
pub fn bump(conn: &mut DbConn) -> QueryResult<i64> {
    if let Some(seq) = batch::take() {
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

/// Sequence numbers handed out in memory by the SQLite writer during one batch.
///
/// The writer holds the database's write lock from the first statement of a batch to its commit, so no
/// other connection can take a number meanwhile: it reads the counter once ([`batch::begin`]), `bump`
/// hands out the following numbers without a statement, and the batch writes the last one back before
/// it commits ([`batch::end`]). Sequence order stays commit order. A write that fails after taking a
/// number leaves a gap, which sync does not mind (it asks for numbers above a token, never a count).
pub mod batch {
    use std::cell::Cell;

    use diesel::prelude::*;

    use crate::db::DbConn;
    use crate::db::schema::sync_counter;

    thread_local! {
        /// `(last handed out, last stored)` while this thread runs a writer batch.
        static SEQ: Cell<Option<(i64, i64)>> = const { Cell::new(None) };
    }

    /// Locks the counter row (the batch's first statement takes the write lock) and starts handing out
    /// numbers after its value on this thread.
    pub fn begin(conn: &mut DbConn) -> QueryResult<()> {
        let DbConn::Sqlite(conn) = conn else {
            // Only SQLite has a single writer; PostgreSQL's writes bump the row itself.
            return Ok(());
        };
        let stored: i64 = crate::db::repo::KeepPrepared(
            diesel::update(sync_counter::table.find(1))
                .set(sync_counter::value.eq(sync_counter::value))
                .returning(sync_counter::value),
        )
        .get_result(conn)?;
        SEQ.with(|s| s.set(Some((stored, stored))));
        Ok(())
    }

    /// The next number, when this thread is in a batch.
    pub(super) fn take() -> Option<i64> {
        SEQ.with(|s| {
            let (last, stored) = s.get()?;
            s.set(Some((last + 1, stored)));
            Some(last + 1)
        })
    }

    /// Stops handing out numbers and stores the last one taken, if any (before the batch commits).
    pub fn end(conn: &mut DbConn) -> QueryResult<()> {
        match SEQ.with(Cell::take) {
            Some((last, stored)) if last != stored => crate::db::repo::KeepPrepared(
                diesel::update(sync_counter::table.find(1))
                    .set(sync_counter::value.eq(last))
                    .returning(sync_counter::value),
            )
            .get_result::<i64>(conn)
            .map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Forgets the batch's numbers without storing them (the batch rolls back).
    pub fn abandon() {
        SEQ.with(Cell::take);
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
