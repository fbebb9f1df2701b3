//! Admin-managed code lists (customer categories, customer tiers, product types): read by everyone, extended
//! by admins. Codes are never deleted, so stored values always resolve.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::dictionaries;

/// One code of a list.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dictionaries)]
pub struct Entry {
    /// The list, e.g. `product_type`.
    pub kind: String,
    /// The stored code, e.g. `time_deposit`.
    pub code: String,
    /// What people read, e.g. 定期存款.
    pub label: String,
    /// Inactive codes stay readable but are refused on new input.
    pub active: bool,
    /// Sort order.
    pub position: i32,
}

/// The codes of a list, by position then code.
pub fn list(conn: &mut DbConn, kind: &str) -> QueryResult<Vec<Entry>> {
    dictionaries::table
        .filter(dictionaries::kind.eq(kind))
        .order((dictionaries::position.asc(), dictionaries::code.asc()))
        .select(Entry::as_select())
        .load(conn)
}

/// Whether `code` is an active code of `kind`.
pub fn is_active(conn: &mut DbConn, kind: &str, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dictionaries::table
            .filter(dictionaries::kind.eq(kind))
            .filter(dictionaries::code.eq(code))
            .filter(dictionaries::active.eq(true)),
    ))
    .get_result(conn)
}

/// The largest position in a list (0 when empty).
pub fn max_position(conn: &mut DbConn, kind: &str) -> QueryResult<i32> {
    dictionaries::table
        .filter(dictionaries::kind.eq(kind))
        .select(diesel::dsl::max(dictionaries::position))
        .first::<Option<i32>>(conn)
        .map(Option::unwrap_or_default)
}

/// Adds a code; false (and nothing changed) when the list has it already.
pub fn insert(conn: &mut DbConn, e: &Entry) -> QueryResult<bool> {
    let q = diesel::insert_into(dictionaries::table)
        .values(e)
        .on_conflict_do_nothing();
    crate::per_backend!(conn, |c| q.execute(c)).map(|n| n == 1)
}
