//! `/api/v1/customers/{id}/holdings`: products a customer holds (持有产品) — deposits, CDs, wealth products,
//! funds, insurance, loans, acceptance bills (the `product_type` dictionary, admin-extensible). Amounts are
//! decimal strings (CNY, at most 2 places) stored as whole fen. Whoever sees the customer sees and edits its
//! holdings (else 404 `customer_not_found`); every create and change adds a line to the customer's archive.
//! Loans (`product_type` `loan`) carry a next repayment date and an overdue flag; other products may not.
//! The list belongs to the customer's detail view and is read-audited like it (detail `{"view":"holdings"}`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::contacts::{ChildPath, PageQuery};
use super::customers::{
    audience, audit_read, check_client_id, non_null, read_audit_path, record_write, visible,
};
use super::extract::{ApiJson, ApiQuery, PathId, double_option, page_params};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::Auth;
use crate::db::DbConn;
use crate::db::repo::holdings::{self, Holding, HoldingChanges, NewHolding};
use crate::db::repo::{changes, dictionaries, reminders};
use crate::domain::customer::HoldingStatus;
use crate::domain::money::{format_fen, parse_fen, parse_rate};
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_holdings)
        .service(create_holding)
        .service(update_holding)
        .service(archive_holding);
}

/// The product type whose holdings have repayments and may be overdue.
pub const LOAN: &str = "loan";

/// A holding.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingResponse {
    /// Holding id.
    pub id: i64,
    /// The customer.
    pub customer_id: i64,
    /// Product type code (dictionary `product_type`).
    pub product_type: String,
    /// Product name.
    pub product_name: String,
    /// Amount in CNY, a decimal string with two places.
    #[schema(value_type = String, example = "12345.67")]
    pub amount: String,
    /// Open date.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub open_date: Option<NaiveDate>,
    /// Maturity date (到期日).
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub maturity_date: Option<NaiveDate>,
    /// Rate, percent per year, as a decimal string.
    #[schema(value_type = Option<String>, example = "2.15")]
    pub rate: Option<String>,
    /// Status.
    pub status: HoldingStatus,
    /// Loans: the next repayment date.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub next_repayment_date: Option<NaiveDate>,
    /// Loans: overdue (逾期).
    pub overdue: bool,
    /// Change sequence of the last write.
    pub seq: i64,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl From<Holding> for HoldingResponse {
    fn from(h: Holding) -> Self {
        Self {
            id: h.id,
            customer_id: h.customer_id,
            product_type: h.product_type,
            product_name: h.product_name,
            amount: format_fen(h.amount_fen),
            open_date: h.open_date,
            maturity_date: h.maturity_date,
            rate: h.rate,
            status: HoldingStatus::parse(&h.status).unwrap_or(HoldingStatus::Active),
            next_repayment_date: h.next_repayment_date,
            overdue: h.overdue,
            seq: h.seq,
            created_at: utc(h.created_at),
            updated_at: utc(h.updated_at),
        }
    }
}

/// A page of holdings.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingList {
    /// The holdings, by id.
    pub items: Vec<HoldingResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /customers/{id}/holdings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHoldingRequest {
    /// Client-generated id: an idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// An active `product_type` code, e.g. `time_deposit`, `loan`.
    pub product_type: String,
    /// Product name, 1–100 characters.
    pub product_name: String,
    /// Amount in CNY: a decimal string, at most 2 places, not negative.
    #[schema(value_type = String, example = "500000.00")]
    pub amount: String,
    /// Open date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub open_date: Option<NaiveDate>,
    /// Maturity date, not before `open_date`.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub maturity_date: Option<NaiveDate>,
    /// Rate, percent per year (0–100, up to 4 places), e.g. `"2.15"`.
    #[schema(value_type = Option<String>, example = "2.15")]
    pub rate: Option<String>,
    /// Status (default `active`).
    pub status: Option<HoldingStatus>,
    /// Loans only: the next repayment date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub next_repayment_date: Option<NaiveDate>,
    /// Loans only: overdue (default false).
    pub overdue: Option<bool>,
}

/// Body of `PATCH /customers/{id}/holdings/{holding_id}`: every field optional; `null` clears a nullable one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHoldingRequest {
    /// Product type code.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub product_type: Option<String>,
    /// Product name.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub product_name: Option<String>,
    /// Amount (decimal string).
    #[schema(value_type = Option<String>, example = "500000.00")]
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub amount: Option<String>,
    /// Open date; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub open_date: Option<Option<NaiveDate>>,
    /// Maturity date; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub maturity_date: Option<Option<NaiveDate>>,
    /// Rate; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub rate: Option<Option<String>>,
    /// Status.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub status: Option<HoldingStatus>,
    /// Loans: next repayment date; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub next_repayment_date: Option<Option<NaiveDate>>,
    /// Loans: overdue.
    #[serde(default, deserialize_with = "non_null")]
    #[schema(nullable = false)]
    pub overdue: Option<bool>,
}

fn holding_not_found() -> AppError {
    AppError::NotFound(ErrorCode::HoldingNotFound)
}

/// The rules across fields: maturity not before opening; repayment and overdue only for loans.
fn check_consistency(
    errs: &mut FieldErrors,
    product_type: &str,
    open: Option<NaiveDate>,
    maturity: Option<NaiveDate>,
    repayment: Option<NaiveDate>,
    overdue: bool,
) {
    if let (Some(o), Some(m)) = (open, maturity)
        && m < o
    {
        errs.add(
            "maturity_date",
            "before_open_date",
            "must not be before open_date",
        );
    }
    if product_type != LOAN {
        if repayment.is_some() {
            errs.add(
                "next_repayment_date",
                "only_for_loans",
                "only loans have repayments",
            );
        }
        if overdue {
            errs.add("overdue", "only_for_loans", "only loans can be overdue");
        }
    }
}

fn check_product_type(c: &mut DbConn, code: &str) -> AppResult<()> {
    if dictionaries::is_active(c, "product_type", code)? {
        Ok(())
    } else {
        Err(AppError::field(
            "product_type",
            "invalid_value",
            "not an active product_type code",
        ))
    }
}

/// Lists the holdings of a customer in scope.
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = HoldingList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/holdings")]
async fn list_holdings(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<HoldingList>> {
    let (limit, after) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let a = auth.clone();
    let (rows, audit_path) = state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            let customer = visible(c, &caller, id.0)?;
            let rows = holdings::list(c, customer.id, after, limit + 1)?;
            Ok((rows, read_audit_path(c, &caller, &customer)?))
        })
        .await?;
    if let Some(path) = audit_path {
        audit_read(&state, auth, id.0, path, Some("holdings")).await?;
    }
    let (rows, next_cursor) = finish_page(rows, limit, |h| h.id);
    let items = rows.into_iter().map(HoldingResponse::from).collect();
    Ok(web::Json(HoldingList { items, next_cursor }))
}

fn new_holding(req: &CreateHoldingRequest) -> AppResult<NewHolding> {
    let mut errs = FieldErrors::default();
    check_client_id(&mut errs, req.client_id.as_deref());
    let product_type = validate::text(&mut errs, "product_type", &req.product_type, 32);
    let product_name = validate::text(&mut errs, "product_name", &req.product_name, 100);
    let amount_fen = parse_fen(&mut errs, "amount", &req.amount);
    let rate = req
        .rate
        .as_deref()
        .map(|r| parse_rate(&mut errs, "rate", r));
    let overdue = req.overdue.unwrap_or(false);
    let (open, maturity, repayment) = (req.open_date, req.maturity_date, req.next_repayment_date);
    check_consistency(&mut errs, &product_type, open, maturity, repayment, overdue);
    errs.finish()?;
    Ok(NewHolding {
        customer_id: 0,
        product_type,
        product_name,
        amount_fen,
        open_date: open,
        maturity_date: maturity,
        rate,
        status: req.status.unwrap_or(HoldingStatus::Active).as_str().into(),
        next_repayment_date: repayment,
        overdue,
        seq: 0,
        created_at: chrono::NaiveDateTime::default(),
        updated_at: chrono::NaiveDateTime::default(),
    })
}

/// Adds a holding to a customer in scope. Idempotent with `Idempotency-Key` or `client_id`.
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a retried create")
    ),
    request_body = CreateHoldingRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = HoldingResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/customers/{id}/holdings")]
async fn create_holding(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<CreateHoldingRequest>,
) -> AppResult<HttpResponse> {
    let mut new = new_holding(&body.body)?;
    let (key, digest) = (body.key, body.digest);
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                let customer = visible(c, &caller, id.0)?;
                check_product_type(c, &new.product_type)?;
                new.customer_id = customer.id;
                (new.seq, new.created_at, new.updated_at) = (changes::bump(c)?, now, now);
                let hid = holdings::insert(c, &new)?;
                let amount = format_fen(new.amount_fen);
                let summary = format!("新增持有产品：{}，金额 {amount} 元", new.product_name);
                record_write(
                    c,
                    &caller,
                    &customer,
                    ("holding.create", "holding", hid),
                    &summary,
                    now,
                )?;
                let row = holdings::find(c, customer.id, hid)?.ok_or_else(holding_not_found)?;
                Answer::new(StatusCode::CREATED, &HoldingResponse::from(row))
            })
        })
        .await?;
    Ok(answer.respond())
}

fn holding_changes(req: &UpdateHoldingRequest) -> AppResult<HoldingChanges> {
    let mut errs = FieldErrors::default();
    let changes = HoldingChanges {
        product_type: req
            .product_type
            .as_deref()
            .map(|t| validate::text(&mut errs, "product_type", t, 32)),
        product_name: req
            .product_name
            .as_deref()
            .map(|n| validate::text(&mut errs, "product_name", n, 100)),
        amount_fen: req
            .amount
            .as_deref()
            .map(|a| parse_fen(&mut errs, "amount", a)),
        open_date: req.open_date,
        maturity_date: req.maturity_date,
        rate: req
            .rate
            .as_ref()
            .map(|r| r.as_deref().map(|v| parse_rate(&mut errs, "rate", v))),
        status: req.status.map(|s| s.as_str().to_owned()),
        next_repayment_date: req.next_repayment_date,
        overdue: req.overdue,
        seq: None,
        updated_at: None,
    };
    errs.finish()?;
    Ok(changes)
}

/// Checks the changed holding as a whole (dates, loan-only fields, an active product type if it changes).
fn check_merged(c: &mut DbConn, cur: &Holding, ch: &HoldingChanges) -> AppResult<()> {
    if let Some(t) = &ch.product_type {
        check_product_type(c, t)?;
    }
    let mut errs = FieldErrors::default();
    check_consistency(
        &mut errs,
        ch.product_type.as_deref().unwrap_or(&cur.product_type),
        ch.open_date.unwrap_or(cur.open_date),
        ch.maturity_date.unwrap_or(cur.maturity_date),
        ch.next_repayment_date.unwrap_or(cur.next_repayment_date),
        ch.overdue.unwrap_or(cur.overdue),
    );
    errs.finish()
}

/// Changes a holding of a customer in scope.
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("holding_id" = i64, Path, description = "Holding id")
    ),
    request_body = UpdateHoldingRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = HoldingResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/customers/{id}/holdings/{holding_id}")]
async fn update_holding(
    state: web::Data<AppState>,
    auth: Auth,
    path: ChildPath,
    body: ApiJson<UpdateHoldingRequest>,
) -> AppResult<web::Json<HoldingResponse>> {
    let mut ch = holding_changes(&body.0)?;
    let now = state.now();
    let row = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let customer = visible(c, &caller, path.customer_id)?;
            let cur = holdings::find(c, customer.id, path.id)?.ok_or_else(holding_not_found)?;
            check_merged(c, &cur, &ch)?;
            (ch.seq, ch.updated_at) = (Some(changes::bump(c)?), Some(now));
            holdings::update(c, cur.id, &ch)?;
            // Dates, status or product may have changed: the next scheduler pass makes the right
            // reminders (those already sent stay sent).
            reminders::forget_subject(c, "holding", cur.id)?;
            let row = holdings::find(c, customer.id, cur.id)?.ok_or_else(holding_not_found)?;
            let summary = format!(
                "持有产品变更：{}，金额 {} 元，状态 {}",
                row.product_name,
                format_fen(row.amount_fen),
                row.status
            );
            record_write(
                c,
                &caller,
                &customer,
                ("holding.update", "holding", row.id),
                &summary,
                now,
            )?;
            Ok(row)
        })
        .await?;
    Ok(web::Json(HoldingResponse::from(row)))
}

/// Archives a holding (kept; gone from the list and from maturity filters).
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("holding_id" = i64, Path, description = "Holding id")
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Archived"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[delete("/customers/{id}/holdings/{holding_id}")]
async fn archive_holding(
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
            let cur = holdings::find(c, customer.id, path.id)?.ok_or_else(holding_not_found)?;
            let seq = changes::bump(c)?;
            holdings::archive(c, cur.id, seq, now)?;
            reminders::forget_subject(c, "holding", cur.id)?;
            let who = audience(c, &customer)?;
            changes::tombstone(c, seq, "holding", cur.id, who, now)?;
            let summary = format!("持有产品归档：{}", cur.product_name);
            record_write(
                c,
                &caller,
                &customer,
                ("holding.archive", "holding", cur.id),
                &summary,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
