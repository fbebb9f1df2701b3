//! Answers for requests no handler took: 404 for unknown routes, 405 (with `Allow`) for a known route and
//! another method, and a problem body for any error response that would otherwise have none.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{AppError, ErrorCode, problem_response};
use crate::startup::AppState;

/// Route templates (as segments; `None` is a `{param}`) with their allowed methods.
#[derive(Debug, Default)]
pub struct RouteTable(Vec<(Vec<Option<String>>, Vec<String>)>);

impl RouteTable {
    /// Reads the paths and methods of the OpenAPI document.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let value = serde_json::to_value(doc).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = value.get("paths").and_then(|p| p.as_object()) {
            for (path, item) in paths {
                let segments = path
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect();
                let methods = item
                    .as_object()
                    .map(|o| {
                        ["get", "put", "post", "delete", "patch"]
                            .iter()
                            .filter(|m| o.contains_key(**m))
                            .map(|m| m.to_ascii_uppercase())
                            .collect()
                    })
                    .unwrap_or_default();
                routes.push((segments, methods));
            }
        }
        Self(routes)
    }

    /// The methods allowed on `path`, if it matches a documented route.
    pub fn methods_for(&self, path: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .find(|(segs, _)| {
                segs.len() == parts.len()
                    && segs.iter().zip(&parts).all(|(s, p)| match s {
                        None => !p.is_empty(),
                        Some(s) => s == p,
                    })
            })
            .map(|(_, m)| m.clone())
    }
}

/// The default service: 405 if the path is a known route, else 404.
pub async fn not_found_or_method(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    Err(match state.routes.methods_for(req.path()) {
        Some(methods) if !methods.is_empty() => AppError::MethodNotAllowed(methods.join(", ")),
        _ => AppError::NotFound(ErrorCode::RouteNotFound),
    })
}

/// Replaces the body of an error response that is not already a problem document (errors raised by actix
/// itself or by middleware), so every error has the same shape.
pub fn ensure_problem_body<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let err = match status.as_u16() {
        404 => AppError::NotFound(ErrorCode::RouteNotFound),
        413 => AppError::PayloadTooLarge(0),
        415 => AppError::UnsupportedMediaType,
        503 => AppError::Unavailable(String::new()),
        s if s >= 500 => AppError::Internal(anyhow::anyhow!("unhandled error response {s}")),
        _ => AppError::BadRequest {
            code: ErrorCode::MalformedJson,
            detail: "bad request".into(),
            errors: vec![],
        },
    };
    let request_id = crate::telemetry::current_request_id();
    let mut body = err.problem(request_id);
    body.status = status.as_u16();
    let (req, _) = res.into_parts();
    let new = problem_response(status, &body);
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_matches_templates() {
        let t = RouteTable(vec![
            (
                vec![
                    Some(String::new()),
                    Some("api".into()),
                    Some("users".into()),
                    None,
                ],
                vec!["GET".into()],
            ),
            (
                vec![
                    Some(String::new()),
                    Some("api".into()),
                    Some("users".into()),
                ],
                vec!["GET".into(), "POST".into()],
            ),
        ]);
        assert_eq!(t.methods_for("/api/users/5"), Some(vec!["GET".into()]));
        assert_eq!(
            t.methods_for("/api/users"),
            Some(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(t.methods_for("/api/orgs"), None);
        assert_eq!(t.methods_for("/api/users/5/x"), None);
    }
}
