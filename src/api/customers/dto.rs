//! Request and response types of `/api/v1/customers` (the handlers are in `api::customers`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::double_option;
use crate::api::utc;
use crate::db::models::Customer;
use crate::domain::customer::{self as rules, CustomerKind, CustomerStatus, Gender, LunarBirthday};
use crate::domain::geo::Datum;

/// A customer. In lists `phone` and `id_number` are masked; the detail view shows them in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerResponse {
    /// Customer id.
    pub id: i64,
    /// Individual or corporate.
    pub kind: CustomerKind,
    /// Name.
    pub name: String,
    /// Category code (dictionary `customer_category`).
    pub category: Option<String>,
    /// Tier code (dictionary `customer_tier`).
    pub tier: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Mobile phone (masked in lists).
    pub phone: Option<String>,
    /// ID number (masked in lists).
    pub id_number: Option<String>,
    /// Solar birthday.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub birthday: Option<NaiveDate>,
    /// Lunar (农历) birthday.
    pub lunar_birthday: Option<LunarBirthday>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Address.
    pub address: Option<String>,
    /// Latitude, always WGS-84 (converted on input).
    pub latitude: Option<f64>,
    /// Longitude, always WGS-84 (converted on input).
    pub longitude: Option<f64>,
    /// The datum the coordinates were given in (they are stored and returned as WGS-84).
    pub location_datum: Option<Datum>,
    /// Traits and notes (喜好、特征).
    pub traits: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Status.
    pub status: CustomerStatus,
    /// Responsible manager (user id).
    pub manager_id: i64,
    /// Originating manager (user id).
    pub originator_id: i64,
    /// Customer team, if any.
    pub team_id: Option<i64>,
    /// Change sequence of the last write (the `ETag` follows it).
    pub seq: i64,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

fn datum_of(s: Option<&str>) -> Option<Datum> {
    match s? {
        "gcj02" => Some(Datum::Gcj02),
        "wgs84" => Some(Datum::Wgs84),
        _ => None,
    }
}

impl CustomerResponse {
    /// The detail view: everything in full.
    pub fn full(c: Customer) -> Self {
        Self {
            id: c.id,
            kind: CustomerKind::parse(&c.kind).unwrap_or(CustomerKind::Individual),
            name: c.name,
            category: c.category,
            tier: c.tier,
            industry: c.industry,
            phone: c.phone,
            id_number: c.id_number,
            birthday: c.birthday,
            lunar_birthday: LunarBirthday::from_columns(c.lunar_month, c.lunar_day, c.lunar_leap),
            gender: c.gender.as_deref().and_then(Gender::parse),
            address: c.address,
            latitude: c.latitude,
            longitude: c.longitude,
            location_datum: datum_of(c.location_datum.as_deref()),
            traits: c.traits,
            tags: rules::parse_tags(&c.tags),
            status: CustomerStatus::parse(&c.status).unwrap_or(CustomerStatus::Active),
            manager_id: c.manager_id,
            originator_id: c.originator_id,
            team_id: c.team_id,
            seq: c.seq,
            created_at: utc(c.created_at),
            updated_at: utc(c.updated_at),
        }
    }

    /// The list view: phone and ID number masked.
    pub fn masked(c: Customer) -> Self {
        let mut r = Self::full(c);
        r.phone = r.phone.map(|p| rules::mask_phone(&p));
        r.id_number = r.id_number.map(|n| rules::mask_id_number(&n));
        r
    }
}

/// A page of customers (phone and ID numbers masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    /// The customers, by id.
    pub items: Vec<CustomerResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /customers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListCustomersQuery {
    /// Name prefix, or (4+ digits) the end of the phone number; up to 100 characters.
    pub q: Option<String>,
    /// Only this tier code.
    pub tier: Option<String>,
    /// Only this category code.
    pub category: Option<String>,
    /// Only customers of this responsible manager.
    pub manager_id: Option<i64>,
    /// Only customers whose responsible manager is in this org or below it.
    pub org_id: Option<i64>,
    /// A solar or lunar birthday from today (Asia/Shanghai) to today + N days, 0–366.
    pub birthday_within_days: Option<u32>,
    /// A live holding matures from today to today + N days, 0–366.
    pub maturing_within_days: Option<u32>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /customers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Client-generated id: an idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// Individual or corporate (fixed once created).
    pub kind: CustomerKind,
    /// Name, 1–100 characters.
    pub name: String,
    /// An active `customer_category` code.
    pub category: Option<String>,
    /// An active `customer_tier` code.
    pub tier: Option<String>,
    /// Industry, up to 50 characters.
    pub industry: Option<String>,
    /// 11-digit mainland mobile number.
    pub phone: Option<String>,
    /// Individual: 18-character PRC ID (17 digits + digit or X); corporate: 1–32 letters, digits, `-`.
    pub id_number: Option<String>,
    /// Solar birthday, not in the future.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub birthday: Option<NaiveDate>,
    /// Lunar birthday.
    pub lunar_birthday: Option<LunarBirthday>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Address, up to 200 characters.
    pub address: Option<String>,
    /// Latitude in `location_datum`, −90..90 (with `longitude`).
    pub latitude: Option<f64>,
    /// Longitude in `location_datum`, −180..180 (with `latitude`).
    pub longitude: Option<f64>,
    /// Datum of the coordinates (default `wgs84`); `gcj02` is converted to WGS-84 before storing.
    pub location_datum: Option<Datum>,
    /// Traits and notes, up to 500 characters.
    pub traits: Option<String>,
    /// Up to 20 tags of 1–20 characters.
    pub tags: Option<Vec<String>>,
    /// Status (default `active`; not `archived`).
    pub status: Option<CustomerStatus>,
    /// Responsible manager: leaders and admins must name a manager in their subtree; a manager may omit it.
    pub manager_id: Option<i64>,
}

/// Body of `PATCH /customers/{id}`: every field optional; `null` clears a nullable one. Coordinates change
/// together (`latitude` and `longitude`, both values or both `null`). The responsible manager changes only
/// by a transfer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    /// Name (not `null`).
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Category code; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// Tier code; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tier: Option<Option<String>>,
    /// Industry; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    /// Phone; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// ID number; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub id_number: Option<Option<String>>,
    /// Solar birthday; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Option<Option<NaiveDate>>,
    /// Lunar birthday; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<LunarBirthday>)]
    pub lunar_birthday: Option<Option<LunarBirthday>>,
    /// Gender; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Gender>)]
    pub gender: Option<Option<Gender>>,
    /// Address; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    /// Latitude; `null` (with `longitude: null`) clears the location.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub latitude: Option<Option<f64>>,
    /// Longitude.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub longitude: Option<Option<f64>>,
    /// Datum of the new coordinates (default `wgs84`).
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub location_datum: Option<Datum>,
    /// Traits; `null` clears them.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub traits: Option<Option<String>>,
    /// Replaces the tags (not `null`; `[]` removes them all).
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    /// Status (not `archived`: use `DELETE`; not `null`).
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub status: Option<CustomerStatus>,
}

/// Deserialises a PATCH field that may be absent but not `null`: a `null` fails like any wrong type
/// (422 `invalid_type` naming the field) instead of being taken for "unchanged".
pub fn non_null<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}
