//! The HTTP API: one module per resource with its routes, request/response types and OpenAPI annotations.
//! Handlers are thin: parse, call domain rules and repos inside one database call, shape the response.

pub mod audit;
pub mod auth;
pub mod calendar;
pub mod contacts;
pub mod customers;
pub mod devices;
pub mod dictionaries;
pub mod etag;
pub mod extract;
pub mod fallback;
pub mod health;
pub mod holdings;
pub mod idempotency;
pub mod me;
pub mod notices;
pub mod notifications;
pub mod opportunities;
pub mod orgs;
pub mod plans;
pub mod preferences;
pub mod rendered;
pub mod sync;
pub mod tasks;
pub mod teams;
pub mod transfers;
pub mod users;
pub mod visits;
pub mod wire_time;
pub mod worklogs;

use chrono::{DateTime, NaiveDateTime, Utc};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::scope::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// The document's fixed parts; paths are collected from the registered handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fieldwork API",
        description = "Back end of the customer managers' field app: auth, org tree, users, audit. \
                       Errors are RFC 9457 problem documents with a stable `code`.",
        version = "1.0.0"
    ),
    // Besides what the handlers' bodies pull in: the schemas only query parameters name.
    components(schemas(
        crate::error::ProblemBody,
        crate::error::ErrorCode,
        crate::error::FieldError,
        notices::NoticeBox,
        tasks::TaskRole,
        tasks::TaskStatus
    )),
    modifiers(&SecurityAddon),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "auth", description = "Login, token refresh, logout"),
        (name = "me", description = "The caller's own profile"),
        (name = "orgs", description = "The org tree"),
        (name = "users", description = "Users in the caller's subtree"),
        (name = "audit", description = "The audit log"),
        (name = "customers", description = "Customers, key contacts, holdings, the archive"),
        (name = "teams", description = "Customer teams (客户小组)"),
        (name = "transfers", description = "Customer transfers and ownership history"),
        (name = "visits", description = "Visit check-in, check-out and reports"),
        (name = "opportunities", description = "Opportunities (商机) and the pipeline"),
        (name = "worklogs", description = "Work logs (工作日志) and plans"),
        (name = "sync", description = "Delta sync for the phone"),
        (name = "calendar", description = "Working-day calendar: public holidays and 调休 make-up working days"),
        (name = "notifications", description = "The in-app inbox"),
        (name = "reminders", description = "The caller's reminders: list, done, snooze; the home screen"),
        (name = "tasks", description = "Tasks (待办) assigned by leaders or set by managers for themselves"),
        (name = "notices", description = "Notices (通知) published to an org subtree, with read receipts")
    )
)]
pub struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's FIELDWORK_METRICS_TOKEN; without one configured, /metrics \
                         answers loopback requests only",
                    ))
                    .build(),
            ),
        );
    }
}

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(health::configure).service(
        scope("/api/v1")
            .configure(auth::configure)
            .configure(me::configure)
            .configure(orgs::configure)
            .configure(users::configure)
            .configure(audit::configure)
            .configure(dictionaries::configure)
            .configure(customers::configure)
            .configure(contacts::configure)
            .configure(holdings::configure)
            .configure(teams::configure)
            .configure(transfers::configure)
            .configure(visits::configure)
            .configure(opportunities::configure)
            .configure(worklogs::configure)
            .configure(plans::configure)
            .configure(sync::configure)
            .configure(devices::configure)
            .configure(preferences::configure)
            .configure(calendar::configure)
            .configure(notifications::configure)
            .configure(tasks::configure)
            .configure(notices::configure),
    );
}

/// The complete OpenAPI document (what `fieldwork openapi` prints and `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts()
        .1
}

/// A stored UTC instant as it goes out in JSON (RFC 3339, `Z`).
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
