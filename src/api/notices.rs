//! `/api/v1/notices`: notices (通知) a leader or admin publishes to an org subtree (their own org by
//! default). Every active user of the subtree then (the publisher excepted) becomes a recipient and gets a
//! notification; opening the notice marks it read, and the publisher sees who has read it and who has not.
//! A notice is visible to its recipients and its publisher only (anyone else: 404).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiQuery, PathId, page_params};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::repo::notices::{self, Notice};
use crate::db::repo::notifications::{Planned, notify};
use crate::db::repo::{audit, audit::Entry};
use crate::domain::paging::finish_page;
use crate::domain::reminders::Kind;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Longest title.
pub const MAX_TITLE: usize = 200;
/// Longest body.
pub const MAX_BODY: usize = 10_000;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(publish_notice)
        .service(list_notices)
        .service(get_notice)
        .service(notice_reads);
}

/// Body of `POST /notices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishNoticeRequest {
    /// 1–200 characters.
    pub title: String,
    /// 1–10000 characters.
    pub body: String,
    /// The org whose subtree receives it (in the caller's subtree; default the caller's org).
    pub org_id: Option<i64>,
}

/// A notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeResponse {
    /// Notice id.
    pub id: i64,
    /// The org subtree it went to.
    pub org_id: i64,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Who published it.
    pub published_by: i64,
    /// Published (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// For a recipient: whether they have read it.
    pub read: Option<bool>,
    /// For a recipient: when they first read it (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub read_at: Option<DateTime<Utc>>,
    /// For the publisher: how many received it.
    pub recipient_count: Option<i64>,
    /// For the publisher: how many have read it.
    pub read_count: Option<i64>,
}

fn response(
    n: Notice,
    read_at: Option<Option<NaiveDateTime>>,
    counts: Option<(i64, i64)>,
) -> NoticeResponse {
    NoticeResponse {
        id: n.id,
        org_id: n.org_id,
        title: n.title,
        body: n.body,
        published_by: n.published_by,
        created_at: utc(n.created_at),
        read: read_at.map(|r| r.is_some()),
        read_at: read_at.flatten().map(utc),
        recipient_count: counts.map(|c| c.0),
        read_count: counts.map(|c| c.1),
    }
}

/// A page of notices.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeList {
    /// Newest first.
    pub items: Vec<NoticeResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Which notices to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeBox {
    /// Those the caller received (default).
    Received,
    /// Those the caller published.
    Published,
}

/// Query of `GET /notices`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListNoticesQuery {
    /// `received` (default) or `published`.
    #[serde(rename = "box")]
    #[param(rename = "box")]
    pub box_: Option<NoticeBox>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// A recipient and whether they have read a notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeReader {
    /// The recipient.
    pub user_id: i64,
    /// Their employee number.
    pub employee_no: String,
    /// Their name.
    pub name: String,
    /// When they first read it (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub read_at: Option<DateTime<Utc>>,
}

/// Read receipts of a notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeReads {
    /// Recipients who have read it.
    pub read: Vec<NoticeReader>,
    /// Recipients who have not.
    pub unread: Vec<NoticeReader>,
}

fn missing() -> AppError {
    AppError::NotFound(ErrorCode::NoticeNotFound)
}

fn publish_tx(
    c: &mut DbConn,
    caller: &Caller,
    title: &str,
    body: &str,
    org_id: Option<i64>,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    caller.require_leader_or_admin()?;
    let org_id = org_id.unwrap_or(caller.org_id);
    let path = notices::org_in_subtree(c, &caller.org_path, org_id)?
        .ok_or_else(|| AppError::field("org_id", "not_found", "no such org in your subtree"))?;
    let (id, recipients) = notices::publish(c, &path, org_id, title, body, caller.user_id, now)?;
    let planned = Planned::events(recipients, Kind::Notice, "notice", ("notice", id), now);
    notify(c, &planned, now)?;
    audit::record(
        c,
        caller,
        Entry::new("notice.publish", "notice", id, &path),
        now,
    )?;
    let (n, _) = notices::find_visible(c, caller.user_id, id)?.ok_or_else(missing)?;
    let read = notices::counts(c, &[id])?
        .first()
        .map_or((0, 0), |r| (r.1, r.2));
    Answer::new(StatusCode::CREATED, &response(n, None, Some(read)))
}

/// Publishes a notice to an org subtree (leaders and admins; managers 403). An org outside the caller's
/// subtree is 422 `org_id` `not_found`. Each recipient gets a notification. A retry with the same
/// `Idempotency-Key` answers the first result without publishing (or notifying) again.
#[utoipa::path(
    tag = "notices",
    request_body = PublishNoticeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replay key")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = NoticeResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/notices")]
async fn publish_notice(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<PublishNoticeRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: req,
        key,
        digest,
    } = body;
    let mut errs = FieldErrors::default();
    let title = validate::text(&mut errs, "title", &req.title, MAX_TITLE);
    let text = validate_body(&mut errs, &req.body);
    errs.finish()?;
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                publish_tx(c, &caller, &title, &text, req.org_id, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// A notice body: trimmed, 1–10000 characters; line breaks and tabs allowed, other control characters not.
fn validate_body(errs: &mut FieldErrors, body: &str) -> String {
    crate::domain::validate::prose(errs, "body", body, MAX_BODY)
}

/// Notices the caller received (with their read mark) or, with `box=published`, published (with counts).
#[utoipa::path(
    tag = "notices",
    params(ListNoticesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NoticeList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/notices")]
async fn list_notices(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListNoticesQuery>,
) -> AppResult<web::Json<NoticeList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let published = q.box_ == Some(NoticeBox::Published);
    let now = state.now();
    let (items, next_cursor) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            if published {
                let rows = notices::list_published(c, caller.user_id, before, limit + 1)?;
                let (rows, next) = finish_page(rows, limit, |n| n.id);
                let ids: Vec<i64> = rows.iter().map(|n| n.id).collect();
                let counts = notices::counts(c, &ids)?;
                let items = rows
                    .into_iter()
                    .map(|n| {
                        let k = counts
                            .iter()
                            .find(|k| k.0 == n.id)
                            .map_or((0, 0), |k| (k.1, k.2));
                        response(n, None, Some(k))
                    })
                    .collect();
                Ok((items, next))
            } else {
                let rows = notices::list_received(c, caller.user_id, before, limit + 1)?;
                let (rows, next) = finish_page(rows, limit, |n| n.0.id);
                let items = rows
                    .into_iter()
                    .map(|(n, r)| response(n, Some(r), None))
                    .collect();
                Ok((items, next))
            }
        })
        .await?;
    Ok(web::Json(NoticeList { items, next_cursor }))
}

/// One notice the caller received or published; opening it marks it (and its notification) read for a
/// recipient.
#[utoipa::path(
    tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NoticeResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/notices/{id}")]
async fn get_notice(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<NoticeResponse>> {
    let now = state.now();
    let n = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let (n, read) = notices::find_visible(c, caller.user_id, id.0)?.ok_or_else(missing)?;
            if read.is_some() {
                notices::mark_read(c, id.0, caller.user_id, now)?;
            }
            let counts = if n.published_by == caller.user_id {
                Some(
                    notices::counts(c, &[id.0])?
                        .first()
                        .map_or((0, 0), |r| (r.1, r.2)),
                )
            } else {
                None
            };
            let (n, read) = notices::find_visible(c, caller.user_id, id.0)?.ok_or_else(missing)?;
            Ok(response(n, read, counts))
        })
        .await?;
    Ok(web::Json(n))
}

/// Who has read a notice and who has not (its publisher only: a recipient gets 403, anyone else 404).
#[utoipa::path(
    tag = "notices",
    params(("id" = i64, Path, description = "Notice id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NoticeReads),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/notices/{id}/reads")]
async fn notice_reads(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<NoticeReads>> {
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let (n, _) = notices::find_visible(c, caller.user_id, id.0)?.ok_or_else(missing)?;
            if n.published_by != caller.user_id {
                return Err(AppError::Forbidden);
            }
            Ok(notices::reads(c, id.0)?)
        })
        .await?;
    let (read, unread): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|(user_id, employee_no, name, at)| NoticeReader {
            user_id,
            employee_no,
            name,
            read_at: at.map(utc),
        })
        .partition(|r| r.read_at.is_some());
    Ok(web::Json(NoticeReads { read, unread }))
}
