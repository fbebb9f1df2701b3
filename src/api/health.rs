//! Liveness (`/healthz`, no database), readiness (`/readyz`, a pooled round trip) and `/metrics`.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{AppError, AppResult, ErrorCode, ProblemBody};
use crate::startup::AppState;

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

/// Prometheus text: request counts and latency by route and status, refused password checks, pool state.
/// For the operator only: with `FIELDWORK_METRICS_TOKEN` set it needs `Authorization: Bearer <token>`;
/// without, it answers only requests from the loopback interface that came through no proxy. Any other
/// request gets 404, as for a route that does not exist.
#[utoipa::path(
    tag = "health",
    operation_id = "get_metrics",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 404, description = "Not for this caller (no token or not from loopback)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    let headers = req.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let via_proxy =
        headers.contains_key(header::FORWARDED) || headers.contains_key("x-forwarded-for");
    let peer = req.peer_addr().map(|a| a.ip());
    if !metrics_allowed(
        state.settings.metrics_token.as_deref(),
        authorization,
        peer,
        via_proxy,
    ) {
        return Err(AppError::NotFound(ErrorCode::RouteNotFound));
    }
    let text = state
        .metrics
        .render(state.db.pool_state(), state.db.pool_max());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// Whether a request may read `/metrics`: the configured bearer token (compared in constant time), or, with
/// none configured, a direct request from the loopback interface.
fn metrics_allowed(
    token: Option<&str>,
    authorization: Option<&str>,
    peer: Option<IpAddr>,
    via_proxy: bool,
) -> bool {
    match token {
        Some(want) => authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|got| {
                use sha2::{Digest, Sha256};
                // Equal-length digests compared without an early exit: no timing tells how much matched.
                let (a, b) = (Sha256::digest(got.trim()), Sha256::digest(want));
                a.iter()
                    .zip(b.iter())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
            }),
        None => !via_proxy && peer.is_some_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_for_loopback_without_a_token_and_for_the_token_with_one() {
        let lo: Option<IpAddr> = "127.0.0.1".parse().ok();
        let lo6: Option<IpAddr> = "::1".parse().ok();
        let far: Option<IpAddr> = "10.1.2.3".parse().ok();
        assert!(metrics_allowed(None, None, lo, false));
        assert!(metrics_allowed(None, None, lo6, false));
        assert!(
            !metrics_allowed(None, None, far, false),
            "not from loopback"
        );
        assert!(!metrics_allowed(None, None, lo, true), "through a proxy");
        assert!(!metrics_allowed(None, None, None, false));
        let t = Some("0123456789abcdef-metrics");
        assert!(metrics_allowed(
            t,
            Some("Bearer 0123456789abcdef-metrics"),
            far,
            true
        ));
        assert!(!metrics_allowed(
            t,
            Some("Bearer 0123456789abcdef-metricz"),
            lo,
            false
        ));
        assert!(
            !metrics_allowed(t, None, lo, false),
            "the token is needed even on loopback"
        );
        assert!(!metrics_allowed(
            t,
            Some("0123456789abcdef-metrics"),
            lo,
            false
        ));
    }
}
