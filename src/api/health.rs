//! Liveness (`/healthz`, no database), readiness (`/readyz`, a pooled round trip) and `/metrics`.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{AppResult, ProblemBody};
use crate::startup::AppState;
use crate::telemetry::Metrics;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// Liveness: 200 while the process runs; touches nothing.
#[utoipa::path(tag = "health", operation_id = "get_healthz", responses((status = 200, description = "OK", body = HealthResponse)))]
#[get("/healthz")]
async fn healthz() -> web::Json<HealthResponse> {
    web::Json(HealthResponse { status: "ok" })
}

/// Readiness: 200 when a pooled database round trip succeeds, else 503.
#[utoipa::path(
    tag = "health",
    operation_id = "get_readyz",
    responses(
        (status = 200, description = "OK", body = HealthResponse),
        (status = 503, description = "Database unreachable", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> AppResult<web::Json<HealthResponse>> {
    state.db.ping().await?;
    Ok(web::Json(HealthResponse { status: "ready" }))
}

/// Prometheus text: request counts and latency by route and status, pool state.
#[utoipa::path(
    tag = "health",
    operation_id = "get_metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>, metrics: web::Data<Metrics>) -> HttpResponse {
    let text = metrics.render(state.db.pool_state(), state.db.pool_max());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
