//! `/api/v1/visits`: GPS check-in at a customer (distance and flags for the leader, never a rejection),
//! check-out with the duration, the visit report (replaceable by its author for 24 h, then append-only
//! amendments), and the lists. Check-in, check-out, report and amendment are offline-safe (`client_id` or
//! `Idempotency-Key`).

pub mod dto;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::NaiveDateTime;
use utoipa_actix_web::service_config::ServiceConfig;

pub use self::dto::*;
use super::etag;
use super::extract::{ApiQuery, PathId, page_params, query_error};
use super::idempotency::{Answer, IdempotentJson, once};
use crate::auth::caller::{Auth, Caller};
use crate::auth::tokens;
use crate::db::DbConn;
use crate::db::repo::audit::Entry;
use crate::db::repo::notifications::{self, Planned};
use crate::db::repo::visits::{NewVisit, Report, Visit, VisitFilter};
use crate::db::repo::{audit, changes, customers, orgs, reminders, scope, timeline, visits};
use crate::domain::geo::{self, CheckIn, FlagRules, Point};
use crate::domain::paging::finish_page;
use crate::domain::reminders::Kind;
use crate::domain::user::Role;
use crate::domain::validate;
use crate::domain::visit::{self, ReportFields};
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_visits)
        .service(check_in)
        .service(get_visit)
        .service(check_out)
        .service(put_visit_report)
        .service(add_report_amendment);
}

/// The visit, which must be the caller's own: 404 when out of scope, 403 when someone else's.
fn own_visit(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<Visit> {
    let v = visits::find(c, &caller.scope(), id)?
        .ok_or(AppError::NotFound(ErrorCode::VisitNotFound))?;
    if v.manager_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    Ok(v)
}

/// The first `n` characters, for archive lines.
fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// A path-bound write's digest: the same key on another visit is a different request.
fn bound_digest(digest: &str, path: &str) -> String {
    tokens::digest(&format!("{digest} {path}"))
}

/// Checks a body's optional `client_id` (1–128 characters): check-in, report and amendment.
fn check_client_id(errs: &mut FieldErrors, id: Option<&str>) {
    if let Some(id) = id {
        validate::text(errs, "client_id", id, 128);
    }
}

/// Validates a check-in body into what the transaction needs.
fn check_in_input(req: CheckInRequest) -> AppResult<CheckInInput> {
    let mut errs = FieldErrors::default();
    let purpose = validate::text(&mut errs, "purpose", &req.purpose, visit::PURPOSE_MAX);
    visit::check_fix(&mut errs, req.latitude, req.longitude, req.accuracy_m);
    check_client_id(&mut errs, req.client_id.as_deref());
    errs.finish()?;
    let datum = req.datum.unwrap_or(geo::Datum::Wgs84);
    Ok(CheckInInput {
        customer_id: req.customer_id,
        purpose,
        phone_time: visit::stored(req.phone_time),
        at: geo::to_wgs84(req.latitude, req.longitude, datum),
        accuracy_m: req.accuracy_m,
        datum,
    })
}

fn check_in_tx(
    c: &mut DbConn,
    caller: &Caller,
    input: &CheckInInput,
    rules: &FlagRules,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    let customer =
        scope::find_customer(c, &caller.scope(), input.customer_id)?.ok_or_else(|| {
            AppError::field("customer_id", "not_found", "no such customer in your scope")
        })?;
    if let Some(open) = visits::open_of(c, caller.user_id)? {
        return Err(AppError::VisitOpen(open));
    }
    let previous = visits::previous_of(c, caller.user_id)?
        .map(|(lat, lon, at)| (Point { lat, lon }, at.and_utc()));
    let registered = customer
        .latitude
        .zip(customer.longitude)
        .map(|(lat, lon)| Point { lat, lon });
    let facts = CheckIn {
        at: input.at,
        accuracy_m: input.accuracy_m,
        phone_time: input.phone_time.and_utc(),
        server_time: now.and_utc(),
        customer: registered,
        previous,
    };
    let (distance, flags) = geo::assess(&facts, rules);
    let seq = changes::bump(c)?;
    let new = NewVisit {
        customer_id: customer.id,
        manager_id: caller.user_id,
        purpose: input.purpose.clone(),
        phone_time: input.phone_time,
        checked_in_at: now,
        latitude: input.at.lat,
        longitude: input.at.lon,
        accuracy_m: input.accuracy_m,
        datum: input.datum.as_str().to_owned(),
        distance_m: distance.map(|d| (d * 10.0).round() / 10.0),
        flags: visit::encode_flags(&flags),
        seq,
        created_at: now,
        updated_at: now,
    };
    let v = visits::insert(c, new)?;
    let line = format!("拜访签到：{}", clip(&input.purpose, 100));
    timeline::record(
        c,
        customer.id,
        "visit",
        Some(v.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    let entry = Entry::new("visit.check_in", "visit", v.id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    // The answer without `view_parts`' reads: the customer's and the caller's names are at hand, and a new
    // visit has no report.
    let view = VisitResponse::from_row(v, customer.name, caller.person(), false);
    Answer::new(StatusCode::CREATED, &view)
}

/// Takes a change sequence number and stamps the visit with it (a write to the visit's report).
fn stamp(c: &mut DbConn, id: i64, now: NaiveDateTime) -> AppResult<()> {
    let seq = changes::bump(c)?;
    visits::touch(c, id, seq, now)?;
    Ok(())
}

/// Checks in at a customer as the caller. The server's receive time, the distance to the customer's
/// registered location and the flags are stored; flags never reject. 409 `visit_already_open` (with
/// `open_visit_id`) while the caller has a visit not checked out.
#[utoipa::path(
    tag = "visits",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")),
    request_body = CheckInRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Checked in", body = VisitResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/visits")]
async fn check_in(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CheckInRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson { body, key, digest } = body;
    let input = check_in_input(body)?;
    let now = state.now();
    let rules = FlagRules {
        radius_m: f64::from(state.settings.visit_radius_m),
        ..FlagRules::default()
    };
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            visits::lock_manager(c, caller.user_id)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                check_in_tx(c, &caller, &input, &rules, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

fn check_out_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    req: &CheckOutInput,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    let mut v = own_visit(c, caller, id)?;
    if v.checked_out_at.is_some() {
        return Err(AppError::Conflict(ErrorCode::VisitAlreadyClosed));
    }
    let mut errs = FieldErrors::default();
    let checked_in = (v.phone_time, v.checked_in_at);
    let (at, secs) = visit::check_checkout(&mut errs, "time", checked_in, req.time, now);
    errs.finish()?;
    let secs = secs.unwrap_or(0);
    let mut line = format!("拜访签退，时长 {} 分钟", secs / 60);
    if let Some(note) = &req.note {
        line = format!("{line}：{}", clip(note, 100));
    }
    timeline::record(
        c,
        v.customer_id,
        "visit",
        Some(v.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    let entry = Entry::new("visit.check_out", "visit", v.id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    let id = v.id;
    (v.checked_out_at, v.duration_secs, v.updated_at) = (Some(at), Some(secs), now);
    let answer = Answer::new(StatusCode::OK, &view_own(c, v, caller.person())?)?;
    // The sequence number is stamped with the closing columns in the same statement.
    let seq = changes::bump(c)?;
    visits::check_out(c, id, at, secs, seq, now)?;
    Ok(answer)
}

/// Checks out of the caller's own visit (`time` defaults to now) and computes its duration. 409
/// `visit_already_closed` when already checked out. A `time` from the phone is measured against the
/// check-in's `phone_time` (the same clock, right for a visit queued offline); before it is a 422.
#[utoipa::path(
    tag = "visits",
    params(
        ("id" = i64, Path, description = "Visit id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay key")
    ),
    request_body = CheckOutRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Checked out", body = VisitResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/visits/{id}/checkout")]
async fn check_out(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<CheckOutRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson { body, key, digest } = body;
    let mut errs = FieldErrors::default();
    let note = validate::opt_prose(&mut errs, "note", body.note.as_deref(), 500);
    errs.finish()?;
    let input = CheckOutInput {
        time: body.time.map(visit::stored),
        note,
    };
    let digest = bound_digest(&digest, &format!("/visits/{}/checkout", id.0));
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            visits::lock_manager(c, caller.user_id)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                check_out_tx(c, &caller, id.0, &input, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

fn put_report_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    fields: ReportFields,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    let v = own_visit(c, caller, id)?;
    if let Some(d) = fields.next_visit_date
        && !visit::next_visit_date_ok(d, v.checked_in_at)
    {
        return Err(AppError::field(
            "next_visit_date",
            "in_past",
            "not before the visit's own date",
        ));
    }
    let existing = visits::report(c, v.id)?;
    let (first_written, status, verb) = match &existing {
        Some(r) if !visit::report_editable(r.created_at, now) => {
            return Err(AppError::Conflict(ErrorCode::NotEditable));
        }
        Some(r) => (r.created_at, StatusCode::OK, "拜访报告已修改"),
        None => (now, StatusCode::CREATED, "拜访报告"),
    };
    let report = Report {
        visit_id: v.id,
        author_id: caller.user_id,
        persons_met: fields.persons_met,
        summary: fields.summary,
        needs: fields.needs,
        outcome: fields.outcome,
        next_visit_date: fields.next_visit_date,
        important_change: fields.important_change,
        important_change_text: fields.important_change_text,
        created_at: first_written,
        updated_at: now,
    };
    if existing.is_some() {
        visits::replace_report(c, &report)?;
    } else {
        visits::insert_report(c, &report)?;
    }
    let was = existing.as_ref();
    if was.and_then(|r| r.next_visit_date) != report.next_visit_date {
        // The planned next visit moved: the next scheduler pass makes the right reminder.
        reminders::forget_subject(c, "visit", v.id)?;
    }
    if report.important_change && !was.is_some_and(|r| r.important_change) {
        tell_leaders(c, caller, v.id, now)?;
    }
    let mut line = format!("{verb}：{}", clip(&report.summary, 100));
    if let Some(t) = &report.important_change_text {
        line = format!("{line}（重要情况变动：{}）", clip(t, 100));
    }
    timeline::record(
        c,
        v.customer_id,
        "visit_report",
        Some(v.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    let entry = Entry::new("visit.report", "visit", v.id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    let amendments = visits::amendments(c, v.id)?;
    let answer = Answer::new(status, &VisitReportResponse::from_rows(report, amendments))?;
    stamp(c, v.id, now)?;
    Ok(answer)
}

/// An important change in a visit report reaches the leaders of the manager's org at once (urgent: quiet
/// hours do not hold it back). The push says only that there is one; the report is behind the deep link.
fn tell_leaders(
    c: &mut DbConn,
    caller: &Caller,
    visit_id: i64,
    now: NaiveDateTime,
) -> AppResult<()> {
    let leaders = notifications::leaders_of_org(c, caller.org_id)?
        .into_iter()
        .filter(|&u| u != caller.user_id);
    let notes = Planned::events(
        leaders,
        Kind::ImportantChange,
        "important",
        ("visit", visit_id),
        now,
    );
    notifications::notify(c, &notes, now)?;
    Ok(())
}

/// Writes the report of the caller's own visit (201 the first time, 200 when replaced). The author may
/// replace it for 24 h after it was first written; after that this is 409 `not_editable` and changes go
/// through amendments.
#[utoipa::path(
    tag = "visits",
    params(
        ("id" = i64, Path, description = "Visit id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")
    ),
    request_body = VisitReportRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = VisitReportResponse),
        (status = 201, description = "Written for the first time", body = VisitReportResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[put("/visits/{id}/report")]
async fn put_visit_report(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<VisitReportRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson { body, key, digest } = body;
    let mut errs = FieldErrors::default();
    let fields = visit::check_report(&mut errs, body.input());
    check_client_id(&mut errs, body.client_id.as_deref());
    errs.finish()?;
    let digest = bound_digest(&digest, &format!("/visits/{}/report", id.0));
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            visits::lock_manager(c, caller.user_id)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                put_report_tx(c, &caller, id.0, fields, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

fn amend_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    text: &str,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    let v = own_visit(c, caller, id)?;
    if visits::report(c, v.id)?.is_none() {
        // Nothing to amend: write the report first.
        return Err(AppError::Conflict(ErrorCode::NotEditable));
    }
    let a = visits::add_amendment(c, v.id, caller.user_id, text, now)?;
    let line = format!("拜访报告补充：{}", clip(text, 100));
    timeline::record(
        c,
        v.customer_id,
        "visit_report",
        Some(v.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    let entry = Entry::new("visit.report_amend", "visit", v.id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    let answer = Answer::new(StatusCode::CREATED, &AmendmentResponse::from(a))?;
    stamp(c, v.id, now)?;
    Ok(answer)
}

/// Appends an amendment to the report of the caller's own visit (any time after the report exists; the
/// only way to change it after 24 h). 409 `not_editable` when there is no report yet.
#[utoipa::path(
    tag = "visits",
    params(
        ("id" = i64, Path, description = "Visit id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")
    ),
    request_body = AmendmentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Appended", body = AmendmentResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/visits/{id}/report/amendments")]
async fn add_report_amendment(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson { body, key, digest } = body;
    let mut errs = FieldErrors::default();
    let text = validate::prose(&mut errs, "text", &body.text, 2000);
    check_client_id(&mut errs, body.client_id.as_deref());
    errs.finish()?;
    let digest = bound_digest(&digest, &format!("/visits/{}/report/amendments", id.0));
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            visits::lock_manager(c, caller.user_id)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                amend_tx(c, &caller, id.0, &text, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// One visit in the caller's scope, with its report and the report's amendments; a weak `ETag` follows
/// every change (check-out, report, amendment), and `If-None-Match` with it answers 304 without a body.
#[utoipa::path(
    tag = "visits",
    params(
        ("id" = i64, Path, description = "Visit id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = VisitDetail,
            headers(("ETag" = String, description = "Weak tag of this version, e.g. `W/\"v12-345\"`"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/visits/{id}")]
async fn get_visit(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let now = state.now();
    let if_none_match = etag::if_none_match(&req);
    let (tag, detail) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let v = visits::find(c, &caller.scope(), id.0)?
                .ok_or(AppError::NotFound(ErrorCode::VisitNotFound))?;
            // The view shows the customer's name: the tag follows the customer too (see `etag::tag_pair`).
            let (customer, customer_seq) = customers::name_seq(c, v.customer_id)?;
            let tag = etag::tag_pair('v', v.id, v.seq, customer_seq);
            if if_none_match
                .as_deref()
                .is_some_and(|h| etag::none_match(h, &tag))
            {
                return Ok((tag, None));
            }
            // The view's parts from the reads at hand (the name above, the report below), not `view_parts`.
            let report = match visits::report(c, v.id)? {
                Some(r) => Some(VisitReportResponse::from_rows(
                    r,
                    visits::amendments(c, v.id)?,
                )),
                None => None,
            };
            let manager = visits::person(c, v.manager_id)?.unwrap_or_default();
            let visit = VisitResponse::from_row(v, customer, manager, report.is_some());
            Ok((tag, Some(VisitDetail { visit, report })))
        })
        .await?;
    Ok(match detail {
        Some(d) => etag::reply(None, tag, &d),
        None => etag::reply(Some("*"), tag, &()),
    })
}

/// The list filter for the caller: `mine` defaults to true for managers (unless a customer is asked for);
/// `org_id` is for leaders and admins and must be in their subtree.
fn list_filter(c: &mut DbConn, caller: &Caller, q: &ListVisitsQuery) -> AppResult<VisitFilter> {
    let org_path = match q.org_id {
        None => None,
        Some(org_id) => {
            caller.require_leader_or_admin()?;
            let org = orgs::find(c, &caller.scope(), org_id)?
                .ok_or_else(|| query_error("org_id", "not_found", "no such org in your subtree"))?;
            Some(org.path)
        }
    };
    let mine = q
        .mine
        .unwrap_or(caller.role == Role::Manager && q.customer_id.is_none());
    let (from, to) = visit::shanghai_range(q.from, q.to);
    Ok(VisitFilter {
        manager_id: if mine {
            Some(caller.user_id)
        } else {
            q.manager_id
        },
        customer_id: q.customer_id,
        org_path,
        from,
        to,
        flagged: q.flagged,
    })
}

/// Visits in the caller's scope, newest first, with their flags.
#[utoipa::path(
    tag = "visits",
    params(ListVisitsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = VisitList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/visits")]
async fn list_visits(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListVisitsQuery>,
) -> AppResult<web::Json<VisitList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from > to
    {
        return Err(query_error("to", "out_of_range", "not before `from`"));
    }
    let now = state.now();
    let list = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let filter = list_filter(c, &caller, &q)?;
            let rows = visits::list(c, &caller.scope(), &filter, before, limit + 1)?;
            let (rows, next_cursor) = finish_page(rows, limit, |v| v.id);
            Ok(VisitList {
                items: views(c, rows)?,
                next_cursor,
            })
        })
        .await?;
    Ok(web::Json(list))
}

/// Visit rows as answers, with customer and manager names and whether a report exists.
pub(crate) fn views(c: &mut DbConn, rows: Vec<Visit>) -> AppResult<Vec<VisitResponse>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|v| v.id).collect();
    let mut customer_ids: Vec<i64> = rows.iter().map(|v| v.customer_id).collect();
    let mut manager_ids: Vec<i64> = rows.iter().map(|v| v.manager_id).collect();
    customer_ids.sort_unstable();
    customer_ids.dedup();
    manager_ids.sort_unstable();
    manager_ids.dedup();
    let names = visits::customer_names(c, &customer_ids)?;
    let people = visits::people(c, &manager_ids)?;
    let reported = visits::with_report(c, &ids)?;
    Ok(rows
        .into_iter()
        .map(|v| {
            let customer = names.get(&v.customer_id).cloned().unwrap_or_default();
            let manager = people.get(&v.manager_id).cloned().unwrap_or_default();
            let has_report = reported.contains(&v.id);
            VisitResponse::from_row(v, customer, manager, has_report)
        })
        .collect())
}

/// The caller's own visit as an answer; `manager` is the caller's (name, employee number), read with the
/// session check.
fn view_own(c: &mut DbConn, v: Visit, manager: (String, String)) -> AppResult<VisitResponse> {
    let parts = visits::view_parts(c, &v)?;
    Ok(VisitResponse::from_row(
        v,
        parts.customer.unwrap_or_default(),
        manager,
        parts.has_report,
    ))
}
