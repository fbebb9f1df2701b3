//! The `Auth` extractor (a verified access token, no I/O) and the `Caller` it turns into once its session is
//! loaded inside the handler's database call, with the `Scope` every repo function on owned data takes.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::jwt::Claims;
use crate::db::DbConn;
use crate::db::models::{Org, User};
use crate::db::repo::sessions;
use crate::domain::user::Role;
use crate::error::{AppError, ErrorCode};
use crate::startup::AppState;
use crate::telemetry::RequestMeta;

/// A request that presented a valid access token. Turn it into a `Caller` with `load` inside a database call.
#[derive(Debug, Clone)]
pub struct Auth {
    user_id: i64,
    session_id: String,
    /// Request id and client address, for audit rows.
    pub meta: RequestMeta,
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(req))
    }
}

fn extract(req: &HttpRequest) -> Result<Auth, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("AppState missing")))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AppError::Unauthorized(ErrorCode::MissingToken))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(AppError::Unauthorized(ErrorCode::InvalidToken))?;
    let claims: Claims = state
        .jwt
        .verify(token.trim())
        .ok_or(AppError::Unauthorized(ErrorCode::InvalidToken))?;
    let user_id = claims
        .sub
        .parse()
        .map_err(|_| AppError::Unauthorized(ErrorCode::InvalidToken))?;
    let meta = request_meta(req);
    Ok(Auth {
        user_id,
        session_id: claims.sid,
        meta,
    })
}

/// The request id and client address recorded by the request-id middleware.
pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    req.extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta {
            request_id: crate::telemetry::current_request_id(),
            client_ip: req.peer_addr().map(|a| a.ip().to_string()),
        })
}

impl Auth {
    /// The user the token names (not yet checked against a live session: see `load`).
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// The session the token names.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Loads the live session and its user; 401 `session_ended` if the session was revoked or expired, or
    /// the user deactivated; 403 `password_change_required` while the user's password is temporary.
    pub fn load(&self, conn: &mut DbConn, now: chrono::NaiveDateTime) -> Result<Caller, AppError> {
        let row = sessions::load_caller(conn, self.user_id, &self.session_id, now)?
            .ok_or(AppError::Unauthorized(ErrorCode::SessionEnded))?;
        self.caller(row)
    }

    /// `load` for what a user with a temporary password may still do: change it, or log out.
    pub fn load_temporary(
        &self,
        conn: &mut DbConn,
        now: chrono::NaiveDateTime,
    ) -> Result<Caller, AppError> {
        let row = sessions::load_caller(conn, self.user_id, &self.session_id, now)?
            .ok_or(AppError::Unauthorized(ErrorCode::SessionEnded))?;
        self.caller_of(row)
    }

    /// The caller from a live session's row, read by `load`'s query or by one that includes it; 403
    /// `password_change_required` while the user's password is temporary.
    pub fn caller(&self, row: sessions::CallerRow) -> Result<Caller, AppError> {
        if row.must_change_password {
            return Err(AppError::Denied(ErrorCode::PasswordChangeRequired));
        }
        self.caller_of(row)
    }

    fn caller_of(&self, row: sessions::CallerRow) -> Result<Caller, AppError> {
        let role = Role::parse(&row.role)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad role")))?;
        Ok(Caller {
            user_id: row.user_id,
            session_id: self.session_id.clone(),
            role,
            org_id: row.org_id,
            org_path: row.org_path,
            name: row.name,
            employee_no: row.employee_no,
            meta: self.meta.clone(),
        })
    }

    /// `load`, also returning the caller's own user row and org (one query, for `/me`).
    pub fn load_with_user(
        &self,
        conn: &mut DbConn,
        now: chrono::NaiveDateTime,
    ) -> Result<(Caller, User, Org), AppError> {
        let (user, org) = sessions::load_caller_user(conn, self.user_id, &self.session_id, now)?
            .ok_or(AppError::Unauthorized(ErrorCode::SessionEnded))?;
        let role = Role::parse(&user.role)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad role")))?;
        let caller = Caller {
            user_id: user.id,
            session_id: self.session_id.clone(),
            role,
            org_id: org.id,
            org_path: org.path.clone(),
            name: user.name.clone(),
            employee_no: user.employee_no.clone(),
            meta: self.meta.clone(),
        };
        Ok((caller, user, org))
    }
}

impl Auth {
    /// `load_with_user`, also returning the orgs on the path of the caller's org (unordered), in the same
    /// single query (for `/me`).
    pub fn load_with_chain(
        &self,
        conn: &mut DbConn,
        now: chrono::NaiveDateTime,
    ) -> Result<(User, Org, Vec<Org>), AppError> {
        let (user, org, chain) =
            sessions::load_caller_with_chain(conn, self.user_id, &self.session_id, now)?
                .ok_or(AppError::Unauthorized(ErrorCode::SessionEnded))?;
        // The same check as `load` does, so a bad stored role fails here too.
        Role::parse(&user.role).ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad role")))?;
        Ok((user, org, chain))
    }
}

/// An authenticated user with a live session.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's id.
    pub user_id: i64,
    /// The session the token belongs to.
    pub session_id: String,
    /// The user's role.
    pub role: Role,
    /// The user's org.
    pub org_id: i64,
    /// The materialized path of the user's org.
    pub org_path: String,
    /// The user's name (read with the session, so answers that show their author need no second query).
    pub name: String,
    /// The user's employee number.
    pub employee_no: String,
    /// Request id and client address.
    pub meta: RequestMeta,
}

/// How far a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The caller's org and every org below it (admins and leaders).
    Subtree,
    /// Only the caller's own records (managers).
    Own,
}

/// What a caller may see: repo functions filter every query on owned data by it.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The caller.
    pub user_id: i64,
    /// The caller's org.
    pub org_id: i64,
    /// The caller's org path; with `Reach::Subtree`, the prefix of everything visible.
    pub org_path: String,
    /// Subtree or own.
    pub reach: Reach,
}

impl Scope {
    /// `LIKE` pattern matching the caller's org and everything below it.
    pub fn subtree_pattern(&self) -> String {
        format!("{}%", self.org_path)
    }
}

impl Caller {
    /// The caller's (name, employee number), as answers that show a person carry them.
    pub fn person(&self) -> (String, String) {
        (self.name.clone(), self.employee_no.clone())
    }

    /// The caller's scope.
    pub fn scope(&self) -> Scope {
        let reach = match self.role {
            Role::Admin | Role::Leader => Reach::Subtree,
            Role::Manager => Reach::Own,
        };
        Scope {
            user_id: self.user_id,
            org_id: self.org_id,
            org_path: self.org_path.clone(),
            reach,
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// 403 unless the caller is an admin or a leader.
    pub fn require_leader_or_admin(&self) -> Result<(), AppError> {
        if matches!(self.role, Role::Admin | Role::Leader) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}
