//! Row structs: what diesel reads from and writes to each table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_events, login_throttle, orgs, refresh_tokens, sessions, users};
use super::time::Ts;

/// An org row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orgs)]
pub struct Org {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub path: String,
    #[diesel(deserialize_as = Ts)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Ts)]
    pub updated_at: NaiveDateTime,
}

/// A new org; `path` is completed once the id is known.
#[derive(Debug, Insertable)]
#[diesel(table_name = orgs)]
pub struct NewOrg {
    pub parent_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub path: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to an org (rename, recode; moves are done by `repo::orgs::move_subtree`).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = orgs)]
pub struct OrgChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// An org as other records show it (the user list reads only these columns).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orgs)]
pub struct OrgBrief {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub path: String,
}

impl From<&Org> for OrgBrief {
    fn from(o: &Org) -> Self {
        Self {
            id: o.id,
            code: o.code.clone(),
            name: o.name.clone(),
            kind: o.kind.clone(),
            path: o.path.clone(),
        }
    }
}

/// A user as lists show them: the row without its password hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserCard {
    pub id: i64,
    pub employee_no: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub grade: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
    #[diesel(deserialize_as = Ts)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Ts)]
    pub updated_at: NaiveDateTime,
}

impl From<User> for UserCard {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            employee_no: u.employee_no,
            name: u.name,
            phone: u.phone,
            role: u.role,
            grade: u.grade,
            active: u.active,
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub employee_no: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub org_id: i64,
    pub grade: Option<String>,
    pub active: bool,
    pub password_hash: String,
    pub must_change_password: bool,
    #[diesel(deserialize_as = Ts)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Ts)]
    pub updated_at: NaiveDateTime,
}

/// A new user.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub employee_no: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub org_id: i64,
    pub grade: Option<String>,
    pub active: bool,
    pub password_hash: String,
    pub must_change_password: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a user; `Some(None)` clears a nullable column.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub role: Option<String>,
    pub org_id: Option<i64>,
    pub grade: Option<Option<String>>,
    pub active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A login session.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A refresh token (stored as its digest).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// Guessing state of one subject: `no:<employee number>` (known or not) or `ip:<client address>`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle)]
pub struct LoginThrottle {
    pub subject: String,
    pub failures: i32,
    pub window_start: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

/// An audit row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub org_path: String,
    pub at: NaiveDateTime,
    pub request_id: String,
    pub client_ip: Option<String>,
    pub detail: Option<String>,
}

/// A new audit row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct NewAuditEvent {
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub org_path: String,
    pub at: NaiveDateTime,
    pub request_id: String,
    pub client_ip: Option<String>,
    pub detail: Option<String>,
}

/// A customer row. Coordinates are WGS-84 (converted on input); `location_datum` says what the client sent.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::customers)]
pub struct Customer {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub category: Option<String>,
    pub tier: Option<String>,
    pub industry: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub birthday_md: Option<String>,
    pub lunar_month: Option<i32>,
    pub lunar_day: Option<i32>,
    pub lunar_leap: bool,
    pub gender: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_datum: Option<String>,
    pub traits: Option<String>,
    pub tags: String,
    pub status: String,
    pub manager_id: i64,
    pub originator_id: i64,
    pub team_id: Option<i64>,
    pub archived_at: Option<NaiveDateTime>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new customer.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = super::schema::customers)]
pub struct NewCustomer {
    pub kind: String,
    pub name: String,
    pub category: Option<String>,
    pub tier: Option<String>,
    pub industry: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub birthday: Option<chrono::NaiveDate>,
    pub birthday_md: Option<String>,
    pub lunar_month: Option<i32>,
    pub lunar_day: Option<i32>,
    pub lunar_leap: bool,
    pub gender: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_datum: Option<String>,
    pub traits: Option<String>,
    pub tags: String,
    pub status: String,
    pub manager_id: i64,
    pub originator_id: i64,
    pub team_id: Option<i64>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
