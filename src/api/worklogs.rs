//! `/api/v1/worklogs`: the daily work log (工作日志) — one per author per Asia/Shanghai date (a second is 409
//! `worklog_exists`), with the visits it talks about. The author may edit it only on the day it is about
//! (else 409 `not_editable`); leaders and admins whose subtree holds the author spot-check it (抽查) with a
//! mark and a comment. The create is offline-safe (`client_id` or `Idempotency-Key`); every write bumps the
//! change sequence so phones pick it up (reviews included), and the detail's `ETag` follows it.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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
use crate::db::repo::worklogs::{NewWorklog, Worklog, WorklogChanges, WorklogFilter};
use crate::db::repo::{audit, changes, worklogs};
use crate::domain::calendar::local_date;
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Longest work log, in characters.
pub const MAX_CONTENT: usize = 4000;
/// Most visits one log may link.
pub const MAX_VISITS: usize = 100;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_worklogs)
        .service(create_worklog)
        .service(get_worklog)
        .service(update_worklog)
        .service(review_worklog);
}

/// A reviewer's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// 好.
    Good,
    /// 合格.
    Acceptable,
    /// 差.
    Poor,
}

impl Mark {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Acceptable => "acceptable",
            Self::Poor => "poor",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Good, Self::Acceptable, Self::Poor]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A leader's spot-check of a log.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklogReview {
    /// The mark.
    pub mark: Mark,
    /// The comment, if any.
    pub comment: Option<String>,
    /// Who reviewed it (the latest review counts).
    pub reviewed_by: i64,
    /// When (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub reviewed_at: DateTime<Utc>,
}

/// A work log.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklogResponse {
    /// Work-log id.
    pub id: i64,
    /// The author.
    pub manager_id: i64,
    /// The Asia/Shanghai date it is about.
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub log_date: NaiveDate,
    /// Results, insights, valuable information.
    pub content: String,
    /// The author's visits it talks about.
    pub visit_ids: Vec<i64>,
    /// The latest review, once spot-checked.
    pub review: Option<WorklogReview>,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl WorklogResponse {
    /// From a row (stored visit ids that do not parse would be a bug: they fail the request).
    pub fn from_row(w: Worklog) -> AppResult<Self> {
        let visit_ids = serde_json::from_str(&w.visit_ids).map_err(anyhow::Error::new)?;
        let review = match (
            w.review_mark.as_deref().and_then(Mark::parse),
            w.reviewed_by,
            w.reviewed_at,
        ) {
            (Some(mark), Some(by), Some(at)) => Some(WorklogReview {
                mark,
                comment: w.review_comment,
                reviewed_by: by,
                reviewed_at: utc(at),
            }),
            _ => None,
        };
        Ok(Self {
            id: w.id,
            manager_id: w.manager_id,
            log_date: w.log_date,
            content: w.content,
            visit_ids,
            review,
            created_at: utc(w.created_at),
            updated_at: utc(w.updated_at),
        })
    }
}

/// A page of work logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklogList {
    /// The logs, newest first.
    pub items: Vec<WorklogResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /worklogs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListWorklogsQuery {
    /// Only this author's logs (leaders and admins: anyone in the subtree).
    pub manager_id: Option<i64>,
    /// `log_date` on or after this date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub from: Option<NaiveDate>,
    /// `log_date` on or before this date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub to: Option<NaiveDate>,
    /// `false`: only logs not yet reviewed; `true`: only reviewed ones.
    pub reviewed: Option<bool>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /worklogs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorklogRequest {
    /// Client-generated id (1–128 characters): the idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// The Asia/Shanghai date the log is about; not in the future.
    #[serde(deserialize_with = "crate::api::wire_time::date_in")]
    pub log_date: NaiveDate,
    /// 1–4000 characters.
    pub content: String,
    /// Visits of the caller's that the log talks about (up to 100).
    #[serde(default)]
    pub visit_ids: Vec<i64>,
}

/// Body of `PATCH /worklogs/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorklogRequest {
    /// 1–4000 characters.
    pub content: Option<String>,
    /// Replaces the linked visits.
    pub visit_ids: Option<Vec<i64>>,
}

/// Body of `POST /worklogs/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewWorklogRequest {
    /// The mark.
    pub mark: Mark,
    /// Up to 1000 characters.
    pub comment: Option<String>,
}

/// Removes duplicates (keeping the first) and checks the count.
fn check_visit_ids(errs: &mut FieldErrors, ids: Vec<i64>) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.len() > MAX_VISITS {
        errs.add(
            "visit_ids",
            "too_many",
            format!("at most {MAX_VISITS} visits"),
        );
    }
    out
}

/// 422 `visit_ids` `not_found` unless every id is a visit of `manager_id`; the ids as stored JSON.
fn own_visits_json(c: &mut DbConn, manager_id: i64, ids: &[i64]) -> AppResult<String> {
    let found = worklogs::count_own_visits(c, manager_id, ids)?;
    if usize::try_from(found).ok() != Some(ids.len()) {
        return Err(AppError::field(
            "visit_ids",
            "not_found",
            "every id must be one of your visits",
        ));
    }
    Ok(serde_json::to_string(ids).map_err(anyhow::Error::new)?)
}

fn found(w: Option<Worklog>) -> AppResult<Worklog> {
    w.ok_or(AppError::NotFound(ErrorCode::WorklogNotFound))
}

/// Lists the caller's work logs (leaders and admins: their subtree's), newest first.
#[utoipa::path(
    tag = "worklogs",
    params(ListWorklogsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = WorklogList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/worklogs")]
async fn list_worklogs(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListWorklogsQuery>,
) -> AppResult<web::Json<WorklogList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f > t
    {
        return Err(query_error("to", "out_of_range", "not before `from`"));
    }
    let filter = WorklogFilter {
        manager_id: q.manager_id,
        from: q.from,
        to: q.to,
        reviewed: q.reviewed,
    };
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            Ok(worklogs::list(c, &scope, &filter, before, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |w| w.id);
    let items = rows
        .into_iter()
        .map(WorklogResponse::from_row)
        .collect::<AppResult<_>>()?;
    Ok(web::Json(WorklogList { items, next_cursor }))
}

fn create_tx(
    c: &mut DbConn,
    caller: &Caller,
    req: CreateWorklogRequest,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    if worklogs::id_for_date(c, caller.user_id, req.log_date)?.is_some() {
        return Err(AppError::Conflict(ErrorCode::WorklogExists));
    }
    let visit_ids = own_visits_json(c, caller.user_id, &req.visit_ids)?;
    let new = NewWorklog {
        manager_id: caller.user_id,
        log_date: req.log_date,
        content: req.content,
        visit_ids,
        seq: changes::bump(c)?,
        created_at: now,
        updated_at: now,
    };
    let id = worklogs::insert(c, &new)?;
    let entry = Entry::new("worklog.create", "worklog", id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    let w = found(worklogs::find(c, &caller.scope(), id)?)?;
    Answer::new(StatusCode::CREATED, &WorklogResponse::from_row(w)?)
}

/// Writes the caller's log for a date (today or earlier). Offline-safe: a replay with the same key answers
/// the first result; a second log for the same date is 409 `worklog_exists`.
#[utoipa::path(
    tag = "worklogs",
    request_body = CreateWorklogRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = WorklogResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/worklogs")]
async fn create_worklog(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CreateWorklogRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: mut req,
        key,
        digest,
    } = body;
    let now = state.now();
    let mut errs = FieldErrors::default();
    if let Some(id) = &req.client_id {
        // An empty client id is a mistake, not "no key".
        validate::text(&mut errs, "client_id", id, 128);
    }
    if req.log_date > local_date(now.and_utc()) {
        errs.add("log_date", "in_future", "not after today (Asia/Shanghai)");
    }
    req.content = validate::prose(&mut errs, "content", &req.content, MAX_CONTENT);
    req.visit_ids = check_visit_ids(&mut errs, std::mem::take(&mut req.visit_ids));
    errs.finish()?;
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                create_tx(c, &caller, req, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// One work log in the caller's scope, with a weak `ETag` (it follows every change, reviews included);
/// `If-None-Match` with that tag answers 304 without a body.
#[utoipa::path(
    tag = "worklogs",
    params(
        ("id" = i64, Path, description = "Work-log id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = WorklogResponse,
            headers(("ETag" = String, description = "Weak tag of this version, e.g. `W/\"w12-345\"`"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/worklogs/{id}")]
async fn get_worklog(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let if_none_match = etag::if_none_match(&req);
    let now = state.now();
    let w = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            found(worklogs::find(c, &scope, id.0)?)
        })
        .await?;
    let tag = etag::tag('w', w.id, w.seq);
    Ok(etag::reply(
        if_none_match.as_deref(),
        tag,
        &WorklogResponse::from_row(w)?,
    ))
}

/// 200 with the new version of a log and its `ETag`.
fn with_etag(w: Worklog) -> AppResult<HttpResponse> {
    let tag = etag::tag('w', w.id, w.seq);
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(WorklogResponse::from_row(w)?))
}

fn update_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    req: UpdateWorklogRequest,
    now: NaiveDateTime,
) -> AppResult<Worklog> {
    let scope = caller.scope();
    let w = found(worklogs::find(c, &scope, id)?)?;
    if w.manager_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    if local_date(now.and_utc()) != w.log_date {
        return Err(AppError::Conflict(ErrorCode::NotEditable));
    }
    if req.content.is_none() && req.visit_ids.is_none() {
        // Nothing to change: no write, no new version.
        return Ok(w);
    }
    let visit_ids = match req.visit_ids {
        Some(ids) => Some(own_visits_json(c, caller.user_id, &ids)?),
        None => None,
    };
    let changes = WorklogChanges {
        content: req.content,
        visit_ids,
        seq: Some(changes::bump(c)?),
        updated_at: Some(now),
        ..WorklogChanges::default()
    };
    worklogs::update(c, id, &changes)?;
    let entry = Entry::new("worklog.update", "worklog", id, &caller.org_path);
    audit::record(c, caller, entry, now)?;
    found(worklogs::find(c, &scope, id)?)
}

/// Changes the caller's own log, only on the Asia/Shanghai day it is about (later: 409 `not_editable`;
/// someone else's log: 403 if in scope, else 404).
#[utoipa::path(
    tag = "worklogs",
    params(("id" = i64, Path, description = "Work-log id")),
    request_body = UpdateWorklogRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = WorklogResponse,
            headers(("ETag" = String, description = "Weak tag of the new version"))),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/worklogs/{id}")]
async fn update_worklog(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateWorklogRequest>,
) -> AppResult<HttpResponse> {
    let mut req = body.0;
    let mut errs = FieldErrors::default();
    req.content = req
        .content
        .map(|t| validate::prose(&mut errs, "content", &t, MAX_CONTENT));
    req.visit_ids = req.visit_ids.map(|v| check_visit_ids(&mut errs, v));
    errs.finish()?;
    let now = state.now();
    let w = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            update_tx(c, &caller, id.0, req, now)
        })
        .await?;
    with_etag(w)
}

fn review_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    mark: Mark,
    comment: Option<String>,
    now: NaiveDateTime,
) -> AppResult<Worklog> {
    caller.require_leader_or_admin()?;
    let scope = caller.scope();
    let w = found(worklogs::find(c, &scope, id)?)?;
    if w.manager_id == caller.user_id {
        // Nobody marks their own log.
        return Err(AppError::Forbidden);
    }
    let changes = WorklogChanges {
        review_mark: Some(Some(mark.as_str().to_owned())),
        review_comment: Some(comment),
        reviewed_by: Some(Some(caller.user_id)),
        reviewed_at: Some(Some(now)),
        seq: Some(changes::bump(c)?),
        updated_at: Some(now),
        ..WorklogChanges::default()
    };
    worklogs::update(c, id, &changes)?;
    let path = worklogs::org_path_of(c, w.manager_id)?;
    let detail = serde_json::json!({ "mark": mark.as_str() }).to_string();
    let entry = Entry::new("worklog.review", "worklog", id, &path).with_detail(detail);
    audit::record(c, caller, entry, now)?;
    found(worklogs::find(c, &scope, id)?)
}

/// Spot-checks (抽查) a log of someone in the caller's subtree: a mark and a comment; a later review replaces
/// it. Leaders and admins only (a manager: 403); nobody reviews their own log (403).
#[utoipa::path(
    tag = "worklogs",
    params(("id" = i64, Path, description = "Work-log id")),
    request_body = ReviewWorklogRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = WorklogResponse,
            headers(("ETag" = String, description = "Weak tag of the new version"))),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/worklogs/{id}/review")]
async fn review_worklog(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<ReviewWorklogRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let comment = validate::opt_prose(&mut errs, "comment", req.comment.as_deref(), 1000);
    errs.finish()?;
    let now = state.now();
    let w = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            review_tx(c, &caller, id.0, req.mark, comment, now)
        })
        .await?;
    with_etag(w)
}
