//! `/api/v1/auth`: login, refresh-token rotation with reuse detection, logout.

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use super::users::UserResponse;
use crate::auth::caller::{Auth, request_meta};
use crate::auth::{password, tokens};
use crate::db::DbConn;
use crate::db::models::{LoginThrottle, NewAuditEvent, Org, RefreshToken, Session, User};
use crate::db::repo::audit::Entry;
use crate::db::repo::{audit, sessions, throttle, users};
use crate::domain::login::{ThrottleState, after_failure, retry_after};
use crate::domain::user::PASSWORD_MAX;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;
use crate::telemetry::RequestMeta;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login).service(refresh).service(logout);
}

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Employee number.
    pub employee_no: String,
    /// Password.
    pub password: String,
}

/// Body of `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it is spent by this call.
    pub refresh_token: String,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`, valid `expires_in` seconds.
    pub access_token: String,
    /// Opaque, single-use; exchange at `/auth/refresh` for a new pair. Valid 30 days.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The logged-in user.
    pub user: UserResponse,
}

fn to_state(t: LoginThrottle) -> ThrottleState {
    ThrottleState {
        failures: t.failures,
        window_start: t.window_start,
        locked_until: t.locked_until,
    }
}

/// What the read phase of a login found.
enum Checked {
    Locked(u64),
    Failed,
    Ok(Box<User>),
}

fn check_login(
    c: &mut DbConn,
    employee_no: &str,
    pw: &str,
    now: NaiveDateTime,
) -> AppResult<Checked> {
    let state = throttle::get(c, employee_no)?.map(to_state);
    if let Some(secs) = retry_after(state.as_ref(), now) {
        return Ok(Checked::Locked(secs));
    }
    Ok(match users::find_by_employee_no(c, employee_no)? {
        Some(u) if password::verify(pw, &u.password_hash) && u.active => Checked::Ok(Box::new(u)),
        Some(_) => Checked::Failed,
        None => {
            password::verify_dummy(pw);
            Checked::Failed
        }
    })
}

fn new_refresh(
    session_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> (String, RefreshToken) {
    let token = tokens::random_token();
    let row = RefreshToken {
        token_hash: tokens::digest(&token),
        session_id: session_id.to_owned(),
        created_at: now,
        expires_at,
        used_at: None,
    };
    (token, row)
}

fn session_event(
    action: &str,
    meta: &RequestMeta,
    user_id: i64,
    org_path: &str,
    sid: &str,
    now: NaiveDateTime,
) -> NewAuditEvent {
    NewAuditEvent {
        actor_id: Some(user_id),
        action: action.into(),
        entity: "session".into(),
        entity_id: sid.to_owned(),
        org_path: org_path.to_owned(),
        at: now,
        request_id: meta.request_id.clone(),
        client_ip: meta.client_ip.clone(),
        detail: None,
    }
}

/// Logs in with employee number and password. Five failures within 15 minutes lock the employee number
/// for 15 minutes (429 with `Retry-After`); the answer never tells whether the employee number exists.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "OK", body = TokenResponse),
        (status = 401, description = "Wrong employee number or password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated failures", body = ProblemBody, content_type = "application/problem+json"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/auth/login")]
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let LoginRequest {
        employee_no,
        password: pw,
    } = body.0;
    let employee_no = employee_no.trim().to_owned();
    let mut errs = FieldErrors::default();
    if employee_no.is_empty() || employee_no.len() > 64 {
        errs.add("employee_no", "invalid_format", "1 to 64 characters");
    }
    if pw.is_empty() || pw.chars().count() > PASSWORD_MAX {
        errs.add("password", "invalid_format", "1 to 128 characters");
    }
    errs.finish()?;
    let now = state.now();
    let no = employee_no.clone();
    let checked = state
        .db
        .read(move |c| check_login(c, &no, &pw, now))
        .await?;
    let user = match checked {
        Checked::Locked(secs) => return Err(AppError::RateLimited { retry_after: secs }),
        Checked::Failed => {
            state
                .db
                .write(move |c| {
                    let prev = throttle::get(c, &employee_no)?.map(to_state);
                    let next = after_failure(prev, now);
                    throttle::put(
                        c,
                        &LoginThrottle {
                            employee_no,
                            failures: next.failures,
                            window_start: next.window_start,
                            locked_until: next.locked_until,
                        },
                    )?;
                    Ok(())
                })
                .await?;
            return Err(AppError::Unauthorized(ErrorCode::InvalidCredentials));
        }
        Checked::Ok(u) => *u,
    };
    let meta = request_meta(&req);
    let session_id = uuid::Uuid::new_v4().to_string();
    let expires =
        now + Duration::days(i64::try_from(state.settings.refresh_token_ttl_days).unwrap_or(30));
    let (refresh_token, row) = new_refresh(&session_id, now, expires);
    let sid = session_id.clone();
    let (user, org) = state
        .db
        .write(move |c| {
            let session = Session {
                id: sid.clone(),
                user_id: user.id,
                created_at: now,
                expires_at: expires,
                revoked_at: None,
            };
            sessions::create(c, &session, &row)?;
            throttle::clear(c, &user.employee_no)?;
            let (user, org) = users::find_for_session(c, user.id)?
                .ok_or(AppError::Unauthorized(ErrorCode::InvalidCredentials))?;
            audit::insert(
                c,
                session_event("auth.login", &meta, user.id, &org.path, &sid, now),
            )?;
            Ok((user, org))
        })
        .await?;
    let access_token = state
        .jwt
        .issue(user.id, &session_id, state.clock.now().timestamp())?;
    Ok(web::Json(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        user: UserResponse::from_rows(user, &org),
    }))
}

/// What a refresh attempt came to (a detected reuse must commit its revocation, so it is not an `Err`).
enum Refreshed {
    Ok(Box<(User, Org)>, String),
    Reused,
    Invalid,
}

fn rotate(
    c: &mut DbConn,
    digest: &str,
    next: RefreshToken,
    meta: &RequestMeta,
    now: NaiveDateTime,
) -> AppResult<Refreshed> {
    let Some((token, session)) = sessions::find_refresh(c, digest)? else {
        return Ok(Refreshed::Invalid);
    };
    if session.revoked_at.is_some() || session.expires_at <= now || token.expires_at <= now {
        return Ok(Refreshed::Invalid);
    }
    if token.used_at.is_some() || !sessions::use_refresh(c, digest, now)? {
        // Someone replayed a spent token: either it was stolen or the legitimate pair was. End the session.
        sessions::revoke(c, &session.id, now)?;
        let path = users::find_for_session(c, session.user_id)?
            .map(|(_, o)| o.path)
            .unwrap_or_else(|| "/".into());
        audit::insert(
            c,
            session_event(
                "auth.refresh_reuse",
                meta,
                session.user_id,
                &path,
                &session.id,
                now,
            ),
        )?;
        tracing::warn!(session.id = %session.id, user.id = session.user_id, "refresh token reuse: session revoked");
        return Ok(Refreshed::Reused);
    }
    let Some((user, org)) = users::find_for_session(c, session.user_id)? else {
        return Ok(Refreshed::Invalid);
    };
    if !user.active {
        return Ok(Refreshed::Invalid);
    }
    sessions::add_refresh(
        c,
        &RefreshToken {
            session_id: session.id.clone(),
            ..next
        },
    )?;
    Ok(Refreshed::Ok(Box::new((user, org)), session.id))
}

/// Exchanges a refresh token for a new pair. The old token is dead afterwards; presenting a spent token
/// again ends the whole session (reuse detection).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "OK", body = TokenResponse),
        (status = 401, description = "Unknown, expired, spent or revoked refresh token", body = ProblemBody, content_type = "application/problem+json"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RefreshRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let presented = body.0.refresh_token;
    if presented.is_empty() || presented.len() > 256 {
        return Err(AppError::field(
            "refresh_token",
            "invalid_format",
            "1 to 256 characters",
        ));
    }
    let now = state.now();
    let expires =
        now + Duration::days(i64::try_from(state.settings.refresh_token_ttl_days).unwrap_or(30));
    let (refresh_token, next) = new_refresh("", now, expires);
    let digest = tokens::digest(&presented);
    let meta = request_meta(&req);
    let outcome = state
        .db
        .write(move |c| rotate(c, &digest, next, &meta, now))
        .await?;
    let (rows, sid) = match outcome {
        Refreshed::Ok(rows, sid) => (rows, sid),
        Refreshed::Reused | Refreshed::Invalid => {
            return Err(AppError::Unauthorized(ErrorCode::InvalidRefreshToken));
        }
    };
    let (user, org) = *rows;
    let access_token = state
        .jwt
        .issue(user.id, &sid, state.clock.now().timestamp())?;
    Ok(web::Json(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        user: UserResponse::from_rows(user, &org),
    }))
}

/// Ends the caller's session: its refresh token is dead at once, its access tokens stop working.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, auth: Auth) -> AppResult<HttpResponse> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            sessions::revoke(c, &caller.session_id, now)?;
            // The session's phones stop receiving the user's pushes.
            crate::db::repo::devices::delete_for_session(c, &caller.session_id)?;
            audit::record(
                c,
                &caller,
                Entry::new(
                    "auth.logout",
                    "session",
                    &caller.session_id,
                    &caller.org_path,
                ),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
