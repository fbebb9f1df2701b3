//! Push devices: registration (one row per provider and token, which follows whoever registered it last),
//! listing, removal by the owner or at logout. A device leaving a user takes its unsent pushes with it, so
//! nothing of the previous owner reaches the next one.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{devices, push_outbox};

/// A device row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct Device {
    pub id: i64,
    pub user_id: i64,
    pub session_id: Option<String>,
    pub provider: String,
    pub token: String,
    pub platform: String,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub disabled_at: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What a registration says.
#[derive(Debug, Clone)]
pub struct Registration {
    pub user_id: i64,
    pub session_id: String,
    pub provider: String,
    pub token: String,
    pub platform: String,
    pub app_version: Option<String>,
    pub locale: Option<String>,
}

/// Push rows not yet sent (the dispatcher's open statuses).
const OPEN: [&str; 2] = ["pending", "retry"];

/// Registers a token for `r.user_id` and their session: a known (provider, token) is updated, re-enabled
/// and moved to the caller (its unsent pushes for the previous owner are dropped). Returns the device and
/// whether it was new.
pub fn register(
    conn: &mut DbConn,
    r: &Registration,
    now: NaiveDateTime,
) -> QueryResult<(Device, bool)> {
    let existing: Option<Device> = devices::table
        .filter(devices::provider.eq(&r.provider))
        .filter(devices::token.eq(&r.token))
        .select(Device::as_select())
        .first(conn)
        .optional()?;
    if let Some(old) = &existing
        && old.user_id != r.user_id
    {
        diesel::delete(
            push_outbox::table
                .filter(push_outbox::device_id.eq(old.id))
                .filter(push_outbox::status.eq_any(OPEN)),
        )
        .execute(conn)?;
    }
    let q = diesel::insert_into(devices::table)
        .values((
            devices::user_id.eq(r.user_id),
            devices::session_id.eq(&r.session_id),
            devices::provider.eq(&r.provider),
            devices::token.eq(&r.token),
            devices::platform.eq(&r.platform),
            devices::app_version.eq(&r.app_version),
            devices::locale.eq(&r.locale),
            devices::created_at.eq(now),
            devices::updated_at.eq(now),
        ))
        .on_conflict((devices::provider, devices::token))
        .do_update()
        .set((
            devices::user_id.eq(r.user_id),
            devices::session_id.eq(&r.session_id),
            devices::platform.eq(&r.platform),
            devices::app_version.eq(&r.app_version),
            devices::locale.eq(&r.locale),
            devices::disabled_at.eq(None::<NaiveDateTime>),
            devices::disabled_reason.eq(None::<String>),
            devices::updated_at.eq(now),
        ));
    // An upsert, so that two first registrations racing on PostgreSQL do not collide; upserts only run
    // on the concrete backend.
    crate::per_backend!(&mut *conn, |c| q.execute(c))?;
    let device = devices::table
        .filter(devices::provider.eq(&r.provider))
        .filter(devices::token.eq(&r.token))
        .select(Device::as_select())
        .first(conn)?;
    Ok((device, existing.is_none()))
}

/// The user's devices, newest first.
pub fn list(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Device>> {
    devices::table
        .filter(devices::user_id.eq(user_id))
        .order(devices::id.desc())
        .select(Device::as_select())
        .load(conn)
}

fn delete_ids(conn: &mut DbConn, ids: &[i64]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    // The outbox references the device: its history goes with it.
    diesel::delete(push_outbox::table.filter(push_outbox::device_id.eq_any(ids))).execute(conn)?;
    diesel::delete(devices::table.filter(devices::id.eq_any(ids))).execute(conn)
}

/// Removes one of the user's devices; false if they have no such device.
pub fn delete_own(conn: &mut DbConn, user_id: i64, id: i64) -> QueryResult<bool> {
    let found: Option<i64> = devices::table
        .filter(devices::id.eq(id))
        .filter(devices::user_id.eq(user_id))
        .select(devices::id)
        .first(conn)
        .optional()?;
    match found {
        Some(id) => Ok(delete_ids(conn, &[id])? > 0),
        None => Ok(false),
    }
}

/// Removes the devices registered in a session (at logout); returns how many.
pub fn delete_for_session(conn: &mut DbConn, session_id: &str) -> QueryResult<usize> {
    let ids: Vec<i64> = devices::table
        .filter(devices::session_id.eq(session_id))
        .select(devices::id)
        .load(conn)?;
    delete_ids(conn, &ids)
}
