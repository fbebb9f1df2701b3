//! What the SQLite writer keeps in memory while it runs a batch of writes, and stores before the batch
//! commits: sequence numbers, and the append-only rows of the audit log and the customer timeline.
//!
//! The writer holds the database's write lock from the first statement of a batch to its commit, so no
//! other connection writes meanwhile. It reads the change counter once ([`begin`]); `changes::bump` then
//! hands out the following numbers without a statement, and `audit::insert` and `timeline::record` queue
//! their rows. [`end`] inserts the queued rows (multi-row INSERTs, kept prepared) and stores the
//! last number, inside the batch's transaction: a write's rows commit or roll back with it. Sequence order
//! stays commit order; a write that fails after taking a number leaves a gap, which sync does not mind (it
//! asks for numbers above a token, never a count), and its queued rows are dropped ([`undo`]).
//!
//! Measured on the check-in benchmark: one UPDATE per write for the number, and one statement each per
//! audit and timeline row, were about a fifth of the writer's time. Nothing inside a batch reads these rows
//! back (they are read by the lists, on read connections, which see committed data only).
//!
//! On PostgreSQL, and on SQLite connections outside the writer (CLI, demo loader, scheduler), nothing is
//! active and every call writes as it goes.

use std::cell::RefCell;

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::NewAuditEvent;
use crate::db::schema::{audit_events, customer_events, sync_counter};
use crate::error::AppError;

/// A timeline row (see `timeline::record`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = customer_events, treat_none_as_default_value = false)]
pub struct NewEvent {
    pub customer_id: i64,
    pub kind: String,
    pub ref_id: Option<i64>,
    pub summary: String,
    pub actor_id: Option<i64>,
    pub at: chrono::NaiveDateTime,
}

#[derive(Default)]
struct Pending {
    /// The last number handed out and the counter's stored value.
    last: i64,
    stored: i64,
    audits: Vec<NewAuditEvent>,
    events: Vec<NewEvent>,
}

thread_local! {
    /// Set while this thread runs a writer batch.
    static BATCH: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Inserts `rows` into `table` in multi-row INSERTs of 32, 16, 8, 4, 2 and 1 rows. A fixed-size array gives
/// each size its own static query id, so diesel keeps each statement prepared; with a slice of any length it
/// rendered and parsed the statement again in every batch (a third of the queued inserts' time). The rows
/// bind `NULL` rather than `DEFAULT` (`treat_none_as_default_value = false`), so each chunk is one
/// statement.
macro_rules! insert_rows {
    ($conn:expr, $table:ident, $rows:expr) => {{
        let mut rest = &$rows[..];
        while !rest.is_empty() {
            insert_rows!(@size $conn, $table, rest, 32, 16, 8, 4, 2, 1);
        }
    }};
    (@size $conn:expr, $table:ident, $rest:ident, $($n:literal),+) => {
        $(
            if $rest.len() >= $n {
                let (head, tail) = $rest.split_at($n);
                let rows = <&[_; $n]>::try_from(head).map_err(|_| {
                    diesel::result::Error::QueryBuilderError("a chunk of the wrong size".into())
                })?;
                diesel::insert_into($table::table).values(rows).execute($conn)?;
                $rest = tail;
                continue;
            }
        )+
    };
}

/// Locks the counter row (the batch's first statement, which takes the write lock) and starts the batch
/// on this thread. Does nothing on PostgreSQL.
pub fn begin(conn: &mut DbConn) -> QueryResult<()> {
    let DbConn::Sqlite(conn) = conn else {
        return Ok(());
    };
    let stored: i64 = super::KeepPrepared(
        diesel::update(sync_counter::table.find(1))
            .set(sync_counter::value.eq(sync_counter::value))
            .returning(sync_counter::value),
    )
    .get_result(conn)?;
    BATCH.with(|b| {
        *b.borrow_mut() = Some(Pending {
            last: stored,
            stored,
            ..Pending::default()
        })
    });
    Ok(())
}

/// The next sequence number, when this thread is in a batch.
pub(super) fn take_seq() -> Option<i64> {
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let p = b.as_mut()?;
        p.last += 1;
        Some(p.last)
    })
}

/// Queues an audit row when this thread is in a batch; gives it back otherwise.
pub(super) fn defer_audit(row: NewAuditEvent) -> Option<NewAuditEvent> {
    defer(row, |p| &mut p.audits)
}

/// Queues a timeline row when this thread is in a batch; gives it back otherwise.
pub(super) fn defer_event(row: NewEvent) -> Option<NewEvent> {
    defer(row, |p| &mut p.events)
}

fn defer<R>(row: R, queue: fn(&mut Pending) -> &mut Vec<R>) -> Option<R> {
    BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(p) => {
            queue(p).push(row);
            None
        }
        None => Some(row),
    })
}

/// Runs one write of the writer's batch in a savepoint, so an error undoes this write only, with the rows it
/// queued. On SQLite the savepoint's three statements are kept prepared: diesel's nested transaction sends
/// them as text, parsed on every write (measured: a twentieth of the writer's time). Elsewhere it is
/// diesel's transaction.
pub fn write<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> Result<T, AppError> {
    if !matches!(conn, DbConn::Sqlite(_)) {
        return conn.transaction(f);
    }
    let mark = mark();
    run(conn, "SAVEPOINT fw_write")?;
    let result = f(conn);
    if result.is_err() {
        undo(mark);
        run(conn, "ROLLBACK TO fw_write")?;
    }
    run(conn, "RELEASE fw_write")?;
    result
}

/// No row: what a savepoint statement returns.
#[derive(QueryableByName)]
struct NoRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    _never: i32,
}

/// Runs a fixed statement, kept prepared.
fn run(conn: &mut DbConn, sql: &'static str) -> QueryResult<()> {
    let q = super::KeepPrepared(diesel::sql_query(sql));
    crate::per_backend!(conn, |c| q.load::<NoRow>(c)).map(|_| ())
}

/// How many rows are queued: taken before a write, so [`undo`] can drop that write's rows if it fails.
#[derive(Debug, Clone, Copy)]
struct Mark(usize, usize);

/// The current [`Mark`].
fn mark() -> Mark {
    BATCH.with(|b| match b.borrow().as_ref() {
        Some(p) => Mark(p.audits.len(), p.events.len()),
        None => Mark(0, 0),
    })
}

/// Drops the rows queued since `mark` (the write that queued them rolled back to its savepoint).
fn undo(mark: Mark) {
    BATCH.with(|b| {
        if let Some(p) = b.borrow_mut().as_mut() {
            p.audits.truncate(mark.0);
            p.events.truncate(mark.1);
        }
    });
}

/// Ends the batch on this thread: inserts the queued rows and stores the last sequence number taken.
/// Call inside the batch's transaction, before it commits.
pub fn end(conn: &mut DbConn) -> QueryResult<()> {
    let Some(p) = BATCH.with(|b| b.borrow_mut().take()) else {
        return Ok(());
    };
    let DbConn::Sqlite(conn) = conn else {
        return Ok(());
    };
    insert_rows!(conn, audit_events, p.audits);
    insert_rows!(conn, customer_events, p.events);
    if p.last != p.stored {
        super::KeepPrepared(
            diesel::update(sync_counter::table.find(1))
                .set(sync_counter::value.eq(p.last))
                .returning(sync_counter::value),
        )
        .get_result::<i64>(conn)?;
    }
    Ok(())
}

/// Forgets the batch without storing anything (it rolls back).
pub fn abandon() {
    BATCH.with(|b| b.borrow_mut().take());
}
