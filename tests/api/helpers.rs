//! The test harness: the real server on a random port over a fresh database — a SQLite file in a temp dir,
//! or a new PostgreSQL schema (dropped afterwards) when `FIELDWORK_TEST_POSTGRES_URL` is set — with the demo
//! org tree and users loaded, and a small typed HTTP client.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use diesel::Connection;
use diesel::RunQueryDsl;
use fieldwork::clock::{Clock, SystemClock};
use fieldwork::config::Settings;
use fieldwork::db::Db;
use fieldwork::startup::{AppState, Application, stored_now};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL, as two tests
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::TestApp::spawn_pg().await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
}

/// The server's clock in tests: the wall clock moved by an offset the test sets, so a test can step past a
/// window (a grace period, a lockout) instead of sleeping through it.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::SeqCst);
        chrono::Utc::now() + chrono::Duration::milliseconds(offset)
    }
}

/// `backend_tests!` for servers started with some settings changed: `backend_tests_with!(tweak => a, b)`
/// runs `a` and `b` on servers whose settings `fn tweak(&mut Settings)` changed.
#[macro_export]
macro_rules! backend_tests_with {
    ($tweak:ident => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::spawn_with(
                        $crate::helpers::Backend::Sqlite,
                        super::$tweak,
                    )
                    .await;
                    super::$name(app).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::helpers::TestApp::spawn_pg_with(super::$tweak).await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// The server's clock.
    #[allow(dead_code)]
    pub clock: Arc<TestClock>,
    pub address: String,
    /// Which database this server runs on (for tests whose expectations differ by backend).
    #[allow(dead_code)]
    pub backend: Backend,
    pub database_url: String,
    pub db: Db,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

/// An HTTP answer with its JSON body (`Value::Null` when there is none or it is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status and returns self, printing the body on mismatch.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem+json answer with this status and code; returns the body.
    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        let ct = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(
            ct, "application/problem+json",
            "content type of {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "code in {}", self.text);
        assert_eq!(self.body["status"], status, "status in {}", self.text);
        assert!(
            self.body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with(code)),
            "type in {}",
            self.text
        );
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.text
        );
        let rid = self
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(!rid.is_empty(), "x-request-id header");
        assert_eq!(
            self.body["request_id"], rid,
            "request id in body matches the header"
        );
        self.body
    }

    /// Asserts a 422 (or 400) naming `field` with `code` among its errors.
    #[track_caller]
    pub fn field_error(self, status: u16, field: &str, code: &str) -> Value {
        let top = if status == 422 {
            "validation_failed"
        } else {
            ""
        };
        let body = if top.is_empty() {
            assert_eq!(self.status.as_u16(), status, "{}", self.text);
            self.body
        } else {
            self.problem(status, top)
        };
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code && e["message"].is_string()),
            "expected field error {field}/{code} in {body}"
        );
        body
    }
}

static TRACING: Once = Once::new();

fn test_settings(url: &str) -> Settings {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            fieldwork::telemetry::init(false);
        }
    });
    Settings::for_tests(url)
}

impl TestApp {
    /// A server over a fresh database of `backend`, with the demo org tree and users.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// `spawn` with some settings changed from the tests' defaults.
    pub async fn spawn_with(backend: Backend, tweak: fn(&mut Settings)) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self::start(Backend::Sqlite, url, Some(dir), None, tweak).await
            }
            Backend::Postgres => Self::spawn_pg_tweaked(|url| url.to_owned(), tweak)
                .await
                .expect("FIELDWORK_TEST_POSTGRES_URL must be set"),
        }
    }

    /// A server over a new PostgreSQL schema, or `None` (said on stderr) when no PostgreSQL is configured.
    /// Under CI (`CI=true`) a missing URL fails instead: nothing is skipped silently there.
    pub async fn spawn_pg() -> Option<Self> {
        Self::spawn_pg_via(|url| url.to_owned()).await
    }

    /// `spawn_pg` with some settings changed from the tests' defaults.
    pub async fn spawn_pg_with(tweak: fn(&mut Settings)) -> Option<Self> {
        Self::spawn_pg_tweaked(|url| url.to_owned(), tweak).await
    }

    /// The server's "now".
    #[allow(dead_code)]
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Like `spawn_pg`, with the server's URL rewritten (e.g. to go through a TCP proxy).
    pub async fn spawn_pg_via(rewrite: impl FnOnce(&str) -> String) -> Option<Self> {
        Self::spawn_pg_tweaked(rewrite, |_| {}).await
    }

    async fn spawn_pg_tweaked(
        rewrite: impl FnOnce(&str) -> String,
        tweak: fn(&mut Settings),
    ) -> Option<Self> {
        let Ok(base) = std::env::var("FIELDWORK_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must set FIELDWORK_TEST_POSTGRES_URL: PostgreSQL tests may not be skipped"
            );
            eprintln!("postgres: SKIPPED (FIELDWORK_TEST_POSTGRES_URL is not set)");
            return None;
        };
        // The creation time in the name lets the sweep spare schemas of test runs still going elsewhere.
        let now = chrono::Utc::now().timestamp();
        let schema = format!("fwt_{now}_{}", uuid::Uuid::new_v4().simple());
        let b = base.clone();
        let s = schema.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = diesel::PgConnection::establish(&b)
                .expect("connect to FIELDWORK_TEST_POSTGRES_URL");
            sweep_once(&mut c);
            diesel::sql_query(format!("CREATE SCHEMA {s}"))
                .execute(&mut c)
                .expect("create schema");
        })
        .await
        .expect("create schema task");
        let url = rewrite(&schema_url(&base, &schema));
        Some(Self::start(Backend::Postgres, url, None, Some((base, schema)), tweak).await)
    }

    async fn start(
        backend: Backend,
        url: String,
        dir: Option<tempfile::TempDir>,
        pg: Option<(String, String)>,
        tweak: fn(&mut Settings),
    ) -> Self {
        let mut settings = test_settings(&url);
        tweak(&mut settings);
        let db = Db::new(&url, settings.db_pool_size, settings.db_timeout()).expect("pool");
        let d = db.clone();
        tokio::task::spawn_blocking(move || {
            d.migrate().expect("migrations");
            let mut conn = d.get_sync().expect("connection");
            fieldwork::demo::load(&mut conn, stored_now(&SystemClock)).expect("demo data");
        })
        .await
        .expect("setup task");
        let secret = settings.jwt_secret.clone().unwrap_or_default();
        let clock = Arc::new(TestClock::default());
        let state = AppState::new(db.clone(), settings, secret.as_bytes(), clock.clone());
        let app = Application::build(state).expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            clock,
            address,
            backend,
            database_url: url,
            db,
            client,
            handle,
            _dir: dir,
            pg,
        }
    }

    /// Sends a request; `token` becomes a bearer header, `body` JSON.
    pub async fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Self::read(rb.send().await.expect("request sent")).await
    }

    /// Reads an answer.
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(Method::GET, path, Some(token), None).await
    }

    /// POST JSON with an optional token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.req(Method::POST, path, token, Some(body)).await
    }

    /// PATCH JSON with a token.
    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.req(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// Logs in and returns the whole token answer.
    pub async fn login_full(&self, employee_no: &str, password: &str) -> Resp {
        let body = serde_json::json!({ "employee_no": employee_no, "password": password });
        self.post("/api/v1/auth/login", None, &body).await
    }

    /// Logs in a demo user and returns the access token.
    pub async fn login(&self, employee_no: &str) -> String {
        let r = self.login_full(employee_no, "demo1234").await.expect(200);
        r.body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// The id of a user by employee number (as admin sees it).
    pub async fn user_id(&self, admin_token: &str, employee_no: &str) -> i64 {
        let r = self
            .get(&format!("/api/v1/users?q={employee_no}"), admin_token)
            .await
            .expect(200);
        r.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|u| u["employee_no"] == employee_no))
            .and_then(|u| u["id"].as_i64())
            .expect("user id")
    }
}

/// Moves `customer` to manager `to` through the API: `leader` proposes the transfer and the admin approves
/// it (a transfer is never approved by its proposer).
pub async fn transfer_customer(app: &TestApp, leader: &str, customer: i64, to: i64) {
    let t = app
        .post(
            &format!("/api/v1/customers/{customer}/transfers"),
            Some(leader),
            &serde_json::json!({ "to_manager_id": to, "reason": "调整分管" }),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let admin = app.login("admin").await;
    app.post(
        &format!("/api/v1/transfers/{t}/approve"),
        Some(&admin),
        &serde_json::json!({}),
    )
    .await
    .expect(200);
}

/// GET with an `If-None-Match` header.
pub async fn get_if_none_match(app: &TestApp, path: &str, token: &str, tag: &str) -> Resp {
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("if-none-match", tag)
        .send()
        .await
        .expect("request sent");
    TestApp::read(res).await
}

/// A customer inserted straight into the database (for tests of resources that need one), owned by
/// `manager_no`, at a known location (WGS-84) unless `location` is `None`.
pub async fn seed_customer(
    app: &TestApp,
    manager_no: &str,
    name: &str,
    location: Option<(f64, f64)>,
) -> i64 {
    use diesel::prelude::*;
    use fieldwork::db::models::NewCustomer;
    use fieldwork::db::repo::changes;
    use fieldwork::db::schema::{customers, ownership, users};
    let (db, no, name) = (app.db.clone(), manager_no.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get_sync().unwrap();
        let c: &mut fieldwork::db::DbConn = &mut conn;
        c.transaction::<_, diesel::result::Error, _>(|c| {
            let manager: i64 = users::table
                .filter(users::employee_no.eq(&no))
                .select(users::id)
                .first(c)?;
            let seq = changes::bump(c)?;
            let now = stored_now(&SystemClock);
            let new = NewCustomer {
                kind: "individual".into(),
                name,
                category: Some("retail".into()),
                tier: Some("ordinary".into()),
                industry: None,
                phone: Some("13812345678".into()),
                id_number: Some("320102199001011234".into()),
                // No birthday: one would enter every birthday list and reminder in the week of its date
                // (tests that need a birthday set one).
                birthday: None,
                birthday_md: None,
                lunar_month: None,
                lunar_day: None,
                lunar_leap: false,
                gender: Some("female".into()),
                address: Some("南京市鼓楼区中山路1号".into()),
                latitude: location.map(|l| l.0),
                longitude: location.map(|l| l.1),
                location_datum: location.map(|_| "wgs84".to_owned()),
                traits: None,
                tags: "[]".into(),
                status: "active".into(),
                manager_id: manager,
                originator_id: manager,
                team_id: None,
                seq,
                created_at: now,
                updated_at: now,
            };
            let id: i64 = diesel::insert_into(customers::table)
                .values(&new)
                .returning(customers::id)
                .get_result(c)?;
            diesel::insert_into(ownership::table)
                .values((
                    ownership::customer_id.eq(id),
                    ownership::manager_id.eq(manager),
                    ownership::effective_from.eq(now),
                    ownership::reason.eq("originated"),
                ))
                .execute(c)?;
            Ok(id)
        })
        .unwrap()
    })
    .await
    .unwrap()
}

fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}")
}

static SWEEP: Once = Once::new();

/// Drops schemas left by interrupted runs more than an hour ago (once per test process).
fn sweep_once(c: &mut diesel::PgConnection) {
    SWEEP.call_once(|| {
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            nspname: String,
        }
        let names: Vec<Name> =
            diesel::sql_query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fwt\\_%'")
                .load(c)
                .unwrap_or_default();
        let cutoff = chrono::Utc::now().timestamp() - 3600;
        for n in names {
            let made = n
                .nspname
                .split('_')
                .nth(1)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0);
            if made > cutoff {
                continue;
            }
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {} CASCADE", n.nspname))
                .execute(c);
        }
    });
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command now; the server winds down with the test's runtime.
        drop(self.handle.stop(false));
        if let Some((base, schema)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = diesel::PgConnection::establish(&base) {
                    let _ = diesel::sql_query(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{schema}'"
                    ))
                    .execute(&mut c);
                    let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut c);
                }
            })
            .join();
        }
    }
}

/// Logged-in demo users (and always `admin`) with their ids.
pub struct Who {
    tokens: HashMap<&'static str, String>,
    ids: HashMap<&'static str, i64>,
}

impl Who {
    /// Logs in each of `users` and `admin`, and looks up their ids.
    pub async fn login(app: &TestApp, users: &[&'static str]) -> Self {
        let mut tokens = HashMap::new();
        for u in users.iter().copied().chain(["admin"]) {
            tokens.insert(u, app.login(u).await);
        }
        let admin = tokens["admin"].clone();
        let mut ids = HashMap::new();
        for u in users.iter().copied().chain(["admin"]) {
            ids.insert(u, app.user_id(&admin, u).await);
        }
        Self { tokens, ids }
    }

    /// The access token of `u`.
    pub fn t(&self, u: &str) -> &str {
        &self.tokens[u]
    }

    /// The user id of `u`.
    pub fn id(&self, u: &str) -> i64 {
        self.ids[u]
    }
}

/// The `items` of a list answer.
pub fn items(body: &Value) -> Vec<Value> {
    body["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no items array in {body}"))
}

/// The `id` of an object.
pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The ids of a list answer, in order.
pub fn ids(body: &Value) -> Vec<i64> {
    items(body).iter().map(id_of).collect()
}
