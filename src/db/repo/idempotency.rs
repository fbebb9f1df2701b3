//! Stored first answers of idempotent creates.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::idempotency_keys;

/// A stored answer.
#[derive(Debug, Clone, Queryable)]
pub struct Stored {
    /// Digest of the request body that produced it.
    pub request_hash: String,
    /// HTTP status.
    pub status: i32,
    /// JSON body.
    pub body: String,
}

/// The answer stored for `(user, key)`, if any.
pub fn find(conn: &mut DbConn, user_id: i64, key: &str) -> QueryResult<Option<Stored>> {
    let q = super::KeepPrepared(
        idempotency_keys::table
            .find((user_id, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status,
                idempotency_keys::body,
            ))
            .limit(1),
    );
    crate::per_backend!(conn, |c| q.get_result(c).optional())
}

/// Stores the first answer (a concurrent duplicate fails with a unique violation and rolls back).
pub fn store(
    conn: &mut DbConn,
    user_id: i64,
    key: &str,
    hash: &str,
    status: i32,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let q = super::KeepPrepared(
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user_id),
                idempotency_keys::key.eq(key),
                idempotency_keys::request_hash.eq(hash),
                idempotency_keys::status.eq(status),
                idempotency_keys::body.eq(body),
                idempotency_keys::created_at.eq(now),
            ))
            .returning(idempotency_keys::created_at),
    );
    crate::per_backend!(conn, |c| q.get_result::<NaiveDateTime>(c)).map(|_| ())
}
