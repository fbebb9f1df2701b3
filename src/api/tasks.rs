//! `/api/v1/tasks`: tasks (待办). A leader or admin assigns one to managers of their subtree (one or many);
//! a manager sets tasks for themself only. Assignment notifies each assignee at once (urgent: through quiet
//! hours), in the same transaction; due reminders follow from the scheduler. A task is visible to its
//! creator, its assignees, and the leaders and admins whose subtree holds its org (anyone else: 404); the
//! creator and those leaders see completion per assignee, an assignee their own part. Only the creator
//! edits or cancels (others who see it: 403), only an assignee finishes their part. It is `open` until every assignee is done (`done`) or the creator cancels it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiJson, ApiQuery, PathId, double_option, page_params};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::{Auth, Caller, Reach};
use crate::db::DbConn;
use crate::db::repo::notifications::{Planned, notify};
use crate::db::repo::tasks::{self, Assignee, NewTask, Task, TaskChanges, TaskFilter};
use crate::db::repo::{audit, audit::Entry, scope};
use crate::domain::paging::finish_page;
use crate::domain::reminders::Kind;
use crate::domain::user::Role;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Longest title.
pub const MAX_TITLE: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 4000;
/// Most assignees of one task.
pub const MAX_ASSIGNEES: usize = 200;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_task)
        .service(list_tasks)
        .service(get_task)
        .service(update_task)
        .service(task_done)
        .service(cancel_task);
}

/// Priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal (default).
    #[default]
    Normal,
    /// High.
    High,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// Status of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Some assignee has not finished.
    Open,
    /// Every assignee is done.
    Done,
    /// Cancelled by its creator.
    Cancelled,
}

impl TaskStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An assignee's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssigneeResponse {
    /// The assignee.
    pub user_id: i64,
    /// Their name.
    pub name: String,
    /// `open` or `done`.
    pub status: String,
    /// When they finished (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub done_at: Option<DateTime<Utc>>,
}

/// A task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskResponse {
    /// Task id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Details.
    pub description: Option<String>,
    /// Due (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    #[serde(default, deserialize_with = "crate::api::wire_time::instant_in_opt")]
    pub due_at: Option<DateTime<Utc>>,
    /// `low`, `normal` or `high`.
    pub priority: String,
    /// Related customer.
    pub customer_id: Option<i64>,
    /// Who created it.
    pub created_by: i64,
    /// The creator's org.
    pub org_id: i64,
    /// `open`, `done` or `cancelled`.
    pub status: String,
    /// Per assignee: all of them for the creator, the caller's own entry for an assignee.
    pub assignees: Vec<AssigneeResponse>,
    /// Assignees done / all assignees (the creator's view; an assignee sees their own part).
    pub done_count: i64,
    /// Number of assignees counted in `done_count`.
    pub assignee_count: i64,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// Newest first.
    pub items: Vec<TaskResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1–200 characters.
    pub title: String,
    /// Up to 4000 characters.
    pub description: Option<String>,
    /// Due time (RFC 3339, in the future).
    pub due_at: Option<DateTime<Utc>>,
    /// Default `normal`.
    #[serde(default)]
    pub priority: Priority,
    /// A customer the caller sees.
    pub customer_id: Option<i64>,
    /// Leaders and admins: active users of their subtree (1–200); managers: only themself. Default: the
    /// caller.
    pub assignee_ids: Option<Vec<i64>>,
}

/// Body of `PATCH /tasks/{id}` (creator only, open tasks only).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    /// 1–200 characters (not `null`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    /// Up to 4000 characters; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Due time (RFC 3339, in the future); `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::instant_in_patch")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// Priority (not `null`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<Option<Priority>>,
    /// A customer the caller sees; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub customer_id: Option<Option<i64>>,
}

/// Query of `GET /tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTasksQuery {
    /// `assigned`: tasks assigned to the caller; `created`: tasks the caller created; default both.
    pub role: Option<TaskRole>,
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Which side of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskRole {
    /// Assigned to the caller.
    Assigned,
    /// Created by the caller.
    Created,
}

/// Who is looking at a task: its creator and overseeing leaders see every assignee, an assignee their part.
#[derive(Debug, Clone, Copy)]
struct Viewer {
    user_id: i64,
    oversees: bool,
}

impl Viewer {
    fn of(caller: &Caller) -> Self {
        Self {
            user_id: caller.user_id,
            oversees: caller.scope().reach == Reach::Subtree,
        }
    }
}

fn respond(t: Task, all: &[Assignee], viewer: Viewer) -> TaskResponse {
    let mine: Vec<&Assignee> = all.iter().filter(|a| a.task_id == t.id).collect();
    // An overseeing leader who is also an assignee (given the task from above) sees only their part.
    let assignee = mine.iter().any(|a| a.user_id == viewer.user_id);
    let shown: Vec<&Assignee> = if t.created_by == viewer.user_id || (viewer.oversees && !assignee)
    {
        mine
    } else {
        mine.into_iter()
            .filter(|a| a.user_id == viewer.user_id)
            .collect()
    };
    let done = shown.iter().filter(|a| a.status == "done").count();
    TaskResponse {
        id: t.id,
        title: t.title,
        description: t.description,
        due_at: t.due_at.map(utc),
        priority: t.priority,
        customer_id: t.customer_id,
        created_by: t.created_by,
        org_id: t.org_id,
        status: t.status,
        done_count: i64::try_from(done).unwrap_or(0),
        assignee_count: i64::try_from(shown.len()).unwrap_or(0),
        assignees: shown
            .into_iter()
            .map(|a| AssigneeResponse {
                user_id: a.user_id,
                name: a.name.clone(),
                status: a.status.clone(),
                done_at: a.done_at.map(utc),
            })
            .collect(),
        created_at: utc(t.created_at),
        updated_at: utc(t.updated_at),
    }
}

fn missing() -> AppError {
    AppError::NotFound(ErrorCode::TaskNotFound)
}

fn load(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<TaskResponse> {
    let t = tasks::find_visible(c, &caller.scope(), id)?.ok_or_else(missing)?;
    let a = tasks::assignees_of(c, &[t.id])?;
    Ok(respond(t, &a, Viewer::of(caller)))
}

/// 422 `customer_id` `not_found` unless the caller sees the customer.
fn check_customer(c: &mut DbConn, caller: &Caller, id: Option<i64>) -> AppResult<()> {
    if let Some(id) = id
        && scope::find_customer(c, &caller.scope(), id)?.is_none()
    {
        return Err(AppError::field(
            "customer_id",
            "not_found",
            "no such customer in your scope",
        ));
    }
    Ok(())
}

/// The assignees of a new task: validated against the caller's role and subtree.
fn check_assignees(c: &mut DbConn, caller: &Caller, ids: Option<Vec<i64>>) -> AppResult<Vec<i64>> {
    let mut ids = ids.unwrap_or_else(|| vec![caller.user_id]);
    let mut seen = Vec::with_capacity(ids.len());
    ids.retain(|i| {
        let new = !seen.contains(i);
        seen.push(*i);
        new
    });
    if ids.is_empty() {
        return Err(AppError::field(
            "assignee_ids",
            "required",
            "at least one assignee",
        ));
    }
    if ids.len() > MAX_ASSIGNEES {
        return Err(AppError::field(
            "assignee_ids",
            "too_many",
            format!("at most {MAX_ASSIGNEES}"),
        ));
    }
    if caller.role == Role::Manager {
        if ids != [caller.user_id] {
            return Err(AppError::field(
                "assignee_ids",
                "not_allowed",
                "a manager assigns tasks only to themself",
            ));
        }
        return Ok(ids);
    }
    let found = tasks::active_in_subtree(c, &caller.org_path, &ids)?;
    if let Some(bad) = ids.iter().find(|i| !found.contains(i)) {
        return Err(AppError::field(
            "assignee_ids",
            "not_found",
            format!("user {bad} is not an active user of your org subtree"),
        ));
    }
    Ok(ids)
}

/// A description: trimmed, up to 4000 characters, line breaks and tabs allowed (it is prose), other
/// control characters not; empty counts as absent.
fn description(errs: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    crate::domain::validate::opt_prose(errs, "description", value, MAX_DESCRIPTION)
}

/// 422 `invalid_type` for a `null` given to a field that cannot be cleared.
fn not_null<T>(errs: &mut FieldErrors, field: &str) -> Option<T> {
    errs.add(field, "invalid_type", "must not be null");
    None
}

fn future(
    errs: &mut FieldErrors,
    at: Option<DateTime<Utc>>,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let at = at.map(|t| chrono::SubsecRound::trunc_subsecs(t.naive_utc(), 6));
    if at.is_some_and(|t| t <= now) {
        errs.add("due_at", "out_of_range", "must be in the future");
    }
    at
}

fn create_tx(
    c: &mut DbConn,
    caller: &Caller,
    req: CreateTaskRequest,
    due: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    check_customer(c, caller, req.customer_id)?;
    let assignees = check_assignees(c, caller, req.assignee_ids)?;
    let new = NewTask {
        title: req.title,
        description: req.description,
        due_at: due,
        priority: req.priority.as_str().to_owned(),
        customer_id: req.customer_id,
        created_by: caller.user_id,
        org_id: caller.org_id,
        status: "open".to_owned(),
        created_at: now,
        updated_at: now,
    };
    let id = tasks::insert(c, &new, &assignees)?;
    let others = assignees.iter().copied().filter(|&u| u != caller.user_id);
    let planned = Planned::events(
        others,
        Kind::TaskAssigned,
        "task_assigned",
        ("task", id),
        now,
    );
    notify(c, &planned, now)?;
    audit::record(
        c,
        caller,
        Entry::new("task.create", "task", id, &caller.org_path),
        now,
    )?;
    Answer::new(StatusCode::CREATED, &load(c, caller, id)?)
}

/// Creates a task. Leaders and admins assign it to active users of their subtree (anyone else: 422
/// `assignee_ids` `not_found`); managers to themself only (others: 422 `assignee_ids` `not_allowed`).
/// Each assignee other than the creator is notified at once. Offline-safe: a retry with the same
/// `Idempotency-Key` answers the first result without creating (or notifying) again.
#[utoipa::path(
    tag = "tasks",
    request_body = CreateTaskRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replay key")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TaskResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/tasks")]
async fn create_task(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CreateTaskRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: mut req,
        key,
        digest,
    } = body;
    let now = state.now();
    let mut errs = FieldErrors::default();
    req.title = validate::text(&mut errs, "title", &req.title, MAX_TITLE);
    req.description = description(&mut errs, req.description.as_deref());
    let due = future(&mut errs, req.due_at, now);
    errs.finish()?;
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                create_tx(c, &caller, req, due, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// The caller's tasks — assigned to them or created by them, and for leaders and admins every task of their
/// subtree — newest first (`role` narrows to one side).
#[utoipa::path(
    tag = "tasks",
    params(ListTasksQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TaskList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/tasks")]
async fn list_tasks(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListTasksQuery>,
) -> AppResult<web::Json<TaskList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let filter = TaskFilter {
        assigned: q.role.map(|r| r == TaskRole::Assigned),
        status: q.status.map(|s| s.as_str().to_owned()),
    };
    let now = state.now();
    let (rows, assignees, me) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let rows = tasks::list(c, &caller.scope(), &filter, before, limit + 1)?;
            let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
            let viewer = Viewer::of(&caller);
            Ok((rows, tasks::assignees_of(c, &ids)?, viewer))
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |t| t.id);
    let items = rows
        .into_iter()
        .map(|t| respond(t, &assignees, me))
        .collect();
    Ok(web::Json(TaskList { items, next_cursor }))
}

/// One task the caller created or is assigned (else 404 `task_not_found`).
#[utoipa::path(
    tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TaskResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/tasks/{id}")]
async fn get_task(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<TaskResponse>> {
    let now = state.now();
    let t = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            load(c, &caller, id.0)
        })
        .await?;
    Ok(web::Json(t))
}

/// The task if the caller created it (an assignee: 403) and it is open (else 409 `task_closed`).
fn own_open(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<Task> {
    let t = tasks::find_visible(c, &caller.scope(), id)?.ok_or_else(missing)?;
    if t.created_by != caller.user_id {
        return Err(AppError::Forbidden);
    }
    if t.status != "open" {
        return Err(AppError::Conflict(ErrorCode::TaskClosed));
    }
    Ok(t)
}

fn update_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    changes: TaskChanges,
    now: NaiveDateTime,
) -> AppResult<TaskResponse> {
    let t = own_open(c, caller, id)?;
    if let Some(customer) = changes.customer_id {
        check_customer(c, caller, customer)?;
    }
    let new_due = changes.due_at.is_some_and(|d| d != t.due_at);
    let changed = tasks::update(
        c,
        id,
        &TaskChanges {
            updated_at: Some(now),
            ..changes
        },
    )?;
    if changed == 0 {
        // Closed since `own_open` read it (the last assignee finished, or a concurrent cancel).
        return Err(AppError::Conflict(ErrorCode::TaskClosed));
    }
    if new_due {
        tasks::forget_reminders(c, id)?;
    }
    audit::record(
        c,
        caller,
        Entry::new("task.update", "task", id, &caller.org_path),
        now,
    )?;
    load(c, caller, id)
}

/// Changes an open task (its creator only: an assignee gets 403). A new due time replaces the pending due
/// reminders.
#[utoipa::path(
    tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    request_body = UpdateTaskRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TaskResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/tasks/{id}")]
async fn update_task(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateTaskRequest>,
) -> AppResult<web::Json<TaskResponse>> {
    let req = body.0;
    let now = state.now();
    let mut errs = FieldErrors::default();
    let changes = TaskChanges {
        title: req.title.and_then(|t| match t {
            Some(t) => Some(validate::text(&mut errs, "title", &t, MAX_TITLE)),
            None => not_null(&mut errs, "title"),
        }),
        description: req
            .description
            .map(|d| description(&mut errs, d.as_deref())),
        due_at: req.due_at.map(|d| future(&mut errs, d, now)),
        priority: req.priority.and_then(|p| match p {
            Some(p) => Some(p.as_str().to_owned()),
            None => not_null(&mut errs, "priority"),
        }),
        customer_id: req.customer_id,
        updated_at: None,
    };
    errs.finish()?;
    let t = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            update_tx(c, &caller, id.0, changes, now)
        })
        .await?;
    Ok(web::Json(t))
}

fn done_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    now: NaiveDateTime,
) -> AppResult<TaskResponse> {
    let t = tasks::find_visible(c, &caller.scope(), id)?.ok_or_else(missing)?;
    let mine = tasks::assignees_of(c, &[id])?
        .into_iter()
        .find(|a| a.user_id == caller.user_id);
    let Some(mine) = mine else {
        // The creator of a task assigned to others.
        return Err(AppError::Forbidden);
    };
    if t.status == "cancelled" {
        return Err(AppError::Conflict(ErrorCode::TaskClosed));
    }
    if mine.status == "open" {
        // Lock first, then count: see `tasks::lock_open`. A task closed meanwhile (cancelled) is 409.
        if tasks::lock_open(c, id, now)? == 0 {
            return Err(AppError::Conflict(ErrorCode::TaskClosed));
        }
        if tasks::assignee_done(c, id, caller.user_id, now)? == 0 {
            // The same user's concurrent request got there first.
            return load(c, caller, id);
        }
        tasks::cancel_reminders(c, id, Some(caller.user_id), now)?;
        if tasks::open_assignees(c, id)? == 0 {
            tasks::close(c, id, "done", now)?;
        }
        audit::record(
            c,
            caller,
            Entry::new("task.done", "task", id, &caller.org_path),
            now,
        )?;
    }
    load(c, caller, id)
}

/// Marks the caller's part of a task done (assignees only: the creator of a task assigned to others gets
/// 403; a cancelled task 409 `task_closed`; again: no change). The task is done when every assignee is.
#[utoipa::path(
    tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TaskResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/tasks/{id}/done")]
async fn task_done(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<TaskResponse>> {
    let now = state.now();
    let t = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            done_tx(c, &caller, id.0, now)
        })
        .await?;
    Ok(web::Json(t))
}

/// Cancels an open task (its creator only: an assignee gets 403; a closed task 409 `task_closed`); its
/// pending reminders are cancelled.
#[utoipa::path(
    tag = "tasks",
    params(("id" = i64, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TaskResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/tasks/{id}/cancel")]
async fn cancel_task(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<TaskResponse>> {
    let now = state.now();
    let t = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            own_open(c, &caller, id.0)?;
            // Conditional: the last assignee may have finished it since `own_open` read it.
            if tasks::close(c, id.0, "cancelled", now)? == 0 {
                return Err(AppError::Conflict(ErrorCode::TaskClosed));
            }
            tasks::cancel_reminders(c, id.0, None, now)?;
            audit::record(
                c,
                &caller,
                Entry::new("task.cancel", "task", id.0, &caller.org_path),
                now,
            )?;
            load(c, &caller, id.0)
        })
        .await?;
    Ok(web::Json(t))
}
