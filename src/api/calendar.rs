//! `/api/v1/calendar/{year}`: the working-day calendar — public holidays and 调休 make-up working days —
//! that "working day" reminder rules (work log missing) use; days without an entry follow the weekday.
//! Admins load a year (replacing it); everyone may read it.

use actix_web::{HttpRequest, get, put, web};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use crate::auth::caller::Auth;
use crate::db::repo::calendar::{self, CalendarDay};
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldError, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Years the calendar accepts.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_calendar).service(put_calendar);
}

/// One calendar entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDayDto {
    /// The date (in the path's year).
    #[serde(serialize_with = "crate::api::wire_time::date")]
    #[serde(deserialize_with = "crate::api::wire_time::date_in")]
    pub date: NaiveDate,
    /// `false`: a public holiday; `true`: a 调休 make-up working day (usually a weekend day).
    pub working: bool,
    /// What it is, e.g. `春节` or `春节调休上班` (1–50 characters).
    pub name: String,
}

/// A year's calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarResponse {
    /// The year.
    pub year: i32,
    /// Its entries by date; days not listed follow the weekday (Monday–Friday working).
    pub days: Vec<CalendarDayDto>,
}

/// Body of `PUT /calendar/{year}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCalendarRequest {
    /// Every holiday and make-up working day of the year (each date once); replaces what was there.
    pub days: Vec<CalendarDayDto>,
}

fn path_year(req: &HttpRequest) -> AppResult<i32> {
    req.match_info()
        .get("year")
        .and_then(|y| y.parse::<i32>().ok())
        .filter(|y| YEARS.contains(y))
        .ok_or_else(|| AppError::BadRequest {
            code: ErrorCode::InvalidPathParameter,
            detail: "path parameter `year` must be a year from 2000 to 2100".into(),
            errors: vec![FieldError::new(
                "year",
                "invalid_format",
                "a year from 2000 to 2100",
            )],
        })
}

fn response(year: i32, rows: Vec<CalendarDay>) -> CalendarResponse {
    CalendarResponse {
        year,
        days: rows
            .into_iter()
            .map(|d| CalendarDayDto {
                date: d.day,
                working: d.working,
                name: d.name,
            })
            .collect(),
    }
}

fn check(year: i32, days: Vec<CalendarDayDto>) -> AppResult<Vec<(NaiveDate, bool, String)>> {
    let mut errs = FieldErrors::default();
    if days.len() > 366 {
        errs.add("days", "too_many", "at most 366 entries");
    }
    let mut out: Vec<(NaiveDate, bool, String)> = Vec::with_capacity(days.len());
    for (i, d) in days.into_iter().enumerate() {
        if d.date.year() != year {
            errs.add(
                &format!("days.{i}.date"),
                "out_of_range",
                format!("must be in {year}"),
            );
        } else if out.iter().any(|o| o.0 == d.date) {
            errs.add(
                &format!("days.{i}.date"),
                "duplicate",
                "each date at most once",
            );
        }
        let name = validate::text(&mut errs, &format!("days.{i}.name"), &d.name, 50);
        out.push((d.date, d.working, name));
    }
    errs.finish()?;
    out.sort_by_key(|d| d.0);
    Ok(out)
}

/// A year's holidays and make-up working days (any signed-in user).
#[utoipa::path(
    tag = "calendar",
    params(("year" = i32, Path, description = "Year, 2000–2100")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CalendarResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/calendar/{year}")]
async fn get_calendar(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> AppResult<web::Json<CalendarResponse>> {
    let year = path_year(&req)?;
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            auth.load(c, now)?;
            Ok(calendar::list_year(c, year)?)
        })
        .await?;
    Ok(web::Json(response(year, rows)))
}

/// Replaces a year's holidays and make-up working days (admins only: others 403). Dates outside the year
/// are 422 `days.N.date` `out_of_range`; a date listed twice `duplicate`.
#[utoipa::path(
    tag = "calendar",
    params(("year" = i32, Path, description = "Year, 2000–2100")),
    request_body = PutCalendarRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored; the year's calendar", body = CalendarResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[put("/calendar/{year}")]
async fn put_calendar(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: ApiJson<PutCalendarRequest>,
) -> AppResult<web::Json<CalendarResponse>> {
    let year = path_year(&req)?;
    let now = state.now();
    let days = body.0.days;
    let rows = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let days = check(year, days)?;
            calendar::replace_year(c, year, &days)?;
            let entry = crate::db::repo::audit::Entry::new(
                "calendar.replace",
                "calendar",
                i64::from(year),
                &caller.org_path,
            );
            crate::db::repo::audit::record(c, &caller, entry, now)?;
            Ok(calendar::list_year(c, year)?)
        })
        .await?;
    Ok(web::Json(response(year, rows)))
}
