//! Holdings (持有产品) of customers. Every function takes a customer the caller was already checked to see
//! (`repo::scope::find_customer`); archived holdings are kept and never listed.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::holdings;

/// A holding row; money in whole fen.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = holdings)]
pub struct Holding {
    pub id: i64,
    pub customer_id: i64,
    pub product_type: String,
    pub product_name: String,
    pub amount_fen: i64,
    pub open_date: Option<NaiveDate>,
    pub maturity_date: Option<NaiveDate>,
    pub rate: Option<String>,
    pub status: String,
    pub next_repayment_date: Option<NaiveDate>,
    pub overdue: bool,
    pub archived_at: Option<NaiveDateTime>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new holding.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = holdings)]
pub struct NewHolding {
    pub customer_id: i64,
    pub product_type: String,
    pub product_name: String,
    pub amount_fen: i64,
    pub open_date: Option<NaiveDate>,
    pub maturity_date: Option<NaiveDate>,
    pub rate: Option<String>,
    pub status: String,
    pub next_repayment_date: Option<NaiveDate>,
    pub overdue: bool,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a holding; `Some(None)` clears a nullable column.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = holdings)]
pub struct HoldingChanges {
    pub product_type: Option<String>,
    pub product_name: Option<String>,
    pub amount_fen: Option<i64>,
    pub open_date: Option<Option<NaiveDate>>,
    pub maturity_date: Option<Option<NaiveDate>>,
    pub rate: Option<Option<String>>,
    pub status: Option<String>,
    pub next_repayment_date: Option<Option<NaiveDate>>,
    pub overdue: Option<bool>,
    pub seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Live holdings of a customer after `after`, by id, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    customer_id: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Holding>> {
    let mut q = holdings::table
        .filter(holdings::customer_id.eq(customer_id))
        .filter(holdings::archived_at.is_null())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(holdings::id.gt(a));
    }
    q.order(holdings::id.asc())
        .limit(limit)
        .select(Holding::as_select())
        .load(conn)
}

/// One live holding of a customer.
pub fn find(conn: &mut DbConn, customer_id: i64, id: i64) -> QueryResult<Option<Holding>> {
    holdings::table
        .filter(holdings::id.eq(id))
        .filter(holdings::customer_id.eq(customer_id))
        .filter(holdings::archived_at.is_null())
        .select(Holding::as_select())
        .first(conn)
        .optional()
}

/// Inserts a holding and returns its id.
pub fn insert(conn: &mut DbConn, new: &NewHolding) -> QueryResult<i64> {
    diesel::insert_into(holdings::table)
        .values(new)
        .returning(holdings::id)
        .get_result(conn)
}

/// Applies changes to a holding already found live.
pub fn update(conn: &mut DbConn, id: i64, changes: &HoldingChanges) -> QueryResult<usize> {
    diesel::update(holdings::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Archives a holding (kept, never listed again).
pub fn archive(conn: &mut DbConn, id: i64, seq: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(holdings::table.find(id))
        .set((
            holdings::archived_at.eq(Some(now)),
            holdings::seq.eq(seq),
            holdings::updated_at.eq(now),
        ))
        .execute(conn)
}
