//! Offline-safe creates. A create from the phone carries an `Idempotency-Key` header (or a `client_id` in
//! its body); the first answer is stored in the same transaction as the record, and a retry with the same key
//! gets that answer again (same status, same body) without creating anything. The same key with a different
//! body is a 422.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::extract::{ApiJson, parse_json};
use crate::auth::caller::Caller;
use crate::auth::tokens;
use crate::db::DbConn;
use crate::db::repo::idempotency;
use crate::error::{AppError, AppResult, ErrorCode, ResultExt};

/// The header naming a create's idempotency key.
pub const HEADER: &str = "idempotency-key";

/// A create body with its idempotency key and a digest of the request (method, path and body).
#[derive(Debug)]
pub struct IdempotentJson<T> {
    /// The parsed body.
    pub body: T,
    /// `Idempotency-Key`, else the body's `client_id`, if any.
    pub key: Option<String>,
    /// SHA-256 of the method, the path and the canonical JSON of the body: the same key sent to another
    /// resource (another customer's notes) is a different request, not a replay.
    pub digest: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for IdempotentJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(HEADER)
            .map(|v| v.to_str().map(str::to_owned));
        let target = format!("{} {}", req.method(), req.path());
        let raw = ApiJson::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = raw.await?.0;
            let header = match header {
                None => None,
                Some(Ok(k)) if (1..=128).contains(&k.trim().len()) => Some(k.trim().to_owned()),
                Some(_) => {
                    return Err(AppError::field(
                        HEADER,
                        "invalid_format",
                        "1 to 128 visible ASCII characters",
                    ));
                }
            };
            let canonical = value.to_string();
            let body: T = parse_json(canonical.as_bytes())?;
            let from_body = value
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(Self {
                body,
                key: header.or(from_body),
                digest: tokens::digest(&format!("{target}\n{canonical}")),
            })
        })
    }
}

/// A finished create: status and JSON body, replayable byte for byte.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl Answer {
    /// A fresh answer from a serialisable body.
    pub fn new(status: StatusCode, body: &impl Serialize) -> AppResult<Self> {
        Ok(Self {
            status: status.as_u16(),
            body: serde_json::to_string(body).map_err(anyhow::Error::new)?,
        })
    }

    /// The HTTP response.
    pub fn respond(self) -> HttpResponse {
        HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK))
            .content_type("application/json")
            .body(self.body)
    }
}

/// Runs `create` once per key: replays a stored answer, refuses a key reused with another body, or creates
/// and stores the answer in the caller's transaction.
pub fn once(
    c: &mut DbConn,
    caller: &Caller,
    key: Option<&str>,
    digest: &str,
    now: chrono::NaiveDateTime,
    create: impl FnOnce(&mut DbConn) -> AppResult<Answer>,
) -> AppResult<Answer> {
    let Some(key) = key else { return create(c) };
    if let Some(stored) = idempotency::find(c, caller.user_id, key)? {
        if stored.request_hash != digest {
            return Err(AppError::Validation(vec![crate::error::FieldError::new(
                HEADER,
                "key_reused",
                "this idempotency key was used with a different body",
            )]));
        }
        return Ok(Answer {
            status: u16::try_from(stored.status).unwrap_or(200),
            body: stored.body,
        });
    }
    let answer = create(c)?;
    idempotency::store(
        c,
        caller.user_id,
        key,
        digest,
        i32::from(answer.status),
        &answer.body,
        now,
    )
    .on_unique_violation(ErrorCode::IdempotencyConflict)?;
    Ok(answer)
}
