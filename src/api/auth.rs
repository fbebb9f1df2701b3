//! `/api/v1/auth`: login, refresh-token rotation with reuse detection, logout.

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use super::users::UserResponse;
use crate::auth::caller::{Auth, request_meta};
use crate::auth::guard::Guard;
use crate::auth::{password, tokens};
use crate::db::DbConn;
use crate::db::models::{NewAuditEvent, Org, RefreshToken, Session, User};
use crate::db::repo::audit::Entry;
use crate::db::repo::{audit, orgs, sessions, users};
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

/// An audit row of a refused password check: the employee number as typed, the client address and the
/// outcome (`action`), filed under the user's org when the number exists, else under the head office.
fn refused_event(
    c: &mut DbConn,
    action: &str,
    meta: &RequestMeta,
    typed: &str,
    org_path: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<NewAuditEvent> {
    let org_path = match org_path {
        Some(p) => p.to_owned(),
        None => orgs::root_path(c)?,
    };
    Ok(NewAuditEvent {
        actor_id: None,
        action: action.into(),
        entity: "login".into(),
        entity_id: typed.to_owned(),
        org_path,
        at: now,
        request_id: meta.request_id.clone(),
        client_ip: meta.client_ip.clone(),
        detail: None,
    })
}

/// Verifies a reserved guess on a blocking thread, holding no database connection: right only for an
/// active user's password (an unknown number costs the same time).
pub async fn verify_guess(user: Option<&User>, pw: String) -> AppResult<bool> {
    let phc = user.filter(|u| u.active).map(|u| u.password_hash.clone());
    web::block(move || match phc {
        Some(phc) => password::verify(&pw, &phc),
        None => {
            // Unknown or inactive: the same work as a check, and never right.
            password::verify_dummy(&pw);
            false
        }
    })
    .await
    .map_err(|e| AppError::Unavailable(e.to_string()))
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

/// Logs in with employee number and password. Five guesses within 15 minutes lock the employee number for
/// 15 minutes, however many arrive at once (429 with `Retry-After`); a client address is locked likewise
/// after `FIELDWORK_LOGIN_ADDRESS_LIMIT` (default 30) wrong guesses over all numbers. The answer never tells
/// whether the employee number exists. Refused attempts are audited (`auth.login_failed`,
/// `auth.login_locked`) and counted in `/metrics`.
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
    let meta = request_meta(&req);
    let guard = Guard::new(
        &employee_no,
        meta.client_ip.as_deref(),
        state.settings.login_address_limit,
    );
    let (g, no, m) = (guard.clone(), employee_no.clone(), meta.clone());
    let found = state
        .db
        .write(move |c| {
            let found = users::find_for_login(c, &no)?;
            if let Err(secs) = g.reserve(c, now)? {
                let path = found.as_ref().map(|(_, o)| o.path.as_str());
                let event = refused_event(c, "auth.login_locked", &m, &no, path, now)?;
                audit::insert(c, event)?;
                return Ok(Err(secs));
            }
            Ok(Ok(found))
        })
        .await?;
    let found = match found {
        Ok(found) => found,
        Err(retry_after) => {
            state.metrics.auth_failure("locked");
            return Err(AppError::RateLimited { retry_after });
        }
    };
    if !verify_guess(found.as_ref().map(|(u, _)| u), pw).await? {
        state.metrics.auth_failure("wrong");
        let path = found.map(|(_, o)| o.path);
        let m = meta.clone();
        state
            .db
            .write(move |c| {
                let event = refused_event(
                    c,
                    "auth.login_failed",
                    &m,
                    &employee_no,
                    path.as_deref(),
                    now,
                )?;
                Ok(audit::insert(c, event)?)
            })
            .await?;
        return Err(AppError::Unauthorized(ErrorCode::InvalidCredentials));
    }
    let (user, org) = found.ok_or(AppError::Unauthorized(ErrorCode::InvalidCredentials))?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let expires =
        now + Duration::days(i64::try_from(state.settings.refresh_token_ttl_days).unwrap_or(30));
    let (refresh_token, row) = new_refresh(&session_id, now, expires);
    let sid = session_id.clone();
    let (uid, path) = (user.id, org.path.clone());
    state
        .db
        .write(move |c| {
            let session = Session {
                id: sid.clone(),
                user_id: uid,
                created_at: now,
                expires_at: expires,
                revoked_at: None,
            };
            sessions::create(c, &session, &row)?;
            guard.right(c, now)?;
            audit::insert(c, session_event("auth.login", &meta, uid, &path, &sid, now))?;
            Ok(())
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
    grace: Duration,
) -> AppResult<Refreshed> {
    let Some((token, session)) = sessions::find_refresh(c, digest)? else {
        return Ok(Refreshed::Invalid);
    };
    if session.revoked_at.is_some() || session.expires_at <= now || token.expires_at <= now {
        return Ok(Refreshed::Invalid);
    }
    if token.used_at.is_none() && sessions::use_refresh(c, digest, now)? {
        // Spent now: pairs handed to retries of the previous token, which the phone did not keep, die.
        sessions::drop_unspent(c, &session.id, digest)?;
    } else {
        // Spent before, or by a concurrent refresh just now (read again: that refresh has committed).
        let spent = sessions::find_refresh(c, digest)?.and_then(|(t, _)| t.used_at);
        let retry = match spent {
            Some(at) => now < at + grace && !sessions::moved_on(c, &session.id, at)?,
            None => false,
        };
        if !retry {
            // Someone replayed a spent token: either it was stolen or the legitimate pair was. End the
            // session.
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
        // A retry within the grace window of a refresh whose answer the phone lost: another pair for the
        // same session.
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

/// Exchanges a refresh token for a new pair. The old token is spent: presented again within the grace window
/// (`FIELDWORK_REFRESH_GRACE_SECS`, default 30 s) before the phone has used the new one, it answers with
/// another pair for the same session (a phone that lost the answer retries); presented after that, it ends
/// the whole session (reuse detection).
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
    let grace = Duration::seconds(i64::try_from(state.settings.refresh_grace_secs).unwrap_or(30));
    let outcome = state
        .db
        .write(move |c| rotate(c, &digest, next, &meta, now, grace))
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
            let caller = auth.load_temporary(c, now)?;
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
