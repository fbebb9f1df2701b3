//! A fake FCM: a real HTTP server on 127.0.0.1 speaking the FCM HTTP v1 send API and Google's OAuth2 token
//! endpoint, so the real `FcmGateway` code runs end to end.
//!
//! - `POST /token` accepts only the `jwt-bearer` grant with an RS256 assertion signed by the TEST-ONLY key in
//!   `tests/fixtures/` (iss = [`CLIENT_EMAIL`], aud = the token URI, the `firebase.messaging` scope, a lifetime
//!   of at most an hour) and issues opaque access tokens (`expires_in` 3599 unless changed). The assertion's
//!   `exp` is not compared with the wall clock: gateways under test run on an injected clock.
//! - `POST /v1/projects/{project}/messages:send` checks the bearer token (401 `UNAUTHENTICATED` if it is not a
//!   live issued token), the project (403 otherwise), and the v1 message shape strictly (unknown fields, types,
//!   reserved data keys, priority, ttl, APNs headers: 400 `INVALID_ARGUMENT` naming the field, recorded in
//!   [`FakeFcm::rejected`]); then answers as its [`Mode`] for that token (or the global one) says. Messages
//!   answered 200 are recorded in [`FakeFcm::received`]; every well-formed send is in [`FakeFcm::attempts`].

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fieldwork::push::FcmConfig;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// The Firebase project the fake serves.
pub const PROJECT: &str = "fake-project";
/// The service account of the test key.
pub const CLIENT_EMAIL: &str = "fieldwork-push@fake-project.iam.gserviceaccount.com";
/// The TEST-ONLY RSA key (PKCS#8 PEM) whose public half the token endpoint trusts.
pub const TEST_PRIVATE_KEY_PEM: &str =
    include_str!("../fixtures/TEST-ONLY-fake-fcm-service-account-key.pem");
const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// How the send endpoint answers a well-formed, authorised message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200 `{"name": "projects/fake-project/messages/<n>"}`; the message is recorded in `received`.
    Ok,
    /// 400 `INVALID_ARGUMENT` about the registration token (the device is dead).
    InvalidToken,
    /// 400 `INVALID_ARGUMENT` about another field (a permanent failure of the message).
    InvalidArgument,
    /// 404 `NOT_FOUND` / `UNREGISTERED`.
    Unregistered,
    /// 403 `PERMISSION_DENIED` / `SENDER_ID_MISMATCH`.
    SenderIdMismatch,
    /// 429 `RESOURCE_EXHAUSTED` / `QUOTA_EXCEEDED`, with this `Retry-After` header value if any.
    TooManyRequests { retry_after: Option<String> },
    /// 500 `INTERNAL`.
    InternalError,
    /// 503 `UNAVAILABLE`, with this `Retry-After` header value if any.
    Unavailable { retry_after: Option<String> },
    /// 401 `UNAUTHENTICATED` whatever the token (as if every access token were expired).
    Unauthorized,
    /// Never answers (until the server stops).
    Hang,
}

/// Which sends a mode applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every token without a mode of its own.
    All,
    /// One registration token.
    Token(String),
}

impl From<&str> for Target {
    fn from(token: &str) -> Self {
        Self::Token(token.to_owned())
    }
}

impl From<String> for Target {
    fn from(token: String) -> Self {
        Self::Token(token)
    }
}

/// A mode and how many more answers it gives (`None`: until changed).
#[derive(Debug, Clone)]
struct ModeEntry {
    mode: Mode,
    remaining: Option<usize>,
}

#[derive(Debug)]
struct State {
    token_uri: String,
    token_lifetime_secs: u64,
    token_requests: usize,
    token_rejections: Vec<String>,
    issued: HashSet<String>,
    next_token: u64,
    global: Option<ModeEntry>,
    per_token: HashMap<String, ModeEntry>,
    received: Vec<Value>,
    attempts: Vec<Value>,
    rejected: Vec<String>,
    unauthorized: usize,
    next_message: u64,
    /// How long every send takes to answer (a slow FCM).
    latency: Duration,
    /// After this many messages answered 200, every further send hangs.
    hang_after: Option<u64>,
}

impl State {
    /// The mode for `token`, consuming one answer of a counted mode.
    fn take_mode(&mut self, token: &str) -> Mode {
        fn take(entry: &mut Option<ModeEntry>) -> Option<Mode> {
            let e = entry.as_mut()?;
            let mode = e.mode.clone();
            if let Some(n) = e.remaining.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    *entry = None;
                }
            }
            Some(mode)
        }
        let mut own = self.per_token.remove(token);
        if let Some(mode) = take(&mut own) {
            if let Some(e) = own {
                self.per_token.insert(token.to_owned(), e);
            }
            return mode;
        }
        take(&mut self.global).unwrap_or(Mode::Ok)
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    decoding_key: Arc<DecodingKey>,
}

/// A running fake FCM; stops when dropped.
pub struct FakeFcm {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    dir: tempfile::TempDir,
}

impl FakeFcm {
    /// Starts the server on a random loopback port.
    pub async fn start() -> Self {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::DecodePrivateKey;
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_PRIVATE_KEY_PEM).expect("test key");
        let public_der = private
            .to_public_key()
            .to_pkcs1_der()
            .expect("public key DER");
        let decoding_key = Arc::new(DecodingKey::from_rsa_der(public_der.as_bytes()));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake FCM");
        let port = listener.local_addr().expect("local addr").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            token_uri: format!("{base_url}/token"),
            token_lifetime_secs: 3599,
            token_requests: 0,
            token_rejections: Vec::new(),
            issued: HashSet::new(),
            next_token: 0,
            global: None,
            per_token: HashMap::new(),
            received: Vec::new(),
            attempts: Vec::new(),
            rejected: Vec::new(),
            unauthorized: 0,
            next_message: 0,
            latency: Duration::ZERO,
            hang_after: None,
        }));
        let shared = Shared {
            state: state.clone(),
            decoding_key,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/token", web::post().to(token_endpoint))
                .route(
                    "/v1/projects/{project}/messages:send",
                    web::post().to(send_endpoint),
                )
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("listen fake FCM")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base_url,
            state,
            handle,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `http://127.0.0.1:<port>`: the FCM base URL to configure.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The OAuth2 token endpoint (also the `token_uri` of the key file).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// The project id the send endpoint accepts.
    pub fn project_id(&self) -> &'static str {
        PROJECT
    }

    /// Writes (once) a service-account key JSON for the test key into a temp dir and returns its path.
    pub fn service_account_json_path(&self) -> PathBuf {
        let path = self.dir.path().join("service-account.json");
        if !path.exists() {
            let key = json!({
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "test-key-1",
                "private_key": TEST_PRIVATE_KEY_PEM,
                "client_email": CLIENT_EMAIL,
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_uri(),
            });
            std::fs::write(&path, key.to_string()).expect("write key file");
        }
        path
    }

    /// A gateway configuration pointing at this server: its base URL, the key file, a 2 s timeout.
    pub fn config(&self) -> FcmConfig {
        FcmConfig {
            base_url: self.base_url(),
            project_id: Some(PROJECT.to_owned()),
            service_account_key_path: self.service_account_json_path(),
            timeout: Duration::from_secs(2),
            token_refresh_margin: Duration::from_secs(300),
        }
    }

    /// Answers `target`'s sends with `mode` until changed. A token's own mode overrides the global one.
    pub fn set_mode(&self, target: impl Into<Target>, mode: Mode) {
        self.set(target.into(), mode, None);
    }

    /// Answers the next `times` sends of `target` with `mode`, then falls back (a token to the global mode,
    /// the global mode to `Ok`).
    pub fn set_mode_times(&self, target: impl Into<Target>, mode: Mode, times: usize) {
        self.set(target.into(), mode, Some(times));
    }

    fn set(&self, target: Target, mode: Mode, remaining: Option<usize>) {
        let mut st = self.state.lock().unwrap();
        let entry = (remaining != Some(0)).then_some(ModeEntry { mode, remaining });
        match target {
            Target::All => st.global = entry,
            Target::Token(t) => match entry {
                Some(e) => {
                    st.per_token.insert(t, e);
                }
                None => {
                    st.per_token.remove(&t);
                }
            },
        }
    }

    /// Every send answers only after `latency` (a slow FCM).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// After `n` messages answered 200 in all, every further send hangs (`None`: answer again).
    pub fn hang_after(&self, n: Option<u64>) {
        self.state.lock().unwrap().hang_after = n;
    }

    /// Revokes every access token issued so far: the next send with one answers 401.
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().issued.clear();
    }

    /// `expires_in` of the access tokens issued from now on (default 3599).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state.lock().unwrap().token_lifetime_secs = secs;
    }

    /// The `message` objects answered 200, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every authorised, well-formed `message` whatever the answer (including hung ones), in arrival order.
    pub fn attempts(&self) -> Vec<Value> {
        self.state.lock().unwrap().attempts.clone()
    }

    /// Why malformed sends were refused (400 for shape, 403 for a wrong project). Empty when all is well.
    pub fn rejected(&self) -> Vec<String> {
        self.state.lock().unwrap().rejected.clone()
    }

    /// How many sends were refused for lack of a live access token.
    pub fn unauthorized(&self) -> usize {
        self.state.lock().unwrap().unauthorized
    }

    /// How many requests reached the token endpoint (granted or not).
    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    /// Why token requests were refused.
    pub fn token_rejections(&self) -> Vec<String> {
        self.state.lock().unwrap().token_rejections.clone()
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        // Sends the stop command now (hung requests are dropped with the workers).
        drop(self.handle.stop(false));
    }
}

fn oauth_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error, "error_description": description}))
}

async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let mut st = shared.state.lock().unwrap();
    st.token_requests += 1;
    let token_uri = st.token_uri.clone();
    let checked = check_token_request(&req, &body, &shared.decoding_key, &token_uri);
    match checked {
        Err((error, description)) => {
            st.token_rejections.push(format!("{error}: {description}"));
            oauth_error(error, &description)
        }
        Ok(()) => {
            st.next_token += 1;
            let token = format!(
                "ya29.fake-{}-{}",
                st.next_token,
                uuid::Uuid::new_v4().simple()
            );
            st.issued.insert(token.clone());
            HttpResponse::Ok().json(json!({
                "access_token": token,
                "expires_in": st.token_lifetime_secs,
                "token_type": "Bearer",
            }))
        }
    }
}

fn check_token_request(
    req: &HttpRequest,
    body: &[u8],
    key: &DecodingKey,
    token_uri: &str,
) -> Result<(), (&'static str, String)> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(("invalid_request", format!("content type {content_type:?}")));
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
        return Err((
            "unsupported_grant_type",
            format!("{:?}", form.get("grant_type")),
        ));
    }
    let assertion = form
        .get("assertion")
        .ok_or(("invalid_request", "no assertion".to_owned()))?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| ("invalid_grant", format!("assertion header: {e}")))?;
    if header.alg != Algorithm::RS256 {
        return Err(("invalid_grant", format!("algorithm {:?}", header.alg)));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    // Gateways run on an injected clock: the lifetime is checked below, not against the wall clock.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(assertion, key, &validation)
        .map_err(|e| ("invalid_grant", format!("assertion: {e}")))?;
    let claims = data.claims;
    let scopes = claims["scope"].as_str().unwrap_or("");
    if !scopes.split(' ').any(|s| s == FCM_SCOPE) {
        return Err(("invalid_scope", format!("scope {scopes:?}")));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(("invalid_grant", "iat/exp are not integers".into()));
    };
    if exp <= iat || exp - iat > 3600 {
        return Err(("invalid_grant", format!("lifetime {} s", exp - iat)));
    }
    Ok(())
}

/// An FCM-style error answer.
fn fcm_error(
    status: StatusCode,
    grpc_status: &str,
    message: &str,
    details: Vec<Value>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "status": grpc_status,
            "details": details,
        }
    }))
}

fn fcm_error_code(code: &str) -> Value {
    json!({"@type": FCM_ERROR_TYPE, "errorCode": code})
}

fn field_violation(field: &str, description: &str) -> Value {
    json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": description}]})
}

fn with_retry_after(mut resp: HttpResponse, retry_after: &Option<String>) -> HttpResponse {
    if let Some(v) = retry_after
        && let Ok(value) = actix_web::http::header::HeaderValue::from_str(v)
    {
        resp.headers_mut().insert(RETRY_AFTER, value);
    }
    resp
}

async fn send_endpoint(
    req: HttpRequest,
    project: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let (mode, name, latency) = {
        let mut st = shared.state.lock().unwrap();
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !st.issued.contains(bearer) {
            st.unauthorized += 1;
            return fcm_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                vec![],
            );
        }
        if project.as_str() != PROJECT {
            st.rejected
                .push(format!("403 project {:?}", project.as_str()));
            return fcm_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource (or it may not exist).",
                vec![],
            );
        }
        let json_content = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let checked = if json_content {
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| ("".to_owned(), format!("Invalid JSON payload received. {e}")))
                .and_then(|v| check_message(&v).cloned())
        } else {
            Err((
                "".to_owned(),
                "content type must be application/json".to_owned(),
            ))
        };
        let message = match checked {
            Ok(m) => m,
            Err((field, description)) => {
                st.rejected.push(format!("400 {field}: {description}"));
                return fcm_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    &description,
                    vec![
                        fcm_error_code("INVALID_ARGUMENT"),
                        field_violation(&field, &description),
                    ],
                );
            }
        };
        let token = message["token"].as_str().unwrap_or("").to_owned();
        let mut mode = st.take_mode(&token);
        if mode == Mode::Ok && st.hang_after.is_some_and(|n| st.next_message >= n) {
            mode = Mode::Hang;
        }
        st.attempts.push(message.clone());
        let mut name = None;
        if mode == Mode::Ok {
            st.next_message += 1;
            name = Some(format!("projects/{PROJECT}/messages/{}", st.next_message));
            st.received.push(message);
        }
        (mode, name, st.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match mode {
        Mode::Ok => HttpResponse::Ok().json(json!({"name": name})),
        Mode::InvalidToken => fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            vec![
                fcm_error_code("INVALID_ARGUMENT"),
                field_violation("message.token", "Invalid registration token"),
            ],
        ),
        Mode::InvalidArgument => fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            vec![
                fcm_error_code("INVALID_ARGUMENT"),
                field_violation("message.android.notification", "Invalid value"),
            ],
        ),
        Mode::Unregistered => fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
            vec![fcm_error_code("UNREGISTERED")],
        ),
        Mode::SenderIdMismatch => fcm_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "SenderId mismatch",
            vec![fcm_error_code("SENDER_ID_MISMATCH")],
        ),
        Mode::TooManyRequests { retry_after } => with_retry_after(
            fcm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Send requests'.",
                vec![fcm_error_code("QUOTA_EXCEEDED")],
            ),
            &retry_after,
        ),
        Mode::InternalError => fcm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error encountered.",
            vec![fcm_error_code("INTERNAL")],
        ),
        Mode::Unavailable { retry_after } => with_retry_after(
            fcm_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is currently unavailable.",
                vec![fcm_error_code("UNAVAILABLE")],
            ),
            &retry_after,
        ),
        Mode::Unauthorized => fcm_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            vec![],
        ),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::GatewayTimeout().finish()
        }
    }
}

type ShapeResult<T> = Result<T, (String, String)>;

fn violation<T>(field: &str, description: impl Into<String>) -> ShapeResult<T> {
    Err((field.to_owned(), description.into()))
}

fn object<'a>(v: &'a Value, field: &str) -> ShapeResult<&'a serde_json::Map<String, Value>> {
    v.as_object()
        .map_or_else(|| violation(field, "must be an object"), Ok)
}

fn only_keys(
    map: &serde_json::Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> ShapeResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => violation(
            &format!("{field}.{k}"),
            format!(
                "Invalid JSON payload received. Unknown name \"{k}\" at '{field}': Cannot find field."
            ),
        ),
        None => Ok(()),
    }
}

fn string<'a>(
    map: &'a serde_json::Map<String, Value>,
    field: &str,
    key: &str,
) -> ShapeResult<Option<&'a str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => violation(&format!("{field}.{key}"), "must be a string (TYPE_STRING)"),
    }
}

/// Checks a v1 send body the way FCM does (for the fields this fake knows), returning the `message`.
fn check_message(body: &Value) -> ShapeResult<&Value> {
    let top = object(body, "")?;
    only_keys(top, "", &["message", "validate_only"])?;
    let Some(message) = top.get("message") else {
        return violation("message", "is required");
    };
    let m = object(message, "message")?;
    only_keys(
        m,
        "message",
        &[
            "token",
            "notification",
            "data",
            "android",
            "apns",
            "webpush",
            "fcm_options",
            "name",
        ],
    )?;
    match string(m, "message", "token")? {
        Some(t) if !t.is_empty() => {}
        _ => return violation("message.token", "a registration token is required"),
    }
    if let Some(n) = m.get("notification") {
        let n = object(n, "message.notification")?;
        only_keys(n, "message.notification", &["title", "body", "image"])?;
        for k in ["title", "body", "image"] {
            string(n, "message.notification", k)?;
        }
    }
    if let Some(d) = m.get("data") {
        let d = object(d, "message.data")?;
        for (i, (k, v)) in d.iter().enumerate() {
            if !v.is_string() {
                return violation(
                    &format!("message.data[{i}].value"),
                    format!("Invalid value at 'message.data[{i}].value' (TYPE_STRING), {v}"),
                );
            }
            let lower = k.to_ascii_lowercase();
            if ["from", "notification", "message_type"].contains(&lower.as_str())
                || lower.starts_with("google")
                || lower.starts_with("gcm")
            {
                return violation("message.data", format!("Invalid data payload key: {k}"));
            }
        }
    }
    if let Some(a) = m.get("android") {
        let a = object(a, "message.android")?;
        only_keys(
            a,
            "message.android",
            &[
                "collapse_key",
                "priority",
                "ttl",
                "restricted_package_name",
                "data",
                "notification",
                "fcm_options",
                "direct_boot_ok",
            ],
        )?;
        string(a, "message.android", "collapse_key")?;
        match string(a, "message.android", "priority")? {
            None | Some("NORMAL" | "HIGH") => {}
            Some(p) => {
                return violation("message.android.priority", format!("Invalid value {p:?}"));
            }
        }
        if let Some(ttl) = string(a, "message.android", "ttl")? {
            let secs = ttl
                .strip_suffix('s')
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .and_then(|n| n.parse::<f64>().ok());
            match secs {
                Some(s) if (0.0..=2_419_200.0).contains(&s) => {}
                _ => {
                    return violation(
                        "message.android.ttl",
                        format!("Invalid value at 'message.android.ttl' ({ttl:?})"),
                    );
                }
            }
        }
    }
    if let Some(apns) = m.get("apns") {
        let apns = object(apns, "message.apns")?;
        only_keys(
            apns,
            "message.apns",
            &["headers", "payload", "fcm_options", "live_activity_token"],
        )?;
        if let Some(h) = apns.get("headers") {
            let h = object(h, "message.apns.headers")?;
            for (k, v) in h {
                if !v.is_string() {
                    return violation(&format!("message.apns.headers.{k}"), "must be a string");
                }
            }
            match string(h, "message.apns.headers", "apns-priority")? {
                None | Some("10" | "5" | "1") => {}
                Some(p) => {
                    return violation(
                        "message.apns.headers.apns-priority",
                        format!("Invalid value {p:?}"),
                    );
                }
            }
            if let Some(e) = string(h, "message.apns.headers", "apns-expiration")?
                && (e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()))
            {
                return violation(
                    "message.apns.headers.apns-expiration",
                    format!("Invalid value {e:?}"),
                );
            }
            if let Some(c) = string(h, "message.apns.headers", "apns-collapse-id")?
                && c.len() > 64
            {
                return violation(
                    "message.apns.headers.apns-collapse-id",
                    "longer than 64 bytes",
                );
            }
        }
        if let Some(p) = apns.get("payload") {
            object(p, "message.apns.payload")?;
        }
    }
    Ok(message)
}
