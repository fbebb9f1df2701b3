//! Builds the application: state, middleware, routes, the OpenAPI document and Swagger UI; runs the server.
//! Used by `main` and by the integration tests, so both run exactly the same app.

use crate::db::repo::inbox::ReminderVersion;
use crate::domain::reminders::Lang;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::auth::jwt::JwtKeys;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::telemetry::{self, Metrics};

/// Everything a handler may need; one instance per process, shared by all workers.
pub struct AppState {
    /// The database pools.
    pub db: Db,
    /// Validated settings.
    pub settings: Settings,
    /// Access-token keys.
    pub jwt: JwtKeys,
    /// The source of "now" (injected in tests).
    pub clock: Arc<dyn Clock>,
    /// The process's metrics (`/metrics`; handlers count what they refuse).
    pub metrics: Metrics,
    /// Method table of every documented route, for 405 answers.
    pub routes: api::fallback::RouteTable,
    /// Rendered list rows of customers (masked), by id and version.
    pub customer_rows: api::rendered::RenderedRows,
    /// Rendered list rows of users (with their org), by id and version.
    pub user_rows: api::rendered::RenderedRows<(i64, i64)>,
    /// This week's birthdays of each manager's customers (`/me/today`), by user and version.
    pub birthdays: api::notifications::BirthdayCache,
    /// Rendered reminders (`/me/today`) by id and version, one cache per language (zh-CN, en).
    reminder_rows: [api::rendered::RenderedRows<ReminderVersion>; 2],
}

impl AppState {
    /// Builds the state; `secret` is the resolved JWT key.
    pub fn new(db: Db, settings: Settings, secret: &[u8], clock: Arc<dyn Clock>) -> Self {
        let jwt = JwtKeys::new(secret, settings.access_token_ttl_secs);
        let routes = api::fallback::RouteTable::from_openapi(&api::openapi());
        let customer_rows = api::rendered::RenderedRows::new(settings.rendered_rows);
        let user_rows = api::rendered::RenderedRows::new(settings.rendered_rows);
        let birthdays = api::notifications::BirthdayCache::new(settings.rendered_rows);
        let reminder_rows = [
            api::rendered::RenderedRows::new(settings.rendered_rows),
            api::rendered::RenderedRows::new(settings.rendered_rows),
        ];
        Self {
            db,
            settings,
            jwt,
            clock,
            metrics: Metrics::new(),
            routes,
            customer_rows,
            user_rows,
            birthdays,
            reminder_rows,
        }
    }

    /// The rendered reminders of one language.
    pub fn reminder_rows(&self, lang: Lang) -> &api::rendered::RenderedRows<ReminderVersion> {
        match lang {
            Lang::ZhCn => &self.reminder_rows[0],
            Lang::En => &self.reminder_rows[1],
        }
    }

    /// The current instant as stored (UTC, naive).
    pub fn now(&self) -> chrono::NaiveDateTime {
        stored_now(self.clock.as_ref())
    }
}

/// "Now" as stored: UTC, truncated to microseconds so both backends keep exactly the same value.
pub fn stored_now(clock: &dyn Clock) -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    clock.now().naive_utc().trunc_subsecs(6)
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds the listener and builds the server around `state`.
    pub fn build(state: AppState) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&state.settings.bind)?;
        let port = listener.local_addr()?.port();
        let workers = match state.settings.workers {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        let trust = web::Data::new(telemetry::TrustForwardedFor(
            state.settings.trust_forwarded_for,
        ));
        let metrics = web::Data::new(state.metrics.clone());
        let state = web::Data::new(state);
        let server = HttpServer::new(move || app(state.clone(), metrics.clone(), trust.clone()))
            .workers(workers)
            .listen(listener)?
            .run();
        Ok(Self { port, server })
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is asked to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Resolves the JWT secret: configured, or generated for this process in dev (and said so).
pub fn resolve_secret(settings: &Settings) -> Vec<u8> {
    match &settings.jwt_secret {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "FIELDWORK_JWT_SECRET is not set: generated a random key for this process; \
                 tokens will not survive a restart (set it in production)"
            );
            crate::auth::tokens::random_token().into_bytes()
        }
    }
}

/// `/docs` → `/docs/` (the Swagger UI's relative asset paths need the slash).
async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

fn app(
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
    trust: web::Data<telemetry::TrustForwardedFor>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, doc) = App::new()
        .app_data(state)
        .app_data(metrics)
        .app_data(trust)
        .app_data(web::PayloadConfig::new(usize::MAX))
        .wrap(ErrorHandlers::new().default_handler(api::fallback::ensure_problem_body))
        .wrap(Compress::default())
        .wrap(from_fn(telemetry::metrics_mw))
        .wrap(from_fn(telemetry::request_id_mw))
        .into_utoipa_app()
        .openapi(api::ApiDoc::openapi())
        .configure(api::configure)
        .split_for_parts();
    // No online validator: the docs page makes no request off this server.
    let ui = SwaggerUi::new("/docs/{_:.*}")
        .url("/openapi.json", doc)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    app.route("/docs", web::get().to(docs_redirect))
        .service(ui)
        .default_service(web::to(api::fallback::not_found_or_method))
}
