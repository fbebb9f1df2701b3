//! The FCM HTTP v1 client: OAuth2 from a service-account key, the v1 message, and the mapping of FCM's answers
//! to [`SendOutcome`]s (see the table in the module docs of [`crate::push`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PushGateway, PushMessage, SendFuture, SendOutcome, token_hash};
use crate::clock::Clock;

/// Google's FCM endpoint.
pub const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";
/// Google's OAuth2 token endpoint (used when the key file has no `token_uri`).
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth2 scope that allows sending FCM messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The OAuth2 grant type of a signed JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Default timeout of one HTTP request (token or send).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default: refresh the access token this long before it expires.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// The longest TTL FCM accepts (28 days); longer ones are capped.
pub const MAX_TTL: Duration = Duration::from_secs(28 * 24 * 3600);
/// Lifetime of the signed assertion (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Longest reason kept from an error body.
const MAX_REASON_CHARS: usize = 300;

/// Where and how to reach FCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmConfig {
    /// FCM base URL, without a trailing slash (default [`DEFAULT_BASE_URL`]; tests point it at a fake).
    pub base_url: String,
    /// Firebase project id; `None` takes the key file's `project_id`.
    pub project_id: Option<String>,
    /// Path of the service-account key JSON (`client_email`, `private_key` PEM, `token_uri`).
    pub service_account_key_path: PathBuf,
    /// Timeout of each HTTP request (default 10 s). A hanging FCM answers `Retry` after it.
    pub timeout: Duration,
    /// Refresh the cached access token this long before it expires (default 5 min).
    pub token_refresh_margin: Duration,
}

impl FcmConfig {
    /// Defaults for everything but the key file: Google's endpoint, the key's project, 10 s, 5 min.
    pub fn new(service_account_key_path: impl Into<PathBuf>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            project_id: None,
            service_account_key_path: service_account_key_path.into(),
            timeout: DEFAULT_TIMEOUT,
            token_refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// The fields of a Google service-account key JSON that the client needs (others are ignored).
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// The service account, issuer of the assertion.
    pub client_email: String,
    /// RSA private key, PEM (PKCS#8 `BEGIN PRIVATE KEY` as Google issues it, or PKCS#1).
    pub private_key: String,
    /// Where to exchange the assertion for an access token.
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    /// The Firebase/GCP project of the key.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Key id, sent as the assertion's `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
}

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.to_owned()
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .finish()
    }
}

impl ServiceAccountKey {
    /// Parses a key JSON document.
    pub fn from_json(json: &str) -> anyhow::Result<Self> {
        serde_json::from_str(json).context("service-account key JSON")
    }

    /// Reads and parses a key file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading service-account key {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in {}", path.display()))
    }

    fn encoding_key(&self) -> anyhow::Result<EncodingKey> {
        use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
        use rsa::pkcs8::DecodePrivateKey;
        let pem = self.private_key.trim();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| {
                anyhow::anyhow!("private_key is not an RSA private key in PEM (PKCS#8 or PKCS#1)")
            })?;
        let der = key
            .to_pkcs1_der()
            .map_err(|_| anyhow::anyhow!("private_key cannot be re-encoded"))?;
        Ok(EncodingKey::from_rsa_der(der.as_bytes()))
    }
}

/// A cached OAuth2 access token.
struct AccessToken {
    value: String,
    refresh_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Sends through FCM HTTP v1. Cheap to share (`Arc`); sends may run concurrently and share one access token.
pub struct FcmGateway {
    client: reqwest::Client,
    send_url: String,
    project_id: String,
    token_uri: String,
    client_email: String,
    key_id: Option<String>,
    signing_key: EncodingKey,
    refresh_margin: Duration,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for FcmGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmGateway")
            .field("send_url", &self.send_url)
            .field("token_uri", &self.token_uri)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl FcmGateway {
    /// Reads the key file named in `config` and builds the client. Fails fast on an unreadable key file, a key
    /// that is not RSA PEM, or no project id (neither in `config` nor in the key).
    pub fn new(config: FcmConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let key = ServiceAccountKey::from_file(&config.service_account_key_path)?;
        Self::with_key(&config, key, clock)
    }

    /// Like [`FcmGateway::new`] with the key given directly (`config.service_account_key_path` is ignored).
    pub fn with_key(
        config: &FcmConfig,
        key: ServiceAccountKey,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let signing_key = key.encoding_key()?;
        let project_id = config
            .project_id
            .clone()
            .or_else(|| key.project_id.clone())
            .filter(|p| !p.is_empty())
            .context("no FCM project id: set it or use a key file with project_id")?;
        let timeout = config.timeout.max(Duration::from_millis(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the FCM HTTP client")?;
        let base = config.base_url.trim_end_matches('/');
        Ok(Self {
            client,
            send_url: format!("{base}/v1/projects/{project_id}/messages:send"),
            project_id,
            token_uri: key.token_uri,
            client_email: key.client_email,
            key_id: key.private_key_id,
            signing_key,
            refresh_margin: config.token_refresh_margin,
            clock,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The Firebase project messages are sent to.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// Sends one message (see [`PushGateway::send`]).
    pub async fn send_message(&self, message: &PushMessage) -> SendOutcome {
        let outcome = match self.deliver(message).await {
            Ok(o) | Err(o) => o,
        };
        let outcome = redact_token(outcome, &message.device_token);
        let device = token_hash(&message.device_token);
        match &outcome {
            SendOutcome::Sent { message_id } => {
                tracing::debug!(gateway = "fcm", %device, %message_id, "push sent");
            }
            SendOutcome::Retry { after, reason } => {
                tracing::info!(gateway = "fcm", %device, retry_after = ?after, %reason, "push to retry");
            }
            SendOutcome::DeadToken { reason } => {
                tracing::warn!(gateway = "fcm", %device, %reason, "push token is dead");
            }
            SendOutcome::Failed { reason } => {
                tracing::warn!(gateway = "fcm", %device, %reason, "push failed permanently");
            }
        }
        outcome
    }

    /// Returns the outcome; `Err` is only a shortcut for early returns.
    async fn deliver(&self, message: &PushMessage) -> Result<SendOutcome, SendOutcome> {
        validate(message)?;
        let body = message_body(message, self.clock.now());
        let mut refreshed = false;
        loop {
            let token = self
                .access_token()
                .await
                .map_err(|reason| SendOutcome::Retry {
                    after: None,
                    reason: format!("OAuth2 token: {reason}"),
                })?;
            let response = self
                .client
                .post(&self.send_url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .map_err(|e| transport_retry("FCM send", &e))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The token may have been revoked or expired early: fetch a new one and try once more.
                self.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            let retry_after = parse_retry_after(response.headers(), self.clock.now());
            let text = response
                .text()
                .await
                .map_err(|e| transport_retry("FCM answer", &e))?;
            return Ok(classify(status.as_u16(), retry_after, &text));
        }
    }

    /// The cached access token, or a new one when none is cached or it is due for refresh. The lock is held
    /// across the refresh so that concurrent senders wait for one token request instead of each making one.
    async fn access_token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token(now).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `rejected` if it is still the cached token (another sender may already have replaced it).
    async fn invalidate(&self, rejected: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == rejected) {
            *cached = None;
        }
    }

    async fn fetch_token(&self, now: DateTime<Utc>) -> Result<AccessToken, String> {
        let iat = now.timestamp();
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: FCM_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(|e| format!("signing the assertion failed: {e}"))?;
        let form = serde_urlencoded::to_string([
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion.as_str()),
        ])
        .map_err(|e| format!("encoding the token request failed: {e}"))?;
        let response = self
            .client
            .post(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| describe_transport("token endpoint", &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| describe_transport("token endpoint answer", &e))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<OAuthError>(&text)
                .ok()
                .map(|e| {
                    [e.error, e.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .unwrap_or_default();
            return Err(truncate(format!(
                "token endpoint answered {status} {detail}"
            )));
        }
        let token: TokenResponse = serde_json::from_str(&text)
            .map_err(|_| "token endpoint answered 200 without an access_token".to_owned())?;
        if token.access_token.is_empty() {
            return Err("token endpoint answered an empty access_token".into());
        }
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        // Refresh `margin` early, but never later than half-way for short-lived tokens.
        let early = self.refresh_margin.min(lifetime / 2);
        let refresh_at = now + delta(lifetime.saturating_sub(early));
        tracing::info!(
            gateway = "fcm",
            expires_in_secs = lifetime.as_secs(),
            "FCM access token obtained"
        );
        Ok(AccessToken {
            value: token.access_token,
            refresh_at,
        })
    }
}

impl PushGateway for FcmGateway {
    fn send<'a>(&'a self, message: &'a PushMessage) -> SendFuture<'a> {
        Box::pin(self.send_message(message))
    }

    fn name(&self) -> &'static str {
        "fcm"
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Rejects messages FCM would refuse for reasons that retrying cannot fix, without a network round trip.
fn validate(message: &PushMessage) -> Result<(), SendOutcome> {
    if message.device_token.trim().is_empty() {
        return Err(SendOutcome::DeadToken {
            reason: "empty device token".into(),
        });
    }
    if let Some(key) = message.data.keys().find(|k| is_reserved_data_key(k)) {
        return Err(SendOutcome::Failed {
            reason: format!("data key {key:?} is reserved by FCM"),
        });
    }
    if message.collapse_key.len() > 64 {
        return Err(SendOutcome::Failed {
            reason: "collapse key longer than 64 bytes (apns-collapse-id limit)".into(),
        });
    }
    Ok(())
}

/// Data keys FCM refuses.
pub fn is_reserved_data_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "from"
        || k == "notification"
        || k == "message_type"
        || k.starts_with("google")
        || k.starts_with("gcm")
}

/// The v1 request body for `message`, `now` being when it is sent (for `apns-expiration`).
pub fn message_body(message: &PushMessage, now: DateTime<Utc>) -> Value {
    let ttl = message.ttl.min(MAX_TTL);
    let apns_expiration = if ttl.is_zero() {
        // APNs: 0 means deliver now or never.
        "0".to_owned()
    } else {
        (now + delta(ttl)).timestamp().to_string()
    };
    let mut android = json!({
        "priority": if message.urgent { "HIGH" } else { "NORMAL" },
        "ttl": format!("{}s", ttl.as_secs()),
    });
    let mut apns_headers = json!({
        "apns-priority": if message.urgent { "10" } else { "5" },
        "apns-expiration": apns_expiration,
    });
    if !message.collapse_key.is_empty() {
        android["collapse_key"] = json!(message.collapse_key);
        apns_headers["apns-collapse-id"] = json!(message.collapse_key);
    }
    json!({
        "message": {
            "token": message.device_token,
            "notification": { "title": message.title, "body": message.body },
            "data": message.data,
            "android": android,
            "apns": { "headers": apns_headers },
        }
    })
}

/// `Retry-After` as a delay from `now`: delta-seconds or an HTTP date (a past date is zero).
pub fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = SystemTime::from(now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

impl ErrorBody {
    /// `errorCode`s of the `FcmError` details.
    fn error_codes(&self) -> Vec<&str> {
        self.details
            .iter()
            .filter_map(|d| d.get("errorCode").and_then(Value::as_str))
            .collect()
    }

    fn has_code(&self, code: &str) -> bool {
        self.error_codes().contains(&code)
    }

    /// Whether a 400 is about the registration token (so the device is dead) rather than the message.
    fn concerns_token(&self) -> bool {
        let field_is_token = self.details.iter().any(|d| {
            d.get("fieldViolations")
                .and_then(Value::as_array)
                .is_some_and(|violations| {
                    violations
                        .iter()
                        .any(|v| v.get("field").and_then(Value::as_str) == Some("message.token"))
                })
        });
        let message_is_token = self
            .message
            .as_deref()
            .map(str::to_ascii_lowercase)
            .is_some_and(|m| m.contains("registration token"));
        field_is_token || message_is_token || self.has_code("UNREGISTERED")
    }

    fn describe(&self, status: u16) -> String {
        let mut parts = vec![status.to_string()];
        parts.extend(self.status.clone());
        parts.extend(self.error_codes().into_iter().map(str::to_owned));
        let head = parts.join(" ");
        match &self.message {
            Some(m) if !m.is_empty() => truncate(format!("{head}: {m}")),
            _ => head,
        }
    }
}

/// Maps an FCM answer to an outcome (`retry_after` already parsed from the headers).
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> SendOutcome {
    if (200..300).contains(&status) {
        let message_id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        return SendOutcome::Sent { message_id };
    }
    let error = serde_json::from_str::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let reason = error.as_ref().map_or_else(
        || format!("{status} without an FCM error body"),
        |e| e.describe(status),
    );
    match status {
        400 => match &error {
            Some(e) if e.concerns_token() => SendOutcome::DeadToken { reason },
            _ => SendOutcome::Failed { reason },
        },
        401 => SendOutcome::Retry {
            after: retry_after,
            reason: format!("still unauthorized after a token refresh: {reason}"),
        },
        403 => match &error {
            Some(e) if e.has_code("SENDER_ID_MISMATCH") => SendOutcome::DeadToken { reason },
            // Missing permission, API disabled: a configuration fault that an operator can fix.
            _ => SendOutcome::Retry {
                after: retry_after,
                reason,
            },
        },
        404 => match &error {
            Some(e) if e.has_code("UNREGISTERED") || e.status.as_deref() == Some("NOT_FOUND") => {
                SendOutcome::DeadToken { reason }
            }
            _ => SendOutcome::Failed { reason },
        },
        408 | 429 | 500..=599 => SendOutcome::Retry {
            after: retry_after,
            reason,
        },
        _ => SendOutcome::Failed { reason },
    }
}

fn describe_transport(what: &str, e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // reqwest's own message names only the URL; the cause (refused, certificate, DNS…) is in the chain.
    let mut text = format!("{what}: {kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    truncate(text)
}

fn transport_retry(what: &str, e: &reqwest::Error) -> SendOutcome {
    SendOutcome::Retry {
        after: None,
        reason: describe_transport(what, e),
    }
}

fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_REASON_CHARS) {
        s.truncate(i);
        s.push('…');
    }
    s
}

/// Belt and braces: no reason may carry the device token, whatever a server echoes.
fn redact_token(outcome: SendOutcome, token: &str) -> SendOutcome {
    if token.is_empty() {
        return outcome;
    }
    let clean = |r: String| {
        if r.contains(token) {
            r.replace(token, "<token>")
        } else {
            r
        }
    };
    match outcome {
        SendOutcome::Retry { after, reason } => SendOutcome::Retry {
            after,
            reason: clean(reason),
        },
        SendOutcome::DeadToken { reason } => SendOutcome::DeadToken {
            reason: clean(reason),
        },
        SendOutcome::Failed { reason } => SendOutcome::Failed {
            reason: clean(reason),
        },
        sent @ SendOutcome::Sent { .. } => sent,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use reqwest::header::HeaderValue;

    use super::*;
    use crate::push::Platform;

    fn fcm_error(code: u16, status: &str, message: &str, error_code: Option<&str>) -> String {
        let mut details = vec![];
        if let Some(c) = error_code {
            details.push(json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}));
        }
        json!({"error": {"code": code, "message": message, "status": status, "details": details}})
            .to_string()
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(
            classify(200, None, r#"{"name":"projects/p/messages/1"}"#),
            SendOutcome::Sent {
                message_id: "projects/p/messages/1".into()
            }
        );
        let unregistered = fcm_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            Some("UNREGISTERED"),
        );
        assert_eq!(classify(404, None, &unregistered).kind(), "dead_token");
        let not_found = fcm_error(404, "NOT_FOUND", "Requested entity was not found.", None);
        assert_eq!(classify(404, None, &not_found).kind(), "dead_token");
        assert_eq!(classify(404, None, "<html>nope</html>").kind(), "failed");

        let bad_token = fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            Some("INVALID_ARGUMENT"),
        );
        assert_eq!(classify(400, None, &bad_token).kind(), "dead_token");
        let bad_field = json!({"error": {"code": 400, "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}]}})
        .to_string();
        assert_eq!(classify(400, None, &bad_field).kind(), "dead_token");
        let bad_ttl = fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'message.android.ttl'",
            Some("INVALID_ARGUMENT"),
        );
        assert_eq!(classify(400, None, &bad_ttl).kind(), "failed");

        let mismatch = fcm_error(
            403,
            "PERMISSION_DENIED",
            "SenderId mismatch",
            Some("SENDER_ID_MISMATCH"),
        );
        assert_eq!(classify(403, None, &mismatch).kind(), "dead_token");
        let denied = fcm_error(403, "PERMISSION_DENIED", "Permission denied", None);
        assert_eq!(classify(403, None, &denied).kind(), "retry");

        let quota = fcm_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded",
            Some("QUOTA_EXCEEDED"),
        );
        assert_eq!(
            classify(429, Some(Duration::from_secs(7)), &quota),
            SendOutcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "429 RESOURCE_EXHAUSTED QUOTA_EXCEEDED: Quota exceeded".into()
            }
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(classify(s, None, "").kind(), "retry", "{s}");
        }
        assert_eq!(classify(401, None, "").kind(), "retry");
        assert_eq!(classify(413, None, "").kind(), "failed");
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap_or_default();
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 01 Mar 2026 08:01:30 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(90)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 01 Mar 2026 07:00:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn message_body_has_the_v1_shape() {
        let now: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap_or_default();
        let m = PushMessage {
            device_token: "tok".into(),
            platform: Platform::Android,
            title: "t".into(),
            body: "b".into(),
            data: BTreeMap::from([("notification_id".into(), "9".into())]),
            urgent: true,
            ttl: Duration::from_secs(3600),
            collapse_key: "9".into(),
        };
        let v = message_body(&m, now);
        let expected = json!({"message": {
            "token": "tok",
            "notification": {"title": "t", "body": "b"},
            "data": {"notification_id": "9"},
            "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "9"},
            "apns": {"headers": {"apns-priority": "10", "apns-collapse-id": "9",
                                 "apns-expiration": (now.timestamp() + 3600).to_string()}},
        }});
        assert_eq!(v, expected);

        let long = PushMessage {
            urgent: false,
            ttl: Duration::from_secs(100 * 24 * 3600),
            collapse_key: String::new(),
            ..m
        };
        let v = message_body(&long, now);
        assert_eq!(v["message"]["android"]["priority"], "NORMAL");
        assert_eq!(v["message"]["android"]["ttl"], "2419200s");
        assert_eq!(v["message"]["apns"]["headers"]["apns-priority"], "5");
        assert!(v["message"]["android"].get("collapse_key").is_none());
        assert!(
            v["message"]["apns"]["headers"]
                .get("apns-collapse-id")
                .is_none()
        );
    }

    #[test]
    fn reserved_keys_and_long_collapse_keys_fail_without_sending() {
        let mut m = PushMessage {
            device_token: "tok".into(),
            platform: Platform::Ios,
            title: "t".into(),
            body: "b".into(),
            data: BTreeMap::from([("google.c.a".into(), "x".into())]),
            urgent: false,
            ttl: Duration::from_secs(1),
            collapse_key: "1".into(),
        };
        assert_eq!(validate(&m).map_err(|o| o.kind()), Err("failed"));
        m.data = BTreeMap::from([("from".into(), "x".into())]);
        assert_eq!(validate(&m).map_err(|o| o.kind()), Err("failed"));
        m.data.clear();
        m.collapse_key = "x".repeat(65);
        assert_eq!(validate(&m).map_err(|o| o.kind()), Err("failed"));
        m.collapse_key = "x".repeat(64);
        assert_eq!(validate(&m), Ok(()));
        m.device_token = " ".into();
        assert_eq!(validate(&m).map_err(|o| o.kind()), Err("dead_token"));
    }

    #[test]
    fn reasons_never_carry_the_token() {
        let o = redact_token(
            SendOutcome::Failed {
                reason: "bad token abc123 here".into(),
            },
            "abc123",
        );
        assert_eq!(
            o,
            SendOutcome::Failed {
                reason: "bad token <token> here".into()
            }
        );
    }

    #[test]
    fn key_debug_hides_the_private_key() {
        let k = ServiceAccountKey {
            client_email: "a@b".into(),
            private_key: "-----BEGIN PRIVATE KEY-----SECRET".into(),
            token_uri: DEFAULT_TOKEN_URI.into(),
            project_id: None,
            private_key_id: None,
        };
        assert!(!format!("{k:?}").contains("SECRET"));
        assert!(k.encoding_key().is_err());
    }
}
