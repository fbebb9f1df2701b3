//! `/api/v1/plans`: weekly and monthly work plans (工作计划) with items and their status. The author writes
//! them; leaders and admins read those of their subtree. A week starts on a Monday, a month on day 1. Plans
//! are not synced; the create is offline-safe (`client_id` or `Idempotency-Key`). The detail's `ETag` follows
//! `updated_at` (plans have no change sequence).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::etag;
use super::extract::{ApiJson, ApiQuery, PathId, page_params, query_error};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::repo::audit::Entry;
use crate::db::repo::plans::{NewPlan, Plan, PlanChanges, PlanFilter};
use crate::db::repo::{audit, plans, worklogs};
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Most items in one plan.
pub const MAX_ITEMS: usize = 50;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_plans)
        .service(create_plan)
        .service(get_plan)
        .service(update_plan);
}

/// How long a plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// Whether `d` starts such a period (a Monday; the 1st).
    pub fn is_start(self, d: NaiveDate) -> bool {
        match self {
            Self::Week => d.weekday() == Weekday::Mon,
            Self::Month => d.day() == 1,
        }
    }

    /// The last day of the period starting on `start`.
    pub fn end(self, start: NaiveDate) -> NaiveDate {
        match self {
            Self::Week => start + chrono::Duration::days(6),
            Self::Month => (start + Months::new(1)).pred_opt().unwrap_or(start),
        }
    }
}

/// Where a plan item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Not started.
    Todo,
    /// Under way.
    Doing,
    /// Done.
    Done,
    /// Given up.
    Dropped,
}

/// One item of a plan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanItem {
    /// What to do, 1–500 characters.
    pub text: String,
    /// Where it stands (default `todo`).
    #[serde(default = "default_status")]
    pub status: ItemStatus,
}

fn default_status() -> ItemStatus {
    ItemStatus::Todo
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    /// Plan id.
    pub id: i64,
    /// The author.
    pub manager_id: i64,
    /// Week or month.
    pub period: Period,
    /// First day (a Monday, or the 1st).
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub period_start: NaiveDate,
    /// Last day of the period.
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub period_end: NaiveDate,
    /// Title.
    pub title: String,
    /// The items, in order.
    pub items: Vec<PlanItem>,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl PlanResponse {
    /// From a row (stored items that do not parse would be a bug: they fail the request).
    pub fn from_row(p: Plan) -> AppResult<Self> {
        let period = if p.period == "month" {
            Period::Month
        } else {
            Period::Week
        };
        let items = serde_json::from_str(&p.items).map_err(anyhow::Error::new)?;
        Ok(Self {
            id: p.id,
            manager_id: p.manager_id,
            period,
            period_start: p.period_start,
            period_end: period.end(p.period_start),
            title: p.title,
            items,
            created_at: utc(p.created_at),
            updated_at: utc(p.updated_at),
        })
    }
}

/// A page of plans.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    /// The plans, newest first.
    pub items: Vec<PlanResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /plans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListPlansQuery {
    /// Only this author's plans (leaders and admins: anyone in the subtree).
    pub manager_id: Option<i64>,
    /// Only weekly or monthly plans.
    pub period: Option<Period>,
    /// `period_start` on or after this date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub from: Option<NaiveDate>,
    /// `period_start` on or before this date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub to: Option<NaiveDate>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /plans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanRequest {
    /// Client-generated id (1–128 characters): the idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// Week or month.
    pub period: Period,
    /// First day: a Monday for a week, the 1st for a month.
    #[serde(deserialize_with = "crate::api::wire_time::date_in")]
    pub period_start: NaiveDate,
    /// Title, 1–200 characters.
    pub title: String,
    /// Up to 50 items.
    #[serde(default)]
    pub items: Vec<PlanItem>,
}

/// Body of `PATCH /plans/{id}`: `items` replaces the whole list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlanRequest {
    /// Title, 1–200 characters.
    pub title: Option<String>,
    /// The new list of items (up to 50), replacing the old one.
    pub items: Option<Vec<PlanItem>>,
}

/// Checks the items; returns them trimmed.
fn check_items(errs: &mut FieldErrors, items: Vec<PlanItem>) -> Vec<PlanItem> {
    if items.len() > MAX_ITEMS {
        errs.add("items", "too_many", format!("at most {MAX_ITEMS} items"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, it)| PlanItem {
            // The same path notation as the JSON shape errors (`items[0].status`).
            text: validate::text(errs, &format!("items[{i}].text"), &it.text, 500),
            status: it.status,
        })
        .collect()
}

fn items_json(items: &[PlanItem]) -> AppResult<String> {
    Ok(serde_json::to_string(items).map_err(anyhow::Error::new)?)
}

/// Lists the caller's plans (leaders and admins: their subtree's), newest first.
#[utoipa::path(
    tag = "worklogs",
    params(ListPlansQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = PlanList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/plans")]
async fn list_plans(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListPlansQuery>,
) -> AppResult<web::Json<PlanList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f > t
    {
        return Err(query_error("to", "out_of_range", "not before `from`"));
    }
    let filter = PlanFilter {
        manager_id: q.manager_id,
        period: q.period.map(|p| p.as_str().to_owned()),
        from: q.from,
        to: q.to,
    };
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            Ok(plans::list(c, &scope, &filter, before, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |p| p.id);
    let items = rows
        .into_iter()
        .map(PlanResponse::from_row)
        .collect::<AppResult<_>>()?;
    Ok(web::Json(PlanList { items, next_cursor }))
}

fn create_tx(c: &mut DbConn, caller: &Caller, new: NewPlan) -> AppResult<Answer> {
    let id = plans::insert(c, &new)?;
    audit::record(
        c,
        caller,
        Entry::new("plan.create", "plan", id, &caller.org_path),
        new.created_at,
    )?;
    let plan =
        plans::find(c, &caller.scope(), id)?.ok_or(AppError::NotFound(ErrorCode::PlanNotFound))?;
    Answer::new(StatusCode::CREATED, &PlanResponse::from_row(plan)?)
}

/// Creates a plan of the caller's. Offline-safe: a replay with the same key answers the first result.
#[utoipa::path(
    tag = "worklogs",
    request_body = CreatePlanRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the create safe to retry (1–128 characters)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = PlanResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/plans")]
async fn create_plan(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CreatePlanRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: req,
        key,
        digest,
    } = body;
    let mut errs = FieldErrors::default();
    if let Some(id) = &req.client_id {
        // An empty client id is a mistake, not "no key".
        validate::text(&mut errs, "client_id", id, 128);
    }
    if !req.period.is_start(req.period_start) {
        let msg = match req.period {
            Period::Week => "a week starts on a Monday",
            Period::Month => "a month starts on day 1",
        };
        errs.add("period_start", "invalid_value", msg);
    }
    let title = validate::text(&mut errs, "title", &req.title, 200);
    let items = check_items(&mut errs, req.items);
    errs.finish()?;
    let items = items_json(&items)?;
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let new = NewPlan {
                manager_id: caller.user_id,
                period: req.period.as_str().into(),
                period_start: req.period_start,
                title,
                items,
                created_at: now,
                updated_at: now,
            };
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                create_tx(c, &caller, new)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// One plan in the caller's scope, with a weak `ETag` (plans have no change sequence: the tag follows the
/// last-change instant); `If-None-Match` with that tag answers 304 without a body.
#[utoipa::path(
    tag = "worklogs",
    params(
        ("id" = i64, Path, description = "Plan id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = PlanResponse,
            headers(("ETag" = String, description = "Weak tag of this version, e.g. `W/\"p12-1795400000000000\"`"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/plans/{id}")]
async fn get_plan(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let if_none_match = etag::if_none_match(&req);
    let now = state.now();
    let plan = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            plans::find(c, &scope, id.0)?.ok_or(AppError::NotFound(ErrorCode::PlanNotFound))
        })
        .await?;
    let tag = plan_tag(&plan);
    Ok(etag::reply(
        if_none_match.as_deref(),
        tag,
        &PlanResponse::from_row(plan)?,
    ))
}

/// The `ETag` of a plan: every write sets `updated_at` to the server's clock (microseconds on both
/// backends), and only the owner writes, one request at a time.
fn plan_tag(p: &Plan) -> String {
    etag::tag('p', p.id, p.updated_at.and_utc().timestamp_micros())
}

fn update_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    changes: PlanChanges,
    now: NaiveDateTime,
) -> AppResult<Plan> {
    let scope = caller.scope();
    let plan = plans::find(c, &scope, id)?.ok_or(AppError::NotFound(ErrorCode::PlanNotFound))?;
    if plan.manager_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    if changes.title.is_none() && changes.items.is_none() {
        // Nothing to change: no write, no new version.
        return Ok(plan);
    }
    plans::update(c, id, &changes)?;
    let path = worklogs::org_path_of(c, plan.manager_id)?;
    audit::record(c, caller, Entry::new("plan.update", "plan", id, &path), now)?;
    plans::find(c, &scope, id)?.ok_or(AppError::NotFound(ErrorCode::PlanNotFound))
}

/// Changes the title or replaces the items of one of the caller's own plans (someone else's: 403 if in
/// scope, else 404).
#[utoipa::path(
    tag = "worklogs",
    params(("id" = i64, Path, description = "Plan id")),
    request_body = UpdatePlanRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = PlanResponse,
            headers(("ETag" = String, description = "Weak tag of the new version"))),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/plans/{id}")]
async fn update_plan(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdatePlanRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let title = req
        .title
        .as_deref()
        .map(|t| validate::text(&mut errs, "title", t, 200));
    let items = req.items.map(|i| check_items(&mut errs, i));
    errs.finish()?;
    let changes = PlanChanges {
        title,
        items: items.as_deref().map(items_json).transpose()?,
        updated_at: Some(state.now()),
    };
    let now = state.now();
    let plan = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            update_tx(c, &caller, id.0, changes, now)
        })
        .await?;
    let tag = plan_tag(&plan);
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(PlanResponse::from_row(plan)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn periods_start_and_end() {
        assert!(Period::Week.is_start(d(2026, 11, 23)), "a Monday");
        assert!(!Period::Week.is_start(d(2026, 11, 24)));
        assert!(Period::Month.is_start(d(2026, 2, 1)));
        assert!(!Period::Month.is_start(d(2026, 2, 2)));
        assert_eq!(Period::Week.end(d(2026, 11, 23)), d(2026, 11, 29));
        assert_eq!(Period::Month.end(d(2028, 2, 1)), d(2028, 2, 29));
        assert_eq!(Period::Month.end(d(2026, 12, 1)), d(2026, 12, 31));
    }
}
