//! `/api/v1/me`: the caller's own profile (with the path of orgs above them) and password change.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::auth::verify_guess;
use super::extract::ApiJson;
use super::orgs::OrgRef;
use super::users::{UserResponse, hash_password};
use crate::auth::caller::Auth;
use crate::auth::guard::Guard;
use crate::db::repo::audit::Entry;
use crate::db::repo::{audit, sessions, users};
use crate::domain::user::check_password;
use crate::error::{AppError, AppResult, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_me).service(change_password);
}

/// The caller's profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The caller as a user record.
    #[serde(flatten)]
    pub user: UserResponse,
    /// The orgs from the head office down to the caller's own, e.g. 总行 › 南京分行 › 鼓楼支行.
    pub org_path: Vec<OrgRef>,
}

/// Body of `PUT /me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password: 8–128 characters with a letter and a digit, different from the current one.
    pub new_password: String,
}

/// The caller's profile: role, org with its path, grade.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = MeResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/me")]
async fn get_me(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<MeResponse>> {
    let now = state.now();
    let (user, org, mut path) = state.db.read(move |c| auth.load_with_chain(c, now)).await?;
    path.sort_by_key(|o| o.path.len());
    let org_path = path.iter().map(OrgRef::from_row).collect();
    Ok(web::Json(MeResponse {
        user: UserResponse::from_rows(user, &org),
        org_path,
    }))
}

/// Changes the caller's password (the current one is required) and ends their other sessions. The check of
/// the current password counts against the same lockout as a login: five wrong guesses within 15 minutes
/// lock the employee number (429 with `Retry-After`). This is what a user with a temporary password must do
/// first.
#[utoipa::path(
    tag = "me",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password or weak new one", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong passwords", body = ProblemBody, content_type = "application/problem+json"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[put("/me/password")]
async fn change_password(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<ChangePasswordRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    if req.current_password.is_empty() {
        errs.add("current_password", "required", "must not be empty");
    }
    check_password(&mut errs, "new_password", &req.new_password);
    if req.new_password == req.current_password {
        errs.add(
            "new_password",
            "same_as_current",
            "must differ from the current password",
        );
    }
    errs.finish()?;
    let now = state.now();
    let a = auth.clone();
    let per_address = state.settings.login_address_limit;
    let reserved = state
        .db
        .write(move |c| {
            let (caller, user, _) = a.load_with_user(c, now)?;
            let guard = Guard::new(
                &caller.employee_no,
                caller.meta.client_ip.as_deref(),
                per_address,
            );
            if let Err(secs) = guard.reserve(c, now)? {
                refused(c, &caller, "auth.password_check_locked", now)?;
                return Ok(Err(secs));
            }
            Ok(Ok((guard, user)))
        })
        .await?;
    let (guard, user) = match reserved {
        Ok(r) => r,
        Err(retry_after) => {
            state.metrics.auth_failure("locked");
            return Err(AppError::RateLimited { retry_after });
        }
    };
    if !verify_guess(Some(&user), req.current_password).await? {
        state.metrics.auth_failure("wrong");
        let a = auth.clone();
        state
            .db
            .write(move |c| {
                let caller = a.load_temporary(c, now)?;
                refused(c, &caller, "auth.password_check_failed", now)
            })
            .await?;
        return Err(AppError::Validation(vec![crate::error::FieldError::new(
            "current_password",
            "wrong_password",
            "the current password is wrong",
        )]));
    }
    let hash = hash_password(req.new_password).await?;
    state
        .db
        .write(move |c| {
            let caller = auth.load_temporary(c, now)?;
            guard.right(c, now)?;
            users::set_password(c, caller.user_id, &hash, false, now)?;
            sessions::revoke_all_for_user(c, caller.user_id, Some(&caller.session_id), now)?;
            let id = caller.user_id.to_string();
            audit::record(
                c,
                &caller,
                Entry::new("user.change_password", "user", id, &caller.org_path),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Audits a refused check of the caller's current password.
fn refused(
    c: &mut crate::db::DbConn,
    caller: &crate::auth::caller::Caller,
    action: &str,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    let id = caller.user_id.to_string();
    audit::record(
        c,
        caller,
        Entry::new(action, "user", id, &caller.org_path),
        now,
    )?;
    Ok(())
}
