//! `/api/v1/customers/{id}/contacts`: key contacts (关键联系人) of corporate customers — legal
//! representative, finance head, … — with their own phone and birthdays. Whoever sees the customer sees and
//! edits its contacts (else 404 `customer_not_found`); creating one for an individual customer is 422 on
//! `kind`. The list belongs to the customer's detail view: phones are in full, and a view by anyone but the
//! responsible manager is audited like the detail (`customer.read`, detail `{"view":"contacts"}`).
//! `DELETE` archives (kept, gone from the list, a tombstone for sync).

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::customers::{
    audience, audit_read, check_client_id, non_null, read_audit_path, record_write, visible,
};
use super::extract::{ApiJson, ApiQuery, PathId, double_option, page_params};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::Auth;
use crate::db::repo::contacts::{self, Contact, ContactChanges, NewContact};
use crate::db::repo::{changes, reminders};
use crate::domain::calendar::{local_date, month_day};
use crate::domain::customer::{self as rules, CustomerKind, LunarBirthday};
use crate::domain::paging::finish_page;
use crate::domain::user::check_phone;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldError, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_contacts)
        .service(create_contact)
        .service(update_contact)
        .service(archive_contact);
}

/// The `{id}` of a customer and the id of one of its records (`{contact_id}`, `{holding_id}`): positive
/// integers, else 400 `invalid_path_parameter` naming the parameter.
#[derive(Debug, Clone, Copy)]
pub struct ChildPath {
    /// The customer.
    pub customer_id: i64,
    /// The record.
    pub id: i64,
}

fn path_number(req: &HttpRequest, name: &str) -> Result<i64, AppError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AppError::BadRequest {
            code: ErrorCode::InvalidPathParameter,
            detail: format!("path parameter `{name}` must be a positive integer"),
            errors: vec![FieldError::new(
                name,
                "invalid_format",
                "a positive integer",
            )],
        })
}

impl FromRequest for ChildPath {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let child = req
            .match_info()
            .iter()
            .map(|(k, _)| k)
            .find(|k| *k != "id")
            .unwrap_or("child_id")
            .to_owned();
        let res = path_number(req, "id").and_then(|customer_id| {
            Ok(Self {
                customer_id,
                id: path_number(req, &child)?,
            })
        });
        std::future::ready(res)
    }
}

/// Paging of a customer's sub-list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// A key contact (phone in full: this is part of the customer's detail view; masked in sync).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactResponse {
    /// Contact id.
    pub id: i64,
    /// The corporate customer.
    pub customer_id: i64,
    /// Name.
    pub name: String,
    /// Title, e.g. 法定代表人, 财务负责人.
    pub title: Option<String>,
    /// Mobile phone.
    pub phone: Option<String>,
    /// Solar birthday.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub birthday: Option<NaiveDate>,
    /// Lunar birthday.
    pub lunar_birthday: Option<LunarBirthday>,
    /// Change sequence of the last write.
    pub seq: i64,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl From<Contact> for ContactResponse {
    fn from(c: Contact) -> Self {
        Self {
            id: c.id,
            customer_id: c.customer_id,
            name: c.name,
            title: c.title,
            phone: c.phone,
            birthday: c.birthday,
            lunar_birthday: LunarBirthday::from_columns(c.lunar_month, c.lunar_day, c.lunar_leap),
            seq: c.seq,
            created_at: utc(c.created_at),
            updated_at: utc(c.updated_at),
        }
    }
}

impl ContactResponse {
    /// The contact with its phone masked (`139****5678`), as sync delivers it: a lost phone should not carry
    /// the numbers (the contacts list has them in full, and is audited).
    pub fn masked(c: Contact) -> Self {
        let mut r = Self::from(c);
        r.phone = r.phone.as_deref().map(rules::mask_phone);
        r
    }
}

/// A page of contacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    /// The contacts, by id.
    pub items: Vec<ContactResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /customers/{id}/contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContactRequest {
    /// Client-generated id: an idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// Name, 1–50 characters.
    pub name: String,
    /// Title, up to 50 characters.
    pub title: Option<String>,
    /// 11-digit mainland mobile number.
    pub phone: Option<String>,
    /// Solar birthday, not in the future.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub birthday: Option<NaiveDate>,
    /// Lunar birthday.
    pub lunar_birthday: Option<LunarBirthday>,
}

/// Body of `PATCH /customers/{id}/contacts/{contact_id}`: every field optional; `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContactRequest {
    /// Name (not `null`).
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Title; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    /// Phone; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Solar birthday; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birthday: Option<Option<NaiveDate>>,
    /// Lunar birthday; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<LunarBirthday>)]
    pub lunar_birthday: Option<Option<LunarBirthday>>,
}

const NAME_MAX: usize = 50;

fn contact_not_found() -> AppError {
    AppError::NotFound(ErrorCode::ContactNotFound)
}

/// Lists the key contacts of a customer in scope.
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ContactList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/contacts")]
async fn list_contacts(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<ContactList>> {
    let (limit, after) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let a = auth.clone();
    let (rows, audit_path) = state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            let customer = visible(c, &caller, id.0)?;
            let rows = contacts::list(c, customer.id, after, limit + 1)?;
            Ok((rows, read_audit_path(c, &caller, &customer)?))
        })
        .await?;
    if let Some(path) = audit_path {
        audit_read(&state, auth, id.0, path, Some("contacts")).await?;
    }
    let (rows, next_cursor) = finish_page(rows, limit, |c| c.id);
    let items = rows.into_iter().map(ContactResponse::from).collect();
    Ok(web::Json(ContactList { items, next_cursor }))
}

fn new_contact(req: &CreateContactRequest, today: NaiveDate) -> AppResult<NewContact> {
    let mut errs = FieldErrors::default();
    check_client_id(&mut errs, req.client_id.as_deref());
    let name = validate::text(&mut errs, "name", &req.name, NAME_MAX);
    let title = validate::opt_text(&mut errs, "title", req.title.as_deref(), 50);
    let phone = req
        .phone
        .as_deref()
        .map(|p| check_phone(&mut errs, "phone", p));
    if let Some(b) = req.birthday {
        rules::check_birthday(&mut errs, "birthday", b, today);
    }
    if let Some(l) = &req.lunar_birthday {
        rules::check_lunar(&mut errs, "lunar_birthday", l);
    }
    errs.finish()?;
    let lunar = req.lunar_birthday;
    Ok(NewContact {
        customer_id: 0,
        name,
        title,
        phone,
        birthday: req.birthday,
        birthday_md: req.birthday.map(month_day),
        lunar_month: lunar.map(|l| l.month),
        lunar_day: lunar.map(|l| l.day),
        lunar_leap: lunar.is_some_and(|l| l.leap),
        seq: 0,
        created_at: chrono::NaiveDateTime::default(),
        updated_at: chrono::NaiveDateTime::default(),
    })
}

/// Adds a key contact to a corporate customer in scope. Idempotent with `Idempotency-Key` or `client_id`.
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a retried create")
    ),
    request_body = CreateContactRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ContactResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/customers/{id}/contacts")]
async fn create_contact(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<CreateContactRequest>,
) -> AppResult<HttpResponse> {
    let now = state.now();
    let mut new = new_contact(&body.body, local_date(now.and_utc()))?;
    let (key, digest) = (body.key, body.digest);
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                let customer = visible(c, &caller, id.0)?;
                if CustomerKind::parse(&customer.kind) != Some(CustomerKind::Corporate) {
                    let msg = "key contacts are kept for corporate customers only";
                    return Err(AppError::field("kind", "not_corporate", msg));
                }
                new.customer_id = customer.id;
                (new.seq, new.created_at, new.updated_at) = (changes::bump(c)?, now, now);
                let cid = contacts::insert(c, &new)?;
                let summary = format!("新增关键联系人：{}", new.name);
                record_write(
                    c,
                    &caller,
                    &customer,
                    ("contact.create", "contact", cid),
                    &summary,
                    now,
                )?;
                let row = contacts::find(c, customer.id, cid)?.ok_or_else(contact_not_found)?;
                Answer::new(StatusCode::CREATED, &ContactResponse::from(row))
            })
        })
        .await?;
    Ok(answer.respond())
}

fn contact_changes(req: &UpdateContactRequest, today: NaiveDate) -> AppResult<ContactChanges> {
    let mut errs = FieldErrors::default();
    if let Some(Some(b)) = req.birthday {
        rules::check_birthday(&mut errs, "birthday", b, today);
    }
    if let Some(Some(l)) = &req.lunar_birthday {
        rules::check_lunar(&mut errs, "lunar_birthday", l);
    }
    let lunar = req.lunar_birthday;
    let changes = ContactChanges {
        name: req
            .name
            .as_deref()
            .map(|n| validate::text(&mut errs, "name", n, NAME_MAX)),
        title: req
            .title
            .as_ref()
            .map(|t| validate::opt_text(&mut errs, "title", t.as_deref(), 50)),
        phone: req
            .phone
            .as_ref()
            .map(|p| p.as_deref().map(|v| check_phone(&mut errs, "phone", v))),
        birthday: req.birthday,
        birthday_md: req.birthday.map(|b| b.map(month_day)),
        lunar_month: lunar.map(|l| l.map(|l| l.month)),
        lunar_day: lunar.map(|l| l.map(|l| l.day)),
        lunar_leap: lunar.map(|l| l.is_some_and(|l| l.leap)),
        seq: None,
        updated_at: None,
    };
    errs.finish()?;
    Ok(changes)
}

/// Changes a key contact of a customer in scope.
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("contact_id" = i64, Path, description = "Contact id")
    ),
    request_body = UpdateContactRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ContactResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/customers/{id}/contacts/{contact_id}")]
async fn update_contact(
    state: web::Data<AppState>,
    auth: Auth,
    path: ChildPath,
    body: ApiJson<UpdateContactRequest>,
) -> AppResult<web::Json<ContactResponse>> {
    let now = state.now();
    let mut ch = contact_changes(&body.0, local_date(now.and_utc()))?;
    let row = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let customer = visible(c, &caller, path.customer_id)?;
            let cur = contacts::find(c, customer.id, path.id)?.ok_or_else(contact_not_found)?;
            (ch.seq, ch.updated_at) = (Some(changes::bump(c)?), Some(now));
            contacts::update(c, cur.id, &ch)?;
            if ch.birthday.is_some() || ch.lunar_month.is_some() {
                reminders::forget_subject(c, "contact", cur.id)?;
            }
            let name = ch.name.as_deref().unwrap_or(&cur.name);
            let summary = format!("关键联系人更新：{name}");
            record_write(
                c,
                &caller,
                &customer,
                ("contact.update", "contact", cur.id),
                &summary,
                now,
            )?;
            contacts::find(c, customer.id, cur.id)?.ok_or_else(contact_not_found)
        })
        .await?;
    Ok(web::Json(ContactResponse::from(row)))
}

/// Archives a key contact (kept; gone from the list).
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("contact_id" = i64, Path, description = "Contact id")
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Archived"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}/contacts/{contact_id}")]
async fn archive_contact(
    state: web::Data<AppState>,
    auth: Auth,
    path: ChildPath,
) -> AppResult<HttpResponse> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let customer = visible(c, &caller, path.customer_id)?;
            let cur = contacts::find(c, customer.id, path.id)?.ok_or_else(contact_not_found)?;
            let seq = changes::bump(c)?;
            contacts::archive(c, cur.id, seq, now)?;
            reminders::forget_subject(c, "contact", cur.id)?;
            let who = audience(c, &customer)?;
            changes::tombstone(c, seq, "contact", cur.id, who, now)?;
            let summary = format!("关键联系人归档：{}", cur.name);
            record_write(
                c,
                &caller,
                &customer,
                ("contact.archive", "contact", cur.id),
                &summary,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
