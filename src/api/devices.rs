//! `/api/v1/me/devices`: the caller's push tokens. Registering a known token updates it, re-enables it and
//! moves it to the caller and their current session (a phone changes hands, or its user logs in as
//! someone else); logout removes the session's devices. Tokens are never echoed: lists show the first 12
//! hex digits of their SHA-256 (the same hash the push logs use).

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiJson, PathId};
use super::utc;
use crate::auth::caller::Auth;
use crate::db::repo::devices::{self, Device, Registration};
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Longest accepted token (FCM registration tokens are about 160 characters).
pub const MAX_TOKEN: usize = 4096;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(register_device)
        .service(list_devices)
        .service(delete_device);
}

/// Push channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Firebase Cloud Messaging (HTTP v1).
    Fcm,
}

/// Phone platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Android.
    Android,
    /// iOS.
    Ios,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
        }
    }
}

/// Body of `POST /me/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// Push channel (`fcm`).
    pub provider: Provider,
    /// The registration token the push SDK gave the app (1–4096 characters, no spaces).
    pub token: String,
    /// `android` or `ios`.
    pub platform: Platform,
    /// The app's version, e.g. `2.3.1` (up to 32 characters).
    pub app_version: Option<String>,
    /// The phone's locale, e.g. `zh-CN` (up to 35 characters: letters, digits, `-`, `_`).
    pub locale: Option<String>,
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceResponse {
    /// Device id.
    pub id: i64,
    /// Push channel.
    pub provider: String,
    /// `android` or `ios`.
    pub platform: String,
    /// First 12 hex digits of the SHA-256 of the token (the token itself is never shown).
    pub token_hash: String,
    /// App version at the last registration.
    pub app_version: Option<String>,
    /// Locale at the last registration.
    pub locale: Option<String>,
    /// False once the push service rejected the token; registering it again re-enables it.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// First registered (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last registered or changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl From<Device> for DeviceResponse {
    fn from(d: Device) -> Self {
        Self {
            id: d.id,
            token_hash: crate::push::token_hash(&d.token),
            provider: d.provider,
            platform: d.platform,
            app_version: d.app_version,
            locale: d.locale,
            enabled: d.disabled_at.is_none(),
            disabled_reason: d.disabled_reason,
            created_at: utc(d.created_at),
            updated_at: utc(d.updated_at),
        }
    }
}

/// The caller's devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// Newest first.
    pub items: Vec<DeviceResponse>,
}

fn opt_short(errs: &mut FieldErrors, field: &str, v: Option<String>, max: usize) -> Option<String> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    if v.chars().count() > max {
        errs.add(field, "too_long", format!("at most {max} characters"));
    } else if v.chars().any(char::is_control) {
        errs.add(
            field,
            "invalid_format",
            "must not contain control characters",
        );
    }
    Some(v)
}

fn validate(
    req: RegisterDeviceRequest,
) -> AppResult<(String, String, Option<String>, Option<String>)> {
    let mut errs = FieldErrors::default();
    let token = req.token.trim().to_owned();
    if token.is_empty() {
        errs.add("token", "required", "must not be empty");
    } else if token.len() > MAX_TOKEN {
        errs.add(
            "token",
            "too_long",
            format!("at most {MAX_TOKEN} characters"),
        );
    } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errs.add("token", "invalid_format", "no spaces or control characters");
    }
    let app_version = opt_short(&mut errs, "app_version", req.app_version, 32);
    let locale = opt_short(&mut errs, "locale", req.locale, 35);
    if let Some(l) = &locale
        && !l
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errs.add("locale", "invalid_format", "a language tag such as zh-CN");
    }
    errs.finish()?;
    Ok((token, req.platform.as_str().to_owned(), app_version, locale))
}

/// Registers the phone's push token for the caller's current session: 201 when new, 200 when the token
/// was known (it is updated, re-enabled and moved to the caller if someone else had it).
#[utoipa::path(
    tag = "me",
    request_body = RegisterDeviceRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = DeviceResponse),
        (status = 200, description = "Known token updated (and moved to the caller)", body = DeviceResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/me/devices")]
async fn register_device(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<RegisterDeviceRequest>,
) -> AppResult<HttpResponse> {
    let (token, platform, app_version, locale) = validate(body.0)?;
    let now = state.now();
    let (device, created) = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let r = Registration {
                user_id: caller.user_id,
                session_id: caller.session_id.clone(),
                provider: "fcm".to_owned(),
                token,
                platform,
                app_version,
                locale,
            };
            Ok(devices::register(c, &r, now)?)
        })
        .await?;
    let body = DeviceResponse::from(device);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// The caller's registered devices (tokens shown as hashes only).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DeviceList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/me/devices")]
async fn list_devices(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<DeviceList>> {
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            Ok(devices::list(c, caller.user_id)?)
        })
        .await?;
    Ok(web::Json(DeviceList {
        items: rows.into_iter().map(DeviceResponse::from).collect(),
    }))
}

/// Removes one of the caller's devices (someone else's: 404 `device_not_found`); its pending pushes go too.
#[utoipa::path(
    tag = "me",
    params(("id" = i64, Path, description = "Device id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[delete("/me/devices/{id}")]
async fn delete_device(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<HttpResponse> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            if devices::delete_own(c, caller.user_id, id.0)? {
                Ok(())
            } else {
                Err(AppError::NotFound(ErrorCode::DeviceNotFound))
            }
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
