//! `/api/v1/users`: admins write in their subtree, leaders read it, a manager reads only themself.
//! Deactivating a user or resetting their password ends all their sessions at once.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiJson, ApiQuery, PathId, double_option, page_params};
use super::orgs::OrgRef;
use super::rendered;
use super::utc;
use crate::auth::caller::{Auth, Caller};
use crate::auth::{password, tokens};
use crate::db::DbConn;
use crate::db::models::{NewUser, Org, OrgBrief, User, UserCard, UserChanges};
use crate::db::repo::audit::Entry;
use crate::db::repo::users::{UserFilter, UserKey};
use crate::db::repo::{audit, orgs, sessions, users};
use crate::domain::paging::finish_page;
use crate::domain::user::{Role, check_employee_no, check_password, check_phone};
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users)
        .service(create_user)
        .service(get_user)
        .service(update_user)
        .service(reset_password);
}

/// A user as others (and they themselves) see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// User id.
    pub id: i64,
    /// Employee number (login name), unique.
    pub employee_no: String,
    /// Full name.
    pub name: String,
    /// Mobile phone.
    pub phone: Option<String>,
    /// Role.
    pub role: Role,
    /// The user's org.
    pub org: OrgRef,
    /// Grade on the ladder (e.g. `senior`), if graded.
    pub grade: Option<String>,
    /// False once deactivated.
    pub active: bool,
    /// True after an admin reset: the app should ask for a new password.
    pub must_change_password: bool,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl UserResponse {
    /// From a user row and its org row.
    pub fn from_rows(u: User, o: &Org) -> Self {
        Self::from_card(u.into(), o.into())
    }

    /// From the list's columns of a user and their org.
    pub fn from_card(u: UserCard, o: OrgBrief) -> Self {
        Self {
            id: u.id,
            employee_no: u.employee_no,
            name: u.name,
            phone: u.phone,
            role: Role::parse(&u.role).unwrap_or(Role::Manager),
            org: OrgRef::from_brief(o),
            grade: u.grade,
            active: u.active,
            must_change_password: u.must_change_password,
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// The users, by id.
    pub items: Vec<UserResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    /// Only users of this org (not below it).
    pub org_id: Option<i64>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only active (`true`) or deactivated (`false`) users.
    pub active: Option<bool>,
    /// Name or employee-number prefix.
    pub q: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Employee number: 2–32 letters, digits, `-`, `_`; unique.
    pub employee_no: String,
    /// Full name, 1–50 characters.
    pub name: String,
    /// 11-digit mainland mobile number.
    pub phone: Option<String>,
    /// Role.
    pub role: Role,
    /// Org in the caller's subtree.
    pub org_id: i64,
    /// Grade code, up to 32 characters.
    pub grade: Option<String>,
    /// Initial password (8–128, a letter and a digit). Omit to get a generated temporary one.
    pub password: Option<String>,
}

/// Answer of `POST /users`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUserResponse {
    /// The new user.
    pub user: UserResponse,
    /// The generated temporary password, shown once, when none was given.
    pub temporary_password: Option<String>,
}

/// Body of `PATCH /users/{id}`: every field optional; `null` clears `phone` or `grade`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// Full name.
    pub name: Option<String>,
    /// Mobile phone; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Role.
    pub role: Option<Role>,
    /// Move to this org (in the caller's subtree).
    pub org_id: Option<i64>,
    /// Grade; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub grade: Option<Option<String>>,
    /// `false` deactivates the user and ends their sessions.
    pub active: Option<bool>,
}

/// Answer of a password reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetPasswordResponse {
    /// The new temporary password, shown once; the user must change it.
    pub temporary_password: String,
}

/// Lists the users the caller may see.
#[utoipa::path(
    tag = "users",
    params(ListUsersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = UserList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListUsersQuery>,
) -> AppResult<HttpResponse> {
    let q = query.0;
    let (limit, after) = page_params(q.limit, q.cursor.as_deref())?;
    let filter = UserFilter {
        org_id: q.org_id,
        role: q.role.map(|r| r.as_str().to_owned()),
        active: q.active,
        q: q.q
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned()),
    };
    let now = state.now();
    let cache = state.clone();
    // The page as keys; rows already rendered at that version come from the cache, the others (through the
    // scope again) from the database. A user's version is the newer of their row's and their org's: both
    // come from one increasing counter, so any change to either gives a version never seen before.
    let (page, next_cursor, rows) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let keys = users::list(c, &scope, &filter, after, limit + 1)?;
            let (keys, next_cursor) = finish_page(keys, limit, |k| k.0);
            let (page, missing) =
                rendered::look_up(&cache.user_rows, keys.into_iter().map(version));
            let rows = if missing.is_empty() {
                Vec::new()
            } else {
                users::cards(c, &scope, &missing)?
            };
            Ok((page, next_cursor, rows))
        })
        .await?;
    let body = rendered::fill(
        &state.user_rows,
        page,
        rows,
        |(_, _, key)| version(*key),
        |(u, o, _)| serde_json::to_vec(&UserResponse::from_card(u, o)),
        next_cursor.as_deref(),
    )?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// The cache key of a user's list row: their id and both versions (not the newer of the two: on PostgreSQL
/// change numbers commit in any order, so a new version of one may be below the other).
fn version((id, user_seq, org_seq): UserKey) -> (i64, (i64, i64)) {
    (id, (user_seq, org_seq))
}

/// One user in the caller's scope.
#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = UserResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<UserResponse>> {
    let now = state.now();
    let (u, o) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            users::find(c, &scope, id.0)?.ok_or(AppError::NotFound(ErrorCode::UserNotFound))
        })
        .await?;
    Ok(web::Json(UserResponse::from_rows(u, &o)))
}

/// Hashes off the async workers.
pub async fn hash_password(plain: String) -> AppResult<String> {
    web::block(move || password::hash(&plain))
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .map_err(AppError::Internal)
}

fn org_for_user(c: &mut DbConn, caller: &Caller, org_id: i64) -> AppResult<Org> {
    orgs::find(c, &caller.scope(), org_id)?
        .ok_or_else(|| AppError::field("org_id", "not_found", "no such org in your subtree"))
}

/// Creates a user in the caller's subtree (admin).
#[utoipa::path(
    tag = "users",
    request_body = CreateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedUserResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<CreateUserRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let employee_no = check_employee_no(&mut errs, "employee_no", &req.employee_no);
    let name = validate::text(&mut errs, "name", &req.name, 50);
    let phone = req
        .phone
        .as_deref()
        .map(|p| check_phone(&mut errs, "phone", p));
    let grade = validate::opt_text(&mut errs, "grade", req.grade.as_deref(), 32);
    if let Some(p) = &req.password {
        check_password(&mut errs, "password", p);
    }
    errs.finish()?;
    let now = state.now();
    // Check the role before spending a hash on the request.
    let a = auth.clone();
    state
        .db
        .read(move |c| a.load(c, now)?.require_admin())
        .await?;
    let temporary = req.password.is_none().then(tokens::random_password);
    let hash = hash_password(
        req.password
            .clone()
            .or_else(|| temporary.clone())
            .unwrap_or_default(),
    )
    .await?;
    let must_change = temporary.is_some();
    let (user, org) = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let org = org_for_user(c, &caller, req.org_id)?;
            let new = NewUser {
                employee_no,
                name,
                phone,
                role: req.role.as_str().into(),
                org_id: org.id,
                grade,
                active: true,
                password_hash: hash,
                must_change_password: must_change,
                created_at: now,
                updated_at: now,
            };
            let id = users::insert(c, &new)?;
            audit::record(
                c,
                &caller,
                Entry::new("user.create", "user", id, &org.path),
                now,
            )?;
            users::find(c, &caller.scope(), id)?.ok_or(AppError::NotFound(ErrorCode::UserNotFound))
        })
        .await?;
    let user = UserResponse::from_rows(user, &org);
    Ok(HttpResponse::Created().json(CreatedUserResponse {
        user,
        temporary_password: temporary,
    }))
}

fn user_changes(req: &UpdateUserRequest) -> AppResult<UserChanges> {
    let mut errs = FieldErrors::default();
    let changes = UserChanges {
        name: req
            .name
            .as_deref()
            .map(|v| validate::text(&mut errs, "name", v, 50)),
        phone: req
            .phone
            .as_ref()
            .map(|p| p.as_deref().map(|v| check_phone(&mut errs, "phone", v))),
        role: req.role.map(|r| r.as_str().to_owned()),
        org_id: req.org_id,
        grade: req
            .grade
            .as_ref()
            .map(|g| validate::opt_text(&mut errs, "grade", g.as_deref(), 32)),
        active: req.active,
        updated_at: None,
    };
    errs.finish()?;
    Ok(changes)
}

/// The names of the fields a PATCH touched (audit detail: names only, never values such as phones).
fn changed_fields(req: &UpdateUserRequest) -> String {
    let fields = [
        ("name", req.name.is_some()),
        ("phone", req.phone.is_some()),
        ("role", req.role.is_some()),
        ("org_id", req.org_id.is_some()),
        ("grade", req.grade.is_some()),
        ("active", req.active.is_some()),
    ];
    let names: Vec<&str> = fields
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    serde_json::json!({ "fields": names }).to_string()
}

fn apply_update(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    req: &UpdateUserRequest,
    changes: UserChanges,
    now: NaiveDateTime,
) -> AppResult<(User, Org)> {
    let scope = caller.scope();
    let (target, _) =
        users::find(c, &scope, id)?.ok_or(AppError::NotFound(ErrorCode::UserNotFound))?;
    if target.id == caller.user_id
        && (req.active == Some(false) || req.role.is_some_and(|r| r != Role::Admin))
    {
        let field = if req.active == Some(false) {
            "active"
        } else {
            "role"
        };
        return Err(AppError::field(
            field,
            "cannot_change_self",
            "you cannot deactivate or demote yourself",
        ));
    }
    if let Some(org_id) = req.org_id {
        org_for_user(c, caller, org_id)?;
    }
    users::update(
        c,
        target.id,
        &UserChanges {
            updated_at: Some(now),
            ..changes
        },
    )?;
    if req.active == Some(false) {
        sessions::revoke_all_for_user(c, target.id, None, now)?;
    }
    let (user, org) =
        users::find(c, &scope, target.id)?.ok_or(AppError::NotFound(ErrorCode::UserNotFound))?;
    let detail = changed_fields(req);
    audit::record(
        c,
        caller,
        Entry::new("user.update", "user", user.id, &org.path).with_detail(detail),
        now,
    )?;
    Ok((user, org))
}

/// Changes a user in the caller's subtree (admin). `active: false` ends all their sessions.
#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UpdateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = UserResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/users/{id}")]
async fn update_user(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateUserRequest>,
) -> AppResult<web::Json<UserResponse>> {
    let req = body.0;
    let changes = user_changes(&req)?;
    let now = state.now();
    let (u, o) = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            apply_update(c, &caller, id.0, &req, changes, now)
        })
        .await?;
    Ok(web::Json(UserResponse::from_rows(u, &o)))
}

/// Gives a user in the caller's subtree a temporary password and ends their sessions (admin). Until they
/// change it, the user can do nothing but `/me`, `PUT /me/password` and logout (403
/// `password_change_required`). An admin changes their own password with `PUT /me/password` (403
/// `reset_own_password` here).
#[utoipa::path(
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ResetPasswordResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/users/{id}/reset-password")]
async fn reset_password(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<ResetPasswordResponse>> {
    let now = state.now();
    let a = auth.clone();
    state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            caller.require_admin()?;
            users::find(c, &caller.scope(), id.0)?
                .ok_or(AppError::NotFound(ErrorCode::UserNotFound))?;
            if caller.user_id == id.0 {
                return Err(AppError::Denied(ErrorCode::ResetOwnPassword));
            }
            Ok(())
        })
        .await?;
    let temporary = tokens::random_password();
    let hash = hash_password(temporary.clone()).await?;
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let (target, org) = users::find(c, &caller.scope(), id.0)?
                .ok_or(AppError::NotFound(ErrorCode::UserNotFound))?;
            if caller.user_id == target.id {
                return Err(AppError::Denied(ErrorCode::ResetOwnPassword));
            }
            users::set_password(c, target.id, &hash, true, now)?;
            sessions::revoke_all_for_user(c, target.id, None, now)?;
            audit::record(
                c,
                &caller,
                Entry::new("user.reset_password", "user", target.id, &org.path),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(web::Json(ResetPasswordResponse {
        temporary_password: temporary,
    }))
}
