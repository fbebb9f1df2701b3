//! `/api/v1/me`: the caller's own profile (with the path of orgs above them) and password change.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use super::orgs::OrgRef;
use super::users::{UserResponse, hash_password};
use crate::auth::caller::Auth;
use crate::auth::password;
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

/// Changes the caller's password (the current one is required) and ends their other sessions.
#[utoipa::path(
    tag = "me",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password or weak new one", body = ProblemBody, content_type = "application/problem+json"),
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
    let current = req.current_password;
    let ok = state
        .db
        .read(move |c| {
            let (_, user, _) = a.load_with_user(c, now)?;
            Ok(password::verify(&current, &user.password_hash))
        })
        .await?;
    if !ok {
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
            let caller = auth.load(c, now)?;
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
