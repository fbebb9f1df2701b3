//! The one error type of the HTTP layer and its RFC 9457 `application/problem+json` body.
//! Every failure a client can see is an `AppError`; its `ErrorCode` is a stable contract (add, never rename).
//! Internal causes are logged once here and never serialised.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

/// Stable, machine-readable error codes. Serialised snake_case; the set only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 422: one or more fields are invalid; see `errors`.
    ValidationFailed,
    /// 400: the body is not well-formed JSON.
    MalformedJson,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 400: a path parameter is not of the expected form.
    InvalidPathParameter,
    /// 400: a query parameter is not of the expected form.
    InvalidQueryParameter,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 404: no org with this id in the caller's scope.
    OrgNotFound,
    /// 404: no user with this id in the caller's scope.
    UserNotFound,
    /// 401: no bearer token was sent.
    MissingToken,
    /// 401: the token is malformed, expired, tampered with or of the wrong kind.
    InvalidToken,
    /// 401: the session behind the token was ended (logout, deactivation, password change).
    SessionEnded,
    /// 401: employee number or password is wrong (never says which).
    InvalidCredentials,
    /// 401: the refresh token is unknown, expired or already used.
    InvalidRefreshToken,
    /// 429: too many failed logins; retry after `Retry-After` seconds.
    TooManyAttempts,
    /// 403: the caller's role may not do this.
    Forbidden,
    /// 403: a transfer is approved by someone other than the one who proposed it (maker-checker).
    ProposerCannotApprove,
    /// 403: the password is temporary (set by an admin, or printed at first start): change it with
    /// `PUT /me/password` first; only `/me`, `/me/password` and logout answer until then.
    PasswordChangeRequired,
    /// 403: an admin changes their own password with `PUT /me/password`, not through the reset endpoint.
    ResetOwnPassword,
    /// 409: the employee number is already taken.
    EmployeeNoTaken,
    /// 409: the org code is already taken.
    OrgCodeTaken,
    /// 422: the current password given is wrong.
    WrongPassword,
    /// 409: a request with the same idempotency key is being processed; retry.
    IdempotencyConflict,
    /// 404: no customer with this id in the caller's scope.
    CustomerNotFound,
    /// 404: no such contact of this customer.
    ContactNotFound,
    /// 404: no such holding of this customer.
    HoldingNotFound,
    /// 404: no team with this id in the caller's scope.
    TeamNotFound,
    /// 404: no transfer with this id in the caller's scope.
    TransferNotFound,
    /// 409: the transfer was already decided.
    TransferAlreadyDecided,
    /// 404: no visit with this id in the caller's scope.
    VisitNotFound,
    /// 409: the manager already has an open visit (its id is in `detail`).
    VisitAlreadyOpen,
    /// 409: the visit is already checked out.
    VisitAlreadyClosed,
    /// 404: no opportunity with this id in the caller's scope.
    OpportunityNotFound,
    /// 404: no work log with this id in the caller's scope.
    WorklogNotFound,
    /// 409: a work log for this date exists already.
    WorklogExists,
    /// 404: no plan with this id in the caller's scope.
    PlanNotFound,
    /// 409: the record can no longer be edited (e.g. a report after 24 h: add an amendment instead).
    NotEditable,
    /// 404: no device with this id among the caller's.
    DeviceNotFound,
    /// 404: no notification with this id in the caller's inbox.
    NotificationNotFound,
    /// 404: no reminder with this id among the caller's.
    ReminderNotFound,
    /// 404: no task with this id visible to the caller.
    TaskNotFound,
    /// 409: the task is done or cancelled already.
    TaskClosed,
    /// 404: no notice with this id visible to the caller.
    NoticeNotFound,
    /// 503: the database or another dependency is unavailable.
    ServiceUnavailable,
    /// 500: an unexpected error; details are in the server log under the request id.
    InternalError,
}

impl ErrorCode {
    /// The snake_case string of this code.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One invalid field: `field` is a dotted path into the request (`items.0.name`), `code` is stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The offending field, as a dotted path in the request body, query or path.
    pub field: String,
    /// Stable snake_case reason: `required`, `too_long`, `invalid_format`, `out_of_range`, `unknown_field`, …
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Collects field errors while validating a request.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// Records one problem.
    pub fn add(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// `Ok(())` when nothing was recorded, else a 422.
    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.0))
        }
    }
}

/// The RFC 9457 problem document every error answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    /// A URI naming the problem type (`urn:fieldwork:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// What happened, for humans.
    pub detail: String,
    /// Field errors, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id (also in the `X-Request-Id` header), for support.
    pub request_id: String,
    /// With `visit_already_open`: the id of the open visit to check out first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_visit_id: Option<i64>,
}

/// Every error the HTTP layer returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 422 (or 400 for malformed input): invalid fields.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 400 with a code and one offending field (malformed JSON, bad path/query).
    #[error("{detail}")]
    BadRequest {
        code: ErrorCode,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 404.
    #[error("not found")]
    NotFound(ErrorCode),
    /// 405 with the allowed methods.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    /// 409.
    #[error("conflict")]
    Conflict(ErrorCode),
    /// 409 `visit_already_open`, naming the open visit.
    #[error("visit already open")]
    VisitOpen(i64),
    /// 401.
    #[error("unauthorized")]
    Unauthorized(ErrorCode),
    /// 403.
    #[error("forbidden")]
    Forbidden,
    /// 403 with a code of its own: the role may do this, but not on this object.
    #[error("denied")]
    Denied(ErrorCode),
    /// 413.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// 415.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 429 with the seconds to wait.
    #[error("too many attempts")]
    RateLimited { retry_after: u64 },
    /// 503; the message is logged, never sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 500; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A single-field 422.
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::BadRequest { code, .. }
            | Self::NotFound(code)
            | Self::Conflict(code)
            | Self::Unauthorized(code)
            | Self::Denied(code) => *code,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::VisitOpen(_) => ErrorCode::VisitAlreadyOpen,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorCode::TooManyAttempts,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(_) => "one or more fields are invalid".into(),
            Self::BadRequest { detail, .. } => detail.clone(),
            Self::NotFound(ErrorCode::RouteNotFound) => "no such route".into(),
            Self::NotFound(_) => "no such object, or it is not visible to you".into(),
            Self::MethodNotAllowed(allow) => format!("this route allows {allow}"),
            Self::Conflict(ErrorCode::EmployeeNoTaken) => {
                "this employee number is already taken".into()
            }
            Self::Conflict(ErrorCode::OrgCodeTaken) => "this org code is already taken".into(),
            Self::Conflict(_) => "the request conflicts with the current state".into(),
            Self::VisitOpen(id) => format!("visit {id} is still open: check out first"),
            Self::Unauthorized(ErrorCode::InvalidCredentials) => {
                "employee number or password is wrong".into()
            }
            Self::Unauthorized(ErrorCode::MissingToken) => {
                "send Authorization: Bearer <access token>".into()
            }
            Self::Unauthorized(ErrorCode::SessionEnded) => {
                "the session has ended; log in again".into()
            }
            Self::Unauthorized(ErrorCode::InvalidRefreshToken) => {
                "the refresh token is not valid".into()
            }
            Self::Unauthorized(_) => "the access token is not valid".into(),
            Self::Forbidden => "your role may not do this".into(),
            Self::Denied(ErrorCode::ProposerCannotApprove) => {
                "a transfer is approved by someone other than its proposer".into()
            }
            Self::Denied(ErrorCode::PasswordChangeRequired) => {
                "your password is temporary: change it with PUT /api/v1/me/password first".into()
            }
            Self::Denied(ErrorCode::ResetOwnPassword) => {
                "change your own password with PUT /api/v1/me/password".into()
            }
            Self::Denied(_) => "you may not do this to this object".into(),
            Self::PayloadTooLarge(limit) => format!("the body is larger than {limit} bytes"),
            Self::UnsupportedMediaType => "send the body as application/json".into(),
            Self::RateLimited { retry_after } => {
                format!("too many failed attempts; retry in {retry_after} s")
            }
            Self::Unavailable(_) => "the service is temporarily unavailable".into(),
            Self::Internal(_) => "an unexpected error occurred".into(),
        }
    }

    /// The problem document for this error under `request_id`.
    pub fn problem(&self, request_id: String) -> ProblemBody {
        let status = self.status_code();
        let code = self.code();
        let errors = match self {
            Self::Validation(e) | Self::BadRequest { errors: e, .. } => e.clone(),
            _ => Vec::new(),
        };
        let code_str = code.as_str();
        ProblemBody {
            type_: format!("urn:fieldwork:problem:{code_str}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code,
            detail: self.detail(),
            errors,
            request_id,
            open_visit_id: if let Self::VisitOpen(id) = self {
                Some(*id)
            } else {
                None
            },
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::VisitOpen(_) => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = crate::telemetry::current_request_id();
        match self {
            Self::Internal(e) => {
                tracing::error!(request.id = %request_id, error = ?e, "internal error")
            }
            Self::Unavailable(e) => {
                tracing::warn!(request.id = %request_id, error = %e, "unavailable")
            }
            _ => {}
        }
        let mut res = problem_response(self.status_code(), &self.problem(request_id));
        let headers = res.headers_mut();
        match self {
            Self::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            _ => {}
        }
        res
    }
}

/// Serialises a problem body with the right content type.
pub fn problem_response(status: StatusCode, body: &ProblemBody) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .body(serde_json::to_vec(body).unwrap_or_default())
}

impl From<DieselError> for AppError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => {
                crate::db::mark_connection_broken();
                Self::Unavailable(info.message().to_owned())
            }
            // The bound on database work: PostgreSQL's statement timeout, SQLite's busy timeout.
            DieselError::DatabaseError(_, info) if is_timeout(info.message()) => {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Whether a database error says the statement ran out of time (PostgreSQL cancels it with SQLSTATE 57014,
/// "canceling statement due to statement timeout"; SQLite gives up waiting for a lock with
/// "database is locked"). The backends' error kinds have no variant for either, so the message decides.
fn is_timeout(message: &str) -> bool {
    message.contains("statement timeout") || message.contains("database is locked")
}

/// Maps a unique-constraint violation to a 409 with a specific code (matches the kind, not the constraint
/// name, so it works on both backends).
pub trait ResultExt<T> {
    /// Turns a unique violation into `Conflict(code)`.
    fn on_unique_violation(self, code: ErrorCode) -> Result<T, AppError>;
}

impl<T> ResultExt<T> for Result<T, DieselError> {
    fn on_unique_violation(self, code: ErrorCode) -> Result<T, AppError> {
        self.map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict(code)
            }
            other => other.into(),
        })
    }
}

/// Handler result.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases: Vec<(AppError, u16, &str)> = vec![
            (
                AppError::field("x", "required", "m"),
                422,
                "validation_failed",
            ),
            (
                AppError::NotFound(ErrorCode::UserNotFound),
                404,
                "user_not_found",
            ),
            (
                AppError::Conflict(ErrorCode::EmployeeNoTaken),
                409,
                "employee_no_taken",
            ),
            (
                AppError::Unauthorized(ErrorCode::InvalidToken),
                401,
                "invalid_token",
            ),
            (AppError::Forbidden, 403, "forbidden"),
            (
                AppError::Denied(ErrorCode::ProposerCannotApprove),
                403,
                "proposer_cannot_approve",
            ),
            (AppError::PayloadTooLarge(10), 413, "payload_too_large"),
            (
                AppError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                AppError::RateLimited { retry_after: 3 },
                429,
                "too_many_attempts",
            ),
            (
                AppError::Unavailable("db".into()),
                503,
                "service_unavailable",
            ),
            (
                AppError::Internal(anyhow::anyhow!("secret detail")),
                500,
                "internal_error",
            ),
        ];
        for (err, status, code) in cases {
            let body = err.problem("r1".into());
            assert_eq!(body.status, status, "{code}");
            assert_eq!(body.code.as_str(), code);
            assert_eq!(body.type_, format!("urn:fieldwork:problem:{code}"));
            assert!(
                !body.detail.contains("secret"),
                "internal details must not leak"
            );
        }
    }
}
