//! `/api/v1/customers`: list with filters, detail (with `ETag` and read audit), create (idempotent),
//! update and archive. Visibility is `repo::scope::customers`: a manager sees the customers they are
//! responsible for and those of their customer teams, a leader or admin those of their org subtree;
//! anything else is 404.
//!
//! - Lists mask phone and ID numbers (`138****5678`, `3201**********1234`); the detail view shows them in
//!   full, and every detail view by someone other than the responsible manager leaves a `customer.read`
//!   audit row. A `304 Not Modified` discloses nothing, so it is not audited.
//! - "谁开拓, 谁管理": the creating manager is responsible and originating manager (a leader or admin names
//!   the manager with `manager_id`); the first ownership row starts then.
//! - `DELETE` archives: the row stays (status `archived`), it leaves every view and sync gets a tombstone.
//! - `birthday_within_days` matches solar and lunar (农历) birthdays by the rules of the birthday
//!   reminders (`domain::reminders`).

pub mod dto;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{Duration, NaiveDate};
use utoipa_actix_web::service_config::ServiceConfig;

pub use self::dto::{
    CreateCustomerRequest, CustomerList, CustomerResponse, ListCustomersQuery,
    UpdateCustomerRequest, non_null,
};
use super::etag;
use super::extract::{ApiJson, ApiQuery, PathId, page_params, query_error};
use super::idempotency::{Answer, IdempotentJson, once};
use super::rendered;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::models::{Customer, NewCustomer};
use crate::db::repo::audit::Entry;
use crate::db::repo::changes::{self, Audience};
use crate::db::repo::customers::{self, BirthdayKeys, CustomerChanges, CustomerFilter};
use crate::db::repo::{audit, dictionaries, orgs, reminders, timeline, users};
use crate::domain::calendar::{birthday_keys, local_date, month_day};
use crate::domain::customer::{self as rules, CustomerKind, CustomerStatus, NAME_MAX};
use crate::domain::geo::Datum;
use crate::domain::paging::finish_page;
use crate::domain::reminders::lunar_keys;
use crate::domain::user::{Role, check_phone};
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_customers)
        .service(create_customer)
        .service(get_customer)
        .service(update_customer)
        .service(archive_customer);
}

fn check_status(errs: &mut FieldErrors, s: Option<CustomerStatus>) {
    if s == Some(CustomerStatus::Archived) {
        errs.add("status", "invalid_value", "archive with DELETE");
    }
}

/// Checks an optional client id (1–128 characters).
pub fn check_client_id(errs: &mut FieldErrors, v: Option<&str>) {
    if v.is_some_and(|v| !(1..=128).contains(&v.trim().len())) {
        errs.add("client_id", "invalid_format", "1 to 128 characters");
    }
}

/// Refuses a category or tier that is not an active dictionary code (422 `invalid_value`).
fn check_codes(c: &mut DbConn, category: Option<&str>, tier: Option<&str>) -> AppResult<()> {
    let mut errs = FieldErrors::default();
    for (field, kind, code) in [
        ("category", "customer_category", category),
        ("tier", "customer_tier", tier),
    ] {
        if let Some(code) = code
            && !dictionaries::is_active(c, kind, code)?
        {
            errs.add(field, "invalid_value", format!("not an active {kind} code"));
        }
    }
    errs.finish()
}

fn new_customer(req: &CreateCustomerRequest, today: NaiveDate) -> AppResult<NewCustomer> {
    let mut errs = FieldErrors::default();
    check_client_id(&mut errs, req.client_id.as_deref());
    let name = validate::text(&mut errs, "name", &req.name, NAME_MAX);
    let opt = |errs: &mut FieldErrors, f: &str, v: &Option<String>, max| {
        validate::opt_text(errs, f, v.as_deref(), max)
    };
    let category = opt(&mut errs, "category", &req.category, 32);
    let tier = opt(&mut errs, "tier", &req.tier, 32);
    let industry = opt(&mut errs, "industry", &req.industry, 50);
    let address = opt(&mut errs, "address", &req.address, 200);
    let traits = validate::opt_prose(&mut errs, "traits", req.traits.as_deref(), 500);
    let phone = req
        .phone
        .as_deref()
        .map(|p| check_phone(&mut errs, "phone", p));
    let id_number = req
        .id_number
        .as_deref()
        .map(|n| rules::check_id_number(&mut errs, "id_number", n, req.kind));
    if let Some(b) = req.birthday {
        rules::check_birthday(&mut errs, "birthday", b, today);
    }
    if let Some(l) = &req.lunar_birthday {
        rules::check_lunar(&mut errs, "lunar_birthday", l);
    }
    let loc = rules::check_location(&mut errs, req.latitude, req.longitude, req.location_datum);
    let tags = rules::check_tags(&mut errs, "tags", req.tags.as_deref().unwrap_or_default());
    check_status(&mut errs, req.status);
    errs.finish()?;
    Ok(NewCustomer {
        kind: req.kind.as_str().into(),
        name,
        category,
        tier,
        industry,
        phone,
        id_number,
        birthday: req.birthday,
        birthday_md: req.birthday.map(month_day),
        lunar_month: req.lunar_birthday.map(|l| l.month),
        lunar_day: req.lunar_birthday.map(|l| l.day),
        lunar_leap: req.lunar_birthday.is_some_and(|l| l.leap),
        gender: req.gender.map(|g| g.as_str().to_owned()),
        address,
        latitude: loc.map(|l| l.lat),
        longitude: loc.map(|l| l.lon),
        location_datum: loc.map(|l| l.datum.as_str().to_owned()),
        traits,
        tags,
        status: req.status.unwrap_or(CustomerStatus::Active).as_str().into(),
        manager_id: 0,
        originator_id: 0,
        team_id: None,
        seq: 0,
        created_at: chrono::NaiveDateTime::default(),
        updated_at: chrono::NaiveDateTime::default(),
    })
}

/// The manager a new customer belongs to, with their org (id, path).
fn responsible_manager(
    c: &mut DbConn,
    caller: &Caller,
    given: Option<i64>,
) -> AppResult<(i64, i64, String)> {
    match (caller.role, given) {
        (Role::Manager, None) => Ok((caller.user_id, caller.org_id, caller.org_path.clone())),
        (Role::Manager, Some(id)) if id == caller.user_id => {
            Ok((id, caller.org_id, caller.org_path.clone()))
        }
        (Role::Manager, Some(_)) => Err(AppError::field(
            "manager_id",
            "not_found",
            "a manager creates customers for themself",
        )),
        (_, None) => Err(AppError::field(
            "manager_id",
            "required",
            "name the responsible manager",
        )),
        (_, Some(id)) => match users::find(c, &caller.scope(), id)? {
            None => Err(AppError::field(
                "manager_id",
                "not_found",
                "no such user in your subtree",
            )),
            Some((u, _)) if u.role != Role::Manager.as_str() || !u.active => Err(AppError::field(
                "manager_id",
                "invalid_value",
                "must be an active customer manager",
            )),
            Some((u, o)) => Ok((u.id, o.id, o.path)),
        },
    }
}

fn not_found() -> AppError {
    AppError::NotFound(ErrorCode::CustomerNotFound)
}

/// The customer `id` in the caller's scope, else 404 `customer_not_found`.
pub fn visible(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<Customer> {
    customers::find(c, &caller.scope(), id)?.ok_or_else(not_found)
}

/// Records a write on a customer or one of its records: an archive line of kind `entity` and an audit row
/// under the responsible manager's org.
pub fn record_write(
    c: &mut DbConn,
    caller: &Caller,
    customer: &Customer,
    (action, entity, entity_id): (&str, &str, i64),
    summary: &str,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    timeline::record(
        c,
        customer.id,
        entity,
        Some(entity_id),
        summary,
        Some(caller.user_id),
        now,
    )?;
    let (_, path) = customers::manager_org(c, customer.manager_id)?;
    audit::record(c, caller, Entry::new(action, entity, entity_id, &path), now)?;
    Ok(())
}

/// Who could see a customer's records until now (for tombstones).
pub fn audience(c: &mut DbConn, customer: &Customer) -> AppResult<Audience> {
    let (org_id, _) = customers::manager_org(c, customer.manager_id)?;
    Ok(Audience {
        manager_id: Some(customer.manager_id),
        team_id: customer.team_id,
        org_id: Some(org_id),
    })
}

/// When the caller is not the responsible manager, the org path the read-audit row goes under.
pub fn read_audit_path(
    c: &mut DbConn,
    caller: &Caller,
    customer: &Customer,
) -> AppResult<Option<String>> {
    if caller.user_id == customer.manager_id {
        return Ok(None);
    }
    Ok(Some(customers::manager_org(c, customer.manager_id)?.1))
}

/// Writes the `customer.read` audit row of a detail view (`view` names a sub-view such as `contacts`).
pub async fn audit_read(
    state: &AppState,
    auth: Auth,
    customer_id: i64,
    path: String,
    view: Option<&'static str>,
) -> AppResult<()> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let mut e = Entry::new("customer.read", "customer", customer_id, &path);
            if let Some(v) = view {
                e = e.with_detail(serde_json::json!({ "view": v }).to_string());
            }
            Ok(audit::record(c, &caller, e, now)?)
        })
        .await
}

/// The solar and lunar birthday keys celebrated from `today` to `today + days` (the rules of the birthday
/// reminders: 29 February on 28 February in a common year; a leap-month birthday in the ordinary month
/// when the year has no such leap month; a 30th on the 29th of a short month).
fn birthdays_within(today: NaiveDate, days: u32) -> BirthdayKeys {
    let mut keys = BirthdayKeys {
        solar: birthday_keys(today, days),
        ..BirthdayKeys::default()
    };
    for i in 0..=i64::from(days.min(366)) {
        for k in lunar_keys(today + Duration::days(i)) {
            let code = k.month * 100 + k.day;
            if k.leap {
                keys.lunar_leap.push(code);
            } else {
                keys.lunar.push(code);
            }
        }
    }
    for v in [&mut keys.lunar, &mut keys.lunar_leap] {
        v.sort_unstable();
        v.dedup();
    }
    keys
}

fn list_filter(q: &ListCustomersQuery, today: NaiveDate) -> AppResult<CustomerFilter> {
    for (field, v) in [
        ("birthday_within_days", q.birthday_within_days),
        ("maturing_within_days", q.maturing_within_days),
    ] {
        if v.is_some_and(|d| d > 366) {
            return Err(query_error(field, "out_of_range", "0 to 366 days"));
        }
    }
    for (field, v, max) in [
        ("q", &q.q, NAME_MAX),
        ("tier", &q.tier, 32),
        ("category", &q.category, 32),
    ] {
        if v.as_deref().is_some_and(|v| v.chars().count() > max) {
            return Err(query_error(
                field,
                "too_long",
                &format!("at most {max} characters"),
            ));
        }
    }
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(CustomerFilter {
        q: trimmed(&q.q),
        tier: trimmed(&q.tier),
        category: trimmed(&q.category),
        manager_id: q.manager_id,
        org_path: None,
        birthdays: q.birthday_within_days.map(|d| birthdays_within(today, d)),
        maturing: q
            .maturing_within_days
            .map(|d| (today, today + Duration::days(i64::from(d)))),
    })
}

/// Lists the customers the caller may see (phone and ID numbers masked).
#[utoipa::path(
    tag = "customers",
    params(ListCustomersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CustomerList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers")]
async fn list_customers(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListCustomersQuery>,
) -> AppResult<HttpResponse> {
    let q = query.0;
    let (limit, after) = page_params(q.limit, q.cursor.as_deref())?;
    let now = state.now();
    let mut filter = list_filter(&q, local_date(now.and_utc()))?;
    let org_id = q.org_id;
    let cache = state.clone();
    // The page as (id, version); rows already rendered at that version come from the cache, the others
    // (through the scope again) from the database.
    let (page, next_cursor, rows) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            if let Some(o) = org_id {
                match orgs::find(c, &scope, o)? {
                    Some(org) => filter.org_path = Some(org.path),
                    None => return Ok((Vec::new(), None, Vec::new())),
                }
            }
            let keys = customers::list(c, &scope, &filter, after, limit + 1)?;
            let (keys, next_cursor) = finish_page(keys, limit, |k| k.0);
            let (page, missing) = rendered::look_up(&cache.customer_rows, keys);
            let rows = if missing.is_empty() {
                Vec::new()
            } else {
                customers::in_scope(c, &scope, &missing)?
            };
            Ok((page, next_cursor, rows))
        })
        .await?;
    let body = rendered::fill(
        &state.customer_rows,
        page,
        rows,
        |row: &Customer| (row.id, row.seq),
        |row| serde_json::to_vec(&CustomerResponse::masked(row)),
        next_cursor.as_deref(),
    )?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Creates a customer; the responsible and originating manager is the caller (or `manager_id`).
/// Idempotent with `Idempotency-Key` or `client_id`.
#[utoipa::path(
    tag = "customers",
    request_body = CreateCustomerRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a retried create")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CustomerResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/customers")]
async fn create_customer(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CreateCustomerRequest>,
) -> AppResult<HttpResponse> {
    let now = state.now();
    let mut new = new_customer(&body.body, local_date(now.and_utc()))?;
    let (req, key, digest) = (body.body, body.key, body.digest);
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                check_codes(c, new.category.as_deref(), new.tier.as_deref())?;
                let (manager, _, _) = responsible_manager(c, &caller, req.manager_id)?;
                (new.manager_id, new.originator_id) = (manager, manager);
                (new.seq, new.created_at, new.updated_at) = (changes::bump(c)?, now, now);
                let id = customers::insert(c, &new)?;
                customers::record_origin(c, id, manager, now)?;
                let row = visible(c, &caller, id)?;
                record_write(
                    c,
                    &caller,
                    &row,
                    ("customer.create", "customer", id),
                    "客户建档",
                    now,
                )?;
                Answer::new(StatusCode::CREATED, &CustomerResponse::full(row))
            })
        })
        .await?;
    Ok(answer.respond())
}

enum Detail {
    NotModified(String),
    Full(Box<Customer>, Option<String>),
}

/// One customer in full, with a weak `ETag`; `If-None-Match` with that tag answers 304 without a body.
/// A view by anyone but the responsible manager is written to the audit log (`customer.read`).
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CustomerResponse,
            headers(("ETag" = String, description = "Weak tag of this version, e.g. `W/\"c12-345\"`"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}")]
async fn get_customer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let now = state.now();
    let if_none_match = etag::if_none_match(&req);
    let a = auth.clone();
    let detail = state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            let row = visible(c, &caller, id.0)?;
            let tag = customer_tag(&row);
            if if_none_match.is_some_and(|h| etag::none_match(&h, &tag)) {
                return Ok(Detail::NotModified(tag));
            }
            let path = read_audit_path(c, &caller, &row)?;
            Ok(Detail::Full(Box::new(row), path))
        })
        .await?;
    match detail {
        Detail::NotModified(tag) => Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish()),
        Detail::Full(row, path) => {
            if let Some(path) = path {
                audit_read(&state, auth, row.id, path, None).await?;
            }
            Ok(with_etag(*row))
        }
    }
}

/// The weak `ETag` of a customer's detail view: it changes with every write (`seq`).
fn customer_tag(row: &Customer) -> String {
    etag::tag('c', row.id, row.seq)
}

fn with_etag(row: Customer) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, customer_tag(&row)))
        .json(CustomerResponse::full(row))
}

/// The validated parts of a PATCH that need no database; the ID number waits for the customer's kind.
fn customer_changes(req: &UpdateCustomerRequest, today: NaiveDate) -> AppResult<CustomerChanges> {
    let mut errs = FieldErrors::default();
    let opt = |errs: &mut FieldErrors, f: &str, v: &Option<Option<String>>, max| {
        v.as_ref()
            .map(|v| validate::opt_text(errs, f, v.as_deref(), max))
    };
    let birthday = req.birthday;
    if let Some(Some(b)) = birthday {
        rules::check_birthday(&mut errs, "birthday", b, today);
    }
    let lunar = req.lunar_birthday;
    if let Some(Some(l)) = &lunar {
        rules::check_lunar(&mut errs, "lunar_birthday", l);
    }
    let location = patch_location(&mut errs, req.latitude, req.longitude, req.location_datum);
    check_status(&mut errs, req.status);
    let changes = CustomerChanges {
        name: req
            .name
            .as_deref()
            .map(|n| validate::text(&mut errs, "name", n, NAME_MAX)),
        category: opt(&mut errs, "category", &req.category, 32),
        tier: opt(&mut errs, "tier", &req.tier, 32),
        industry: opt(&mut errs, "industry", &req.industry, 50),
        phone: req
            .phone
            .as_ref()
            .map(|p| p.as_deref().map(|v| check_phone(&mut errs, "phone", v))),
        id_number: None,
        birthday,
        birthday_md: birthday.map(|b| b.map(month_day)),
        lunar_month: lunar.map(|l| l.map(|l| l.month)),
        lunar_day: lunar.map(|l| l.map(|l| l.day)),
        lunar_leap: lunar.map(|l| l.is_some_and(|l| l.leap)),
        gender: req.gender.map(|g| g.map(|g| g.as_str().to_owned())),
        address: opt(&mut errs, "address", &req.address, 200),
        latitude: location.map(|l| l.map(|l| l.lat)),
        longitude: location.map(|l| l.map(|l| l.lon)),
        location_datum: location.map(|l| l.map(|l| l.datum.as_str().to_owned())),
        traits: req
            .traits
            .as_ref()
            .map(|v| validate::opt_prose(&mut errs, "traits", v.as_deref(), 500)),
        tags: req
            .tags
            .as_deref()
            .map(|t| rules::check_tags(&mut errs, "tags", t)),
        status: req.status.map(|s| s.as_str().to_owned()),
        seq: None,
        updated_at: None,
    };
    errs.finish()?;
    Ok(changes)
}

/// The location part of a PATCH: `None` leaves it, `Some(None)` clears it (both coordinates `null`),
/// `Some(Some(_))` sets it. A coordinate without its partner is 422 `required` on the missing one; a datum
/// without coordinates is 422 `requires_coordinates`.
fn patch_location(
    errs: &mut FieldErrors,
    lat: Option<Option<f64>>,
    lon: Option<Option<f64>>,
    datum: Option<Datum>,
) -> Option<Option<rules::Location>> {
    let pair_msg = "give both coordinates, or both null to clear";
    match (lat, lon) {
        (Some(Some(a)), Some(Some(b))) => {
            Some(rules::check_location(errs, Some(a), Some(b), datum))
        }
        (None, None) | (Some(None), Some(None)) => {
            if datum.is_some() {
                errs.add(
                    "location_datum",
                    "requires_coordinates",
                    "give latitude and longitude with a datum",
                );
            }
            // Both absent leaves the location; both `null` clears it.
            lat.map(|_| None)
        }
        (Some(_), None | Some(None)) => {
            errs.add("longitude", "required", pair_msg);
            None
        }
        (_, Some(_)) => {
            errs.add("latitude", "required", pair_msg);
            None
        }
    }
}

/// The names of the fields a PATCH touched (for the archive line and audit; never values).
fn changed_fields(ch: &CustomerChanges) -> Vec<&'static str> {
    [
        ("name", ch.name.is_some()),
        ("category", ch.category.is_some()),
        ("tier", ch.tier.is_some()),
        ("industry", ch.industry.is_some()),
        ("phone", ch.phone.is_some()),
        ("id_number", ch.id_number.is_some()),
        ("birthday", ch.birthday.is_some()),
        ("lunar_birthday", ch.lunar_month.is_some()),
        ("gender", ch.gender.is_some()),
        ("address", ch.address.is_some()),
        ("location", ch.latitude.is_some()),
        ("traits", ch.traits.is_some()),
        ("tags", ch.tags.is_some()),
        ("status", ch.status.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect()
}

fn apply_update(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    id_number: Option<Option<String>>,
    mut ch: CustomerChanges,
    now: chrono::NaiveDateTime,
) -> AppResult<Customer> {
    let cur = visible(c, caller, id)?;
    if let Some(n) = id_number {
        let kind = CustomerKind::parse(&cur.kind).unwrap_or(CustomerKind::Individual);
        let mut errs = FieldErrors::default();
        let n = n.filter(|v| !v.trim().is_empty());
        ch.id_number = Some(n.map(|v| rules::check_id_number(&mut errs, "id_number", &v, kind)));
        errs.finish()?;
    }
    check_codes(
        c,
        ch.category.clone().flatten().as_deref(),
        ch.tier.clone().flatten().as_deref(),
    )?;
    (ch.seq, ch.updated_at) = (Some(changes::bump(c)?), Some(now));
    customers::update(c, id, &ch)?;
    if ch.birthday.is_some() || ch.lunar_month.is_some() {
        // The birthday changed: the next scheduler pass makes the right reminders.
        reminders::forget_subject(c, "customer", id)?;
    }
    let fields = changed_fields(&ch);
    let summary = format!("客户资料更新：{}", fields.join(", "));
    record_write(
        c,
        caller,
        &cur,
        ("customer.update", "customer", id),
        &summary,
        now,
    )?;
    visible(c, caller, id)
}

/// Changes a customer in the caller's scope; answers the new detail view and `ETag`.
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id")),
    request_body = UpdateCustomerRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CustomerResponse,
            headers(("ETag" = String, description = "Weak tag of the new version"))),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/customers/{id}")]
async fn update_customer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateCustomerRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let now = state.now();
    let changes = customer_changes(&req, local_date(now.and_utc()))?;
    let id_number = req.id_number;
    let row = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            apply_update(c, &caller, id.0, id_number, changes, now)
        })
        .await?;
    Ok(with_etag(row))
}

/// Archives a customer (soft delete): kept with status `archived`, gone from every view and list.
/// The responsible manager, or a leader or admin of the subtree, may archive; a team member may not (403).
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Archived"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}")]
async fn archive_customer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<HttpResponse> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let cur = visible(c, &caller, id.0)?;
            if caller.role == Role::Manager && cur.manager_id != caller.user_id {
                return Err(AppError::Forbidden);
            }
            let seq = changes::bump(c)?;
            customers::archive(c, cur.id, seq, now)?;
            let who = audience(c, &cur)?;
            changes::tombstone(c, seq, "customer", cur.id, who, now)?;
            record_write(
                c,
                &caller,
                &cur,
                ("customer.archive", "customer", cur.id),
                "客户归档",
                now,
            )
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
