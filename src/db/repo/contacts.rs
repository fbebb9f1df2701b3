//! Key contacts of corporate customers. Every function takes a customer the caller was already checked to
//! see (`repo::scope::find_customer`); archived contacts are kept and never listed.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::customer_contacts;

/// A contact row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_contacts)]
pub struct Contact {
    pub id: i64,
    pub customer_id: i64,
    pub name: String,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub birthday_md: Option<String>,
    pub lunar_month: Option<i32>,
    pub lunar_day: Option<i32>,
    pub lunar_leap: bool,
    pub archived_at: Option<NaiveDateTime>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new contact.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = customer_contacts)]
pub struct NewContact {
    pub customer_id: i64,
    pub name: String,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub birthday_md: Option<String>,
    pub lunar_month: Option<i32>,
    pub lunar_day: Option<i32>,
    pub lunar_leap: bool,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a contact; `Some(None)` clears a nullable column.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = customer_contacts)]
pub struct ContactChanges {
    pub name: Option<String>,
    pub title: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub birthday: Option<Option<NaiveDate>>,
    pub birthday_md: Option<Option<String>>,
    pub lunar_month: Option<Option<i32>>,
    pub lunar_day: Option<Option<i32>>,
    pub lunar_leap: Option<bool>,
    pub seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Live contacts of a customer after `after`, by id, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    customer_id: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Contact>> {
    let mut q = customer_contacts::table
        .filter(customer_contacts::customer_id.eq(customer_id))
        .filter(customer_contacts::archived_at.is_null())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(customer_contacts::id.gt(a));
    }
    q.order(customer_contacts::id.asc())
        .limit(limit)
        .select(Contact::as_select())
        .load(conn)
}

/// One live contact of a customer.
pub fn find(conn: &mut DbConn, customer_id: i64, id: i64) -> QueryResult<Option<Contact>> {
    customer_contacts::table
        .filter(customer_contacts::id.eq(id))
        .filter(customer_contacts::customer_id.eq(customer_id))
        .filter(customer_contacts::archived_at.is_null())
        .select(Contact::as_select())
        .first(conn)
        .optional()
}

/// Inserts a contact and returns its id.
pub fn insert(conn: &mut DbConn, new: &NewContact) -> QueryResult<i64> {
    diesel::insert_into(customer_contacts::table)
        .values(new)
        .returning(customer_contacts::id)
        .get_result(conn)
}

/// Applies changes to a contact already found live.
pub fn update(conn: &mut DbConn, id: i64, changes: &ContactChanges) -> QueryResult<usize> {
    diesel::update(customer_contacts::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Archives a contact (kept, never listed again).
pub fn archive(conn: &mut DbConn, id: i64, seq: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(customer_contacts::table.find(id))
        .set((
            customer_contacts::archived_at.eq(Some(now)),
            customer_contacts::seq.eq(seq),
            customer_contacts::updated_at.eq(now),
        ))
        .execute(conn)
}
