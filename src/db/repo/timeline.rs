//! The customer archive (客户档案): an append-only list of what happened to a customer, newest first.
//! Every resource that touches a customer (visit, report, note, opportunity, holding, transfer) adds a line.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::customer_events;

/// One archive line.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_events)]
pub struct Event {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub ref_id: Option<i64>,
    pub summary: String,
    pub actor_id: Option<i64>,
    pub at: NaiveDateTime,
}

/// Appends a line. `kind` is e.g. `visit`, `visit_report`, `note`, `opportunity`, `opportunity_stage`,
/// `holding`, `transfer`, `customer`; `ref_id` the id of that record. Keep `summary` free of phone and ID
/// numbers.
pub fn record(
    conn: &mut DbConn,
    customer_id: i64,
    kind: &str,
    ref_id: Option<i64>,
    summary: &str,
    actor_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = super::batch::NewEvent {
        customer_id,
        kind: kind.to_owned(),
        ref_id,
        summary: summary.to_owned(),
        actor_id,
        at: now,
    };
    // In the SQLite writer's batch, queued and inserted with the batch's other rows before it commits.
    let Some(row) = super::batch::defer_event(row) else {
        return Ok(());
    };
    // On the backend's own connection, where diesel keeps the prepared statement (every visit write).
    let q = super::KeepPrepared(
        diesel::insert_into(customer_events::table)
            .values(&row)
            .returning(customer_events::id),
    );
    crate::per_backend!(conn, |c| q.get_result::<i64>(c)).map(|_| ())
}

/// A page of a customer's archive, newest first, before the event id `before`.
pub fn list(
    conn: &mut DbConn,
    customer_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let mut q = customer_events::table
        .filter(customer_events::customer_id.eq(customer_id))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(customer_events::id.lt(b));
    }
    q.order(customer_events::id.desc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
}
